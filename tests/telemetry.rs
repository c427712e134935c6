//! Telemetry of a real `hearken serve`: the Prometheus scrape endpoint after a call, and OTLP
//! export of spans (children of the caller's W3C trace context) and metrics to a collector on
//! loopback — with canary strings proving that no transcript text, metadata value or
//! conversation id leaves in either (R-PRIV-1).

mod common;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{Call, WAIT};
use hearken::proto::v1::listening_service_client::ListeningServiceClient;
use hearken::proto::v1::*;
use opentelemetry_proto::tonic::collector::metrics::v1::metrics_service_server::{
    MetricsService, MetricsServiceServer,
};
use opentelemetry_proto::tonic::collector::metrics::v1::{
    ExportMetricsServiceRequest, ExportMetricsServiceResponse,
};
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use std::process::Stdio;

const TEXT_CANARY: &str = "4111 1111 1111 1111 Zebulon";
const META_CANARY: &str = "metacanary7731";
/// Part of the card number, with its space: "4111" alone also turns up by chance inside the
/// digits of a timestamp or an id in the exported data (seen once in CI), which is no leak.
const CARD_FRAGMENT: &str = "4111 1111";
const CONVERSATION: &str = "convcanary4402";
/// Everything that must never leave the process in metrics or telemetry.
const CANARIES: [&str; 5] = [
    TEXT_CANARY,
    CARD_FRAGMENT,
    "Zebulon",
    META_CANARY,
    CONVERSATION,
];

/// One call with canaries: a start with metadata, a customer turn, an agent turn that
/// interrupts (an alert), a message with a bad timestamp (a rejection), the end.
async fn canary_call(client: &mut ListeningServiceClient<tonic::transport::Channel>) {
    let mut call = Call::open(client).await;
    let mut start = common::start(CONVERSATION);
    if let Some(stream_conversations_request::Payload::Start(s)) = &mut start.payload {
        s.metadata.insert("customer".into(), META_CANARY.into());
    }
    call.send(start).await;
    call.send(common::utterance(
        CONVERSATION,
        "u1",
        Role::Customer,
        &format!("my card {TEXT_CANARY} was charged twice and I am really upset about it"),
        0,
        6_000,
    ))
    .await;
    call.send(common::utterance(
        CONVERSATION,
        "u2",
        Role::Agent,
        &format!("ok {TEXT_CANARY} let me just reset that for you"),
        3_000,
        7_000,
    ))
    .await;
    call.send(common::utterance(
        CONVERSATION,
        "u3",
        Role::Customer,
        TEXT_CANARY,
        9_000,
        8_000,
    ))
    .await;
    call.send(common::end(CONVERSATION)).await;
    let responses = call.until_scorecards(1).await;
    assert!(responses.iter().any(|r| common::kind(r) == "rejection"));
    drop(call.tx);
    // Read to the end so the RPC finishes with OK.
    while let Ok(Some(_)) = call.rx.message().await {}
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_scrape_endpoint_reports_the_call_without_its_content() {
    let metrics_port = common::free_port();
    let metrics_addr = format!("127.0.0.1:{metrics_port}");
    let (server, url) = common::spawn_serve(
        &[],
        &[("HEARKEN_METRICS_ADDR", metrics_addr.as_str())],
        Stdio::null(),
    );
    let server = common::KillOnDrop(Some(server));
    let channel = common::connect_when_up(&url).await;
    let mut client = ListeningServiceClient::new(channel);
    canary_call(&mut client).await;
    let scored = client
        .score_transcript(common::one_utterance_transcript(CONVERSATION, TEXT_CANARY))
        .await;
    assert!(scored.is_ok());
    let empty = client
        .score_transcript(ScoreTranscriptRequest::default())
        .await;
    assert_eq!(empty.unwrap_err().code(), tonic::Code::InvalidArgument);

    let text = tokio::task::spawn_blocking(move || common::http_get(metrics_port, "/metrics"))
        .await
        .unwrap()
        .expect("GET /metrics answers 200");
    let value = |series: &str| -> f64 {
        text.lines()
            .find(|l| l.starts_with(series))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no series {series} in:\n{text}"))
    };
    // Two utterances accepted (the third is rejected): one update each, each measured.
    assert_eq!(value("hearken_utterance_duration_seconds_count"), 2.0);
    assert_eq!(value("hearken_streams_active"), 0.0);
    assert_eq!(value("hearken_conversations_active"), 0.0);
    assert_eq!(
        value("hearken_conversations_ended_total{outcome=\"completed\""),
        1.0
    );
    assert_eq!(
        value("hearken_rejections_total{field=\"utterance.end_ms\",reason=\"OUT_OF_RANGE\""),
        1.0
    );
    assert!(value("hearken_alerts_total{kind=\"INTERRUPTION\"") >= 1.0);
    assert_eq!(
        value("hearken_stream_messages_total{direction=\"received\""),
        5.0
    );
    let rpc = |method: &str, code: &str| {
        format!(
            "rpc_server_call_duration_seconds_count{{{}rpc_method=\"hearken.v1.ListeningService/{method}\",rpc_response_status_code=\"{code}\",rpc_system_name=\"grpc\"",
            if code == "OK" {
                String::new()
            } else {
                format!("error_type=\"{code}\",")
            }
        )
    };
    assert_eq!(value(&rpc("StreamConversations", "OK")), 1.0);
    assert_eq!(value(&rpc("ScoreTranscript", "OK")), 1.0);
    assert_eq!(value(&rpc("ScoreTranscript", "INVALID_ARGUMENT")), 1.0);
    assert!(value("process_resident_memory_bytes") > 0.0);
    for canary in CANARIES {
        assert!(!text.contains(canary), "{canary} in /metrics:\n{text}");
    }
    common::terminate(server.0.as_ref().unwrap());
}

#[derive(Default, Clone)]
struct Collector {
    spans: Arc<Mutex<Vec<ExportTraceServiceRequest>>>,
    metrics: Arc<Mutex<Vec<ExportMetricsServiceRequest>>>,
}

#[tonic::async_trait]
impl TraceService for Collector {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        self.spans
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(request.into_inner());
        Ok(tonic::Response::new(ExportTraceServiceResponse::default()))
    }
}

#[tonic::async_trait]
impl MetricsService for Collector {
    async fn export(
        &self,
        request: tonic::Request<ExportMetricsServiceRequest>,
    ) -> Result<tonic::Response<ExportMetricsServiceResponse>, tonic::Status> {
        self.metrics
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(request.into_inner());
        Ok(tonic::Response::new(ExportMetricsServiceResponse::default()))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spans_and_metrics_go_to_the_otlp_collector_under_the_callers_trace() {
    let collector = Collector::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let collector_addr = listener.local_addr().unwrap();
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(TraceServiceServer::new(collector.clone()))
            .add_service(MetricsServiceServer::new(collector.clone()))
            .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)),
    );
    let endpoint = format!("http://{collector_addr}");
    let (server, url) = common::spawn_serve(
        &[],
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.as_str()),
            ("OTEL_BSP_SCHEDULE_DELAY", "100"),
            ("OTEL_METRIC_EXPORT_INTERVAL", "200"),
            ("HEARKEN_LOG", "debug"),
        ],
        Stdio::null(),
    );
    let mut server = common::KillOnDrop(Some(server));
    let channel = common::connect_when_up(&url).await;
    let trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
    let parent_span = "00f067aa0ba902b7";
    let traceparent: tonic::metadata::MetadataValue<_> =
        format!("00-{trace_id}-{parent_span}-01").parse().unwrap();
    let mut client =
        ListeningServiceClient::with_interceptor(channel, move |mut r: tonic::Request<()>| {
            r.metadata_mut().insert("traceparent", traceparent.clone());
            Ok(r)
        });
    let (tx, rx) = tokio::sync::mpsc::channel(64);
    let stream = client
        .stream_conversations(tokio_stream::wrappers::ReceiverStream::new(rx))
        .await
        .unwrap()
        .into_inner();
    let mut call = Call { tx, rx: stream };
    call.send(common::start(CONVERSATION)).await;
    call.send(common::utterance(
        CONVERSATION,
        "u1",
        Role::Customer,
        &format!("my card {TEXT_CANARY} was charged twice"),
        0,
        4_000,
    ))
    .await;
    call.send(common::end(CONVERSATION)).await;
    call.until_scorecards(1).await;
    // The stream span ends with the stream.
    drop(call.tx);
    while let Ok(Some(_)) = call.rx.message().await {}

    let hex = |bytes: &[u8]| bytes.iter().map(|b| format!("{b:02x}")).collect::<String>();
    let deadline = Instant::now() + WAIT;
    let (stream_span, conversation_span) = loop {
        let spans: Vec<_> = collector
            .spans
            .lock()
            .unwrap()
            .iter()
            .flat_map(|r| r.resource_spans.iter())
            .flat_map(|r| r.scope_spans.iter())
            .flat_map(|s| s.spans.iter())
            .cloned()
            .collect();
        let stream = spans.iter().find(|s| s.name == "stream").cloned();
        let conversation = spans.iter().find(|s| s.name == "conversation").cloned();
        if let (Some(stream), Some(conversation)) = (stream, conversation) {
            break (stream, conversation);
        }
        assert!(
            Instant::now() < deadline,
            "no stream and conversation spans exported: {:?}; metrics exports: {}",
            spans.iter().map(|s| &s.name).collect::<Vec<_>>(),
            collector.metrics.lock().unwrap().len()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(hex(&stream_span.trace_id), trace_id, "the caller's trace");
    assert_eq!(
        hex(&stream_span.parent_span_id),
        parent_span,
        "the caller's span is the parent"
    );
    assert_eq!(conversation_span.trace_id, stream_span.trace_id);
    assert_eq!(conversation_span.parent_span_id, stream_span.span_id);

    let deadline = Instant::now() + WAIT;
    loop {
        let names: Vec<String> = collector
            .metrics
            .lock()
            .unwrap()
            .iter()
            .flat_map(|r| r.resource_metrics.iter())
            .flat_map(|r| r.scope_metrics.iter())
            .flat_map(|s| s.metrics.iter())
            .map(|m| m.name.clone())
            .collect();
        if names.iter().any(|n| n == "hearken.utterance.duration")
            && names.iter().any(|n| n == "rpc.server.call.duration")
        {
            break;
        }
        assert!(Instant::now() < deadline, "metrics not exported: {names:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let mut server = server.0.take().unwrap();
    common::terminate(&server);
    let status = tokio::task::spawn_blocking(move || server.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(status.success());
    let exported = format!(
        "{:?}{:?}",
        collector.spans.lock().unwrap(),
        collector.metrics.lock().unwrap()
    );
    for canary in CANARIES {
        assert!(!exported.contains(canary), "{canary} exported over OTLP");
    }
}

//! The gRPC ceiling: `hearken.v1.ListeningService` served with no scoring at all — one empty
//! `ScoreUpdate` per utterance, a scorecard on `end` — on the same tonic stack and settings as
//! `hearken serve`, so `hearken loadgen` can measure what the bare stack costs and report
//! hearken's overhead against it.
//!
//! `cargo run --release --example ceiling -- 127.0.0.1:50052`

use std::collections::HashMap;
use std::pin::Pin;
use std::time::Duration;

use hearken::proto::v1::listening_service_server::{ListeningService, ListeningServiceServer};
use hearken::proto::v1::*;
use tokio::sync::mpsc;
use tokio_stream::Stream;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status, Streaming};

/// The same allocator as `hearken serve`, so that the comparison is of the handlers alone.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Debug, Default)]
struct Ceiling;

type Out<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send>>;

#[tonic::async_trait]
impl ListeningService for Ceiling {
    type StreamConversationsStream = Out<StreamConversationsResponse>;
    type WatchAlertsStream = Out<WatchAlertsResponse>;

    async fn stream_conversations(
        &self,
        request: Request<Streaming<StreamConversationsRequest>>,
    ) -> Result<Response<Self::StreamConversationsStream>, Status> {
        let mut inbound = request.into_inner();
        let (tx, rx) = mpsc::channel(1024);
        tokio::spawn(async move {
            let mut seqs: HashMap<String, i64> = HashMap::new();
            while let Ok(Some(r)) = inbound.message().await {
                use stream_conversations_request::Payload as In;
                use stream_conversations_response::Payload as Out;
                let payload = match r.payload {
                    Some(In::Utterance(u)) => Out::Update(ScoreUpdate {
                        utterance_id: u.utterance_id,
                        partial: u.partial,
                        ..Default::default()
                    }),
                    Some(In::End(_)) => Out::Scorecard(Scorecard::default()),
                    _ => continue,
                };
                let seq = seqs.entry(r.conversation_id.clone()).or_default();
                *seq += 1;
                let response = StreamConversationsResponse {
                    conversation_id: r.conversation_id.clone(),
                    seq: *seq,
                    payload: Some(payload),
                };
                if matches!(response.payload, Some(Out::Scorecard(_))) {
                    seqs.remove(&r.conversation_id);
                }
                if tx.send(Ok(response)).await.is_err() {
                    break;
                }
            }
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }

    async fn score_transcript(
        &self,
        _: Request<ScoreTranscriptRequest>,
    ) -> Result<Response<ScoreTranscriptResponse>, Status> {
        Err(Status::unimplemented(
            "the ceiling serves StreamConversations only",
        ))
    }

    async fn watch_alerts(
        &self,
        _: Request<WatchAlertsRequest>,
    ) -> Result<Response<Self::WatchAlertsStream>, Status> {
        Err(Status::unimplemented(
            "the ceiling serves StreamConversations only",
        ))
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:50052".into())
        .parse()?;
    eprintln!("ceiling listening on {addr}");
    tonic::transport::Server::builder()
        .tcp_nodelay(true)
        .http2_keepalive_interval(Some(Duration::from_secs(30)))
        .http2_keepalive_timeout(Some(Duration::from_secs(10)))
        .max_concurrent_streams(1_000)
        .http2_max_pending_accept_reset_streams(Some(20))
        .http2_max_local_error_reset_streams(Some(1_024))
        .add_service(ListeningServiceServer::new(Ceiling))
        .serve_with_shutdown(addr, async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    Ok(())
}

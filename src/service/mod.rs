//! The tonic implementation of `hearken.v1.ListeningService`: thin; each RPC lives in its own
//! file and drives the pure engine.

pub mod auth;
pub mod error;
pub mod health;
pub mod limits;
mod methods;
mod score;
mod stream;
pub mod tenant;
mod watch;

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::AtomicUsize;

use tokio::sync::{broadcast, watch as tokio_watch};
use tokio_stream::Stream;
use tonic::{Request, Response, Status, Streaming};

pub use error::ServiceError;
pub use health::{HealthService, Readiness};
pub use limits::Limits;
pub use methods::PerMethod;

use crate::engine::Rubric;
use crate::proto::v1::listening_service_server::ListeningService;
use crate::proto::v1::*;
use crate::telemetry::Metrics;

/// An alert on its way to `WatchAlerts` subscribers.
#[derive(Debug, Clone)]
pub(crate) struct PublishedAlert {
    conversation_id: Arc<str>,
    /// The authenticated tenant of the stream that raised it: watchers of another tenant never
    /// see it. `None` without authentication.
    tenant: Option<Arc<str>>,
    alert: Alert,
}

impl Shared {
    /// The rubric new conversations open with.
    pub(crate) fn rubric(&self) -> Arc<Rubric> {
        Arc::clone(
            &self
                .rubric
                .read()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        )
    }
}

/// What every call shares.
#[derive(Debug)]
pub(crate) struct Shared {
    /// The current rubric; replaced whole on reload. Conversations keep the profile they
    /// opened with.
    rubric: std::sync::RwLock<Arc<Rubric>>,
    limits: Limits,
    alerts: broadcast::Sender<PublishedAlert>,
    draining: tokio_watch::Receiver<bool>,
    live_conversations: AtomicUsize,
    /// `WatchAlerts` streams open now.
    watchers: AtomicUsize,
    /// Request bytes read off all streams and not yet handled.
    inflight_request_bytes: Arc<tokio::sync::Semaphore>,
    metrics: Arc<Metrics>,
    /// Log each utterance's text, redacted (`--log-text`; off by default).
    log_text: bool,
    /// Stream opens per tenant; `None` without a limit.
    stream_opens: Option<tenant::OpenRate>,
    /// Live conversations per tenant; `None` without a cap.
    tenant_conversations: Option<tenant::TenantConversations>,
    /// Health: readiness follows the process's conversation cap.
    readiness: Arc<Readiness>,
    /// The supervisor's floor, when the page is served (`--ui-addr`).
    floor: Option<Arc<dyn crate::host::watch::Watcher>>,
    /// The clock of every conversation's message rate, made once: a new one per conversation
    /// asked the CPU what counters it has (CPUID, which traps in a virtual machine) and cost
    /// ~4 % of the server's CPU at saturation (docs/performance.md).
    rate_clock: governor::clock::DefaultClock,
}

/// The listening service.
#[derive(Debug, Clone)]
pub struct Listening {
    shared: Arc<Shared>,
}

impl Listening {
    /// A service scoring with `rubric` under `limits`, recording into `metrics`. Streams end
    /// with UNAVAILABLE once `draining` turns true.
    pub fn new(
        rubric: Arc<Rubric>,
        limits: Limits,
        draining: tokio_watch::Receiver<bool>,
        metrics: Arc<Metrics>,
        readiness: Arc<Readiness>,
    ) -> Self {
        let (alerts, _) = broadcast::channel(limits.watch_buffer.max(1));
        let tenant_conversations =
            tenant::TenantConversations::new(limits.max_conversations_per_tenant);
        let stream_opens =
            tenant::OpenRate::new(limits.stream_opens_per_second, limits.stream_open_burst);
        let inflight_request_bytes = Arc::new(tokio::sync::Semaphore::new(
            limits
                .max_inflight_request_bytes
                .clamp(1, tokio::sync::Semaphore::MAX_PERMITS),
        ));
        Listening {
            shared: Arc::new(Shared {
                rubric: std::sync::RwLock::new(rubric),
                limits,
                alerts,
                draining,
                live_conversations: AtomicUsize::new(0),
                watchers: AtomicUsize::new(0),
                inflight_request_bytes,
                metrics,
                log_text: false,
                stream_opens,
                tenant_conversations,
                readiness,
                floor: None,
                rate_clock: governor::clock::DefaultClock::default(),
            }),
        }
    }

    /// Logs each utterance's text after masking card data ([`crate::redact`]): for debugging
    /// an integration, never on by default.
    pub fn with_text_log(mut self, on: bool) -> Self {
        match Arc::get_mut(&mut self.shared) {
            Some(shared) => shared.log_text = on,
            None => tracing::warn!("the text log can only be set before the service is shared"),
        }
        self
    }

    /// Shows every live conversation on `floor` (the supervisor's page).
    pub fn with_floor(mut self, floor: Option<Arc<dyn crate::host::watch::Watcher>>) -> Self {
        match Arc::get_mut(&mut self.shared) {
            Some(shared) => shared.floor = floor,
            None => tracing::warn!("the floor can only be set before the service is shared"),
        }
        self
    }

    /// The service's metrics.
    pub fn metrics(&self) -> &crate::telemetry::metrics::Metrics {
        &self.shared.metrics
    }

    /// The rubric conversations open with now.
    pub fn rubric(&self) -> Arc<Rubric> {
        self.shared.rubric()
    }

    /// Replaces the rubric for conversations opened from now on.
    pub fn replace_rubric(&self, rubric: Arc<Rubric>) {
        let mut current = self
            .shared
            .rubric
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        *current = rubric;
    }
}

/// Makes the caller's trace context (taken from the request headers by
/// [`crate::telemetry::rpc::RpcLayer`]) the parent of `span`; without an OpenTelemetry layer
/// this does nothing.
fn set_parent(span: &tracing::Span, parent: Option<opentelemetry::Context>) {
    use tracing_opentelemetry::OpenTelemetrySpanExt as _;
    if let Some(parent) = parent
        && let Err(error) = span.set_parent(parent)
    {
        tracing::debug!(%error, "cannot attach the caller's trace context");
    }
}

impl Shared {
    /// Whether `caller` may open a stream now, within its tenant's stream-open rate (R-SEC-5);
    /// the refusal, with when to retry, if not.
    fn admit_stream(&self, caller: &tenant::Caller) -> Result<(), Status> {
        match (
            &self.stream_opens,
            caller.rate_key(self.limits.stream_open_rate_by_peer),
        ) {
            (Some(rate), Some(key)) => rate
                .admit(key)
                .map_err(|wait| ServiceError::StreamOpenRate(wait).into()),
            _ => Ok(()),
        }
    }
}

fn trace_parent<T>(request: &Request<T>) -> Option<opentelemetry::Context> {
    request
        .extensions()
        .get::<opentelemetry::Context>()
        .cloned()
}

/// How long a refused call's messages are still read (and dropped) so that the refusal never
/// resets the HTTP/2 stream from our side (refused stream opens, `ScoreTranscript` beyond its
/// concurrency).
pub(super) const REFUSED_LINGER: std::time::Duration = std::time::Duration::from_secs(10);

type ResponseStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send + 'static>>;

#[tonic::async_trait]
impl ListeningService for Listening {
    type StreamConversationsStream = ResponseStream<StreamConversationsResponse>;
    type WatchAlertsStream = ResponseStream<WatchAlertsResponse>;

    async fn stream_conversations(
        &self,
        request: Request<Streaming<StreamConversationsRequest>>,
    ) -> Result<Response<Self::StreamConversationsStream>, Status> {
        let parent = trace_parent(&request);
        let caller = tenant::Caller::of(&request);
        let admitted = self.shared.admit_stream(&caller);
        let inbound = request.into_inner();
        Ok(Response::new(match admitted {
            Ok(()) => stream::start(Arc::clone(&self.shared), inbound, parent, caller),
            Err(status) => stream::refuse(inbound, status, REFUSED_LINGER),
        }))
    }

    async fn score_transcript(
        &self,
        request: Request<ScoreTranscriptRequest>,
    ) -> Result<Response<ScoreTranscriptResponse>, Status> {
        use tracing::Instrument as _;
        let span = tracing::info_span!(
            "score_transcript",
            otel.kind = "server",
            rpc.system.name = "grpc",
            rpc.method = "hearken.v1.ListeningService/ScoreTranscript",
        );
        set_parent(&span, trace_parent(&request));
        score::score_transcript(Arc::clone(&self.shared), request.into_inner())
            .instrument(span)
            .await
            .map(Response::new)
            .map_err(Status::from)
    }

    async fn watch_alerts(
        &self,
        request: Request<WatchAlertsRequest>,
    ) -> Result<Response<Self::WatchAlertsStream>, Status> {
        let caller = tenant::Caller::of(&request);
        self.shared.admit_stream(&caller)?;
        watch::start(&self.shared, request.into_inner(), caller.tenant)
            .map(Response::new)
            .map_err(Status::from)
    }
}

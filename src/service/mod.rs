//! The tonic implementation of `hearken.v1.ListeningService`: thin; each RPC lives in its own
//! file and drives the pure engine.

pub mod error;
pub mod limits;
mod score;
mod stream;
mod watch;

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::AtomicUsize;

use tokio::sync::{broadcast, watch as tokio_watch};
use tokio_stream::Stream;
use tonic::{Request, Response, Status, Streaming};

pub use error::ServiceError;
pub use limits::Limits;

use crate::engine::Rubric;
use crate::proto::v1::listening_service_server::ListeningService;
use crate::proto::v1::*;

/// An alert on its way to `WatchAlerts` subscribers.
#[derive(Debug, Clone)]
pub(crate) struct PublishedAlert {
    conversation_id: Arc<str>,
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
}

/// The listening service.
#[derive(Debug, Clone)]
pub struct Listening {
    shared: Arc<Shared>,
}

impl Listening {
    /// A service scoring with `rubric` under `limits`. Streams end with UNAVAILABLE once
    /// `draining` turns true.
    pub fn new(rubric: Arc<Rubric>, limits: Limits, draining: tokio_watch::Receiver<bool>) -> Self {
        let (alerts, _) = broadcast::channel(limits.watch_buffer.max(1));
        Listening {
            shared: Arc::new(Shared {
                rubric: std::sync::RwLock::new(rubric),
                limits,
                alerts,
                draining,
                live_conversations: AtomicUsize::new(0),
            }),
        }
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

type ResponseStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send + 'static>>;

#[tonic::async_trait]
impl ListeningService for Listening {
    type StreamConversationsStream = ResponseStream<StreamConversationsResponse>;
    type WatchAlertsStream = ResponseStream<WatchAlertsResponse>;

    async fn stream_conversations(
        &self,
        request: Request<Streaming<StreamConversationsRequest>>,
    ) -> Result<Response<Self::StreamConversationsStream>, Status> {
        Ok(Response::new(stream::start(
            Arc::clone(&self.shared),
            request.into_inner(),
        )))
    }

    async fn score_transcript(
        &self,
        request: Request<ScoreTranscriptRequest>,
    ) -> Result<Response<ScoreTranscriptResponse>, Status> {
        score::score_transcript(Arc::clone(&self.shared), request.into_inner())
            .await
            .map(Response::new)
            .map_err(Status::from)
    }

    async fn watch_alerts(
        &self,
        request: Request<WatchAlertsRequest>,
    ) -> Result<Response<Self::WatchAlertsStream>, Status> {
        watch::start(&self.shared, request.into_inner())
            .map(Response::new)
            .map_err(Status::from)
    }
}

//! The listening service as the server mounts it: one decoding limit per method, a concurrency
//! limit on `ScoreTranscript` checked before its request is read, and tonic's own size errors
//! turned into the documented ones.
//!
//! A `ScoreTranscript` call beyond `max_concurrent_transcripts` is refused at once with
//! RESOURCE_EXHAUSTED (`TOO_MANY_CALLS`) and a `RetryInfo`, and its body is read and dropped.
//! It is not queued: a queued call's body would sit in the connection's flow-control window,
//! and enough of them would leave no window for the calls being served (a deadlock).
//!
//! tonic sets one decoding limit per service, so two copies of the generated service share
//! the one [`Listening`]: `StreamConversations` and `WatchAlerts` requests are refused past
//! their limits (256 KiB and 64 KiB by default), `ScoreTranscript` past 4 MiB. tonic checks a
//! message's length prefix before buffering its body, so an over-size message is refused after
//! five bytes, never held half-sent in memory (R-SIZE-1).

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use tokio::sync::Semaphore;
use tonic::body::Body;
use tonic::server::NamedService;
use tonic::service::interceptor::InterceptedService;
use tower::Service;

use super::auth::Authenticate;
use super::error::ServiceError;
use super::{Limits, Listening};
use crate::proto::v1::listening_service_server::ListeningServiceServer;

type Inner = InterceptedService<ListeningServiceServer<Listening>, Authenticate>;

const SCORE_TRANSCRIPT: &str = "/hearken.v1.ListeningService/ScoreTranscript";
const WATCH_ALERTS: &str = "/hearken.v1.ListeningService/WatchAlerts";

/// `hearken.v1.ListeningService` with per-method limits.
#[derive(Clone)]
pub struct PerMethod {
    streams: Inner,
    watchers: Inner,
    transcripts: Inner,
    transcript_slots: Arc<Semaphore>,
    limits: Arc<Limits>,
}

impl std::fmt::Debug for PerMethod {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PerMethod").finish_non_exhaustive()
    }
}

impl PerMethod {
    /// Mounts `listening` under `limits`, authenticating with `auth`.
    pub fn new(listening: Listening, limits: &Limits, auth: Authenticate) -> Self {
        let encoding = Limits::DEFAULT_MAX_TRANSCRIPT_MESSAGE_BYTES;
        let with_limit = |bytes: usize| {
            InterceptedService::new(
                ListeningServiceServer::new(listening.clone())
                    .max_decoding_message_size(bytes)
                    .max_encoding_message_size(encoding),
                auth.clone(),
            )
        };
        PerMethod {
            streams: with_limit(limits.max_stream_message_bytes),
            watchers: with_limit(limits.max_watch_request_bytes),
            transcripts: with_limit(limits.max_transcript_message_bytes),
            transcript_slots: Arc::new(Semaphore::new(limits.max_concurrent_transcripts.max(1))),
            limits: Arc::new(limits.clone()),
        }
    }
}

impl NamedService for PerMethod {
    const NAME: &'static str = "hearken.v1.ListeningService";
}

impl Service<http::Request<Body>> for PerMethod {
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        // The generated services are always ready.
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<Body>) -> Self::Future {
        let path = request.uri().path();
        let limits = Arc::clone(&self.limits);
        if path == SCORE_TRANSCRIPT {
            let mut inner = self.transcripts.clone();
            let slots = Arc::clone(&self.transcript_slots);
            return Box::pin(async move {
                let Ok(_slot) = slots.try_acquire_owned() else {
                    discard(request.into_body());
                    return Ok(tonic::Status::from(ServiceError::TooMany {
                        what: "ScoreTranscript calls in progress on this server",
                        limit: limits.max_concurrent_transcripts,
                    })
                    .into_http());
                };
                let response = inner.call(request).await?;
                Ok(documented_size_error(
                    response.map(Body::new),
                    "a ScoreTranscript request",
                    limits.max_transcript_message_bytes,
                ))
            });
        }
        let (mut inner, what, limit) = if path == WATCH_ALERTS {
            (
                self.watchers.clone(),
                "a WatchAlerts request",
                limits.max_watch_request_bytes,
            )
        } else {
            (
                self.streams.clone(),
                "a StreamConversations request",
                limits.max_stream_message_bytes,
            )
        };
        Box::pin(async move {
            let response = inner.call(request).await?;
            Ok(documented_size_error(response.map(Body::new), what, limit))
        })
    }
}

/// Reads a refused call's body to its end (at most 10 s) and drops it, so that the refusal
/// never resets the HTTP/2 stream from our side and holds none of it in memory.
fn discard(mut body: Body) {
    use http_body::Body as _;
    tokio::spawn(async move {
        let _ = tokio::time::timeout(std::time::Duration::from_secs(10), async {
            while let Some(Ok(_)) =
                std::future::poll_fn(|cx| Pin::new(&mut body).poll_frame(cx)).await
            {}
        })
        .await;
    });
}

/// tonic refuses an over-size request with OUT_OF_RANGE ("decoded message length too large")
/// and no details; the contract says RESOURCE_EXHAUSTED with `ErrorInfo{MESSAGE_TOO_LARGE}`.
/// Only a response that carries its status in its headers (refused before the handler ran)
/// can be one of these; every other response passes through untouched.
fn documented_size_error(
    response: http::Response<Body>,
    what: &'static str,
    limit: usize,
) -> http::Response<Body> {
    match tonic::Status::from_header_map(response.headers()) {
        Some(status)
            if status.code() == tonic::Code::OutOfRange
                && status.message().contains("message length too large") =>
        {
            tonic::Status::from(ServiceError::TooLarge {
                reason: "MESSAGE_TOO_LARGE",
                what,
                limit,
            })
            .into_http()
        }
        _ => response,
    }
}

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

/// One method's copy of the service, with the size limit it decodes under and how its
/// requests are named in a size error.
#[derive(Clone)]
struct Method {
    service: Inner,
    what: &'static str,
    limit: usize,
}

impl Method {
    /// Serves `request` and turns tonic's size error into the documented one.
    async fn call(
        mut self,
        request: http::Request<Body>,
    ) -> Result<http::Response<Body>, Infallible> {
        let response = self.service.call(request).await?;
        Ok(documented_size_error(
            response.map(Body::new),
            self.what,
            self.limit,
        ))
    }
}

/// `hearken.v1.ListeningService` with per-method limits.
#[derive(Clone)]
pub struct PerMethod {
    streams: Method,
    watchers: Method,
    transcripts: Method,
    transcript_slots: Arc<Semaphore>,
    max_transcripts: usize,
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
        let method = |what: &'static str, limit: usize| Method {
            service: InterceptedService::new(
                ListeningServiceServer::new(listening.clone())
                    .max_decoding_message_size(limit)
                    .max_encoding_message_size(encoding),
                auth.clone(),
            ),
            what,
            limit,
        };
        let max_transcripts = limits.max_concurrent_transcripts.max(1);
        PerMethod {
            streams: method(
                "a StreamConversations request",
                limits.max_stream_message_bytes,
            ),
            watchers: method("a WatchAlerts request", limits.max_watch_request_bytes),
            transcripts: method(
                "a ScoreTranscript request",
                limits.max_transcript_message_bytes,
            ),
            transcript_slots: Arc::new(Semaphore::new(max_transcripts)),
            max_transcripts,
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
        match request.uri().path() {
            SCORE_TRANSCRIPT => {
                let Ok(slot) = Arc::clone(&self.transcript_slots).try_acquire_owned() else {
                    discard(request.into_body());
                    let refusal = tonic::Status::from(ServiceError::TooMany {
                        what: "ScoreTranscript calls in progress on this server",
                        limit: self.max_transcripts,
                    });
                    return Box::pin(std::future::ready(Ok(refusal.into_http())));
                };
                let call = self.transcripts.clone().call(request);
                Box::pin(async move {
                    let response = call.await;
                    drop(slot);
                    response
                })
            }
            WATCH_ALERTS => Box::pin(self.watchers.clone().call(request)),
            _ => Box::pin(self.streams.clone().call(request)),
        }
    }
}

/// Reads a refused call's body to its end (at most 10 s) and drops it, so that the refusal
/// never resets the HTTP/2 stream from our side and holds none of it in memory.
fn discard(mut body: Body) {
    use http_body::Body as _;
    tokio::spawn(async move {
        let _ = tokio::time::timeout(super::REFUSED_LINGER, async {
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
                over: crate::service::error::Oversize::Message,
                what,
                limit,
            })
            .into_http()
        }
        _ => response,
    }
}

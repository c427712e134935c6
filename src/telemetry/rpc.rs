//! A tower layer around the whole gRPC server: the duration and status of every RPC
//! (`rpc.server.call.duration`), and the caller's W3C trace context taken from the request
//! headers and handed to the handlers as an `opentelemetry::Context` request extension.
//!
//! A gRPC status arrives either in the response headers (trailers-only responses, e.g. an
//! error before any message) or in the trailers after the last message; a response body
//! dropped before its trailers means the client went away (`CANCELLED`).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use http_body::Frame;
use opentelemetry::propagation::Extractor;
use tower::{Layer, Service};

use super::metrics::Metrics;

/// The `rpc.method` of a request path: `package.Service/Method` for a method this server
/// has, `_OTHER` for any other path (bounded cardinality).
fn method_of(path: &str) -> &'static str {
    const METHODS: [&str; 7] = [
        "hearken.v1.ListeningService/StreamConversations",
        "hearken.v1.ListeningService/ScoreTranscript",
        "hearken.v1.ListeningService/WatchAlerts",
        "grpc.health.v1.Health/Check",
        "grpc.health.v1.Health/Watch",
        "grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
        "grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
    ];
    let path = path.strip_prefix('/').unwrap_or(path);
    METHODS
        .iter()
        .find(|m| **m == path)
        .copied()
        .unwrap_or("_OTHER")
}

/// The semantic-conventions name of a `grpc-status` value.
fn code_name(status: &[u8]) -> &'static str {
    use tonic::Code;
    match Code::from_bytes(status) {
        Code::Ok => "OK",
        Code::Cancelled => "CANCELLED",
        Code::Unknown => "UNKNOWN",
        Code::InvalidArgument => "INVALID_ARGUMENT",
        Code::DeadlineExceeded => "DEADLINE_EXCEEDED",
        Code::NotFound => "NOT_FOUND",
        Code::AlreadyExists => "ALREADY_EXISTS",
        Code::PermissionDenied => "PERMISSION_DENIED",
        Code::ResourceExhausted => "RESOURCE_EXHAUSTED",
        Code::FailedPrecondition => "FAILED_PRECONDITION",
        Code::Aborted => "ABORTED",
        Code::OutOfRange => "OUT_OF_RANGE",
        Code::Unimplemented => "UNIMPLEMENTED",
        Code::Internal => "INTERNAL",
        Code::Unavailable => "UNAVAILABLE",
        Code::DataLoss => "DATA_LOSS",
        Code::Unauthenticated => "UNAUTHENTICATED",
    }
}

/// Reads the W3C `traceparent`/`tracestate` headers.
struct HeaderExtractor<'a>(&'a http::HeaderMap);

impl Extractor for HeaderExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(http::HeaderName::as_str).collect()
    }
}

/// Records each RPC's duration and status; passes the caller's trace context on.
#[derive(Debug, Clone)]
pub struct RpcLayer {
    metrics: Arc<Metrics>,
}

impl RpcLayer {
    /// A layer recording into `metrics`.
    pub fn new(metrics: Arc<Metrics>) -> Self {
        RpcLayer { metrics }
    }
}

impl<S> Layer<S> for RpcLayer {
    type Service = RpcService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RpcService {
            inner,
            metrics: Arc::clone(&self.metrics),
        }
    }
}

/// The service `RpcLayer` makes.
#[derive(Debug, Clone)]
pub struct RpcService<S> {
    inner: S,
    metrics: Arc<Metrics>,
}

impl<S, B, RB> Service<http::Request<B>> for RpcService<S>
where
    S: Service<http::Request<B>, Response = http::Response<RB>>,
    RB: http_body::Body,
{
    type Response = http::Response<RecordedBody<RB>>;
    type Error = S::Error;
    type Future = RecordedFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: http::Request<B>) -> Self::Future {
        let method = method_of(request.uri().path());
        let parent = opentelemetry::global::get_text_map_propagator(|propagator| {
            propagator.extract(&HeaderExtractor(request.headers()))
        });
        request.extensions_mut().insert(parent);
        RecordedFuture {
            inner: self.inner.call(request),
            recorder: Some(Recorder {
                metrics: Arc::clone(&self.metrics),
                method,
                started: Instant::now(),
                done: false,
            }),
        }
    }
}

/// Records once: with the status seen, or as `CANCELLED` when dropped before one.
#[derive(Debug)]
struct Recorder {
    metrics: Arc<Metrics>,
    method: &'static str,
    started: Instant,
    done: bool,
}

impl Recorder {
    fn finish(&mut self, code: &'static str) {
        if !self.done {
            self.done = true;
            self.metrics
                .rpc_finished(self.method, code, self.started.elapsed());
        }
    }
}

impl Drop for Recorder {
    fn drop(&mut self) {
        self.finish("CANCELLED");
    }
}

pin_project_lite::pin_project! {
    /// The response future of `RpcService`.
    #[derive(Debug)]
    pub struct RecordedFuture<F> {
        #[pin]
        inner: F,
        recorder: Option<Recorder>,
    }
}

impl<F, RB, E> Future for RecordedFuture<F>
where
    F: Future<Output = Result<http::Response<RB>, E>>,
{
    type Output = Result<http::Response<RecordedBody<RB>>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let result = std::task::ready!(this.inner.poll(cx));
        let mut recorder = this.recorder.take();
        Poll::Ready(match result {
            Ok(response) => {
                // Trailers-only: the status is in the headers and the body is empty.
                if let (Some(status), Some(r)) =
                    (response.headers().get("grpc-status"), recorder.as_mut())
                {
                    r.finish(code_name(status.as_bytes()));
                }
                Ok(response.map(|inner| RecordedBody { inner, recorder }))
            }
            Err(error) => {
                if let Some(r) = recorder.as_mut() {
                    r.finish("UNKNOWN");
                }
                Err(error)
            }
        })
    }
}

pin_project_lite::pin_project! {
    /// A response body that records the status in its trailers.
    #[derive(Debug)]
    pub struct RecordedBody<B> {
        #[pin]
        inner: B,
        recorder: Option<Recorder>,
    }
}

impl<B: http_body::Body> http_body::Body for RecordedBody<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let this = self.project();
        let frame = std::task::ready!(this.inner.poll_frame(cx));
        if let Some(recorder) = this.recorder.as_mut() {
            match &frame {
                Some(Ok(frame)) => {
                    if let Some(status) = frame.trailers_ref().and_then(|t| t.get("grpc-status")) {
                        recorder.finish(code_name(status.as_bytes()));
                    }
                }
                Some(Err(_)) => recorder.finish("UNKNOWN"),
                None => recorder.finish("UNKNOWN"),
            }
        }
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_methods_keep_their_names_and_others_are_folded() {
        assert_eq!(
            method_of("/hearken.v1.ListeningService/ScoreTranscript"),
            "hearken.v1.ListeningService/ScoreTranscript"
        );
        assert_eq!(
            method_of("/grpc.health.v1.Health/Check"),
            "grpc.health.v1.Health/Check"
        );
        assert_eq!(method_of("/some.Other/Thing"), "_OTHER");
        assert_eq!(method_of("/hearken.v1.ListeningService/Nope"), "_OTHER");
    }

    #[test]
    fn status_codes_have_their_canonical_names() {
        assert_eq!(code_name(b"0"), "OK");
        assert_eq!(code_name(b"14"), "UNAVAILABLE");
        assert_eq!(code_name(b"8"), "RESOURCE_EXHAUSTED");
        assert_eq!(code_name(b"garbage"), "UNKNOWN");
    }
}

//! The Prometheus scrape endpoint: `GET /metrics` in the text exposition format, on its own
//! port so that it never shares a listener (or a NetworkPolicy rule) with the gRPC API.

use std::future::Future;

use axum::Router;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use prometheus::{Encoder as _, TextEncoder};
use tokio::net::TcpListener;

async fn metrics(registry: prometheus::Registry) -> axum::response::Response {
    let encoder = TextEncoder::new();
    let mut body = Vec::with_capacity(16 * 1024);
    match encoder.encode(&registry.gather(), &mut body) {
        Ok(()) => (
            [(header::CONTENT_TYPE, encoder.format_type().to_owned())],
            body,
        )
            .into_response(),
        Err(error) => {
            tracing::warn!(%error, "cannot encode metrics");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

/// Serves `registry` at `/metrics` on `listener` until `shutdown` resolves.
pub async fn serve_scrape(
    listener: TcpListener,
    registry: prometheus::Registry,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    serve_scrape_with(listener, registry, Router::new(), shutdown).await
}

/// As [`serve_scrape`], with `routes` beside `/metrics` (the pipeline's health).
pub async fn serve_scrape_with(
    listener: TcpListener,
    registry: prometheus::Registry,
    routes: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let app = routes.route("/metrics", get(move || metrics(registry.clone())));
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
}

//! The floor's web server (`hearken serve --ui-addr`): the page, its assets (embedded), and the
//! read-only JSON and Server-Sent Events it reads. Documented in `docs/ui.md`.
//!
//! - `GET /`: the page; `GET /assets/…`: its script, style sheet and the vendored chart library.
//! - `GET /api/floor`: every conversation on the floor as a row, and the latest alerts.
//! - `GET /api/conversations/{key}`: one conversation's score history, utterances with their
//!   behaviours, and alerts.
//! - `GET /api/events`: Server-Sent Events. First `floor` (as `/api/floor`), then at most one
//!   `batch` per `update_interval`: the rows of the conversations that changed, the keys that
//!   left the floor, the alerts raised since the last batch. A browser that takes no batch for
//!   `slow_viewer_timeout` gets a `notice` and is let go, as is every browser when the server
//!   shuts down; one that falls behind the floor's changes gets a fresh `floor`.
//!
//! With `--jwt-jwks`, every `/api/` request needs `authorization: Bearer <JWT>` (the page asks
//! for the token and keeps it for the tab); a viewer sees only its tenant's conversations, as a
//! `WatchAlerts` watcher does. Under mutual TLS without JWT, the client certificate names the
//! tenant.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use axum::Router;
use axum::extract::{ConnectInfo, Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Serialize;
use tokio::sync::{broadcast, mpsc};
use tokio::time::{Instant, MissedTickBehavior};
use tokio_stream::Stream;

use super::listener::{Peer, UiListener};
use super::{Floor, Tick};
use crate::service::auth::JwtVerifier;
use crate::tls::Tls;

/// The page and its assets, embedded: path, content type, content.
const ASSETS: [(&str, &str, &str); 6] = [
    (
        "/",
        "text/html; charset=utf-8",
        include_str!("assets/index.html"),
    ),
    (
        "/assets/app.js",
        "text/javascript; charset=utf-8",
        include_str!("assets/app.js"),
    ),
    (
        "/assets/app.css",
        "text/css; charset=utf-8",
        include_str!("assets/app.css"),
    ),
    (
        "/assets/vendor/uPlot.iife.min.js",
        "text/javascript; charset=utf-8",
        include_str!("assets/vendor/uPlot.iife.min.js"),
    ),
    (
        "/assets/vendor/uPlot.min.css",
        "text/css; charset=utf-8",
        include_str!("assets/vendor/uPlot.min.css"),
    ),
    (
        "/assets/vendor/uPlot.LICENSE",
        "text/plain; charset=utf-8",
        include_str!("assets/vendor/uPlot.LICENSE"),
    ),
];

/// What the floor's handlers share.
#[derive(Debug, Clone)]
struct App {
    floor: Arc<Floor>,
    jwt: Option<Arc<JwtVerifier>>,
}

/// Serves the floor on `listener` until `shutdown` resolves (then viewers are let go), with
/// TLS and bearer tokens as the gRPC port has them.
pub async fn serve(
    listener: tokio::net::TcpListener,
    floor: Arc<Floor>,
    tls: Option<Tls>,
    jwt: Option<Arc<JwtVerifier>>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let limits = super::listener::Limits {
        header: floor.config.header_timeout,
        idle: floor.config.idle_timeout,
        connections: floor.config.connection_cap(),
    };
    let listener = UiListener::new(listener, tls.as_ref(), limits)?;
    let app = App {
        floor: Arc::clone(&floor),
        jwt,
    };
    let router = router(app);
    let aggregator = tokio::spawn(Arc::clone(&floor).aggregate());
    let closing = async move {
        shutdown.await;
        floor.close();
    };
    axum::serve(
        listener,
        router.into_make_service_with_connect_info::<Peer>(),
    )
    .with_graceful_shutdown(closing)
    .await?;
    // It stops when the floor closes.
    let _ = aggregator.await;
    Ok(())
}

fn router(app: App) -> Router {
    let mut router = Router::new();
    for (path, content_type, body) in ASSETS {
        router = router.route(path, get(move || async move { asset(body, content_type) }));
    }
    router
        .route("/api/floor", get(floor_snapshot))
        .route("/api/conversations/{key}", get(conversation))
        .route("/api/events", get(events))
        .fallback(|| async { error(StatusCode::NOT_FOUND, "NOT_FOUND", "no such page") })
        .with_state(app)
}

/// Headers every response carries: the page loads only its own assets, is never framed, and
/// nothing is cached (the data is live and may be personal).
fn secure(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'self'; img-src 'self' data:; style-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
        ),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

fn asset(body: &'static str, content_type: &'static str) -> Response {
    secure(([(header::CONTENT_TYPE, content_type)], body).into_response())
}

fn json<T: Serialize>(value: &T) -> Response {
    match serde_json::to_vec(value) {
        Ok(body) => secure(([(header::CONTENT_TYPE, "application/json")], body).into_response()),
        Err(_) => error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "INTERNAL",
            "cannot encode",
        ),
    }
}

#[derive(Serialize)]
struct ApiError<'a> {
    error: &'a str,
    message: &'a str,
}

/// An error as JSON: a stable `error` code and a message (never request content).
fn error(status: StatusCode, code: &str, message: &str) -> Response {
    let body = serde_json::to_vec(&ApiError {
        error: code,
        message,
    })
    .unwrap_or_default();
    secure((status, [(header::CONTENT_TYPE, "application/json")], body).into_response())
}

/// Who is looking: the tenant whose conversations they may see (`None`: all).
struct Viewer {
    tenant: Option<Arc<str>>,
}

/// Why a request was not authorised: status, stable code, message.
struct Refused(StatusCode, &'static str, &'static str);

impl IntoResponse for Refused {
    fn into_response(self) -> Response {
        error(self.0, self.1, self.2)
    }
}

impl App {
    fn authorize(&self, headers: &HeaderMap, peer: &Peer) -> Result<Viewer, Refused> {
        let Some(verifier) = &self.jwt else {
            return Ok(Viewer {
                tenant: peer.tenant.clone(),
            });
        };
        let token = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| {
                v.strip_prefix("Bearer ")
                    .or_else(|| v.strip_prefix("bearer "))
            })
            .ok_or(Refused(
                StatusCode::UNAUTHORIZED,
                "TOKEN_MISSING",
                "this server needs a bearer token",
            ))?;
        match verifier.verify(token.trim()) {
            Ok(tenant) => Ok(Viewer {
                tenant: Some(Arc::from(tenant.0)),
            }),
            Err(e) => {
                let (status, code) = match e {
                    crate::service::ServiceError::PermissionDenied(code) => {
                        (StatusCode::FORBIDDEN, code)
                    }
                    crate::service::ServiceError::Unauthenticated(code) => {
                        (StatusCode::UNAUTHORIZED, code)
                    }
                    _ => (StatusCode::UNAUTHORIZED, "TOKEN_INVALID"),
                };
                Err(Refused(status, code, "the bearer token was not accepted"))
            }
        }
    }
}

/// `GET /api/floor` and the first event of `/api/events`, as JSON: the rows as each was last
/// serialised, joined.
fn snapshot(floor: &Floor, tenant: Option<&str>) -> String {
    let rows = floor.rows_json(tenant);
    let alerts: Vec<String> = floor
        .feed(tenant)
        .iter()
        .filter_map(|a| serde_json::to_string(&**a).ok())
        .collect();
    let mut out = String::with_capacity(64 + rows.iter().map(|r| r.len() + 1).sum::<usize>());
    out.push_str(&format!(
        "{{\"show_text\":{},\"update_interval_ms\":{},\"live\":{},\"rows\":[",
        floor.config.show_text,
        floor.config.update_interval.as_millis(),
        live(floor, tenant),
    ));
    join(&mut out, rows.iter().map(|r| &**r));
    out.push_str("],\"alerts\":[");
    join(&mut out, alerts.iter().map(String::as_str));
    out.push_str("]}");
    out
}

/// The process's live conversations, or `null` for a viewer scoped to a tenant (other
/// tenants' numbers are not theirs to see).
fn live(floor: &Floor, tenant: Option<&str>) -> String {
    match tenant {
        None => floor.live_calls().to_string(),
        Some(_) => "null".into(),
    }
}

fn join<'a>(out: &mut String, items: impl Iterator<Item = &'a str>) {
    for (i, item) in items.enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(item);
    }
}

async fn floor_snapshot(
    State(app): State<App>,
    ConnectInfo(peer): ConnectInfo<Peer>,
    headers: HeaderMap,
) -> Response {
    let viewer = match app.authorize(&headers, &peer) {
        Ok(viewer) => viewer,
        Err(refused) => return refused.into_response(),
    };
    app.floor.caught_up().await;
    secure(
        (
            [(header::CONTENT_TYPE, "application/json")],
            snapshot(&app.floor, viewer.tenant.as_deref()),
        )
            .into_response(),
    )
}

async fn conversation(
    State(app): State<App>,
    ConnectInfo(peer): ConnectInfo<Peer>,
    headers: HeaderMap,
    Path(key): Path<String>,
) -> Response {
    let viewer = match app.authorize(&headers, &peer) {
        Ok(viewer) => viewer,
        Err(refused) => return refused.into_response(),
    };
    let Ok(key) = key.parse::<u64>() else {
        return error(
            StatusCode::BAD_REQUEST,
            "INVALID_KEY",
            "a conversation key is a number from /api/floor",
        );
    };
    app.floor.caught_up().await;
    match app.floor.detail(key, viewer.tenant.as_deref()) {
        Some(detail) => json(&detail),
        None => error(
            StatusCode::NOT_FOUND,
            "NOT_ON_FLOOR",
            "no such conversation on the floor (it may have ended a while ago)",
        ),
    }
}

/// A viewer's place under `max_viewers`, given back when its stream is dropped.
struct ViewerSlot(Arc<Floor>);

impl Drop for ViewerSlot {
    fn drop(&mut self) {
        self.0.viewers.fetch_sub(1, Ordering::Relaxed);
        self.0.metrics.floor_viewers_changed(-1);
    }
}

/// The events of one browser, holding its viewer slot until the response is dropped.
struct Events {
    rx: mpsc::Receiver<Event>,
    _slot: ViewerSlot,
}

impl Stream for Events {
    type Item = Result<Event, Infallible>;

    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Self::Item>> {
        self.rx.poll_recv(cx).map(|e| e.map(Ok))
    }
}

/// Batches queued per browser before it counts as slow (each holds at most one batch of rows).
const VIEWER_QUEUE: usize = 4;

async fn events(
    State(app): State<App>,
    ConnectInfo(peer): ConnectInfo<Peer>,
    headers: HeaderMap,
) -> Response {
    let viewer = match app.authorize(&headers, &peer) {
        Ok(viewer) => viewer,
        Err(refused) => return refused.into_response(),
    };
    let floor = &app.floor;
    if floor.viewers.fetch_add(1, Ordering::Relaxed) >= floor.config.max_viewers {
        floor.viewers.fetch_sub(1, Ordering::Relaxed);
        let mut response = error(
            StatusCode::TOO_MANY_REQUESTS,
            "TOO_MANY_VIEWERS",
            &format!(
                "this server already has the maximum of {} floor viewers",
                floor.config.max_viewers
            ),
        );
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("10"));
        return response;
    }
    floor.metrics.floor_viewers_changed(1);
    let slot = ViewerSlot(Arc::clone(floor));
    let (tx, rx) = mpsc::channel(VIEWER_QUEUE);
    // Subscribed before the snapshot is read: nothing that changes after it is missed.
    let ticks = floor.subscribe();
    let floor_for_task = Arc::clone(floor);
    tokio::spawn(async move {
        let reason = watch_floor(Arc::clone(&floor_for_task), viewer, ticks, tx).await;
        floor_for_task.metrics.floor_viewer_ended(reason);
    });
    let mut response = Sse::new(Events { rx, _slot: slot })
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
        .into_response();
    // Tell proxies (nginx) not to buffer the stream.
    response
        .headers_mut()
        .insert("x-accel-buffering", HeaderValue::from_static("no"));
    secure(response)
}

/// Alerts sent to one browser per batch; more are counted in the batch's `skipped`.
const ALERTS_PER_BATCH: usize = 50;

#[derive(Serialize)]
struct Notice<'a> {
    reason: &'a str,
    message: &'a str,
}

fn notice(reason: &str, message: &str) -> Event {
    Event::default()
        .event("notice")
        .json_data(Notice { reason, message })
        .unwrap_or_default()
}

/// What one browser has not been sent yet: the latest row of each conversation that changed
/// (or `None`: it left), the alerts, and how many alerts were left out.
#[derive(Default)]
struct Unsent {
    rows: BTreeMap<u64, Option<Arc<str>>>,
    alerts: Vec<Arc<str>>,
    skipped: u64,
    /// Fell behind the floor's ticks: send the whole floor instead.
    resync: bool,
}

impl Unsent {
    fn is_empty(&self) -> bool {
        !self.resync && self.rows.is_empty() && self.alerts.is_empty() && self.skipped == 0
    }

    /// Takes what a viewer of `tenant` may see from `tick`.
    fn add(&mut self, tick: &Tick, tenant: Option<&str>) {
        let visible = |t: &Option<Arc<str>>| tenant.is_none() || t.as_deref() == tenant;
        for (key, owner, row) in &tick.rows {
            // A key that left is sent to everyone: a viewer that does not have it ignores it.
            if row.is_none() || visible(owner) {
                self.rows.insert(*key, row.clone());
            }
        }
        for (owner, alert) in &tick.alerts {
            if visible(owner) {
                if self.alerts.len() < ALERTS_PER_BATCH {
                    self.alerts.push(Arc::clone(alert));
                } else {
                    self.skipped += 1;
                }
            }
        }
        if tenant.is_none() {
            self.skipped += tick.skipped_alerts;
        }
    }

    /// The event that sends it all (a `batch`, or a `floor` after falling behind), emptying it.
    fn take(&mut self, floor: &Floor, tenant: Option<&str>) -> (&'static str, Event) {
        if std::mem::take(&mut self.resync) {
            *self = Unsent::default();
            let data = snapshot(floor, tenant);
            return ("floor", Event::default().event("floor").data(data));
        }
        let mut out = String::from("{\"rows\":[");
        let mut removed = Vec::new();
        let mut first = true;
        for (key, row) in std::mem::take(&mut self.rows) {
            match row {
                Some(row) => {
                    if !first {
                        out.push(',');
                    }
                    first = false;
                    out.push_str(&row);
                }
                None => removed.push(key.to_string()),
            }
        }
        out.push_str("],\"removed\":[");
        out.push_str(&removed.join(","));
        out.push_str("],\"alerts\":[");
        join(&mut out, self.alerts.iter().map(|a| &**a));
        out.push_str(&format!(
            "],\"skipped\":{},\"live\":{}}}",
            self.skipped,
            live(floor, tenant)
        ));
        self.alerts.clear();
        self.skipped = 0;
        ("batch", Event::default().event("batch").data(out))
    }
}

/// One browser's feed. The floor's aggregator sends a [`Tick`] per `update_interval` with what
/// changed, serialised once; this picks out what the viewer may see and sends it as one batch.
/// While the browser's queue is full, ticks are merged (latest row per conversation); if that
/// lasts `slow_viewer_timeout`, it is let go with a notice. One that falls more than the tick
/// buffer behind gets the whole floor again. Returns why it stopped: `left`, `too_slow` or
/// `shutting_down`.
async fn watch_floor(
    floor: Arc<Floor>,
    viewer: Viewer,
    mut ticks: broadcast::Receiver<Arc<Tick>>,
    tx: mpsc::Sender<Event>,
) -> &'static str {
    let tenant = viewer.tenant.as_deref();
    let mut closing = floor.closing.subscribe();
    floor.metrics.floor_event("floor");
    floor.caught_up().await;
    let first = Event::default()
        .event("floor")
        .data(snapshot(&floor, tenant));
    if tx.send(first).await.is_err() {
        return "left";
    }
    let config = floor.config.clone();
    let mut retry = tokio::time::interval(config.update_interval);
    retry.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut unsent = Unsent::default();
    let mut full_since: Option<Instant> = None;
    loop {
        tokio::select! {
            biased;
            () = async { let _ = closing.wait_for(|c| *c).await; } => {
                floor.metrics.floor_event("notice");
                let _ = tx.try_send(notice("SHUTTING_DOWN", "the server is shutting down; reconnect to another"));
                return "shutting_down";
            }
            () = tx.closed() => return "left",
            tick = ticks.recv() => match tick {
                Ok(tick) => unsent.add(&tick, tenant),
                Err(broadcast::error::RecvError::Lagged(_)) => unsent.resync = true,
                Err(broadcast::error::RecvError::Closed) => return "shutting_down",
            },
            // Only to retry a browser whose queue was full.
            _ = retry.tick(), if full_since.is_some() => {}
        }
        if unsent.is_empty() {
            continue;
        }
        match tx.try_reserve() {
            Ok(permit) => {
                full_since = None;
                let (name, event) = unsent.take(&floor, tenant);
                floor.metrics.floor_event(name);
                permit.send(event);
            }
            Err(mpsc::error::TrySendError::Closed(())) => return "left",
            Err(mpsc::error::TrySendError::Full(())) => {
                let since = *full_since.get_or_insert_with(Instant::now);
                if since.elapsed() >= config.slow_viewer_timeout {
                    floor.dropped_viewers.fetch_add(1, Ordering::Relaxed);
                    tracing::info!("a floor viewer was not reading; let go");
                    // Delivered once the browser reads what it has queued, if it ever does.
                    floor.metrics.floor_event("notice");
                    let notice = notice(
                        "TOO_SLOW",
                        "this browser did not keep up with the floor's updates; reload to reconnect",
                    );
                    let _ = tokio::time::timeout(Duration::from_secs(1), tx.send(notice)).await;
                    return "too_slow";
                }
            }
        }
    }
}

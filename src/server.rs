//! Builds and runs the gRPC server: the listening service, gRPC health (`""` and
//! `hearken.v1.ListeningService`), server reflection (v1 and v1alpha), the HTTP/2 limits of
//! `reliability.md`, and draining.
//!
//! Draining, once `shutdown` resolves (SIGTERM/SIGINT in `hearken serve`):
//! 1. health turns NOT_SERVING at once, so load balancers stop sending new calls;
//! 2. the server keeps serving for `drain_delay` while that propagates;
//! 3. every open stream flushes its responses and ends with UNAVAILABLE (`DRAINING`, retry at
//!    once elsewhere), watchers likewise; tonic sends GOAWAY and stops accepting;
//! 4. whatever is still open `drain_deadline` after the signal is dropped and `run` returns.

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::{oneshot, watch};

use crate::engine::Rubric;
use crate::proto::v1::FILE_DESCRIPTOR_SET;
use crate::service::{HealthService, Limits, Listening, PerMethod, Readiness};
use crate::telemetry::Metrics;
use crate::telemetry::rpc::RpcLayer;

pub use crate::tls::{TLS_HANDSHAKE_TIMEOUT, Tls};

/// How the server runs.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// The rubric conversations are scored with.
    pub rubric: Arc<Rubric>,
    /// Service limits.
    pub limits: Limits,
    /// How long health reports NOT_SERVING before streams are told to go (endpoint propagation).
    pub drain_delay: Duration,
    /// After the shutdown signal, the process stops waiting for streams after this long.
    pub drain_deadline: Duration,
    /// HTTP/2 keepalive ping interval (R-KA-1).
    pub keepalive_interval: Duration,
    /// How long a keepalive ping may go unanswered before the connection is closed.
    pub keepalive_timeout: Duration,
    /// Connections older than this are asked to reconnect (GOAWAY), re-spreading load (R-AGE-1).
    pub max_connection_age: Duration,
    /// The rubric file `rubric` was loaded from: reloaded on SIGHUP and when its content
    /// changes (checked every `rubric_poll`; zero checks only on SIGHUP).
    pub rubric_file: Option<PathBuf>,
    /// How often the rubric file is checked for changes.
    pub rubric_poll: Duration,
    /// Notified to reload the rubric file now (`hearken serve` does so on SIGHUP).
    pub reload: Arc<tokio::sync::Notify>,
    /// Where the service records its metrics.
    pub metrics: Arc<Metrics>,
    /// Log utterance text, redacted (off by default).
    pub log_text: bool,
    /// TLS, or `None` for plaintext HTTP/2 (h2c).
    pub tls: Option<Tls>,
    /// Bearer-token verification for the listening service, or `None` for no authentication.
    pub jwt: Option<Arc<crate::service::auth::JwtVerifier>>,
    /// The supervisor's floor that live conversations are shown on, when the page is served.
    pub floor: Option<Arc<crate::floor::Floor>>,
}

impl ServerConfig {
    /// 5 s of NOT_SERVING before streams are ended.
    pub const DEFAULT_DRAIN_DELAY: Duration = Duration::from_secs(5);
    /// Exit 25 s after the signal at the latest.
    pub const DEFAULT_DRAIN_DEADLINE: Duration = Duration::from_secs(25);
    /// An HTTP/2 ping every 30 s.
    pub const DEFAULT_KEEPALIVE_INTERVAL: Duration = Duration::from_secs(30);
    /// A ping unanswered for 10 s closes the connection.
    pub const DEFAULT_KEEPALIVE_TIMEOUT: Duration = Duration::from_secs(10);
    /// Connections are asked to reconnect after 30 min.
    pub const DEFAULT_MAX_CONNECTION_AGE: Duration = Duration::from_secs(30 * 60);
    /// The rubric file is checked for changes every 5 s.
    pub const DEFAULT_RUBRIC_POLL: Duration = Duration::from_secs(5);

    /// Defaults from `reliability.md` with the given rubric.
    pub fn new(rubric: Arc<Rubric>) -> Self {
        ServerConfig {
            rubric,
            limits: Limits::default(),
            drain_delay: Self::DEFAULT_DRAIN_DELAY,
            drain_deadline: Self::DEFAULT_DRAIN_DEADLINE,
            keepalive_interval: Self::DEFAULT_KEEPALIVE_INTERVAL,
            keepalive_timeout: Self::DEFAULT_KEEPALIVE_TIMEOUT,
            max_connection_age: Self::DEFAULT_MAX_CONNECTION_AGE,
            rubric_file: None,
            rubric_poll: Self::DEFAULT_RUBRIC_POLL,
            reload: Arc::default(),
            metrics: Arc::new(Metrics::noop()),
            log_text: false,
            tls: None,
            jwt: None,
            floor: None,
        }
    }
}

/// TCP keepalive on accepted sockets: finds peers that vanished without HTTP/2 noticing.
const TCP_KEEPALIVE: Duration = Duration::from_secs(60);

/// The accepted connections of `listener`, with TCP_NODELAY and TCP keepalive set on each.
fn incoming(listener: TcpListener) -> tonic::transport::server::TcpIncoming {
    tonic::transport::server::TcpIncoming::from(listener)
        .with_nodelay(Some(true))
        .with_keepalive(Some(TCP_KEEPALIVE))
}

/// HTTP/2 connection flow-control window: what one connection may have in flight unread.
///
/// It also sets how much h2 lets small DATA frames left unread cost: h2 0.4.20 counts
/// 256 - n bytes for each unread frame of n < 256 bytes and sends GOAWAY ENHANCE_YOUR_CALM
/// `too_many_data_frames` (closing every call on the connection) when the count passes half
/// the connection window (`DataFrameBudget::Auto` in h2's `proto/connection.rs`). The budget
/// can be set on h2's own `server::Builder::data_frame_budget`, but neither hyper 1.13 nor
/// tonic 0.14 passes it through, so the windows are chosen for it: one stream that stops being
/// read (its queue full) holds at most a stream window unread, and even as the smallest gRPC
/// messages there are (5-byte keep-alives, one frame each) that is 64 KiB / 5 × 251 ≈ 3.3 MB,
/// under the 4 MiB budget. Before (2 MiB / 128 KiB) 35-byte messages on one stream ended the
/// connection (#29).
pub const CONNECTION_WINDOW: u32 = 8 * 1024 * 1024;
/// HTTP/2 stream flow-control window: what one stream may have in flight unread.
pub const STREAM_WINDOW: u32 = 64 * 1024;
/// What one connection may hold in h2 at most: its window of unread data and, for small
/// frames, h2's count of their cost (half the window).
pub const CONNECTION_MEMORY: usize = CONNECTION_WINDOW as usize * 3 / 2;

/// Longest a stream may outlive its connection's maximum age: past the maximum stream duration.
const MAX_CONNECTION_AGE_GRACE: Duration = Duration::from_secs(4 * 60 * 60 + 5 * 60);

/// `age` moved by up to ±10 % (`unit` in [0, 1) picks where), so that pods started together
/// do not recycle their connections in step (R-AGE-1). tonic applies one age to every
/// connection of a server, so the jitter is per process, not per connection.
pub fn jittered(age: Duration, unit: f64) -> Duration {
    age.mul_f64(0.9 + 0.2 * unit.clamp(0.0, 1.0))
}

/// The listening service the server runs, with the floor watching when the page is served.
fn listening(
    config: &ServerConfig,
    drain_rx: watch::Receiver<bool>,
    readiness: Arc<Readiness>,
) -> Listening {
    let listening = Listening::new(
        Arc::clone(&config.rubric),
        config.limits.clone(),
        drain_rx,
        Arc::clone(&config.metrics),
        readiness,
    )
    .with_text_log(config.log_text)
    .with_floor(
        config
            .floor
            .clone()
            .map(|f| Arc::new(f) as Arc<dyn crate::host::watch::Watcher>),
    );
    if config.log_text {
        tracing::warn!(
            "the text log is on: utterance text is logged after best-effort masking of card data; \
             it may still hold personal data — switch it off outside debugging"
        );
    }
    listening
}

/// What the server does once `shutdown` resolves: health NOT_SERVING (and the drain deadline
/// starts), then after `drain_delay` open streams and health watchers are told to go.
async fn drain(
    shutdown: impl Future<Output = ()>,
    drain_delay: Duration,
    readiness: Arc<Readiness>,
    drain_tx: watch::Sender<bool>,
    deadline_tx: oneshot::Sender<()>,
) {
    shutdown.await;
    tracing::info!(
        drain_delay_ms = drain_delay.as_millis() as u64,
        "shutting down: health NOT_SERVING"
    );
    let _ = deadline_tx.send(());
    readiness.draining();
    tokio::time::sleep(drain_delay).await;
    tracing::info!("draining: ending open streams and health watchers with UNAVAILABLE");
    // Receivers check the current value first, so `true` stays visible after the sender drops.
    let _ = drain_tx.send(true);
}

/// The server builder: TLS (and client certificates) when configured, HTTP/2 limits, windows
/// and keepalives, the connection age.
fn builder(config: &ServerConfig) -> anyhow::Result<tonic::transport::Server> {
    let tls = config.tls.as_ref();
    let mut builder = tonic::transport::Server::builder();
    if let Some(tls) = tls {
        let mut tls_config = tonic::transport::ServerTlsConfig::new()
            .identity(tonic::transport::Identity::from_pem(
                &tls.cert_pem,
                &tls.key_pem,
            ))
            .timeout(TLS_HANDSHAKE_TIMEOUT);
        if let Some(ca) = &tls.client_ca_pem {
            tls_config = tls_config
                .client_ca_root(tonic::transport::Certificate::from_pem(ca))
                .client_auth_optional(false);
        }
        builder = builder
            .tls_config(tls_config)
            .map_err(|e| anyhow::anyhow!("invalid TLS configuration: {e}"))?;
    }
    Ok(builder
        .http2_keepalive_interval(Some(config.keepalive_interval))
        .http2_keepalive_timeout(Some(config.keepalive_timeout))
        .max_concurrent_streams(1_000)
        .http2_max_pending_accept_reset_streams(Some(20))
        .http2_max_local_error_reset_streams(Some(1_024))
        .http2_max_header_list_size(16 * 1024)
        // Flow-control windows. h2 closes a whole connection when small DATA frames left
        // unread use up a budget of half its connection window; one stream's window bounds
        // what a stalled stream leaves unread, and no single stream can reach the budget
        // whatever its message size (see CONNECTION_WINDOW; docs/operations.md, "Memory").
        .initial_connection_window_size(CONNECTION_WINDOW)
        .initial_stream_window_size(STREAM_WINDOW)
        .max_connection_age(jittered(config.max_connection_age, rand::random::<f64>()))
        .max_connection_age_grace(MAX_CONNECTION_AGE_GRACE))
}

/// Serves on `listener` until `shutdown` resolves, then drains (see the module docs).
pub async fn run(
    listener: TcpListener,
    config: ServerConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let readiness = Arc::new(Readiness::default());
    let (drain_tx, drain_rx) = watch::channel(false);
    let listening = listening(&config, drain_rx.clone(), Arc::clone(&readiness));
    let service = PerMethod::new(
        listening.clone(),
        &config.limits,
        crate::service::auth::Authenticate(config.jwt.clone()),
    );
    let reflection = || {
        tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
    };
    let (reflection_v1, reflection_v1alpha) =
        (reflection().build_v1()?, reflection().build_v1alpha()?);
    let reloader = config.rubric_file.clone().map(|path| {
        tokio::spawn(watch_rubric(
            path,
            config.rubric_poll,
            Arc::clone(&config.reload),
            listening.clone(),
        ))
    });
    // The rubric is loaded and validated before we get here: ready to serve.
    readiness.ready();
    let health = HealthService::new(Arc::clone(&readiness), drain_rx.clone());

    let (deadline_tx, deadline_rx) = oneshot::channel::<()>();
    let graceful = drain(
        shutdown,
        config.drain_delay,
        readiness,
        drain_tx,
        deadline_tx,
    );

    // tonic ignores its builder's `tcp_nodelay`/`tcp_keepalive` for a listener it did not bind
    // itself, so the accepted sockets get them here. Without TCP_NODELAY, Nagle's algorithm
    // holds small updates back behind unacknowledged ones: at 1 000 streams the p99 was 30×
    // the bare stack's (docs/performance.md).
    let incoming = incoming(listener);
    let server = builder(&config)?
        .layer(RpcLayer::new(Arc::clone(&config.metrics)))
        .add_service(health.server())
        .add_service(reflection_v1)
        .add_service(reflection_v1alpha)
        .add_service(service)
        .serve_with_incoming_shutdown(incoming, graceful);

    let drain_deadline = config.drain_deadline;
    let deadline = async move {
        if deadline_rx.await.is_err() {
            std::future::pending::<()>().await;
        }
        tokio::time::sleep(drain_deadline).await;
    };
    tokio::select! {
        result = server => result?,
        () = deadline => tracing::warn!(deadline_ms = drain_deadline.as_millis() as u64, "drain deadline passed; closing what is still open"),
    }
    if let Some(reloader) = reloader {
        reloader.abort();
    }
    tracing::info!("server stopped");
    Ok(())
}

/// How long a changed rubric file must stay the same before it is loaded.
const RUBRIC_SETTLE: Duration = Duration::from_millis(100);

/// Reloads the rubric file when `reload` is notified (SIGHUP), and when its content changes. A
/// file that does not validate is refused with every problem logged, and the current rubric
/// stays. Conversations in flight keep the profile they opened with; only new ones get the new
/// rubric.
async fn watch_rubric(
    path: PathBuf,
    poll: Duration,
    reload: Arc<tokio::sync::Notify>,
    listening: Listening,
) {
    let mut last = tokio::fs::read_to_string(&path).await.unwrap_or_default();
    let mut tick = tokio::time::interval(if poll.is_zero() {
        Duration::from_secs(3600)
    } else {
        poll
    });
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    loop {
        let forced = tokio::select! {
            _ = tick.tick() => false,
            () = reload.notified() => true,
        };
        if !forced && poll.is_zero() {
            continue;
        }
        let text = match tokio::fs::read_to_string(&path).await {
            Ok(text) => text,
            Err(error) => {
                tracing::warn!(path = %path.display(), %error, "cannot read the rubric file; keeping the current rubric");
                listening.metrics().rubric_reload("unreadable");
                continue;
            }
        };
        if !forced && text == last {
            continue;
        }
        // A file being written can be read half-way (editors and `cp` truncate first, and an
        // empty file is a valid rubric: the default). Only content that stays the same for a
        // moment is loaded; content still changing is looked at again on the next turn.
        tokio::time::sleep(RUBRIC_SETTLE).await;
        match tokio::fs::read_to_string(&path).await {
            Ok(again) if again == text => {}
            _ => {
                if forced {
                    reload.notify_one();
                }
                continue;
            }
        }
        last = text;
        // An empty file is what a writer leaves between truncating and writing (a rubric
        // rewritten in two steps): never a reason to drop every profile of the running rubric.
        // To go back to the defaults, write a file that says so (a comment is enough).
        if last.trim().is_empty() {
            tracing::warn!(path = %path.display(), "the rubric file is empty; keeping the current rubric");
            listening.metrics().rubric_reload("empty");
            continue;
        }
        // The running rubric's listening model (`--model`) stays.
        let model = listening.rubric().model().clone();
        match Rubric::from_toml_str_with_model(&last, &model) {
            Ok(rubric) => {
                let profiles: Vec<&str> = rubric.profile_names().collect();
                tracing::info!(path = %path.display(), profiles = ?profiles, trigger = if forced { "SIGHUP" } else { "file change" }, "rubric reloaded");
                listening.replace_rubric(Arc::new(rubric));
                listening.metrics().rubric_reload("loaded");
            }
            Err(error) => {
                tracing::warn!(path = %path.display(), problems = %error, "rubric file refused; keeping the current rubric");
                listening.metrics().rubric_reload("refused");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Regression: tonic's builder settings do not reach sockets from a listener we bound,
    /// and without TCP_NODELAY the p99 at 1 000 streams was 30× the bare stack's.
    #[tokio::test]
    async fn accepted_connections_have_nodelay_and_keepalive() {
        use tokio_stream::StreamExt as _;
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let mut accepted = incoming(listener);
        let _client = tokio::net::TcpStream::connect(addr).await.unwrap();
        let stream = tokio::time::timeout(Duration::from_secs(5), accepted.next())
            .await
            .expect("a connection within 5 s")
            .expect("the listener is open")
            .expect("accepted");
        assert!(stream.nodelay().unwrap(), "TCP_NODELAY must be set");
        assert!(
            socket2::SockRef::from(&stream).keepalive().unwrap(),
            "SO_KEEPALIVE must be set"
        );
    }

    #[test]
    fn connection_age_jitter_stays_within_ten_percent() {
        let age = Duration::from_secs(1800);
        assert_eq!(jittered(age, 0.0), Duration::from_secs(1620));
        assert_eq!(jittered(age, 0.5), age);
        assert!(jittered(age, 0.999_999) < Duration::from_secs(1980));
        assert!(jittered(age, 7.0) <= Duration::from_secs(1980));
    }
}

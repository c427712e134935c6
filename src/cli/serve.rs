//! `hearken serve`: the gRPC service, until SIGTERM or SIGINT, then a graceful drain.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;

use crate::config::{
    ENV_ADDR, ENV_DRAIN_DEADLINE, ENV_DRAIN_DELAY, ENV_LOG_TEXT, ENV_METRICS_ADDR, ENV_RUBRIC,
};
use crate::floor::FloorConfig;
use crate::server::{self, ServerConfig};
use crate::service::Limits;
use crate::telemetry::{LogFormat, Telemetry};

/// Flags of `hearken serve`. Durations take units: `500ms`, `30s`, `10m`, `4h`.
#[derive(Debug, clap::Args)]
pub(super) struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = ENV_ADDR, default_value = "0.0.0.0:50051")]
    addr: SocketAddr,
    /// Address of the Prometheus scrape endpoint (`GET /metrics`), or `off`.
    #[arg(long, env = ENV_METRICS_ADDR, default_value = super::DEFAULT_METRICS_ADDR, value_parser = super::parse_metrics_addr)]
    metrics_addr: super::MetricsAddr,
    /// PEM certificate chain for TLS on the gRPC port (with --tls-key).
    #[arg(long, env = crate::config::ENV_TLS_CERT, requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// PEM private key for --tls-cert.
    #[arg(long, env = crate::config::ENV_TLS_KEY, requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// PEM CA bundle: clients must present a certificate it signed (mutual TLS).
    #[arg(long, env = crate::config::ENV_TLS_CLIENT_CA, requires = "tls_cert")]
    tls_client_ca: Option<PathBuf>,
    /// JWKS file (JSON) whose RS256/ES256 keys sign bearer tokens: with it, every call to the
    /// listening service needs `authorization: Bearer <JWT>` (health and reflection stay open).
    #[arg(long, env = crate::config::ENV_JWT_JWKS, requires_all = ["jwt_issuer", "jwt_audience"])]
    jwt_jwks: Option<PathBuf>,
    /// The `iss` tokens must carry.
    #[arg(long, env = crate::config::ENV_JWT_ISSUER)]
    jwt_issuer: Option<String>,
    /// The `aud` tokens must carry.
    #[arg(long, env = crate::config::ENV_JWT_AUDIENCE)]
    jwt_audience: Option<String>,
    /// The claim naming the caller's tenant (per-tenant limits).
    #[arg(long, default_value = "tenant")]
    jwt_tenant_claim: String,
    /// Serve plaintext HTTP/2 (h2c) without TLS: inside a mesh that encrypts, or on loopback.
    /// Required when no --tls-cert is given, so that plaintext is always a choice.
    #[arg(long, env = crate::config::ENV_PLAINTEXT, conflicts_with = "tls_cert")]
    plaintext: bool,
    /// Log each utterance's text after masking card numbers, security codes and expiry dates
    /// (best effort). For debugging an integration only: the text may still hold personal data.
    #[arg(long, env = ENV_LOG_TEXT)]
    log_text: bool,
    /// Rubric file (TOML) laid over the embedded default: extra profiles, changed thresholds.
    /// Reloaded on SIGHUP and when it changes; a file that does not validate is refused.
    #[arg(long, env = ENV_RUBRIC)]
    rubric: Option<PathBuf>,
    /// How often the rubric file is checked for changes (0s: only on SIGHUP).
    #[arg(long, default_value_t = ServerConfig::DEFAULT_RUBRIC_POLL.into())]
    rubric_poll: humantime::Duration,
    /// After SIGTERM, how long health reports NOT_SERVING before open streams are ended.
    #[arg(long, env = ENV_DRAIN_DELAY, default_value_t = ServerConfig::DEFAULT_DRAIN_DELAY.into())]
    drain_delay: humantime::Duration,
    /// After SIGTERM, exit by this time whatever is still open.
    #[arg(long, env = ENV_DRAIN_DEADLINE, default_value_t = ServerConfig::DEFAULT_DRAIN_DEADLINE.into())]
    drain_deadline: humantime::Duration,
    /// Live conversations one stream may carry.
    #[arg(long, default_value_t = Limits::DEFAULT_MAX_CONVERSATIONS_PER_STREAM)]
    max_conversations_per_stream: usize,
    /// Live conversations one tenant (its authenticated name, else its IP address) may hold
    /// across its streams; 0 for no cap beyond the process's. Default: 10 000 when callers
    /// authenticate (JWT or mutual TLS), else none.
    #[arg(long)]
    max_conversations_per_tenant: Option<usize>,
    /// Live conversations the process may hold.
    #[arg(long, default_value_t = Limits::DEFAULT_MAX_CONVERSATIONS_PER_PROCESS)]
    max_conversations_per_process: usize,
    /// Longest a stream may stay open; then it ends with OUT_OF_RANGE (STREAM_MAX_DURATION).
    #[arg(long, default_value_t = Limits::DEFAULT_MAX_STREAM_DURATION.into())]
    max_stream_duration: humantime::Duration,
    /// A stream with no message for this long ends with OUT_OF_RANGE (STREAM_IDLE).
    #[arg(long, default_value_t = Limits::DEFAULT_STREAM_IDLE_TIMEOUT.into())]
    stream_idle_timeout: humantime::Duration,
    /// A conversation with no message for this long ends with an `abandoned` scorecard.
    #[arg(long, default_value_t = Limits::DEFAULT_CONVERSATION_IDLE_TIMEOUT.into())]
    conversation_idle_timeout: humantime::Duration,
    /// Messages per second one conversation may send (partials included; bursts of as many);
    /// excess messages are rejected in band with a retry hint.
    #[arg(long, default_value_t = Limits::DEFAULT_MAX_MESSAGES_PER_SECOND)]
    max_messages_per_second: f64,
    /// Streams one authenticated tenant may open per second; 0 for no limit. Beyond it a new
    /// stream fails with RESOURCE_EXHAUSTED and a retry delay.
    #[arg(long, default_value_t = Limits::DEFAULT_STREAM_OPENS_PER_SECOND)]
    stream_opens_per_second: f64,
    /// Streams one tenant may open at once before the per-second rate applies.
    #[arg(long, default_value_t = Limits::DEFAULT_STREAM_OPEN_BURST)]
    stream_open_burst: u32,
    /// Limit unauthenticated callers' stream opens per peer IP address too. Off by default:
    /// behind a media gateway, a proxy or a mesh sidecar every call comes from one address.
    #[arg(long)]
    stream_open_rate_by_peer: bool,
    /// `ScoreTranscript` calls read and scored at once; more are refused at once with
    /// RESOURCE_EXHAUSTED and a retry delay.
    #[arg(long, default_value_t = Limits::DEFAULT_MAX_CONCURRENT_TRANSCRIPTS)]
    max_concurrent_transcripts: usize,
    /// Bytes of requests read off all streams and not yet scored: past it, streams are not read
    /// until the engine catches up (HTTP/2 flow control holds the senders).
    #[arg(long, default_value_t = Limits::DEFAULT_MAX_INFLIGHT_REQUEST_BYTES)]
    max_inflight_request_bytes: usize,
    /// `WatchAlerts` streams open at once.
    #[arg(long, default_value_t = Limits::DEFAULT_MAX_WATCHERS)]
    max_watchers: usize,
    /// A stream whose responses go unread this long ends with RESOURCE_EXHAUSTED.
    #[arg(long, default_value_t = Limits::DEFAULT_CLIENT_NOT_READING_TIMEOUT.into())]
    client_not_reading_timeout: humantime::Duration,
    /// HTTP/2 keepalive: the server pings each connection this often (R-KA-1).
    #[arg(long, default_value_t = ServerConfig::DEFAULT_KEEPALIVE_INTERVAL.into())]
    keepalive_interval: humantime::Duration,
    /// A connection whose ping goes unanswered this long is closed and its streams' state freed.
    #[arg(long, default_value_t = ServerConfig::DEFAULT_KEEPALIVE_TIMEOUT.into())]
    keepalive_timeout: humantime::Duration,
    /// Connections older than this are asked to reconnect, so load re-spreads after scaling.
    #[arg(long, default_value_t = ServerConfig::DEFAULT_MAX_CONNECTION_AGE.into())]
    max_connection_age: humantime::Duration,
    #[command(flatten)]
    ui: UiArgs,
}

/// Flags of the supervisor's floor page (`docs/ui.md`).
#[derive(Debug, clap::Args)]
pub(super) struct UiArgs {
    /// Address of the supervisor's floor page (read-only; the gRPC port's TLS and JWT apply),
    /// or `off`.
    #[arg(long, env = crate::config::ENV_UI_ADDR, default_value = "off", value_parser = super::parse_metrics_addr)]
    ui_addr: super::MetricsAddr,
    /// Show utterance text on the floor page, masked by the redactor (card numbers, security
    /// codes, expiry dates; best effort). Off by default: the text may hold personal data.
    #[arg(long, env = crate::config::ENV_UI_SHOW_TEXT)]
    ui_show_text: bool,
    /// A browser gets at most one update per conversation this often.
    #[arg(long, default_value_t = FloorConfig::DEFAULT_UPDATE_INTERVAL.into())]
    ui_update_interval: humantime::Duration,
    /// Browsers that may watch the floor at once.
    #[arg(long, default_value_t = FloorConfig::DEFAULT_MAX_VIEWERS)]
    ui_max_viewers: usize,
    /// Score points and utterances kept per conversation for its view on the page.
    #[arg(long, default_value_t = FloorConfig::DEFAULT_HISTORY)]
    ui_history: usize,
    /// With --ui-show-text, the latest utterances per conversation that keep their text (each
    /// cut to 1 KiB); older ones show only their behaviours.
    #[arg(long, default_value_t = FloorConfig::DEFAULT_TEXT_UTTERANCES)]
    ui_text_utterances: usize,
}

impl UiArgs {
    pub(super) fn validate(&self, problems: &mut super::Problems) {
        problems.check(
            *self.ui_update_interval >= Duration::from_millis(50),
            "--ui-update-interval must be at least 50ms",
        );
        problems.check(
            self.ui_max_viewers >= 1,
            "--ui-max-viewers must be at least 1",
        );
        problems.check(
            (1..=10_000).contains(&self.ui_history),
            "--ui-history must be between 1 and 10000",
        );
        problems.check(
            self.ui_text_utterances <= self.ui_history,
            "--ui-text-utterances must be at most --ui-history",
        );
    }

    /// The floor's address and configuration, or `None` when the page is off.
    pub(super) fn floor(&self) -> anyhow::Result<Option<(SocketAddr, crate::floor::FloorConfig)>> {
        let Some(addr) = self.ui_addr.0 else {
            return Ok(None);
        };
        Ok(Some((
            addr,
            crate::floor::FloorConfig {
                show_text: self.ui_show_text,
                update_interval: *self.ui_update_interval,
                max_viewers: self.ui_max_viewers,
                history: self.ui_history,
                text_utterances: self.ui_text_utterances,
                ..crate::floor::FloorConfig::default()
            },
        )))
    }
}

/// Live conversations per tenant when callers authenticate and no cap is given: a fifth of
/// the process's cap, so no one tenant can fill a pod.
const DEFAULT_TENANT_CAP_WITH_AUTHENTICATION: usize = 10_000;

/// The per-tenant cap on live conversations: as given, else on by default when callers
/// authenticate (tenants are then real), else none (0).
fn tenant_cap(given: Option<usize>, authenticated: bool) -> usize {
    given.unwrap_or(if authenticated {
        DEFAULT_TENANT_CAP_WITH_AUTHENTICATION
    } else {
        0
    })
}

/// What `hearken serve` does on a signal. No signal but SIGKILL (and the synchronous fault
/// signals a defect raises: SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT, SIGTRAP, SIGSYS) ends the
/// process without a drain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum OnSignal {
    /// Health NOT_SERVING, then streams told to go, then exit (R-DRAIN-1).
    Drain,
    /// Reload the rubric file (or log that there is none).
    Reload,
    /// Log it and carry on.
    Ignore,
}

/// The signals handled, by number (Linux numbering through `libc`).
#[cfg(unix)]
fn handled_signals() -> Vec<(String, i32, OnSignal)> {
    use OnSignal::*;
    let mut signals = vec![
        ("SIGTERM".to_owned(), libc::SIGTERM, Drain),
        ("SIGINT".to_owned(), libc::SIGINT, Drain),
        ("SIGQUIT".to_owned(), libc::SIGQUIT, Drain),
        ("SIGXCPU".to_owned(), libc::SIGXCPU, Drain),
        ("SIGXFSZ".to_owned(), libc::SIGXFSZ, Drain),
        ("SIGHUP".to_owned(), libc::SIGHUP, Reload),
        ("SIGUSR1".to_owned(), libc::SIGUSR1, Ignore),
        ("SIGUSR2".to_owned(), libc::SIGUSR2, Ignore),
        ("SIGALRM".to_owned(), libc::SIGALRM, Ignore),
        ("SIGVTALRM".to_owned(), libc::SIGVTALRM, Ignore),
        ("SIGPROF".to_owned(), libc::SIGPROF, Ignore),
        ("SIGIO".to_owned(), libc::SIGIO, Ignore),
        ("SIGPIPE".to_owned(), libc::SIGPIPE, Ignore),
    ];
    #[cfg(target_os = "linux")]
    {
        signals.push(("SIGPWR".to_owned(), libc::SIGPWR, Drain));
        signals.push(("SIGSTKFLT".to_owned(), libc::SIGSTKFLT, Ignore));
        for n in libc::SIGRTMIN()..=libc::SIGRTMAX() {
            signals.push((format!("SIGRT{n}"), n, Ignore));
        }
    }
    signals
}

/// Installs the signal handlers now (so none of these signals can kill the process once this
/// returns) and returns a future that handles them until one asks for a drain. SIGHUP notifies
/// `reload` when the server has a rubric file, and otherwise only says so.
pub(super) fn signals(
    reload: Option<Arc<tokio::sync::Notify>>,
) -> impl std::future::Future<Output = ()> + Send + 'static {
    #[cfg(unix)]
    let mut streams = {
        use tokio::signal::unix::{SignalKind, signal};
        use tokio_stream::StreamExt as _;
        let mut streams = tokio_stream::StreamMap::new();
        for (name, number, action) in handled_signals() {
            match signal(SignalKind::from_raw(number)) {
                Ok(s) => {
                    streams.insert(
                        name,
                        tokio_stream::wrappers::SignalStream::new(s).map(move |()| action),
                    );
                }
                Err(error) => tracing::warn!(signal = %name, %error, "cannot handle this signal"),
            }
        }
        streams
    };
    async move {
        #[cfg(unix)]
        {
            use tokio_stream::StreamExt as _;
            while let Some((name, action)) = streams.next().await {
                match action {
                    OnSignal::Drain => {
                        tracing::info!(signal = %name, "{name} received");
                        return;
                    }
                    OnSignal::Reload => match &reload {
                        Some(reload) => {
                            tracing::info!(signal = %name, "{name} received: reloading the rubric file");
                            reload.notify_one();
                        }
                        None => tracing::info!(
                            signal = %name,
                            "{name} received: no --rubric file, nothing to reload; still serving"
                        ),
                    },
                    OnSignal::Ignore => {
                        tracing::info!(signal = %name, "{name} received and ignored; still serving")
                    }
                }
            }
            std::future::pending::<()>().await;
        }
        #[cfg(not(unix))]
        {
            let _ = reload;
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

impl ServeArgs {
    /// Every flag out of range, in one error (R-CFG: no silent clamps).
    fn validate(&self) -> anyhow::Result<()> {
        let mut p = super::Problems::default();
        p.check(
            self.max_conversations_per_stream >= 1,
            "--max-conversations-per-stream must be at least 1",
        );
        p.check(
            self.max_conversations_per_process >= 1,
            "--max-conversations-per-process must be at least 1",
        );
        p.check(
            self.max_concurrent_transcripts >= 1,
            "--max-concurrent-transcripts must be at least 1",
        );
        p.check(
            self.max_inflight_request_bytes >= 1024,
            "--max-inflight-request-bytes must be at least 1024",
        );
        p.check(
            self.max_messages_per_second > 0.0 && self.max_messages_per_second.is_finite(),
            "--max-messages-per-second must be greater than 0",
        );
        p.check(
            self.stream_opens_per_second >= 0.0 && self.stream_opens_per_second.is_finite(),
            "--stream-opens-per-second must be 0 (no limit) or more",
        );
        p.check(
            self.stream_open_burst >= 1,
            "--stream-open-burst must be at least 1",
        );
        for (flag, value) in [
            ("--max-stream-duration", self.max_stream_duration),
            ("--stream-idle-timeout", self.stream_idle_timeout),
            (
                "--conversation-idle-timeout",
                self.conversation_idle_timeout,
            ),
            (
                "--client-not-reading-timeout",
                self.client_not_reading_timeout,
            ),
            ("--keepalive-interval", self.keepalive_interval),
            ("--keepalive-timeout", self.keepalive_timeout),
            ("--max-connection-age", self.max_connection_age),
        ] {
            p.check(!value.is_zero(), format!("{flag} must be above zero"));
        }
        p.check(
            self.drain_deadline >= self.drain_delay,
            "--drain-deadline must be at least --drain-delay",
        );
        self.ui.validate(&mut p);
        p.finish()
    }
}

/// TLS from the flags: certificate and key (and a client CA for mutual TLS), or none with
/// `--plaintext`; anything else is refused.
fn tls_of(args: &ServeArgs) -> anyhow::Result<Option<server::Tls>> {
    tls_files(
        (args.tls_cert.as_ref(), args.tls_key.as_ref()),
        args.tls_client_ca.as_ref(),
        args.plaintext,
        "choose how clients connect: --tls-cert and --tls-key for TLS (and --tls-client-ca \
         for mutual TLS), or --plaintext for h2c inside a mesh or on loopback",
    )
}

/// TLS read from a certificate and key file (and a client CA for mutual TLS), or none when
/// plaintext was chosen; neither or both is refused with `choose`. `serve` and the pipeline's
/// floor page take their files through this.
pub(super) fn tls_files(
    (cert, key): (Option<&PathBuf>, Option<&PathBuf>),
    client_ca: Option<&PathBuf>,
    plaintext: bool,
    choose: &str,
) -> anyhow::Result<Option<server::Tls>> {
    let read = |path: &PathBuf, what: &str| {
        std::fs::read(path)
            .with_context(|| format!("failed to read the TLS {what} {}", path.display()))
    };
    Ok(match (cert, key, plaintext) {
        (Some(cert), Some(key), false) => Some(server::Tls {
            cert_pem: read(cert, "certificate")?,
            key_pem: read(key, "key")?,
            client_ca_pem: client_ca.map(|ca| read(ca, "client CA")).transpose()?,
        }),
        (None, None, true) => None,
        _ => anyhow::bail!("{choose}"),
    })
}

impl ServeArgs {
    /// The service limits the flags set.
    fn set_limits(&self, limits: &mut crate::service::Limits, authenticated: bool) {
        let args = self;
        limits.max_conversations_per_stream = args.max_conversations_per_stream;
        limits.max_conversations_per_process = args.max_conversations_per_process;
        limits.max_conversations_per_tenant =
            tenant_cap(args.max_conversations_per_tenant, authenticated);
        limits.max_concurrent_transcripts = args.max_concurrent_transcripts;
        limits.max_watchers = args.max_watchers;
        limits.max_inflight_request_bytes = args.max_inflight_request_bytes;
        limits.stream_open_rate_by_peer = args.stream_open_rate_by_peer;
        limits.max_stream_duration = *args.max_stream_duration;
        limits.stream_idle_timeout = *args.stream_idle_timeout;
        limits.conversation_idle_timeout = *args.conversation_idle_timeout;
        limits.client_not_reading_timeout = *args.client_not_reading_timeout;
        limits.max_messages_per_second = args.max_messages_per_second;
        limits.stream_opens_per_second = args.stream_opens_per_second;
        limits.stream_open_burst = args.stream_open_burst;
    }
}

/// A running task's handle, and what stops it.
type Task<E> = (
    tokio::sync::oneshot::Sender<()>,
    Option<tokio::task::JoinHandle<Result<(), E>>>,
);

/// `/metrics` on `addr`, if asked for.
async fn scrape(
    addr: super::MetricsAddr,
    telemetry: &Telemetry,
) -> anyhow::Result<Task<std::io::Error>> {
    let (stop_scrape, scrape_stopped) = tokio::sync::oneshot::channel::<()>();
    let scrape = match addr.0 {
        Some(metrics_addr) => {
            let metrics_listener = tokio::net::TcpListener::bind(metrics_addr)
                .await
                .with_context(|| format!("failed to listen on {metrics_addr} for /metrics"))?;
            let metrics_addr = metrics_listener.local_addr()?;
            tracing::info!(addr = %metrics_addr, "metrics at /metrics");
            let registry = telemetry.registry.clone();
            Some(tokio::spawn(crate::telemetry::serve_scrape(
                metrics_listener,
                registry,
                async move {
                    let _ = scrape_stopped.await;
                },
            )))
        }
        None => None,
    };
    Ok((stop_scrape, scrape))
}

/// The floor page, if asked for: it watches the server's conversations (`config.floor`).
async fn floor(ui: &UiArgs, config: &mut ServerConfig) -> anyhow::Result<Task<anyhow::Error>> {
    let (stop_ui, ui_stopped) = tokio::sync::oneshot::channel::<()>();
    let started = start_floor(
        ui,
        &config.metrics,
        config.tls.clone(),
        config.jwt.clone(),
        ui_stopped,
    )
    .await?;
    let ui = started.map(|(floor, task)| {
        config.floor = Some(floor);
        task
    });
    Ok((stop_ui, ui))
}

/// Starts the floor page when `--ui-addr` asks for it: binds its port and serves it until
/// `stopped`; returns the floor (to tell it the conversations) and the page's task. Used by
/// `serve` and by `pipeline`.
pub(super) async fn start_floor(
    ui: &UiArgs,
    metrics: &Arc<crate::telemetry::Metrics>,
    tls: Option<server::Tls>,
    jwt: Option<Arc<crate::service::auth::JwtVerifier>>,
    stopped: tokio::sync::oneshot::Receiver<()>,
) -> anyhow::Result<
    Option<(
        Arc<crate::floor::Floor>,
        tokio::task::JoinHandle<anyhow::Result<()>>,
    )>,
> {
    let Some((ui_addr, floor_config)) = ui.floor()? else {
        return Ok(None);
    };
    let ui_listener = tokio::net::TcpListener::bind(ui_addr)
        .await
        .with_context(|| format!("failed to listen on {ui_addr} for the floor page"))?;
    let ui_addr = ui_listener.local_addr()?;
    if floor_config.show_text {
        tracing::warn!(
            "the floor page shows utterance text (masked for card data, best effort); it may still hold personal data"
        );
    }
    let floor = crate::floor::Floor::new(floor_config, Arc::clone(metrics));
    tracing::info!(addr = %ui_addr, tls = tls.is_some(), "floor page");
    let task = tokio::spawn(crate::floor::serve(
        ui_listener,
        Arc::clone(&floor),
        tls,
        jwt,
        async move {
            let _ = stopped.await;
        },
    ));
    Ok(Some((floor, task)))
}

pub(super) async fn run(args: ServeArgs, log_format: LogFormat) -> anyhow::Result<ExitCode> {
    args.validate()?;
    let telemetry = Telemetry::init_serve(log_format, "info")?;
    let rubric = super::load_rubric(args.rubric.as_deref())?;
    let mut config = ServerConfig::new(Arc::new(rubric));
    config.metrics = Arc::clone(&telemetry.metrics);
    config.log_text = args.log_text;
    config.tls = tls_of(&args)?;
    if let Some(jwks) = &args.jwt_jwks {
        let text = std::fs::read_to_string(jwks)
            .with_context(|| format!("failed to read the JWKS {}", jwks.display()))?;
        let verifier = crate::service::auth::JwtVerifier::from_jwks(
            &text,
            args.jwt_issuer.as_deref().unwrap_or_default(),
            args.jwt_audience.as_deref().unwrap_or_default(),
            &args.jwt_tenant_claim,
        )
        .with_context(|| format!("JWKS {} refused", jwks.display()))?;
        config.jwt = Some(Arc::new(verifier));
    }
    tracing::info!(
        jwt = config.jwt.is_some(),
        tls = config.tls.is_some(),
        mutual_tls = config
            .tls
            .as_ref()
            .is_some_and(|t| t.client_ca_pem.is_some()),
        "transport security"
    );
    config.drain_delay = *args.drain_delay;
    config.drain_deadline = *args.drain_deadline;
    config.max_connection_age = *args.max_connection_age;
    config.keepalive_interval = *args.keepalive_interval;
    config.keepalive_timeout = *args.keepalive_timeout;
    config.rubric_file = args.rubric.clone();
    config.rubric_poll = *args.rubric_poll;
    let authenticated = config.jwt.is_some()
        || config
            .tls
            .as_ref()
            .is_some_and(|t| t.client_ca_pem.is_some());
    args.set_limits(&mut config.limits, authenticated);
    let reload = config
        .rubric_file
        .is_some()
        .then(|| Arc::clone(&config.reload));
    let shutdown = signals(reload);
    let listener = tokio::net::TcpListener::bind(args.addr)
        .await
        .with_context(|| format!("failed to listen on {}", args.addr))?;
    let addr = listener.local_addr()?;
    let (stop_scrape, scrape) = scrape(args.metrics_addr, &telemetry).await?;
    let (stop_ui, ui) = floor(&args.ui, &mut config).await?;
    tracing::info!(%addr, version = env!("CARGO_PKG_VERSION"), "hearken listening");
    let result = server::run(listener, config, shutdown).await;
    let _ = stop_scrape.send(());
    let _ = stop_ui.send(());
    if let Some(scrape) = scrape {
        let _ = tokio::time::timeout(Duration::from_secs(1), scrape).await;
    }
    if let Some(ui) = ui {
        let _ = tokio::time::timeout(Duration::from_secs(2), ui).await;
    }
    // The exporters flush with blocking calls: off the runtime's worker threads.
    let _ = tokio::task::spawn_blocking(move || telemetry.shutdown()).await;
    result?;
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tenants_are_capped_by_default_only_when_they_authenticate() {
        assert_eq!(
            tenant_cap(None, true),
            DEFAULT_TENANT_CAP_WITH_AUTHENTICATION
        );
        assert_eq!(tenant_cap(None, false), 0);
        assert_eq!(
            tenant_cap(Some(0), true),
            0,
            "0 still means no cap when asked for"
        );
        assert_eq!(tenant_cap(Some(7), false), 7);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn every_catchable_terminating_signal_is_handled() {
        let handled = handled_signals();
        for (name, _, action) in &handled {
            match name.as_str() {
                "SIGTERM" | "SIGINT" | "SIGQUIT" => assert_eq!(*action, OnSignal::Drain),
                "SIGHUP" => assert_eq!(*action, OnSignal::Reload),
                _ => {}
            }
        }
        for must in [
            "SIGUSR1", "SIGUSR2", "SIGALRM", "SIGPIPE", "SIGXCPU", "SIGPWR",
        ] {
            assert!(handled.iter().any(|(n, _, _)| n == must), "{must}");
        }
    }
}

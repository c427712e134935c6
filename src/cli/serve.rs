//! `hearken serve`: the gRPC service, until SIGTERM or SIGINT, then a graceful drain.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;

use crate::config::{ENV_ADDR, ENV_DRAIN_DEADLINE, ENV_DRAIN_DELAY, ENV_RUBRIC};
use crate::server::{self, ServerConfig};

/// Flags of `hearken serve`. Durations take units: `500ms`, `30s`, `10m`, `4h`.
#[derive(Debug, clap::Args)]
pub(super) struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = ENV_ADDR, default_value = "0.0.0.0:50051")]
    addr: SocketAddr,
    /// Rubric file (TOML) laid over the embedded default: extra profiles, changed thresholds.
    /// Reloaded on SIGHUP and when it changes; a file that does not validate is refused.
    #[arg(long, env = ENV_RUBRIC)]
    rubric: Option<PathBuf>,
    /// How often the rubric file is checked for changes (0s: only on SIGHUP).
    #[arg(long, default_value = "5s", value_parser = humantime::parse_duration)]
    rubric_poll: Duration,
    /// After SIGTERM, how long health reports NOT_SERVING before open streams are ended.
    #[arg(long, env = ENV_DRAIN_DELAY, default_value = "5s", value_parser = humantime::parse_duration)]
    drain_delay: Duration,
    /// After SIGTERM, exit by this time whatever is still open.
    #[arg(long, env = ENV_DRAIN_DEADLINE, default_value = "25s", value_parser = humantime::parse_duration)]
    drain_deadline: Duration,
    /// Live conversations one stream may carry.
    #[arg(long, default_value_t = 10_000)]
    max_conversations_per_stream: usize,
    /// Live conversations the process may hold.
    #[arg(long, default_value_t = 50_000)]
    max_conversations_per_process: usize,
    /// Longest a stream may stay open; then it ends with OUT_OF_RANGE (STREAM_MAX_DURATION).
    #[arg(long, default_value = "4h", value_parser = humantime::parse_duration)]
    max_stream_duration: Duration,
    /// A stream with no message for this long ends with OUT_OF_RANGE (STREAM_IDLE).
    #[arg(long, default_value = "10m", value_parser = humantime::parse_duration)]
    stream_idle_timeout: Duration,
    /// A conversation with no message for this long ends with an `abandoned` scorecard.
    #[arg(long, default_value = "30m", value_parser = humantime::parse_duration)]
    conversation_idle_timeout: Duration,
    /// Messages per second one conversation may send (partials included; bursts of as many);
    /// excess messages are rejected in band with a retry hint.
    #[arg(long, default_value_t = 50.0)]
    max_messages_per_second: f64,
    /// A stream whose responses go unread this long ends with RESOURCE_EXHAUSTED.
    #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
    client_not_reading_timeout: Duration,
    /// Connections older than this are asked to reconnect, so load re-spreads after scaling.
    #[arg(long, default_value = "30m", value_parser = humantime::parse_duration)]
    max_connection_age: Duration,
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => tracing::info!("SIGTERM received"),
                    _ = tokio::signal::ctrl_c() => tracing::info!("SIGINT received"),
                }
            }
            Err(error) => {
                tracing::warn!(%error, "cannot listen for SIGTERM; only SIGINT stops the server");
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

pub(super) async fn run(args: ServeArgs) -> anyhow::Result<ExitCode> {
    let rubric = super::load_rubric(args.rubric.as_deref())?;
    let mut config = ServerConfig::new(Arc::new(rubric));
    config.drain_delay = args.drain_delay;
    config.drain_deadline = args.drain_deadline;
    config.max_connection_age = args.max_connection_age;
    config.rubric_file = args.rubric.clone();
    config.rubric_poll = args.rubric_poll;
    let limits = &mut config.limits;
    limits.max_conversations_per_stream = args.max_conversations_per_stream;
    limits.max_conversations_per_process = args.max_conversations_per_process;
    limits.max_stream_duration = args.max_stream_duration;
    limits.stream_idle_timeout = args.stream_idle_timeout;
    limits.conversation_idle_timeout = args.conversation_idle_timeout;
    limits.client_not_reading_timeout = args.client_not_reading_timeout;
    anyhow::ensure!(
        args.max_messages_per_second > 0.0,
        "--max-messages-per-second must be greater than 0"
    );
    limits.max_messages_per_second = args.max_messages_per_second;
    let listener = tokio::net::TcpListener::bind(args.addr)
        .await
        .with_context(|| format!("failed to listen on {}", args.addr))?;
    let addr = listener.local_addr()?;
    tracing::info!(%addr, version = env!("CARGO_PKG_VERSION"), "hearken listening");
    server::run(listener, config, shutdown_signal()).await?;
    Ok(ExitCode::SUCCESS)
}

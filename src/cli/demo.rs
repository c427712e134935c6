//! `hearken demo`: the first thing to run. Starts an in-process server on a loopback port,
//! streams the bundled sample calls through it over real gRPC at an accelerated pace, and shows
//! live scores, alerts and a scorecard per call.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;

use super::replay::{self, Output};
use crate::engine::Rubric;
use crate::proto::v1::listening_service_client::ListeningServiceClient;
use crate::samples::DEMO_CALLS;
use crate::server::{self, ServerConfig};
use crate::transcript;

/// Flags of `hearken demo`.
#[derive(Debug, clap::Args)]
pub(super) struct DemoArgs {
    /// Pace: 25 plays the calls 25 times faster than real time; 1 in real time; 0 as fast as
    /// possible.
    #[arg(long, default_value_t = 25.0)]
    speed: f64,
    /// Show only alerts and scorecards.
    #[arg(long)]
    quiet: bool,
}

pub(super) async fn run(args: DemoArgs) -> anyhow::Result<ExitCode> {
    let calls: Vec<_> = transcript::Reader::new(DEMO_CALLS.as_bytes())
        .collect::<Result<_, _>>()
        .context("bundled calls are malformed")?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .context("failed to bind a loopback port")?;
    let addr = listener.local_addr()?;
    let mut config = ServerConfig::new(Arc::new(Rubric::embedded()));
    config.drain_delay = Duration::ZERO;
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(server::run(listener, config, async move {
        let _ = stop_rx.await;
    }));
    let mut client = ListeningServiceClient::connect(format!("http://{addr}"))
        .await
        .context("failed to connect to the in-process server")?;

    println!(
        "hearken demo: {} sample calls streamed over gRPC to an in-process server at {addr}, {}× real time",
        calls.len(),
        args.speed
    );
    println!(
        "(bundled fictional calls; agent and customer speech as a recogniser would deliver it)\n"
    );
    let mut summary = Vec::new();
    for call in &calls {
        println!(
            "━━ call {} ━━ {} utterances",
            call.conversation_id,
            call.utterances.len()
        );
        let output = Output {
            json: false,
            show_text: true,
            quiet: args.quiet,
        };
        let result = replay::stream_call(&mut client, call, args.speed, output).await?;
        println!("     {}\n", replay::latency_summary(&result.latencies));
        summary.push((call.conversation_id.clone(), result));
    }
    println!("━━ summary ━━ (a component without evidence yet shows \"-\")");
    println!(
        "  {:<28} {:>7} │ {:>8} {:>7} {:>7} {:>7} {:>7} {:>7} {:>7} │ {:>6}",
        "call",
        "overall",
        "patience",
        "talk",
        "inquiry",
        "acknow",
        "empathy",
        "underst",
        "cust.ex",
        "alerts"
    );
    for (id, result) in &summary {
        let Some(card) = &result.scorecard else {
            continue;
        };
        let score = card.score.clone().unwrap_or_default();
        let component = |i: usize| {
            score
                .components
                .get(i)
                .filter(|c| c.confidence > 0.0)
                .map_or("-".to_string(), |c| format!("{:.1}", c.score))
        };
        println!(
            "  {:<28} {:>7.1} │ {:>8} {:>7} {:>7} {:>7} {:>7} {:>7} {:>7} │ {:>6}",
            id,
            score.overall,
            component(0),
            component(1),
            component(2),
            component(3),
            component(4),
            component(5),
            component(6),
            card.alerts.len()
        );
    }
    let _ = stop_tx.send(());
    server.await??;
    Ok(ExitCode::SUCCESS)
}

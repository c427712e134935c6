//! `hearken demo`: the first thing to run. Starts an in-process server on a loopback port,
//! streams the bundled sample calls through it over real gRPC at an accelerated pace, and shows
//! live scores, alerts and a scorecard per call.
//!
//! `hearken demo --ui` serves the supervisor's floor page as well and keeps a small floor of
//! calls playing (the sample calls, several at once, with fictional agents and queues) until
//! Ctrl-C, so a newcomer can watch the page.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;

use super::client::{self, Output};
use crate::proto::v1::listening_service_client::ListeningServiceClient;
use crate::samples::DEMO_CALLS;
use crate::server::{self, ServerConfig};
use crate::transcript;

/// Flags of `hearken demo`.
#[derive(Debug, clap::Args)]
pub(super) struct DemoArgs {
    /// Pace: 25 plays the calls 25 times faster than real time; 1 in real time; 0 as fast as
    /// possible. Default: 25, or 2 with --ui (a floor is watched nearer real time).
    #[arg(long)]
    speed: Option<f64>,
    /// Show only alerts and scorecards.
    #[arg(long)]
    quiet: bool,
    /// Serve the supervisor's floor page and keep calls playing on it until Ctrl-C.
    #[arg(long)]
    ui: bool,
    /// Where the floor page is served (with --ui).
    #[arg(long, default_value = "127.0.0.1:8080", requires = "ui")]
    ui_addr: std::net::SocketAddr,
    /// Show the (fictional) calls' text on the page, masked by the redactor (with --ui).
    #[arg(long, requires = "ui")]
    ui_show_text: bool,
    /// Rounds of calls to play on the floor (with --ui); 0 plays until Ctrl-C.
    #[arg(long, default_value_t = 0, requires = "ui")]
    rounds: u32,
}

/// Fictional agents and queues for the floor demo.
const AGENTS: [&str; 8] = [
    "Priya", "Marcus", "Lena", "Tomás", "Aiko", "Sam", "Noor", "Jonas",
];
const QUEUES: [&str; 3] = ["billing", "internet", "delivery"];
/// Copies of each sample call per round on the floor.
const COPIES: usize = 4;

/// The table of every call's scores after the demo.
fn print_summary(summary: &[(String, client::CallResult)]) {
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
    for (id, result) in summary {
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
}

pub(super) async fn run(args: DemoArgs) -> anyhow::Result<ExitCode> {
    let calls: Vec<_> = transcript::Reader::new(DEMO_CALLS.as_bytes())
        .collect::<Result<_, _>>()
        .context("bundled calls are malformed")?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .context("failed to bind a loopback port")?;
    let addr = listener.local_addr()?;
    let mut config = ServerConfig::new(Arc::new(super::load_rubric(None)?));
    config.drain_delay = Duration::ZERO;
    if args.ui {
        return floor_demo(args, calls, listener, config).await;
    }
    let speed = args.speed.unwrap_or(25.0);
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
        speed
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
            silent: false,
        };
        let result = client::stream_call(&mut client, call, speed, output).await?;
        println!("     {}\n", client::latency_summary(&result.latencies));
        summary.push((call.conversation_id.clone(), result));
    }
    print_summary(&summary);
    let _ = stop_tx.send(());
    server.await??;
    Ok(ExitCode::SUCCESS)
}

/// `demo --ui`: the server and the floor page, with rounds of sample calls playing at once.
/// What the floor demo plays, and where to watch it.
fn announce(
    args: &DemoArgs,
    calls: usize,
    ui_addr: std::net::SocketAddr,
    addr: std::net::SocketAddr,
    speed: f64,
) {
    println!("hearken demo: the supervisor's floor is at  http://{ui_addr}/");
    println!(
        "  {} calls at a time ({} sample calls × {COPIES}) streamed over gRPC to {addr} at {speed}× real time; {}",
        calls * COPIES,
        calls,
        if args.rounds == 0 {
            "Ctrl-C to stop".to_string()
        } else {
            format!("{} round(s)", args.rounds)
        }
    );
    println!(
        "  text is {} (fictional calls; --ui-show-text shows it masked)\n",
        if args.ui_show_text { "shown" } else { "hidden" }
    );
}

/// A floor-demo call played: its id, its agent, and how it went.
type Played = (String, &'static str, anyhow::Result<client::CallResult>);

/// One round of the floor demo: every sample call `COPIES` times, with agents and queues,
/// staggered, each streamed as a task.
fn round_of_calls(
    calls: &[transcript::Transcript],
    round: u32,
    client: &ListeningServiceClient<tonic::transport::Channel>,
    speed: f64,
) -> tokio::task::JoinSet<Played> {
    let mut tasks = tokio::task::JoinSet::new();
    for copy in 0..COPIES {
        for (i, call) in calls.iter().enumerate() {
            let n = copy * calls.len() + i;
            let mut call = call.clone();
            call.conversation_id = format!("{}-{round}-{}", call.conversation_id, copy + 1);
            let agent = AGENTS[(n + round as usize) % AGENTS.len()];
            call.start.metadata.insert("agent".into(), agent.into());
            call.start
                .metadata
                .insert("queue".into(), QUEUES[i % QUEUES.len()].into());
            let mut client = client.clone();
            // Staggered, so the floor does not move in step.
            let delay = Duration::from_millis((n as u64 * 2_500) % 20_000);
            tasks.spawn(async move {
                if speed > 0.0 {
                    tokio::time::sleep(delay.div_f64(speed)).await;
                }
                let output = Output {
                    json: false,
                    show_text: false,
                    quiet: true,
                    silent: true,
                };
                let result = client::stream_call(&mut client, &call, speed, output).await;
                (call.conversation_id, agent, result)
            });
        }
    }
    tasks
}

async fn floor_demo(
    args: DemoArgs,
    calls: Vec<transcript::Transcript>,
    listener: tokio::net::TcpListener,
    mut config: ServerConfig,
) -> anyhow::Result<ExitCode> {
    let addr = listener.local_addr()?;
    let ui_listener = tokio::net::TcpListener::bind(args.ui_addr)
        .await
        .with_context(|| {
            format!(
                "failed to listen on {} for the floor page (choose another with --ui-addr)",
                args.ui_addr
            )
        })?;
    let ui_addr = ui_listener.local_addr()?;
    let floor_config = crate::floor::FloorConfig {
        show_text: args.ui_show_text,
        ..crate::floor::FloorConfig::default()
    };
    let floor = crate::floor::Floor::new(floor_config, Arc::clone(&config.metrics));
    config.floor = Some(Arc::clone(&floor));
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut server_stop = stop_rx.clone();
    let server = tokio::spawn(server::run(listener, config, async move {
        let _ = server_stop.wait_for(|s| *s).await;
    }));
    let mut ui_stop = stop_rx.clone();
    let ui = tokio::spawn(crate::floor::serve(
        ui_listener,
        floor,
        None,
        None,
        async move {
            let _ = ui_stop.wait_for(|s| *s).await;
        },
    ));
    let client = ListeningServiceClient::connect(format!("http://{addr}"))
        .await
        .context("failed to connect to the in-process server")?;
    let speed = args.speed.unwrap_or(2.0);
    announce(&args, calls.len(), ui_addr, addr, speed);
    let mut round = 0u32;
    let stop = tokio::signal::ctrl_c();
    tokio::pin!(stop);
    let mut failed = 0usize;
    'rounds: while args.rounds == 0 || round < args.rounds {
        round += 1;
        let mut tasks = round_of_calls(&calls, round, &client, speed);
        loop {
            tokio::select! {
                _ = &mut stop => break 'rounds,
                next = tasks.join_next() => match next {
                    None => break,
                    Some(Ok((id, agent, Ok(result)))) => {
                        let (score, alerts) = result.scorecard.as_ref().map_or((f64::NAN, 0), |c| {
                            (c.score.as_ref().map_or(f64::NAN, |s| s.overall), c.alerts.len())
                        });
                        println!("  {id:<36} agent {agent:<7} score {score:>5.1}  {alerts} alert(s)");
                    }
                    Some(Ok((id, _, Err(error)))) => {
                        failed += 1;
                        eprintln!("  {id}: {error:#}");
                    }
                    Some(Err(error)) => anyhow::bail!("a demo call failed: {error}"),
                },
            }
        }
    }
    println!("\nstopping: the floor page closes with the server");
    let _ = stop_tx.send(true);
    server.await??;
    ui.await??;
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

//! `hearken loadgen --addr URL`: N concurrent calls over M connections, each call its own
//! stream as a contact-centre integration opens them, utterances taken from the bundled calls
//! (renamed per call and round), at a fixed total rate or as fast as a window of outstanding
//! utterances allows, for a fixed duration. Reports throughput and the latency from sending an
//! utterance to receiving its update (HDR histogram, microseconds), and errors.
//!
//! Bounded: at most `--duration` of sending plus `--drain` of waiting for what is outstanding;
//! it talks only to the address given (loopback by default).

use std::collections::VecDeque;
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context as _;
use hdrhistogram::Histogram;
use serde::Serialize;
use tokio::sync::{Semaphore, mpsc};
use tokio::time::Instant;
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::Channel;

use crate::engine::{self, End, Event};
use crate::proto::v1::listening_service_client::ListeningServiceClient;
use crate::proto::v1::*;
use crate::samples::DEMO_CALLS;
use crate::transcript::{self, Transcript};

/// Flags of `hearken loadgen`.
#[derive(Debug, Clone, clap::Args)]
pub(super) struct LoadgenArgs {
    /// The server.
    #[arg(long, default_value = "http://127.0.0.1:50051")]
    addr: String,
    /// Concurrent calls (one stream each).
    #[arg(long, default_value_t = 100)]
    calls: usize,
    /// HTTP/2 connections the calls are spread over.
    #[arg(long, default_value_t = 4)]
    connections: usize,
    /// Utterances per second in total (0: as fast as the window allows).
    #[arg(long, default_value_t = 0.0)]
    rate: f64,
    /// Utterances a call may have outstanding (sent, update not yet received).
    #[arg(long, default_value_t = 4)]
    window: usize,
    /// How long to send, in seconds.
    #[arg(long, default_value_t = 10.0)]
    duration: f64,
    /// How long to wait for outstanding updates after sending stops, in seconds.
    #[arg(long, default_value_t = 5.0)]
    drain: f64,
    /// Print the result as JSON.
    #[arg(long)]
    json: bool,
}

/// Latency percentiles in microseconds.
#[derive(Debug, Serialize)]
struct Latency {
    p50: u64,
    p90: u64,
    p99: u64,
    p999: u64,
    max: u64,
}

/// The result of a run.
#[derive(Debug, Serialize)]
struct Report {
    throughput: f64,
    latency_us: Latency,
    errors: u64,
    /// Streams the server refused for now with a retry delay (admission), retried after it.
    refusals: u64,
    reconnects: u64,
    rejections: u64,
    sent: u64,
    received: u64,
    calls: usize,
    connections: usize,
    rate: f64,
    duration_s: f64,
}

#[derive(Debug, Default)]
struct Counters {
    sent: AtomicU64,
    received: AtomicU64,
    errors: AtomicU64,
    refusals: AtomicU64,
    rejections: AtomicU64,
    reconnects: AtomicU64,
}

/// Each call's messages, cycling through the sample calls under new conversation ids.
fn script(
    samples: &[Transcript],
    call: usize,
    round: usize,
) -> (String, Vec<StreamConversationsRequest>) {
    use stream_conversations_request::Payload;
    let t = &samples[(call + round) % samples.len()];
    let id = format!("load-{call}-{round}");
    let mut out = vec![StreamConversationsRequest {
        conversation_id: id.clone(),
        payload: Some(Payload::Start(ConversationStart::default())),
    }];
    for e in engine::transcript_events(
        t.utterances
            .iter()
            .filter(|u| !u.partial)
            .cloned()
            .collect(),
        t.signals.clone(),
        End::default(),
    ) {
        let payload = match e {
            Event::Utterance(u) => Payload::Utterance(crate::proto::utterance_to_proto(&u)),
            Event::Signal(s) => Payload::Signal(crate::proto::signal_to_proto(&s)),
            Event::End(..) => Payload::End(ConversationEnd::default()),
        };
        out.push(StreamConversationsRequest {
            conversation_id: id.clone(),
            payload: Some(payload),
        });
    }
    (id, out)
}

/// One call for the whole run, following the client contract (docs/operations.md): when its
/// stream fails with a retryable status (UNAVAILABLE while a server drains, OUT_OF_RANGE at a
/// stream limit, a broken connection), it backs off and starts the conversation again on a new
/// stream. Each failure counts as an error and each new stream as a reconnect.
#[allow(clippy::too_many_arguments)]
async fn run_call(
    channel: Channel,
    call: usize,
    samples: Arc<Vec<Transcript>>,
    period: Option<Duration>,
    window: usize,
    start_at: Instant,
    stop_at: Instant,
    drain_until: Instant,
    histogram: Arc<Mutex<Histogram<u64>>>,
    counters: Arc<Counters>,
) {
    let mut round = 0;
    let mut attempt = 0;
    while let Some(status) = run_stream(
        channel.clone(),
        call,
        &mut round,
        &samples,
        period,
        window,
        start_at,
        stop_at,
        drain_until,
        &histogram,
        &counters,
    )
    .await
    {
        // The server pacing admissions (RESOURCE_EXHAUSTED with a retry delay) is not an error
        // of the call: counted apart, and waited out as asked.
        if super::client::refused_for_now(&status) {
            counters.refusals.fetch_add(1, Ordering::Relaxed);
        } else {
            counters.errors.fetch_add(1, Ordering::Relaxed);
        }
        attempt += 1;
        if !super::client::retryable(&status) || Instant::now() >= stop_at {
            return;
        }
        let wait = super::client::backoff(attempt, &status);
        if Instant::now() + wait >= stop_at {
            return;
        }
        tokio::time::sleep(wait).await;
        counters.reconnects.fetch_add(1, Ordering::Relaxed);
    }
}

/// Reads a stream's answers until `drain_until`: each final update (or rejection) answers the
/// oldest utterance outstanding, its latency recorded and its window place given back; a
/// failure is kept in `failure` and closes the window (which stops the sender).
#[allow(clippy::too_many_arguments)]
async fn receive(
    mut inbound: tonic::Streaming<StreamConversationsResponse>,
    drain_until: Instant,
    pending: Arc<Mutex<VecDeque<Instant>>>,
    permits: Arc<Semaphore>,
    histogram: Arc<Mutex<Histogram<u64>>>,
    counters: Arc<Counters>,
    failure: Arc<Mutex<Option<tonic::Status>>>,
) {
    loop {
        let next = tokio::time::timeout_at(drain_until, inbound.message()).await;
        let response = match next {
            Ok(Ok(Some(r))) => r,
            Ok(Ok(None)) | Err(_) => break,
            Ok(Err(status)) => {
                *failure.lock().expect("not poisoned") = Some(status);
                permits.close(); // stops the sender
                break;
            }
        };
        use stream_conversations_response::Payload;
        let answered = match &response.payload {
            Some(Payload::Update(u)) if !u.partial => true,
            Some(Payload::Rejection(_)) => {
                counters.rejections.fetch_add(1, Ordering::Relaxed);
                true
            }
            _ => false,
        };
        if answered {
            let sent = pending.lock().expect("not poisoned").pop_front();
            if let Some(sent) = sent {
                let micros = sent.elapsed().as_micros().max(1) as u64;
                let _ = histogram.lock().expect("not poisoned").record(micros);
                counters.received.fetch_add(1, Ordering::Relaxed);
                permits.add_permits(1);
            }
        }
    }
}

/// One stream of a call: returns the status it failed with, or `None` when the run ended.
#[allow(clippy::too_many_arguments)]
async fn run_stream(
    channel: Channel,
    call: usize,
    round: &mut usize,
    samples: &[Transcript],
    period: Option<Duration>,
    window: usize,
    start_at: Instant,
    stop_at: Instant,
    drain_until: Instant,
    histogram: &Arc<Mutex<Histogram<u64>>>,
    counters: &Arc<Counters>,
) -> Option<tonic::Status> {
    let (tx, rx) = mpsc::channel(window * 2 + 4);
    let mut client = ListeningServiceClient::new(channel);
    let inbound = match client.stream_conversations(ReceiverStream::new(rx)).await {
        Ok(response) => response.into_inner(),
        Err(status) => return Some(status),
    };
    let pending: Arc<Mutex<VecDeque<Instant>>> = Arc::default();
    let permits = Arc::new(Semaphore::new(window));
    let failure: Arc<Mutex<Option<tonic::Status>>> = Arc::default();
    let receiver = tokio::spawn(receive(
        inbound,
        drain_until,
        Arc::clone(&pending),
        Arc::clone(&permits),
        Arc::clone(histogram),
        Arc::clone(counters),
        Arc::clone(&failure),
    ));
    tokio::time::sleep_until(start_at).await;
    let begin = start_at.max(Instant::now());
    let mut ticker = period.map(|p| {
        // Spread the calls' ticks over the period so the total rate is smooth.
        let offset = p.mul_f64((call as f64 * 0.618_034) % 1.0);
        let mut t = tokio::time::interval_at(begin + offset, p);
        t.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        t
    });
    'calls: while Instant::now() < stop_at {
        let (_, messages) = script(samples, call, *round);
        *round += 1;
        for message in messages {
            let is_utterance = matches!(
                message.payload,
                Some(stream_conversations_request::Payload::Utterance(_))
            );
            if is_utterance {
                if let Some(t) = ticker.as_mut() {
                    tokio::select! {
                        _ = t.tick() => {}
                        () = tokio::time::sleep_until(stop_at) => break 'calls,
                    }
                }
                let permit = tokio::select! {
                    p = permits.acquire() => p,
                    () = tokio::time::sleep_until(stop_at) => break 'calls,
                };
                let Ok(permit) = permit else { break 'calls };
                permit.forget();
                pending
                    .lock()
                    .expect("not poisoned")
                    .push_back(Instant::now());
                counters.sent.fetch_add(1, Ordering::Relaxed);
            }
            if tx.send(message).await.is_err() {
                break 'calls;
            }
        }
    }
    finish(receiver, tx, &pending, &failure, drain_until).await
}

/// The end of a stream's run: its failure if it had one, else once the outstanding updates
/// came (bounded by the drain deadline) the request stream closes (`tx`) and `None`.
async fn finish(
    receiver: tokio::task::JoinHandle<()>,
    tx: mpsc::Sender<StreamConversationsRequest>,
    pending: &Mutex<VecDeque<Instant>>,
    failure: &Mutex<Option<tonic::Status>>,
    drain_until: Instant,
) -> Option<tonic::Status> {
    let failed = || failure.lock().expect("not poisoned").take();
    if let Some(status) = failed() {
        receiver.abort();
        return Some(status);
    }
    while !pending.lock().expect("not poisoned").is_empty()
        && Instant::now() < drain_until
        && !receiver.is_finished()
    {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    drop(tx);
    if receiver.is_finished()
        && let Some(status) = failed()
    {
        return Some(status);
    }
    receiver.abort();
    None
}

impl LoadgenArgs {
    /// Every flag out of range, named, in one error.
    fn validate(&self) -> anyhow::Result<()> {
        let mut problems = super::Problems::default();
        problems.check(self.calls >= 1, "--calls must be at least 1");
        problems.check(self.connections >= 1, "--connections must be at least 1");
        problems.check(self.window >= 1, "--window must be at least 1");
        problems.check(
            self.duration > 0.0 && self.duration <= 24.0 * 3600.0,
            "--duration must be within (0, 86400] seconds",
        );
        problems.check(
            self.drain >= 0.0 && self.drain <= 3600.0,
            "--drain must be within [0, 3600] seconds",
        );
        problems.check(self.rate >= 0.0, "--rate must not be negative");
        problems.finish()
    }
}

/// The run's figures: one JSON line, or two lines for a person.
fn print_report(report: &Report, json: bool) -> anyhow::Result<()> {
    if json {
        println!("{}", serde_json::to_string(report)?);
    } else {
        let l = &report.latency_us;
        println!(
            "{} calls over {} connections, {:.0} s: {:.0} utterances/s answered ({} sent, {} answered, {} errors, {} refused for now and retried, {} reconnects, {} rejections)\nlatency µs: p50 {} · p90 {} · p99 {} · p99.9 {} · max {}",
            report.calls,
            report.connections,
            report.duration_s,
            report.throughput,
            report.sent,
            report.received,
            report.errors,
            report.refusals,
            report.reconnects,
            report.rejections,
            l.p50,
            l.p90,
            l.p99,
            l.p999,
            l.max
        );
    }
    Ok(())
}

pub(super) async fn run(args: LoadgenArgs) -> anyhow::Result<ExitCode> {
    args.validate()?;
    let samples: Arc<Vec<Transcript>> = Arc::new(
        transcript::Reader::new(DEMO_CALLS.as_bytes())
            .collect::<Result<_, _>>()
            .context("bundled calls")?,
    );
    let mut channels = Vec::with_capacity(args.connections);
    for _ in 0..args.connections {
        // One HTTP/2 connection each; warmed up by a health-free no-op: the connect itself.
        let channel = super::connect(&args.addr, |e| e.tcp_nodelay(true)).await?;
        channels.push(channel);
    }
    let counters = Arc::new(Counters::default());
    let histogram = Arc::new(Mutex::new(Histogram::<u64>::new_with_bounds(
        1, 60_000_000, 3,
    )?));
    let period = (args.rate > 0.0).then(|| Duration::from_secs_f64(args.calls as f64 / args.rate));
    // Streams open first; sending starts together, a moment later.
    let start_at = Instant::now() + Duration::from_millis(500 + args.calls as u64 / 2);
    let stop_at = start_at + Duration::from_secs_f64(args.duration);
    let drain_until = stop_at + Duration::from_secs_f64(args.drain);
    let mut tasks = Vec::with_capacity(args.calls);
    for call in 0..args.calls {
        tasks.push(tokio::spawn(run_call(
            channels[call % channels.len()].clone(),
            call,
            Arc::clone(&samples),
            period,
            args.window,
            start_at,
            stop_at,
            drain_until,
            Arc::clone(&histogram),
            Arc::clone(&counters),
        )));
    }
    for t in tasks {
        let _ = t.await;
    }
    let h = histogram.lock().expect("not poisoned");
    let received = counters.received.load(Ordering::Relaxed);
    let report = Report {
        throughput: received as f64 / args.duration,
        latency_us: Latency {
            p50: h.value_at_quantile(0.5),
            p90: h.value_at_quantile(0.9),
            p99: h.value_at_quantile(0.99),
            p999: h.value_at_quantile(0.999),
            max: h.max(),
        },
        errors: counters.errors.load(Ordering::Relaxed),
        refusals: counters.refusals.load(Ordering::Relaxed),
        reconnects: counters.reconnects.load(Ordering::Relaxed),
        rejections: counters.rejections.load(Ordering::Relaxed),
        sent: counters.sent.load(Ordering::Relaxed),
        received,
        calls: args.calls,
        connections: args.connections,
        rate: args.rate,
        duration_s: args.duration,
    };
    print_report(&report, args.json)?;
    Ok(if report.errors > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

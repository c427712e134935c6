//! `hearken replay FILE --addr URL`: streams each conversation of a transcript file to a
//! running server over its own stream, as a contact-centre integration would (one stream per
//! call), optionally at real-time pace, and prints what comes back.

use std::collections::HashMap;
use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context as _;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::Channel;

use super::render::{self, Sent};
use crate::engine::{self, End, Event};
use crate::proto::v1::listening_service_client::ListeningServiceClient;
use crate::proto::v1::*;
use crate::proto::{self as convert};
use crate::transcript::{self, Transcript};

/// Flags of `hearken replay`.
#[derive(Debug, clap::Args)]
pub(super) struct ReplayArgs {
    /// Transcript file (JSON Lines, one conversation per line).
    file: PathBuf,
    /// The server.
    #[arg(long, default_value = "http://127.0.0.1:50051")]
    addr: String,
    /// Pace: 1 sends each utterance when it ends in real time, 10 ten times faster, 0 as fast
    /// as possible.
    #[arg(long, default_value_t = 0.0)]
    speed: f64,
    /// Print every response as a JSON line (proto3 JSON) instead of text.
    #[arg(long)]
    json: bool,
    /// Show each utterance's text beside its update (off by default: transcripts are private).
    #[arg(long)]
    show_text: bool,
    /// Print only alerts and scorecards.
    #[arg(long)]
    quiet: bool,
}

/// What streaming one call gave.
#[derive(Debug, Default)]
pub(super) struct CallResult {
    /// The scorecard, if the call got that far.
    pub(super) scorecard: Option<Scorecard>,
    /// From sending each final utterance to receiving its update.
    pub(super) latencies: Vec<Duration>,
    /// Responses received.
    pub(super) responses: usize,
    /// Alerts received.
    pub(super) alerts: usize,
    /// Rejections received.
    pub(super) rejections: usize,
}

/// How to print responses.
#[derive(Debug, Clone, Copy)]
pub(super) struct Output {
    pub(super) json: bool,
    pub(super) show_text: bool,
    pub(super) quiet: bool,
}

fn role_name(role: engine::Role) -> &'static str {
    match role {
        engine::Role::Agent => "agent",
        engine::Role::Customer => "customer",
        engine::Role::Other => "other",
        engine::Role::Unknown => "unknown",
    }
}

fn request(
    conversation_id: &str,
    payload: stream_conversations_request::Payload,
) -> StreamConversationsRequest {
    StreamConversationsRequest {
        conversation_id: conversation_id.to_owned(),
        payload: Some(payload),
    }
}

/// Streams one conversation and prints the responses as they arrive.
pub(super) async fn stream_call(
    client: &mut ListeningServiceClient<Channel>,
    t: &Transcript,
    speed: f64,
    output: Output,
) -> anyhow::Result<CallResult> {
    use stream_conversations_request::Payload;
    let id = t.conversation_id.clone();
    let sent_at: Arc<Mutex<HashMap<(String, bool), Instant>>> = Arc::default();
    let sent: HashMap<String, Sent> = t
        .utterances
        .iter()
        .map(|u| {
            let text = output.show_text.then(|| u.text.clone());
            (
                u.utterance_id.clone(),
                Sent {
                    role: role_name(u.role),
                    start_ms: u.start_ms,
                    text,
                },
            )
        })
        .collect();
    let (tx, rx) = mpsc::channel(64);
    let start = ConversationStart {
        channel: match t.start.channel {
            engine::Channel::Voice => crate::proto::v1::Channel::Voice,
            engine::Channel::Chat => crate::proto::v1::Channel::Chat,
        } as i32,
        language: t.start.language.clone(),
        rubric_profile: t.start.rubric_profile.clone(),
        metadata: t
            .start
            .metadata
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
        start_time: None,
    };
    let events = engine::transcript_events(t.utterances.clone(), t.signals.clone(), End::default());
    let sender = {
        let (id, sent_at) = (id.clone(), Arc::clone(&sent_at));
        tokio::spawn(async move {
            let origin = Instant::now();
            let pace = |offset_ms: Option<i64>| async move {
                if let (Some(offset), true) = (offset_ms, speed > 0.0) {
                    tokio::time::sleep_until(
                        origin + Duration::from_secs_f64(offset.max(0) as f64 / 1000.0 / speed),
                    )
                    .await;
                }
            };
            if tx.send(request(&id, Payload::Start(start))).await.is_err() {
                return;
            }
            for event in events {
                let payload = match event {
                    Event::Utterance(u) => {
                        // A segment is sent when the recogniser finalises it: at its end.
                        pace(u.end_ms).await;
                        sent_at
                            .lock()
                            .expect("not poisoned")
                            .insert((u.utterance_id.clone(), u.partial), Instant::now());
                        Payload::Utterance(convert::utterance_to_proto(&u))
                    }
                    Event::Signal(s) => {
                        pace(Some(s.offset_ms)).await;
                        Payload::Signal(convert::signal_to_proto(&s))
                    }
                    Event::End(end, _) => Payload::End(ConversationEnd {
                        offset_ms: end.offset_ms,
                    }),
                };
                if tx.send(request(&id, payload)).await.is_err() {
                    return;
                }
            }
        })
    };
    let mut inbound = client
        .stream_conversations(ReceiverStream::new(rx))
        .await
        .context("failed to open a stream")?
        .into_inner();
    let mut result = CallResult::default();
    let mut stdout = std::io::stdout().lock();
    while let Some(response) = inbound.message().await.context("the stream failed")? {
        result.responses += 1;
        use stream_conversations_response::Payload as Out;
        match &response.payload {
            Some(Out::Update(u)) => {
                if let Some(at) = sent_at
                    .lock()
                    .expect("not poisoned")
                    .remove(&(u.utterance_id.clone(), u.partial))
                {
                    result.latencies.push(at.elapsed());
                }
            }
            Some(Out::Alert(_)) => result.alerts += 1,
            Some(Out::Rejection(_)) => result.rejections += 1,
            Some(Out::Scorecard(card)) => result.scorecard = Some(card.clone()),
            None => {}
        }
        if output.json {
            writeln!(stdout, "{}", serde_json::to_string(&response)?)?;
        } else {
            write!(
                stdout,
                "{}",
                render::response(&response, &sent, output.quiet)
            )?;
        }
        if result.scorecard.is_some() {
            break;
        }
    }
    sender.abort();
    Ok(result)
}

/// Percentile of sorted durations.
pub(super) fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

/// `p50 … p99 … max` of latencies, for people.
pub(super) fn latency_summary(latencies: &[Duration]) -> String {
    let mut sorted = latencies.to_vec();
    sorted.sort();
    let us = |d: Duration| d.as_secs_f64() * 1e6;
    format!(
        "{} updates, latency p50 {:.0} µs, p90 {:.0} µs, p99 {:.0} µs, max {:.0} µs",
        sorted.len(),
        us(percentile(&sorted, 50.0)),
        us(percentile(&sorted, 90.0)),
        us(percentile(&sorted, 99.0)),
        us(sorted.last().copied().unwrap_or_default())
    )
}

pub(super) async fn run(args: ReplayArgs) -> anyhow::Result<ExitCode> {
    let file = std::fs::File::open(&args.file)
        .with_context(|| format!("failed to open {}", args.file.display()))?;
    let mut client = ListeningServiceClient::connect(args.addr.clone())
        .await
        .with_context(|| format!("failed to connect to {}", args.addr))?;
    let output = Output {
        json: args.json,
        show_text: args.show_text,
        quiet: args.quiet,
    };
    let mut all = Vec::new();
    let mut skipped = 0;
    for item in transcript::Reader::new(std::io::BufReader::new(file)) {
        match item {
            Ok(t) => {
                let result = stream_call(&mut client, &t, args.speed, output).await?;
                all.extend(result.latencies);
            }
            Err(e) => {
                skipped += 1;
                eprintln!("{}: {e}", args.file.display());
            }
        }
    }
    eprintln!("replay: {}", latency_summary(&all));
    Ok(if skipped > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

//! The streaming client that `replay`, `demo` and `loadgen` share: one call over one
//! `StreamConversations` stream, paced in call time, with reconnect-and-replay on a retryable
//! failure (skipping responses already seen, by `seq`), and the retry rules of the client
//! contract (docs/operations.md).

use std::collections::HashMap;
use std::io::Write as _;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::Channel;

use super::render::{self, Sent};
use crate::engine::{self, End, Event};
use crate::proto::v1::listening_service_client::ListeningServiceClient;
use crate::proto::v1::*;
use crate::proto::{self as convert};
use crate::transcript::Transcript;

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
    /// Print nothing per response (the caller reports the result).
    pub(super) silent: bool,
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

/// Whether a failed stream is worth reconnecting and replaying (the client contract of
/// docs/operations.md): the server drained or restarted, the stream hit its duration or idle
/// limit, the connection broke, or the server refused for now and said when to retry
/// (RESOURCE_EXHAUSTED with `RetryInfo`: a stream-open quota, a full server).
pub(super) fn retryable(status: &tonic::Status) -> bool {
    use tonic_types::StatusExt as _;
    match status.code() {
        tonic::Code::Unavailable
        | tonic::Code::OutOfRange
        | tonic::Code::Unknown
        | tonic::Code::Cancelled => true,
        tonic::Code::ResourceExhausted => status.get_error_details().retry_info().is_some(),
        _ => false,
    }
}

/// Whether a failed stream was the server refusing for now and saying when to try again
/// (RESOURCE_EXHAUSTED with `RetryInfo`: a stream-open quota, a full server): admission, not a
/// failure of the call.
pub(super) fn refused_for_now(status: &tonic::Status) -> bool {
    use tonic_types::StatusExt as _;
    status.code() == tonic::Code::ResourceExhausted
        && status.get_error_details().retry_info().is_some()
}

/// How long one call keeps asking a server that refuses it for now.
const MAX_REFUSED: Duration = Duration::from_secs(300);

/// Backoff before attempt `n` (1-based): 100 ms doubling up to 10 s, full jitter; a server's
/// `RetryInfo` delay wins.
pub(super) fn backoff(n: u32, status: &tonic::Status) -> Duration {
    use tonic_types::StatusExt as _;
    if let Some(delay) = status
        .get_error_details()
        .retry_info()
        .and_then(|r| r.retry_delay)
    {
        return delay.max(Duration::from_millis(10));
    }
    let cap = Duration::from_millis(100)
        .saturating_mul(1 << n.min(7))
        .min(Duration::from_secs(10));
    // Full jitter, so that clients reconnecting after one drain spread out.
    cap.mul_f64(rand::random::<f64>())
}

/// One message of a call: the offset it is due at, what it carries, and for an utterance the
/// key its update is matched by.
type Outgoing = (
    Option<i64>,
    stream_conversations_request::Payload,
    Option<(String, bool)>,
);

/// Reconnect attempts per call before giving up.
const MAX_ATTEMPTS: u32 = 10;

/// When each utterance (by id and partial flag) was sent, for its update's latency.
type SentAt = Arc<Mutex<HashMap<(String, bool), Instant>>>;

/// Streams one conversation and prints the responses as they arrive. If the stream fails in a
/// retryable way, reconnects with backoff, replays the conversation from its start (the engine
/// is deterministic, so the server rebuilds the same state) and skips the responses already
/// seen, by `seq`.
pub(super) async fn stream_call(
    client: &mut ListeningServiceClient<Channel>,
    t: &Transcript,
    speed: f64,
    output: Output,
) -> anyhow::Result<CallResult> {
    let id = t.conversation_id.clone();
    let sent_at: SentAt = Arc::default();
    let sent = sent_utterances(t, output);
    let messages = Arc::new(call_messages(t));
    // How many messages have gone out so far (a reconnect resends these at once).
    let progress = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let origin = Instant::now();
    let mut result = CallResult::default();
    let mut last_seq = 0i64;
    let mut attempt = 0u32;
    let mut refused_since: Option<Instant> = None;
    loop {
        let (tx, rx) = mpsc::channel(64);
        let sender = tokio::spawn(send_messages(
            tx,
            id.clone(),
            Arc::clone(&messages),
            Arc::clone(&progress),
            Arc::clone(&sent_at),
            (origin, speed),
        ));
        let failure = match client.stream_conversations(ReceiverStream::new(rx)).await {
            Err(status) => Some(status),
            Ok(response) => {
                let mut inbound = response.into_inner();
                let failure = read_responses(
                    &mut inbound,
                    &mut last_seq,
                    &mut result,
                    &sent_at,
                    &sent,
                    output,
                )
                .await?;
                if failure.is_none() {
                    // The scorecard came: close our side and read to the end, so the call
                    // ends with OK rather than as cancelled.
                    sender.abort();
                    let _ = tokio::time::timeout(Duration::from_secs(5), async {
                        while let Ok(Some(_)) = inbound.message().await {}
                    })
                    .await;
                }
                failure
            }
        };
        sender.abort();
        let Some(status) = failure else {
            return Ok(result);
        };
        // A refusal with a retry delay is the server pacing admissions: waited out (as long
        // as MAX_REFUSED), not counted against the attempts a failing call gets.
        let refused = refused_for_now(&status);
        if refused {
            refused_since.get_or_insert_with(Instant::now);
        } else {
            attempt += 1;
        }
        if !retryable(&status)
            || attempt > MAX_ATTEMPTS
            || refused_since.is_some_and(|t| t.elapsed() > MAX_REFUSED)
        {
            return Err(anyhow::anyhow!(
                "the stream failed: {} ({:?})",
                status.message(),
                status.code()
            ));
        }
        let wait = backoff(attempt.max(1), &status);
        say_retry(&id, &status, refused, wait);
        tokio::time::sleep(wait).await;
    }
}

/// Says on standard error why the stream is opened again, and when.
fn say_retry(id: &str, status: &tonic::Status, refused: bool, wait: Duration) {
    if refused {
        eprintln!(
            "replay: {}: the server refused the stream for now ({}); retrying in {} ms as it asked",
            id,
            status.message(),
            wait.as_millis()
        );
    } else {
        eprintln!(
            "replay: {}: stream failed ({:?}); reconnecting in {} ms and replaying from the start",
            id,
            status.code(),
            wait.as_millis()
        );
    }
}

/// What the renderer shows of each utterance sent (its text only with `--show-text`).
fn sent_utterances(t: &Transcript, output: Output) -> HashMap<String, Sent> {
    t.utterances
        .iter()
        .map(|u| {
            let text = output.show_text.then(|| u.text.clone());
            (
                u.utterance_id.clone(),
                Sent {
                    role: u.role.name(),
                    start_ms: u.start_ms,
                    text,
                },
            )
        })
        .collect()
}

/// Every message of the call, with the offset it is due at (a segment when it ends).
fn call_messages(t: &Transcript) -> Vec<Outgoing> {
    use stream_conversations_request::Payload;
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
    let mut messages: Vec<Outgoing> = vec![(None, Payload::Start(start), None)];
    for event in engine::transcript_events(t.utterances.clone(), t.signals.clone(), End::default())
    {
        messages.push(match event {
            Event::Utterance(u) => (
                u.end_ms,
                Payload::Utterance(convert::utterance_to_proto(&u)),
                Some((u.utterance_id.clone(), u.partial)),
            ),
            Event::Signal(s) => (
                Some(s.offset_ms),
                Payload::Signal(convert::signal_to_proto(&s)),
                None,
            ),
            Event::End(end, _) => (
                None,
                Payload::End(ConversationEnd {
                    offset_ms: end.offset_ms,
                }),
                None,
            ),
        });
    }
    messages
}

/// Sends the call's messages on one stream: those already sent before a reconnect at once, the
/// rest paced in call time from `origin` at `speed` (0: all at once), then holds the stream
/// open until the responses are read.
async fn send_messages(
    tx: mpsc::Sender<StreamConversationsRequest>,
    id: String,
    messages: Arc<Vec<Outgoing>>,
    progress: Arc<std::sync::atomic::AtomicUsize>,
    sent_at: SentAt,
    (origin, speed): (Instant, f64),
) {
    let replay_upto = progress.load(std::sync::atomic::Ordering::SeqCst);
    for (i, (due, payload, key)) in messages.iter().enumerate() {
        // Without pacing, everything goes at once: the server's rate limit lets a
        // conversation send as many messages as its own call time allows.
        if i >= replay_upto
            && let (Some(offset), true) = (due, speed > 0.0)
        {
            // Paced in call time from the first attempt: a replay catches up.
            tokio::time::sleep_until(
                origin + Duration::from_secs_f64((*offset).max(0) as f64 / 1000.0 / speed),
            )
            .await;
        }
        if let Some(key) = key {
            sent_at
                .lock()
                .expect("not poisoned")
                .insert(key.clone(), Instant::now());
        }
        if tx.send(request(&id, payload.clone())).await.is_err() {
            return;
        }
        progress.fetch_max(i + 1, std::sync::atomic::Ordering::SeqCst);
    }
    tx.closed().await;
}

/// Reads and prints a stream's responses, skipping those seen before a reconnect (by `seq`):
/// `None` once the scorecard came, or the status the stream failed with.
async fn read_responses(
    inbound: &mut tonic::Streaming<StreamConversationsResponse>,
    last_seq: &mut i64,
    result: &mut CallResult,
    sent_at: &SentAt,
    sent: &HashMap<String, Sent>,
    output: Output,
) -> anyhow::Result<Option<tonic::Status>> {
    use stream_conversations_response::Payload as Out;
    loop {
        let response = match inbound.message().await {
            Ok(Some(response)) => response,
            Ok(None) => {
                return Ok(Some(tonic::Status::unavailable(
                    "the stream ended before the scorecard",
                )));
            }
            Err(status) => return Ok(Some(status)),
        };
        if response.seq != 0 && response.seq <= *last_seq {
            continue; // seen before the reconnect
        }
        *last_seq = (*last_seq).max(response.seq);
        result.responses += 1;
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
        if output.silent {
            // Reported by the caller.
        } else if output.json {
            writeln!(std::io::stdout(), "{}", serde_json::to_string(&response)?)?;
        } else {
            write!(
                std::io::stdout(),
                "{}",
                render::response(&response, sent, output.quiet)
            )?;
        }
        if result.scorecard.is_some() {
            return Ok(None);
        }
        // The conversation id itself was refused (not a valid id, or no room for another
        // conversation): no message of this call can be scored and no scorecard will come, so
        // the call is over (its rejections are counted and make the command fail).
        if let Some(Out::Rejection(r)) = &response.payload
            && r.field == "conversation_id"
        {
            return Ok(None);
        }
    }
}

/// `p50 … p99 … max` of latencies, for people.
pub(super) fn latency_summary(latencies: &[Duration]) -> String {
    // 1 µs to 10 minutes at 3 significant figures; longer waits count as 10 minutes.
    let mut histogram =
        hdrhistogram::Histogram::<u64>::new_with_bounds(1, 600_000_000, 3).expect("valid bounds");
    for l in latencies {
        histogram.saturating_record(l.as_micros().min(u128::from(u64::MAX)) as u64);
    }
    let at = |q: f64| histogram.value_at_quantile(q);
    format!(
        "{} updates, latency p50 {} µs, p90 {} µs, p99 {} µs, max {} µs",
        histogram.len(),
        at(0.5),
        at(0.9),
        at(0.99),
        histogram.max()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_latency_summary_reads_the_recorded_durations() {
        let latencies: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        let summary = latency_summary(&latencies);
        assert!(
            summary.starts_with("100 updates, latency p50 50"),
            "{summary}"
        );
        assert!(summary.contains("p99 99"), "{summary}");
        assert!(summary.contains("max 100"), "{summary}");
    }
}

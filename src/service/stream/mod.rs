//! `StreamConversations`: one task per stream owns the stream's live conversations, keyed by
//! id, and answers through a bounded queue; a reader task takes the client's messages off the
//! connection as they arrive (`inbound.rs`).
//!
//! Slow-reader policy (R-SLOW-1, -2): backpressure. The task awaits room in the outbound queue,
//! so a client that does not read stops being read once the inbound queue is full too (HTTP/2
//! flow control then slows its writes); nothing is dropped or coalesced, so `seq` stays
//! gap-free. If the outbound queue makes no progress for `client_not_reading_timeout`, the
//! stream ends with RESOURCE_EXHAUSTED (CLIENT_NOT_READING) and its conversations are freed;
//! the client can replay them.
//!
//! Per-message problems are in-band `Rejection`s. Stream-wide conditions end the stream with a
//! status: draining, stream duration and stream idle (the conversations are left for the client
//! to replay elsewhere), a message that cannot be decoded or is over the size limit (the
//! conversations end first, with `abandoned` scorecards), a client not reading.

mod admission;
mod inbound;
mod outbound;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use tokio::sync::{mpsc, oneshot};
use tokio::time::{Instant, MissedTickBehavior};
use tonic::{Status, Streaming};
use tracing::Instrument as _;

use self::admission::{MessageRate, Slot};
use self::inbound::Received;
use self::outbound::{Outbound, Queued};
use super::error::ServiceError;
use super::tenant::Caller;
use super::{PublishedAlert, ResponseStream, Shared};
use crate::engine::{self, Conversation, End, EndReason, Event, RejectReason, Rejected};
use crate::host::ended::Ended;
use crate::host::respond::{self, rejection, response};
use crate::host::route::{self, Gone};
use crate::proto::WireName as _;
use crate::proto::v1::stream_conversations_response::Payload;
use crate::proto::{self, v1::*};
use crate::telemetry::metrics::Direction;

static STREAM_IDS: AtomicU64 = AtomicU64::new(1);

/// Starts the task serving one stream and returns the stream of its responses. `parent` is
/// the caller's trace context, if it sent one.
pub(super) fn start(
    shared: Arc<Shared>,
    inbound: Streaming<StreamConversationsRequest>,
    parent: Option<opentelemetry::Context>,
    caller: Caller,
) -> ResponseStream<StreamConversationsResponse> {
    let (tx, rx) = mpsc::channel(shared.limits.outbound_queue.max(1));
    let (abort_tx, abort_rx) = oneshot::channel();
    let stream_id = STREAM_IDS.fetch_add(1, Ordering::Relaxed);
    let span = tracing::info_span!(
        "stream",
        stream.id = stream_id,
        otel.kind = "server",
        rpc.system.name = "grpc",
        rpc.method = "hearken.v1.ListeningService/StreamConversations",
        conversations = tracing::field::Empty,
    );
    super::set_parent(&span, parent);
    let metrics = Arc::clone(&shared.metrics);
    metrics.streams_changed(1);
    let limits = &shared.limits;
    let inbound = inbound::read(
        inbound,
        inbound::Budget {
            messages: limits.inbound_queue,
            bytes: limits.inbound_queue_bytes,
            process: Arc::clone(&shared.inflight_request_bytes),
            process_cap: limits.max_inflight_request_bytes,
        },
        limits.max_stream_message_bytes,
    );
    let task = StreamTask {
        tx,
        abort: Some(abort_tx),
        live: HashMap::new(),
        recent: Ended::default(),
        span: span.clone(),
        conversations_opened: 0,
        caller,
        shared,
    };
    tokio::spawn(task.run(inbound).instrument(span));
    Box::pin(Outbound {
        rx,
        abort: Some(abort_rx),
        done: false,
        metrics,
    })
}

/// A stream refused before it started (its tenant opened streams too fast): the status is its
/// only response. The client's messages are read and dropped until it goes away (at most
/// `linger`), so that refusing never resets the HTTP/2 stream from our side: h2 closes a
/// connection after 1 024 such resets, and with it every admitted call it carries.
pub(super) fn refuse(
    mut inbound: Streaming<StreamConversationsRequest>,
    status: Status,
    linger: Duration,
) -> ResponseStream<StreamConversationsResponse> {
    tokio::spawn(async move {
        let _ = tokio::time::timeout(linger, async {
            while let Ok(Some(_)) = inbound.message().await {}
        })
        .await;
    });
    Box::pin(tokio_stream::once(Err(status)))
}

/// A stream's clock is tokio's (so that tests can pause it).
impl crate::host::ended::Moment for Instant {
    fn age(self, now: Instant) -> Duration {
        now.saturating_duration_since(self)
    }
}

struct Live {
    conversation: Conversation,
    /// Its place under the caps; freed with it.
    _slot: Slot,
    /// Open while the conversation is live; carries no id (privacy).
    span: tracing::Span,
    seq: i64,
    last_activity: Instant,
    start_time: Option<SystemTime>,
    rate: MessageRate,
    /// Its place on the supervisor's floor, when the page is served.
    floor: Option<Box<dyn crate::host::watch::WatchedCall>>,
}

/// Why the stream loop stops.
enum Stop {
    /// The client went away (its response stream was dropped), or finished.
    ClientGone,
    /// The stream ends with this error, after the queued responses.
    Fail(ServiceError),
    /// The stream ends with this error at once.
    Abort(ServiceError),
}

struct StreamTask {
    shared: Arc<Shared>,
    tx: mpsc::Sender<Queued>,
    abort: Option<oneshot::Sender<Status>>,
    live: HashMap<String, Live>,
    /// Conversations that ended, or whose start was refused, on this stream lately; at most
    /// `max_conversations_per_stream`.
    recent: Ended<Instant>,
    span: tracing::Span,
    conversations_opened: u64,
    caller: Caller,
}

impl Drop for StreamTask {
    fn drop(&mut self) {
        // The conversations' slots go back to the caps as `live` drops.
        for _ in 0..self.live.len() {
            self.shared.metrics.conversation_ended("freed");
        }
        self.shared.metrics.streams_changed(-1);
        self.span.record("conversations", self.conversations_opened);
    }
}

/// The call time an event carries, for the rate's call-time allowance.
fn offset_of(event: &Event) -> Option<i64> {
    match event {
        Event::Utterance(u) => u.end_ms.or(u.start_ms),
        Event::Signal(s) => Some(s.offset_ms),
        Event::End(e, _) => e.offset_ms,
    }
}

impl StreamTask {
    async fn run(mut self, mut inbound: mpsc::Receiver<Received>) {
        let limits = self.shared.limits.clone();
        let mut draining = self.shared.draining.clone();
        let stream_deadline = tokio::time::sleep(limits.max_stream_duration);
        let idle = tokio::time::sleep(limits.stream_idle_timeout);
        tokio::pin!(stream_deadline, idle);
        let sweep_period = (limits.conversation_idle_timeout / 10)
            .clamp(Duration::from_millis(10), Duration::from_secs(30));
        let mut sweep = tokio::time::interval(sweep_period);
        sweep.set_missed_tick_behavior(MissedTickBehavior::Delay);
        tracing::debug!("stream opened");

        let stop = loop {
            let step = tokio::select! {
                biased;
                _ = async {
                    if draining.wait_for(|d| *d).await.is_err() {
                        std::future::pending::<()>().await;
                    }
                } => Err(Stop::Fail(ServiceError::Draining)),
                _ = &mut stream_deadline => Err(Stop::Fail(ServiceError::StreamMaxDuration(limits.max_stream_duration))),
                _ = &mut idle => Err(Stop::Fail(ServiceError::StreamIdle(limits.stream_idle_timeout))),
                _ = sweep.tick() => self.abandon_idle().await,
                received = inbound.recv() => match received {
                    Some(Received::Message { request, at, _bytes }) => {
                        self.shared.metrics.stream_messages(Direction::Received, 1);
                        idle.as_mut().reset(at + limits.stream_idle_timeout);
                        let is_utterance = matches!(
                            request.payload,
                            Some(stream_conversations_request::Payload::Utterance(_))
                        );
                        let out = self.handle(request);
                        self.send_all(out, is_utterance.then_some(at)).await
                    }
                    // The client has sent everything: conversations still open are abandoned,
                    // and their scorecards are the last responses.
                    Some(Received::Finished) => self.abandon_all().await.and(Err(Stop::ClientGone)),
                    // A message that cannot be used ends the stream: its conversations cannot
                    // go on (their next message is lost), so they end first, as abandoned.
                    Some(Received::Failed(error)) => self.abandon_all().await.and(Err(Stop::Fail(error))),
                    Some(Received::Gone) | None => Err(Stop::ClientGone),
                },
            };
            if let Err(stop) = step {
                break stop;
            }
        };
        match stop {
            Stop::ClientGone => tracing::debug!("stream closed"),
            Stop::Fail(error) => {
                tracing::info!(reason = error.reason(), "stream ended");
                let _ = tokio::time::timeout(
                    limits.client_not_reading_timeout,
                    self.tx.send(Queued {
                        response: Err(error.into()),
                        utterance_received: None,
                    }),
                )
                .await;
            }
            Stop::Abort(error) => {
                tracing::warn!(reason = error.reason(), "stream aborted");
                if let Some(abort) = self.abort.take() {
                    let _ = abort.send(error.into());
                }
            }
        }
    }

    /// Queues `responses`, waiting for room (backpressure). `utterance_received` is when the
    /// utterance they answer arrived, if they answer one: its update's latency is measured.
    async fn send_all(
        &mut self,
        responses: Vec<StreamConversationsResponse>,
        utterance_received: Option<Instant>,
    ) -> Result<(), Stop> {
        let timeout = self.shared.limits.client_not_reading_timeout;
        let metrics = &self.shared.metrics;
        metrics.stream_messages(Direction::Sent, responses.len() as u64);
        for r in responses {
            use stream_conversations_response::Payload;
            let mut answers_utterance = None;
            match &r.payload {
                Some(Payload::Update(_)) => answers_utterance = utterance_received,
                Some(Payload::Rejection(rejection)) => {
                    metrics.rejected(rejection.reason().upper(), &rejection.field)
                }
                Some(Payload::Alert(alert)) => {
                    metrics.alert_raised(alert.kind().upper(), alert.severity().upper())
                }
                _ => {}
            }
            let queued = Queued {
                response: Ok(r),
                utterance_received: answers_utterance,
            };
            match tokio::time::timeout(timeout, self.tx.send(queued)).await {
                Ok(Ok(())) => {}
                Ok(Err(_)) => return Err(Stop::ClientGone),
                Err(_) => return Err(Stop::Abort(ServiceError::ClientNotReading(timeout))),
            }
        }
        Ok(())
    }

    /// Why `conversation_id`, which is not live, was lately: it ended, or its start was refused.
    fn gone_lately(&mut self, conversation_id: &str) -> Option<Gone> {
        let linger = self.shared.limits.ended_linger;
        self.recent
            .gone_lately(conversation_id, Instant::now(), linger)
    }

    fn remember(&mut self, conversation_id: &str, gone: Gone) {
        let cap = self.shared.limits.max_conversations_per_stream;
        self.recent
            .remember(conversation_id, Instant::now(), gone, cap);
    }

    /// Opens a conversation, within the stream's, the process's and the tenant's caps.
    fn open(&mut self, conversation_id: &str, start: &ConversationStart) -> Result<(), Rejected> {
        let limits = &self.shared.limits;
        let exhausted = |what: &str, cap: usize| {
            Rejected::new(
                RejectReason::TooManyConversations,
                "conversation_id",
                format!(
                    "{what} already has the maximum of {cap} live conversations; end one or retry later"
                ),
            )
            .retry_after(1_000)
        };
        if self.live.len() >= limits.max_conversations_per_stream {
            return Err(exhausted(
                "this stream",
                limits.max_conversations_per_stream,
            ));
        }
        let conversation = Conversation::open(
            proto::start_from_proto(start),
            &self.shared.rubric(),
            limits.input.clone(),
        )?;
        let slot = Slot::take(&self.shared, &self.caller.key)
            .map_err(|(what, cap)| exhausted(what, cap))?;
        let start_time = start.start_time.as_ref().and_then(proto::system_time);
        let floor = self
            .shared
            .floor
            .as_ref()
            .map(|f| f.open(conversation_id, self.caller.tenant.clone(), start));
        self.conversations_opened += 1;
        let span = tracing::info_span!(
            parent: &self.span,
            "conversation",
            conversation.seq = self.conversations_opened,
            outcome = tracing::field::Empty,
        );
        self.live.insert(
            conversation_id.to_owned(),
            Live {
                span,
                _slot: slot,
                conversation,
                seq: 0,
                last_activity: Instant::now(),
                start_time,
                rate: MessageRate::new(limits.max_messages_per_second, &self.shared.rate_clock),
                floor,
            },
        );
        Ok(())
    }

    /// Frees an ended conversation; `outcome` is `completed` or `abandoned`.
    fn close(&mut self, conversation_id: &str, outcome: &'static str) {
        if let Some(live) = self.live.remove(conversation_id) {
            live.span.record("outcome", outcome);
            self.shared.metrics.conversation_ended(outcome);
            self.remember(conversation_id, Gone::Ended);
        }
    }

    /// Answers one request: its id checked, then routed by the rules a Kafka partition shares
    /// (`service/route.rs`).
    fn handle(&mut self, request: StreamConversationsRequest) -> Vec<StreamConversationsResponse> {
        use stream_conversations_request::Payload;
        let StreamConversationsRequest {
            conversation_id: id,
            payload,
        } = request;
        let Some(payload) = payload else {
            return Vec::new(); // keep-alive
        };
        if let Err(r) = route::check_id(&id, &self.shared.limits.input) {
            return vec![response("", 0, rejection(&r))];
        }
        if self.shared.log_text
            && let Payload::Utterance(u) = &payload
        {
            // Opt-in (`--log-text`), masked first; never the default (R-PRIV-1).
            tracing::info!(
                role = ?u.role(),
                partial = u.partial,
                text = %crate::redact::redact(&u.text),
                "utterance text (redacted)"
            );
        }
        let mut routed = Routed {
            task: self,
            out: Vec::new(),
        };
        route::route(&mut routed, &id, payload);
        routed.out
    }

    /// A rejection of a message for a live conversation: it takes the conversation's next seq.
    fn reject_live(&mut self, id: &str, r: Rejected) -> Vec<StreamConversationsResponse> {
        match self.live.get_mut(id) {
            Some(live) => {
                live.seq += 1;
                vec![response(id, live.seq, rejection(&r))]
            }
            None => unanswered(id, r),
        }
    }

    /// Ends `ids` as abandoned. The server's own end is never rate-limited.
    async fn abandon(&mut self, ids: Vec<String>) -> Result<(), Stop> {
        let mut out = Vec::new();
        for id in ids {
            if let Some(live) = self.live.get_mut(&id) {
                let end = Event::End(End::default(), EndReason::Abandoned);
                let tenant = self.caller.tenant.as_ref();
                observe(live, &id, end, &self.shared, tenant, &mut out);
            }
            self.close(&id, "abandoned");
        }
        if !out.is_empty() {
            tracing::debug!(conversations = out.len(), "conversations abandoned");
        }
        self.send_all(out, None).await
    }

    /// Ends, as abandoned, the conversations that heard nothing within the idle timeout.
    async fn abandon_idle(&mut self) -> Result<(), Stop> {
        let timeout = self.shared.limits.conversation_idle_timeout;
        let mut idle: Vec<String> = self
            .live
            .iter()
            .filter(|(_, l)| l.last_activity.elapsed() >= timeout)
            .map(|(id, _)| id.clone())
            .collect();
        idle.sort();
        self.abandon(idle).await
    }

    async fn abandon_all(&mut self) -> Result<(), Stop> {
        let mut all: Vec<String> = self.live.keys().cloned().collect();
        all.sort();
        self.abandon(all).await
    }
}

/// The rejection of a client message over its conversation's `rate` (`wait` until the next
/// one may come). It takes no `seq`: the message was not applied, and a client that resends it
/// later gets the same responses as if it had never been refused (a replay's de-duplication
/// by `seq` can never mistake it for data).
fn over_rate(id: &str, wait: Duration, rate: f64) -> StreamConversationsResponse {
    let r = Rejected::new(
        RejectReason::RateLimited,
        "conversation_id",
        format!(
            "more than {rate} messages per second for this conversation (beyond what its call time allows); resend after the delay"
        ),
    )
    .retry_after(wait.as_millis().max(1) as i64);
    response(id, 0, rejection(&r))
}

/// Applies an event to a live conversation, answering into `out` and publishing its alerts
/// (scoped to `tenant`) to watchers; returns whether it ended.
fn observe(
    live: &mut Live,
    id: &str,
    event: Event,
    shared: &Shared,
    tenant: Option<&Arc<str>>,
    out: &mut Vec<StreamConversationsResponse>,
) -> bool {
    live.last_activity = Instant::now();
    let start_time = live.start_time;
    let alert_time = move |a: &engine::Alert| {
        Some(match start_time {
            Some(t) => t + Duration::from_millis(a.offset_ms.max(0) as u64),
            None => SystemTime::now(),
        })
    };
    if let (Some(floor), Event::Utterance(u)) = (&live.floor, &event) {
        floor.utterance(u);
    }
    let floor = live.floor.as_deref();
    // The floor sees every answer; watchers of alerts see the alerts.
    let tell = |payload: &Payload| {
        if let Some(floor) = floor {
            crate::host::watch::tell(floor, payload);
        }
        if let Payload::Alert(alert) = payload {
            let _ = shared.alerts.send(PublishedAlert {
                conversation_id: Arc::from(id),
                tenant: tenant.cloned(),
                alert: alert.clone(),
            });
        }
    };
    respond::respond(
        &mut live.conversation,
        id,
        &mut live.seq,
        event,
        alert_time,
        tell,
        out,
    )
    .unwrap_or(false)
}

/// A rejection outside any conversation's sequence (`seq` 0).
fn unanswered(id: &str, r: Rejected) -> Vec<StreamConversationsResponse> {
    vec![response(id, 0, rejection(&r))]
}

/// A stream's live conversations as the routing rules see them, with the responses so far.
struct Routed<'a> {
    task: &'a mut StreamTask,
    out: Vec<StreamConversationsResponse>,
}

impl route::Conversations for Routed<'_> {
    fn input_limits(&self) -> &engine::InputLimits {
        &self.task.shared.limits.input
    }

    fn is_live(&self, id: &str) -> bool {
        self.task.live.contains_key(id)
    }

    fn gone_lately(&mut self, id: &str) -> Option<Gone> {
        self.task.gone_lately(id)
    }

    fn remember(&mut self, id: &str, gone: Gone) {
        self.task.remember(id, gone);
    }

    fn forget(&mut self, id: &str) {
        self.task.recent.forget(id);
    }

    fn open(&mut self, id: &str, start: &ConversationStart) -> Result<(), Rejected> {
        self.task.open(id, start)
    }

    fn reject(&mut self, id: &str, r: Rejected) {
        let answer = self.task.reject_live(id, r);
        self.out.extend(answer);
    }

    /// Applies the event within the conversation's message rate (the server's own ends are
    /// never rate-limited: they do not come through here).
    fn apply(&mut self, id: &str, event: Event) {
        let task = &mut *self.task;
        let Some(live) = task.live.get_mut(id) else {
            return;
        };
        if let Err(wait) = live.rate.admit(offset_of(&event)) {
            let rate = task.shared.limits.max_messages_per_second;
            self.out.push(over_rate(id, wait, rate));
            return;
        }
        let tenant = task.caller.tenant.as_ref();
        if observe(live, id, event, &task.shared, tenant, &mut self.out) {
            task.close(id, "completed");
        }
    }
}

//! `StreamConversations`: one task per stream owns the inbound messages and the stream's live
//! conversations, keyed by id, and answers through a bounded queue.
//!
//! Slow-reader policy (R-SLOW-1, -2): backpressure. The task awaits room in the queue, so a
//! client that does not read stops being read (HTTP/2 flow control then slows its writes);
//! nothing is dropped or coalesced, so `seq` stays gap-free. If the queue makes no progress for
//! `client_not_reading_timeout`, the stream ends with RESOURCE_EXHAUSTED (CLIENT_NOT_READING)
//! and its conversations are freed; the client can replay them.
//!
//! Per-message problems are in-band `Rejection`s; only stream-wide conditions (draining, stream
//! duration, stream idle, an over-size message, a client not reading) end the stream.

use std::collections::{HashMap, VecDeque};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime};

use prost::Message as _;
use tokio::sync::{mpsc, oneshot};
use tokio::time::{Instant, MissedTickBehavior};
use tokio_stream::Stream;
use tonic::{Status, Streaming};
use tracing::Instrument as _;

use super::error::ServiceError;
use super::{PublishedAlert, ResponseStream, Shared};
use crate::engine::{self, Conversation, Emitted, End, EndReason, Event, RejectReason, Rejected};
use crate::proto::{self, v1::*};
use crate::telemetry::metrics::{Direction, Metrics};

static STREAM_IDS: AtomicU64 = AtomicU64::new(1);

/// A queued response, with the time its utterance arrived when it is that utterance's update.
struct Queued {
    response: Result<StreamConversationsResponse, Status>,
    utterance_received: Option<Instant>,
}

/// Starts the task serving one stream and returns the stream of its responses. `parent` is
/// the caller's trace context, if it sent one.
pub(super) fn start(
    shared: Arc<Shared>,
    inbound: Streaming<StreamConversationsRequest>,
    parent: Option<opentelemetry::Context>,
    tenant: Arc<str>,
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
    let task = StreamTask {
        shared,
        tx,
        abort: Some(abort_tx),
        live: HashMap::new(),
        ended: VecDeque::new(),
        span: span.clone(),
        conversations_opened: 0,
        tenant,
    };
    tokio::spawn(task.run(inbound).instrument(span));
    Box::pin(Outbound {
        rx,
        abort: Some(abort_rx),
        done: false,
        metrics,
    })
}

/// The response stream: the queue, unless the task aborts it, in which case the abort status
/// goes out at once and whatever was queued is dropped.
struct Outbound {
    rx: mpsc::Receiver<Queued>,
    abort: Option<oneshot::Receiver<Status>>,
    done: bool,
    metrics: Arc<Metrics>,
}

impl Stream for Outbound {
    type Item = Result<StreamConversationsResponse, Status>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        if this.done {
            return Poll::Ready(None);
        }
        if let Some(abort) = this.abort.as_mut() {
            match Pin::new(abort).poll(cx) {
                Poll::Ready(Ok(status)) => {
                    this.done = true;
                    this.rx.close();
                    return Poll::Ready(Some(Err(status)));
                }
                Poll::Ready(Err(_)) => this.abort = None,
                Poll::Pending => {}
            }
        }
        let queued = std::task::ready!(this.rx.poll_recv(cx));
        Poll::Ready(queued.map(|q| {
            if let Some(received) = q.utterance_received {
                this.metrics.utterance_answered(received.elapsed());
            }
            q.response
        }))
    }
}

/// A live conversation's place under the process's and the tenant's caps, counted in the
/// `conversations.active` gauge; all three are given back when it drops.
struct Slot {
    shared: Arc<Shared>,
    tenant: Arc<str>,
}

impl Slot {
    /// Takes a place, or names the cap that is full and its size.
    fn take(shared: &Arc<Shared>, tenant: &Arc<str>) -> Result<Slot, (&'static str, usize)> {
        let cap = shared.limits.max_conversations_per_process;
        if shared.live_conversations.fetch_add(1, Ordering::Relaxed) >= cap {
            shared.live_conversations.fetch_sub(1, Ordering::Relaxed);
            return Err(("this server", cap));
        }
        if let Some(caps) = &shared.tenant_conversations
            && !caps.try_open(tenant)
        {
            shared.live_conversations.fetch_sub(1, Ordering::Relaxed);
            return Err(("this tenant", caps.cap()));
        }
        shared.metrics.conversations_changed(1);
        Ok(Slot {
            shared: Arc::clone(shared),
            tenant: Arc::clone(tenant),
        })
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.shared
            .live_conversations
            .fetch_sub(1, Ordering::Relaxed);
        if let Some(caps) = &self.shared.tenant_conversations {
            caps.closed(&self.tenant, 1);
        }
        self.shared.metrics.conversations_changed(-1);
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
    /// Messages the conversation may still send now (token bucket, R-CONV-3), as of `refilled`.
    tokens: f64,
    refilled: Instant,
}

impl Live {
    /// Takes one message's token at `rate` per second (burst `rate`), or says how long until
    /// one is available.
    fn take_token(&mut self, rate: f64, now: Instant) -> Result<(), Duration> {
        let rate = rate.max(1.0);
        self.tokens = (self.tokens
            + now.saturating_duration_since(self.refilled).as_secs_f64() * rate)
            .min(rate);
        self.refilled = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - self.tokens) / rate))
        }
    }
}

/// Why the stream loop stops.
enum Stop {
    /// The client went away (its response stream was dropped).
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
    /// Conversations ended on this stream lately, oldest first.
    ended: VecDeque<(String, Instant)>,
    span: tracing::Span,
    conversations_opened: u64,
    /// Who opened the stream (per-tenant caps); never logged.
    tenant: Arc<str>,
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

fn response(
    conversation_id: &str,
    seq: i64,
    payload: stream_conversations_response::Payload,
) -> StreamConversationsResponse {
    StreamConversationsResponse {
        conversation_id: conversation_id.to_owned(),
        seq,
        payload: Some(payload),
    }
}

fn rejection(r: &Rejected) -> stream_conversations_response::Payload {
    stream_conversations_response::Payload::Rejection(proto::rejection_to_proto(r))
}

impl StreamTask {
    async fn run(mut self, mut inbound: Streaming<StreamConversationsRequest>) {
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
                message = inbound.message() => match message {
                    Ok(Some(request)) => {
                        let received = Instant::now();
                        self.shared.metrics.stream_messages(Direction::Received, 1);
                        idle.as_mut().reset(received + limits.stream_idle_timeout);
                        if request.encoded_len() > limits.max_stream_message_bytes {
                            Err(Stop::Fail(ServiceError::TooLarge {
                                reason: "MESSAGE_TOO_LARGE",
                                what: "a StreamConversations request",
                                limit: limits.max_stream_message_bytes,
                            }))
                        } else {
                            let is_utterance = matches!(
                                request.payload,
                                Some(stream_conversations_request::Payload::Utterance(_))
                            );
                            let out = self.handle(request);
                            self.send_all(out, is_utterance.then_some(received)).await
                        }
                    }
                    Ok(None) => {
                        // The client has sent everything: conversations still open are
                        // abandoned, and their scorecards are the last responses.
                        match self.abandon_all().await {
                            Ok(()) => Err(Stop::ClientGone),
                            Err(stop) => Err(stop),
                        }
                    }
                    Err(status) => {
                        tracing::debug!(code = ?status.code(), "inbound stream failed");
                        Err(Stop::ClientGone)
                    }
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
                Some(Payload::Rejection(rejection)) => metrics.rejected(
                    rejection
                        .reason()
                        .as_str_name()
                        .trim_start_matches("REJECTION_REASON_"),
                    &rejection.field,
                ),
                Some(Payload::Alert(alert)) => metrics.alert_raised(
                    alert.kind().as_str_name().trim_start_matches("ALERT_KIND_"),
                    alert
                        .severity()
                        .as_str_name()
                        .trim_start_matches("SEVERITY_"),
                ),
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

    fn was_ended_lately(&mut self, conversation_id: &str) -> bool {
        let linger = self.shared.limits.ended_linger;
        while self
            .ended
            .front()
            .is_some_and(|(_, at)| at.elapsed() > linger)
        {
            self.ended.pop_front();
        }
        self.ended.iter().any(|(id, _)| id == conversation_id)
    }

    fn remember_ended(&mut self, conversation_id: String) {
        if self.ended.len() >= self.shared.limits.max_conversations_per_stream {
            self.ended.pop_front();
        }
        self.ended.push_back((conversation_id, Instant::now()));
    }

    /// Opens a conversation, within the stream's, the process's and the tenant's caps.
    fn open(&mut self, conversation_id: &str, start: &ConversationStart) -> Result<(), Rejected> {
        let limits = &self.shared.limits;
        let exhausted = |what: &str, cap: usize| {
            let mut r = Rejected::new(
                RejectReason::ResourceExhausted,
                "conversation_id",
                format!(
                    "{what} already has the maximum of {cap} live conversations; end one or retry later"
                ),
            );
            r.retry_after_ms = Some(1_000);
            r
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
        let slot =
            Slot::take(&self.shared, &self.tenant).map_err(|(what, cap)| exhausted(what, cap))?;
        let start_time = start.start_time.as_ref().and_then(proto::system_time);
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
                tokens: limits.max_messages_per_second.max(1.0),
                refilled: Instant::now(),
            },
        );
        Ok(())
    }

    /// Frees an ended conversation; `outcome` is `completed` or `abandoned`.
    fn close(&mut self, conversation_id: &str, outcome: &'static str) {
        if let Some(live) = self.live.remove(conversation_id) {
            live.span.record("outcome", outcome);
            self.shared.metrics.conversation_ended(outcome);
            self.remember_ended(conversation_id.to_owned());
        }
    }

    /// Answers one request.
    fn handle(&mut self, request: StreamConversationsRequest) -> Vec<StreamConversationsResponse> {
        use stream_conversations_request::Payload;
        let StreamConversationsRequest {
            conversation_id: id,
            payload,
        } = request;
        let Some(payload) = payload else {
            return Vec::new();
        }; // keep-alive
        if let Err(r) = engine::limits::check_id(
            &id,
            "conversation_id",
            self.shared.limits.input.max_id_bytes,
        ) {
            return vec![response("", 0, rejection(&r))];
        }
        let not_live = |r: Rejected| vec![response(&id, 0, rejection(&r))];
        let ended_lately = !self.live.contains_key(&id) && self.was_ended_lately(&id);
        let ended_rejection = || {
            Rejected::new(
                RejectReason::FailedPrecondition,
                "conversation_id",
                "the conversation has ended; use a new conversation_id",
            )
        };
        // A signal or end for a conversation that is not live.
        let not_started = |hint: &'static str| {
            if ended_lately {
                ended_rejection()
            } else {
                Rejected::new(RejectReason::FailedPrecondition, "conversation_id", hint)
            }
        };
        let event = match payload {
            Payload::Start(start) => {
                if self.live.contains_key(&id) {
                    return self.reject_live(
                        &id,
                        Rejected::new(
                            RejectReason::FailedPrecondition,
                            "start",
                            "the conversation is already live",
                        ),
                    );
                }
                if ended_lately {
                    return not_live(ended_rejection());
                }
                return match self.open(&id, &start) {
                    Ok(()) => Vec::new(),
                    Err(r) => not_live(r),
                };
            }
            Payload::Utterance(utterance) => {
                let utterance = proto::utterance_from_proto(utterance);
                if self.shared.log_text {
                    // Opt-in (`--log-text`), masked first; never the default (R-PRIV-1).
                    tracing::info!(
                        role = ?utterance.role,
                        partial = utterance.partial,
                        text = %crate::redact::redact(&utterance.text),
                        "utterance text (redacted)"
                    );
                }
                if !self.live.contains_key(&id) {
                    if ended_lately {
                        return not_live(
                            ended_rejection().for_utterance(&utterance, &self.shared.limits.input),
                        );
                    }
                    if let Err(r) = self.open(&id, &ConversationStart::default()) {
                        return not_live(r.for_utterance(&utterance, &self.shared.limits.input));
                    }
                }
                Event::Utterance(utterance)
            }
            Payload::Signal(signal) => {
                if !self.live.contains_key(&id) {
                    return not_live(not_started(
                        "unknown conversation; send start or an utterance first",
                    ));
                }
                match proto::signal_from_proto(&signal) {
                    Some(signal) => Event::Signal(signal),
                    None => {
                        return self.reject_live(
                            &id,
                            Rejected::new(
                                RejectReason::InvalidArgument,
                                "signal.kind",
                                "must be a known, specified kind",
                            ),
                        );
                    }
                }
            }
            Payload::End(end) => {
                if !self.live.contains_key(&id) {
                    return not_live(not_started("unknown conversation"));
                }
                Event::End(
                    End {
                        offset_ms: end.offset_ms,
                    },
                    EndReason::Completed,
                )
            }
        };
        let mut out = Vec::new();
        let ended = self.observe(&id, event, &mut out);
        if ended {
            self.close(&id, "completed");
        }
        out
    }

    /// A rejection of a message for a live conversation: it takes the conversation's next seq.
    fn reject_live(&mut self, id: &str, r: Rejected) -> Vec<StreamConversationsResponse> {
        match self.live.get_mut(id) {
            Some(live) => {
                live.seq += 1;
                vec![response(id, live.seq, rejection(&r))]
            }
            None => vec![response(id, 0, rejection(&r))],
        }
    }

    /// Applies an event to a live conversation; returns whether it ended.
    fn observe(
        &mut self,
        id: &str,
        event: Event,
        out: &mut Vec<StreamConversationsResponse>,
    ) -> bool {
        let rate = self.shared.limits.max_messages_per_second;
        let Some(live) = self.live.get_mut(id) else {
            return false;
        };
        if let Err(wait) = live.take_token(rate, Instant::now()) {
            live.seq += 1;
            let mut r = Rejected::new(
                RejectReason::ResourceExhausted,
                "conversation_id",
                format!("more than {rate} messages per second for this conversation; retry later"),
            );
            r.retry_after_ms = Some(wait.as_millis().max(1) as i64);
            out.push(response(id, live.seq, rejection(&r)));
            return false;
        }
        live.last_activity = Instant::now();
        let start_time = live.start_time;
        let alert_time = move |a: &engine::Alert| {
            Some(match start_time {
                Some(t) => t + Duration::from_millis(a.offset_ms.max(0) as u64),
                None => SystemTime::now(),
            })
        };
        let mut ended = false;
        match live.conversation.observe(event) {
            Ok(emitted) => {
                for e in emitted {
                    live.seq += 1;
                    let payload = match e {
                        Emitted::Update(u) => stream_conversations_response::Payload::Update(
                            proto::update_to_proto(&u),
                        ),
                        Emitted::Alert(a) => {
                            let alert = proto::alert_to_proto(&a, alert_time(&a));
                            let _ = self.shared.alerts.send(PublishedAlert {
                                conversation_id: Arc::from(id),
                                alert: alert.clone(),
                            });
                            stream_conversations_response::Payload::Alert(alert)
                        }
                        Emitted::Scorecard(card) => {
                            ended = true;
                            stream_conversations_response::Payload::Scorecard(
                                proto::scorecard_to_proto(&card, alert_time),
                            )
                        }
                    };
                    out.push(response(id, live.seq, payload));
                }
            }
            Err(r) => {
                live.seq += 1;
                out.push(response(id, live.seq, rejection(&r)));
            }
        }
        ended
    }

    async fn abandon(&mut self, ids: Vec<String>) -> Result<(), Stop> {
        let mut out = Vec::new();
        for id in ids {
            self.observe(
                &id,
                Event::End(End::default(), EndReason::Abandoned),
                &mut out,
            );
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

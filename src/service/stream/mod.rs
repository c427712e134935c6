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
use crate::engine::{self, Event, RejectReason, Rejected};
use crate::host::live::{Closed, Host, Owner};
use crate::host::route;
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
        host: Host::default(),
        owner: StreamOwner {
            shared: Arc::clone(&shared),
            span: span.clone(),
            conversations_opened: 0,
            caller,
        },
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

/// What a stream keeps per conversation besides what its host keeps.
struct Extra {
    /// Its place under the caps; freed with it.
    _slot: Slot,
    /// Open while the conversation is live; carries no id (privacy).
    span: tracing::Span,
    last_activity: Instant,
    start_time: Option<SystemTime>,
    rate: MessageRate,
}

/// A stream as the owner of its conversations: the wall clock, the stream's, process's and
/// tenant's caps, a message rate per conversation, alerts published to `WatchAlerts`.
struct StreamOwner {
    shared: Arc<Shared>,
    span: tracing::Span,
    conversations_opened: u64,
    caller: Caller,
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
    /// The stream's live conversations, and those that ended (or whose start was refused)
    /// lately: at most `max_conversations_per_stream` of each.
    host: Host<Instant, Extra>,
    owner: StreamOwner,
}

impl Drop for StreamTask {
    fn drop(&mut self) {
        // The conversations' slots go back to the caps as `host` drops.
        for _ in 0..self.host.len() {
            self.shared.metrics.conversation_ended("freed");
        }
        self.shared.metrics.streams_changed(-1);
        let owner = &self.owner;
        owner
            .span
            .record("conversations", owner.conversations_opened);
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

    /// Answers one request (its id checked, then routed by the rules a Kafka partition
    /// shares: `host/`).
    fn handle(&mut self, request: StreamConversationsRequest) -> Vec<StreamConversationsResponse> {
        use stream_conversations_request::Payload;
        let StreamConversationsRequest {
            conversation_id: id,
            payload,
        } = request;
        let Some(payload) = payload else {
            return Vec::new(); // keep-alive
        };
        if self.shared.log_text
            && let Payload::Utterance(u) = &payload
            && route::check_id(&id, &self.shared.limits.input).is_ok()
        {
            // Opt-in (`--log-text`), masked first; never the default (R-PRIV-1).
            tracing::info!(
                role = ?u.role(),
                partial = u.partial,
                text = %crate::redact::redact(&u.text),
                "utterance text (redacted)"
            );
        }
        let mut out = Vec::new();
        self.host.request(&mut self.owner, &mut out, &id, payload);
        out
    }

    /// Ends `ids` as abandoned.
    async fn abandon(&mut self, ids: Vec<String>) -> Result<(), Stop> {
        let mut out = Vec::new();
        for id in ids {
            self.host.abandon(&mut self.owner, &mut out, &id);
        }
        if !out.is_empty() {
            tracing::debug!(conversations = out.len(), "conversations abandoned");
        }
        self.send_all(out, None).await
    }

    /// Ends, as abandoned, the conversations that heard nothing within the idle timeout.
    async fn abandon_idle(&mut self) -> Result<(), Stop> {
        let timeout = self.shared.limits.conversation_idle_timeout;
        let idle = self
            .host
            .ids_where(|x| x.last_activity.elapsed() >= timeout);
        self.abandon(idle).await
    }

    async fn abandon_all(&mut self) -> Result<(), Stop> {
        let all = self.host.ids_where(|_| true);
        self.abandon(all).await
    }
}

/// The rejection of a client message over its conversation's `rate` (`wait` until the next
/// one may come). It takes no `seq` (see `Owner::admit`), so a replay's de-duplication by
/// `seq` can never mistake it for data.
fn over_rate(wait: Duration, rate: f64) -> Rejected {
    Rejected::new(
        RejectReason::RateLimited,
        "conversation_id",
        format!(
            "more than {rate} messages per second for this conversation (beyond what its call time allows); resend after the delay"
        ),
    )
    .retry_after(wait.as_millis().max(1) as i64)
}

impl Owner for StreamOwner {
    type Moment = Instant;
    type Extra = Extra;

    fn input_limits(&self) -> &engine::InputLimits {
        &self.shared.limits.input
    }

    fn rubric(&self) -> Arc<engine::Rubric> {
        self.shared.rubric()
    }

    /// A stream's clock is tokio's (so that tests can pause it).
    fn now(&self) -> Instant {
        Instant::now()
    }

    fn linger(&self) -> Duration {
        self.shared.limits.ended_linger
    }

    fn memory_cap(&self) -> usize {
        self.shared.limits.max_conversations_per_stream
    }

    fn room(&self, live: usize) -> Result<(), Rejected> {
        let cap = self.shared.limits.max_conversations_per_stream;
        if live >= cap {
            return Err(exhausted("this stream", cap));
        }
        Ok(())
    }

    /// Takes the conversation's place under the process's and the tenant's caps.
    fn open(&mut self, _id: &str, start: &ConversationStart) -> Result<Extra, Rejected> {
        let slot = Slot::take(&self.shared, &self.caller.key)
            .map_err(|(what, cap)| exhausted(what, cap))?;
        self.conversations_opened += 1;
        let span = tracing::info_span!(
            parent: &self.span,
            "conversation",
            conversation.seq = self.conversations_opened,
            outcome = tracing::field::Empty,
        );
        let limits = &self.shared.limits;
        Ok(Extra {
            _slot: slot,
            span,
            last_activity: Instant::now(),
            start_time: start.start_time.as_ref().and_then(proto::system_time),
            rate: MessageRate::new(limits.max_messages_per_second, &self.shared.rate_clock),
        })
    }

    fn watch(
        &self,
        id: &str,
        start: &ConversationStart,
    ) -> Option<Box<dyn crate::host::watch::WatchedCall>> {
        let floor = self.shared.floor.as_ref()?;
        Some(floor.open(id, self.caller.tenant.clone(), start))
    }

    /// Within the conversation's message rate (the server's own ends are never
    /// rate-limited: they do not come through here).
    fn admit(&mut self, extra: &mut Extra, event: &Event) -> Result<(), Rejected> {
        extra
            .rate
            .admit(offset_of(event))
            .map_err(|wait| over_rate(wait, self.shared.limits.max_messages_per_second))
    }

    fn touch(&mut self, extra: &mut Extra) {
        extra.last_activity = Instant::now();
    }

    /// The start's time plus the alert's offset, else now.
    fn alert_time(extra: &Extra, alert: &engine::Alert) -> Option<SystemTime> {
        Some(match extra.start_time {
            Some(t) => t + Duration::from_millis(alert.offset_ms.max(0) as u64),
            None => SystemTime::now(),
        })
    }

    /// Watchers of alerts see the alerts (scoped to the caller's tenant).
    fn told(&mut self, id: &str, payload: &Payload) {
        if let Payload::Alert(alert) = payload {
            let _ = self.shared.alerts.send(PublishedAlert {
                conversation_id: Arc::from(id),
                tenant: self.caller.tenant.clone(),
                alert: alert.clone(),
            });
        }
    }

    /// Counted when sent (`send_all`).
    fn refused(&mut self, _r: &Rejected) {}

    fn closed(&mut self, extra: Extra, how: Closed) {
        extra.span.record("outcome", how.label());
        self.shared.metrics.conversation_ended(how.label());
    }
}

/// The rejection of a conversation over `what`'s cap of live conversations.
fn exhausted(what: &str, cap: usize) -> Rejected {
    Rejected::new(
        RejectReason::TooManyConversations,
        "conversation_id",
        format!(
            "{what} already has the maximum of {cap} live conversations; end one or retry later"
        ),
    )
    .retry_after(1_000)
}

//! The service's instruments, created once and shared (`Arc<Metrics>`).
//!
//! Names follow OpenTelemetry style (`hearken.*`, units in metadata, not in names); the RPC
//! duration follows the RPC semantic conventions 1.42 (`rpc.server.call.duration`, seconds).
//! Attributes are small closed sets (method, status code, rejection reason and field, alert
//! kind and severity, direction, outcome): never a conversation id, participant, metadata value
//! or any transcript text — for privacy and for cardinality.

use std::time::Duration;

use opentelemetry::KeyValue;
use opentelemetry::metrics::{Counter, Histogram, Meter, UpDownCounter};

/// Bucket boundaries, in seconds, for latencies from tens of microseconds to seconds.
const LATENCY_BUCKETS: [f64; 16] = [
    0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
    1.0, 2.5, 10.0,
];

/// Bucket boundaries, in seconds, for RPC durations: unary calls in milliseconds, streams for
/// as long as a call lasts.
const RPC_BUCKETS: [f64; 16] = [
    0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 1800.0, 3600.0,
    14_400.0,
];

/// Which way a stream message went.
#[derive(Debug, Clone, Copy)]
pub enum Direction {
    /// From the client.
    Received,
    /// To the client.
    Sent,
}

/// The service's instruments.
#[derive(Debug, Clone)]
pub struct Metrics {
    utterance_duration: Histogram<f64>,
    streams_active: UpDownCounter<i64>,
    conversations_active: UpDownCounter<i64>,
    conversations_ended: Counter<u64>,
    rejections: Counter<u64>,
    alerts: Counter<u64>,
    stream_messages: Counter<u64>,
    rpc_duration: Histogram<f64>,
    floor_viewers: UpDownCounter<i64>,
    floor_viewers_ended: Counter<u64>,
    rubric_reloads: Counter<u64>,
    floor_events: Counter<u64>,
    floor_dropped: Counter<u64>,
}

impl Metrics {
    /// Creates the instruments on `meter`.
    pub fn new(meter: &Meter) -> Self {
        Metrics {
            utterance_duration: meter
                .f64_histogram("hearken.utterance.duration")
                .with_unit("s")
                .with_description(
                    "Time from receiving an utterance to handing its update to the transport",
                )
                .with_boundaries(LATENCY_BUCKETS.to_vec())
                .build(),
            streams_active: meter
                .i64_up_down_counter("hearken.streams.active")
                .with_unit("{stream}")
                .with_description("Open StreamConversations streams")
                .build(),
            conversations_active: meter
                .i64_up_down_counter("hearken.conversations.active")
                .with_unit("{conversation}")
                .with_description("Live conversations")
                .build(),
            conversations_ended: meter
                .u64_counter("hearken.conversations.ended")
                .with_unit("{conversation}")
                .with_description("Conversations ended, by outcome")
                .build(),
            rejections: meter
                .u64_counter("hearken.rejections")
                .with_unit("{message}")
                .with_description("Messages rejected in band, by reason and field")
                .build(),
            alerts: meter
                .u64_counter("hearken.alerts")
                .with_unit("{alert}")
                .with_description("Alerts raised on live streams, by kind and severity")
                .build(),
            stream_messages: meter
                .u64_counter("hearken.stream.messages")
                .with_unit("{message}")
                .with_description("StreamConversations messages, by direction")
                .build(),
            rpc_duration: meter
                .f64_histogram("rpc.server.call.duration")
                .with_unit("s")
                .with_description("Duration of RPCs handled by the server")
                .with_boundaries(RPC_BUCKETS.to_vec())
                .build(),
            floor_viewers: meter
                .i64_up_down_counter("hearken.floor.viewers")
                .with_unit("{viewer}")
                .with_description("Browsers watching the floor page's live events")
                .build(),
            rubric_reloads: meter
                .u64_counter("hearken.rubric.reloads")
                .with_unit("{reload}")
                .with_description(
                    "Rubric file reloads, by outcome (loaded, refused, empty, unreadable)",
                )
                .build(),
            floor_viewers_ended: meter
                .u64_counter("hearken.floor.viewers.ended")
                .with_unit("{viewer}")
                .with_description(
                    "Floor viewers that stopped, by reason (left, too_slow, shutting_down)",
                )
                .build(),
            floor_events: meter
                .u64_counter("hearken.floor.events")
                .with_unit("{event}")
                .with_description("Server-Sent Events sent to floor viewers, by event")
                .build(),
            floor_dropped: meter
                .u64_counter("hearken.floor.dropped")
                .with_unit("{event}")
                .with_description(
                    "What conversations told the floor and found its queue full, by what (call, event)",
                )
                .build(),
        }
    }

    /// A floor viewer connected (+1) or went (-1).
    pub fn floor_viewers_changed(&self, delta: i64) {
        self.floor_viewers.add(delta, &[]);
    }

    /// A reload of the rubric file: `loaded`, or the running rubric kept because the file was
    /// `refused` (invalid), `empty` or `unreadable`.
    pub fn rubric_reload(&self, outcome: &'static str) {
        self.rubric_reloads
            .add(1, &[KeyValue::new("outcome", outcome)]);
    }

    /// A floor viewer's feed stopped: `left`, `too_slow` or `shutting_down`.
    pub fn floor_viewer_ended(&self, reason: &'static str) {
        self.floor_viewers_ended
            .add(1, &[KeyValue::new("reason", reason)]);
    }

    /// An event (`floor`, `batch`, `notice`) was queued for a floor viewer.
    pub fn floor_event(&self, event: &'static str) {
        self.floor_events.add(1, &[KeyValue::new("event", event)]);
    }

    /// Something a conversation told the floor found its queue full: a `call` not shown, an
    /// `event` not applied.
    pub fn floor_dropped(&self, what: &'static str) {
        self.floor_dropped.add(1, &[KeyValue::new("what", what)]);
    }

    /// Instruments that record nothing (tests, tools).
    pub fn noop() -> Self {
        Metrics::new(&opentelemetry::metrics::MeterProvider::meter(
            &opentelemetry::metrics::noop::NoopMeterProvider::new(),
            "hearken",
        ))
    }

    /// An utterance's update was handed to the transport `elapsed` after the utterance arrived.
    pub fn utterance_answered(&self, elapsed: Duration) {
        self.utterance_duration.record(elapsed.as_secs_f64(), &[]);
    }

    /// A stream opened (+1) or closed (-1).
    pub fn streams_changed(&self, delta: i64) {
        self.streams_active.add(delta, &[]);
    }

    /// Conversations went live (+1) or were freed (-1).
    pub fn conversations_changed(&self, delta: i64) {
        self.conversations_active.add(delta, &[]);
    }

    /// A conversation ended: `completed` (its `end` arrived), `abandoned` (idle or its stream
    /// closed) or `freed` (its stream failed before a scorecard).
    pub fn conversation_ended(&self, outcome: &'static str) {
        self.conversations_ended
            .add(1, &[KeyValue::new("outcome", outcome)]);
    }

    /// A message was rejected in band.
    /// `field` is a field path from the service's own closed set, never client text.
    pub fn rejected(&self, reason: &'static str, field: &str) {
        self.rejections.add(
            1,
            &[
                KeyValue::new("reason", reason),
                KeyValue::new("field", field.to_owned()),
            ],
        );
    }

    /// An alert was raised on a stream.
    pub fn alert_raised(&self, kind: &'static str, severity: &'static str) {
        self.alerts.add(
            1,
            &[
                KeyValue::new("kind", kind),
                KeyValue::new("severity", severity),
            ],
        );
    }

    /// `count` stream messages went `direction`.
    pub fn stream_messages(&self, direction: Direction, count: u64) {
        let direction = match direction {
            Direction::Received => "received",
            Direction::Sent => "sent",
        };
        self.stream_messages
            .add(count, &[KeyValue::new("direction", direction)]);
    }

    /// An RPC finished: `method` as `package.Service/Method` (or `_OTHER`), `code` as the gRPC
    /// status code name (`OK`, `UNAVAILABLE`, ...).
    pub fn rpc_finished(&self, method: &'static str, code: &'static str, elapsed: Duration) {
        let mut attributes = vec![
            KeyValue::new("rpc.system.name", "grpc"),
            KeyValue::new("rpc.method", method),
            KeyValue::new("rpc.response.status_code", code),
        ];
        if code != "OK" {
            attributes.push(KeyValue::new("error.type", code));
        }
        self.rpc_duration.record(elapsed.as_secs_f64(), &attributes);
    }
}

//! `hearken pipeline`: conversations in from Kafka topics, updates, alerts and scorecards out
//! to Kafka topics, as a member of a consumer group (`docs/pipeline.md`).
//!
//! - `records`: input records → requests (hearken's proto3 JSON or protobuf, Contact Lens
//!   real-time events), responses and dead letters → output records.
//! - `checkpoint`: what a new owner of a partition needs to rebuild it exactly.
//! - `partition`: the owned partitions' conversations, driven by records; pure and
//!   deterministic, so a replica that re-reads a partition writes the very same records.
//! - `kafka`: the consumer, the producer, rebalances and commits, the loop.
//! - `metrics`: the pipeline's instruments.

pub mod checkpoint;
mod kafka;
mod metrics;
pub mod partition;
pub mod records;

use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::http::StatusCode;
use axum::routing::get;

pub use self::metrics::PipelineMetrics;
use self::records::{InputEncoding, OutputEncoding};
use crate::input::RoleMap;

/// Bootstrap servers, by default.
pub const DEFAULT_BROKERS: &str = "127.0.0.1:9092";
/// The consumer group, by default.
pub const DEFAULT_GROUP: &str = "hearken";
/// The topic read, by default.
pub const DEFAULT_INPUT_TOPIC: &str = "hearken.requests";
/// The topic every output kind goes to, by default.
pub const DEFAULT_OUTPUT_TOPIC: &str = "hearken.results";
/// The dead-letter topic, by default.
pub const DEFAULT_DEAD_LETTER_TOPIC: &str = "hearken.dead-letters";
/// The partitions' checkpoints, by default.
pub const DEFAULT_STATE_TOPIC: &str = "hearken.state";

/// The producer every hearken Kafka client starts from (the pipeline's outputs, `pipeline
/// send`): idempotent, Java-compatible key hashing, a short linger, lz4.
pub fn producer_config(brokers: &str) -> rdkafka::ClientConfig {
    let mut config = rdkafka::ClientConfig::new();
    config
        .set("bootstrap.servers", brokers)
        .set("enable.idempotence", "true")
        .set("partitioner", "murmur2_random")
        .set("linger.ms", "5")
        .set("compression.type", "lz4");
    config
}

/// How often offsets are committed, by default.
pub const DEFAULT_COMMIT_INTERVAL: Duration = Duration::from_secs(5);

/// Where each kind of output goes; `None` writes that kind nowhere (asked for with `-`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutputTopics {
    /// Score updates.
    pub updates: Option<String>,
    /// Alerts.
    pub alerts: Option<String>,
    /// Scorecards.
    pub scorecards: Option<String>,
    /// In-band rejections.
    pub rejections: Option<String>,
    /// Input records that were not scored, as they came, with the reason in headers.
    pub dead_letters: String,
    /// The partitions' checkpoints (compacted; `checkpoint`).
    pub state: String,
}

impl OutputTopics {
    /// Where responses of `kind` (as [`records::kind_of`] names it) go, if anywhere.
    pub fn for_kind(&self, kind: &str) -> Option<&str> {
        match kind {
            "update" => self.updates.as_deref(),
            "alert" => self.alerts.as_deref(),
            "scorecard" => self.scorecards.as_deref(),
            _ => self.rejections.as_deref(),
        }
    }
}

/// What `hearken pipeline` runs with.
#[derive(Debug, Clone)]
pub struct Config {
    /// `bootstrap.servers`.
    pub brokers: String,
    /// The consumer group.
    pub group: String,
    /// This client's id (the pod's name in Kubernetes).
    pub client_id: String,
    /// Topics read.
    pub input_topics: Vec<String>,
    /// Topics written.
    pub topics: OutputTopics,
    /// How input records are encoded when their `content-type` header does not say.
    pub input_encoding: InputEncoding,
    /// How output records are encoded.
    pub output_encoding: OutputEncoding,
    /// Roles for Contact Lens speaker labels.
    pub roles: RoleMap,
    /// Conversations' limits and timeouts.
    pub settings: partition::Settings,
    /// Largest input record value; larger ones are dead-lettered.
    pub max_record_bytes: usize,
    /// How often offsets are committed.
    pub commit_interval: Duration,
    /// librdkafka properties (`-X key=value`): `consumer.` or `producer.` prefixed for one side.
    pub kafka: Vec<(String, String)>,
}

/// Which client a librdkafka property (`-X`) is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// The consumer.
    Consumer,
    /// The producer.
    Producer,
}

/// Sets on `config` the properties meant for `side`: `consumer.KEY` or `producer.KEY` for
/// one side only (the prefix dropped), any other key for both.
pub fn apply_properties(
    config: &mut rdkafka::ClientConfig,
    properties: &[(String, String)],
    side: Side,
) {
    for (key, value) in properties {
        let (mine, theirs) = match side {
            Side::Consumer => ("consumer.", "producer."),
            Side::Producer => ("producer.", "consumer."),
        };
        if let Some(key) = key.strip_prefix(mine) {
            config.set(key, value);
        } else if !key.starts_with(theirs) {
            config.set(key, value);
        }
    }
}

/// The value of a record's header `name` (matched without regard to case), as text.
pub fn header<'a>(message: &'a impl rdkafka::Message, name: &str) -> Option<&'a str> {
    use rdkafka::message::Headers as _;
    let headers = message.headers()?;
    (0..headers.count())
        .filter_map(|i| headers.try_get(i))
        .find(|h| h.key.eq_ignore_ascii_case(name))
        .and_then(|h| h.value)
        .and_then(|v| std::str::from_utf8(v).ok())
}

/// What `/healthz` reports: whether the replica is a member of its group, and whether its
/// loop is turning.
#[derive(Debug)]
pub struct Health {
    group: String,
    started: Instant,
    member: AtomicBool,
    partitions: AtomicUsize,
    /// Milliseconds since `started` of the loop's last turn.
    last_tick: AtomicU64,
    errors: AtomicU64,
    failed: Mutex<Option<String>>,
}

/// A loop that has not turned for this long is stuck.
const STUCK_AFTER: Duration = Duration::from_secs(60);

impl Health {
    /// Not a member yet.
    pub fn new(group: &str) -> Self {
        Health {
            group: group.to_owned(),
            started: Instant::now(),
            member: AtomicBool::new(false),
            partitions: AtomicUsize::new(0),
            last_tick: AtomicU64::new(0),
            errors: AtomicU64::new(0),
            failed: Mutex::new(None),
        }
    }

    fn tick(&self) {
        self.last_tick
            .store(self.started.elapsed().as_millis() as u64, Ordering::Relaxed);
    }

    fn joined(&self, partitions: usize) {
        self.partitions.store(partitions, Ordering::Relaxed);
        self.member.store(true, Ordering::Relaxed);
    }

    fn left(&self) {
        self.member.store(false, Ordering::Relaxed);
        self.partitions.store(0, Ordering::Relaxed);
    }

    fn note_error(&self) {
        self.errors.fetch_add(1, Ordering::Relaxed);
    }

    fn fail(&self, why: String) {
        if let Ok(mut failed) = self.failed.lock() {
            *failed = Some(why);
        }
    }

    /// `failed`, `stuck`, `member` or `joining`, and the error that failed the loop.
    fn status(&self) -> (&'static str, Option<String>) {
        let failed = self.failed.lock().ok().and_then(|f| f.clone());
        let since_tick = self.started.elapsed().saturating_sub(Duration::from_millis(
            self.last_tick.load(Ordering::Relaxed),
        ));
        let status = if failed.is_some() {
            "failed"
        } else if since_tick > STUCK_AFTER {
            "stuck"
        } else if self.member.load(Ordering::Relaxed) {
            "member"
        } else {
            "joining"
        };
        (status, failed)
    }

    fn answer(&self, ok: impl Fn(&str) -> bool) -> (StatusCode, String) {
        let (status, failed) = self.status();
        let code = if ok(status) {
            StatusCode::OK
        } else {
            StatusCode::SERVICE_UNAVAILABLE
        };
        let body = serde_json::json!({
            "status": status,
            "group": self.group,
            "partitions": self.partitions.load(Ordering::Relaxed),
            "consumer_errors": self.errors.load(Ordering::Relaxed),
            "error": failed,
        });
        (code, body.to_string())
    }

    /// What `/healthz` (readiness) answers: 200 while a member of the group with a turning
    /// loop, 503 otherwise.
    pub fn report(&self) -> (StatusCode, String) {
        self.answer(|s| s == "member")
    }

    /// What `/livez` answers: 200 unless the loop has failed or stopped turning (a replica
    /// still joining its group is alive).
    pub fn alive(&self) -> (StatusCode, String) {
        self.answer(|s| !matches!(s, "failed" | "stuck"))
    }

    /// `/healthz` (readiness) and `/livez` (liveness) on the metrics port.
    pub fn routes(self: &Arc<Self>) -> Router {
        let json = || [(axum::http::header::CONTENT_TYPE, "application/json")];
        let ready = Arc::clone(self);
        let live = Arc::clone(self);
        Router::new()
            .route(
                "/healthz",
                get(move || {
                    let (code, body) = ready.report();
                    async move { (code, json(), body) }
                }),
            )
            .route(
                "/livez",
                get(move || {
                    let (code, body) = live.alive();
                    async move { (code, json(), body) }
                }),
            )
    }
}

/// Runs the pipeline on a thread of its own until `stop` is set (SIGTERM), then delivers,
/// commits and leaves the group. Returns the loop's error, if it stopped on one.
pub fn spawn(
    config: Config,
    health: Arc<Health>,
    metrics: PipelineMetrics,
    service: Arc<crate::telemetry::metrics::Metrics>,
    stop: Arc<AtomicBool>,
) -> std::io::Result<std::thread::JoinHandle<anyhow::Result<()>>> {
    std::thread::Builder::new()
        .name("pipeline".into())
        .spawn(move || kafka::run(config, health, metrics, service, stop))
}

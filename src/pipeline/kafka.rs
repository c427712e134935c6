//! The Kafka side: a consumer in a group (librdkafka through `rdkafka`), a producer for the
//! outputs, the rebalance callbacks that commit and take partitions on, and the loop.
//!
//! Everything runs on one thread: librdkafka calls the rebalance callback from inside `poll`,
//! on the thread that polls, so the state is never touched by two threads at once (it sits in a
//! mutex only because the callback's context must be `Sync`).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::Context as _;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance};
use rdkafka::error::KafkaError;
use rdkafka::message::{BorrowedMessage, Header, Message, OwnedHeaders};
use rdkafka::producer::{BaseRecord, DeliveryResult, Producer, ProducerContext, ThreadedProducer};
use rdkafka::statistics::Statistics;
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
use rdkafka::{ClientContext, types::RDKafkaErrorCode};

use super::checkpoint::{self, Checkpoint};
use super::partition::{Outcome, PartitionId, Record, State};
use super::records::{self, DeadLetter, DeadReason};
use super::{Config, Health};
use crate::proto::WireName as _;
use crate::proto::v1::StreamConversationsResponse;

/// Longest wait for the producer to deliver what it holds before a commit.
const FLUSH_TIMEOUT: Duration = Duration::from_secs(30);
/// Longest wait for the committed offsets of partitions just assigned.
const COMMITTED_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest wait for the checkpoints of partitions just assigned.
const CHECKPOINT_TIMEOUT: Duration = Duration::from_secs(30);

/// What the loop and the rebalance callback share.
struct Shared {
    config: Config,
    state: Mutex<State>,
    producer: ThreadedProducer<Delivery>,
    /// Writes the checkpoints: one record per batch, so that a reader may start at any of them
    /// (tansu 0.6.0 answers nothing to a fetch that starts inside a batch).
    checkpoints: ThreadedProducer<Delivery>,
    /// Reads the checkpoints back (assigned, no group).
    reader: BaseConsumer,
    /// Partitions of the state topic.
    state_partitions: i32,
    /// Why the replica must stop, set where an error cannot be returned (a rebalance callback).
    fatal: Mutex<Option<String>>,
    health: Arc<Health>,
    metrics: super::PipelineMetrics,
    service: Arc<crate::telemetry::metrics::Metrics>,
    topics: Mutex<HashMap<String, Arc<str>>>,
}

impl Shared {
    fn state(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The topic's name, shared.
    fn topic(&self, name: &str) -> Arc<str> {
        let mut topics = self
            .topics
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        // Looked up by `&str` first: every record asks, and only a new topic allocates.
        if let Some(topic) = topics.get(name) {
            return Arc::clone(topic);
        }
        let topic: Arc<str> = Arc::from(name);
        topics.insert(name.to_owned(), Arc::clone(&topic));
        topic
    }

    /// Waits until every output handed to the producer is delivered; an output that could not
    /// be delivered (after librdkafka's retries) is an error, and nothing is committed after it.
    fn flush(&self) -> anyhow::Result<()> {
        delivered(&self.producer, "output record(s)")
    }

    /// The state topic's partition that holds `partition`'s checkpoints.
    fn state_partition(&self, partition: i32) -> i32 {
        partition.rem_euclid(self.state_partitions.max(1))
    }

    /// Commits `partitions` (all owned ones if `None`) at their commit points, after the
    /// outputs so far are delivered and the partitions' checkpoints written.
    fn commit(
        &self,
        consumer: &BaseConsumer<Group>,
        partitions: Option<&TopicPartitionList>,
        mode: CommitMode,
    ) -> anyhow::Result<()> {
        self.flush()?;
        let mut state = self.state();
        let owned: Vec<PartitionId> = match partitions {
            Some(tpl) => tpl
                .elements()
                .iter()
                .map(|e| (self.topic(e.topic()), e.partition()))
                .collect(),
            None => state.partitions().cloned().collect(),
        };
        let mut tpl = TopicPartitionList::new();
        let mut checkpoints = Vec::new();
        for id in &owned {
            let Some(point) = state.commit_point(id) else {
                continue;
            };
            if let Some(c) = state.checkpoint(id) {
                checkpoints.push((id.clone(), c));
            }
            tpl.add_partition(&id.0, id.1)
                .set_offset(Offset::Offset(point.resume))
                .context("a commit offset")?;
        }
        drop(state);
        if tpl.count() == 0 {
            return Ok(());
        }
        if !checkpoints.is_empty() {
            for ((topic, partition), c) in &checkpoints {
                let key = checkpoint::key(&self.config.group, topic, *partition);
                let value = c.encode();
                let record: BaseRecord<'_, [u8], [u8]> = BaseRecord::to(&self.config.topics.state)
                    .partition(self.state_partition(*partition))
                    .key(key.as_bytes())
                    .payload(&value);
                send_record(&self.checkpoints, &self.config.topics.state, record);
            }
            delivered(&self.checkpoints, "checkpoint(s)")?;
            for _ in &checkpoints {
                self.metrics.checkpoint("written");
            }
        }
        tracing::debug!(offsets = ?tpl, "committing");
        match consumer.commit(&tpl, mode) {
            Ok(()) => {
                self.metrics.commit("ok");
                Ok(())
            }
            Err(error) => {
                self.metrics.commit("failed");
                // The next commit tries again; a failed commit only means more to re-read.
                tracing::warn!(%error, "offset commit failed");
                Ok(())
            }
        }
    }

    /// The latest checkpoint of each of `wanted` (topic, partition) for this group, read from
    /// the end of the state topic backwards, in growing windows: on a compacted topic each
    /// partition's latest checkpoint is near the end.
    fn read_checkpoints(
        &self,
        wanted: &[(String, i32)],
    ) -> anyhow::Result<HashMap<(String, i32), Checkpoint>> {
        let state = &self.config.topics.state;
        let deadline = Instant::now() + CHECKPOINT_TIMEOUT;
        let mut by_state_partition: HashMap<i32, HashMap<String, (String, i32)>> = HashMap::new();
        for (topic, partition) in wanted {
            by_state_partition
                .entry(self.state_partition(*partition))
                .or_default()
                .insert(
                    checkpoint::key(&self.config.group, topic, *partition),
                    (topic.clone(), *partition),
                );
        }
        let mut found = HashMap::new();
        for (sp, mut keys) in by_state_partition {
            let (low, high) = self
                .reader
                .fetch_watermarks(state, sp, COMMITTED_TIMEOUT)
                .with_context(|| format!("the state topic {state} (partition {sp})"))?;
            let (mut end, mut window) = (high, 64_i64);
            while !keys.is_empty() && end > low {
                let start = (end - window).max(low);
                let mut latest: HashMap<String, Checkpoint> = HashMap::new();
                self.read_window(sp, start, end, deadline, |key, value| {
                    if keys.contains_key(key)
                        && let Some(c) = Checkpoint::decode(value)
                    {
                        latest.insert(key.to_owned(), c);
                    }
                })?;
                for (key, c) in latest {
                    if let Some(partition) = keys.remove(&key) {
                        found.insert(partition, c);
                    }
                }
                end = start;
                window = window.saturating_mul(4);
            }
        }
        Ok(found)
    }

    /// Reads the state topic's partition `sp` from `start` up to (not including) `end`.
    fn read_window(
        &self,
        sp: i32,
        start: i64,
        end: i64,
        deadline: Instant,
        mut each: impl FnMut(&str, &[u8]),
    ) -> anyhow::Result<()> {
        let state = &self.config.topics.state;
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition_offset(state, sp, Offset::Offset(start))
            .context("a state topic offset")?;
        self.reader.assign(&tpl).context("assign the state topic")?;
        loop {
            anyhow::ensure!(
                Instant::now() < deadline,
                "the state topic {state} (partition {sp}) was not read up to offset {end} within {CHECKPOINT_TIMEOUT:?}"
            );
            match self.reader.poll(Duration::from_millis(100)) {
                Some(Ok(m)) => {
                    if m.offset() >= end {
                        break;
                    }
                    if let (Some(key), Some(value)) = (m.key(), m.payload())
                        && let Ok(key) = std::str::from_utf8(key)
                    {
                        each(key, value);
                    }
                    if m.offset() + 1 >= end {
                        break;
                    }
                }
                Some(Err(KafkaError::PartitionEOF(_))) => break,
                Some(Err(error)) => {
                    anyhow::bail!("reading the state topic {state}: {error}")
                }
                None => {}
            }
        }
        self.reader.unassign().context("unassign the state topic")?;
        Ok(())
    }

    /// Whether the checkpoint found for a partition just taken on is used (counted and logged):
    /// not if it is older than the committed offset `from`.
    fn judge_checkpoint(
        &self,
        topic: &str,
        partition: i32,
        from: Option<i64>,
        mut checkpoint: Option<Checkpoint>,
    ) -> Option<Checkpoint> {
        // A commit past the checkpoint's resume offset was made without it (by a release
        // before checkpoints): the checkpoint is older than the commit, and not used.
        if let (Some(c), Some(from)) = (&checkpoint, from)
            && from > c.resume
        {
            tracing::warn!(
                topic,
                partition,
                committed = from,
                checkpoint = c.resume,
                "the checkpoint is older than the committed offset: not used; outputs of re-read records are written again"
            );
            self.metrics.checkpoint("stale");
            checkpoint = None;
        }
        match &checkpoint {
            Some(c) => {
                self.metrics.checkpoint("found");
                if from.is_none_or(|from| from < c.processed) {
                    self.metrics.rebuild();
                }
            }
            None if from.is_some() => {
                self.metrics.checkpoint("none");
                tracing::warn!(
                    topic,
                    partition,
                    "a committed partition without a checkpoint: outputs of re-read records are written again"
                );
            }
            None => self.metrics.checkpoint("none"),
        }
        tracing::info!(
            topic,
            partition,
            committed = ?from,
            resume = ?checkpoint.as_ref().map(|c| c.resume),
            processed = ?checkpoint.as_ref().map(|c| c.processed),
            live = checkpoint.as_ref().map_or(0, |c| c.live.len()),
            "partition taken on"
        );
        checkpoint
    }
}

/// Waits until everything handed to `producer` is delivered. A record that could not be
/// delivered (after librdkafka's retries) is an error: nothing more is committed, so the
/// partitions' next owner writes it again.
fn delivered(producer: &ThreadedProducer<Delivery>, what: &str) -> anyhow::Result<()> {
    producer
        .flush(FLUSH_TIMEOUT)
        .with_context(|| format!("the producer could not deliver its {what} in time"))?;
    if let Some((failed, first)) = producer.context().failures() {
        anyhow::bail!(
            "{failed} {what} could not be delivered (first: {first}); nothing more is committed, so the partitions' next owner writes them again"
        );
    }
    Ok(())
}

/// The producer's context: counts deliveries that failed.
struct Delivery {
    failed: AtomicU64,
    first_error: Mutex<String>,
}

impl ClientContext for Delivery {}

impl Delivery {
    /// Counts an output that will not reach its topic, keeping the first reason.
    fn failed(&self, error: &KafkaError, topic: &str) {
        if self.failed.fetch_add(1, Ordering::Relaxed) == 0
            && let Ok(mut first) = self.first_error.lock()
        {
            *first = format!("{error} on topic {topic}");
        }
    }

    /// How many outputs failed so far, and the first reason, if any did.
    fn failures(&self) -> Option<(u64, String)> {
        let failed = self.failed.load(Ordering::Relaxed);
        (failed > 0).then(|| {
            let first = self
                .first_error
                .lock()
                .map(|e| e.clone())
                .unwrap_or_default();
            (failed, first)
        })
    }
}

impl ProducerContext for Delivery {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        if let Err((error, message)) = result {
            self.failed(error, message.topic());
            tracing::error!(%error, topic = message.topic(), "output record not delivered");
        }
    }
}

/// The consumer's context: rebalances and statistics.
struct Group {
    shared: Arc<Shared>,
}

impl ClientContext for Group {
    fn stats(&self, statistics: Statistics) {
        for (name, topic) in &statistics.topics {
            for (number, p) in &topic.partitions {
                // Not read yet: the high watermark less the position. (librdkafka's own
                // `consumer_lag` counts from the committed offset, which hearken keeps at the
                // oldest live conversation's first record: that is the re-read span.)
                if *number < 0 || p.hi_offset < 0 || p.app_offset < 0 {
                    continue;
                }
                self.shared
                    .metrics
                    .lag(name, *number, (p.hi_offset - p.app_offset).max(0));
                if p.committed_offset >= 0 {
                    self.shared.metrics.reread(
                        name,
                        *number,
                        (p.app_offset - p.committed_offset).max(0),
                    );
                }
            }
        }
    }
}

impl ConsumerContext for Group {
    fn pre_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        let shared = &self.shared;
        match rebalance {
            Rebalance::Revoke(tpl) => {
                shared.metrics.rebalance("revoke");
                // Whatever was written for these partitions is delivered and committed before
                // they go, so that their next owner re-reads as little as possible.
                if let Err(error) = shared.commit(consumer, Some(tpl), CommitMode::Sync) {
                    tracing::error!(error = %format!("{error:#}"), "commit before revoke failed");
                    shared.health.fail(format!("{error:#}"));
                }
                let mut state = shared.state();
                let mut handed_over = 0;
                for e in tpl.elements() {
                    let id = (shared.topic(e.topic()), e.partition());
                    handed_over += state.revoke(&id);
                    shared.metrics.lag(e.topic(), e.partition(), 0);
                    shared.metrics.reread(e.topic(), e.partition(), 0);
                }
                shared.service.conversations_changed(-(handed_over as i64));
                shared.metrics.partitions(state.partitions().count());
                shared.health.joined(state.partitions().count());
                tracing::info!(
                    partitions = tpl.count(),
                    conversations = handed_over,
                    "partitions revoked"
                );
            }
            Rebalance::Assign(_) => {}
            Rebalance::Error(error) => {
                shared.metrics.rebalance("error");
                tracing::warn!(%error, "rebalance error");
            }
        }
    }

    fn post_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        let Rebalance::Assign(tpl) = rebalance else {
            return;
        };
        let shared = &self.shared;
        shared.metrics.rebalance("assign");
        let committed = consumer
            .committed_offsets((*tpl).clone(), COMMITTED_TIMEOUT)
            .map_err(|error| tracing::warn!(%error, "committed offsets unknown"))
            .ok();
        let wanted: Vec<(String, i32)> = tpl
            .elements()
            .iter()
            .map(|e| (e.topic().to_owned(), e.partition()))
            .collect();
        // Without its checkpoint a partition cannot be rebuilt exactly: the replica stops
        // (its partitions go to another, or to this one restarted) rather than guess.
        let mut found = match shared.read_checkpoints(&wanted) {
            Ok(found) => found,
            Err(error) => {
                let why = format!("cannot read the partitions' checkpoints: {error:#}");
                tracing::error!(error = %why, "stopping");
                shared.health.fail(why.clone());
                if let Ok(mut fatal) = shared.fatal.lock() {
                    *fatal = Some(why);
                }
                return;
            }
        };
        let mut state = shared.state();
        for e in tpl.elements() {
            let topic = shared.topic(e.topic());
            let from = committed
                .as_ref()
                .and_then(|c| c.find_partition(e.topic(), e.partition()))
                .and_then(|c| match c.offset() {
                    Offset::Offset(o) => Some(o),
                    _ => None, // nothing committed yet
                });
            let checkpoint = shared.judge_checkpoint(
                e.topic(),
                e.partition(),
                from,
                found.remove(&(e.topic().to_owned(), e.partition())),
            );
            state.assign((topic, e.partition()), checkpoint, from);
        }
        shared.metrics.partitions(state.partitions().count());
        shared.health.joined(state.partitions().count());
        tracing::info!(partitions = tpl.count(), "partitions assigned");
    }
}

/// The four librdkafka clients' settings: the outputs' producer, the checkpoints' producer,
/// the checkpoints' reader and the group's consumer, each with the `-X` properties for its side.
struct ClientConfigs {
    producer: ClientConfig,
    checkpoints: ClientConfig,
    reader: ClientConfig,
    consumer: ClientConfig,
}

impl ClientConfigs {
    fn new(config: &Config) -> ClientConfigs {
        let mut common = ClientConfig::new();
        common
            .set("bootstrap.servers", &config.brokers)
            .set("client.id", &config.client_id);
        let mut producer = super::producer_config(&config.brokers);
        producer.set("client.id", &config.client_id);
        let mut checkpoints = producer.clone();
        let mut reader = common.clone();
        let mut consumer = common;
        consumer
            .set("group.id", &config.group)
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("auto.offset.reset", "earliest")
            // Incremental rebalancing: only the partitions that move are revoked and rebuilt.
            // (`-X consumer.partition.assignment.strategy=range` for eager; docs/pipeline.md
            // says how tansu 0.6.0's coordinator behaved with each.)
            .set("partition.assignment.strategy", "cooperative-sticky")
            .set("statistics.interval.ms", "5000");
        super::apply_properties(&mut producer, &config.kafka, super::Side::Producer);
        super::apply_properties(&mut consumer, &config.kafka, super::Side::Consumer);
        super::apply_properties(&mut checkpoints, &config.kafka, super::Side::Producer);
        // The checkpoint writer sends each record at once, in a batch of its own, whatever `-X`
        // says.
        checkpoints
            .set("linger.ms", "0")
            .set("batch.num.messages", "1");
        super::apply_properties(&mut reader, &config.kafka, super::Side::Consumer);
        // librdkafka wants a group for `assign`; this one is never joined (no subscribe) and
        // never committed to.
        reader
            .set("group.id", format!("{}.checkpoint-reader", config.group))
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("enable.partition.eof", "true");
        ClientConfigs {
            producer,
            checkpoints,
            reader,
            consumer,
        }
    }
}

impl Delivery {
    fn new() -> Delivery {
        Delivery {
            failed: AtomicU64::new(0),
            first_error: Mutex::new(String::new()),
        }
    }
}

/// How many partitions the state topic has; an error that says to create it if it is missing.
fn state_partitions(reader: &BaseConsumer, topic: &str) -> anyhow::Result<i32> {
    reader
        .fetch_metadata(Some(topic), COMMITTED_TIMEOUT)
        .context("cannot read the state topic's metadata")?
        .topics()
        .iter()
        .find(|t| t.name() == topic && t.error().is_none())
        .map(|t| t.partitions().len() as i32)
        .filter(|&n| n > 0)
        .with_context(|| {
            format!(
                "the state topic {topic} does not exist: create it (compacted; one partition is plenty) or name another with --state-topic"
            )
        })
}

/// Runs the consumer until `stop` is set: then delivers, commits and leaves the group.
pub(super) fn run(
    config: Config,
    health: Arc<Health>,
    metrics: super::PipelineMetrics,
    service: Arc<crate::telemetry::metrics::Metrics>,
    stop: Arc<AtomicBool>,
) -> anyhow::Result<()> {
    let clients = ClientConfigs::new(&config);
    let producer: ThreadedProducer<Delivery> = clients
        .producer
        .create_with_context(Delivery::new())
        .context("cannot create the Kafka producer")?;
    let checkpoints: ThreadedProducer<Delivery> = clients
        .checkpoints
        .create_with_context(Delivery::new())
        .context("cannot create the Kafka producer for checkpoints")?;
    let reader: BaseConsumer = clients
        .reader
        .create()
        .context("cannot create the Kafka reader for checkpoints")?;
    let state_partitions = state_partitions(&reader, &config.topics.state)?;
    let shared = Arc::new(Shared {
        checkpoints,
        reader,
        state_partitions,
        fatal: Mutex::new(None),
        state: Mutex::new(State::new(config.settings.clone())),
        config,
        producer,
        health,
        metrics,
        service,
        topics: Mutex::new(HashMap::new()),
    });
    let consumer: BaseConsumer<Group> = clients
        .consumer
        .create_with_context(Group {
            shared: Arc::clone(&shared),
        })
        .context("cannot create the Kafka consumer")?;
    let topics: Vec<&str> = shared
        .config
        .input_topics
        .iter()
        .map(String::as_str)
        .collect();
    consumer
        .subscribe(&topics)
        .context("cannot subscribe to the input topics")?;
    tracing::info!(group = %shared.config.group, topics = ?topics, "pipeline consuming");

    let result = consume(&shared, &consumer, &stop);
    // Stopping: what was written is delivered and committed; closing leaves the group, which
    // revokes (and commits) every partition through the callback.
    let closing = shared.commit(&consumer, None, CommitMode::Sync);
    consumer.unsubscribe();
    let deadline = Instant::now() + Duration::from_secs(10);
    while shared.state().partitions().next().is_some() && Instant::now() < deadline {
        let _ = consumer.poll(Duration::from_millis(100));
    }
    drop(consumer);
    shared.health.left();
    result.and(closing)
}

fn consume(
    shared: &Arc<Shared>,
    consumer: &BaseConsumer<Group>,
    stop: &AtomicBool,
) -> anyhow::Result<()> {
    let settings = &shared.config.settings;
    let sweep_every =
        (settings.idle_timeout / 10).clamp(Duration::from_millis(100), Duration::from_secs(30));
    let mut last_sweep = Instant::now();
    let mut last_commit = Instant::now();
    while !stop.load(Ordering::Relaxed) {
        if let Some(why) = shared.fatal.lock().ok().and_then(|mut f| f.take()) {
            anyhow::bail!(why);
        }
        shared.health.tick();
        match consumer.poll(Duration::from_millis(100)) {
            Some(Ok(message)) => on_message(shared, &message),
            Some(Err(error)) => on_error(shared, error)?,
            None => {}
        }
        if last_sweep.elapsed() >= sweep_every {
            last_sweep = Instant::now();
            let now = SystemTime::now();
            // Partitions with no record since `quiet_since` move to the wall clock (none while
            // the process is younger than the idle timeout).
            let quiet_since = Instant::now().checked_sub(settings.idle_timeout);
            let swept = shared.state().sweep(now, quiet_since);
            for ((topic, partition), outcome) in swept {
                let source = Source {
                    topic: &topic,
                    partition,
                    offset: None,
                };
                write(shared, source, None, outcome, None);
            }
        }
        if last_commit.elapsed() >= shared.config.commit_interval {
            last_commit = Instant::now();
            shared.commit(consumer, None, CommitMode::Async)?;
        }
    }
    Ok(())
}

fn on_error(shared: &Shared, error: KafkaError) -> anyhow::Result<()> {
    match error.rdkafka_error_code() {
        // Fatal for this client: stop, so that the group hands the partitions to a replica
        // that works.
        Some(RDKafkaErrorCode::Fatal) => anyhow::bail!("Kafka client error: {error}"),
        _ => {
            tracing::warn!(%error, "Kafka consumer error");
            shared.health.note_error();
            Ok(())
        }
    }
}

fn on_message(shared: &Shared, message: &BorrowedMessage<'_>) {
    let topic = shared.topic(message.topic());
    let source = Source {
        topic: message.topic(),
        partition: message.partition(),
        offset: Some(message.offset()),
    };
    let timestamp_ms = message.timestamp().to_millis();
    let key = message.key().map(std::str::from_utf8);
    let checked = match (key, message.payload()) {
        (None, _) => Err(DeadLetter::new(
            DeadReason::NoKey,
            "key",
            "the record has no key; key each record by its conversation id",
        )),
        (Some(Err(_)), _) => Err(DeadLetter::new(
            DeadReason::BadKey,
            "key",
            "the key is not UTF-8",
        )),
        (Some(Ok(key)), _)
            if crate::engine::limits::check_id(
                key,
                "key",
                shared.config.settings.input.max_id_bytes,
            )
            .is_err() =>
        {
            Err(DeadLetter::new(
                DeadReason::BadKey,
                "key",
                format!(
                    "the key is not a conversation id (1 to {} bytes, no control characters)",
                    shared.config.settings.input.max_id_bytes
                ),
            ))
        }
        (Some(Ok(_)), None) => Err(DeadLetter::new(
            DeadReason::NoValue,
            "value",
            "the record has no value",
        )),
        (Some(Ok(_)), Some(value)) if value.len() > shared.config.max_record_bytes => {
            Err(DeadLetter::new(
                DeadReason::TooLarge,
                "value",
                format!(
                    "{} bytes, over the limit of {} (--max-record-bytes)",
                    value.len(),
                    shared.config.max_record_bytes
                ),
            ))
        }
        (Some(Ok(key)), Some(value)) => Ok((key, value)),
    };
    let record = |key| Record {
        partition: message.partition(),
        offset: message.offset(),
        timestamp_ms,
        key,
    };
    let outcome = match checked.and_then(|(key, value)| {
        let decoded = records::decode(
            key,
            value,
            super::header(message, records::HEADER_CONTENT_TYPE),
            shared.config.input_encoding,
            &shared.config.roles,
        )?;
        Ok((key, decoded))
    }) {
        Ok((key, decoded)) => shared.state().record(&topic, record(key), Some(decoded)),
        Err(dead) => {
            let mut outcome = shared.state().record(&topic, record(""), None);
            outcome.dead = Some(dead);
            outcome
        }
    };
    write(shared, source, Some(message), outcome, timestamp_ms);
}

/// Hands a record's (or a sweep's) outputs to the producer, unless the record was only read to
/// rebuild state.
/// The input record outputs answer (`topic/partition/offset`, or `topic/partition/-` for a
/// sweep), written out only when there is something to write.
struct Source<'a> {
    topic: &'a str,
    partition: i32,
    offset: Option<i64>,
}

impl std::fmt::Display for Source<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.offset {
            Some(offset) => write!(f, "{}/{}/{offset}", self.topic, self.partition),
            None => write!(f, "{}/{}/-", self.topic, self.partition),
        }
    }
}

fn write(
    shared: &Shared,
    source: Source<'_>,
    message: Option<&BorrowedMessage<'_>>,
    outcome: Outcome,
    timestamp_ms: Option<i64>,
) {
    let metrics = &shared.metrics;
    let service = &shared.service;
    if outcome.opened > 0 {
        service.conversations_changed(i64::from(outcome.opened));
    }
    let ended = outcome.completed + outcome.abandoned;
    if ended > 0 {
        service.conversations_changed(-i64::from(ended));
    }
    if outcome.not_owned {
        metrics.record_in("not_owned");
        return;
    }
    if outcome.redelivered {
        metrics.record_in("redelivered");
        return;
    }
    if outcome.rebuilt {
        metrics.rebuilt_record();
        // A record of a call that was not live at the checkpoint (its tail, or a call that
        // ended before it): passed over, nothing opened.
        metrics.record_in(if outcome.passed_over {
            "passed_over"
        } else {
            "rebuilt"
        });
        return;
    }
    for _ in 0..outcome.completed {
        service.conversation_ended("completed");
    }
    for _ in 0..outcome.abandoned {
        service.conversation_ended("abandoned");
    }
    if message.is_some() {
        metrics.record_in(if outcome.dead.is_some() {
            "dead_letter"
        } else {
            "scored"
        });
    }
    if !outcome.responses.is_empty() || outcome.dead.is_some() {
        send_outputs(shared, &source.to_string(), message, &outcome, timestamp_ms);
    }
    if let Some(ts) = timestamp_ms {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64);
        metrics.latency(Duration::from_millis(now.saturating_sub(ts).max(0) as u64));
    }
}

/// Hands a record's responses to their topics and, if it is dead-lettered, the record to the
/// dead-letter topic.
fn send_outputs(
    shared: &Shared,
    source: &str,
    message: Option<&BorrowedMessage<'_>>,
    outcome: &Outcome,
    timestamp_ms: Option<i64>,
) {
    let (metrics, service) = (&shared.metrics, &shared.service);
    let source_time = timestamp_ms.map(|t| t.to_string()).unwrap_or_default();
    for response in &outcome.responses {
        let kind = records::kind_of(response);
        count(service, response);
        let Some(topic) = shared.config.topics.for_kind(kind) else {
            continue; // that kind is not written (its topic set to `-`)
        };
        let value = shared.config.output_encoding.encode(response);
        let seq = response.seq.to_string();
        let headers = OwnedHeaders::new()
            .insert(Header {
                key: records::HEADER_CONTENT_TYPE,
                value: Some(shared.config.output_encoding.content_type()),
            })
            .insert(Header {
                key: records::HEADER_SEQ,
                value: Some(&seq),
            })
            .insert(Header {
                key: records::HEADER_KIND,
                value: Some(kind),
            })
            .insert(Header {
                key: records::HEADER_SOURCE,
                value: Some(source),
            })
            .insert(Header {
                key: records::HEADER_SOURCE_TIME,
                value: Some(&source_time),
            });
        send_bytes(
            shared,
            topic,
            Some(response.conversation_id.as_bytes()),
            Some(&value),
            headers,
        );
        metrics.records_out(kind, 1);
    }
    if let (Some(dead), Some(message)) = (&outcome.dead, message) {
        send_dead_letter(shared, source, message, dead);
    }
}

/// Hands the record `message` to the dead-letter topic as it was read, with `dead`'s reasons.
fn send_dead_letter(
    shared: &Shared,
    source: &str,
    message: &BorrowedMessage<'_>,
    dead: &DeadLetter,
) {
    let metrics = &shared.metrics;
    metrics.dead_letter(dead.reason.as_str());
    // The record as read: its key, value and headers, each absent where it was (a keyless
    // record's dead letter has no key, a tombstone's no value), then hearken's reasons.
    let mut headers = OwnedHeaders::new();
    if let Some(read) = message.headers() {
        for h in rdkafka::message::Headers::iter(read) {
            headers = headers.insert(Header {
                key: h.key,
                value: h.value,
            });
        }
    }
    let headers = headers
        .insert(Header {
            key: records::HEADER_ERROR_REASON,
            value: Some(dead.reason.as_str()),
        })
        .insert(Header {
            key: records::HEADER_ERROR_FIELD,
            value: Some(&dead.field),
        })
        .insert(Header {
            key: records::HEADER_ERROR_DESCRIPTION,
            value: Some(&dead.description),
        })
        .insert(Header {
            key: records::HEADER_SOURCE,
            value: Some(source),
        });
    send_bytes(
        shared,
        &shared.config.topics.dead_letters,
        message.key(),
        message.payload(),
        headers,
    );
    metrics.records_out("dead-letter", 1);
    tracing::info!(reason = dead.reason.as_str(), field = %dead.field, source, "record dead-lettered");
}

fn count(service: &crate::telemetry::metrics::Metrics, response: &StreamConversationsResponse) {
    use crate::proto::v1::stream_conversations_response::Payload;
    match &response.payload {
        Some(Payload::Rejection(r)) => service.rejected(r.reason().upper(), &r.field),
        Some(Payload::Alert(a)) => service.alert_raised(a.kind().upper(), a.severity().upper()),
        _ => {}
    }
}

/// Hands one record to the producer, waiting while its queue is full (backpressure: the
/// consumer reads no further meanwhile).
fn send_bytes(
    shared: &Shared,
    topic: &str,
    key: Option<&[u8]>,
    value: Option<&[u8]>,
    headers: OwnedHeaders,
) {
    let mut record: BaseRecord<'_, [u8], [u8]> = BaseRecord::to(topic).headers(headers);
    if let Some(key) = key {
        record = record.key(key);
    }
    if let Some(value) = value {
        record = record.payload(value);
    }
    send_record(&shared.producer, topic, record);
}

/// Hands `record` to `producer`, waiting while its queue is full.
fn send_record(
    producer: &ThreadedProducer<Delivery>,
    topic: &str,
    mut record: BaseRecord<'_, [u8], [u8]>,
) {
    loop {
        match producer.send(record) {
            Ok(()) => return,
            Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                record = back;
                std::thread::sleep(Duration::from_millis(5));
            }
            Err((error, _)) => {
                // Not queued at all (an invalid topic name, a record over message.max.bytes):
                // counted as a failed delivery, so nothing is committed past it.
                producer.context().failed(&error, topic);
                tracing::error!(%error, topic, "output record not queued");
                return;
            }
        }
    }
}

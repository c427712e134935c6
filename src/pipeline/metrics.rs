//! The pipeline's instruments (beside the service's `hearken.conversations.*`, alerts and
//! rejections, which it records too). Attributes are closed sets and partition numbers: never
//! a conversation id or any text.

use std::time::Duration;

use opentelemetry::KeyValue;
use opentelemetry::metrics::{Counter, Gauge, Histogram, Meter};

/// The pipeline's instruments.
#[derive(Debug, Clone)]
pub struct PipelineMetrics {
    records_in: Counter<u64>,
    records_out: Counter<u64>,
    dead_letters: Counter<u64>,
    rebuilds: Counter<u64>,
    rebuilt_records: Counter<u64>,
    rebalances: Counter<u64>,
    commits: Counter<u64>,
    checkpoints: Counter<u64>,
    lag: Gauge<i64>,
    reread: Gauge<i64>,
    partitions: Gauge<i64>,
    latency: Histogram<f64>,
}

const LATENCY_BUCKETS: [f64; 14] = [
    0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0, 60.0, 600.0,
];

impl PipelineMetrics {
    /// Creates the instruments on `meter`.
    pub fn new(meter: &Meter) -> Self {
        PipelineMetrics {
            records_in: meter
                .u64_counter("hearken.pipeline.records.in")
                .with_unit("{record}")
                .with_description(
                    "Input records read, by outcome (scored, dead_letter, rebuilt, passed_over, not_owned, redelivered)",
                )
                .build(),
            records_out: meter
                .u64_counter("hearken.pipeline.records.out")
                .with_unit("{record}")
                .with_description(
                    "Output records written, by kind (update, alert, scorecard, rejection, dead-letter)",
                )
                .build(),
            dead_letters: meter
                .u64_counter("hearken.pipeline.dead_letters")
                .with_unit("{record}")
                .with_description("Input records sent to the dead-letter topic, by reason")
                .build(),
            rebuilds: meter
                .u64_counter("hearken.pipeline.rebuilds")
                .with_unit("{partition}")
                .with_description(
                    "Partitions taken over whose conversations are rebuilt by re-reading records an earlier owner handled",
                )
                .build(),
            rebuilt_records: meter
                .u64_counter("hearken.pipeline.rebuilt_records")
                .with_unit("{record}")
                .with_description("Records read again to rebuild state; nothing is written for them")
                .build(),
            rebalances: meter
                .u64_counter("hearken.pipeline.rebalances")
                .with_unit("{rebalance}")
                .with_description("Consumer-group rebalances, by kind (assign, revoke, error)")
                .build(),
            commits: meter
                .u64_counter("hearken.pipeline.commits")
                .with_unit("{commit}")
                .with_description("Offset commits, by outcome (ok, failed)")
                .build(),
            checkpoints: meter
                .u64_counter("hearken.pipeline.checkpoints")
                .with_unit("{checkpoint}")
                .with_description(
                    "Partition checkpoints on the state topic, by outcome (written; when a partition is taken on: found, none, stale)",
                )
                .build(),
            lag: meter
                .i64_gauge("hearken.pipeline.consumer.lag")
                .with_unit("{record}")
                .with_description("Records on an owned partition not read yet, by topic and partition")
                .build(),
            reread: meter
                .i64_gauge("hearken.pipeline.reread")
                .with_unit("{record}")
                .with_description(
                    "Records a new owner of the partition would read again to rebuild its live conversations (position less the committed offset), by topic and partition",
                )
                .build(),
            partitions: meter
                .i64_gauge("hearken.pipeline.partitions")
                .with_unit("{partition}")
                .with_description("Input partitions this replica owns")
                .build(),
            latency: meter
                .f64_histogram("hearken.pipeline.record.latency")
                .with_unit("s")
                .with_description(
                    "From an input record's timestamp to its outputs handed to the producer",
                )
                .with_boundaries(LATENCY_BUCKETS.to_vec())
                .build(),
        }
    }

    /// Instruments that record nothing.
    pub fn noop() -> Self {
        PipelineMetrics::new(&opentelemetry::metrics::MeterProvider::meter(
            &opentelemetry::metrics::noop::NoopMeterProvider::new(),
            "hearken",
        ))
    }

    /// An input record was read: `scored`, `dead_letter`, `rebuilt`, `passed_over`, `not_owned`
    /// or `redelivered`.
    pub fn record_in(&self, outcome: &'static str) {
        self.records_in.add(1, &[KeyValue::new("outcome", outcome)]);
    }

    /// Output records of `kind` were handed to the producer.
    pub fn records_out(&self, kind: &'static str, n: u64) {
        self.records_out.add(n, &[KeyValue::new("kind", kind)]);
    }

    /// A record went to the dead-letter topic for `reason`.
    pub fn dead_letter(&self, reason: &'static str) {
        self.dead_letters.add(1, &[KeyValue::new("reason", reason)]);
    }

    /// A partition was taken over with records to re-read.
    pub fn rebuild(&self) {
        self.rebuilds.add(1, &[]);
    }

    /// A record was read again to rebuild state.
    pub fn rebuilt_record(&self) {
        self.rebuilt_records.add(1, &[]);
    }

    /// A rebalance: `assign`, `revoke` or `error`.
    pub fn rebalance(&self, kind: &'static str) {
        self.rebalances.add(1, &[KeyValue::new("kind", kind)]);
    }

    /// An offset commit: `ok` or `failed`.
    pub fn commit(&self, outcome: &'static str) {
        self.commits.add(1, &[KeyValue::new("outcome", outcome)]);
    }

    /// A checkpoint `written`, or, for a partition taken on, `found`, `none` or `stale`.
    pub fn checkpoint(&self, outcome: &'static str) {
        self.checkpoints
            .add(1, &[KeyValue::new("outcome", outcome)]);
    }

    /// The lag of an owned partition.
    pub fn lag(&self, topic: &str, partition: i32, lag: i64) {
        self.lag.record(
            lag,
            &[
                KeyValue::new("topic", topic.to_owned()),
                KeyValue::new("partition", i64::from(partition)),
            ],
        );
    }

    /// The re-read span of an owned partition.
    pub fn reread(&self, topic: &str, partition: i32, records: i64) {
        self.reread.record(
            records,
            &[
                KeyValue::new("topic", topic.to_owned()),
                KeyValue::new("partition", i64::from(partition)),
            ],
        );
    }

    /// The number of owned partitions.
    pub fn partitions(&self, n: usize) {
        self.partitions.record(n as i64, &[]);
    }

    /// A record's outputs were handed to the producer `elapsed` after its timestamp.
    pub fn latency(&self, elapsed: Duration) {
        self.latency.record(elapsed.as_secs_f64(), &[]);
    }
}

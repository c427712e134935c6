//! `hearken pipeline`: the Kafka consumer-group member (docs/pipeline.md); `hearken pipeline
//! send` writes transcript files onto an input topic as a live integration would (for the
//! worked example, back-fills and load tests); `hearken pipeline read` reads an output topic
//! and says what came: counts, duplicates, gaps and latency.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::Context as _;
use prost::Message as _;

use crate::config;
use crate::engine::InputLimits;
use crate::pipeline::records::{self, InputEncoding, OutputEncoding};
use crate::pipeline::{self, Config, Health, OutputTopics, PipelineMetrics};
use crate::proto::v1::*;
use crate::service::limits::Limits;
use crate::telemetry::{LogFormat, Telemetry};

/// Flags of `hearken pipeline`.
#[derive(Debug, clap::Args)]
#[command(args_conflicts_with_subcommands = true)]
pub(super) struct PipelineArgs {
    #[command(subcommand)]
    action: Option<Action>,
    #[command(flatten)]
    run: RunArgs,
}

#[derive(Debug, clap::Subcommand)]
enum Action {
    /// Write transcript files onto an input topic: each conversation's start, utterances and
    /// end as records keyed by its id, conversations interleaved as live calls are.
    Send(SendArgs),
    /// Read an output topic from the start and report what came: records by kind, duplicates
    /// (identical or not), gaps in `seq`, latency from input record to output record.
    Read(ReadArgs),
}

/// Kafka connection flags shared by every form.
#[derive(Debug, Clone, clap::Args)]
struct KafkaArgs {
    /// Kafka bootstrap servers (`host:port,…`).
    #[arg(long, env = config::ENV_KAFKA_BROKERS, default_value = pipeline::DEFAULT_BROKERS)]
    brokers: String,
    /// A librdkafka property, `KEY=VALUE` (repeat): security.protocol, sasl.*, session.timeout.ms,
    /// …; `consumer.KEY` or `producer.KEY` for one side only.
    #[arg(short = 'X', long = "kafka-config", value_name = "KEY=VALUE", value_parser = parse_property)]
    kafka: Vec<(String, String)>,
    /// A file of librdkafka properties, one `KEY=VALUE` per line (`#` comments), read before
    /// any -X: for credentials (sasl.password) mounted from a secret rather than on the
    /// command line.
    #[arg(long, env = config::ENV_KAFKA_CONFIG_FILE, value_name = "FILE")]
    kafka_config_file: Option<PathBuf>,
}

impl KafkaArgs {
    /// The properties: the file's, then -X's (a later one wins).
    fn properties(&self) -> anyhow::Result<Vec<(String, String)>> {
        let mut all = Vec::new();
        if let Some(path) = &self.kafka_config_file {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("--kafka-config-file {}", path.display()))?;
            for (i, line) in text.lines().enumerate() {
                let line = line.trim();
                if line.is_empty() || line.starts_with('#') {
                    continue;
                }
                // The line's number only: it may hold a password.
                all.push(parse_property(line).map_err(|_| {
                    anyhow::anyhow!(
                        "--kafka-config-file {}: line {} is not KEY=VALUE",
                        path.display(),
                        i + 1
                    )
                })?);
            }
        }
        all.extend(self.kafka.iter().cloned());
        Ok(all)
    }
}

fn parse_property(s: &str) -> Result<(String, String), String> {
    let (k, v) = s
        .split_once('=')
        .ok_or_else(|| format!("`{s}` is not KEY=VALUE"))?;
    Ok((k.trim().to_owned(), v.trim().to_owned()))
}

/// Flags of the consumer.
#[derive(Debug, clap::Args)]
struct RunArgs {
    #[command(flatten)]
    kafka: KafkaArgs,
    /// The consumer group: replicas with the same group share the input partitions.
    #[arg(long, env = config::ENV_PIPELINE_GROUP, default_value = pipeline::DEFAULT_GROUP)]
    group: String,
    /// Topics to read (comma-separated or repeated).
    #[arg(
        long,
        env = config::ENV_PIPELINE_INPUT_TOPICS,
        value_delimiter = ',',
        default_value = pipeline::DEFAULT_INPUT_TOPIC
    )]
    input_topic: Vec<String>,
    /// Topic for every output kind not given its own topic below.
    #[arg(
        long,
        env = config::ENV_PIPELINE_OUTPUT_TOPIC,
        default_value = pipeline::DEFAULT_OUTPUT_TOPIC
    )]
    output_topic: String,
    /// Topic for score updates (`-`: do not write them).
    #[arg(long, value_name = "TOPIC")]
    updates_topic: Option<String>,
    /// Topic for alerts (`-`: do not write them).
    #[arg(long, value_name = "TOPIC")]
    alerts_topic: Option<String>,
    /// Topic for scorecards (`-`: do not write them).
    #[arg(long, value_name = "TOPIC")]
    scorecards_topic: Option<String>,
    /// Topic for in-band rejections (`-`: do not write them; they reach the dead-letter topic
    /// either way).
    #[arg(long, value_name = "TOPIC")]
    rejections_topic: Option<String>,
    /// Topic for input records that were not scored: the record as it came, the reason in
    /// its headers.
    #[arg(
        long,
        env = config::ENV_PIPELINE_DEAD_LETTER_TOPIC,
        default_value = pipeline::DEFAULT_DEAD_LETTER_TOPIC
    )]
    dead_letter_topic: String,
    /// Topic for the partitions' checkpoints, from which a replica that takes a partition over
    /// rebuilds its live calls exactly (create it compacted; one partition is plenty).
    #[arg(
        long,
        env = config::ENV_PIPELINE_STATE_TOPIC,
        default_value = pipeline::DEFAULT_STATE_TOPIC
    )]
    state_topic: String,
    /// How input records are encoded when their `content-type` header does not say.
    #[arg(long, value_enum, default_value = "auto")]
    input_encoding: InputEncoding,
    /// How output records are encoded.
    #[arg(long, value_enum, default_value = "json")]
    output_encoding: OutputEncoding,
    /// Roles for Contact Lens speaker labels (`LABEL=ROLE,…`).
    #[arg(long, value_name = "LABEL=ROLE,…", value_parser = crate::input::RoleMap::parse)]
    role_map: Option<crate::input::RoleMap>,
    /// Live conversations in this replica; a conversation beyond it is rejected and
    /// dead-lettered.
    #[arg(long, default_value_t = Limits::DEFAULT_MAX_CONVERSATIONS_PER_PROCESS)]
    max_conversations: usize,
    /// A conversation with no record for this long, in record time, ends as abandoned.
    #[arg(long, default_value_t = Limits::DEFAULT_CONVERSATION_IDLE_TIMEOUT.into())]
    conversation_idle_timeout: humantime::Duration,
    /// Largest input record value, in bytes; a larger one is dead-lettered.
    #[arg(long, default_value_t = Limits::DEFAULT_MAX_STREAM_MESSAGE_BYTES)]
    max_record_bytes: usize,
    /// How often offsets are committed (after the outputs so far are delivered).
    #[arg(long, default_value_t = pipeline::DEFAULT_COMMIT_INTERVAL.into())]
    commit_interval: humantime::Duration,
    /// Address for `/metrics` and `/healthz`, or `off`.
    #[arg(long, env = config::ENV_METRICS_ADDR, default_value = super::DEFAULT_METRICS_ADDR, value_parser = super::parse_metrics_addr)]
    metrics_addr: super::MetricsAddr,
    /// Rubric file (TOML) laid over the embedded default.
    #[arg(long, env = config::ENV_RUBRIC)]
    rubric: Option<PathBuf>,
    #[command(flatten)]
    ui: PipelineUiArgs,
}

/// Flags of `hearken pipeline send`.
#[derive(Debug, clap::Args)]
struct SendArgs {
    /// Transcript files (any `--input-format`) or directories of them.
    #[arg(required = true)]
    files: Vec<PathBuf>,
    #[command(flatten)]
    kafka: KafkaArgs,
    /// The topic to write.
    #[arg(long, default_value = pipeline::DEFAULT_INPUT_TOPIC)]
    topic: String,
    /// Record encoding.
    #[arg(long, value_enum, default_value = "json")]
    encoding: OutputEncoding,
    /// Pace: 1 writes each message when it happens in real time (all calls starting
    /// together, or over --ramp), 10 ten times faster, 0 as fast as possible.
    #[arg(long, default_value_t = 0.0)]
    speed: f64,
    /// Write this many calls, repeating the files' conversations with `-N` added to their ids.
    #[arg(long)]
    calls: Option<usize>,
    /// Spread the calls' starts evenly over this long (with --speed above 0).
    #[arg(long, value_parser = humantime::parse_duration, default_value = "0s")]
    ramp: Duration,
    #[command(flatten)]
    input: super::InputArgs,
}

/// Flags of `hearken pipeline read`.
#[derive(Debug, clap::Args)]
struct ReadArgs {
    #[command(flatten)]
    kafka: KafkaArgs,
    /// The topic to read (from its start).
    #[arg(long, default_value = pipeline::DEFAULT_OUTPUT_TOPIC)]
    topic: String,
    /// Stop once this many conversations have their scorecard.
    #[arg(long)]
    scorecards: Option<usize>,
    /// Stop after this long without a new record.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "10s")]
    idle: Duration,
    /// Print every record as a JSON line (proto3 JSON) on standard output.
    #[arg(long)]
    json: bool,
}

pub(super) async fn run(args: PipelineArgs, log_format: LogFormat) -> anyhow::Result<ExitCode> {
    match args.action {
        Some(Action::Send(send)) => {
            crate::telemetry::init_logging(log_format, "warn");
            tokio::task::spawn_blocking(move || send_files(send)).await?
        }
        Some(Action::Read(read)) => {
            crate::telemetry::init_logging(log_format, "warn");
            tokio::task::spawn_blocking(move || read_topic(read)).await?
        }
        None => consume(args.run, log_format).await,
    }
}

/// The supervisor's floor page over the calls this replica's partitions host (`--ui-addr`, the
/// same page `serve` has). The pipeline has no gRPC port whose TLS the page could share, so it
/// takes its own: a certificate, or `--ui-plaintext` as an explicit choice.
#[derive(Debug, clap::Args)]
struct PipelineUiArgs {
    #[command(flatten)]
    ui: super::serve::UiArgs,
    /// PEM certificate chain for TLS on the floor page (with --ui-tls-key).
    #[arg(long, requires = "ui_tls_key")]
    ui_tls_cert: Option<PathBuf>,
    /// PEM private key for --ui-tls-cert.
    #[arg(long, requires = "ui_tls_cert")]
    ui_tls_key: Option<PathBuf>,
    /// PEM CA bundle: browsers must present a certificate it signed (mutual TLS).
    #[arg(long, requires = "ui_tls_cert")]
    ui_tls_client_ca: Option<PathBuf>,
    /// Serve the floor page over plain HTTP: inside a mesh that encrypts, or on loopback.
    /// Required with --ui-addr when no --ui-tls-cert is given.
    #[arg(long, conflicts_with = "ui_tls_cert")]
    ui_plaintext: bool,
}

impl PipelineUiArgs {
    /// The floor page's TLS, if any; an address without a choice of TLS or plaintext is refused.
    fn tls(&self) -> anyhow::Result<Option<crate::tls::Tls>> {
        super::serve::tls_files(
            (self.ui_tls_cert.as_ref(), self.ui_tls_key.as_ref()),
            self.ui_tls_client_ca.as_ref(),
            self.ui_plaintext,
            "choose how browsers reach the floor page: --ui-tls-cert and --ui-tls-key for TLS \
             (and --ui-tls-client-ca for mutual TLS), or --ui-plaintext inside a mesh or on \
             loopback",
        )
    }
}

/// The floor page, if asked for: its watcher (for the partitions' calls) and its server task.
/// The TLS choice is asked only when the page is on.
async fn floor(
    ui: &PipelineUiArgs,
    metrics: &Arc<crate::telemetry::Metrics>,
    stopped: tokio::sync::oneshot::Receiver<()>,
) -> anyhow::Result<
    Option<(
        Arc<dyn crate::host::watch::Watcher>,
        tokio::task::JoinHandle<anyhow::Result<()>>,
    )>,
> {
    let tls = if ui.ui.floor()?.is_some() {
        ui.tls()?
    } else {
        None
    };
    let started = super::serve::start_floor(&ui.ui, metrics, tls, None, stopped).await?;
    Ok(started.map(|(floor, task)| {
        (
            Arc::new(floor) as Arc<dyn crate::host::watch::Watcher>,
            task,
        )
    }))
}

impl RunArgs {
    /// Every flag out of range, in one error.
    fn validate(&self) -> anyhow::Result<()> {
        let mut p = super::Problems::default();
        p.check(
            self.max_conversations >= 1,
            "--max-conversations must be at least 1",
        );
        self.ui.ui.validate(&mut p);
        p.check(
            self.input_topic.iter().any(|t| !t.trim().is_empty()),
            "--input-topic: name at least one topic",
        );
        p.check(
            !self.commit_interval.is_zero(),
            "--commit-interval must be above zero",
        );
        p.check(
            !self.conversation_idle_timeout.is_zero(),
            "--conversation-idle-timeout must be above zero",
        );
        p.check(
            self.max_record_bytes >= 1,
            "--max-record-bytes must be at least 1",
        );
        for (flag, topic) in [
            ("--output-topic", Some(&self.output_topic)),
            ("--dead-letter-topic", Some(&self.dead_letter_topic)),
            ("--state-topic", Some(&self.state_topic)),
            ("--updates-topic", self.updates_topic.as_ref()),
            ("--alerts-topic", self.alerts_topic.as_ref()),
            ("--scorecards-topic", self.scorecards_topic.as_ref()),
            ("--rejections-topic", self.rejections_topic.as_ref()),
        ] {
            p.check(
                topic.is_none_or(|t| !t.trim().is_empty()),
                format!("{flag} must not be empty"),
            );
        }
        p.finish()
    }
}

fn topic_or(own: Option<String>, all: &str) -> Option<String> {
    match own.as_deref() {
        Some("-") => None,
        Some(t) => Some(t.to_owned()),
        None => Some(all.to_owned()),
    }
}

/// The pipeline's configuration from its flags (the pod's name, when set, is its client id).
fn config_of(args: RunArgs) -> anyhow::Result<Config> {
    let rubric = super::load_rubric(args.rubric.as_deref())?;
    let client_id = std::env::var("HOSTNAME")
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| format!("hearken-{}", std::process::id()));
    let all = &args.output_topic;
    Ok(Config {
        brokers: args.kafka.brokers.clone(),
        group: args.group,
        client_id,
        input_topics: args.input_topic,
        topics: OutputTopics {
            updates: topic_or(args.updates_topic, all),
            alerts: topic_or(args.alerts_topic, all),
            scorecards: topic_or(args.scorecards_topic, all),
            rejections: topic_or(args.rejections_topic, all),
            dead_letters: args.dead_letter_topic,
            state: args.state_topic,
        },
        input_encoding: args.input_encoding,
        output_encoding: args.output_encoding,
        roles: args.role_map.unwrap_or_default(),
        settings: pipeline::partition::Settings {
            rubric: Arc::new(rubric),
            input: InputLimits::default(),
            max_conversations: args.max_conversations,
            idle_timeout: *args.conversation_idle_timeout,
            ended_linger: Limits::DEFAULT_ENDED_LINGER,
            watcher: None,
        },
        max_record_bytes: args.max_record_bytes,
        commit_interval: *args.commit_interval,
        kafka: args.kafka.properties()?,
    })
}

async fn consume(args: RunArgs, log_format: LogFormat) -> anyhow::Result<ExitCode> {
    args.validate()?;
    let telemetry = Telemetry::init_serve(log_format, "info")?;
    let metrics_addr = args.metrics_addr;
    let (ui_stop, ui_stopped) = tokio::sync::oneshot::channel::<()>();
    let ui = floor(&args.ui, &telemetry.metrics, ui_stopped).await?;
    let mut config = config_of(args)?;
    let ui = ui.map(|(watcher, task)| {
        config.settings.watcher = Some(watcher);
        task
    });
    let health = Arc::new(Health::new(&config.group));
    let metrics = PipelineMetrics::new(&telemetry.meter());
    let stop = Arc::new(AtomicBool::new(false));
    let (scrape_stop, scrape_stopped) = tokio::sync::oneshot::channel::<()>();
    let scrape = if let Some(addr) = metrics_addr.0 {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .with_context(|| format!("failed to listen on {addr} for /metrics"))?;
        tracing::info!(addr = %listener.local_addr()?, "metrics and health listening");
        Some(tokio::spawn(crate::telemetry::serve_scrape_with(
            listener,
            telemetry.registry.clone(),
            health.routes(),
            async move {
                let _ = scrape_stopped.await;
            },
        )))
    } else {
        None
    };
    let worker = pipeline::spawn(
        config,
        Arc::clone(&health),
        metrics,
        Arc::clone(&telemetry.metrics),
        Arc::clone(&stop),
    )
    .context("cannot start the pipeline thread")?;
    let worker = tokio::task::spawn_blocking(move || worker.join());
    tokio::pin!(worker);
    let signals = super::serve::signals(None);
    let joined = tokio::select! {
        joined = &mut worker => joined,
        () = signals => {
            tracing::info!("stopping: delivering, committing and leaving the group");
            stop.store(true, Ordering::Relaxed);
            (&mut worker).await
        }
    };
    let _ = scrape_stop.send(());
    if let Some(scrape) = scrape {
        let _ = scrape.await;
    }
    let _ = ui_stop.send(());
    if let Some(ui) = ui {
        let _ = ui.await;
    }
    let _ = tokio::task::spawn_blocking(move || telemetry.shutdown()).await;
    match joined {
        Ok(Ok(Ok(()))) => {
            tracing::info!("pipeline stopped");
            Ok(ExitCode::SUCCESS)
        }
        Ok(Ok(Err(error))) => Err(error),
        Ok(Err(_)) | Err(_) => anyhow::bail!("the pipeline thread failed"),
    }
}

/// A producer for the tools (`send`), with the client properties given.
fn producer(kafka: &KafkaArgs) -> anyhow::Result<rdkafka::producer::BaseProducer> {
    let mut config = pipeline::producer_config(&kafka.brokers);
    pipeline::apply_properties(&mut config, &kafka.properties()?, pipeline::Side::Producer);
    config.create().context("cannot create the Kafka producer")
}

/// The time in the call a request happens at, for pacing.
fn offset_ms(request: &StreamConversationsRequest) -> i64 {
    use stream_conversations_request::Payload;
    match &request.payload {
        Some(Payload::Utterance(u)) => u.end_ms.or(u.start_ms).unwrap_or(0),
        Some(Payload::Signal(s)) => s.offset_ms,
        Some(Payload::End(e)) => e.offset_ms.unwrap_or(0),
        _ => 0,
    }
}

/// Each call's requests with the time each is due (ms from the first call's start), interleaved
/// as live calls are: by due time, then by position in the call, then by call.
fn schedule(
    transcripts: &[crate::transcript::Transcript],
    args: &SendArgs,
    calls: usize,
) -> Vec<(u64, usize, usize, StreamConversationsRequest)> {
    let mut schedule: Vec<(u64, usize, usize, StreamConversationsRequest)> = Vec::new();
    let ramp_ms = args.ramp.as_millis() as f64;
    for n in 0..calls {
        let t = &transcripts[n % transcripts.len()];
        let mut requests = records::transcript_requests(t);
        if args.calls.is_some() {
            let id = format!("{}-{n}", t.conversation_id);
            for r in &mut requests {
                r.conversation_id.clone_from(&id);
            }
        }
        let start = if calls > 1 {
            ramp_ms * n as f64 / calls as f64
        } else {
            0.0
        };
        let mut last = 0i64;
        for (i, r) in requests.into_iter().enumerate() {
            last = last.max(offset_ms(&r));
            let due = if args.speed > 0.0 {
                start + last as f64 / args.speed
            } else {
                0.0
            };
            schedule.push((due as u64, i, n, r));
        }
    }
    schedule.sort_by_key(|(due, i, n, _)| (*due, *i, *n));
    schedule
}

/// Hands `record` to `producer`, polling while its queue is full.
fn send_waiting(
    producer: &rdkafka::producer::BaseProducer,
    mut record: rdkafka::producer::BaseRecord<'_, String, Vec<u8>>,
    topic: &str,
) -> anyhow::Result<()> {
    loop {
        match producer.send(record) {
            Ok(()) => return Ok(()),
            Err((
                rdkafka::error::KafkaError::MessageProduction(
                    rdkafka::types::RDKafkaErrorCode::QueueFull,
                ),
                back,
            )) => {
                record = back;
                producer.poll(Duration::from_millis(10));
            }
            Err((e, _)) => anyhow::bail!("cannot send to {topic}: {e}"),
        }
    }
}

fn send_files(args: SendArgs) -> anyhow::Result<ExitCode> {
    use rdkafka::producer::{BaseRecord, Producer as _};
    anyhow::ensure!(
        args.speed.is_finite() && args.speed >= 0.0,
        "--speed must be 0 or more"
    );
    let mut transcripts = Vec::new();
    let mut skipped = 0usize;
    for path in &super::input_files(&args.files)? {
        for (i, item) in args.input.read(path)?.enumerate() {
            match item {
                Ok(t) => {
                    super::warn_about(path, i + 1, &t);
                    transcripts.push(t);
                }
                Err(e) => {
                    skipped += 1;
                    eprintln!("{}: {e}", path.display());
                }
            }
        }
    }
    anyhow::ensure!(!transcripts.is_empty(), "no conversations to send");
    let calls = args.calls.unwrap_or(transcripts.len());
    let schedule = schedule(&transcripts, &args, calls);
    let producer = producer(&args.kafka)?;
    let begun = Instant::now();
    let content_type = args.encoding.content_type();
    let mut sent = 0usize;
    for (due, _, _, request) in &schedule {
        let wait = Duration::from_millis(*due).saturating_sub(begun.elapsed());
        if !wait.is_zero() {
            producer.poll(wait);
        }
        let value = match args.encoding {
            OutputEncoding::Json => serde_json::to_vec(request)?,
            OutputEncoding::Protobuf => request.encode_to_vec(),
        };
        let headers = rdkafka::message::OwnedHeaders::new().insert(rdkafka::message::Header {
            key: records::HEADER_CONTENT_TYPE,
            value: Some(content_type),
        });
        let record = BaseRecord::to(&args.topic)
            .key(&request.conversation_id)
            .payload(&value)
            .headers(headers);
        send_waiting(&producer, record, &args.topic)?;
        producer.poll(Duration::ZERO);
        sent += 1;
    }
    producer
        .flush(Duration::from_secs(60))
        .context("the records were not all delivered")?;
    eprintln!(
        "hearken pipeline send: {sent} record(s) for {calls} conversation(s) written to {} in {:.1} s, {skipped} input line(s) skipped",
        args.topic,
        begun.elapsed().as_secs_f64()
    );
    Ok(if skipped > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

/// What `read` found.
#[derive(Debug, Default)]
struct Tally {
    by_kind: BTreeMap<String, usize>,
    /// (conversation, seq) → the value first seen.
    seen: HashMap<(String, i64), Vec<u8>>,
    identical_duplicates: usize,
    different_duplicates: usize,
    scorecards: usize,
    /// Highest seq with a scorecard, per conversation.
    last_seq: HashMap<String, i64>,
    latencies_ms: Vec<u64>,
}

impl Tally {
    /// Counts a response read (`value` as it came): its kind, and whether its
    /// `(conversation, seq)` was seen before, with the same value or another.
    fn take(&mut self, response: &StreamConversationsResponse, value: &[u8]) {
        let kind = records::kind_of(response);
        *self.by_kind.entry(kind.to_owned()).or_default() += 1;
        if response.seq <= 0 {
            return;
        }
        let key = (response.conversation_id.clone(), response.seq);
        match self.seen.get(&key) {
            Some(first) if first == value => self.identical_duplicates += 1,
            Some(_) => self.different_duplicates += 1,
            None => {
                if kind == "scorecard" {
                    self.scorecards += 1;
                    self.last_seq
                        .insert(response.conversation_id.clone(), response.seq);
                }
                self.seen.insert(key, value.to_vec());
            }
        }
    }

    /// Conversations with a scorecard and a `seq` below it never read.
    fn gaps(&self) -> usize {
        self.last_seq
            .iter()
            .filter(|(id, last)| (1..=**last).any(|s| !self.seen.contains_key(&((*id).clone(), s))))
            .count()
    }
}

/// A consumer of `topic` from its start, in a group of its own (nothing committed).
fn reader(kafka: &KafkaArgs, topic: &str) -> anyhow::Result<rdkafka::consumer::BaseConsumer> {
    use rdkafka::consumer::Consumer as _;
    let mut config = rdkafka::ClientConfig::new();
    config
        .set("bootstrap.servers", &kafka.brokers)
        .set(
            "group.id",
            format!("hearken-read-{}-{}", std::process::id(), now_ms()),
        )
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest");
    pipeline::apply_properties(&mut config, &kafka.properties()?, pipeline::Side::Consumer);
    let consumer: rdkafka::consumer::BaseConsumer = config
        .create()
        .context("cannot create the Kafka consumer")?;
    consumer.subscribe(&[topic])?;
    Ok(consumer)
}

fn read_topic(args: ReadArgs) -> anyhow::Result<ExitCode> {
    use rdkafka::message::Message as _;
    let consumer = reader(&args.kafka, &args.topic)?;
    let mut tally = Tally::default();
    let mut last_record = Instant::now();
    let mut out = std::io::stdout().lock();
    let mut bad = 0usize;
    loop {
        if args.scorecards.is_some_and(|n| tally.scorecards >= n)
            || last_record.elapsed() >= args.idle
        {
            break;
        }
        let Some(message) = consumer.poll(Duration::from_millis(100)) else {
            continue;
        };
        let message = message.context("reading the topic")?;
        last_record = Instant::now();
        let received = now_ms();
        let header = |name: &str| pipeline::header(&message, name);
        let value = message.payload().unwrap_or_default();
        let response: Option<StreamConversationsResponse> =
            match header(records::HEADER_CONTENT_TYPE) {
                Some(records::CONTENT_PROTOBUF) => StreamConversationsResponse::decode(value).ok(),
                _ => serde_json::from_slice(value).ok(),
            };
        let Some(response) = response else {
            bad += 1;
            continue;
        };
        if args.json {
            use std::io::Write as _;
            writeln!(out, "{}", serde_json::to_string(&response)?)?;
        }
        let source_time = header(records::HEADER_SOURCE_TIME).and_then(|t| t.parse::<i64>().ok());
        if let Some(ts) = source_time {
            tally
                .latencies_ms
                .push(received.saturating_sub(ts).max(0) as u64);
        }
        tally.take(&response, value);
    }
    let gaps = tally.gaps();
    tally.latencies_ms.sort_unstable();
    let pct = |p: f64| {
        let l = &tally.latencies_ms;
        if l.is_empty() {
            0
        } else {
            l[((l.len() - 1) as f64 * p).round() as usize]
        }
    };
    let summary = serde_json::json!({
        "records": tally.by_kind,
        "scorecards": tally.scorecards,
        "identical_duplicates": tally.identical_duplicates,
        "different_duplicates": tally.different_duplicates,
        "conversations_with_gaps": gaps,
        "undecodable": bad,
        "latency_ms": {"p50": pct(0.5), "p90": pct(0.9), "p99": pct(0.99), "max": pct(1.0), "count": tally.latencies_ms.len()},
    });
    eprintln!("hearken pipeline read: {summary}");
    let ok = tally.different_duplicates == 0 && gaps == 0 && bad == 0;
    Ok(if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

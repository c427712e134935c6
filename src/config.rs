//! Environment variables the `hearken` command reads, in one list. Each is the fallback of a
//! command-line flag of the same meaning (flag > environment > default).

/// Address `hearken serve` listens on.
pub const ENV_ADDR: &str = "HEARKEN_ADDR";
/// Address of the Prometheus scrape endpoint (`/metrics`), or `off`.
pub const ENV_METRICS_ADDR: &str = "HEARKEN_METRICS_ADDR";
/// `true` to log utterance text after redaction (off by default).
pub const ENV_LOG_TEXT: &str = "HEARKEN_LOG_TEXT";
/// TLS certificate chain (PEM) of `hearken serve`.
pub const ENV_TLS_CERT: &str = "HEARKEN_TLS_CERT";
/// TLS private key (PEM).
pub const ENV_TLS_KEY: &str = "HEARKEN_TLS_KEY";
/// CA bundle (PEM) for client certificates: mutual TLS.
pub const ENV_TLS_CLIENT_CA: &str = "HEARKEN_TLS_CLIENT_CA";
/// `true` to serve plaintext h2c (required when no TLS certificate is given).
pub const ENV_PLAINTEXT: &str = "HEARKEN_PLAINTEXT";
/// JWKS file of the keys that sign bearer tokens.
pub const ENV_JWT_JWKS: &str = "HEARKEN_JWT_JWKS";
/// Required `iss` of bearer tokens.
pub const ENV_JWT_ISSUER: &str = "HEARKEN_JWT_ISSUER";
/// Required `aud` of bearer tokens.
pub const ENV_JWT_AUDIENCE: &str = "HEARKEN_JWT_AUDIENCE";
/// Rubric file laid over the embedded default.
pub const ENV_RUBRIC: &str = "HEARKEN_RUBRIC";
/// Log filter (`tracing_subscriber::EnvFilter` syntax), e.g. `info` or `hearken=debug`.
pub const ENV_LOG: &str = "HEARKEN_LOG";
/// Log format: `plain` or `json`.
pub const ENV_LOG_FORMAT: &str = "HEARKEN_LOG_FORMAT";
/// Delay between NOT_SERVING and ending streams when draining.
pub const ENV_DRAIN_DELAY: &str = "HEARKEN_DRAIN_DELAY";
/// Deadline after the shutdown signal.
pub const ENV_DRAIN_DEADLINE: &str = "HEARKEN_DRAIN_DEADLINE";

/// Address of the supervisor's floor page, or `off` (`--ui-addr`).
pub const ENV_UI_ADDR: &str = "HEARKEN_UI_ADDR";
/// Show utterance text (masked) on the floor page (`--ui-show-text`).
pub const ENV_UI_SHOW_TEXT: &str = "HEARKEN_UI_SHOW_TEXT";
/// The listening model file (`--model`).
pub const ENV_MODEL: &str = "HEARKEN_MODEL";
/// Kafka bootstrap servers (`--brokers`).
pub const ENV_KAFKA_BROKERS: &str = "HEARKEN_KAFKA_BROKERS";
/// A librdkafka properties file (`--kafka-config-file`).
pub const ENV_KAFKA_CONFIG_FILE: &str = "HEARKEN_KAFKA_CONFIG_FILE";
/// The pipeline's consumer group (`--group`).
pub const ENV_PIPELINE_GROUP: &str = "HEARKEN_PIPELINE_GROUP";
/// The pipeline's input topics (`--input-topic`).
pub const ENV_PIPELINE_INPUT_TOPICS: &str = "HEARKEN_PIPELINE_INPUT_TOPICS";
/// The pipeline's output topic (`--output-topic`).
pub const ENV_PIPELINE_OUTPUT_TOPIC: &str = "HEARKEN_PIPELINE_OUTPUT_TOPIC";
/// The pipeline's dead-letter topic (`--dead-letter-topic`).
pub const ENV_PIPELINE_DEAD_LETTER_TOPIC: &str = "HEARKEN_PIPELINE_DEAD_LETTER_TOPIC";
/// The pipeline's state topic (`--state-topic`).
pub const ENV_PIPELINE_STATE_TOPIC: &str = "HEARKEN_PIPELINE_STATE_TOPIC";

//! hearken: listens to contact-centre conversations as they happen and scores how well the
//! agent listens.
//!
//! Layers, each depending only on those before it (`tests/architecture.rs` fails on an import
//! against this order):
//! - [`config`]: the environment variables the command reads, in one list.
//! - [`engine`]: pure and synchronous — conversation state, detectors, scorer, alerts, rubric.
//! - [`redact`]: best-effort masking of card data in text that is echoed (opt-in text log).
//! - [`proto`]: the generated `hearken.v1` types, and conversions to and from the engine's
//!   (in-band rejections among them).
//! - [`transcript`]: the JSON Lines transcript format of files, and speaker-label roles.
//! - [`training`]: `hearken train`, the listening heads fitted to a site's labelled
//!   conversations (features from the engine's own code).
//! - [`input`]: every input format (hearken's, and the platforms' output files and events).
//! - [`samples`]: the bundled calls.
//! - [`tls`]: TLS settings shared by the gRPC port and the floor page.
//! - [`telemetry`]: logs, metrics, traces.
//! - [`host`]: hosting live conversations, whatever carries them, written once: the live
//!   conversations of one owner, routing, the memory of ended ones, applying events and
//!   answering in `seq` order (sans-IO); a stream and a partition are its owners.
//! - [`pipeline`]: `hearken pipeline`, conversations from Kafka topics, hosted as a stream hosts
//!   them (it does not import the gRPC service).
//! - [`service`]: the tonic service — streams, routing, limits, fan-out of alerts; it tells a
//!   [`host::watch::Watcher`] what its conversations do, without knowing who watches.
//! - [`floor`]: the supervisor's live floor — a watcher of every live conversation and the page
//!   that shows it (`--ui-addr`).
//! - [`server`]: building and running the gRPC server — health, reflection, draining.
//! - [`cli`]: the `hearken` command's verbs.
#![forbid(unsafe_code)]

pub mod cli;
pub mod config;
pub mod engine;
pub mod floor;
pub mod host;
pub mod input;
pub mod pipeline;
pub mod proto;
pub mod redact;
pub mod samples;
pub mod server;
pub mod service;
pub mod telemetry;
pub mod tls;
pub mod training;
pub mod transcript;

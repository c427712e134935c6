//! hearken: listens to contact-centre conversations as they happen and scores how well the
//! agent listens.
//!
//! Layers, each depending only on those before it:
//! - [`engine`]: pure and synchronous — conversation state, detectors, scorer, alerts, rubric.
//! - [`proto`]: the generated `hearken.v1` types, and conversions to and from the engine's.
//! - [`transcript`]: the JSON Lines transcript format of files.
//! - [`input`]: every input format (hearken's, and the platforms' output files and events).
//! - [`redact`]: best-effort masking of card data in text that is echoed (opt-in text log).
//! - [`service`]: the tonic service — streams, routing, limits, fan-out of alerts.
//! - [`server`]: building and running the gRPC server — health, reflection, draining.
//! - [`floor`]: the supervisor's live floor — a view of every live conversation and the page
//!   that shows it (`--ui-addr`).
//! - [`cli`]: the `hearken` command's verbs.
#![forbid(unsafe_code)]

pub mod cli;
pub mod config;
pub mod engine;
pub mod floor;
pub mod input;
pub mod pipeline;
pub mod proto;
pub mod redact;
pub mod samples;
pub mod server;
pub mod service;
pub mod telemetry;
pub mod transcript;

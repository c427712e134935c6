//! The `hearken` command: one file per verb (serve, demo, replay, score, eval, train, loadgen,
//! pipeline).

mod client;
mod demo;
pub mod eval;
mod features;
mod loadgen;
mod pipeline;
mod render;
mod replay;
mod score;
mod serve;
mod train;

use clap::{Parser, Subcommand};

use crate::telemetry::{self, LogFormat};

/// hearken: live active-listening scores for contact-centre conversations.
#[derive(Debug, Parser)]
#[command(name = "hearken", version, about, long_about = None)]
pub struct Cli {
    /// Log format on standard error.
    #[arg(long, global = true, env = crate::config::ENV_LOG_FORMAT, value_enum, default_value = "plain")]
    log_format: LogFormat,
    /// Listening model file (safetensors, as `models/build.py` writes) instead of the embedded one.
    #[arg(long, global = true, env = crate::config::ENV_MODEL, value_name = "FILE")]
    model: Option<std::path::PathBuf>,
    /// What to do.
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the gRPC service.
    Serve(Box<serve::ServeArgs>),
    /// Stream the bundled sample calls through an in-process server and show live scores.
    Demo(demo::DemoArgs),
    /// Stream a transcript file to a running server, as a contact-centre system would.
    Replay(replay::ReplayArgs),
    /// Score transcript files offline (no server): JSON Lines of scorecards on standard output.
    Score(score::ScoreArgs),
    /// Measure the detectors on a labelled transcript file: precision, recall and F1.
    Eval(eval::EvalArgs),
    /// Score conversations from Kafka topics as a consumer-group member; results to topics.
    Pipeline(Box<pipeline::PipelineArgs>),
    /// Fit the listening heads to your own labelled conversations; writes a model file.
    Train(train::TrainArgs),
    /// Load-test a running server: N calls over M connections, throughput and latency.
    Loadgen(loadgen::LoadgenArgs),
    /// The learned layer's features of each utterance of labelled files (for `models/build.py`).
    #[command(hide = true)]
    Features(features::FeaturesArgs),
}

/// Runs the command; returns the process exit code.
pub fn run(cli: Cli) -> anyhow::Result<std::process::ExitCode> {
    let default_filter = match cli.command {
        Command::Serve(_) | Command::Pipeline(_) => "info",
        _ => "warn",
    };
    // `serve` sets up its own telemetry (metrics and OTLP export need the runtime).
    if !matches!(cli.command, Command::Serve(_) | Command::Pipeline(_)) {
        telemetry::init_logging(cli.log_format, default_filter);
    }
    let log_format = cli.log_format;
    if let Some(path) = &cli.model {
        let bytes =
            std::fs::read(path).map_err(|e| anyhow::anyhow!("--model {}: {e}", path.display()))?;
        let model = crate::engine::ListeningModel::from_bytes(&bytes)
            .map_err(|e| anyhow::anyhow!("--model {}: {e}", path.display()))?;
        let _ = MODEL.set(model);
    }
    match cli.command {
        Command::Score(args) => score::run(args),
        Command::Eval(args) => eval::run(args),
        Command::Features(args) => features::run(args),
        Command::Train(args) => train::run(args),
        command => {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()?;
            runtime.block_on(async move {
                match command {
                    Command::Serve(args) => serve::run(*args, log_format).await,
                    Command::Demo(args) => demo::run(args).await,
                    Command::Replay(args) => replay::run(args).await,
                    Command::Loadgen(args) => loadgen::run(args).await,
                    Command::Pipeline(args) => pipeline::run(*args, log_format).await,
                    Command::Score(_)
                    | Command::Eval(_)
                    | Command::Features(_)
                    | Command::Train(_) => {
                        unreachable!("handled above")
                    }
                }
            })
        }
    }
}

/// The URL of a server given as `http://host:port`, `https://…`, or `host:port` as `serve`
/// takes it (then plaintext `http://`).
fn server_url(addr: &str) -> String {
    if addr.contains("://") {
        addr.to_owned()
    } else {
        format!("http://{addr}")
    }
}

/// A channel to the server at `addr` (any form [`server_url`] takes); when nothing answers,
/// the error says so and asks whether the server is running.
async fn connect(
    addr: &str,
    configure: impl FnOnce(tonic::transport::Endpoint) -> tonic::transport::Endpoint,
) -> anyhow::Result<tonic::transport::Channel> {
    let url = server_url(addr);
    let endpoint = tonic::transport::Endpoint::from_shared(url.clone())
        .map_err(|e| anyhow::anyhow!("--addr {addr}: not a server address ({e})"))?;
    configure(endpoint).connect().await.map_err(|e| {
        use std::error::Error as _;
        let mut cause: Option<&dyn std::error::Error> = e.source();
        let mut refused = false;
        while let Some(c) = cause {
            if let Some(io) = c.downcast_ref::<std::io::Error>() {
                refused |= io.kind() == std::io::ErrorKind::ConnectionRefused;
            }
            cause = c.source();
        }
        if refused {
            anyhow::anyhow!(
                "nothing answers at {url}: is `hearken serve` running on {}?",
                url.split("://").nth(1).unwrap_or(addr)
            )
        } else {
            anyhow::anyhow!("failed to connect to {url}: {e}")
        }
    })
}

/// The files `paths` name: a directory stands for the files directly in it (sorted by name,
/// hidden ones left out); `-` (standard input) and files stand for themselves.
fn input_files(paths: &[std::path::PathBuf]) -> anyhow::Result<Vec<std::path::PathBuf>> {
    let mut out = Vec::new();
    for path in paths {
        if path.is_dir() {
            let mut files: Vec<std::path::PathBuf> = std::fs::read_dir(path)
                .map_err(|e| anyhow::anyhow!("cannot read the directory {}: {e}", path.display()))?
                .filter_map(|entry| entry.ok().map(|e| e.path()))
                .filter(|p| {
                    p.is_file()
                        && !p
                            .file_name()
                            .is_some_and(|n| n.to_string_lossy().starts_with('.'))
                })
                .collect();
            files.sort();
            anyhow::ensure!(
                !files.is_empty(),
                "the directory {} holds no files",
                path.display()
            );
            out.extend(files);
        } else {
            out.push(path.clone());
        }
    }
    Ok(out)
}

/// How input files are read (`score`, `replay`, `eval`).
#[derive(Debug, Clone, clap::Args)]
pub(super) struct InputArgs {
    /// Input format: hearken's JSON Lines (or one JSON document or array), a Contact Lens
    /// output file or real-time events, Transcribe Call Analytics or Post-Call Analytics, CCAI Insights, Genesys
    /// Cloud or Azure Speech output; `auto` tells them apart by their shape
    /// (docs/integrations.md).
    #[arg(long, value_enum, default_value = "auto")]
    input_format: crate::input::InputFormat,
    /// Roles for the speaker labels a platform uses: `spk_0=agent,spk_1=customer` (labels
    /// matched without regard to case; roles agent, customer, other, unknown).
    #[arg(long, value_name = "LABEL=ROLE,…", value_parser = crate::input::RoleMap::parse)]
    role_map: Option<crate::input::RoleMap>,
}

impl InputArgs {
    fn options(&self) -> crate::input::InputOptions {
        crate::input::InputOptions {
            format: self.input_format,
            roles: self.role_map.clone().unwrap_or_default(),
        }
    }

    /// The conversations of one input file (`-`: standard input), in order, with errors for
    /// what could not be read.
    fn read(&self, path: &std::path::Path) -> anyhow::Result<crate::input::Items> {
        use anyhow::Context as _;
        let input: Box<dyn std::io::BufRead> = if path.as_os_str() == "-" {
            Box::new(std::io::BufReader::new(std::io::stdin()))
        } else {
            Box::new(std::io::BufReader::new(
                std::fs::File::open(path)
                    .with_context(|| format!("failed to open {}", path.display()))?,
            ))
        };
        let name = path
            .file_stem()
            .map_or_else(|| "stdin".into(), |s| s.to_string_lossy().into_owned());
        Ok(crate::input::read(input, &self.options(), &name))
    }
}

/// The exit code of a command that read transcripts: 1 when any line was skipped, or any
/// message rejected unless `allow_rejections`; and what its summary adds about that.
fn outcome(
    skipped: usize,
    rejected: usize,
    allow_rejections: bool,
) -> (std::process::ExitCode, &'static str) {
    let refused = rejected > 0 && !allow_rejections;
    let hint = if refused {
        " (exit code 1; --allow-rejections to accept)"
    } else {
        ""
    };
    let code = if skipped > 0 || refused {
        std::process::ExitCode::from(1)
    } else {
        std::process::ExitCode::SUCCESS
    };
    (code, hint)
}

/// Says on standard error what was guessed at or looks wrong in conversation `number` of `path`.
fn warn_about(path: &std::path::Path, number: usize, t: &crate::transcript::Transcript) {
    for w in &t.warnings {
        eprintln!(
            "{}: conversation {number} ({}): warning: {w}",
            path.display(),
            t.conversation_id
        );
    }
}

/// Problems with a command's flags, gathered so that one error names every bad value with its
/// flag, rather than the first only; nothing out of range is clamped silently.
#[derive(Debug, Default)]
struct Problems(Vec<String>);

impl Problems {
    /// Notes `problem` unless `ok`.
    fn check(&mut self, ok: bool, problem: impl Into<String>) {
        if !ok {
            self.0.push(problem.into());
        }
    }

    /// An error listing every problem, if there is one.
    fn finish(self) -> anyhow::Result<()> {
        match self.0.len() {
            0 => Ok(()),
            1 => Err(anyhow::anyhow!("{}", self.0[0])),
            _ => Err(anyhow::anyhow!(
                "{} flags are out of range: {}",
                self.0.len(),
                self.0.join("; ")
            )),
        }
    }
}

/// Loads the rubric: the embedded default, with `path` laid over it when given.
/// The listening model `--model` named, if it did: every rubric this command compiles uses it
/// (the engine itself holds no process-wide model; it travels with the rubric).
static MODEL: std::sync::OnceLock<crate::engine::ListeningModel> = std::sync::OnceLock::new();

fn load_rubric(path: Option<&std::path::Path>) -> anyhow::Result<crate::engine::Rubric> {
    use anyhow::Context as _;
    let text = match path {
        Some(path) => std::fs::read_to_string(path)
            .with_context(|| format!("failed to read rubric file {}", path.display()))?,
        None => String::new(),
    };
    let rubric = match MODEL.get() {
        Some(model) => crate::engine::Rubric::from_toml_str_with_model(&text, model),
        None => crate::engine::Rubric::from_toml_str(&text),
    };
    rubric.with_context(|| match path {
        Some(path) => format!("rubric file {} is invalid", path.display()),
        None => "embedded rubric is invalid".into(),
    })
}

/// Where `/metrics` (and health) is served by default, by `serve` and `pipeline`.
pub(crate) const DEFAULT_METRICS_ADDR: &str = "0.0.0.0:9090";

/// An address to listen on, or none (`off`): `--metrics-addr`, `--ui-addr`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct MetricsAddr(pub(crate) Option<std::net::SocketAddr>);

/// Parses `HOST:PORT` or `off`.
pub(crate) fn parse_metrics_addr(value: &str) -> Result<MetricsAddr, String> {
    if value.eq_ignore_ascii_case("off") {
        return Ok(MetricsAddr(None));
    }
    value
        .parse()
        .map(|addr| MetricsAddr(Some(addr)))
        .map_err(|e| format!("{e}: expected HOST:PORT or `off`"))
}

//! `hearken score FILE…`: scores transcript files offline, through the same engine loop as the
//! service. Writes one JSON line per conversation (a `ScoreTranscriptResponse` in proto3 JSON)
//! or, with `--format text`, a readable scorecard. A malformed line is reported on standard
//! error with its number and skipped; the exit code is 1 when any line was skipped.

use std::io::{BufWriter, Write as _};
use std::path::PathBuf;
use std::process::ExitCode;

use super::render;
use crate::config::ENV_RUBRIC;
use crate::engine::{self, Conversation, End, InputLimits};
use crate::proto;

/// Output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Format {
    /// One `ScoreTranscriptResponse` per line, proto3 JSON.
    Json,
    /// A readable scorecard per conversation.
    Text,
}

/// Flags of `hearken score`.
#[derive(Debug, clap::Args)]
pub(super) struct ScoreArgs {
    /// Transcript files (any `--input-format`) or directories of them; `-` reads standard input.
    #[arg(required = true)]
    files: Vec<PathBuf>,
    /// Include the update after every utterance (JSON only).
    #[arg(long)]
    timeline: bool,
    /// Output format.
    #[arg(long, value_enum, default_value = "json")]
    format: Format,
    /// Rubric file (TOML) laid over the embedded default.
    #[arg(long, env = ENV_RUBRIC)]
    rubric: Option<PathBuf>,
    /// Exit 0 even when utterances or signals were rejected (they are reported either way).
    #[arg(long)]
    allow_rejections: bool,
    #[command(flatten)]
    input: super::InputArgs,
}

/// Each rejection of conversation `n` of `path` on standard error.
fn report_rejections(
    path: &std::path::Path,
    n: usize,
    response: &crate::proto::v1::ScoreTranscriptResponse,
) {
    for r in &response.rejections {
        eprintln!(
            "{}: conversation {n} ({}): rejected {}{}: {}",
            path.display(),
            response.conversation_id,
            if r.utterance_id.is_empty() {
                String::new()
            } else {
                format!("utterance {} ", r.utterance_id)
            },
            r.field,
            r.description
        );
    }
}

/// One scored conversation in the chosen format.
fn write_response(
    out: &mut impl std::io::Write,
    format: Format,
    response: &crate::proto::v1::ScoreTranscriptResponse,
) -> anyhow::Result<()> {
    match format {
        Format::Json => writeln!(out, "{}", serde_json::to_string(response)?)?,
        Format::Text => {
            if let Some(card) = &response.scorecard {
                write!(
                    out,
                    "{}",
                    render::scorecard(&response.conversation_id, card)
                )?;
                for a in &card.alerts {
                    write!(out, "{}", render::alert(a))?;
                }
                for r in &response.rejections {
                    write!(out, "{}", render::rejection(r))?;
                }
                writeln!(out)?;
            }
        }
    }
    Ok(())
}

pub(super) fn run(args: ScoreArgs) -> anyhow::Result<ExitCode> {
    let rubric = super::load_rubric(args.rubric.as_deref())?;
    let limits = InputLimits::default();
    let mut out = BufWriter::new(std::io::stdout().lock());
    let (mut scored, mut skipped, mut rejected) = (0usize, 0usize, 0usize);
    for path in &super::input_files(&args.files)? {
        for (i, item) in args.input.read(path)?.enumerate() {
            let t = match item {
                Ok(t) => t,
                Err(e) => {
                    skipped += 1;
                    eprintln!("{}: {e}", path.display());
                    continue;
                }
            };
            super::warn_about(path, i + 1, &t);
            let conversation = match engine::limits::check_id(
                &t.conversation_id,
                "conversation_id",
                limits.max_id_bytes,
            )
            .and_then(|()| Conversation::open(t.start.clone(), &rubric, limits.clone()))
            {
                Ok(c) => c,
                Err(r) => {
                    skipped += 1;
                    eprintln!("{}: conversation {}: {r}", path.display(), i + 1);
                    continue;
                }
            };
            let result = engine::score_events(
                conversation,
                engine::transcript_events(t.utterances, t.signals, End::default()),
            );
            let mut response =
                proto::scored_to_response(t.conversation_id, &result, args.timeline, |_| None);
            // The start's metadata, and what the platform's file said about the turns.
            response.metadata = t.start.metadata.into_iter().chain(t.annotations).collect();
            rejected += response.rejections.len();
            // Every rejection on standard error, in every format (the JSON has them too).
            report_rejections(path, i + 1, &response);
            write_response(&mut out, args.format, &response)?;
            scored += 1;
        }
    }
    out.flush()?;
    let (code, hint) = super::outcome(skipped, rejected, args.allow_rejections);
    eprintln!(
        "hearken score: {scored} conversation(s) scored, {skipped} skipped, {rejected} message(s) rejected{hint}"
    );
    Ok(code)
}

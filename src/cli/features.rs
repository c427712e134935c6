//! `hearken features FILE...`: the learned layer's features of every utterance it judges, with
//! the utterance's labels, as JSON Lines — what `models/build.py` trains the heads on. The
//! features come from the engine's own code, so training and scoring cannot drift apart.
//! Hidden from `--help`: a tool for rebuilding the model, not for operators.

use std::io::{BufReader, BufWriter, Write as _};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;

use crate::engine::{Conversation, Event, InputLimits};
use crate::transcript;

/// Flags of `hearken features`.
#[derive(Debug, clap::Args)]
pub(super) struct FeaturesArgs {
    /// Labelled transcript files (JSON Lines).
    #[arg(required = true)]
    files: Vec<PathBuf>,
    /// Lower-case the text and drop its punctuation first, as speech recognition delivers it.
    #[arg(long)]
    strip_punctuation: bool,
}

pub(super) fn run(args: FeaturesArgs) -> anyhow::Result<ExitCode> {
    let rubric = super::load_rubric(None)?;
    let mut out = BufWriter::new(std::io::stdout().lock());
    let mut dropped = 0u64;
    for path in &args.files {
        let file = std::fs::File::open(path)
            .with_context(|| format!("failed to open {}", path.display()))?;
        for item in transcript::Reader::new(BufReader::new(file)) {
            let mut t = match item {
                Ok(t) => t,
                Err(e) => {
                    dropped += 1;
                    eprintln!("{}: {e}", path.display());
                    continue;
                }
            };
            let mut c = match Conversation::open(t.start.clone(), &rubric, InputLimits::default()) {
                Ok(c) => c,
                Err(e) => {
                    dropped += 1;
                    eprintln!(
                        "{}: conversation {}: {e}",
                        path.display(),
                        t.conversation_id
                    );
                    continue;
                }
            };
            c.record_features();
            let labels = std::mem::take(&mut t.labels);
            for (i, mut u) in t.utterances.into_iter().enumerate() {
                if args.strip_punctuation {
                    u.text = super::eval::strip(&u.text);
                }
                let id = u.utterance_id.clone();
                if let Err(e) = c.observe(Event::Utterance(u)) {
                    dropped += 1;
                    eprintln!("{}: {} {id}: {e}", path.display(), t.conversation_id);
                    continue;
                }
                let Some(f) = c.take_features() else { continue };
                let line = serde_json::json!({
                    "conversation_id": t.conversation_id,
                    "utterance_id": id,
                    "labels": labels.get(i).cloned().flatten(),
                    "dense": f.dense,
                    "sparse": f.sparse,
                    "question_candidate": f.question_candidate,
                    "reflection_candidate": f.reflection_candidate,
                });
                writeln!(out, "{line}")?;
            }
        }
    }
    out.flush()?;
    if dropped > 0 {
        eprintln!("hearken features: {dropped} conversations or utterances dropped (see above)");
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}

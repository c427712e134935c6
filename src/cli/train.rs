//! `hearken train FILE... --out MODEL`: the listening heads fitted to a site's own labelled
//! conversations (`docs/training.md`). Reads transcripts in any format `score` reads, with
//! `labels.behaviours` / `labels.behaviours_ignore` per utterance (the convention of
//! `../shared/data/README.md`): inline in hearken's format, or for any format from a labels
//! file beside them (`--labels`); starts from the model `--model` names (else the embedded
//! one); writes a model file that `--model` / `HEARKEN_MODEL` load everywhere.

use std::collections::BTreeMap;
use std::io::{BufRead as _, BufReader, Write as _};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context as _, bail};

use crate::input::InputFormat;
use crate::training::{self, Annotation, HeadReport, Options, Start};
use crate::transcript::{Reader, Transcript};

/// Flags of `hearken train`.
#[derive(Debug, clap::Args)]
pub(super) struct TrainArgs {
    /// Labelled transcript files, in any format `score` reads (hearken's carries `labels` per
    /// utterance; for any format, `--labels` gives them apart).
    #[arg(required = true)]
    files: Vec<PathBuf>,
    #[command(flatten)]
    input: super::InputArgs,
    /// Labels kept apart from the transcripts: JSON Lines of `{"conversation_id": …,
    /// "utterance_id": …, "labels": {"behaviours": […], "behaviours_ignore": […]}}`, the ids
    /// as `hearken score --timeline` shows them. They replace a transcript's own labels for
    /// those utterances; one that matches no utterance of the files is counted as not used.
    #[arg(long, value_name = "FILE")]
    labels: Option<PathBuf>,
    /// How much the examples of one of the FILES count (`PATH=W`, W > 0, as the FILES argument
    /// is written; repeatable; others count 1): e.g. a few of your own conversations beside a
    /// larger public set. With more than one FILES argument the whole-engine figures are also
    /// given per argument.
    #[arg(long = "weight", value_name = "PATH=W", value_parser = parse_weight)]
    weights: Vec<(PathBuf, f64)>,
    /// Where to write the trained model (safetensors).
    #[arg(long, value_name = "FILE")]
    out: PathBuf,
    /// The behaviours to train (comma-separated: open_question, closed_question, reflection,
    /// empathy);
    /// default: each the files label positive at least once. Every other head stays the base
    /// model's, byte for byte.
    #[arg(long, value_delimiter = ',')]
    behaviours: Option<Vec<String>>,
    /// Start each head from the base model's (`default`: its weights are the prior the fit is
    /// pulled towards; for a behaviour the base has no head for, empathy in the shipped model,
    /// the prior is the rules' own decision) or from zero (`scratch`).
    #[arg(long, value_enum, default_value = "default")]
    start: StartArg,
    /// Folds of the cross-validation by conversation (2–20).
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u8).range(2..=20))]
    folds: u8,
    /// Rubric file (TOML) laid over the embedded default, as `serve --rubric` gets it: the
    /// rules' findings are features of the heads, so train with the rubric you score with.
    #[arg(long, env = crate::config::ENV_RUBRIC)]
    rubric: Option<PathBuf>,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
    /// In the whole-engine figures, count each split unit (`labels.unit`) once, as
    /// `hearken eval --per-unit` does.
    #[arg(long)]
    per_unit: bool,
    /// Skip the whole-engine cross-validation (faster; the heads' own figures remain).
    #[arg(long)]
    no_engine_cv: bool,
    /// Write the model even if some conversations or utterances could not be used (they are
    /// still listed and counted).
    #[arg(long)]
    allow_rejections: bool,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum StartArg {
    Default,
    Scratch,
}

/// Labels from a `--labels` file, by conversation and utterance id, with the line each came
/// from; taken as the transcripts are read, so what is left matched nothing.
struct Sidecar {
    path: PathBuf,
    by_id: BTreeMap<(String, String), (usize, serde_json::Value)>,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct SidecarLine {
    conversation_id: String,
    utterance_id: String,
    labels: serde_json::Value,
}

impl Sidecar {
    /// Reads a labels file; a line that is not one labelled utterance, or one labelled twice,
    /// is an error naming the line (never its text).
    fn read(path: &Path) -> anyhow::Result<Sidecar> {
        let file = std::fs::File::open(path)
            .with_context(|| format!("failed to open {}", path.display()))?;
        let mut by_id = BTreeMap::new();
        for (i, line) in BufReader::new(file).lines().enumerate() {
            let line =
                line.with_context(|| format!("{}:{}: could not be read", path.display(), i + 1))?;
            if line.trim().is_empty() {
                continue;
            }
            let l: SidecarLine = serde_json::from_str(&line).map_err(|e| {
                anyhow::anyhow!(
                    "{}:{}: not a labelled utterance ({{\"conversation_id\", \"utterance_id\", \"labels\"}}): {}",
                    path.display(),
                    i + 1,
                    format!("{:?} error at column {}", e.classify(), e.column()).to_lowercase()
                )
            })?;
            let key = (l.conversation_id, l.utterance_id);
            if let Some((first, _)) = by_id.get(&key) {
                bail!(
                    "{}:{}: conversation {}, utterance {} is labelled twice (first on line {first})",
                    path.display(),
                    i + 1,
                    key.0,
                    key.1
                );
            }
            by_id.insert(key, (i + 1, l.labels));
        }
        Ok(Sidecar {
            path: path.to_path_buf(),
            by_id,
        })
    }

    /// Puts its labels on `t`'s utterances; returns, per utterance, the line of the labels file
    /// its labels came from.
    fn apply(&mut self, t: &mut Transcript) -> Vec<Option<usize>> {
        let mut from = vec![None; t.utterances.len()];
        for (i, u) in t.utterances.iter().enumerate() {
            let key = (t.conversation_id.clone(), u.utterance_id.clone());
            if let Some((line, labels)) = self.by_id.remove(&key) {
                t.labels[i] = Some(labels);
                from[i] = Some(line);
            }
        }
        from
    }

    /// What matched no utterance of the files, said once.
    fn unused(&self) -> Option<String> {
        let ((c, u), (line, _)) = self.by_id.iter().next()?;
        Some(format!(
            "{}: {} labelled utterances match no utterance of the files (the first: line {line}, conversation {c}, utterance {u})",
            self.path.display(),
            self.by_id.len()
        ))
    }
}

/// Whether `path` is hearken's own JSON Lines (read line by line, so that a bad label names its
/// line): `--input-format hearken`, or `auto` and its first line is a hearken conversation.
fn hearken_lines(path: &Path, format: InputFormat) -> bool {
    match format {
        InputFormat::Hearken => true,
        InputFormat::Auto => std::fs::File::open(path).is_ok_and(|f| {
            BufReader::new(f)
                .lines()
                .map_while(Result::ok)
                .find(|l| !l.trim().is_empty())
                .and_then(|l| serde_json::from_str::<serde_json::Value>(&l).ok())
                .is_some_and(|v| crate::input::detect(&v) == InputFormat::Hearken)
        }),
        _ => false,
    }
}

/// Reads the labelled conversations of `path`, with their annotations (labels from `sidecar`
/// where it has them); a label that does not follow the convention is an error naming the
/// file and line (of the labels file, or of hearken's JSON Lines), conversation and utterance.
fn read(
    path: &PathBuf,
    input: &super::InputArgs,
    sidecar: &mut Option<Sidecar>,
    dropped: &mut Vec<String>,
) -> anyhow::Result<Vec<(Transcript, Vec<Option<Annotation>>)>> {
    let mut out = Vec::new();
    let mut take = |mut t: Transcript, at: String| -> anyhow::Result<()> {
        let from = match sidecar {
            Some(s) => s.apply(&mut t),
            None => vec![None; t.utterances.len()],
        };
        let mut annotations = Vec::with_capacity(t.utterances.len());
        for ((u, labels), line) in t.utterances.iter().zip(&t.labels).zip(from) {
            let a = training::annotation(labels.as_ref()).map_err(|e| {
                let at = match (line, sidecar.as_ref()) {
                    (Some(line), Some(s)) => format!("{}:{line}", s.path.display()),
                    _ => at.clone(),
                };
                anyhow::anyhow!(
                    "{at}: conversation {}, utterance {}: {e}",
                    t.conversation_id,
                    u.utterance_id
                )
            })?;
            annotations.push(a);
        }
        out.push((t, annotations));
        Ok(())
    };
    if hearken_lines(path, input.input_format) {
        let file = std::fs::File::open(path)
            .with_context(|| format!("failed to open {}", path.display()))?;
        let mut reader = Reader::new(BufReader::new(file))
            .with_roles(input.role_map.clone().unwrap_or_default());
        while let Some(item) = reader.next() {
            match item {
                Ok(t) => take(t, format!("{}:{}", path.display(), reader.line()))?,
                Err(e) => dropped.push(format!("{}: {e}", path.display())),
            }
        }
    } else {
        for (n, item) in input.read(path)?.enumerate() {
            match item {
                Ok(t) => take(
                    t,
                    format!("{} (conversation {} of the file)", path.display(), n + 1),
                )?,
                Err(e) => dropped.push(format!("{}: {e}", path.display())),
            }
        }
    }
    Ok(out)
}

/// `PATH=W`: a FILES argument and the weight of its examples.
fn parse_weight(s: &str) -> Result<(PathBuf, f64), String> {
    let (path, w) = s
        .rsplit_once('=')
        .ok_or_else(|| format!("{s:?}: expected PATH=WEIGHT"))?;
    let w: f64 = w
        .parse()
        .map_err(|_| format!("{s:?}: the weight is not a number"))?;
    if !(w.is_finite() && w > 0.0) {
        return Err(format!("{s:?}: the weight must be a number above 0"));
    }
    Ok((PathBuf::from(path), w))
}

/// The flags that name things: each `--weight` a FILES argument, each `--behaviours` a head.
fn check(args: &TrainArgs) -> anyhow::Result<()> {
    for (path, _) in &args.weights {
        if !args.files.contains(path) {
            bail!(
                "--weight {}: not one of the files given (write it as the FILES argument is written)",
                path.display()
            );
        }
    }
    for b in args.behaviours.iter().flatten() {
        if !training::HEADS.contains(&b.as_str()) {
            bail!(
                "--behaviours: {b:?} has no head to train (heads: {})",
                training::HEADS.join(", ")
            );
        }
    }
    Ok(())
}

/// Every labelled conversation of the FILES arguments, with (per conversation) the argument it
/// came from and its weight; what could not be read is added to `dropped`.
struct Labelled {
    conversations: Vec<(Transcript, Vec<Option<Annotation>>)>,
    source: Vec<usize>,
    weights: Vec<f64>,
}

fn read_all(args: &TrainArgs, dropped: &mut Vec<String>) -> anyhow::Result<Labelled> {
    let mut out = Labelled {
        conversations: Vec::new(),
        source: Vec::new(),
        weights: Vec::new(),
    };
    let mut sidecar = args.labels.as_deref().map(Sidecar::read).transpose()?;
    for (k, arg) in args.files.iter().enumerate() {
        let weight = args
            .weights
            .iter()
            .rev()
            .find(|(p, _)| p == arg)
            .map_or(1.0, |(_, w)| *w);
        for path in super::input_files(std::slice::from_ref(arg))? {
            let read = read(&path, &args.input, &mut sidecar, dropped)?;
            out.source.extend(std::iter::repeat_n(k, read.len()));
            out.weights.extend(std::iter::repeat_n(weight, read.len()));
            out.conversations.extend(read);
        }
    }
    dropped.extend(sidecar.as_ref().and_then(Sidecar::unused));
    Ok(out)
}

pub(super) fn run(args: TrainArgs) -> anyhow::Result<ExitCode> {
    check(&args)?;
    let rubric = super::load_rubric(args.rubric.as_deref())?;
    // The same overlay for each fold's model in the whole-engine cross-validation.
    let overlay = match &args.rubric {
        Some(path) => std::fs::read_to_string(path)
            .with_context(|| format!("failed to read rubric file {}", path.display()))?,
        None => String::new(),
    };
    let mut dropped = Vec::new();
    let Labelled {
        conversations,
        source,
        weights,
    } = read_all(&args, &mut dropped)?;
    let (examples, unusable) = training::examples(&conversations, &weights, &rubric);
    dropped.extend(unusable);
    let options = Options {
        folds: usize::from(args.folds),
        start: match args.start {
            StartArg::Default => Start::Default,
            StartArg::Scratch => Start::Scratch,
        },
        behaviours: args.behaviours.clone(),
    };
    let all: Vec<&training::Example> = examples.iter().collect();
    let behaviours = training::behaviours_to_train(&all, options.behaviours.as_deref());
    if behaviours.is_empty() {
        bail!(
            "nothing to train: no utterance the heads judge (question or reflection candidates) is labelled with {} (labels.behaviours)",
            training::HEADS.join(", ")
        );
    }
    let trained = training::train(&all, rubric.model(), &options, true);
    let engine = if args.no_engine_cv {
        Vec::new()
    } else {
        let options = Options {
            behaviours: Some(behaviours.iter().map(|b| b.to_string()).collect()),
            ..options.clone()
        };
        let scoring = Scoring {
            rubric: &rubric,
            overlay: &overlay,
            per_unit: args.per_unit,
            source: &source,
            sources: &args.files,
        };
        engine_cv(&conversations, &examples, &scoring, &options)?
    };
    let write = dropped.is_empty() || args.allow_rejections;
    if write {
        let tmp = args.out.with_extension("tmp");
        std::fs::write(&tmp, &trained.model)
            .and_then(|()| std::fs::rename(&tmp, &args.out))
            .with_context(|| format!("failed to write {}", args.out.display()))?;
    }
    let report = Outcome {
        conversations: conversations.len(),
        trained: &trained,
        engine: &engine,
        dropped: &dropped,
        written: write,
    };
    report.tell(&args)
}

/// What a run of `train` gives, to tell.
struct Outcome<'a> {
    conversations: usize,
    trained: &'a training::Trained,
    engine: &'a [EngineFigures],
    dropped: &'a [String],
    written: bool,
}

impl Outcome<'_> {
    /// Prints the report (table or JSON) and what was not used; the exit code.
    fn tell(&self, args: &TrainArgs) -> anyhow::Result<ExitCode> {
        let (trained, engine, dropped, write) =
            (self.trained, self.engine, self.dropped, self.written);
        let conversations = self.conversations;
        let mut out = std::io::stdout().lock();
        if args.json {
            let json = serde_json::json!({
                "conversations": conversations,
                "heads": trained.report,
                "engine": engine,
                "dropped": dropped,
                "model": write.then(|| args.out.display().to_string()),
            });
            writeln!(out, "{json}")?;
        } else {
            print_report(&mut out, conversations, &trained.report)?;
            print_engine(&mut out, engine, usize::from(args.folds))?;
            for d in dropped {
                writeln!(out, "not used: {d}")?;
            }
            if write {
                writeln!(
                    out,
                    "wrote {} ({} bytes)",
                    args.out.display(),
                    trained.model.len()
                )?;
            }
        }
        if !write {
            eprintln!(
                "hearken train: {} conversations or utterances could not be used (listed above); no model written (--allow-rejections writes it anyway)",
                dropped.len()
            );
            return Ok(ExitCode::FAILURE);
        }
        if !dropped.is_empty() {
            eprintln!(
                "hearken train: {} conversations or utterances could not be used (listed above)",
                dropped.len()
            );
        }
        Ok(ExitCode::SUCCESS)
    }
}

fn print_report(
    out: &mut impl std::io::Write,
    conversations: usize,
    report: &[HeadReport],
) -> std::io::Result<()> {
    writeln!(
        out,
        "{conversations} labelled conversations; heads cross-validated by conversation (new) beside the base model's head (base), on the examples each head judges"
    )?;
    writeln!(
        out,
        "{:<16} {:<12} {:>8} {:>9} {:>6}   {:>5} {:>5} {:>5}   {:>5} {:>5} {:>5}",
        "behaviour",
        "text",
        "examples",
        "positive",
        "convs",
        "new P",
        "R",
        "F1",
        "base P",
        "R",
        "F1"
    )?;
    for h in report {
        let (np, nr, nf) = h
            .new
            .map(|c| (fmt(c.precision()), fmt(c.recall()), fmt(c.f1())))
            .unwrap_or_else(|| ("-".into(), "-".into(), "-".into()));
        writeln!(
            out,
            "{:<16} {:<12} {:>8} {:>9} {:>6}   {:>5} {:>5} {:>5}   {:>6} {:>5} {:>5}",
            h.behaviour,
            h.text,
            h.examples,
            h.positives,
            h.conversations,
            np,
            nr,
            nf,
            h.base.map_or("-".into(), |c| fmt(c.precision())),
            h.base.map_or("-".into(), |c| fmt(c.recall())),
            h.base.map_or("-".into(), |c| fmt(c.f1()))
        )?;
        if let Some(w) = &h.warning {
            writeln!(out, "  warning: {} {}: {w}", h.behaviour, h.text)?;
        }
    }
    Ok(())
}

/// One behaviour's whole-engine figures: the model trained without each fold's conversations,
/// scored on them with `hearken eval`'s counting, beside the base model on the same ones.
#[derive(Debug, serde::Serialize)]
struct EngineFigures {
    /// The FILES argument counted (none: all of them).
    #[serde(skip_serializing_if = "Option::is_none")]
    source: Option<String>,
    behaviour: String,
    /// `punctuated` (as written) or `unpunctuated` (stripped, as speech recognition gives).
    text: &'static str,
    new: super::eval::Counts,
    base: super::eval::Counts,
}

/// The whole engine cross-validated by conversation: per fold, the heads trained on the other
/// folds (thresholds by an inner 3-fold cross-validation), the fold's conversations scored with
/// them and with the base model.
/// How conversations are scored in the whole-engine cross-validation.
struct Scoring<'a> {
    /// The base model's rubric.
    rubric: &'a crate::engine::Rubric,
    /// The rubric file laid over the default (empty: none), for each fold's model.
    overlay: &'a str,
    per_unit: bool,
    /// Per conversation, the FILES argument it came from, and those arguments' names: with more
    /// than one, the figures are also given per argument.
    source: &'a [usize],
    sources: &'a [PathBuf],
}

fn engine_cv(
    conversations: &[(Transcript, Vec<Option<Annotation>>)],
    examples: &[training::Example],
    scoring: &Scoring<'_>,
    options: &Options,
) -> anyhow::Result<Vec<EngineFigures>> {
    let (rubric, per_unit) = (scoring.rubric, scoring.per_unit);
    let sizes: Vec<usize> = conversations
        .iter()
        .map(|(t, _)| t.utterances.len())
        .collect();
    let fold_of = training::conversation_folds(&sizes, options.folds);
    let folds = fold_of.iter().max().map_or(0, |f| f + 1);
    let inner = Options {
        folds: 3,
        ..options.clone()
    };
    let transcripts = |pick: &dyn Fn(usize) -> bool| {
        conversations
            .iter()
            .enumerate()
            .filter(move |(i, _)| pick(*i))
            .map(|(_, (t, _))| t.clone())
            .collect::<Vec<_>>()
    };
    // Each fold's rubric: heads trained without the fold's conversations (the same for both
    // kinds of text).
    let mut fold_rubrics = Vec::with_capacity(folds);
    for f in 0..folds {
        let train: Vec<&training::Example> = examples
            .iter()
            .filter(|e| fold_of[e.conversation()] != f)
            .collect();
        let trained = training::train(&train, rubric.model(), &inner, false);
        let model = crate::engine::ListeningModel::from_bytes(&trained.model)
            .map_err(|e| anyhow::anyhow!("a fold's model: {e}"))?;
        fold_rubrics.push(crate::engine::Rubric::from_toml_str_with_model(
            scoring.overlay,
            &model,
        )?);
    }
    // What is counted: all conversations, and each FILES argument's when there are several.
    let parts: Vec<Option<usize>> = std::iter::once(None)
        .chain(
            (0..scoring.sources.len())
                .filter(|_| scoring.sources.len() > 1)
                .map(Some),
        )
        .collect();
    let of = |part: Option<usize>, i: usize| part.is_none_or(|k| scoring.source[i] == k);
    let mut figures: Vec<EngineFigures> = Vec::new();
    for (strip, text) in [(false, "punctuated"), (true, "unpunctuated")] {
        for &part in &parts {
            let base = super::eval::counts(transcripts(&|i| of(part, i)), rubric, per_unit, strip);
            let mut new: std::collections::BTreeMap<String, super::eval::Counts> =
                Default::default();
            for (f, fold_rubric) in fold_rubrics.iter().enumerate() {
                let held = transcripts(&|i| fold_of[i] == f && of(part, i));
                for (name, c) in super::eval::counts(held, fold_rubric, per_unit, strip) {
                    let sum = new.entry(name).or_default();
                    (sum.tp, sum.fp, sum.fn_) = (sum.tp + c.tp, sum.fp + c.fp, sum.fn_ + c.fn_);
                }
            }
            for behaviour in options.behaviours.iter().flatten() {
                let (Some(b), Some(n)) = (base.get(behaviour), new.get(behaviour)) else {
                    continue;
                };
                figures.push(EngineFigures {
                    source: part.map(|k| scoring.sources[k].display().to_string()),
                    behaviour: behaviour.clone(),
                    text,
                    new: super::eval::Counts::from_counts(n.tp, n.fp, n.fn_),
                    base: *b,
                });
            }
        }
    }
    Ok(figures)
}

fn print_engine(
    out: &mut impl std::io::Write,
    figures: &[EngineFigures],
    folds: usize,
) -> std::io::Result<()> {
    if figures.is_empty() {
        return Ok(());
    }
    writeln!(
        out,
        "\nthe whole engine, cross-validated by conversation ({folds} folds), counted as `hearken eval` counts:"
    )?;
    writeln!(
        out,
        "{:<16} {:<12}   {:>5} {:>5} {:>5}   {:>6} {:>5} {:>5}",
        "behaviour", "text", "new P", "R", "F1", "base P", "R", "F1"
    )?;
    for f in figures {
        if let Some(source) = &f.source {
            write!(out, "{source}: ")?;
        }
        writeln!(
            out,
            "{:<16} {:<12}   {:>5} {:>5} {:>5}   {:>6} {:>5} {:>5}",
            f.behaviour,
            f.text,
            fmt(f.new.precision),
            fmt(f.new.recall),
            fmt(f.new.f1),
            fmt(f.base.precision),
            fmt(f.base.recall),
            fmt(f.base.f1)
        )?;
    }
    Ok(())
}

fn fmt(x: f64) -> String {
    format!("{x:.3}")
}

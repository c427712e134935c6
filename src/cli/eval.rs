//! `hearken eval FILE`: runs the detectors over a labelled transcript file, through the same
//! engine loop as everything else, and reports true and false positives, false negatives,
//! precision, recall and F1 per behaviour.
//!
//! Scoring follows `shared/data/README.md`: for each utterance and behaviour X, X in
//! `labels.behaviours` is a positive, X in `labels.behaviours_ignore` is skipped, anything else
//! is a negative; an empty `behaviours` list means "not annotated" and the utterance is skipped.
//! `--per-unit` groups segments of one split unit (`labels.unit`): a unit is detected when any of
//! its segments is. The data's `collaborative_completion` is the rubric's sentence completion.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use serde::Serialize;

use crate::config::ENV_RUBRIC;
use crate::engine::{self, Behaviour, Conversation, End, InputLimits};

/// Flags of `hearken eval`.
#[derive(Debug, clap::Args)]
pub(super) struct EvalArgs {
    /// Labelled transcript file (hearken's format carries `labels`; other formats score without).
    file: PathBuf,
    /// Print `{"behaviours": {...}}` as JSON.
    #[arg(long)]
    json: bool,
    /// Count each split unit (`labels.unit`) once.
    #[arg(long)]
    per_unit: bool,
    /// Lower-case the text and drop its punctuation first, as speech recognition delivers it.
    #[arg(long)]
    strip_punctuation: bool,
    /// Print up to N misclassified utterances per behaviour and kind, with their text and the
    /// two utterances before each (for tuning on local data; off by default).
    #[arg(long, value_name = "N")]
    errors: Option<usize>,
    /// Rubric file (TOML) laid over the embedded default.
    #[arg(long, env = ENV_RUBRIC)]
    rubric: Option<PathBuf>,
    #[command(flatten)]
    input: super::InputArgs,
}

pub use crate::training::labels::label_of;

fn normalise_label(name: &str) -> String {
    match name {
        "sentence_completion" => "collaborative_completion".into(),
        other => other.into(),
    }
}

/// The behaviours always reported (the language behaviours the development data labels).
const STANDARD: &[&str] = &[
    "open_question",
    "closed_question",
    "clarifying_question",
    "acknowledgement",
    "empathy",
    "reflection",
    "collaborative_completion",
];

/// Counts for one behaviour.
#[derive(Debug, Default, Clone, Copy, Serialize)]
pub struct Counts {
    /// True positives.
    pub tp: u64,
    /// False positives.
    pub fp: u64,
    /// False negatives.
    #[serde(rename = "fn")]
    pub fn_: u64,
    /// tp / (tp + fp).
    pub precision: f64,
    /// tp / (tp + fn).
    pub recall: f64,
    /// Harmonic mean of precision and recall.
    pub f1: f64,
}

impl Counts {
    /// Counts with their precision, recall and F1.
    pub fn from_counts(tp: u64, fp: u64, fn_: u64) -> Counts {
        let ratio = |a: u64, b: u64| if b == 0 { 0.0 } else { a as f64 / b as f64 };
        let (precision, recall) = (ratio(tp, tp + fp), ratio(tp, tp + fn_));
        let f1 = if precision + recall == 0.0 {
            0.0
        } else {
            2.0 * precision * recall / (precision + recall)
        };
        Counts {
            tp,
            fp,
            fn_,
            precision,
            recall,
            f1,
        }
    }
}

#[derive(Debug, Serialize)]
struct Report {
    behaviours: BTreeMap<String, Counts>,
    conversations: u64,
    scored: u64,
    skipped_lines: u64,
    per_unit: bool,
    strip_punctuation: bool,
    /// Every behaviour detected, labelled or not: in how many utterances and conversations
    /// (dismissive language among helpful supporters, premature solutions, …).
    detected: BTreeMap<String, Detected>,
    /// When conversations carry a session quality label (`labels.mi_quality`: `high`/`low`):
    /// how well the final listening score separates them.
    #[serde(skip_serializing_if = "Option::is_none")]
    quality: Option<Quality>,
}

/// Where one behaviour was detected.
#[derive(Debug, Default, Serialize)]
struct Detected {
    utterances: u64,
    conversations: u64,
}

/// The final listening score against a session quality label.
#[derive(Debug, Serialize)]
struct Quality {
    /// Probability that a high-quality session scores above a low-quality one (ties count
    /// half); 0.5 is chance.
    auc: f64,
    high: usize,
    low: usize,
    /// Every labelled session: id, final score, label (for pooling across folds).
    sessions: Vec<(String, f64, String)>,
}

/// The area under the ROC curve of `score` for telling `high` from `low` sessions.
fn auc(sessions: &[(String, f64, String)]) -> f64 {
    let high: Vec<f64> = sessions
        .iter()
        .filter(|s| s.2 == "high")
        .map(|s| s.1)
        .collect();
    let low: Vec<f64> = sessions
        .iter()
        .filter(|s| s.2 == "low")
        .map(|s| s.1)
        .collect();
    if high.is_empty() || low.is_empty() {
        return 0.5;
    }
    let mut wins = 0.0;
    for h in &high {
        for l in &low {
            wins += if h > l {
                1.0
            } else if h == l {
                0.5
            } else {
                0.0
            };
        }
    }
    wins / (high.len() * low.len()) as f64
}

/// One scored item (an utterance, or a unit).
struct Item {
    detected: BTreeSet<String>,
    positive: BTreeSet<String>,
    ignore: BTreeSet<String>,
    /// Behaviours outside the standard set that this item is annotated for (a customer turn's
    /// `customer_negative_emotion`: scored as `customer_emotion`, positive or negative).
    annotated: BTreeSet<String>,
    text: String,
    /// The utterances before it (only with `--errors`).
    context: String,
}

fn strings(v: Option<&serde_json::Value>) -> Option<BTreeSet<String>> {
    v?.as_array().map(|a| {
        a.iter()
            .filter_map(|x| x.as_str())
            .map(normalise_label)
            .collect()
    })
}

pub(super) use crate::training::strip_punctuation as strip;

/// What `eval` adds up over the conversations.
struct Tally {
    counts: BTreeMap<String, Counts>,
    /// Up to `--errors` examples per (behaviour, kind of error).
    examples: HashMap<(String, &'static str), Vec<String>>,
    errors: Option<usize>,
    scored: u64,
}

impl Tally {
    fn new(errors: Option<usize>) -> Tally {
        Tally {
            counts: STANDARD
                .iter()
                .map(|b| (b.to_string(), Counts::default()))
                .collect(),
            examples: HashMap::new(),
            errors,
            scored: 0,
        }
    }

    /// Counts one item against every behaviour it is labelled or detected with.
    fn add(&mut self, item: Item) {
        self.scored += 1;
        let names: BTreeSet<String> = self
            .counts
            .keys()
            .cloned()
            .chain(item.positive.iter().cloned())
            .chain(item.annotated.iter().cloned())
            .collect();
        for name in names {
            if item.ignore.contains(&name) {
                continue;
            }
            let c = self.counts.entry(name.clone()).or_default();
            let (is, said) = (item.positive.contains(&name), item.detected.contains(&name));
            let kind = match (is, said) {
                (true, true) => {
                    c.tp += 1;
                    continue;
                }
                (false, true) => {
                    c.fp += 1;
                    "false positive"
                }
                (true, false) => {
                    c.fn_ += 1;
                    "false negative"
                }
                (false, false) => continue,
            };
            if let Some(n) = self.errors {
                let list = self.examples.entry((name, kind)).or_default();
                if list.len() < n {
                    list.push(format!("{}  > {}", item.context, item.text));
                }
            }
        }
    }

    /// Precision, recall and F1 from the counts.
    fn finish(&mut self) {
        for c in self.counts.values_mut() {
            *c = Counts::from_counts(c.tp, c.fp, c.fn_);
        }
    }
}

/// What one conversation gave: its items, its session label with the final score, and how
/// many utterances each behaviour was detected in.
struct Scored {
    items: Vec<Item>,
    session: Option<(String, f64, String)>,
    detected: BTreeMap<String, u64>,
}

/// One labelled conversation, scored: its items (utterances, or units with `--per-unit`) with
/// what was detected in each, and its session quality label with the final score, if it has
/// one, and how many of its utterances each behaviour was detected in.
/// Who spoke each utterance (`role participant`), when errors are shown in context.
fn speakers(t: &crate::transcript::Transcript, wanted: bool) -> Vec<String> {
    if !wanted {
        return Vec::new();
    }
    t.utterances
        .iter()
        .map(|u| {
            let who = u.participant_id.as_deref().unwrap_or_default();
            format!("{:?} {who}", u.role).to_lowercase()
        })
        .collect()
}

/// The behaviours found in each utterance (by id), and in how many utterances each was found.
fn detections(result: &engine::Scored) -> (HashMap<&str, BTreeSet<String>>, BTreeMap<String, u64>) {
    let mut detected: HashMap<&str, BTreeSet<String>> = HashMap::new();
    for update in &result.timeline {
        let set = detected.entry(update.utterance_id.as_str()).or_default();
        set.extend(
            update
                .behaviours
                .iter()
                .map(|d| label_of(d.behaviour).to_string()),
        );
    }
    let mut per_behaviour: BTreeMap<String, u64> = BTreeMap::new();
    for set in detected.values() {
        for name in set {
            *per_behaviour.entry(name.clone()).or_default() += 1;
        }
    }
    (detected, per_behaviour)
}

/// An utterance's annotation: the behaviours it shows (`none`: none) and those not to count,
/// if it was annotated.
fn annotated(labels: &serde_json::Value) -> Option<(BTreeSet<String>, BTreeSet<String>)> {
    let positive = strings(labels.get("behaviours")).filter(|p| !p.is_empty())?;
    let positive = positive.into_iter().filter(|b| b != "none").collect();
    let ignore = strings(labels.get("behaviours_ignore")).unwrap_or_default();
    Some((positive, ignore))
}

/// A conversation's rating (`mi_quality` high or low) with its listening score, if rated.
fn session_of(
    id: &str,
    labels: &[Option<serde_json::Value>],
    overall: f64,
) -> Option<(String, f64, String)> {
    let quality = labels.iter().flatten().find_map(|l| {
        l.get("mi_quality")
            .and_then(|q| q.as_str())
            .map(str::to_string)
    });
    quality
        .filter(|q| q == "high" || q == "low")
        .map(|q| (id.to_owned(), overall, q))
}

/// A customer turn labelled for negative emotion, scored for `customer_emotion` alone.
fn emotion_item(negative: bool, detected: BTreeSet<String>, text: String, context: String) -> Item {
    let name = label_of(Behaviour::CustomerEmotion).to_string();
    Item {
        detected,
        positive: negative.then(|| name.clone()).into_iter().collect(),
        ignore: STANDARD.iter().map(|b| b.to_string()).collect(),
        annotated: BTreeSet::from([name]),
        text,
        context,
    }
}

fn score_conversation(
    t: crate::transcript::Transcript,
    conversation: Conversation,
    per_unit: bool,
    errors: Option<usize>,
) -> Scored {
    let (texts, ids): (Vec<String>, Vec<String>) = t
        .utterances
        .iter()
        .map(|u| (u.text.clone(), u.utterance_id.clone()))
        .unzip();
    // What came before utterance `i`, for reading errors in context (only with `--errors`).
    let speakers = speakers(&t, errors.is_some());
    let before = |i: usize| -> String {
        (i.saturating_sub(2)..i)
            .filter_map(|j| Some(format!("    [{}] {}\n", speakers.get(j)?, texts[j])))
            .collect()
    };
    let result = engine::score_events(
        conversation,
        engine::transcript_events(t.utterances, t.signals, End::default()),
    );
    let session = session_of(
        &t.conversation_id,
        &t.labels,
        result.scorecard.score.overall,
    );
    let (detected, per_behaviour) = detections(&result);
    let mut items: Vec<Item> = Vec::new();
    let mut unit_index: HashMap<String, usize> = HashMap::new();
    for (i, labels) in t.labels.iter().enumerate() {
        let Some(labels) = labels else { continue };
        // A customer turn labelled for negative emotion (MAIA-DQE: anger, frustration or
        // disappointment true, all calm false, anything else null) is scored for
        // `customer_emotion` alone.
        if let Some(negative) = labels
            .get("customer_negative_emotion")
            .and_then(|v| v.as_bool())
        {
            let found = detected.get(ids[i].as_str()).cloned().unwrap_or_default();
            items.push(emotion_item(negative, found, texts[i].clone(), before(i)));
            continue;
        }
        let Some((positive, ignore)) = annotated(labels) else {
            continue; // not annotated
        };
        let found = detected.get(ids[i].as_str()).cloned().unwrap_or_default();
        let unit = labels
            .get("unit")
            .and_then(|u| u.as_str())
            .filter(|_| per_unit);
        match unit.and_then(|u| unit_index.get(u).copied()) {
            Some(at) => {
                items[at].detected.extend(found);
                items[at].text.push_str(" / ");
                items[at].text.push_str(&texts[i]);
            }
            None => {
                if let Some(u) = unit {
                    unit_index.insert(u.to_string(), items.len());
                } else if per_unit {
                    unit_index.insert(ids[i].clone(), items.len());
                }
                items.push(Item {
                    detected: found,
                    positive,
                    ignore,
                    annotated: BTreeSet::new(),
                    text: texts[i].clone(),
                    context: before(i),
                });
            }
        }
    }
    Scored {
        items,
        session,
        detected: per_behaviour,
    }
}

/// How the listening score separates the sessions rated high from those rated low, if any
/// were rated.
fn quality(sessions: Vec<(String, f64, String)>) -> Option<Quality> {
    (!sessions.is_empty()).then(|| Quality {
        auc: auc(&sessions),
        high: sessions.iter().filter(|s| s.2 == "high").count(),
        low: sessions.iter().filter(|s| s.2 == "low").count(),
        sessions,
    })
}

/// What `hearken eval` counts for `rubric` on `transcripts` (per unit or per utterance, as
/// written or stripped of punctuation), without printing: `hearken train`'s whole-engine
/// cross-validation measures each fold's model with it. Conversations that do not open are
/// left out (the caller has read them already).
pub(super) fn counts(
    transcripts: impl IntoIterator<Item = crate::transcript::Transcript>,
    rubric: &engine::Rubric,
    per_unit: bool,
    strip_punctuation: bool,
) -> BTreeMap<String, Counts> {
    let mut tally = Tally::new(None);
    for mut t in transcripts {
        if strip_punctuation {
            t.utterances
                .iter_mut()
                .for_each(|u| u.text = strip(&u.text));
        }
        let Ok(conversation) = Conversation::open(t.start.clone(), rubric, InputLimits::default())
        else {
            continue;
        };
        let scored = score_conversation(t, conversation, per_unit, None);
        scored.items.into_iter().for_each(|item| tally.add(item));
    }
    tally.finish();
    tally.counts
}

pub(super) fn run(args: EvalArgs) -> anyhow::Result<ExitCode> {
    let rubric = super::load_rubric(args.rubric.as_deref())?;
    let items = args.input.read(&args.file)?;
    let limits = InputLimits::default();
    let mut tally = Tally::new(args.errors);
    let (mut conversations, mut skipped) = (0u64, 0u64);
    let mut sessions: Vec<(String, f64, String)> = Vec::new();
    let mut detections: BTreeMap<String, Detected> = BTreeMap::new();
    // Warnings (guessed or suspicious input), counted and reported once at the end.
    let (mut warned, mut first_warning) = (0u64, None::<String>);
    for item in items {
        let mut t = match item {
            Ok(t) => t,
            Err(e) => {
                skipped += 1;
                eprintln!("{}: {e}", args.file.display());
                continue;
            }
        };
        if let Some(first) = t.warnings.first() {
            warned += 1;
            first_warning
                .get_or_insert_with(|| format!("conversation {}: {first}", t.conversation_id));
        }
        if args.strip_punctuation {
            t.utterances
                .iter_mut()
                .for_each(|u| u.text = strip(&u.text));
        }
        let conversation = match Conversation::open(t.start.clone(), &rubric, limits.clone()) {
            Ok(c) => c,
            Err(r) => {
                skipped += 1;
                eprintln!(
                    "{}: conversation {}: {r}",
                    args.file.display(),
                    conversations + skipped
                );
                continue;
            }
        };
        conversations += 1;
        let Scored {
            items,
            session,
            detected,
        } = score_conversation(t, conversation, args.per_unit, args.errors);
        sessions.extend(session);
        for (name, n) in detected {
            let d = detections.entry(name).or_default();
            (d.utterances, d.conversations) = (d.utterances + n, d.conversations + 1);
        }
        items.into_iter().for_each(|item| tally.add(item));
    }
    tally.finish();
    if let Some(first) = &first_warning {
        eprintln!(
            "{}: {warned} conversation(s) with warnings (the first: {first}); `hearken score` lists them",
            args.file.display()
        );
    }
    let examples = std::mem::take(&mut tally.examples);
    let report = Report {
        behaviours: tally.counts,
        conversations,
        scored: tally.scored,
        skipped_lines: skipped,
        per_unit: args.per_unit,
        strip_punctuation: args.strip_punctuation,
        detected: detections,
        quality: quality(sessions),
    };
    print_report(&report, &examples, args.json)?;
    if skipped > 0 {
        eprintln!("hearken eval: {skipped} line(s) skipped");
    }
    Ok(super::outcome(skipped as usize, 0, true).0)
}

/// The report on standard output: JSON, or a table and the examples of errors asked for.
fn print_report(
    report: &Report,
    examples: &HashMap<(String, &'static str), Vec<String>>,
    json: bool,
) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    if json {
        writeln!(out, "{}", serde_json::to_string_pretty(report)?)?;
    } else {
        write_table(&mut out, report, examples)?;
    }
    Ok(())
}

/// The report as a table, then the examples of errors asked for.
fn write_table(
    out: &mut impl Write,
    report: &Report,
    examples: &HashMap<(String, &'static str), Vec<String>>,
) -> std::io::Result<()> {
    writeln!(
        out,
        "{} conversations, {} {} scored{}",
        report.conversations,
        report.scored,
        if report.per_unit {
            "units"
        } else {
            "utterances"
        },
        if report.strip_punctuation {
            " (punctuation stripped)"
        } else {
            ""
        }
    )?;
    writeln!(
        out,
        "{:<26} {:>7} {:>7} {:>7} {:>9} {:>7} {:>6}",
        "behaviour", "tp", "fp", "fn", "precision", "recall", "f1"
    )?;
    for (name, c) in &report.behaviours {
        writeln!(
            out,
            "{:<26} {:>7} {:>7} {:>7} {:>9.3} {:>7.3} {:>6.3}",
            name, c.tp, c.fp, c.fn_, c.precision, c.recall, c.f1
        )?;
    }
    for name in ["dismissive_language", "premature_solution"] {
        let d = report.detected.get(name);
        writeln!(
            out,
            "{name}: detected in {} utterances of {} conversations",
            d.map_or(0, |d| d.utterances),
            d.map_or(0, |d| d.conversations)
        )?;
    }
    if let Some(q) = &report.quality {
        writeln!(
            out,
            "session quality: AUC {:.3} of the final score ({} high, {} low sessions)",
            q.auc, q.high, q.low
        )?;
    }
    let mut keys: Vec<_> = examples.keys().cloned().collect();
    keys.sort();
    for key in keys {
        writeln!(out, "\n{} — {}:", key.0, key.1)?;
        for text in &examples[&key] {
            writeln!(out, "{text}")?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::{auc, strip};

    #[test]
    fn auc_counts_pairs_in_order_and_ties_as_half() {
        let s = |v: &[(f64, &str)]| -> Vec<(String, f64, String)> {
            v.iter()
                .map(|(x, q)| (String::new(), *x, q.to_string()))
                .collect()
        };
        assert_eq!(auc(&s(&[(80.0, "high"), (60.0, "low")])), 1.0);
        assert_eq!(auc(&s(&[(50.0, "high"), (60.0, "low")])), 0.0);
        assert_eq!(
            auc(&s(&[(60.0, "high"), (60.0, "low"), (70.0, "high")])),
            0.75
        );
        assert_eq!(auc(&s(&[(60.0, "high")])), 0.5);
    }

    #[test]
    fn strip_keeps_words_and_inner_joiners() {
        assert_eq!(strip("Uh-huh. I'm sorry, what?"), "uh-huh i'm sorry what");
        assert_eq!(strip("-- 'quoted' --"), "quoted");
    }
}

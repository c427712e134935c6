//! `hearken train`: a site's own labelled conversations teach the listening heads its own
//! definitions. The features are the engine's own (`Conversation::record_features`, as
//! `hearken features` gives `models/build.py`); the heads are fitted here (`fit.rs`), each
//! with a decision threshold chosen by cross-validation by conversation, and written into a
//! model file with the base model's token table and every head not trained, byte for byte.
//!
//! What is reported is honest about what it measures: per head, the cross-validated
//! precision, recall and F1 by conversation (outer folds; each fold's threshold chosen by an
//! inner cross-validation on its training part only) beside the base model's head on the very
//! same examples. These are the heads' figures on the examples they judge (the engine's
//! question and reflection candidates); the rules decide the rest of an utterance's behaviours.

mod fit;
pub mod labels;

use std::collections::{BTreeMap, BTreeSet};

use crate::engine::learned::model::Head;
use crate::engine::{Conversation, Event, InputLimits, ListeningModel, Rubric};
use crate::transcript::Transcript;

pub use labels::{Annotation, annotation};

/// The behaviours the engine consults heads for (the shipped model has the first three; an
/// empathy head comes only from `hearken train`).
pub const HEADS: [&str; 4] = ["open_question", "closed_question", "reflection", "empathy"];
/// Fewer positive examples than this (or no negative one, or fewer than two conversations):
/// the head is not trained and the base model's is kept.
pub const MIN_POSITIVES: usize = 5;
/// Fewer positives than this, or fewer conversations than [`FEW_CONVERSATIONS`], and the
/// report warns that its figures are uncertain: with 20 positives, a recall of 0.7 has a
/// standard error of about 0.10 (√(0.7 × 0.3 / 20)), the size of the differences a site would
/// train for.
pub const FEW_POSITIVES: usize = 20;
/// See [`FEW_POSITIVES`].
pub const FEW_CONVERSATIONS: usize = 10;
/// Inverse regularisation strength, as `models/build.py` fits the shipped heads.
pub const C: f64 = 0.2;
/// L-BFGS iterations at most per fit.
const MAX_ITERS: u64 = 400;

/// Lower-cases text and drops its punctuation (keeping apostrophes and hyphens inside words),
/// as speech recognition delivers it.
pub fn strip_punctuation(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    for (i, c) in chars.iter().enumerate() {
        let inner = i > 0
            && i + 1 < chars.len()
            && chars[i - 1].is_alphanumeric()
            && chars[i + 1].is_alphanumeric();
        if c.is_alphanumeric() || c.is_whitespace() || ((*c == '\'' || *c == '-') && inner) {
            out.extend(c.to_lowercase());
        } else {
            out.push(' ');
        }
    }
    out.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Where the fit starts from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Start {
    /// The base model's head: the penalty pulls towards it (what a site with few
    /// conversations keeps). Where the base has no head for the behaviour, a head that decides
    /// as the rules do ([`RULES_PRIOR_LOGIT`]).
    Default,
    /// Zero weights (the site's labels alone).
    Scratch,
}

/// How to train.
#[derive(Debug, Clone)]
pub struct Options {
    /// Folds of the cross-validation by conversation (at most the conversations).
    pub folds: usize,
    /// Where the fit starts.
    pub start: Start,
    /// The behaviours to train; `None`: every one of [`HEADS`] the files label positive at
    /// least once. Every other head stays the base model's, byte for byte.
    pub behaviours: Option<Vec<String>>,
}

/// One utterance the learned layer judged, with what its annotation says.
#[derive(Debug)]
pub struct Example {
    conversation: usize,
    /// Its text was stripped of punctuation first (for the `.asr` heads).
    asr: bool,
    question_candidate: bool,
    reflection_candidate: bool,
    empathy_candidate: bool,
    /// Per [`HEADS`]: shows it, does not, or not to be counted.
    says: [Option<bool>; 4],
    /// How much it counts in a fit: its source's weight.
    weight: f64,
    dense: Vec<f32>,
    sparse: Vec<(u32, f32)>,
}

/// Examples from labelled conversations, each read as written and stripped of punctuation:
/// every annotated utterance the learned layer judged. Returns the examples and what could
/// not be used (a conversation that does not open, an utterance the engine rejects), without
/// text.
pub fn examples(
    conversations: &[(Transcript, Vec<Option<Annotation>>)],
    weights: &[f64],
    rubric: &Rubric,
) -> (Vec<Example>, Vec<String>) {
    let mut out = Vec::new();
    let mut dropped = Vec::new();
    for (index, (t, annotations)) in conversations.iter().enumerate() {
        for asr in [false, true] {
            let mut c = match Conversation::open(t.start.clone(), rubric, InputLimits::default()) {
                Ok(c) => c,
                Err(e) => {
                    if !asr {
                        dropped.push(format!("conversation {}: {e}", t.conversation_id));
                    }
                    break;
                }
            };
            c.record_features();
            for (u, annotation) in t.utterances.iter().zip(annotations) {
                let mut u = u.clone();
                if asr {
                    u.text = strip_punctuation(&u.text);
                }
                let id = u.utterance_id.clone();
                if let Err(e) = c.observe(Event::Utterance(u)) {
                    if !asr {
                        dropped.push(format!(
                            "conversation {} utterance {id}: {e}",
                            t.conversation_id
                        ));
                    }
                    continue;
                }
                let (Some(f), Some(a)) = (c.take_features(), annotation) else {
                    continue;
                };
                if !f.question_candidate && !f.reflection_candidate && !f.empathy_candidate {
                    continue; // no head judges it
                }
                out.push(Example {
                    conversation: index,
                    asr,
                    question_candidate: f.question_candidate,
                    reflection_candidate: f.reflection_candidate,
                    empathy_candidate: f.empathy_candidate,
                    says: HEADS.map(|h| a.says(h)),
                    weight: weights.get(index).copied().unwrap_or(1.0),
                    dense: f.dense,
                    sparse: f.sparse,
                });
            }
        }
    }
    (out, dropped)
}

/// Each conversation's fold (of `folds`, at most the conversations): the conversations with
/// the most utterances first, each into the fold with the fewest utterances so far.
pub fn conversation_folds(utterances: &[usize], folds: usize) -> Vec<usize> {
    let folds = folds.min(utterances.len()).max(1);
    let mut order: Vec<usize> = (0..utterances.len()).collect();
    order.sort_by(|&a, &b| utterances[b].cmp(&utterances[a]).then(a.cmp(&b)));
    let mut load = vec![0usize; folds];
    let mut fold_of = vec![0; utterances.len()];
    for i in order {
        let f = (0..folds).min_by_key(|&f| (load[f], f)).unwrap_or(0);
        load[f] += utterances[i];
        fold_of[i] = f;
    }
    fold_of
}

impl Example {
    /// The index of its conversation in the list [`examples`] was given.
    pub fn conversation(&self) -> usize {
        self.conversation
    }
}

/// Counts of decisions against labels.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Counts {
    /// Decided positive, labelled positive.
    pub tp: u64,
    /// Decided positive, labelled negative.
    pub fp: u64,
    /// Decided negative, labelled positive.
    #[serde(rename = "fn")]
    pub fn_: u64,
}

impl Counts {
    fn add(&mut self, decided: bool, truth: bool) {
        match (decided, truth) {
            (true, true) => self.tp += 1,
            (true, false) => self.fp += 1,
            (false, true) => self.fn_ += 1,
            (false, false) => {}
        }
    }

    /// Precision (0 when nothing was decided positive).
    pub fn precision(&self) -> f64 {
        ratio(self.tp, self.tp + self.fp)
    }

    /// Recall (0 when nothing is positive).
    pub fn recall(&self) -> f64 {
        ratio(self.tp, self.tp + self.fn_)
    }

    /// F1.
    pub fn f1(&self) -> f64 {
        ratio(2 * self.tp, 2 * self.tp + self.fp + self.fn_)
    }
}

fn ratio(a: u64, b: u64) -> f64 {
    if b == 0 { 0.0 } else { a as f64 / b as f64 }
}

/// What training one head gave.
#[derive(Debug, Clone, serde::Serialize)]
pub struct HeadReport {
    /// The behaviour.
    pub behaviour: String,
    /// `punctuated` (the head for written text) or `unpunctuated` (its `.asr` head).
    pub text: &'static str,
    /// Examples the head judges (candidates with an annotation for it).
    pub examples: usize,
    /// Of which positive.
    pub positives: usize,
    /// Conversations they come from.
    pub conversations: usize,
    /// Whether a new head was trained (else the base model's is kept).
    pub trained: bool,
    /// The new head's threshold on the logit.
    pub threshold: Option<f32>,
    /// The new head, cross-validated by conversation.
    pub new: Option<Counts>,
    /// The base model's head on the same examples (none when it has no such head: there the
    /// rules decide; the whole-engine figures compare them).
    pub base: Option<Counts>,
    /// Why the figures are uncertain, or why no head was trained.
    pub warning: Option<String>,
}

/// A trained model and its report.
#[derive(Debug)]
pub struct Trained {
    /// The model file.
    pub model: Vec<u8>,
    /// One entry per behaviour trained and text kind.
    pub report: Vec<HeadReport>,
}

/// Which behaviours to train: those asked for, else those labelled positive at least once.
pub fn behaviours_to_train(examples: &[&Example], asked: Option<&[String]>) -> Vec<&'static str> {
    HEADS
        .iter()
        .enumerate()
        .filter(|(k, name)| match asked {
            Some(list) => list.iter().any(|b| b == *name),
            None => examples.iter().any(|e| e.says[*k] == Some(true)),
        })
        .map(|(_, name)| *name)
        .collect()
}

/// Trains the heads `opts` asks for on `examples`, starting from `base`; every other head
/// stays `base`'s. With `report`, each head is also cross-validated by conversation (the
/// report's `new`); without, only fitted (a fold of the whole-engine cross-validation).
pub fn train(
    examples: &[&Example],
    base: &ListeningModel,
    opts: &Options,
    report: bool,
) -> Trained {
    let model = &*base.0;
    let mut heads: Vec<Head> = model.heads().to_vec();
    let mut entries = Vec::new();
    let dense_len = crate::engine::learned::features::dense_len(model.dim());
    for name in behaviours_to_train(examples, opts.behaviours.as_deref()) {
        let k = HEADS.iter().position(|h| *h == name).unwrap_or(0);
        for asr in [false, true] {
            let key = if asr {
                format!("{name}.asr")
            } else {
                name.to_string()
            };
            let prior_head = model.head_for(name, asr);
            let chosen: Vec<&Example> = examples
                .iter()
                .copied()
                .filter(|e| {
                    e.asr == asr
                        && e.says[k].is_some()
                        && match name {
                            "reflection" => e.reflection_candidate,
                            "empathy" => e.empathy_candidate,
                            _ => e.question_candidate,
                        }
                })
                .collect();
            let job = Job {
                examples: &chosen,
                k,
                dense_len,
                buckets: model.buckets,
                prior: match opts.start {
                    Start::Default => prior_head
                        .map(params_of)
                        .or_else(|| rules_prior(name, model.dim(), dense_len, model.buckets)),
                    Start::Scratch => None,
                },
                folds: opts.folds.max(2),
                report,
            };
            let (head, entry) = job.run(name, key.clone(), asr, prior_head);
            if let Some(head) = head {
                match heads.iter_mut().find(|h| h.name == key) {
                    Some(slot) => *slot = head,
                    None => heads.push(head),
                }
            }
            entries.push(entry);
        }
    }
    Trained {
        model: model.to_bytes(&heads, "trained"),
        report: entries,
    }
}

/// Logit a head that starts from the rules gives an utterance the rules found the behaviour in
/// (and minus it to one they did not): sure enough (0.88) that a few labelled conversations do
/// not overturn the rules, not so sure that many cannot.
pub const RULES_PRIOR_LOGIT: f64 = 2.0;

/// For a behaviour the base model has no head for (the shipped one has none for empathy), the
/// default is what the rules decide: a prior head that says yes exactly where the rules found
/// it (their finding is one of the features), so `--start default` keeps the rules where the
/// site's labels are few, as it keeps the base head where there is one.
fn rules_prior(name: &str, dim: usize, dense_len: usize, buckets: usize) -> Option<Vec<f64>> {
    let flag = crate::engine::learned::features::rule_flag_index(dim, name)?;
    let mut w = vec![0.0; 1 + dense_len + buckets];
    w[0] = -RULES_PRIOR_LOGIT;
    w[1 + flag] = 2.0 * RULES_PRIOR_LOGIT;
    Some(w)
}

fn params_of(h: &Head) -> Vec<f64> {
    std::iter::once(h.bias)
        .chain(h.dense.iter().copied())
        .chain(h.sparse.iter().copied())
        .map(f64::from)
        .collect()
}

/// One head to train.
struct Job<'a> {
    examples: &'a [&'a Example],
    /// Its index in [`HEADS`].
    k: usize,
    dense_len: usize,
    buckets: usize,
    prior: Option<Vec<f64>>,
    folds: usize,
    /// Cross-validate the head for the report.
    report: bool,
}

impl Job<'_> {
    fn truth(&self, e: &Example) -> bool {
        e.says[self.k] == Some(true)
    }

    fn run(
        &self,
        name: &str,
        key: String,
        asr: bool,
        base: Option<&Head>,
    ) -> (Option<Head>, HeadReport) {
        let all: Vec<usize> = (0..self.examples.len()).collect();
        let positives = all
            .iter()
            .filter(|&&i| self.truth(self.examples[i]))
            .count();
        let conversations = self.conversations(&all).len();
        let base_counts = base.map(|h| {
            let mut c = Counts::default();
            for e in self.examples {
                c.add(h.logit(&e.dense, &e.sparse) >= h.threshold, self.truth(e));
            }
            c
        });
        let mut entry = HeadReport {
            behaviour: name.to_string(),
            text: if asr { "unpunctuated" } else { "punctuated" },
            examples: all.len(),
            positives,
            conversations,
            trained: false,
            threshold: None,
            new: None,
            base: base_counts,
            warning: None,
        };
        if positives < MIN_POSITIVES || positives == all.len() || conversations < 2 {
            entry.warning = Some(format!(
                "too few examples to train ({positives} positive of {} in {conversations} conversations; at least {MIN_POSITIVES} positives, one negative and 2 conversations): the base model's head is kept",
                all.len()
            ));
            return (None, entry);
        }
        if self.report {
            entry.new = Some(self.cross_validated(&key, &all));
        }
        match self.head(&key, &all, self.folds) {
            Ok(head) => {
                entry.trained = true;
                entry.threshold = Some(head.threshold);
                if positives < FEW_POSITIVES || conversations < FEW_CONVERSATIONS {
                    entry.warning = Some(format!(
                        "few examples ({positives} positive, {conversations} conversations; fewer than {FEW_POSITIVES} or {FEW_CONVERSATIONS}): the figures may be off by 0.1 or more"
                    ));
                }
                (Some(head), entry)
            }
            Err(e) => {
                entry.warning = Some(format!("{e}: the base model's head is kept"));
                (None, entry)
            }
        }
    }

    /// The head cross-validated by conversation (outer folds): each fold decided by a head, and
    /// threshold, learned without it.
    fn cross_validated(&self, key: &str, all: &[usize]) -> Counts {
        let mut new = Counts::default();
        for held in self.split(all, self.folds) {
            let train: Vec<usize> = all.iter().copied().filter(|i| !held.contains(i)).collect();
            match self.head(key, &train, 3) {
                Ok(head) => {
                    for &i in &held {
                        let e = self.examples[i];
                        new.add(
                            head.logit(&e.dense, &e.sparse) >= head.threshold,
                            self.truth(e),
                        );
                    }
                }
                // A fold without both classes to learn from decides nothing.
                Err(_) => held
                    .iter()
                    .for_each(|&i| new.add(false, self.truth(self.examples[i]))),
            }
        }
        new
    }

    /// The conversations of `rows`, with how many examples each has.
    fn conversations(&self, rows: &[usize]) -> BTreeMap<usize, usize> {
        let mut sizes = BTreeMap::new();
        for &i in rows {
            *sizes.entry(self.examples[i].conversation).or_insert(0) += 1;
        }
        sizes
    }

    /// `rows` in `folds` parts by conversation, each conversation whole ([`conversation_folds`],
    /// scikit-learn's `GroupKFold`).
    fn split(&self, rows: &[usize], folds: usize) -> Vec<BTreeSet<usize>> {
        let sizes = self.conversations(rows);
        let ids: Vec<usize> = sizes.keys().copied().collect();
        let counts: Vec<usize> = sizes.values().copied().collect();
        let fold_of: BTreeMap<usize, usize> = ids
            .into_iter()
            .zip(conversation_folds(&counts, folds))
            .collect();
        let mut parts = vec![BTreeSet::new(); folds.min(counts.len()).max(1)];
        for &i in rows {
            parts[fold_of[&self.examples[i].conversation]].insert(i);
        }
        parts
    }

    /// A head fitted on `rows`, its threshold chosen by a `folds`-fold cross-validation on
    /// them (the F1-best of -2.0, -1.9, …, 2.0 on the out-of-fold logits, the lowest of ties).
    fn head(&self, key: &str, rows: &[usize], folds: usize) -> Result<Head, String> {
        let mut logits = Vec::with_capacity(rows.len());
        for held in self.split(rows, folds) {
            let train: Vec<usize> = rows.iter().copied().filter(|i| !held.contains(i)).collect();
            match self.fit(key, &train, 0.0) {
                Ok(h) => logits.extend(held.iter().map(|&i| {
                    let e = self.examples[i];
                    (h.logit(&e.dense, &e.sparse), self.truth(e))
                })),
                Err(_) => logits.extend(
                    held.iter()
                        .map(|&i| (f32::NEG_INFINITY, self.truth(self.examples[i]))),
                ),
            }
        }
        let threshold = (-20..=20)
            .map(|t| t as f32 / 10.0)
            .fold((f32::NAN, -1.0), |best, t| {
                let mut c = Counts::default();
                logits.iter().for_each(|&(z, y)| c.add(z >= t, y));
                if c.f1() > best.1 { (t, c.f1()) } else { best }
            })
            .0;
        self.fit(key, rows, threshold)
    }

    fn fit(&self, key: &str, rows: &[usize], threshold: f32) -> Result<Head, String> {
        let data: Vec<fit::Row<'_>> = rows
            .iter()
            .map(|&i| {
                let e = self.examples[i];
                fit::Row {
                    dense: &e.dense,
                    sparse: &e.sparse,
                    y: self.truth(e),
                    weight: e.weight,
                }
            })
            .collect();
        let w = fit::fit(
            &data,
            fit::Setting {
                c: C,
                dense_len: self.dense_len,
                buckets: self.buckets,
                prior: self.prior.as_deref(),
                max_iters: MAX_ITERS,
            },
        )?;
        let d = self.dense_len;
        Ok(Head {
            name: key.to_string(),
            bias: w[0] as f32,
            dense: w[1..=d].iter().map(|&x| x as f32).collect(),
            sparse: w[1 + d..].iter().map(|&x| x as f32).collect(),
            threshold,
        })
    }
}

//! The features the heads read, for one utterance. The training script reads them from
//! `hearken features`, so training and scoring share this code and cannot drift apart.
//!
//! Dense: the utterance's embedding, its last sentence's, its last question's (zeros when it
//! asks none), the product of the utterance's with the other party's latest turn (zeros when
//! there is none), then [`SCALARS`] numbers. Hashed (FNV-1a into `buckets`): words and word
//! pairs, the first words of each sentence and of each question (after discourse markers),
//! question words present, and counts.

use super::model::Model;
use super::sentences::Sentence;

/// Scalars after the four embeddings.
pub(crate) const SCALARS: usize = 15;

/// Length of the dense part for an embedding width.
pub(crate) fn dense_len(dim: usize) -> usize {
    4 * dim + SCALARS
}

/// Positions among the scalars (after the four embeddings) of the rules' own findings of the
/// decided behaviours: written by [`compute`], read by [`rule_flag_index`].
const SCALAR_OPEN: usize = 5;
const SCALAR_CLOSED: usize = 6;
const SCALAR_REFLECTION: usize = 7;
const SCALAR_EMPATHY: usize = 10;

/// Where in the dense part the rules' own finding of a decided behaviour sits, by the
/// behaviour's head name: what a head that starts from the rules weighs (`hearken train
/// --start default` for a behaviour the base model has no head for).
pub(crate) fn rule_flag_index(dim: usize, behaviour: &str) -> Option<usize> {
    let k = match behaviour {
        "open_question" => SCALAR_OPEN,
        "closed_question" => SCALAR_CLOSED,
        "reflection" => SCALAR_REFLECTION,
        "empathy" => SCALAR_EMPATHY,
        _ => return None,
    };
    Some(4 * dim + k)
}

/// What the rules found in the utterance, given to the heads as features.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct RuleFlags {
    /// An open question by the question rules.
    pub open: bool,
    /// A closed question.
    pub closed: bool,
    /// A reflection by the reflection rules.
    pub reflection: bool,
    /// A clarifying question.
    pub clarifying: bool,
    /// An acknowledgement or backchannel.
    pub acknowledgement: bool,
    /// Empathy.
    pub empathy: bool,
    /// The question rules, sentence by sentence: some sentence is an open question.
    pub sentence_open: bool,
    /// Some sentence is a closed question.
    pub sentence_closed: bool,
    /// Sentences the rules read as questions of either kind.
    pub question_sentences: u32,
    /// The speaker says what they will do or have done, or proposes a fix (the rubric's
    /// `agent_actions` and `solutions`).
    pub acting: bool,
    /// The other party's latest turn asked something: this turn may be the answer.
    pub answering: bool,
    /// Sentences that speak from each of the agent's own grounds (advice, appraisal, people in
    /// general, oneself: `language::Ground`), in that order.
    pub grounds: [u8; 4],
    /// The ground the first sentence speaks from.
    pub first_ground: Option<crate::engine::language::Ground>,
}

/// One utterance's features.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Features {
    /// Dense part, [`dense_len`] long.
    pub dense: Vec<f32>,
    /// Hashed part: (bucket, value), buckets unique, in first-seen order.
    pub sparse: Vec<(u32, f32)>,
    /// The utterance's sentences.
    pub sentences: Vec<Sentence>,
    /// Index of the last question sentence.
    pub last_question: Option<usize>,
    /// Index of the sentence most like the other party's latest turn.
    pub closest_to_other: Option<usize>,
    /// Whether the text has sentence punctuation (else the heads for speech recognition's
    /// unpunctuated text are used, when the model has them).
    pub punctuated: bool,
    /// Whether a sentence of it ends with a question mark.
    pub question_mark: bool,
    /// Whether the question heads judge this utterance (see `learned::decide`); set by the layer.
    pub question_candidate: bool,
    /// Whether the reflection head judges it; set by the layer.
    pub reflection_candidate: bool,
    /// Whether an empathy head judges it (an agent's turn; the shipped model has none, a site's
    /// model from `hearken train` may); set by the layer.
    pub empathy_candidate: bool,
    /// Whether it speaks of "you" ("you", "your", "you're", ...).
    pub addresses_you: bool,
    /// Whether its first sentence opens as a question does, with a question word or an
    /// auxiliary after any leading cue ("what model is the printer", "so did it print"), with or
    /// without a question mark.
    pub opens_as_question: bool,
}

impl Features {
    /// Share of its longer words found in the other party's latest turn.
    pub(crate) fn overlap(&self) -> f32 {
        self.dense[self.dense.len() - SCALARS + 2]
    }
}

const LEADS: &[&str] = &[
    "so", "and", "okay", "ok", "well", "um", "uh", "yeah", "but", "now", "alright", "all", "right",
    "oh", "then", "mm", "hmm",
];
const OPENERS: &[&str] = &[
    "what", "how", "why", "where", "when", "who", "which", "can", "could", "would", "do", "does",
    "did", "is", "are", "was", "were", "have", "has", "will", "should", "may", "tell",
];
const MARKED: &[&str] = &[
    "what", "how", "why", "where", "when", "who", "which", "tell", "describe", "or", "anything",
    "any", "you", "sounds", "feel", "hear", "seems",
];

/// Words as the hashed features see them: lower-case runs of letters, digits and apostrophes;
/// `?` is a word of its own. All of a text's words share one buffer (no allocation per word),
/// and words of several texts may be appended one after another.
#[derive(Debug, Default)]
struct WordBuf {
    text: String,
    spans: Vec<(u32, u32)>,
}

impl WordBuf {
    /// Appends the words of `text`; returns the range of their indices.
    fn push(&mut self, text: &str) -> std::ops::Range<usize> {
        let first = self.spans.len();
        let mut start = None;
        for c in text.chars().flat_map(char::to_lowercase) {
            let c = if c == '’' { '\'' } else { c };
            if c.is_alphanumeric() || c == '\'' {
                start.get_or_insert(self.text.len());
                self.text.push(c);
            } else {
                if let Some(s) = start.take() {
                    self.spans.push((s as u32, self.text.len() as u32));
                }
                if c == '?' {
                    let s = self.text.len();
                    self.text.push('?');
                    self.spans.push((s as u32, self.text.len() as u32));
                }
            }
        }
        if let Some(s) = start {
            self.spans.push((s as u32, self.text.len() as u32));
        }
        first..self.spans.len()
    }

    /// The words at the indices `range`.
    fn words(&self, range: std::ops::Range<usize>) -> Words<'_> {
        Words {
            text: &self.text,
            spans: &self.spans[range],
        }
    }

    fn all(&self) -> Words<'_> {
        self.words(0..self.spans.len())
    }
}

/// A run of words of a [`WordBuf`].
#[derive(Debug, Clone, Copy)]
struct Words<'a> {
    text: &'a str,
    spans: &'a [(u32, u32)],
}

impl<'a> Words<'a> {
    fn len(self) -> usize {
        self.spans.len()
    }

    fn get(self, i: usize) -> Option<&'a str> {
        self.spans
            .get(i)
            .map(|&(s, e)| &self.text[s as usize..e as usize])
    }

    fn first(self) -> Option<&'a str> {
        self.get(0)
    }

    fn iter(self) -> impl Iterator<Item = &'a str> {
        self.spans
            .iter()
            .map(move |&(s, e)| &self.text[s as usize..e as usize])
    }

    /// Without the first `k` words.
    fn skip(self, k: usize) -> Words<'a> {
        Words {
            text: self.text,
            spans: &self.spans[k.min(self.spans.len())..],
        }
    }
}

/// Hashed features in first-seen order (the order the heads sum them in), with an index so that
/// a repeated feature is found without scanning the list.
struct Hashed {
    buckets: u64,
    out: Vec<(u32, f32)>,
    at: foldhash::HashMap<u32, usize>,
    key: String,
}

impl Hashed {
    fn add(&mut self, parts: &[&str], value: f32) {
        self.key.clear();
        for (i, p) in parts.iter().enumerate() {
            if i > 0 {
                self.key.push(' ');
            }
            self.key.push_str(p);
        }
        let h = word_key(&self.key);
        let bucket = (h % self.buckets) as u32;
        match self.at.entry(bucket) {
            std::collections::hash_map::Entry::Occupied(i) => self.out[*i.get()].1 += value,
            std::collections::hash_map::Entry::Vacant(slot) => {
                slot.insert(self.out.len());
                self.out.push((bucket, value));
            }
        }
    }
}

fn is_question(words: Words<'_>, raw: &str) -> bool {
    raw.trim_end().ends_with('?')
        || (!raw.trim_end().ends_with(['.', '!', ';'])
            && core(words).first().is_some_and(|w| OPENERS.contains(&w)))
}

fn core(words: Words<'_>) -> Words<'_> {
    let k = words.iter().take_while(|w| LEADS.contains(w)).count();
    words.skip(k)
}

/// The embedding of `part`, a sentence of `whole` whose embedding is `whole_embedding`: a
/// sentence that is the whole utterance (most turns) has the same embedding, copied rather than
/// computed again (the same function of the same text, so the same bits).
fn embed_part(model: &Model, part: &str, whole: &str, whole_embedding: &[f32], out: &mut [f32]) {
    if part == whole {
        out.copy_from_slice(whole_embedding);
    } else {
        model.embed(part, out);
    }
}

/// Computes the features of `text`. `other` is the embedding of the other party's latest turn
/// and `other_words` its words (for the overlap), when there is one.
pub(crate) fn compute(
    model: &Model,
    text: &str,
    sentences: Vec<Sentence>,
    other: Option<&[f32]>,
    other_words: &[u64],
    rules: RuleFlags,
    unknown_role: bool,
) -> Features {
    let dim = model.dim();
    let mut dense = vec![0.0f32; dense_len(dim)];
    let (e, rest) = dense.split_at_mut(dim);
    let (el, rest) = rest.split_at_mut(dim);
    let (eq, rest) = rest.split_at_mut(dim);
    let (ep, scalars) = rest.split_at_mut(dim);
    model.embed(text, e);
    let mut hashed = Hashed {
        buckets: model.buckets as u64,
        out: Vec::with_capacity(96),
        at: foldhash::HashMap::with_capacity_and_hasher(96, Default::default()),
        key: String::new(),
    };
    let mut buf = WordBuf::default();
    buf.text.reserve(text.len() * 2 + 8);
    buf.spans.reserve(text.len() / 2 + 4);
    let whole = buf.push(text);
    let mut sentence_words = Vec::with_capacity(sentences.len());
    for s in &sentences {
        sentence_words.push(buf.push(s.text(text)));
    }
    let all = buf.words(whole);
    for (i, w) in all.iter().enumerate() {
        hashed.add(&["u", w], 1.0);
        if let Some(next) = all.get(i + 1) {
            hashed.add(&["b", w, next], 1.0);
        }
    }
    // Each sentence's words, whether it asks, and (with another turn to compare) its embedding:
    // computed once, read by both passes below.
    let mut per: Vec<(Words<'_>, bool)> = Vec::with_capacity(sentences.len());
    let mut embedded = vec![
        0.0f32;
        if other.is_some() {
            sentences.len() * dim
        } else {
            0
        }
    ];
    let mut last_question = None;
    let mut questions = 0usize;
    let mut closest = None;
    let mut best = f32::MIN;
    for (si, s) in sentences.iter().enumerate() {
        let raw = s.text(text);
        let sw = buf.words(sentence_words[si].clone());
        let tag = if si + 1 == sentences.len() { "L" } else { "S" };
        if let Some(first) = sw.first() {
            hashed.add(&[tag, "1", first], 1.0);
        }
        if let (Some(w0), Some(w1)) = (sw.get(0), sw.get(1)) {
            hashed.add(&[tag, "2", w0, w1], 1.0);
        }
        if raw.trim_end().ends_with('?') {
            hashed.add(&[tag, "?"], 1.0);
        }
        hashed.add(&[tag, "len"], sw.len().min(40) as f32 / 40.0);
        let asks = is_question(sw, raw);
        if asks {
            questions += 1;
            last_question = Some(si);
        }
        if let Some(other) = other {
            let own = &mut embedded[si * dim..(si + 1) * dim];
            embed_part(model, raw, text, e, own);
            let sim: f32 = own.iter().zip(other).map(|(a, b)| a * b).sum();
            if sim > best {
                best = sim;
                closest = Some(si);
            }
        }
        per.push((sw, asks));
    }
    // A sentence's embedding: the one computed above, else computed now.
    let sentence_embedding = |si: usize, out: &mut [f32]| {
        if embedded.is_empty() {
            embed_part(model, sentences[si].text(text), text, e, out);
        } else {
            out.copy_from_slice(&embedded[si * dim..(si + 1) * dim]);
        }
    };
    if !sentences.is_empty() {
        sentence_embedding(sentences.len() - 1, el);
    }
    // Features of each question, the last one marked apart.
    let mut qn = 0;
    for (si, &(sw, asks)) in per.iter().enumerate() {
        if !asks {
            continue;
        }
        qn += 1;
        let tag = if qn == questions { "QL" } else { "Q" };
        let c: Vec<&str> = core(sw).iter().filter(|w| *w != "?").collect();
        if let Some(first) = c.first() {
            hashed.add(&[tag, "c1", first], 1.0);
        }
        if c.len() > 1 {
            hashed.add(&[tag, "c2", c[0], c[1]], 1.0);
        }
        let mut seen: Vec<&str> = c.iter().copied().filter(|w| MARKED.contains(w)).collect();
        seen.sort_unstable();
        seen.dedup();
        for w in seen {
            hashed.add(&[tag, "has", w], 1.0);
        }
        if Some(si) == last_question {
            sentence_embedding(si, eq);
        }
    }
    hashed.add(&["nq"], questions as f32 / 3.0);
    let addresses_you = all.iter().any(crate::engine::language::is_you);
    let opens_as_question = per
        .first()
        .and_then(|(sw, _)| core(*sw).first())
        .is_some_and(|w| OPENERS.contains(&w));
    if addresses_you {
        hashed.add(&["F", "you"], 1.0);
    }
    if rules.acting {
        hashed.add(&["F", "acting"], 1.0);
    }
    if rules.answering {
        hashed.add(&["F", "answering"], 1.0);
    }
    // How much of the turn speaks from the agent's own ground (advice, an appraisal, people in
    // general, oneself) rather than from what the other said.
    for (kind, n) in crate::engine::language::Ground::ALL
        .iter()
        .zip(rules.grounds)
    {
        if n > 0 {
            let share = f32::from(n) / sentences.len().max(1) as f32;
            hashed.add(&["F", "ground", kind.name()], share);
        }
    }
    if let Some(kind) = rules.first_ground {
        hashed.add(&["F", "ground1", kind.name()], 1.0);
    }
    let mut overlap = 0.0;
    if let Some(other) = other {
        for (p, (a, b)) in ep.iter_mut().zip(e.iter().zip(other)) {
            *p = a * b;
        }
        scalars[0] = e.iter().zip(other).map(|(a, b)| a * b).sum();
        scalars[1] = el.iter().zip(other).map(|(a, b)| a * b).sum();
        let (mut content, mut shared) = (0usize, 0usize);
        for w in all.iter().filter(|w| w.chars().count() > 3) {
            content += 1;
            shared += usize::from(other_words.binary_search(&word_key(w)).is_ok());
        }
        if content > 0 {
            overlap = shared as f32 / content as f32;
        }
    }
    scalars[2] = overlap;
    scalars[3] = all.len().min(100) as f32 / 100.0;
    scalars[4] = sentences.len() as f32 / 5.0;
    let flag = |b: bool| if b { 1.0 } else { 0.0 };
    scalars[SCALAR_OPEN] = flag(rules.open);
    scalars[SCALAR_CLOSED] = flag(rules.closed);
    scalars[SCALAR_REFLECTION] = flag(rules.reflection);
    scalars[8] = flag(rules.clarifying);
    scalars[9] = flag(rules.acknowledgement);
    scalars[SCALAR_EMPATHY] = flag(rules.empathy);
    scalars[11] = flag(other.is_some()) - flag(unknown_role) * 0.5;
    scalars[12] = flag(rules.sentence_open);
    scalars[13] = flag(rules.sentence_closed);
    scalars[14] = rules.question_sentences.min(4) as f32 / 4.0;
    let question_mark = sentences
        .iter()
        .any(|s| s.text(text).trim_end().ends_with('?'));
    Features {
        question_mark,
        dense,
        sparse: hashed.out,
        sentences,
        last_question,
        closest_to_other: closest,
        punctuated: text.contains(['.', '?', '!', ',']),
        question_candidate: false,
        reflection_candidate: false,
        empathy_candidate: false,
        addresses_you,
        opens_as_question,
    }
}

/// A word's key for the overlap feature (FNV-1a; a collision only adds a shared word).
fn word_key(word: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in word.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// The words `compute` compares with for overlap, of the other party's turn: keys of its
/// first `max` longer words, sorted, without repeats (8 bytes a word).
pub(crate) fn overlap_words(text: &str, max: usize) -> Vec<u64> {
    let mut buf = WordBuf::default();
    buf.push(text);
    let mut out: Vec<u64> = buf
        .all()
        .iter()
        .filter(|w| w.chars().count() > 3)
        .take(max)
        .map(word_key)
        .collect();
    out.sort_unstable();
    out.dedup();
    out
}

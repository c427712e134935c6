//! What the language detectors share, computed once per utterance: its words without fillers,
//! the stems of its content words, whether and how it is a question, whether it stops
//! mid-clause, and its sentiment.
//!
//! Nothing here depends on punctuation or capitals (speech recognition has neither); a question
//! mark, when present, only adds evidence. Every word list comes from the rubric
//! (`[base.language]`); the sentiment lexicon is VADER's (Hutto & Gilbert 2014, through the
//! `vader_sentiment` crate), with negation and intensifier rules after VADER's and contact-centre
//! overrides from the rubric.

use std::cell::RefCell;
use std::collections::HashMap;
use std::hash::BuildHasher as _;
use std::sync::Arc;

use serde::Deserialize;

use super::text::{PhraseIndex, PhraseIndexBuilder, PhraseMatch, PhraseSet, Token, Words};

/// Declares each list of `[base.language]` once: its field in the file type
/// ([`LanguageRules`]: a list of strings), its field in the compiled type ([`CompiledLanguage`]: a
/// set of single words, or a phrase set of the one shared automaton), and its compilation.
macro_rules! language_lists {
    (
        words { $($(#[$wm:meta])* $w:ident,)* }
        phrases { $($(#[$pm:meta])* $p:ident,)* }
    ) => {
        /// Word lists and thresholds of the language behaviours (`[base.language]`).
        #[derive(Debug, Clone, Deserialize)]
        #[serde(deny_unknown_fields)]
        #[allow(missing_docs)] // each list is documented in default.toml beside its values
        pub struct LanguageRules {
            $($(#[$wm])* pub $w: Vec<String>,)*
            $($(#[$pm])* pub $p: Vec<String>,)*
            pub sentiment_overrides: HashMap<String, f64>,
            pub thresholds: LanguageThresholds,
        }

        /// The rules compiled for matching.
        #[derive(Clone)]
        pub struct CompiledLanguage {
            $($(#[$wm])* pub $w: WordSet,)*
            $($(#[$pm])* pub $p: PhraseSet,)*
            /// `vocabulary.acknowledgements`: the phrases a backchannel is made of.
            pub backchannels: PhraseSet,
            /// Word valences of the rubric, consulted before the lexicon.
            overrides: Lexicon,
            /// VADER's lexicon, shared by every profile.
            lexicon: Arc<Lexicon>,
            /// Every phrase list above in one automaton: an utterance is scanned once.
            phrases: PhraseIndex,
        }

        impl CompiledLanguage {
            /// Compiles the rules and the backchannel vocabulary; `lexicon` is the base
            /// sentiment lexicon. Fails only when the phrases are too many or too long for one
            /// automaton.
            pub fn new(
                rules: &LanguageRules,
                backchannels: &[String],
                lexicon: Arc<Lexicon>,
            ) -> Result<CompiledLanguage, String> {
                let mut phrases = PhraseIndexBuilder::new();
                let mut compiled = CompiledLanguage {
                    $($w: set(&rules.$w),)*
                    $($p: phrases.add(&rules.$p),)*
                    backchannels: phrases.add(backchannels),
                    overrides: rules
                        .sentiment_overrides
                        .iter()
                        .map(|(w, v)| (w.to_lowercase(), *v))
                        .collect(),
                    lexicon,
                    phrases: PhraseIndex::default(),
                };
                compiled.phrases = phrases
                    .build()
                    .map_err(|e| format!("the phrase lists do not fit one automaton: {e}"))?;
                Ok(compiled)
            }
        }
    };
}

language_lists! {
    words {
        discourse_markers,
        stop_words,
        wh_words,
        subordinating_wh_words,
        fact_nouns,
        auxiliaries,
        subjects,
        statement_subjects,
        exclamatives,
        open_wh_followers,
        closed_wh_followers,
        closed_wh_words,
        opinion_verbs,
        range_followers,
        handover_words,
        /// Words of an offer after "how about" / "what about" ("Tuesday", "ten o'clock", "the
        /// blue one"): a choice to accept, so a closed question.
        choice_words,
        contracted_what,
        /// Verbs of an offer ("how can I help"): a question in the first person that still
        /// addresses the other party.
        offer_verbs,
        /// Words that follow a copula's subject noun ("the", "my"): "what's the reason the
        /// payment is late" asks; "what's so sad about this is…" states.
        determiners,
        /// Verbs that report speech or thought ("she said, why…", "and I'm like, what…"): what
        /// follows them is quoted, not asked.
        reporting_verbs,
        /// Nouns that make a yes/no form ask for an opinion ("do you have any thoughts on…").
        opinion_nouns,
        echo_wh_words,
        negations,
        boosters,
        dampeners,
        clause_continuations,
        open_last_words,
        completion_blocked_openers,
        /// Words after which a dismissive phrase is not one ("you shouldn't have to…").
        dismissive_unless_next,
        /// Address and politeness words that may precede a dismissive opener ("sir, please").
        dismissive_preludes,
        /// Feelings the agent may name ("overwhelmed", "let down").
        feeling_words,
        /// Words that end the reach of a feeling frame (a new clause).
        feeling_breaks,
        /// First words of a sentence about oneself ("I", "my", "we"): a story of one's own.
        own_story_heads,
    }
    phrases {
        lead_ins,
        indirect_questions,
        weak_question_tags,
        open_requests,
        /// Conventional greetings ("how are you doing"): courtesies, not questions to answer at
        /// length.
        greeting_questions,
        /// A speaker searching their own memory ("what's the word", "what was his name"):
        /// thinking aloud, not asking.
        word_searches,
        /// Questions that expect no answer ("why bother", "who knows") when they are the whole
        /// utterance.
        rhetorical_questions,
        question_tags,
        clarifying,
        non_understanding,
        unambiguous_non_understanding,
        weak_clarifying,
        acknowledgements,
        answers,
        empathy,
        short_only_empathy,
        /// Validations ("I understand", "I get that") that are empathy only as the opening of a
        /// reply to a turn that showed emotion; elsewhere they acknowledge.
        validations,
        /// After an apology: the apology is for a procedure ("due to quality purposes…").
        procedural_apologies,
        /// Frames that name the other's feeling with a `feeling_words` word after them.
        feeling_frames,
        /// Frames of a general subject ("that's", "it sounds") that name a feeling only with a
        /// feeling word right after them.
        near_feeling_frames,
        reflection_openings,
        weak_reflection_openings,
        courtesies,
        solutions,
        /// The agent saying what they will do or have done ("I'll transfer you", "let me check"):
        /// informing or acting, not saying back what the customer said.
        agent_actions,
        /// Phrases of having listened ("let me summarise", "I can tell", "I get the sense"):
        /// the "let me" or "I can" inside one is not the agent acting.
        listening_checks,
        /// Openings of advice or a suggestion ("try…", "maybe you could…").
        advice_openers,
        /// Openings of an appraisal or a courtesy ("that's a good idea", "you're welcome").
        appraisal_openers,
        /// Openings of a claim about people in general ("a lot of people…").
        generic_openers,
        dismissive,
        /// Dismissive only opening a clause ("calm down", "that's wrong").
        dismissive_openers,
        /// Dismissive only as a clause of its own ("whatever.").
        dismissive_retorts,
        /// Dismissive only opening a clause that answers an upset or asking customer ("as I
        /// said…").
        dismissive_when_unheard,
        repeat_markers,
        /// The customer saying they were cut off ("can I just finish"): an interruption by the
        /// agent's latest turn, heard in the words when there is no timing to show it.
        cut_off_complaints,
        frustration,
        escalation,
        side_issue_markers,
        problem_words,
    }
}

/// Numbers of the language behaviours.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LanguageThresholds {
    pub acknowledgement_max_words: usize,
    pub reflection_min_content_words: usize,
    pub reflection_min_overlap: f64,
    pub reflection_context_turns: usize,
    pub reflection_echo_max_words: usize,
    pub completion_max_words: usize,
    pub completion_min_context_words: usize,
    pub completion_max_gap_ms: i64,
    pub repeat_min_content_words: usize,
    pub repeat_min_overlap: f64,
    pub premature_min_customer_words: u64,
    pub emotion_sentiment: f64,
    pub strong_emotion_sentiment: f64,
    pub response_window_agent_turns: u32,
    pub side_issue_window_agent_turns: u32,
    pub closed_question_streak: u32,
    pub frustration_drop: f64,
    pub long_customer_turn_words: usize,
}

impl std::fmt::Debug for CompiledLanguage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CompiledLanguage")
            .field("lexicon_words", &self.lexicon.len())
            .finish_non_exhaustive()
    }
}

/// A fixed list of words. Looked up with words from transcripts but only ever filled from the
/// rubric, so a fast hash is safe (no flooding by chosen keys).
pub(crate) type WordSet = std::collections::HashSet<String, foldhash::fast::RandomState>;

/// Word valences.
pub(crate) type Lexicon = HashMap<String, f64, foldhash::fast::RandomState>;

fn set(words: &[String]) -> WordSet {
    words.iter().map(|w| w.to_lowercase()).collect()
}

/// A content word's stem, as a 64-bit hash (the same in every process: stems are compared,
/// never shown).
pub(crate) type Stem = u64;

/// Stems already computed on this thread: words repeat a great deal in conversation, and
/// the Snowball stemmer was a third of the engine's time. Bounded: emptied when full.
const STEM_CACHE_WORDS: usize = 8_192;

thread_local! {
    /// English Snowball, the one stemmer every profile uses (so the cache needs no other key).
    static STEMMER: rust_stemmers::Stemmer =
        rust_stemmers::Stemmer::create(rust_stemmers::Algorithm::English);
    static STEMS: RefCell<HashMap<Box<str>, Stem, foldhash::fast::RandomState>> =
        RefCell::new(HashMap::default());
}

/// The stem of `word` (a pure function, memoised per thread).
fn stem_of(word: &str) -> Stem {
    STEMS.with(|cache| {
        let mut cache = cache.borrow_mut();
        if let Some(stem) = cache.get(word) {
            return *stem;
        }
        let stem = STEMMER.with(|stemmer| {
            foldhash::fast::FixedState::with_seed(0x6865_6172_6b65_6e21)
                .hash_one(stemmer.stem(word).as_ref())
        });
        if cache.len() >= STEM_CACHE_WORDS {
            cache.clear();
        }
        cache.insert(word.into(), stem);
        stem
    })
}

/// VADER's lexicon as a plain map (read once; shared by every profile).
pub(crate) fn vader_lexicon() -> Lexicon {
    vader_sentiment::LEXICON
        .iter()
        .map(|(k, v)| (k.to_lowercase(), *v))
        .collect()
}

impl CompiledLanguage {
    /// Valence of a word: the rubric's override, else VADER's.
    pub fn valence(&self, word: &str) -> Option<f64> {
        self.overrides
            .get(word)
            .or_else(|| self.lexicon.get(word))
            .copied()
    }

    /// A fix the speaker prescribes (a `solutions` phrase: "you need to restart it"), unless
    /// it comes after a reflective opening and so says back the other's situation ("so your
    /// flight's been cancelled and you need to be in Madrid").
    /// Whether the speaker says what they will do or have done, or proposes a fix (the
    /// rubric's `agent_actions` and `solutions`), other than inside a phrase of having listened
    /// ("let me make sure I understand", "I can tell you're worried": `reflection_openings`,
    /// `listening_checks`).
    pub(crate) fn acting(&self, words: &Words) -> bool {
        let listening: Vec<PhraseMatch> = self
            .listening_checks
            .find_all(words)
            .chain(self.reflection_openings.find_all(words))
            .collect();
        self.agent_actions.find_all(words).any(|m| {
            !listening
                .iter()
                .any(|l| l.start <= m.start && m.end <= l.end)
        }) || self.prescribed_solution(words).is_some()
    }

    /// Whether a sentence speaks from the agent's own ground, not the other's: it opens with
    /// advice, an appraisal or courtesy, or a claim about people in general, or it is about
    /// oneself ("I…", "my…", "we…"); and nowhere in it is a phrase of having listened or of
    /// saying back ("I can tell…", "so you've…"). Such a sentence does not say back what the
    /// other said, however many of their words it repeats.
    pub(crate) fn own_ground(&self, a: &Analysis) -> bool {
        self.ground(a).is_some()
    }

    /// Which of the agent's own grounds a sentence speaks from (see [`Self::own_ground`]), if
    /// any: the first that applies, in the order advice, appraisal, people in general, oneself.
    pub(crate) fn ground(&self, a: &Analysis) -> Option<Ground> {
        let opens = |set: &PhraseSet| a.opening(set).is_some();
        // Anywhere in it, not only at its start: speech recognition's text is one sentence, so
        // "i'm sorry to hear that so you've been billed twice" must not be read by its opening.
        if self.listening_checks.find(&a.words).is_some()
            || self.reflection_openings.find(&a.words).is_some()
        {
            return None;
        }
        if opens(&self.advice_openers) {
            Some(Ground::Advice)
        } else if opens(&self.appraisal_openers) {
            Some(Ground::Appraisal)
        } else if opens(&self.generic_openers) {
            Some(Ground::General)
        } else if a.head().is_some_and(|w| self.own_story_heads.contains(w)) {
            Some(Ground::Oneself)
        } else {
            None
        }
    }

    pub(crate) fn prescribed_solution(&self, words: &Words) -> Option<PhraseMatch> {
        let said_back_from = self.reflection_openings.find(words).map(|m| m.end);
        self.solutions
            .find_all(words)
            .find(|m| said_back_from.is_none_or(|end| m.start < end))
    }
}

/// The agent's own ground a sentence may speak from instead of saying back the other's
/// (`CompiledLanguage::ground`). Its discriminant indexes `RuleFlags::grounds`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ground {
    /// Advice or a suggestion ("try…", "you should…").
    Advice,
    /// An appraisal or courtesy ("that's great", "you're welcome").
    Appraisal,
    /// People in general ("a lot of people…", "sometimes…").
    General,
    /// Oneself ("I…", "my…", "we…").
    Oneself,
}

impl Ground {
    /// Every ground, in discriminant order (that of `RuleFlags::grounds`).
    pub(crate) const ALL: [Ground; 4] = [
        Ground::Advice,
        Ground::Appraisal,
        Ground::General,
        Ground::Oneself,
    ];

    /// Its name in the learned layer's features.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Ground::Advice => "advice",
            Ground::Appraisal => "appraisal",
            Ground::General => "general",
            Ground::Oneself => "oneself",
        }
    }
}

/// The grammatical shape of a question.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum QuestionForm {
    /// Opens with a wh-word or "how" ("what happened", "how does it behave").
    Wh,
    /// Auxiliary before the subject ("did you restart it", "is it plugged in").
    Inversion,
    /// A request for information in the imperative ("tell me about", "walk me through").
    Request,
    /// A statement with a tag ("it's the blue one, isn't it").
    Tag,
    /// A statement marked as a question only by its question mark.
    Declarative,
    /// An indirect question ("I was wondering if…").
    Indirect,
}

/// How an utterance ends.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) enum Ending {
    /// Nothing says the sentence stops short (or there are no words).
    #[default]
    Finished,
    /// It may go on: a trailing comma, a trailing filler ("and then it, uh"), text that is
    /// punctuated but has no final stop, or, without a final stop, a last word that often
    /// leaves the clause open ("it was on", "we tried to get it").
    Open,
    /// It cannot end here: a cut word ("th-"), a trailing dash, or, without a final stop, a last
    /// word that needs more ("when the", "and I").
    MidClause,
}

impl Ending {
    /// Whether the speaker stopped before the sentence was done.
    pub(crate) fn unfinished(self) -> bool {
        self != Ending::Finished
    }
}

/// What the language detectors read of one utterance.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Analysis {
    /// Words without fillers and stutters.
    pub words: Words,
    /// Leading discourse markers ("so", "and", "well", "okay") before the substance.
    pub lead: usize,
    /// Stems of the content words, sorted, without repeats.
    pub content: Vec<Stem>,
    /// The question form, if it is one.
    pub question: Option<QuestionForm>,
    /// Whether the text ends with a question mark (evidence, never required).
    pub question_mark: bool,
    /// How it ends: finished, or possibly or certainly unfinished.
    pub ending: Ending,
    /// Sentiment in [-1, 1].
    pub sentiment: f64,
}

impl Analysis {
    /// The first substantive word (after discourse markers).
    pub(crate) fn head(&self) -> Option<&str> {
        self.words.get(self.lead)
    }

    /// The word after the head.
    pub(crate) fn second(&self) -> Option<&str> {
        self.words.get(self.lead + 1)
    }

    /// The first phrase of `set` if it opens the utterance (at or before the first
    /// substantive word: "so you've…", "okay, it sounds like…").
    pub(crate) fn opening(&self, set: &PhraseSet) -> Option<PhraseMatch> {
        set.find(&self.words).filter(|m| m.start <= self.lead)
    }

    /// Whether it asks outright for an answer (a wh-question, a request, an inversion), as a
    /// restatement never does; a statement with a question mark or a tag may still say back.
    pub(crate) fn asks_outright(&self) -> bool {
        matches!(
            self.question,
            Some(QuestionForm::Wh | QuestionForm::Request | QuestionForm::Inversion)
        )
    }

    /// Share of this utterance's content stems that occur in `other` (sorted stems).
    pub(crate) fn overlap_with(&self, other: &[Stem]) -> (usize, f64) {
        if self.content.is_empty() {
            return (0, 0.0);
        }
        let shared = self
            .content
            .iter()
            .filter(|c| other.binary_search(c).is_ok())
            .count();
        (shared, shared as f64 / self.content.len() as f64)
    }
}

/// Analyses an utterance.
pub(crate) fn analyse(
    text: &str,
    tokens: &[Token],
    fillers: &[String],
    lang: &CompiledLanguage,
) -> Analysis {
    let mut words = Words::new(tokens, fillers);
    lang.phrases.scan(&mut words);
    let lead = lead_from(&words, 0, lang);
    let mut content: Vec<Stem> = words
        .iter()
        .filter(|w| {
            w.chars().nth(1).is_some()
                && !lang.stop_words.contains(*w)
                && !lang.discourse_markers.contains(*w)
        })
        .map(stem_of)
        .collect();
    content.sort_unstable();
    content.dedup();
    let trimmed = text.trim_end();
    let question_mark = trimmed.ends_with('?');
    let last_char = trimmed.chars().last();
    let cut_word = tokens
        .last()
        .is_some_and(|t| text[..].chars().nth(t.end_char as usize) == Some('-'));
    let last_word = words.get(words.len().wrapping_sub(1));
    let ending = if words.is_empty() {
        Ending::Finished // a bare "uh" starts nothing
    } else if cut_word || matches!(last_char, Some('-' | '\u{2014}')) {
        Ending::MidClause
    } else if matches!(last_char, Some('.' | '?' | '!')) {
        Ending::Finished
    } else if last_word.is_some_and(|w| lang.clause_continuations.contains(w)) {
        Ending::MidClause
    } else if last_char == Some(',')
        || last_word.is_some_and(|w| lang.open_last_words.contains(w))
        || tokens.last().is_some_and(|t| fillers.contains(&t.word))
        // Punctuated text (a recogniser's or a writer's) marks a finished sentence with a stop.
        || (last_char.is_some_and(char::is_alphanumeric)
            && trimmed.contains(['.', ',', '?', '!', ';', ':']))
    {
        Ending::Open
    } else {
        Ending::Finished
    };
    let mut analysis = Analysis {
        words,
        lead,
        content,
        question: None,
        question_mark,
        ending,
        sentiment: 0.0,
    };
    analysis.question = question_form(&analysis, analysis.lead, lang);
    if analysis.question == Some(QuestionForm::Declarative) {
        // "So, if you did decide, how would you go about it?", "Sandra, can you give me an
        // example?": the question's form is in a later clause.
        if let Some((lead, form)) = later_clause_question(&analysis, text, tokens, lang) {
            analysis.lead = lead;
            analysis.question = form;
        }
    }
    if analysis.question.is_none() && reverse_polarity_tag(&analysis, text, tokens, lang) {
        analysis.question = Some(QuestionForm::Tag);
    }
    analysis.sentiment = sentiment(&analysis.words, lang);
    analysis
}

/// A positive tag set off after a negative clause ("they're not, are they."; "he wasn't there,
/// was he") asks for confirmation without a question mark. The punctuation before it tells the
/// tag from a verb and its object ("I didn't do it"); "neither do I", "nor can we" agree.
fn reverse_polarity_tag(
    a: &Analysis,
    text: &str,
    tokens: &[Token],
    lang: &CompiledLanguage,
) -> bool {
    let n = a.words.len();
    if n < a.lead + 4 {
        return false;
    }
    let (before, aux, pronoun) = (
        a.words.get(n - 3).unwrap_or(""),
        a.words.get(n - 2).unwrap_or(""),
        a.words.get(n - 1).unwrap_or(""),
    );
    // The word checks first: the punctuation check reads the text.
    lang.auxiliaries.contains(aux)
        && !lang.negations.contains(aux)
        && lang.subjects.contains(pronoun)
        && !lang.determiners.contains(pronoun)
        && !matches!(before, "neither" | "nor" | "so")
        && (a.lead..n - 2).any(|k| a.words.get(k).is_some_and(|w| lang.negations.contains(w)))
        && set_off_before(a, tokens, &marks_in(text, &[',', ';', '\u{2014}']), n - 2)
}

/// Positions (in Unicode scalar values) of the characters of `marks` in `text`.
pub(crate) fn marks_in(text: &str, marks: &[char]) -> Vec<u32> {
    text.chars()
        .enumerate()
        .filter(|(_, c)| marks.contains(c))
        .map(|(i, _)| i as u32)
        .collect()
}

/// Whether one of the `marks` positions stands between word `i - 1` and word `i` of `a`.
pub(crate) fn set_off_before(a: &Analysis, tokens: &[Token], marks: &[u32], i: usize) -> bool {
    let token = |i: usize| a.words.token_of(i).and_then(|t| tokens.get(t));
    match (i.checked_sub(1).and_then(token), token(i)) {
        (Some(before), Some(this)) => marks
            .iter()
            .any(|&m| m >= before.end_char && m < this.start_char),
        _ => false,
    }
}

/// Whether a word speaks of the person addressed: "you", "your", "you're", "yourself"…
pub(crate) fn is_you(w: &str) -> bool {
    matches!(
        w,
        "you" | "your" | "you're" | "you've" | "you'd" | "you'll" | "yours" | "yourself"
    )
}

/// The first substantive word at or after `start`: discourse markers and courtesies are skipped
/// ("no problem at all, can you walk me through…", "thank you, what happened then"), keeping
/// at least three words; so are "you know" and "I mean".
fn lead_from(words: &Words, start: usize, lang: &CompiledLanguage) -> usize {
    let mut lead = start;
    loop {
        if let Some(m) = lang
            .lead_ins
            .at(words, lead)
            .filter(|m| m.end + 2 < words.len())
        {
            lead = m.end;
        } else if lead + 1 < words.len()
            && words
                .get(lead)
                .is_some_and(|w| lang.discourse_markers.contains(w))
        {
            lead += 1;
        } else {
            break;
        }
    }
    while lead + 2 < words.len()
        && matches!(
            (words.get(lead), words.get(lead + 1)),
            (Some("you"), Some("know")) | (Some("i"), Some("mean"))
        )
    {
        lead += 2;
    }
    lead
}

/// For a question known only by its question mark: the first clause after punctuation
/// (comma, stop, colon, dash) that has a question's form, with its lead; `None` for the form
/// when that clause is quoted after a reporting verb (no question asked at all).
fn later_clause_question(
    a: &Analysis,
    text: &str,
    tokens: &[Token],
    lang: &CompiledLanguage,
) -> Option<(usize, Option<QuestionForm>)> {
    let marks = marks_in(text, &[',', '.', '?', '!', ';', ':', '\u{2014}']);
    for i in a.lead + 1..a.words.len() {
        if !set_off_before(a, tokens, &marks, i) {
            continue;
        }
        let lead = lead_from(&a.words, i, lang);
        let quoted = a
            .words
            .get(i - 1)
            .is_some_and(|w| lang.reporting_verbs.contains(w));
        match question_form(a, lead, lang) {
            Some(QuestionForm::Declarative) | None => {}
            // "And she said, why are you…?": a question reported, not asked.
            Some(_) if quoted => return Some((a.lead, None)),
            Some(form) => return Some((lead, Some(form))),
        }
    }
    None
}

/// The question form of `a`'s words read from word `lead` (the utterance's lead, or a later
/// clause's).
fn question_form(a: &Analysis, lead: usize, lang: &CompiledLanguage) -> Option<QuestionForm> {
    let head = a.words.get(lead)?;
    let second = a.words.get(lead + 1);
    let third = a.words.get(lead + 2);
    let mark = a.question_mark;
    if lang.open_requests.at(&a.words, lead).is_some() {
        return Some(QuestionForm::Request);
    }
    if lang
        .indirect_questions
        .find(&a.words)
        .is_some_and(|m| m.start <= lead + 1)
    {
        return Some(QuestionForm::Indirect);
    }
    if lang.wh_words.contains(head) {
        let follower = |w: &str| {
            lang.auxiliaries.contains(w)
                || lang.open_wh_followers.contains(w)
                || lang.closed_wh_followers.contains(w)
        };
        let exclamative = second.is_some_and(|s| lang.exclamatives.contains(s)) && !mark;
        let statement = second.is_some_and(|s| lang.statement_subjects.contains(s)) && !mark;
        // "what happens is…", "how easy it is…": a clause, not a question.
        let second_aux = second.is_some_and(|s| lang.auxiliaries.contains(s));
        // ("what else is…" still asks.)
        let clause = !mark
            && !second_aux
            && !second.is_some_and(|s| matches!(s, "else" | "kind" | "sort" | "type" | "about"))
            && (third.is_some_and(|t| matches!(t, "is" | "was"))
                || (head.starts_with("how")
                    && third.is_some_and(|t| lang.statement_subjects.contains(t))));
        // "what's even worse is…", "what was so fun though was…": a pseudo-cleft states.
        // Not "what do you think is causing it" (an inverted question) nor "what's the reason
        // the payment is late" (the copula ends a clause about a noun).
        let inverted = second_aux && third.is_some_and(|t| lang.subjects.contains(t));
        let pseudo_cleft = !mark
            && !inverted
            && matches!(head, "what" | "what's")
            && !second.is_some_and(|s| matches!(s, "else" | "kind" | "sort" | "type"))
            && (lead + 3..a.words.len().saturating_sub(1)).any(|j| {
                let before = a.words.get(j - 1).unwrap_or("");
                matches!(a.words.get(j), Some("is" | "was"))
                    && !lang.subjects.contains(before)
                    && !lang.statement_subjects.contains(before)
                    && !a
                        .words
                        .get(j - 2)
                        .is_some_and(|w| lang.determiners.contains(w))
                    && !(lead..j).any(|k| a.words.get(k).is_some_and(is_you))
            });
        // "when I was…", "which is…": joining clauses; "which router do you have" still asks.
        let noun_then_aux = third.is_some_and(|t| lang.auxiliaries.contains(t));
        // "Which is the same": a relative clause continuing the last turn, not a question.
        let relative = head == "which"
            && second.is_some_and(|s| {
                matches!(s, "is" | "was" | "isn't" | "wasn't" | "means" | "meant")
            })
            && !mark;
        let joins = lang.subordinating_wh_words.contains(head)
            && !mark
            && !second.is_some_and(follower)
            && !noun_then_aux;
        if !exclamative
            && !statement
            && !clause
            && !pseudo_cleft
            && !joins
            && !relative
            && (second.is_some() || mark || a.words.len() == lead + 1)
        {
            return Some(QuestionForm::Wh);
        }
    }
    if lang.auxiliaries.contains(head) && second.is_some_and(|s| lang.subjects.contains(s)) {
        // "have a good day", "do the dishes": imperatives, unless asked; "isn't that awful":
        // an exclamation, unless asked.
        let imperative = matches!(head, "have" | "do")
            && second.is_some_and(|s| matches!(s, "a" | "an" | "the" | "some"))
            && !mark;
        let exclamation =
            matches!(head, "isn't" | "wasn't" | "aren't") && second == Some("that") && !mark;
        if !imperative && !exclamation {
            return Some(QuestionForm::Inversion);
        }
    }
    if a.words.len() > lead + 2 {
        let tagged = |set: &PhraseSet| set.at_end(&a.words).is_some_and(|m| m.start > lead);
        if tagged(&lang.question_tags) || (mark && tagged(&lang.weak_question_tags)) {
            return Some(QuestionForm::Tag);
        }
    }
    if mark {
        return Some(QuestionForm::Declarative);
    }
    None
}

/// VADER's increment for boosters and dampeners, and its negation factor.
const BOOST: f64 = 0.293;
const NEGATION: f64 = -0.74;
/// VADER's normalisation constant.
const ALPHA: f64 = 15.0;

/// Compound sentiment in [-1, 1], after VADER: word valences, boosted or dampened by the three
/// words before, flipped by a negation among them, "but" shifting weight to what follows.
pub(crate) fn sentiment(words: &Words, lang: &CompiledLanguage) -> f64 {
    let but = words.iter().position(|w| w == "but");
    let mut sum = 0.0;
    // The three words before the current one, nearest first.
    let mut before: [Option<&str>; 3] = [None; 3];
    for (i, w) in words.iter().enumerate() {
        let valence = lang.valence(w).filter(|base| *base != 0.0);
        if let Some(base) = valence {
            let mut v = base;
            for (distance, prev) in before.iter().enumerate() {
                let Some(prev) = prev else { break };
                let scale = [1.0, 0.95, 0.9][distance];
                if lang.boosters.contains(*prev) {
                    v += v.signum() * BOOST * scale;
                } else if lang.dampeners.contains(*prev) {
                    v -= v.signum() * BOOST * scale;
                }
            }
            if before.iter().flatten().any(|p| lang.negations.contains(*p)) {
                v *= NEGATION;
            }
            if let Some(b) = but {
                v *= if i < b { 0.5 } else { 1.5 };
            }
            sum += v;
        }
        before = [Some(w), before[0], before[1]];
    }
    // "not bad at all": VADER's "at all" after a negated word keeps the flip.
    sum / (sum * sum + ALPHA).sqrt()
}

#[cfg(test)]
mod tests {
    use crate::engine::detectors::testing::voice;
    use crate::engine::text::tokenize;

    fn acting(text: &str) -> bool {
        let p = voice();
        let tokens = tokenize(text);
        let a = super::analyse(text, &tokens, &p.compiled.fillers, p.lang());
        p.lang().acting(&a.words)
    }

    /// "Let me" and "I can" say what the agent will do, except inside a phrase of having
    /// listened: "let me summarise what you've told me" says back, it does not act.
    #[test]
    fn saying_what_one_will_do_is_acting_but_checking_what_one_heard_is_not() {
        for text in [
            "let me check that for you",
            "i can send a new card today",
            "you should restart the router",
            "let me summarise, and then i'll send you the form",
        ] {
            assert!(acting(text), "{text}");
        }
        for text in [
            "so let me summarise what you've told me, the bill doubled and nobody called back",
            "let me make sure i understand, the parcel never arrived",
            "i can tell you're worried about the deadline",
            "i can hear how tiring this has been",
            "so you've been charged twice this month",
        ] {
            assert!(!acting(text), "{text}");
        }
    }
}

//! The learned listening layer: decides open questions, closed questions and reflections from
//! sentence embeddings, the context (the other party's latest turn) and the rules' own findings,
//! with small linear heads (`model.rs`, built by `models/build.py`). The rules stay the source
//! of every other behaviour and are features here; each head's decision replaces the rules' for
//! its behaviour, with the head's probability as the confidence and the sentence that carries it
//! as the evidence span.

pub(crate) mod features;
pub(crate) mod model;
pub(crate) mod sentences;

use super::detectors::{Behaviour, Detection, questions};
use super::event::Role;
use super::rubric::Profile;
use super::{language, text};
use features::{Features, RuleFlags};
use model::Model;

/// Words of the other party's turn kept for the overlap feature.
const MAX_OTHER_WORDS: usize = 64;

/// The behaviours the heads decide, with their head names.
pub(crate) const DECIDED: [(Behaviour, &str); 3] = [
    (Behaviour::OpenQuestion, "open_question"),
    (Behaviour::ClosedQuestion, "closed_question"),
    (Behaviour::Reflection, "reflection"),
];

/// What the layer remembers of a conversation: the latest turn of each party, as context for
/// the next turn of the other.
#[derive(Debug, Clone, Default)]
pub(crate) struct Memory {
    latest: Vec<Turn>,
}

#[derive(Debug, Clone)]
struct Turn {
    utterance_id: String,
    role: Role,
    participant: Option<String>,
    embedding: Box<[f32]>,
    words: Vec<u64>,
    /// Whether it asked something (a question form or a question mark).
    asked: bool,
}

impl Memory {
    fn other_than(&self, role: Role, participant: Option<&str>) -> Option<&Turn> {
        self.latest.iter().rev().find(|t| match (role, t.role) {
            (Role::Unknown, Role::Unknown) => t.participant.as_deref() != participant,
            (a, b) => a != b,
        })
    }

    /// Whether a turn of this party is remembered.
    fn has(&self, role: Role, participant: Option<&str>) -> bool {
        self.latest
            .iter()
            .any(|t| t.role == role && t.participant.as_deref() == participant)
    }

    /// Remembers a turn (at most the latest two parties are kept); `text` is its text as the
    /// layer reads it (redactions blanked).
    fn remember(
        &mut self,
        model: &Model,
        input: &Input<'_>,
        text: &str,
        embedding: Option<Box<[f32]>>,
    ) {
        let (role, participant) = (input.role, input.participant);
        let asked = input.analysis.question.is_some() || input.analysis.question_mark;
        // The turn's embedding, when the features already computed it (the same function of the
        // same text, so the same bits).
        let embedding = embedding.unwrap_or_else(|| {
            let mut e = vec![0.0; model.dim()].into_boxed_slice();
            model.embed(text, &mut e);
            e
        });
        let mut words = features::overlap_words(text, MAX_OTHER_WORDS);
        words.shrink_to_fit();
        self.latest
            .retain(|t| !(t.role == role && t.participant.as_deref() == participant));
        self.latest.push(Turn {
            utterance_id: input.utterance_id.to_string(),
            role,
            participant: participant.map(str::to_string),
            embedding,
            words,
            asked,
        });
        if self.latest.len() > 2 {
            self.latest.remove(0);
        }
    }
}

/// One utterance, as the layer sees it.
#[derive(Debug)]
pub(crate) struct Input<'a> {
    /// Its text.
    pub text: &'a str,
    /// Who spoke.
    pub role: Role,
    /// Which participant.
    pub participant: Option<&'a str>,
    /// A backchannel ("mm-hmm"): never a question or a reflection.
    pub backchannel: bool,
    /// Its id.
    pub utterance_id: &'a str,
    /// Its analysis as the rules read it.
    pub analysis: &'a language::Analysis,
}

/// Longest turn a courtesy phrase keeps from being a reflection candidate: chosen to separate
/// the two test cases (a mirrored courtesy of 9 words; a courtesy sentence before a 13-word
/// restatement), not tuned on data.
const COURTESY_TURN_MAX_WORDS: usize = 10;

/// Revises the rules' detections of the decided behaviours for one utterance of a speaker who
/// may be the agent, and remembers the turn as context. Returns the features when `record`.
pub(crate) fn revise(
    profile: &Profile,
    memory: &mut Memory,
    input: &Input<'_>,
    found: &mut Vec<Detection>,
    record: bool,
) -> Option<Features> {
    let model = &*profile.model.0;
    let may_be_agent = matches!(input.role, Role::Agent | Role::Unknown);
    let lang = profile.lang();
    let mut out = None;
    let mut embedding = None;
    // Redaction markers are opaque to the layer as to the rules (blanked in place, so spans
    // still point into the text).
    let text = &*text::blank_redactions(input.text);
    if may_be_agent && !input.backchannel && text.chars().any(char::is_alphanumeric) {
        let has = |b: Behaviour| found.iter().any(|d| d.behaviour == b);
        // Informing, acting or proposing a fix (the rubric's `agent_actions` and `solutions`).
        let acting = lang.acting(&input.analysis.words);
        let other = memory.other_than(input.role, input.participant);
        let mut rules = RuleFlags {
            acting,
            answering: other.is_some_and(|t| t.asked),
            open: has(Behaviour::OpenQuestion),
            closed: has(Behaviour::ClosedQuestion),
            reflection: has(Behaviour::Reflection),
            clarifying: has(Behaviour::ClarifyingQuestion),
            acknowledgement: has(Behaviour::Acknowledgement) || has(Behaviour::Backchannel),
            empathy: has(Behaviour::Empathy),
            ..RuleFlags::default()
        };
        // The question rules read each sentence of a multi-sentence turn on its own; so, in an
        // agent's turn, does `says_back`: a sentence that opens reflectively with the other's
        // words ("I'm sorry. So you've been billed twice for one order. What happened when you
        // called?"), which the reflection rule, reading the whole turn, misses.
        let parts = sentences::split(text);
        let mut said_back = None;
        // Whether a sentence of an agent's turn may say back what the other said: one that
        // neither asks outright nor speaks from the agent's own ground (advice, an appraisal, a
        // story of one's own, people in general). Only an agent's turn is asked.
        let may_say_back = |a: &language::Analysis, ground: Option<language::Ground>| {
            input.role == Role::Agent && !a.asks_outright() && ground.is_none()
        };
        let count_ground = |rules: &mut RuleFlags, i: usize, a: &language::Analysis| {
            let ground = lang.ground(a);
            if let Some(g) = ground {
                let n = &mut rules.grounds[g as usize];
                *n = n.saturating_add(1);
                if i == 0 {
                    rules.first_ground = Some(g);
                }
            }
            ground
        };
        let mut saying_back = false;
        if parts.len() > 1 {
            for (i, part) in parts.iter().enumerate() {
                let raw = part.text(text);
                let tokens = text::tokenize(raw);
                let a = language::analyse(raw, &tokens, &profile.compiled.fillers, lang);
                let ground = count_ground(&mut rules, i, &a);
                saying_back = saying_back || may_say_back(&a, ground);
                if said_back.is_none()
                    && input.role == Role::Agent
                    && let Some(other) = other
                    && says_back(&a, raw, i == 0, &other.words, profile)
                {
                    said_back = Some(i);
                }
                match questions::classify(&a, lang) {
                    Some((Behaviour::OpenQuestion, _)) => rules.sentence_open = true,
                    Some((Behaviour::ClosedQuestion, _)) => rules.sentence_closed = true,
                    _ => continue,
                }
                rules.question_sentences += 1;
            }
        } else {
            let ground = count_ground(&mut rules, 0, input.analysis);
            saying_back = may_say_back(input.analysis, ground);
            rules.sentence_open = rules.open;
            rules.sentence_closed = rules.closed;
            rules.question_sentences = u32::from(rules.open || rules.closed);
        }
        let mut f = features::compute(
            model,
            text,
            parts,
            other.map(|t| &*t.embedding),
            other.map_or(&[][..], |t| &t.words),
            rules,
            input.role == Role::Unknown,
        );
        // Which utterances the heads judge. The rubric's question rules stay in charge of a
        // one-sentence question they classify (they encode the rubric's definition: "how long"
        // asks for a fact), and of a request to repeat ("sorry, what?" is clarifying); the heads
        // judge questions the rules cannot place: multi-sentence turns, a question mark the
        // rules read no form in.
        let single = f.sentences.len() <= 1;
        let ruled_question = rules.open || rules.closed;
        let known_role = input.role != Role::Unknown;
        // The question rules' exclusions (greetings, memory searches, rhetoric, self-talk,
        // quotes) bind the heads too.
        f.question_candidate = if !questions::addressed_to_the_other(input.analysis, lang) {
            false
        } else if known_role {
            (ruled_question || rules.question_sentences > 0 || f.question_mark)
                && !(single && (rules.clarifying || ruled_question))
        } else {
            // Heads learned on agents' turns only revise what the rules found between peers.
            ruled_question && !single
        };
        // A reflection says back what the other party said: there must be something to say
        // back, and the turn must carry a content word of its own ("So it's [PII] and [PII],
        // got it." has none the layer can see). The head judges an agent's turn (whether it
        // shares their words or speaks of "you" are features, not gates: "Kind of a reminder
        // it's time to go to bed" says back with neither) except where the rubric says it is
        // something else. A reflection lets them finish and takes them seriously: not while
        // cutting in, finishing their sentence or brushing them off; informing, acting or
        // proposing a fix (`acting`) is not saying back either.
        let brushing_off = has(Behaviour::Interruption)
            || has(Behaviour::CutOff)
            || has(Behaviour::SentenceCompletion)
            || has(Behaviour::DismissiveLanguage);
        // A courtesy said back ("nice talking with you too") is politeness, not a paraphrase
        // (the reflection rule's exclusion, which the learned layer must not overturn).
        // Only a short turn: in a longer one the courtesy is a sentence of its own beside the
        // saying back ("Thanks for waiting. So the connection drops most evenings …").
        let courtesy = input.analysis.words.len() <= COURTESY_TURN_MAX_WORDS
            && lang.courtesies.find(&input.analysis.words).is_some();
        // An echo of the other's words (short, and nothing but theirs) is a listening cue, not a
        // paraphrase: the rubric's rule, which the learned layer must not overturn.
        let echo = input.analysis.words.len()
            <= profile.language.thresholds.reflection_echo_max_words
            && f.overlap() >= 1.0;
        // A turn that is one expression of empathy ("that must be really difficult when you
        // depend on it for work") is scored as empathy, the rubric's own behaviour; a reflection
        // beside it is a sentence of its own ("I'm sorry. So you've been billed twice…").
        let only_empathy = rules.empathy && single;
        // A question of one's own is not saying back. In speech recognition's text, with no
        // question mark to tell, a one-sentence turn that opens as a question does ("what model
        // is the printer") is no candidate unless the rules read a restatement in it. Written
        // text has its punctuation: there "So what I'm hearing is…" and "When you related that
        // to your smoking, …" open with the same words and say back.
        let own_question = !f.punctuated && single && f.opens_as_question;
        f.reflection_candidate = other.is_some()
            && !brushing_off
            && !echo
            && !courtesy
            && (rules.reflection
                || said_back.is_some()
                || (input.role == Role::Agent
                    && !acting
                    && !only_empathy
                    && !own_question
                    && saying_back
                    && !input.analysis.content.is_empty()));
        // Every agent turn is the empathy head's to judge, when the model has one.
        f.empathy_candidate = input.role == Role::Agent;
        decide_empathy(model, &f, found);
        decide(
            model,
            &f,
            other.map(|t| t.utterance_id.as_str()),
            input.role == Role::Agent,
            said_back.filter(|_| f.reflection_candidate),
            !single && rules.sentence_open && !rules.sentence_closed,
            found,
        );
        embedding = Some(f.dense[..model.dim()].into());
        if record {
            out = Some(f);
        }
    }
    // A listening cue ("mm-hmm", "yeah") says nothing to say back: the party's last turn with
    // substance stays the context for the other's next turn.
    let cue = input.backchannel
        || input.analysis.words.is_empty()
        || lang.acknowledgements.covers(&input.analysis.words);
    if !(cue && memory.has(input.role, input.participant)) {
        memory.remember(model, input, text, embedding);
    }
    out
}

/// Applies the heads to the candidates `revise` chose. The question heads decide open, closed
/// (the likelier when both pass) or neither. The reflection head adds reflections for an agent
/// and never removes one the rules found there (a reflective opening with the customer's words
/// is the rules' strength: 80 % precise on AnnoMI's development half); for a speaker of unknown
/// role (peers, meetings) it only confirms or removes a reflection the rules found, since a
/// restatement between peers is rarer than between agent and customer. Text without
/// punctuation uses the model's heads for speech recognition's text when it has them.
fn decide(
    model: &Model,
    f: &Features,
    other: Option<&str>,
    agent: bool,
    said_back: Option<usize>,
    sentences_open: bool,
    found: &mut Vec<Detection>,
) {
    let mut verdicts: Vec<(Behaviour, f32, f32)> = Vec::new(); // behaviour, margin, probability
    let question = f.question_candidate;
    // The rules' question detections the heads set aside.
    let mut ruled_questions: Vec<Detection> = Vec::new();
    for (behaviour, name) in DECIDED {
        let Some(head) = model.head_for(name, !f.punctuated) else {
            continue; // no head: the rules decide
        };
        let rule = found.iter().position(|d| d.behaviour == behaviour);
        let eligible = match behaviour {
            Behaviour::Reflection => f.reflection_candidate,
            _ => question,
        };
        if !eligible {
            continue;
        }
        let z = head.logit(&f.dense, &f.sparse);
        if z >= head.threshold {
            verdicts.push((behaviour, z - head.threshold, model::sigmoid(z)));
        } else if agent && behaviour == Behaviour::Reflection && rule.is_some() {
            continue; // the rules' reflection stands
        }
        if let Some(i) = rule {
            let d = found.remove(i);
            if behaviour != Behaviour::Reflection {
                ruled_questions.push(d);
            }
        }
    }
    // For an agent the question heads may not take away a question the rules found, nor make
    // closed one the rules read as open (an open form, "tell me about…", "how is this affecting
    // you…", is the rules' strength); they may make open one the rules read as closed (the
    // rules' "closed" leans on the question's first words only). In a multi-sentence turn
    // whose every question sentence the rules read as open (`sentences_open`: "okay so the
    // other driver is blaming you so talk me through how it happened"), the head's "closed"
    // stays a question and becomes open.
    if agent && sentences_open && ruled_questions.is_empty() {
        if verdicts.iter().any(|v| v.0 == Behaviour::OpenQuestion) {
            verdicts.retain(|v| v.0 != Behaviour::ClosedQuestion);
        } else if let Some(v) = verdicts
            .iter_mut()
            .find(|v| v.0 == Behaviour::ClosedQuestion)
        {
            v.0 = Behaviour::OpenQuestion;
        }
    }
    if agent {
        let asked = verdicts.iter().any(|v| v.0 != Behaviour::Reflection);
        let ruled_open = ruled_questions
            .iter()
            .any(|d| d.behaviour == Behaviour::OpenQuestion);
        let headed_closed = verdicts.iter().any(|v| v.0 == Behaviour::ClosedQuestion);
        if !asked || (ruled_open && headed_closed) {
            verdicts.retain(|v| v.0 == Behaviour::Reflection);
            found.append(&mut ruled_questions);
        }
    }
    let open = verdicts.iter().position(|v| v.0 == Behaviour::OpenQuestion);
    let closed = verdicts
        .iter()
        .position(|v| v.0 == Behaviour::ClosedQuestion);
    if let (Some(o), Some(c)) = (open, closed) {
        verdicts.remove(if verdicts[o].1 >= verdicts[c].1 { c } else { o });
    }
    // A sentence of an agent's turn that opens reflectively with the other's words stands as
    // the rules' reflection would (`says_back`); its span is that sentence (below).
    if said_back.is_some()
        && !verdicts.iter().any(|v| v.0 == Behaviour::Reflection)
        && !found.iter().any(|d| d.behaviour == Behaviour::Reflection)
    {
        verdicts.insert(0, (Behaviour::Reflection, 0.0, SAID_BACK_CONFIDENCE));
    }
    for (behaviour, _, p) in verdicts {
        let sentence = match behaviour {
            Behaviour::Reflection => said_back
                .or(f.closest_to_other)
                .or(f.sentences.len().checked_sub(1)),
            _ => f.last_question.or(f.sentences.len().checked_sub(1)),
        };
        found.push(Detection {
            behaviour,
            confidence: p,
            span: sentence.map(|i| f.sentences[i].chars),
            related_utterance_ids: match (behaviour, other) {
                (Behaviour::Reflection, Some(id)) => vec![id.to_string()],
                _ => Vec::new(),
            },
            duration_ms: 0,
        });
    }
}

/// Applies an empathy head, when the model has one (the shipped model has none: a site's model
/// from `hearken train` may): above its threshold, the turn shows empathy (the rules' detection,
/// with its phrase as evidence, if they found one; else the head's, with the turn's first
/// sentence as evidence); below it, a detection of the rules is taken away. The rules'
/// detection is one of the head's features, so a head keeps what the site's labels agree with.
fn decide_empathy(model: &Model, f: &Features, found: &mut Vec<Detection>) {
    if !f.empathy_candidate {
        return;
    }
    let Some(head) = model.head_for("empathy", !f.punctuated) else {
        return;
    };
    let z = head.logit(&f.dense, &f.sparse);
    let rule = found.iter().position(|d| d.behaviour == Behaviour::Empathy);
    match (z >= head.threshold, rule) {
        (true, Some(i)) => found[i].confidence = model::sigmoid(z),
        (true, None) => found.push(Detection {
            behaviour: Behaviour::Empathy,
            confidence: model::sigmoid(z),
            span: f.sentences.first().map(|s| s.chars),
            related_utterance_ids: Vec::new(),
            duration_ms: 0,
        }),
        (false, Some(i)) => {
            found.remove(i);
        }
        (false, None) => {}
    }
}

/// Confidence of a reflection found by `says_back` (the reflection rule's own for a reflective
/// opening with the other's words).
const SAID_BACK_CONFIDENCE: f32 = 0.8;

/// Whether one sentence of a multi-sentence turn says back the other's latest turn: it opens
/// reflectively (rubric `reflection_openings`: "so you've", "it sounds like") and does not ask
/// outright, as the reflection rule requires of a turn. A strong opening ("it sounds like",
/// not "so you…") that starts the turn is the rule's own evidence ("It sounds like you're
/// worried about your skillset. Is there any way you can improve?"); elsewhere in a turn an
/// opening is weaker evidence, so the sentence must carry at least
/// `reflection_min_content_words` of the other's longer words.
fn says_back(
    a: &language::Analysis,
    raw: &str,
    first: bool,
    other_words: &[u64],
    profile: &Profile,
) -> bool {
    if a.asks_outright() {
        return false;
    }
    let Some(opening) = a.opening(&profile.lang().reflection_openings) else {
        return false;
    };
    if first && a.words.get(opening.start) != Some("so") {
        return true;
    }
    let shared = features::overlap_words(raw, MAX_OTHER_WORDS)
        .iter()
        .filter(|w| other_words.binary_search(w).is_ok())
        .count();
    shared >= profile.language.thresholds.reflection_min_content_words
}

#[cfg(test)]
mod tests {
    use super::model::{Head, ListeningModel};
    use crate::engine::{
        Behaviour, Conversation, Emitted, Event, InputLimits, Role, Rubric, Start, Utterance,
    };

    /// The embedded model with an empathy head that always says `yes` (or never).
    fn with_empathy_head(yes: bool) -> Rubric {
        with_empathy_head_of(|_, dense| (if yes { 100.0 } else { -100.0 }, dense))
    }

    /// The embedded model with the empathy head `make` gives from the embedding width and
    /// zeroed dense weights: (bias, dense weights); hashed weights zero, threshold zero.
    fn with_empathy_head_of(make: impl Fn(usize, Vec<f32>) -> (f32, Vec<f32>)) -> Rubric {
        let base = ListeningModel::embedded().unwrap();
        let m = &*base.0;
        let mut heads = m.heads().to_vec();
        let dense = crate::engine::learned::features::dense_len(m.dim());
        let (bias, dense) = make(m.dim(), vec![0.0; dense]);
        heads.push(Head {
            name: "empathy".into(),
            bias,
            dense,
            sparse: vec![0.0; m.buckets],
            threshold: 0.0,
        });
        let model = ListeningModel::from_bytes(&m.to_bytes(&heads, "test")).unwrap();
        Rubric::from_toml_str_with_model("", &model).unwrap()
    }

    /// A head weighing only the rules' own finding (where `rule_flag_index` says it is, what
    /// `hearken train --start default` starts from without a base head) decides as the rules.
    #[test]
    fn a_head_on_the_rules_flag_decides_as_the_rules() {
        let shipped = Rubric::embedded();
        let rules = with_empathy_head_of(|dim, mut dense| {
            let i = crate::engine::learned::features::rule_flag_index(dim, "empathy").unwrap();
            dense[i] = 4.0;
            (-2.0, dense)
        });
        for text in [
            "I'm so sorry to hear that. Let me check the tracking for you.",
            "That sounds really frustrating.",
            "Let me check the tracking for you. What is the order number?",
            "You're welcome, have a nice day.",
        ] {
            assert_eq!(
                empathy_in(&shipped, text, Role::Agent).is_some(),
                empathy_in(&rules, text, Role::Agent).is_some(),
                "{text}"
            );
        }
    }

    fn empathy_in(
        rubric: &Rubric,
        agent_says: &str,
        role: Role,
    ) -> Option<(Option<(u32, u32)>, f32)> {
        let mut c = Conversation::open(Start::default(), rubric, InputLimits::default()).unwrap();
        let turn = |id: &str, role, text: &str| Utterance {
            utterance_id: id.into(),
            role,
            text: text.into(),
            ..Default::default()
        };
        c.observe(Event::Utterance(turn(
            "u1",
            Role::Customer,
            "My order never arrived and I'm really upset.",
        )))
        .unwrap();
        let out = c
            .observe(Event::Utterance(turn("u2", role, agent_says)))
            .unwrap();
        out.iter().find_map(|e| match e {
            Emitted::Update(u) => u
                .behaviours
                .iter()
                .find(|d| d.behaviour == Behaviour::Empathy)
                .map(|d| (d.span, d.confidence)),
            _ => None,
        })
    }

    /// A site's empathy head decides an agent's turn either way, with evidence; without one
    /// (the shipped model) the rules decide; a speaker of unknown role is left to the rules.
    #[test]
    fn an_empathy_head_decides_agent_turns_and_only_when_the_model_has_one() {
        let shipped = Rubric::embedded();
        let sorry = "I'm so sorry to hear that. Let me check the tracking for you.";
        let plain = "Let me check the tracking for you. What is the order number?";
        assert!(
            empathy_in(&shipped, sorry, Role::Agent).is_some(),
            "the rules find the apology"
        );
        assert!(empathy_in(&shipped, plain, Role::Agent).is_none());
        let yes = with_empathy_head(true);
        let (span, confidence) = empathy_in(&yes, plain, Role::Agent).expect("the head adds it");
        assert_eq!(span, Some((0, 34)), "the first sentence is the evidence");
        assert!(confidence > 0.99);
        let no = with_empathy_head(false);
        assert!(
            empathy_in(&no, sorry, Role::Agent).is_none(),
            "the head takes the rules' away"
        );
        assert!(
            empathy_in(&no, sorry, Role::Unknown).is_some(),
            "between peers the rules decide"
        );
    }
}

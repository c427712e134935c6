//! Detectors: each recognises one behaviour. A detector reads the new utterance and the
//! conversation's context (its windowed state and what placing the utterance revealed) and
//! reports what it found, with a confidence and evidence. Detectors hold no state: the same
//! context always gives the same detections. New behaviours are added by adding a detector to
//! [`DETECTORS`], nothing else.

mod acknowledgement;
mod backchannel;
mod clarifying;
mod customer_emotion;
mod customer_repeat;
mod dead_air;
mod dismissive;
mod empathy;
mod escalation;
mod fast_speech;
mod interruption;
mod monologue;
mod overtalk;
mod premature_solution;
pub(crate) mod questions;
mod reflection;
mod sentence_completion;
mod side_issue;

pub(crate) use backchannel::is_backchannel;

use super::metrics::Metrics;
use super::rubric::Profile;
use super::state::{Earlier, Placement, Segment, State};
use super::text::span_of;

/// A listening behaviour or timing event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[allow(missing_docs)] // named after the rubric; see hearken.proto for each definition
pub enum Behaviour {
    Interruption,
    CutOff,
    Backchannel,
    Overtalk,
    DeadAir,
    Monologue,
    FastSpeech,
    OpenQuestion,
    ClosedQuestion,
    ClarifyingQuestion,
    Acknowledgement,
    Empathy,
    Reflection,
    SentenceCompletion,
    PrematureSolution,
    DismissiveLanguage,
    CustomerRepeat,
    CustomerEmotion,
    EscalationRequest,
    SideIssue,
    UnansweredQuestion,
}

impl Behaviour {
    /// Every behaviour, in declaration order.
    pub const ALL: [Behaviour; 21] = [
        Behaviour::Interruption,
        Behaviour::CutOff,
        Behaviour::Backchannel,
        Behaviour::Overtalk,
        Behaviour::DeadAir,
        Behaviour::Monologue,
        Behaviour::FastSpeech,
        Behaviour::OpenQuestion,
        Behaviour::ClosedQuestion,
        Behaviour::ClarifyingQuestion,
        Behaviour::Acknowledgement,
        Behaviour::Empathy,
        Behaviour::Reflection,
        Behaviour::SentenceCompletion,
        Behaviour::PrematureSolution,
        Behaviour::DismissiveLanguage,
        Behaviour::CustomerRepeat,
        Behaviour::CustomerEmotion,
        Behaviour::EscalationRequest,
        Behaviour::SideIssue,
        Behaviour::UnansweredQuestion,
    ];
}

/// What a detector found.
#[derive(Debug, Clone, PartialEq)]
pub struct Detection {
    /// The behaviour.
    pub behaviour: Behaviour,
    /// 0–1.
    pub confidence: f32,
    /// Evidence span in the utterance's text (Unicode scalar offsets, half-open); `None` for
    /// timing evidence.
    pub span: Option<(u32, u32)>,
    /// Other utterances that are part of the evidence.
    pub related_utterance_ids: Vec<String>,
    /// Size of a timing event in milliseconds, else 0.
    pub duration_ms: i64,
}

/// The detection of a phrase list: the first phrase of `set` in the utterance.
pub(super) fn phrase(
    utterance: &Segment,
    set: &super::text::PhraseSet,
    behaviour: Behaviour,
    confidence: f32,
) -> Option<Detection> {
    let m = set.find(&utterance.analysis.words)?;
    Some(Detection::words(
        behaviour, confidence, utterance, m.start, m.end,
    ))
}

impl Detection {
    /// A timing detection: no text span.
    pub(crate) fn timing(
        behaviour: Behaviour,
        confidence: f32,
        duration_ms: i64,
        related: Vec<String>,
    ) -> Self {
        Detection {
            behaviour,
            confidence,
            span: None,
            related_utterance_ids: related,
            duration_ms,
        }
    }
}

/// What a detector may read.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Context<'a> {
    /// The conversation's rubric profile.
    pub profile: &'a Profile,
    /// The conversation's state: the new utterance placed on the timeline, the earlier ones
    /// in the history.
    pub state: &'a State,
    /// What placing the new utterance revealed.
    pub placement: &'a Placement,
    /// The running metrics before this utterance.
    pub metrics: &'a Metrics,
    /// Checks several detectors share, made once per utterance by [`detect_all`].
    pub cues: Cues,
}

/// What several detectors need to know of the new utterance, decided once.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Cues {
    /// It is a listening cue ("mm-hmm", "oh really?"), not an answer to the other's question.
    pub acknowledgement: bool,
    /// It asks the other person to repeat ("sorry?", "pardon?").
    pub non_understanding: bool,
}

impl<'a> Context<'a> {
    /// Earlier final utterances still in the window, newest first.
    pub(crate) fn earlier(&self) -> impl Iterator<Item = &'a Earlier> + 'a {
        self.state.recent.iter().rev()
    }

    /// The utterance just before the new one.
    pub(crate) fn previous(&self) -> Option<&'a Earlier> {
        self.earlier().next()
    }

    /// The latest earlier utterance that took the floor (the speaker's own listening cues, which
    /// take none, skipped), and the utterances before it, newest first.
    pub(crate) fn latest_turn(
        &self,
        utterance: &Segment,
    ) -> Option<(&'a Earlier, impl Iterator<Item = &'a Earlier> + 'a)> {
        let mut earlier = self.earlier();
        let latest = earlier
            .by_ref()
            .find(|s| utterance.is_other_party(s) || !s.backchannel)?;
        Some((latest, earlier))
    }

    /// The other party's latest `n` turns before `utterance`, newest first.
    pub(crate) fn other_turns(
        &self,
        utterance: &'a Segment,
        n: usize,
    ) -> impl Iterator<Item = &'a Earlier> + 'a {
        self.earlier()
            .filter(move |s| utterance.is_other_party(s))
            .take(n)
    }
}

impl Detection {
    /// A language detection with the character span of words `[start, end)` of `utterance`.
    pub(crate) fn words(
        behaviour: Behaviour,
        confidence: f32,
        utterance: &Segment,
        start: usize,
        end: usize,
    ) -> Self {
        Detection {
            behaviour,
            confidence,
            span: span_of(&utterance.tokens, &utterance.analysis.words, start, end),
            related_utterance_ids: Vec::new(),
            duration_ms: 0,
        }
    }

    /// The same, spanning the whole utterance.
    pub(crate) fn whole(behaviour: Behaviour, confidence: f32, utterance: &Segment) -> Self {
        Self::words(
            behaviour,
            confidence,
            utterance,
            0,
            utterance.analysis.words.len(),
        )
    }

    /// Adds related utterances.
    pub(crate) fn related<S: Into<String>>(mut self, ids: impl IntoIterator<Item = S>) -> Self {
        self.related_utterance_ids
            .extend(ids.into_iter().map(Into::into));
        self
    }
}

/// Whose utterances a detector judges. Each detector declares it beside its code; [`detect_all`]
/// applies it, so no detector filters roles on its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Speakers {
    /// Anyone: a timing detector, for which who spoke is part of what it reads.
    Anyone,
    /// The agent only.
    Agent,
    /// The agent, or a speaker of unknown role (a transcript without roles: a listener's
    /// behaviours are found for both sides, and counted for neither).
    AgentOrUnknown,
    /// The customer only.
    Customer,
}

impl Speakers {
    fn admit(self, role: super::event::Role) -> bool {
        use super::event::Role;
        match self {
            Speakers::Anyone => true,
            Speakers::Agent => role == Role::Agent,
            Speakers::AgentOrUnknown => matches!(role, Role::Agent | Role::Unknown),
            Speakers::Customer => role == Role::Customer,
        }
    }
}

/// Recognises one behaviour.
pub(crate) trait Detector: Send + Sync + std::fmt::Debug {
    /// Whose utterances it judges.
    fn speakers(&self) -> Speakers;

    /// Appends what it finds in `utterance` (already placed in `context.state`) to `found`.
    fn detect(&self, utterance: &Segment, context: &Context<'_>, found: &mut Vec<Detection>);
}

/// Every detector, in the order their detections are reported.
pub(crate) static DETECTORS: &[&dyn Detector] = &[
    &backchannel::BackchannelDetector,
    &interruption::InterruptionDetector,
    &overtalk::OvertalkDetector,
    &dead_air::DeadAirDetector,
    &monologue::MonologueDetector,
    &fast_speech::FastSpeechDetector,
    &questions::QuestionDetector,
    &clarifying::ClarifyingDetector,
    &acknowledgement::AcknowledgementDetector,
    &empathy::EmpathyDetector,
    &reflection::ReflectionDetector,
    &sentence_completion::SentenceCompletionDetector,
    &premature_solution::PrematureSolutionDetector,
    &dismissive::DismissiveDetector,
    &customer_repeat::CustomerRepeatDetector,
    &customer_emotion::CustomerEmotionDetector,
    &escalation::EscalationDetector,
    &side_issue::SideIssueDetector,
];

/// Runs every detector over the newest utterance.
pub(crate) fn detect_all(utterance: &Segment, context: &Context<'_>) -> Vec<Detection> {
    let non_understanding = clarifying::is_non_understanding(utterance, context);
    let cues = Cues {
        non_understanding,
        acknowledgement: !non_understanding
            && acknowledgement::is_acknowledgement(utterance, context),
    };
    let context = Context { cues, ..*context };
    let mut found = Vec::new();
    for detector in DETECTORS {
        if detector.speakers().admit(utterance.role) {
            detector.detect(utterance, &context, &mut found);
        }
    }
    found
}

#[cfg(test)]
pub(crate) mod testing {
    //! Builds a conversation state from a compact script, for detector tests.
    use std::sync::Arc;

    use super::*;
    use crate::engine::event::Role;
    use crate::engine::rubric::Rubric;
    use crate::engine::text::tokenize;

    pub(crate) fn voice() -> Arc<Profile> {
        // Parsed once per test thread: loading the rubric is the slow part of a detector test.
        thread_local!(static RUBRIC: Rubric = Rubric::embedded());
        RUBRIC.with(|r| r.profile("voice").unwrap())
    }

    /// A segment as the conversation builds it.
    pub(crate) fn segment(
        profile: &Profile,
        i: usize,
        role: Role,
        text: &str,
        timing: Option<(i64, i64)>,
    ) -> Segment {
        let tokens = tokenize(text);
        let analysis = crate::engine::language::analyse(
            text,
            &tokens,
            &profile.compiled.fillers,
            profile.lang(),
        );
        let backchannel = is_backchannel(
            &tokens,
            &analysis.words,
            timing.map(|(s, e)| e - s),
            profile,
        );
        Segment {
            utterance_id: format!("u{}", i + 1),
            ordinal: i as u32 + 1,
            role,
            participant_id: None,
            text: text.to_string(),
            tokens,
            start_ms: timing.map(|t| t.0),
            end_ms: timing.map(|t| t.1),
            backchannel,
            analysis,
        }
    }

    /// Places `(role, text, start, end)` utterances in order and returns the detections of each.
    pub(crate) fn run(profile: &Profile, script: &[(Role, &str, i64, i64)]) -> Vec<Vec<Detection>> {
        let timed: Vec<_> = script
            .iter()
            .map(|&(r, t, s, e)| (r, t, Some((s, e))))
            .collect();
        run_with(profile, &timed)
    }

    /// The same, untimed.
    pub(crate) fn run_text(profile: &Profile, script: &[(Role, &str)]) -> Vec<Vec<Detection>> {
        let untimed: Vec<_> = script.iter().map(|&(r, t)| (r, t, None)).collect();
        run_with(profile, &untimed)
    }

    /// `(role, text, timing)`.
    type Line<'a> = (Role, &'a str, Option<(i64, i64)>);

    /// Drives the engine's own step (`Conversation::observe`) with `script` and returns what
    /// each utterance's update reports: the detections, the learned layer's revisions and the
    /// counts exactly as production makes them (a harness of its own once counted questions
    /// without clarifying ones and never counted reflections, which premature-solution reads).
    fn run_with(profile: &Profile, script: &[Line<'_>]) -> Vec<Vec<Detection>> {
        use crate::engine::{Conversation, Emitted, Event, InputLimits, Start, Utterance};
        let mut conversation = Conversation::with_profile(
            Start::default(),
            std::sync::Arc::new(profile.clone()),
            InputLimits::default(),
        );
        script
            .iter()
            .enumerate()
            .map(|(i, &(role, text, timing))| {
                let emitted = conversation
                    .observe(Event::Utterance(Utterance {
                        utterance_id: format!("u{}", i + 1),
                        role,
                        participant_id: None,
                        text: text.to_owned(),
                        start_ms: timing.map(|t| t.0),
                        end_ms: timing.map(|t| t.1),
                        partial: false,
                        confidence: None,
                    }))
                    .expect("the script's utterances are valid");
                emitted
                    .into_iter()
                    .find_map(|e| match e {
                        Emitted::Update(u) => Some(u.behaviours),
                        _ => None,
                    })
                    .unwrap_or_default()
            })
            .collect()
    }

    pub(crate) fn kinds(found: &[Detection]) -> Vec<Behaviour> {
        found.iter().map(|d| d.behaviour).collect()
    }

    /// Only the timing behaviours.
    pub(crate) fn timing_kinds(found: &[Detection]) -> Vec<Behaviour> {
        use Behaviour as B;
        kinds(found)
            .into_iter()
            .filter(|b| {
                matches!(
                    b,
                    B::Interruption
                        | B::CutOff
                        | B::Backchannel
                        | B::Overtalk
                        | B::DeadAir
                        | B::Monologue
                        | B::FastSpeech
                )
            })
            .collect()
    }
}

//! Detectors: each recognises one behaviour. A detector reads the new utterance and the
//! conversation's context (its windowed state and what placing the utterance revealed) and
//! reports what it found, with a confidence and evidence. Detectors hold no state: the same
//! context always gives the same detections. New behaviours are added by adding a detector to
//! [`DETECTORS`], nothing else.

mod backchannel;
mod dead_air;
mod fast_speech;
mod interruption;
mod monologue;
mod overtalk;

pub use backchannel::is_backchannel;

use super::rubric::Profile;
use super::state::{Placement, Segment, State};

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

impl Detection {
    /// A timing detection: no text span.
    pub fn timing(
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
pub struct Context<'a> {
    /// The conversation's rubric profile.
    pub profile: &'a Profile,
    /// The conversation's state, the new utterance placed.
    pub state: &'a State,
    /// What placing the new utterance revealed.
    pub placement: &'a Placement,
}

/// Recognises one behaviour.
pub trait Detector: Send + Sync + std::fmt::Debug {
    /// A short name for logs and benchmarks.
    fn name(&self) -> &'static str;
    /// Appends what it finds in `utterance` (already placed in `context.state`) to `found`.
    fn detect(&self, utterance: &Segment, context: &Context<'_>, found: &mut Vec<Detection>);
}

/// Every detector, in the order their detections are reported.
pub static DETECTORS: &[&dyn Detector] = &[
    &backchannel::BackchannelDetector,
    &interruption::InterruptionDetector,
    &overtalk::OvertalkDetector,
    &dead_air::DeadAirDetector,
    &monologue::MonologueDetector,
    &fast_speech::FastSpeechDetector,
];

/// Runs every detector over the newest utterance.
pub fn detect_all(utterance: &Segment, context: &Context<'_>) -> Vec<Detection> {
    let mut found = Vec::new();
    for detector in DETECTORS {
        detector.detect(utterance, context, &mut found);
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
        Rubric::embedded().profile("voice").unwrap()
    }

    /// Places `(role, text, start, end)` utterances in order and returns the detections of each.
    pub(crate) fn run(profile: &Profile, script: &[(Role, &str, i64, i64)]) -> Vec<Vec<Detection>> {
        let mut state = State::default();
        let mut out = Vec::new();
        for (i, &(role, text, start, end)) in script.iter().enumerate() {
            let tokens = tokenize(text);
            let backchannel = is_backchannel(&tokens, Some(end - start), profile);
            let segment = Segment {
                utterance_id: format!("u{}", i + 1),
                ordinal: i as u32 + 1,
                role,
                text: text.to_string(),
                tokens,
                start_ms: Some(start),
                end_ms: Some(end),
                backchannel,
            };
            let placement = state.place(segment, profile);
            let latest = state.latest().unwrap().clone();
            let found = detect_all(
                &latest,
                &Context {
                    profile,
                    state: &state,
                    placement: &placement,
                },
            );
            for d in &found {
                if d.behaviour == Behaviour::Interruption {
                    let agent = if role == Role::Agent {
                        latest.utterance_id.clone()
                    } else {
                        d.related_utterance_ids[0].clone()
                    };
                    state.mark_interrupting(&agent);
                }
            }
            out.push(found);
        }
        out
    }

    pub(crate) fn kinds(found: &[Detection]) -> Vec<Behaviour> {
        found.iter().map(|d| d.behaviour).collect()
    }
}

//! Clarifying questions (rubric: language behaviours): asking the other person to elaborate on
//! or confirm what they said ("what do you mean by…", "just to make sure…", "can you say more
//! about…"), including short signals of not having caught it ("sorry?", "pardon?", "huh?") and
//! echo questions that repeat their words with a question mark. "I'm sorry, what?" is a
//! clarification, not empathy.

use super::{Behaviour, Context, Detection, Detector};
use crate::engine::state::Segment;

/// Reports clarifying questions.
#[derive(Debug)]
pub(super) struct ClarifyingDetector;

/// Words at most in a bare "sorry?"-style signal or an echo question.
const SHORT: usize = 4;

/// Whether the utterance is a short signal of not having heard ("pardon?", "sorry what").
pub(super) fn is_non_understanding(utterance: &Segment, context: &Context<'_>) -> bool {
    let a = &utterance.analysis;
    let lang = context.profile.lang();
    if a.words.is_empty() || a.words.len() > SHORT || !lang.non_understanding.covers(&a.words) {
        return false;
    }
    // Without a question mark, "sorry" is an apology and "huh" a listening noise.
    a.question_mark
        || !matches!(
            a.words.iter().collect::<Vec<_>>().as_slice(),
            ["sorry"] | ["i'm", "sorry"] | ["huh"]
        )
}

impl Detector for ClarifyingDetector {
    fn name(&self) -> &'static str {
        "clarifying"
    }

    fn detect(&self, utterance: &Segment, context: &Context<'_>, found: &mut Vec<Detection>) {
        if !utterance.may_be_agent() {
            return;
        }
        let a = &utterance.analysis;
        let lang = context.profile.lang();
        if is_non_understanding(utterance, context) {
            found.push(Detection::whole(
                Behaviour::ClarifyingQuestion,
                0.85,
                utterance,
            ));
            return;
        }
        if let Some(m) = lang.clarifying.find(&a.words) {
            // At the start of the turn, or inside something asked.
            if m.start <= a.lead || a.question.is_some() {
                found.push(Detection::words(
                    Behaviour::ClarifyingQuestion,
                    0.8,
                    utterance,
                    m.start,
                    m.end,
                ));
                return;
            }
        }
        // An echo: a short question repeating the other person's words ("in our country?").
        if a.question_mark && a.words.len() <= SHORT && !a.content.is_empty() {
            if let Some(previous) = context.other_turns(utterance, 1).next() {
                let (shared, share) = a.overlap_with(&previous.analysis.content);
                if shared >= 1 && share >= 0.99 {
                    found.push(
                        Detection::whole(Behaviour::ClarifyingQuestion, 0.6, utterance)
                            .related([previous.utterance_id.clone()]),
                    );
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{kinds, run_text, voice};
    use super::*;
    use crate::engine::event::Role;

    fn clarifies(previous: &str, text: &str) -> bool {
        let found = run_text(&voice(), &[(Role::Customer, previous), (Role::Agent, text)]);
        kinds(&found[1]).contains(&Behaviour::ClarifyingQuestion)
    }

    #[test]
    fn requests_to_elaborate_or_repeat_are_clarifying() {
        let before = "the box keeps flashing orange at night";
        for text in [
            "what do you mean by flashing",
            "just to make sure, is it the router or the modem",
            "sorry?",
            "I'm sorry, what?",
            "pardon",
            "can you say more about the orange light",
            "Orange?",
        ] {
            assert!(clarifies(before, text), "{text}");
        }
    }

    #[test]
    fn apologies_and_ordinary_questions_are_not() {
        let before = "the box keeps flashing orange at night";
        for text in [
            "sorry",
            "I'm sorry to hear that",
            "did you restart it",
            "okay",
            "that sounds annoying",
        ] {
            assert!(!clarifies(before, text), "{text}");
        }
    }
}

//! Acknowledgement (rubric: language behaviours): a listening cue that takes no floor ("mm-hmm",
//! "I see", "okay", "got it", "right", "oh really"): the whole utterance is made of cues and is
//! short. "I see" at the start of a long explanation takes the floor and is not one. A bare
//! "yes" or "no" right after the other person's question answers it rather than acknowledging.
//! A timed agent cue inside the customer's turn is reported as a backchannel instead.

use super::{Behaviour, Context, Detection, Detector, Speakers};
use crate::engine::state::Segment;

/// Reports acknowledgements.
#[derive(Debug)]
pub(super) struct AcknowledgementDetector;

/// Whether the utterance is an acknowledgement by its words.
pub(super) fn is_acknowledgement(utterance: &Segment, context: &Context<'_>) -> bool {
    let a = &utterance.analysis;
    let lang = context.profile.lang();
    if a.words.is_empty()
        || a.words.len() > lang_max(context)
        || !lang.acknowledgements.covers(&a.words)
    {
        return false;
    }
    if super::clarifying::is_non_understanding(utterance, context) {
        return false;
    }
    let answers_a_question = context.previous().is_some_and(|p| {
        utterance.is_other_party(p) && p.question.is_some() && lang.answers.covers(&a.words)
    });
    !answers_a_question
}

fn lang_max(context: &Context<'_>) -> usize {
    context
        .profile
        .language
        .thresholds
        .acknowledgement_max_words
}

impl Detector for AcknowledgementDetector {
    fn speakers(&self) -> Speakers {
        Speakers::AgentOrUnknown
    }

    fn detect(&self, utterance: &Segment, context: &Context<'_>, found: &mut Vec<Detection>) {
        // Agent backchannels are reported by the backchannel detector.
        if super::backchannel::reports(utterance, context) {
            return;
        }
        if context.cues.acknowledgement {
            found.push(Detection::whole(
                Behaviour::Acknowledgement,
                0.85,
                utterance,
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{kinds, run_text, voice};
    use super::*;
    use crate::engine::event::Role;

    fn acknowledges(previous: &str, text: &str) -> bool {
        let found = run_text(&voice(), &[(Role::Customer, previous), (Role::Agent, text)]);
        kinds(&found[1]).contains(&Behaviour::Acknowledgement)
    }

    #[test]
    fn short_cues_are_acknowledgements() {
        for text in [
            "mm-hmm",
            "I see.",
            "oh okay",
            "got it",
            "right right",
            "Oh, really?",
            "uh yeah",
            "that's great",
        ] {
            assert!(acknowledges("so I moved house last month", text), "{text}");
        }
    }

    #[test]
    fn a_cue_that_opens_a_long_turn_or_answers_a_question_is_not() {
        assert!(!acknowledges(
            "so I moved house last month",
            "I see, so the bill went to your old address and nobody updated it"
        ));
        assert!(!acknowledges("did you get my email", "yes"));
        assert!(!acknowledges("my router is broken", "huh?"));
    }
}

//! Empathy (rubric: language behaviours): naming or validating the customer's feeling, or
//! apologising for their experience ("that sounds really frustrating", "I'm sorry you've had to
//! deal with this", "I'd be upset too"). Stronger right after the customer showed emotion. A
//! short "sorry?" or "I'm sorry, what?" asks to repeat and is not empathy.

use super::{Behaviour, Context, Detection, Detector, Speakers};
use crate::engine::state::Segment;

/// Reports expressions of empathy.
#[derive(Debug)]
pub(super) struct EmpathyDetector;

impl Detector for EmpathyDetector {
    fn speakers(&self) -> Speakers {
        Speakers::AgentOrUnknown
    }

    fn detect(&self, utterance: &Segment, context: &Context<'_>, found: &mut Vec<Detection>) {
        if context.cues.non_understanding {
            return;
        }
        let a = &utterance.analysis;
        let lang = context.profile.lang();
        let Some(m) = lang.empathy.find(&a.words) else {
            return;
        };
        // "oh no" and friends count only as a reply of their own, not inside a longer turn.
        if a.words.len() > 4 && lang.short_only_empathy.is_exactly(&a.words, m.start, m.end) {
            return;
        }
        if a.question_mark && a.words.len() <= 3 {
            return;
        }
        let emotional = context
            .other_turns(utterance, 1)
            .next()
            .is_some_and(|p| p.sentiment <= context.profile.language.thresholds.emotion_sentiment);
        found.push(Detection::words(
            Behaviour::Empathy,
            if emotional { 0.95 } else { 0.8 },
            utterance,
            m.start,
            m.end,
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{kinds, run_text, voice};
    use super::*;
    use crate::engine::event::Role;

    fn empathic(text: &str) -> bool {
        let found = run_text(
            &voice(),
            &[
                (
                    Role::Customer,
                    "I've been without internet for a week and I'm really fed up",
                ),
                (Role::Agent, text),
            ],
        );
        kinds(&found[1]).contains(&Behaviour::Empathy)
    }

    #[test]
    fn validating_feelings_and_apologising_are_empathy() {
        for text in [
            "that sounds really frustrating",
            "I'm sorry you've had to deal with this",
            "I'd be upset too",
            "oh no",
            "I completely understand, let me fix that",
            "i can imagine that's been stressful",
            "That's disappointing when you planned ahead for it.",
            "oh how disappointing",
        ] {
            assert!(empathic(text), "{text}");
        }
    }

    #[test]
    fn clarifications_and_plain_statements_are_not() {
        for text in [
            "I'm sorry, what?",
            "sorry?",
            "let me check the line",
            "oh no that's not right the account number is different",
        ] {
            assert!(!empathic(text), "{text}");
        }
    }

    #[test]
    fn the_short_only_list_is_the_rubrics() {
        let script = [
            (Role::Customer, "my card was declined at the shop today"),
            (Role::Agent, "oh no, the card was declined at the shop"),
        ];
        let found = run_text(&voice(), &script);
        assert!(!kinds(&found[1]).contains(&Behaviour::Empathy));
        let rubric =
            crate::engine::Rubric::from_toml_str("[base.language]\nshort_only_empathy = []\n")
                .unwrap();
        let found = run_text(&rubric.profile("voice").unwrap(), &script);
        assert!(kinds(&found[1]).contains(&Behaviour::Empathy));
    }
}

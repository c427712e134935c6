//! Premature solution (rubric: language behaviours, "don't jump to conclusions"): the agent
//! prescribes a fix or gives a verdict before the customer has described the problem — before
//! the agent has asked any question, or before the customer has said
//! `premature_min_customer_words` words.

use super::{Behaviour, Context, Detection, Detector, Speakers};
use crate::engine::state::Segment;

/// Reports fixes offered too early.
#[derive(Debug)]
pub(super) struct PrematureSolutionDetector;

impl Detector for PrematureSolutionDetector {
    fn speakers(&self) -> Speakers {
        Speakers::Agent
    }

    fn detect(&self, utterance: &Segment, context: &Context<'_>, found: &mut Vec<Detection>) {
        if utterance.analysis.question.is_some() {
            return;
        }
        let m = context.metrics;
        // Before any question; or before the customer has said much and the agent has not
        // confirmed what they understood.
        let early = m.questions == 0
            || (m.customer_words
                < context
                    .profile
                    .language
                    .thresholds
                    .premature_min_customer_words
                && m.reflections == 0);
        if !early || m.customer_turns == 0 {
            return;
        }
        if let Some(phrase) = context
            .profile
            .lang()
            .prescribed_solution(&utterance.analysis.words)
        {
            found.push(Detection::words(
                Behaviour::PrematureSolution,
                0.75,
                utterance,
                phrase.start,
                phrase.end,
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{kinds, run_text, voice};
    use super::*;
    use crate::engine::event::Role;

    #[test]
    fn a_fix_before_the_problem_is_described_is_premature() {
        let found = run_text(
            &voice(),
            &[
                (Role::Customer, "hi my internet is not working"),
                (
                    Role::Agent,
                    "okay what you need to do is restart the router",
                ),
            ],
        );
        assert!(kinds(&found[1]).contains(&Behaviour::PrematureSolution));
    }

    #[test]
    fn a_fix_after_questions_and_a_full_description_is_not() {
        let found = run_text(
            &voice(),
            &[
                (Role::Customer, "hi my internet is not working"),
                (Role::Agent, "what happens when you try to connect"),
                (
                    Role::Customer,
                    "the light goes orange after a minute and then every device says there is no internet even though the cable is plugged in properly and I already restarted everything twice this morning before calling you",
                ),
                (
                    Role::Agent,
                    "okay you need to reset the line from our side, I'll do that now",
                ),
            ],
        );
        assert!(!kinds(&found[3]).contains(&Behaviour::PrematureSolution));
    }

    #[test]
    fn a_need_said_back_is_not_a_fix() {
        let found = run_text(
            &voice(),
            &[
                (
                    Role::Customer,
                    "my flight to madrid was cancelled and i've got a wedding there on saturday",
                ),
                (
                    Role::Agent,
                    "so your flight's been cancelled and you need to be in madrid before saturday",
                ),
                (Role::Agent, "so you have to restart the router"),
            ],
        );
        assert!(!kinds(&found[1]).contains(&Behaviour::PrematureSolution));
        // A prescription that only looks like a reflective opening still is one.
        assert!(kinds(&found[2]).contains(&Behaviour::PrematureSolution));
    }

    /// Advice and verdicts count as fixes, not only instructions: "you don't need…", "I'd
    /// suggest…", "it might not be a bad idea to…" before the customer has been heard.
    #[test]
    fn early_advice_and_verdicts_are_premature() {
        for advice in [
            "well you do not need a new phone, yours is fine",
            "i'd suggest switching to the annual plan",
            "it might not be a bad idea to cancel the card",
            "if i were you i would wait for the refund",
        ] {
            let found = run_text(
                &voice(),
                &[
                    (Role::Customer, "hi, I'm calling about my phone bill"),
                    (Role::Agent, advice),
                ],
            );
            assert!(
                kinds(&found[1]).contains(&Behaviour::PrematureSolution),
                "{advice}"
            );
        }
        // Said back, it is the customer's need, not the agent's advice.
        let found = run_text(
            &voice(),
            &[
                (
                    Role::Customer,
                    "i don't think i need the extra data any more",
                ),
                (
                    Role::Agent,
                    "it sounds like you don't need the extra data now",
                ),
            ],
        );
        assert!(!kinds(&found[1]).contains(&Behaviour::PrematureSolution));
    }

    /// The counts this detector reads are the engine's own (`Metrics::record_turn`, driven by
    /// `testing::run_text` through `Conversation::observe`): a clarifying question counts as a
    /// question, and a reflection as understanding shown. A harness that counted for itself
    /// once left both out, so these cases came out premature in the tests and not in
    /// production.
    #[test]
    fn the_counts_read_are_the_engines_own() {
        let long_description = "the light goes orange after a minute and then every device says there is no internet even though the cable is plugged in properly and I already restarted everything twice this morning before calling you";
        let after_clarifying = run_text(
            &voice(),
            &[
                (Role::Customer, long_description),
                (Role::Agent, "sorry?"),
                (Role::Customer, "the light goes orange after a minute"),
                (Role::Agent, "okay you need to reset the line from our side"),
            ],
        );
        assert!(kinds(&after_clarifying[1]).contains(&Behaviour::ClarifyingQuestion));
        assert!(!kinds(&after_clarifying[3]).contains(&Behaviour::PrematureSolution));

        let after_reflection = run_text(
            &voice(),
            &[
                (Role::Customer, "my internet keeps dropping every evening"),
                (Role::Agent, "what happens when it drops"),
                (Role::Customer, "it just stops every evening"),
                (
                    Role::Agent,
                    "so it sounds like your internet keeps dropping every evening",
                ),
                (Role::Agent, "okay you need to reset the line from our side"),
            ],
        );
        assert!(kinds(&after_reflection[3]).contains(&Behaviour::Reflection));
        assert!(!kinds(&after_reflection[4]).contains(&Behaviour::PrematureSolution));
    }
}

//! Escalation request (rubric: language behaviours): the customer asks for a manager or
//! supervisor, to cancel, to complain, or mentions legal steps.

use super::{Behaviour, Context, Detection, Detector, Speakers};
use crate::engine::state::Segment;

/// Reports escalation requests.
#[derive(Debug)]
pub(super) struct EscalationDetector;

impl Detector for EscalationDetector {
    fn speakers(&self) -> Speakers {
        Speakers::Customer
    }

    fn detect(&self, utterance: &Segment, context: &Context<'_>, found: &mut Vec<Detection>) {
        found.extend(super::phrase(
            utterance,
            &context.profile.lang().escalation,
            Behaviour::EscalationRequest,
            0.85,
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{kinds, run_text, voice};
    use super::*;
    use crate::engine::event::Role;

    #[test]
    fn asking_for_a_manager_or_to_cancel_is_escalation() {
        for (text, expected) in [
            ("I want to speak to a manager", true),
            ("just cancel my subscription", true),
            ("I'll be making a formal complaint", true),
            ("I'm a manager at a bakery", false),
            ("can you check my bill", false),
        ] {
            let found = run_text(&voice(), &[(Role::Customer, text)]);
            assert_eq!(
                kinds(&found[0]).contains(&Behaviour::EscalationRequest),
                expected,
                "{text}"
            );
        }
    }
}

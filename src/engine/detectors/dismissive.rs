//! Dismissive language (rubric: language behaviours): "calm down", "that's not our problem",
//! "you should have…", "as I already said", flat contradiction — from the agent.

use super::{Behaviour, Context, Detection, Detector, Speakers};
use crate::engine::state::Segment;

/// Reports dismissive language of the agent.
#[derive(Debug)]
pub(super) struct DismissiveDetector;

impl Detector for DismissiveDetector {
    fn speakers(&self) -> Speakers {
        Speakers::Agent
    }

    fn detect(&self, utterance: &Segment, context: &Context<'_>, found: &mut Vec<Detection>) {
        found.extend(super::phrase(
            utterance,
            &context.profile.lang().dismissive,
            Behaviour::DismissiveLanguage,
            0.8,
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{kinds, run_text, voice};
    use super::*;
    use crate::engine::event::Role;

    #[test]
    fn dismissing_the_customer_is_reported_and_helping_is_not() {
        let found = run_text(
            &voice(),
            &[
                (Role::Customer, "this is the third time I'm calling"),
                (Role::Agent, "sir please calm down"),
                (Role::Agent, "like I said that's not our problem"),
                (Role::Agent, "let me look into it"),
            ],
        );
        assert!(kinds(&found[1]).contains(&Behaviour::DismissiveLanguage));
        assert!(kinds(&found[2]).contains(&Behaviour::DismissiveLanguage));
        assert!(!kinds(&found[3]).contains(&Behaviour::DismissiveLanguage));
    }
}

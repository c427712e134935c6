//! Customer repeat (rubric: language behaviours, "customers should not have to repeat
//! themselves"): a customer utterance whose content largely repeats an earlier customer
//! utterance (not the one just before it), or a repetition marker ("as I said", "like I told
//! you", "for the third time").

use super::{Behaviour, Context, Detection, Detector, Speakers};
use crate::engine::event::Role;
use crate::engine::state::Segment;

/// Reports customers repeating themselves.
#[derive(Debug)]
pub(super) struct CustomerRepeatDetector;

impl Detector for CustomerRepeatDetector {
    fn speakers(&self) -> Speakers {
        Speakers::Customer
    }

    fn detect(&self, utterance: &Segment, context: &Context<'_>, found: &mut Vec<Detection>) {
        let a = &utterance.analysis;
        if let Some(m) = context.profile.lang().repeat_markers.find(&a.words) {
            found.push(Detection::words(
                Behaviour::CustomerRepeat,
                0.9,
                utterance,
                m.start,
                m.end,
            ));
            return;
        }
        let rules = &context.profile.language.thresholds;
        if a.content.len() < rules.repeat_min_content_words {
            return;
        }
        // Earlier customer turns, except the utterance just before this one (a continuation of
        // the same turn, not a repeat).
        let adjacent = context.previous().map(|p| p.ordinal);
        let earlier = context
            .earlier()
            .filter(|s| s.role == Role::Customer && Some(s.ordinal) != adjacent);
        for turn in earlier {
            let (shared, share) = a.overlap_with(&turn.content);
            if shared >= rules.repeat_min_content_words && share >= rules.repeat_min_overlap {
                found.push(
                    Detection::whole(Behaviour::CustomerRepeat, 0.7, utterance)
                        .related([&*turn.utterance_id]),
                );
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{kinds, run_text, voice};
    use super::*;

    #[test]
    fn restating_an_earlier_point_or_saying_so_is_a_repeat() {
        let found = run_text(
            &voice(),
            &[
                (
                    Role::Customer,
                    "my router drops the connection every evening around eight",
                ),
                (Role::Agent, "have you restarted it"),
                (Role::Customer, "yes several times"),
                (Role::Agent, "is it plugged in"),
                (
                    Role::Customer,
                    "look the router drops the connection every evening",
                ),
                (Role::Customer, "like I told you it's plugged in"),
            ],
        );
        assert!(kinds(&found[4]).contains(&Behaviour::CustomerRepeat));
        assert_eq!(
            found[4]
                .iter()
                .find(|d| d.behaviour == Behaviour::CustomerRepeat)
                .unwrap()
                .related_utterance_ids,
            ["u1"]
        );
        assert!(kinds(&found[5]).contains(&Behaviour::CustomerRepeat));
        assert!(!kinds(&found[2]).contains(&Behaviour::CustomerRepeat));
    }
}

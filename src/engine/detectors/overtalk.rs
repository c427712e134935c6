//! Overtalk (rubric: timing behaviours and the `overtalk` alert): agent and customer speaking
//! at once for longer than `timing.overtalk_ms` without a break. Reported by the utterance
//! whose placement added to such a stretch.

use super::{Behaviour, Context, Detection, Detector, Speakers};
use crate::engine::state::Segment;

/// Reports overtalk episodes.
#[derive(Debug)]
pub(super) struct OvertalkDetector;

impl Detector for OvertalkDetector {
    fn speakers(&self) -> Speakers {
        Speakers::Anyone
    }

    fn detect(&self, _utterance: &Segment, context: &Context<'_>, found: &mut Vec<Detection>) {
        let p = context.placement;
        if p.new_overtalk_ms > 0 && p.overtalk_episode_ms > context.profile.timing.overtalk_ms {
            found.push(Detection::timing(
                Behaviour::Overtalk,
                0.9,
                p.overtalk_episode_ms,
                p.overlapping.clone(),
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{run, timing_kinds as kinds, voice};
    use super::*;
    use crate::engine::event::Role;

    #[test]
    fn long_simultaneous_speech_is_overtalk_and_short_is_not() {
        let found = run(
            &voice(),
            &[
                (
                    Role::Customer,
                    "I want to know why I was charged twice this month",
                    0,
                    5000,
                ),
                (
                    Role::Agent,
                    "okay so the charge you are seeing is a pending one",
                    2000,
                    6000,
                ),
                (Role::Customer, "and another thing", 7000, 9000),
                (Role::Agent, "sure go ahead", 8500, 9500),
            ],
        );
        assert!(kinds(&found[1]).contains(&Behaviour::Overtalk));
        assert_eq!(
            found[1]
                .iter()
                .find(|d| d.behaviour == Behaviour::Overtalk)
                .unwrap()
                .duration_ms,
            3000
        );
        assert!(!kinds(&found[3]).contains(&Behaviour::Overtalk));
    }
}

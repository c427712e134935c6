//! Dead air (rubric: timing behaviours): a stretch with no one speaking longer than
//! `timing.dead_air_ms`, holds excluded. Reported by the utterance that ends the silence.

use super::{Behaviour, Context, Detection, Detector, Speakers};
use crate::engine::state::Segment;

/// Reports dead air.
#[derive(Debug)]
pub(super) struct DeadAirDetector;

impl Detector for DeadAirDetector {
    fn speakers(&self) -> Speakers {
        Speakers::Anyone
    }

    fn detect(&self, _utterance: &Segment, context: &Context<'_>, found: &mut Vec<Detection>) {
        let silence = context.placement.silence_before_ms;
        if silence > context.profile.timing.dead_air_ms {
            found.push(Detection::timing(
                Behaviour::DeadAir,
                1.0,
                silence,
                Vec::new(),
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{run, timing_kinds as kinds, voice};
    use super::*;
    use crate::engine::event::Role;
    use crate::engine::state::State;

    #[test]
    fn long_silence_is_dead_air() {
        let found = run(
            &voice(),
            &[
                (Role::Customer, "can you check my order", 0, 2000),
                (Role::Agent, "one moment", 2500, 3500),
                (Role::Agent, "okay I found it", 16_000, 17_000),
                (Role::Customer, "great", 17_500, 18_000),
            ],
        );
        assert_eq!(kinds(&found[2]), [Behaviour::DeadAir]);
        assert_eq!(found[2][0].duration_ms, 12_500);
        assert!(kinds(&found[3]).is_empty());
    }

    #[test]
    fn silence_during_a_hold_is_not_dead_air() {
        let p = voice();
        let mut state = State::default();
        let seg = |_id: &str, ordinal: u32, start, end| {
            super::super::testing::segment(
                &p,
                ordinal as usize - 1,
                Role::Agent,
                "let me check",
                Some((start, end)),
            )
        };
        let first = seg("u1", 1, 0, 1000);
        state.place(&first, &p);
        state.remember(first, &p);
        assert!(state.start_hold(1500));
        assert!(state.end_hold(60_000));
        let latest = seg("u2", 2, 61_000, 62_000);
        let placement = state.place(&latest, &p);
        assert_eq!(
            placement.silence_before_ms, 1500,
            "only the silence outside the hold counts"
        );
        let mut found = Vec::new();
        DeadAirDetector.detect(
            &latest,
            &Context {
                profile: &p,
                state: &state,
                placement: &placement,
                metrics: &crate::engine::Metrics::default(),
                cues: Default::default(),
            },
            &mut found,
        );
        assert!(found.is_empty());
    }
}

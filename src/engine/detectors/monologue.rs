//! Monologue (rubric: timing behaviours): consecutive agent speech, gaps under
//! `timing.monologue_max_gap_ms` and no customer turn between (customer backchannels do not
//! break it), longer than `timing.monologue_ms`. Reported once per run, by the utterance that
//! takes the run over the threshold.

use super::{Behaviour, Context, Detection, Detector, Speakers};
use crate::engine::state::Segment;

/// Reports monologues.
#[derive(Debug)]
pub(super) struct MonologueDetector;

impl Detector for MonologueDetector {
    fn speakers(&self) -> Speakers {
        Speakers::Agent
    }

    fn detect(&self, _utterance: &Segment, context: &Context<'_>, found: &mut Vec<Detection>) {
        let p = context.placement;
        let threshold = context.profile.timing.monologue_ms;
        if p.run_before_ms <= threshold && p.run_after_ms > threshold {
            let first = p.run_first_utterance_id.iter().cloned().collect();
            found.push(Detection::timing(
                Behaviour::Monologue,
                1.0,
                p.run_after_ms,
                first,
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
    fn agent_run_over_the_threshold_is_reported_once() {
        let mut script = vec![(Role::Customer, "what plans do you have", 0, 2000)];
        for i in 0..6 {
            let start = 2500 + i * 10_000;
            script.push((
                Role::Agent,
                "so the plan includes several things",
                start,
                start + 9_500,
            ));
        }
        script.push((Role::Customer, "mm-hmm", 40_000, 40_400));
        let found = run(&voice(), &script);
        let reported: Vec<usize> = found
            .iter()
            .enumerate()
            .filter(|(_, f)| kinds(f).contains(&Behaviour::Monologue))
            .map(|(i, _)| i)
            .collect();
        assert_eq!(reported, [5], "reported when the run passes 45 s, once");
        let d = found[5]
            .iter()
            .find(|d| d.behaviour == Behaviour::Monologue)
            .unwrap();
        assert_eq!(d.related_utterance_ids, ["u2"]);
    }

    #[test]
    fn a_customer_turn_or_a_long_gap_breaks_the_run() {
        let found = run(
            &voice(),
            &[
                (Role::Agent, "let me explain the plan", 0, 30_000),
                (
                    Role::Customer,
                    "okay but what about roaming charges",
                    30_500,
                    33_000,
                ),
                (
                    Role::Agent,
                    "roaming is included in every plan we offer",
                    33_500,
                    60_000,
                ),
                (Role::Agent, "and the price", 63_000, 80_000),
            ],
        );
        assert!(
            found
                .iter()
                .all(|f| !kinds(f).contains(&Behaviour::Monologue))
        );
    }
}

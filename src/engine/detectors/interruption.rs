//! Interruption and cut-off (rubric: timing behaviours). An agent utterance that is not a
//! backchannel interrupts when it starts while a customer utterance is in progress, at least
//! `timing.interruption_min_remaining_ms` before that customer utterance ends. It is a cut-off
//! when the customer's utterance then ends within `timing.cut_off_window_ms` of the agent's
//! start. Either side may arrive first (channels are finalised independently), so a customer
//! utterance that reveals an earlier-arrived agent interruption reports it too; each agent
//! utterance counts once.

use super::{Behaviour, Context, Detection, Detector, Speakers};
use crate::engine::event::Role;
use crate::engine::state::Segment;

/// Reports interruptions and cut-offs.
#[derive(Debug)]
pub(super) struct InterruptionDetector;

/// Whether speech over `agent` (start, end) cuts into `customer` (start, end) with at least
/// `min_remaining_ms` of it left.
fn interrupts(agent: (i64, i64), customer: (i64, i64), min_remaining_ms: i64) -> bool {
    customer.0 < agent.0 && agent.0 <= customer.1 - min_remaining_ms
}

fn report(
    agent_start: i64,
    customer_end: i64,
    related: String,
    context: &Context<'_>,
    found: &mut Vec<Detection>,
) {
    let rules = &context.profile.timing;
    let remaining = customer_end - agent_start;
    // A wider margin than the threshold leaves less doubt from recogniser timestamps.
    let confidence = if remaining >= 2 * rules.interruption_min_remaining_ms {
        0.95
    } else {
        0.75
    };
    found.push(Detection::timing(
        Behaviour::Interruption,
        confidence,
        remaining,
        vec![related.clone()],
    ));
    if remaining <= rules.cut_off_window_ms {
        found.push(Detection::timing(
            Behaviour::CutOff,
            confidence,
            remaining,
            vec![related],
        ));
    }
}

impl Detector for InterruptionDetector {
    fn speakers(&self) -> Speakers {
        Speakers::Anyone
    }

    fn detect(&self, utterance: &Segment, context: &Context<'_>, found: &mut Vec<Detection>) {
        let before = found.len();
        self.detect_timed(utterance, context, found);
        if found.len() == before && utterance.role == Role::Customer {
            said_cut_off(utterance, context, found);
        }
    }
}

/// "Can I just finish": the customer says the agent's latest turn cut them off. Reported as an
/// interruption by that turn when timing did not already show one.
fn said_cut_off(utterance: &Segment, context: &Context<'_>, found: &mut Vec<Detection>) {
    let lang = context.profile.lang();
    let Some(m) = lang.cut_off_complaints.find(&utterance.analysis.words) else {
        return;
    };
    let Some(agent) = context
        .earlier()
        .find(|s| s.role == Role::Agent && !s.backchannel)
    else {
        return;
    };
    // Already counted from the timing (the agent's own turn reported it).
    if context
        .state
        .timeline
        .iter()
        .any(|t| *t.utterance_id == *agent.utterance_id && t.interrupting)
    {
        return;
    }
    let mut d = Detection::words(Behaviour::Interruption, 0.7, utterance, m.start, m.end);
    d.related_utterance_ids = vec![agent.utterance_id.to_string()];
    found.push(d);
}

impl InterruptionDetector {
    fn detect_timed(&self, utterance: &Segment, context: &Context<'_>, found: &mut Vec<Detection>) {
        if !context.profile.timing.speech_timing || utterance.backchannel {
            return;
        }
        let Some((start, end)) = utterance.interval() else {
            return;
        };
        let min_remaining = context.profile.timing.interruption_min_remaining_ms;
        let timeline = &context.state.timeline;
        match utterance.role {
            Role::Agent => {
                // The customer utterance in progress that started last.
                if let Some(customer) = timeline
                    .iter()
                    .rev()
                    .filter(|t| t.role == Role::Customer && !t.backchannel)
                    .find(|t| interrupts((start, end), (t.start_ms, t.end_ms), min_remaining))
                {
                    report(
                        start,
                        customer.end_ms,
                        customer.utterance_id.to_string(),
                        context,
                        found,
                    );
                }
            }
            Role::Customer => {
                for agent in timeline.iter().filter(|t| {
                    t.role == Role::Agent
                        && !t.backchannel
                        && !t.interrupting
                        && t.ordinal < utterance.ordinal
                        && interrupts((t.start_ms, t.end_ms), (start, end), min_remaining)
                }) {
                    report(
                        agent.start_ms,
                        end,
                        agent.utterance_id.to_string(),
                        context,
                        found,
                    );
                }
            }
            Role::Other | Role::Unknown => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{run, timing_kinds as kinds, voice};
    use super::*;

    #[test]
    fn agent_starting_mid_customer_utterance_interrupts() {
        let found = run(
            &voice(),
            &[
                (
                    Role::Customer,
                    "my router keeps dropping the connection every evening",
                    0,
                    6000,
                ),
                (Role::Agent, "have you tried turning it off", 3000, 5000),
            ],
        );
        assert_eq!(
            kinds(&found[1]),
            [Behaviour::Interruption, Behaviour::Overtalk],
            "2 s of overlap is overtalk too"
        );
        assert_eq!(found[1][0].related_utterance_ids, ["u1"]);
        assert_eq!(found[1][0].duration_ms, 3000);
    }

    #[test]
    fn backchannel_overlap_is_not_an_interruption() {
        let found = run(
            &voice(),
            &[
                (
                    Role::Customer,
                    "so I called last week and they said it would be fixed",
                    0,
                    6000,
                ),
                (Role::Agent, "mm-hmm", 2500, 3000),
            ],
        );
        assert_eq!(kinds(&found[1]), [Behaviour::Backchannel]);
    }

    #[test]
    fn starting_in_the_last_moments_of_a_turn_is_not_an_interruption() {
        let found = run(
            &voice(),
            &[
                (Role::Customer, "and that is all", 0, 3000),
                (Role::Agent, "right let me check that for you", 2800, 5000),
            ],
        );
        assert!(kinds(&found[1]).is_empty(), "{:?}", found[1]);
    }

    #[test]
    fn customer_stopping_soon_after_is_a_cut_off() {
        let found = run(
            &voice(),
            &[
                (Role::Customer, "the thing is that when I", 0, 3000),
                (
                    Role::Agent,
                    "okay so what you need to do is reset it",
                    2400,
                    6000,
                ),
            ],
        );
        assert_eq!(
            kinds(&found[1]),
            [Behaviour::Interruption, Behaviour::CutOff]
        );
    }

    #[test]
    fn late_customer_segment_reveals_the_interruption_once() {
        // The agent's channel was finalised first; the customer's segment, which started
        // earlier, arrives after it.
        let found = run(
            &voice(),
            &[
                (Role::Agent, "let me stop you there", 3000, 4500),
                (
                    Role::Customer,
                    "I have been waiting on hold for forty minutes already",
                    0,
                    6000,
                ),
                (Role::Customer, "and nobody called me back", 6500, 8000),
            ],
        );
        assert!(kinds(&found[0]).is_empty());
        assert_eq!(kinds(&found[1]), [Behaviour::Interruption]);
        assert_eq!(found[1][0].related_utterance_ids, ["u1"]);
        assert!(kinds(&found[2]).is_empty());
    }

    #[test]
    fn untimed_utterances_have_no_interruptions() {
        let p = voice();
        let mut state = crate::engine::state::State::default();
        let seg = super::super::testing::segment(&p, 0, Role::Agent, "hello", None);
        let placement = state.place(&seg, &p);
        let mut found = Vec::new();
        InterruptionDetector.detect(
            &seg,
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
        assert_eq!(placement, Default::default());
    }
}

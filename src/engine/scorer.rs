//! Scores: metrics → component scores → overall score.
//!
//! Each component computes a raw score in 0–100 from the metrics and an amount of evidence.
//! Confidence is `evidence / (evidence + half)`, where `half` is the evidence at which the
//! rubric says confidence reaches one half. The reported score is shrunk towards the rubric's
//! neutral prior by that confidence, `prior + (raw − prior) × confidence`, so a score does not
//! swing on the first utterances of a call. The overall score is the mean of the components
//! weighted by `weight × confidence`; its confidence is `Σ weight × confidence / Σ weight`.
//! Components without a scorer yet report the prior with confidence 0.

use serde::Deserialize;

use super::detectors::{Behaviour, Detection};
use super::metrics::Metrics;
use super::rubric::Profile;

/// A part of the listening score.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize)]
#[serde(rename_all = "snake_case")]
#[allow(missing_docs)] // named after the rubric's component table
pub enum Component {
    Patience,
    TalkBalance,
    Inquiry,
    Acknowledgement,
    Empathy,
    Understanding,
    CustomerExperience,
}

impl Component {
    /// Every component, in order.
    pub const ALL: [Component; 7] = [
        Component::Patience,
        Component::TalkBalance,
        Component::Inquiry,
        Component::Acknowledgement,
        Component::Empathy,
        Component::Understanding,
        Component::CustomerExperience,
    ];

    /// The rubric's snake_case name.
    pub fn name(self) -> &'static str {
        match self {
            Component::Patience => "patience",
            Component::TalkBalance => "talk_balance",
            Component::Inquiry => "inquiry",
            Component::Acknowledgement => "acknowledgement",
            Component::Empathy => "empathy",
            Component::Understanding => "understanding",
            Component::CustomerExperience => "customer_experience",
        }
    }

    /// Whether a behaviour is evidence for this component.
    pub fn is_fed_by(self, behaviour: Behaviour) -> bool {
        use Behaviour as B;
        match self {
            Component::Patience => matches!(behaviour, B::Interruption | B::CutOff | B::Overtalk),
            Component::TalkBalance => matches!(behaviour, B::Monologue),
            Component::Inquiry => matches!(
                behaviour,
                B::OpenQuestion | B::ClosedQuestion | B::ClarifyingQuestion
            ),
            Component::Acknowledgement => {
                matches!(
                    behaviour,
                    B::Acknowledgement | B::Backchannel | B::Reflection
                )
            }
            Component::Empathy => matches!(behaviour, B::Empathy | B::CustomerEmotion),
            Component::Understanding => matches!(
                behaviour,
                B::Reflection
                    | B::PrematureSolution
                    | B::DismissiveLanguage
                    | B::SentenceCompletion
            ),
            Component::CustomerExperience => matches!(
                behaviour,
                B::CustomerRepeat
                    | B::CustomerEmotion
                    | B::EscalationRequest
                    | B::SideIssue
                    | B::UnansweredQuestion
            ),
        }
    }
}

/// One component's score.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ComponentScore {
    /// Which component.
    pub component: Component,
    /// 0–100.
    pub score: f64,
    /// 0–1.
    pub confidence: f64,
    /// Weight in the overall score.
    pub weight: f64,
}

/// The listening score.
#[derive(Debug, Clone, PartialEq)]
pub struct Score {
    /// Weighted mean of the components, 0–100.
    pub overall: f64,
    /// 0–1.
    pub confidence: f64,
    /// One per component, in `Component::ALL` order.
    pub components: Vec<ComponentScore>,
}

impl Score {
    /// The score of one component.
    pub fn component(&self, component: Component) -> &ComponentScore {
        &self.components[component as usize]
    }
}

/// Raw score in 0–100 and the evidence behind it, in the component's unit.
struct Raw {
    score: f64,
    evidence: f64,
    half: f64,
}

fn patience(profile: &Profile, m: &Metrics) -> Option<Raw> {
    let rules = &profile.scoring.patience;
    let customer_minutes = m.customer_talk_ms as f64 / 60_000.0;
    if m.customer_talk_ms <= 0 {
        return None;
    }
    let minutes = customer_minutes.max(rules.min_minutes);
    let interruptions = f64::from(m.interruptions) + rules.cut_off_extra * f64::from(m.cut_offs);
    // Backchannels under the customer's speech are listening cues, not talking over them.
    let overtalk = (m.overtalk_ms - m.backchannel_overtalk_ms).max(0);
    let overtalk_share = overtalk as f64 / m.customer_talk_ms as f64;
    let score = 100.0
        - rules.interruption_penalty * interruptions / minutes
        - rules.overtalk_penalty * overtalk_share
        - rules.rushed_penalty * f64::from(m.rushed_responses) / minutes;
    Some(Raw {
        score,
        evidence: customer_minutes,
        half: rules.half_confidence_minutes,
    })
}

fn talk_balance(profile: &Profile, m: &Metrics) -> Option<Raw> {
    let rules = &profile.scoring.talk_balance;
    let (agent, customer) = if m.agent_talk_ms + m.customer_talk_ms > 0 {
        (
            m.agent_talk_ms as f64 / 60_000.0,
            m.customer_talk_ms as f64 / 60_000.0,
        )
    } else {
        // No timing (chat, or a transcript without offsets): measure talk in words.
        (
            m.agent_words as f64 / rules.words_per_minute,
            m.customer_words as f64 / rules.words_per_minute,
        )
    };
    let total = agent + customer;
    if total <= 0.0 {
        return None;
    }
    let share = agent / total;
    let mut score = 100.0;
    if share < rules.band_low {
        score -= rules.under_slope * (rules.band_low - share);
    } else if share > rules.band_high {
        score -= rules.over_slope * (share - rules.band_high);
    }
    let over_ms = (m.longest_monologue_ms - profile.timing.monologue_ms).max(0);
    score -=
        (rules.monologue_penalty_per_s * over_ms as f64 / 1000.0).min(rules.monologue_penalty_cap);
    Some(Raw {
        score,
        evidence: total,
        half: rules.half_confidence_minutes,
    })
}

/// How much each counted fault weighs after `turns` turns of the party it is counted against:
/// 1 up to `scoring.fault_turns`, then `fault_turns / turns` (faults are a rate in a long call).
fn fault_weight(profile: &Profile, turns: u32) -> f64 {
    let reference = profile.scoring.fault_turns;
    reference / f64::from(turns).max(reference)
}

fn inquiry(profile: &Profile, m: &Metrics) -> Option<Raw> {
    let r = &profile.scoring.inquiry;
    let questions = f64::from(m.questions);
    if m.questions == 0 {
        // Asking nothing is poor inquiry, once the agent has said enough to have asked.
        let turns = f64::from(m.agent_turns);
        return (turns >= r.no_question_turns).then_some(Raw {
            score: r.no_question_score,
            evidence: turns / r.no_question_turns,
            half: 1.0,
        });
    }
    let open_share =
        f64::from(m.open_questions + m.clarifying_questions).min(questions) / questions;
    let faults = r.premature_penalty * f64::from(m.premature_solutions)
        + r.streak_penalty * f64::from(m.closed_question_streaks);
    let score = r.base + r.open_points * open_share - faults * fault_weight(profile, m.agent_turns);
    Some(Raw {
        score,
        evidence: questions,
        half: r.half_confidence_questions,
    })
}

fn acknowledgement(profile: &Profile, m: &Metrics) -> Option<Raw> {
    let r = &profile.scoring.acknowledgement;
    if m.long_customer_turns == 0 {
        return None;
    }
    let turns = f64::from(m.long_customer_turns);
    let score = 100.0 * f64::from(m.long_turns_acknowledged).min(turns) / turns;
    Some(Raw {
        score,
        evidence: turns,
        half: r.half_confidence_turns,
    })
}

fn empathy(profile: &Profile, m: &Metrics) -> Option<Raw> {
    let r = &profile.scoring.empathy;
    if m.emotion_episodes == 0 {
        return (m.empathy > 0).then(|| Raw {
            score: r.unprompted_score,
            evidence: 0.5 * f64::from(m.empathy),
            half: r.half_confidence_episodes,
        });
    }
    let episodes = f64::from(m.emotion_episodes);
    let answered =
        f64::from(m.emotion_answered) + r.reflection_credit * f64::from(m.emotion_reflected);
    let score = 100.0 * answered.min(episodes) / episodes;
    Some(Raw {
        score,
        evidence: episodes,
        half: r.half_confidence_episodes,
    })
}

fn understanding(profile: &Profile, m: &Metrics) -> Option<Raw> {
    let r = &profile.scoring.understanding;
    if m.agent_turns == 0 {
        return None;
    }
    // Two reflections earn the full points early in a call; later, one per
    // `1 / reflections_per_question` questions as well.
    let wanted = (f64::from(m.questions) * r.reflections_per_question).max(2.0);
    let faults = r.premature_penalty * f64::from(m.premature_solutions)
        + r.dismissive_penalty * f64::from(m.dismissive)
        + r.completion_penalty * f64::from(m.sentence_completions);
    let score = r.base + 2.0 * r.reflection_bonus * (f64::from(m.reflections) / wanted).min(1.0)
        - faults * fault_weight(profile, m.agent_turns);
    Some(Raw {
        score,
        evidence: f64::from(m.agent_turns),
        half: r.half_confidence_agent_turns,
    })
}

fn customer_experience(profile: &Profile, m: &Metrics, frustration: f64) -> Option<Raw> {
    let r = &profile.scoring.customer_experience;
    if m.customer_turns == 0 {
        return None;
    }
    let faults = r.repeat_penalty * f64::from(m.customer_repeats)
        + r.escalation_penalty * f64::from(m.escalation_requests)
        + r.unanswered_penalty * f64::from(m.unanswered_questions)
        + r.dropped_side_issue_penalty * f64::from(m.side_issues_dropped);
    let score = 100.0
        - faults * fault_weight(profile, m.customer_turns)
        - r.frustration_penalty * frustration;
    Some(Raw {
        score,
        evidence: f64::from(m.customer_turns),
        half: r.half_confidence_customer_turns,
    })
}

fn raw_score(
    component: Component,
    profile: &Profile,
    metrics: &Metrics,
    frustration: f64,
) -> Option<Raw> {
    match component {
        Component::Patience => patience(profile, metrics),
        Component::TalkBalance => talk_balance(profile, metrics),
        Component::Inquiry => inquiry(profile, metrics),
        Component::Acknowledgement => acknowledgement(profile, metrics),
        Component::Empathy => empathy(profile, metrics),
        Component::Understanding => understanding(profile, metrics),
        Component::CustomerExperience => customer_experience(profile, metrics, frustration),
    }
}

/// Scores a conversation's metrics (without the customer's mood).
pub(crate) fn score(profile: &Profile, metrics: &Metrics) -> Score {
    score_with_mood(profile, metrics, 0.0)
}

/// Scores a conversation's metrics and the customer's frustration (0–1).
pub fn score_with_mood(profile: &Profile, metrics: &Metrics, frustration: f64) -> Score {
    let prior = profile.scoring.prior;
    let components: Vec<ComponentScore> = Component::ALL
        .iter()
        .map(|&component| {
            let weight = profile.weight(component);
            match raw_score(component, profile, metrics, frustration) {
                Some(raw) => {
                    let evidence = raw.evidence.max(0.0);
                    let confidence = evidence / (evidence + raw.half);
                    let raw_score = raw.score.clamp(0.0, 100.0);
                    ComponentScore {
                        component,
                        score: prior + (raw_score - prior) * confidence,
                        confidence,
                        weight,
                    }
                }
                None => ComponentScore {
                    component,
                    score: prior,
                    confidence: 0.0,
                    weight,
                },
            }
        })
        .collect();
    let total_weight: f64 = components.iter().map(|c| c.weight).sum();
    let evidence_weight: f64 = components.iter().map(|c| c.weight * c.confidence).sum();
    let overall = if evidence_weight > 0.0 {
        components
            .iter()
            .map(|c| c.weight * c.confidence * c.score)
            .sum::<f64>()
            / evidence_weight
    } else {
        prior
    };
    let confidence = if total_weight > 0.0 {
        evidence_weight / total_weight
    } else {
        0.0
    };
    Score {
        overall,
        confidence,
        components,
    }
}

/// What moved each component between `before` and `after`: the behaviours of this update that
/// feed it (the change split evenly), or no behaviour when none does (talk time, evidence
/// growing, earlier faults weighing less as the call grows).
pub(crate) fn explain(
    before: &Score,
    after: &Score,
    found: &[Detection],
    utterance_id: &str,
) -> Vec<super::Contribution> {
    const NOTICEABLE: f64 = 0.01;
    let mut out = Vec::new();
    for (b, a) in before.components.iter().zip(&after.components) {
        let delta = a.score - b.score;
        if delta.abs() < NOTICEABLE {
            continue;
        }
        let mut causes: Vec<Behaviour> = found
            .iter()
            .map(|d| d.behaviour)
            .filter(|x| a.component.is_fed_by(*x))
            .collect();
        causes.dedup();
        if causes.is_empty() {
            out.push(super::Contribution {
                component: a.component,
                behaviour: None,
                delta,
                utterance_id: utterance_id.to_owned(),
            });
        } else {
            let share = delta / causes.len() as f64;
            out.extend(causes.into_iter().map(|behaviour| super::Contribution {
                component: a.component,
                behaviour: Some(behaviour),
                delta: share,
                utterance_id: utterance_id.to_owned(),
            }));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::Rubric;

    fn voice() -> std::sync::Arc<Profile> {
        Rubric::embedded().profile("voice").unwrap()
    }

    #[test]
    fn open_questions_empathy_and_reflection_raise_their_components() {
        let p = voice();
        let base = Metrics {
            agent_turns: 12,
            customer_turns: 10,
            questions: 4,
            long_customer_turns: 3,
            emotion_episodes: 2,
            ..Default::default()
        };
        let good = Metrics {
            open_questions: 3,
            clarifying_questions: 1,
            long_turns_acknowledged: 3,
            emotion_answered: 2,
            reflections: 2,
            ..base.clone()
        };
        let poor = Metrics {
            closed_questions: 4,
            premature_solutions: 2,
            dismissive: 1,
            customer_repeats: 2,
            escalation_requests: 1,
            ..base.clone()
        };
        let (g, b) = (score(&p, &good), score(&p, &poor));
        for c in [
            Component::Inquiry,
            Component::Acknowledgement,
            Component::Empathy,
            Component::Understanding,
            Component::CustomerExperience,
        ] {
            assert!(
                g.component(c).score > b.component(c).score + 10.0,
                "{c:?}: {} vs {}",
                g.component(c).score,
                b.component(c).score
            );
            assert!(g.component(c).confidence > 0.3);
        }
        assert!(g.overall > b.overall + 15.0);
    }

    #[test]
    fn no_evidence_gives_the_prior_with_zero_confidence() {
        let s = score(&voice(), &Metrics::default());
        assert_eq!(s.overall, 70.0);
        assert_eq!(s.confidence, 0.0);
        assert!(
            s.components
                .iter()
                .all(|c| c.score == 70.0 && c.confidence == 0.0)
        );
    }

    #[test]
    fn interruptions_lower_patience_more_as_evidence_grows() {
        let p = voice();
        let calm = Metrics {
            customer_talk_ms: 120_000,
            agent_talk_ms: 90_000,
            ..Default::default()
        };
        let rude = Metrics {
            interruptions: 4,
            cut_offs: 2,
            ..calm.clone()
        };
        let (calm_s, rude_s) = (score(&p, &calm), score(&p, &rude));
        let patience = |s: &Score| s.component(Component::Patience).score;
        assert!(patience(&calm_s) > 85.0, "{}", patience(&calm_s));
        assert!(patience(&rude_s) < 40.0, "{}", patience(&rude_s));
        assert!(calm_s.overall > rude_s.overall);
        // Early in a call the same interruption moves the score less.
        let early = Metrics {
            customer_talk_ms: 10_000,
            interruptions: 1,
            ..Default::default()
        };
        let early_s = score(&p, &early);
        assert!(
            patience(&early_s) > 60.0 && early_s.confidence < 0.1,
            "{early_s:?}"
        );
    }

    #[test]
    fn talk_balance_rewards_the_band_and_punishes_domination() {
        let p = voice();
        let balanced = Metrics {
            agent_talk_ms: 80_000,
            customer_talk_ms: 120_000,
            ..Default::default()
        };
        let dominant = Metrics {
            agent_talk_ms: 180_000,
            customer_talk_ms: 20_000,
            longest_monologue_ms: 90_000,
            ..Default::default()
        };
        let tb = |m: &Metrics| score(&p, m).component(Component::TalkBalance).score;
        assert!(tb(&balanced) > 90.0, "{}", tb(&balanced));
        assert!(tb(&dominant) < 20.0, "{}", tb(&dominant));
    }

    #[test]
    fn without_timing_talk_balance_uses_words() {
        let m = Metrics {
            agent_words: 900,
            customer_words: 100,
            ..Default::default()
        };
        let s = score(&voice(), &m);
        assert!(s.component(Component::TalkBalance).confidence > 0.5);
        assert!(s.component(Component::TalkBalance).score < 40.0);
    }

    #[test]
    fn faults_are_a_rate_so_a_long_call_is_not_marked_down_for_its_length() {
        let p = voice();
        let raw = |c: Component, m: &Metrics| raw_score(c, &p, m, 0.0).unwrap().score;
        let short = Metrics {
            agent_turns: 20,
            customer_turns: 20,
            questions: 6,
            open_questions: 3,
            reflections: 3,
            premature_solutions: 1,
            dismissive: 1,
            sentence_completions: 1,
            closed_question_streaks: 1,
            customer_repeats: 1,
            unanswered_questions: 1,
            ..Default::default()
        };
        // The same call three times over: three times the turns and the faults.
        let long = Metrics {
            agent_turns: 60,
            customer_turns: 60,
            questions: 18,
            open_questions: 9,
            reflections: 9,
            premature_solutions: 3,
            dismissive: 3,
            sentence_completions: 3,
            closed_question_streaks: 3,
            customer_repeats: 3,
            unanswered_questions: 3,
            ..Default::default()
        };
        for c in [
            Component::Inquiry,
            Component::Understanding,
            Component::CustomerExperience,
        ] {
            assert!((raw(c, &short) - raw(c, &long)).abs() < 1e-9, "{c:?}");
        }
        // Within `fault_turns` each fault costs its whole penalty, as before.
        let r = &p.scoring.understanding;
        assert_eq!(
            raw(Component::Understanding, &short),
            r.base + 2.0 * r.reflection_bonus
                - r.premature_penalty
                - r.dismissive_penalty
                - r.completion_penalty
        );
        // And more faults in the same call still cost more.
        let worse = Metrics {
            dismissive: 4,
            ..long.clone()
        };
        assert!(raw(Component::Understanding, &worse) < raw(Component::Understanding, &long));
    }
}

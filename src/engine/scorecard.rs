//! The end-of-conversation summary: final score and metrics, every alert, the agent's
//! strengths and the most useful coaching points, each tied to evidence.

use super::alerts::{Alert, AlertKind};
use super::event::EndReason;
use super::metrics::Metrics;
use super::rubric::Profile;
use super::scorer::{Component, Score};

/// Coaching points given at most.
pub(crate) const MAX_COACHING_POINTS: usize = 3;
/// A component needs at least this confidence to count as a strength or a weakness.
const MIN_CONFIDENCE: f64 = 0.25;
/// Scores at or above this are strengths.
const STRENGTH_AT: f64 = 80.0;
/// Scores below this are coaching points.
const COACH_BELOW: f64 = 65.0;
/// Evidence utterances given per point.
const MAX_EVIDENCE: usize = 5;

/// One thing to keep doing or to change.
#[derive(Debug, Clone, PartialEq)]
pub struct CoachingPoint {
    /// The component it is about.
    pub component: Component,
    /// What to keep doing or change.
    pub text: String,
    /// Utterances that show it.
    pub evidence_utterance_ids: Vec<String>,
}

/// The summary of a finished conversation.
#[derive(Debug, Clone, PartialEq)]
pub struct Scorecard {
    /// Final score.
    pub score: Score,
    /// Final metrics.
    pub metrics: Metrics,
    /// Every alert raised, in order.
    pub alerts: Vec<Alert>,
    /// What went well.
    pub strengths: Vec<CoachingPoint>,
    /// What to change, most important first.
    pub coaching: Vec<CoachingPoint>,
    /// How it ended.
    pub end_reason: EndReason,
    /// Offset of the end, in milliseconds.
    pub duration_ms: i64,
    /// The rubric profile used.
    pub rubric_profile: String,
}

/// The component an alert kind is evidence about.
pub(crate) fn component_of(kind: AlertKind) -> Option<Component> {
    Some(match kind {
        AlertKind::Interruption | AlertKind::Overtalk => Component::Patience,
        AlertKind::LongMonologue | AlertKind::FastSpeech => Component::TalkBalance,
        AlertKind::ClosedQuestionStreak => Component::Inquiry,
        AlertKind::EmpathyMissed => Component::Empathy,
        AlertKind::PrematureSolution | AlertKind::DismissiveLanguage => Component::Understanding,
        AlertKind::CustomerRepeating
        | AlertKind::FrustrationRising
        | AlertKind::EscalationRisk
        | AlertKind::UnansweredQuestion
        | AlertKind::SideIssueDropped => Component::CustomerExperience,
        AlertKind::DeadAir => return None,
    })
}

/// Builds the scorecard.
pub(crate) fn build(
    profile: &Profile,
    score: Score,
    metrics: Metrics,
    alerts: Vec<Alert>,
    end_reason: EndReason,
    duration_ms: i64,
) -> Scorecard {
    let evidence = |component: Component| -> Vec<String> {
        let mut ids: Vec<String> = alerts
            .iter()
            .filter(|a| component_of(a.kind) == Some(component))
            .flat_map(|a| a.evidence_utterance_ids.iter().cloned())
            .collect();
        ids.dedup();
        ids.truncate(MAX_EVIDENCE);
        ids
    };
    let mut strengths = Vec::new();
    let mut weaknesses = Vec::new();
    for c in &score.components {
        if c.confidence < MIN_CONFIDENCE || c.weight <= 0.0 {
            continue;
        }
        let text = &profile.coaching[&c.component];
        // A component the call raised alerts about is never praised, whatever its score.
        let alerted = alerts
            .iter()
            .any(|a| component_of(a.kind) == Some(c.component));
        if c.score >= STRENGTH_AT && !alerted {
            strengths.push(CoachingPoint {
                component: c.component,
                text: text.strength.clone(),
                evidence_utterance_ids: Vec::new(),
            });
        } else if c.score < COACH_BELOW {
            let impact = c.weight * (100.0 - c.score);
            weaknesses.push((
                impact,
                CoachingPoint {
                    component: c.component,
                    text: text.improve.clone(),
                    evidence_utterance_ids: evidence(c.component),
                },
            ));
        }
    }
    weaknesses.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.component.cmp(&b.1.component)));
    let coaching = weaknesses
        .into_iter()
        .take(MAX_COACHING_POINTS)
        .map(|(_, p)| p)
        .collect();
    Scorecard {
        score,
        metrics,
        alerts,
        strengths,
        coaching,
        end_reason,
        duration_ms,
        rubric_profile: profile.name.clone(),
    }
}

//! Alert policy: which detections become alerts, with severities that escalate on repetition
//! and per-kind cool-downs in conversation time (or in utterances when there is no timing).

use serde::Deserialize;

use super::detectors::{Behaviour, Detection};
use super::event::Role;
use super::followups::FollowUp;
use super::rubric::Profile;

/// What an alert is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize)]
#[serde(rename_all = "snake_case")]
#[allow(missing_docs)] // named after the rubric's alert table
pub enum AlertKind {
    Interruption,
    Overtalk,
    LongMonologue,
    DeadAir,
    CustomerRepeating,
    EmpathyMissed,
    FrustrationRising,
    EscalationRisk,
    PrematureSolution,
    ClosedQuestionStreak,
    UnansweredQuestion,
    SideIssueDropped,
    FastSpeech,
    DismissiveLanguage,
}

impl AlertKind {
    /// Every kind, in declaration order.
    pub const ALL: [AlertKind; 14] = [
        AlertKind::Interruption,
        AlertKind::Overtalk,
        AlertKind::LongMonologue,
        AlertKind::DeadAir,
        AlertKind::CustomerRepeating,
        AlertKind::EmpathyMissed,
        AlertKind::FrustrationRising,
        AlertKind::EscalationRisk,
        AlertKind::PrematureSolution,
        AlertKind::ClosedQuestionStreak,
        AlertKind::UnansweredQuestion,
        AlertKind::SideIssueDropped,
        AlertKind::FastSpeech,
        AlertKind::DismissiveLanguage,
    ];

    /// The rubric's snake_case name.
    pub fn name(self) -> &'static str {
        match self {
            AlertKind::Interruption => "interruption",
            AlertKind::Overtalk => "overtalk",
            AlertKind::LongMonologue => "long_monologue",
            AlertKind::DeadAir => "dead_air",
            AlertKind::CustomerRepeating => "customer_repeating",
            AlertKind::EmpathyMissed => "empathy_missed",
            AlertKind::FrustrationRising => "frustration_rising",
            AlertKind::EscalationRisk => "escalation_risk",
            AlertKind::PrematureSolution => "premature_solution",
            AlertKind::ClosedQuestionStreak => "closed_question_streak",
            AlertKind::UnansweredQuestion => "unanswered_question",
            AlertKind::SideIssueDropped => "side_issue_dropped",
            AlertKind::FastSpeech => "fast_speech",
            AlertKind::DismissiveLanguage => "dismissive_language",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// How urgent an alert is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// Worth knowing.
    Info,
    /// Worth acting on.
    Warning,
    /// Act now.
    Critical,
}

impl Severity {
    /// Lower-case name.
    pub fn name(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Critical => "critical",
        }
    }
}

/// An alert raised in a conversation.
#[derive(Debug, Clone, PartialEq)]
pub struct Alert {
    /// `<kind>-<n>`, unique in the conversation and deterministic.
    pub alert_id: String,
    /// What it is about.
    pub kind: AlertKind,
    /// How urgent.
    pub severity: Severity,
    /// One line, no transcript text.
    pub message: String,
    /// What to do.
    pub coaching_tip: String,
    /// Utterances that show it.
    pub evidence_utterance_ids: Vec<String>,
    /// Conversation offset, in milliseconds (0 without timing).
    pub offset_ms: i64,
}

/// Where a conversation stands on each alert kind.
#[derive(Debug, Clone, Default)]
pub(crate) struct AlertPolicy {
    /// Per kind: offset (ms) and utterance ordinal of the last alert raised, and its severity.
    last: [Option<(i64, u32, Severity)>; AlertKind::ALL.len()],
    /// Per kind: occurrences seen (raised or suppressed).
    occurrences: [u32; AlertKind::ALL.len()],
    /// Per kind: alerts raised.
    raised: [u32; AlertKind::ALL.len()],
}

/// Without timing, the cool-down is counted in utterances: one per this many milliseconds.
const UNTIMED_MS_PER_UTTERANCE: i64 = 5_000;

fn ordinal_suffix(n: u32) -> &'static str {
    match (n % 10, n % 100) {
        (_, 11..=13) => "th",
        (1, _) => "st",
        (2, _) => "nd",
        (3, _) => "rd",
        _ => "th",
    }
}

impl AlertPolicy {
    /// Records an occurrence of `kind` and returns the alert to raise, if the cool-down allows,
    /// as the compact record a conversation keeps ([`KeptAlert::alert`] gives it in full).
    /// `offset_ms` is `None` when the evidence has no timing; `ordinal` is the utterance's
    /// position in the conversation.
    pub(crate) fn occur(
        &mut self,
        profile: &Profile,
        kind: AlertKind,
        offset_ms: Option<i64>,
        ordinal: u32,
        evidence_utterance_ids: Vec<String>,
    ) -> Option<KeptAlert> {
        let i = kind.index();
        let rule = profile.alert(kind);
        self.occurrences[i] += 1;
        let occurrences = self.occurrences[i];
        let severity = if rule.critical_after > 0 && occurrences >= rule.critical_after {
            Severity::Critical
        } else {
            rule.severity
        };
        if let Some((last_offset, last_ordinal, last_severity)) = self.last[i] {
            let cooling = match offset_ms {
                Some(offset) => offset - last_offset < rule.cooldown_ms,
                None => {
                    i64::from(ordinal - last_ordinal.min(ordinal)) * UNTIMED_MS_PER_UTTERANCE
                        < rule.cooldown_ms
                }
            };
            // An escalation in severity is always raised, cool-down or not.
            if cooling && severity <= last_severity {
                return None;
            }
        }
        let offset = offset_ms.unwrap_or(0);
        self.last[i] = Some((offset, ordinal, severity));
        self.raised[i] += 1;
        Some(KeptAlert {
            facts: Facts {
                kind,
                severity,
                number: self.raised[i],
                occurrences,
                offset_ms: offset,
            },
            evidence_utterance_ids,
        })
    }
}

/// An alert the policy let through: the facts, without the texts that the profile can give
/// again ([`KeptAlert::alert`] gives it in full).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct KeptAlert {
    facts: Facts,
    evidence_utterance_ids: Vec<String>,
}

impl KeptAlert {
    /// The alert in full, with the texts of `profile` (the profile it was raised under).
    pub(crate) fn alert(&self, profile: &Profile) -> Alert {
        self.facts
            .alert(profile, self.evidence_utterance_ids.clone())
    }
}

/// What an alert is, besides its evidence.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Facts {
    kind: AlertKind,
    severity: Severity,
    /// How many alerts of this kind were raised, this one included.
    number: u32,
    /// How many times the behaviour occurred, raised or not, this one included.
    occurrences: u32,
    offset_ms: i64,
}

impl Facts {
    fn alert(&self, profile: &Profile, evidence_utterance_ids: Vec<String>) -> Alert {
        let rule = profile.alert(self.kind);
        let message = if self.occurrences > 1 {
            format!(
                "{} ({}{} time this call)",
                rule.message,
                self.occurrences,
                ordinal_suffix(self.occurrences)
            )
        } else {
            rule.message.clone()
        };
        Alert {
            alert_id: format!("{}-{}", self.kind.name(), self.number),
            kind: self.kind,
            severity: self.severity,
            message,
            coaching_tip: rule.tip.clone(),
            evidence_utterance_ids,
            offset_ms: self.offset_ms,
        }
    }
}

/// The alerts a conversation keeps for its scorecard, at most `MAX_ALERTS_KEPT`. A long call
/// raises hundreds, so each is its facts, the evidence ids of all of them share one buffer, and
/// the buffers grow by an eighth rather than doubling (one record per alert with its own list
/// of strings, in doubling vectors, cost ~160 bytes an alert: the largest part of a long call's
/// memory after the history).
#[derive(Debug, Clone, Default)]
pub(crate) struct AlertLog {
    facts: Vec<Facts>,
    /// For each alert, how many evidence ids were kept up to and including its own.
    ids_so_far: Vec<u32>,
    /// Every kept alert's evidence ids, back to back (UTF-8).
    ids: Vec<u8>,
    /// Where each id ends in `ids`.
    ends: Vec<u32>,
}

/// Room for `extra` more items in a buffer that grows by an eighth at a time.
fn room<T>(v: &mut Vec<T>, extra: usize) {
    if v.capacity() - v.len() < extra {
        v.reserve_exact(extra.max(v.len() / 8 + 4));
    }
}

/// A length or offset in the log's buffers (at most `MAX_ALERTS_KEPT` alerts of ids within the
/// id limit: far below `u32::MAX`).
fn index(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

impl AlertLog {
    /// Keeps `alert` unless `MAX_ALERTS_KEPT` are kept already (later ones are still emitted
    /// live, and counted in the metrics).
    pub(crate) fn keep(&mut self, alert: &KeptAlert) {
        if self.facts.len() >= super::MAX_ALERTS_KEPT {
            return;
        }
        let ids = &alert.evidence_utterance_ids;
        room(&mut self.ids, ids.iter().map(String::len).sum());
        room(&mut self.ends, ids.len());
        for id in ids {
            self.ids.extend_from_slice(id.as_bytes());
            self.ends.push(index(self.ids.len()));
        }
        room(&mut self.facts, 1);
        room(&mut self.ids_so_far, 1);
        self.facts.push(alert.facts);
        self.ids_so_far.push(index(self.ends.len()));
    }

    /// Every kept alert in full, in the order raised, with the texts of `profile`.
    pub(crate) fn alerts(&self, profile: &Profile) -> Vec<Alert> {
        let (mut first_id, mut start) = (0, 0);
        self.facts
            .iter()
            .zip(&self.ids_so_far)
            .map(|(facts, &ids_so_far)| {
                let evidence = self.ends[first_id..ids_so_far as usize]
                    .iter()
                    .map(|&end| {
                        let id = String::from_utf8_lossy(&self.ids[start..end as usize]);
                        start = end as usize;
                        id.into_owned()
                    })
                    .collect();
                first_id = ids_so_far as usize;
                facts.alert(profile, evidence)
            })
            .collect()
    }
}

impl AlertKind {
    /// The alert a behaviour calls for, if any.
    pub(crate) fn for_behaviour(behaviour: Behaviour) -> Option<AlertKind> {
        Some(match behaviour {
            Behaviour::Interruption | Behaviour::CutOff => AlertKind::Interruption,
            Behaviour::Overtalk => AlertKind::Overtalk,
            Behaviour::Monologue => AlertKind::LongMonologue,
            Behaviour::DeadAir => AlertKind::DeadAir,
            Behaviour::FastSpeech => AlertKind::FastSpeech,
            Behaviour::CustomerRepeat => AlertKind::CustomerRepeating,
            Behaviour::EscalationRequest => AlertKind::EscalationRisk,
            Behaviour::PrematureSolution => AlertKind::PrematureSolution,
            Behaviour::UnansweredQuestion => AlertKind::UnansweredQuestion,
            Behaviour::DismissiveLanguage => AlertKind::DismissiveLanguage,
            _ => return None,
        })
    }
}

impl FollowUp {
    /// The alert a follow-up that fell due calls for, with its evidence: the utterance that
    /// revealed it (`current`, none at the end of the call) and the one it is about.
    pub(crate) fn into_alert(self, current: Option<&str>) -> (AlertKind, Vec<String>) {
        let with = |other: String| {
            current
                .map(str::to_owned)
                .into_iter()
                .chain([other])
                .collect()
        };
        match self {
            FollowUp::UnansweredQuestion { question } => {
                (AlertKind::UnansweredQuestion, with(question))
            }
            FollowUp::EmpathyMissed { emotion } => (AlertKind::EmpathyMissed, with(emotion)),
            FollowUp::SideIssueDropped { side_issue } => {
                (AlertKind::SideIssueDropped, with(side_issue))
            }
            FollowUp::ClosedQuestionStreak { questions } => {
                (AlertKind::ClosedQuestionStreak, questions)
            }
            FollowUp::FrustrationRising { latest } => (AlertKind::FrustrationRising, vec![latest]),
        }
    }
}

/// The alerts a turn of `role` calls for: one per kind its detections map to (an agent's or
/// customer's turn only), then one per follow-up that fell due (an unanswered question is also
/// a detection of this turn).
pub(crate) fn due(
    found: &mut Vec<Detection>,
    follow_ups: Vec<FollowUp>,
    utterance_id: &str,
    role: Role,
) -> Vec<(AlertKind, Vec<String>)> {
    let mut out: Vec<(AlertKind, Vec<String>)> = Vec::new();
    if role == Role::Agent || role == Role::Customer {
        for d in found.iter() {
            let Some(kind) = AlertKind::for_behaviour(d.behaviour) else {
                continue;
            };
            if out.iter().any(|(k, _)| *k == kind) {
                continue;
            }
            let mut evidence = vec![utterance_id.to_owned()];
            evidence.extend(
                d.related_utterance_ids
                    .iter()
                    .filter(|r| *r != utterance_id)
                    .cloned(),
            );
            out.push((kind, evidence));
        }
    }
    for f in follow_ups {
        if let FollowUp::UnansweredQuestion { question } = &f {
            found.push(Detection::timing(
                Behaviour::UnansweredQuestion,
                0.7,
                0,
                vec![question.clone()],
            ));
        }
        out.push(f.into_alert(Some(utterance_id)));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::Rubric;

    #[test]
    fn cool_down_suppresses_repeats_but_not_escalation() {
        let profile = Rubric::embedded().profile("voice").unwrap();
        let mut policy = AlertPolicy::default();
        let first = policy
            .occur(
                &profile,
                AlertKind::Interruption,
                Some(1_000),
                1,
                vec!["u1".into()],
            )
            .unwrap()
            .alert(&profile);
        assert_eq!(
            (first.alert_id.as_str(), first.severity),
            ("interruption-1", Severity::Warning)
        );
        assert!(
            policy
                .occur(&profile, AlertKind::Interruption, Some(2_000), 2, vec![])
                .is_none()
        );
        let third = policy
            .occur(&profile, AlertKind::Interruption, Some(3_000), 3, vec![])
            .unwrap()
            .alert(&profile);
        assert_eq!(
            third.severity,
            Severity::Critical,
            "third interruption escalates through the cool-down"
        );
        assert!(third.message.contains("3rd"), "{}", third.message);
        assert!(
            policy
                .occur(&profile, AlertKind::Interruption, Some(4_000), 4, vec![])
                .is_none()
        );
        let later = policy
            .occur(&profile, AlertKind::Interruption, Some(40_000), 5, vec![])
            .unwrap()
            .alert(&profile);
        assert_eq!(later.alert_id, "interruption-3");
    }

    #[test]
    fn untimed_cool_down_counts_utterances() {
        let profile = Rubric::embedded().profile("voice").unwrap();
        let mut policy = AlertPolicy::default();
        assert!(
            policy
                .occur(&profile, AlertKind::Overtalk, None, 1, vec![])
                .is_some()
        );
        assert!(
            policy
                .occur(&profile, AlertKind::Overtalk, None, 3, vec![])
                .is_none()
        );
        assert!(
            policy
                .occur(&profile, AlertKind::Overtalk, None, 7, vec![])
                .is_some()
        );
    }

    #[test]
    fn ordinal_suffixes() {
        let s: Vec<_> = [1, 2, 3, 4, 11, 12, 13, 21, 22, 111]
            .iter()
            .map(|n| ordinal_suffix(*n))
            .collect();
        assert_eq!(
            s,
            ["st", "nd", "rd", "th", "th", "th", "th", "st", "nd", "th"]
        );
    }

    #[test]
    fn the_log_gives_back_every_kept_alert_as_raised_up_to_its_cap() {
        let profile = Rubric::embedded().profile("voice").unwrap();
        let mut policy = AlertPolicy::default();
        let mut log = AlertLog::default();
        let mut raised = Vec::new();
        // Evidence lists of every length, none included, ids of different lengths, far apart in
        // time so that no cool-down holds one back.
        for i in 0..super::super::MAX_ALERTS_KEPT as i64 + 5 {
            let ids: Vec<String> = (0..i % 4)
                .map(|j| format!("u{i}-{}", "x".repeat(j as usize)))
                .collect();
            let kind = AlertKind::ALL[i as usize % AlertKind::ALL.len()];
            let kept = policy
                .occur(&profile, kind, Some(i * 10_000_000), i as u32 + 1, ids)
                .expect("no cool-down this far apart");
            log.keep(&kept);
            raised.push(kept.alert(&profile));
        }
        let kept = log.alerts(&profile);
        assert_eq!(kept.len(), super::super::MAX_ALERTS_KEPT);
        assert_eq!(kept, raised[..super::super::MAX_ALERTS_KEPT]);
        assert!(kept.iter().any(|a| a.evidence_utterance_ids.is_empty()));
        assert!(kept.iter().any(|a| a.evidence_utterance_ids.len() == 3));
    }
}

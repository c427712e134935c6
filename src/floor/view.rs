//! What the floor page shows, as it is serialised: rows, a conversation's view, the alert feed.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::SystemTime;

use serde::Serialize;

use super::{
    COMPONENTS, EVIDENCE_BYTES,
    call::{Pending, bounded},
};
use crate::proto::WireName as _;
use crate::proto::v1::{Behaviour, Component, ScoreUpdate};

pub(super) fn epoch_ms(t: SystemTime) -> i64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// A conversation on the floor, as a row (`GET /api/floor`, the `rows` event).
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    /// The floor's key for the conversation (unique in the process; `conversation_id` may repeat
    /// across streams and tenants).
    pub key: u64,
    /// The client's conversation id.
    pub conversation_id: Arc<str>,
    /// `metadata.agent` (or `agent_id`, `agent_name`, `agentId`) of the start; empty if none.
    pub agent: Arc<str>,
    /// `metadata.queue` (or `queue_name`, `queueName`, `skill`) of the start; empty if none.
    pub queue: Arc<str>,
    /// `VOICE`, `CHAT` or `UNSPECIFIED`.
    pub channel: &'static str,
    /// The rubric profile it was opened with (empty: the default).
    pub profile: Arc<str>,
    /// When it opened (ms since the Unix epoch, server clock).
    pub opened_at_ms: i64,
    /// The latest call time heard, ms from the conversation's start.
    pub offset_ms: i64,
    /// `live` or `ended`.
    pub state: &'static str,
    /// `completed`, `abandoned` or `freed` (its stream went away) once ended.
    pub end_reason: Option<&'static str>,
    /// The latest score; `None` before the first.
    pub score: Option<ScoreView>,
    /// The customer's state, once known.
    pub customer: Option<CustomerView>,
    /// The latest overall scores, oldest first.
    pub trend: Vec<f64>,
    /// The latest alert.
    pub latest_alert: Option<Arc<FeedAlert>>,
    /// Alerts raised so far.
    pub alert_count: u64,
    /// Each alert kind raised so far, with the highest severity it was raised at.
    pub alert_kinds: BTreeMap<&'static str, &'static str>,
    /// Final utterances scored so far.
    pub utterance_count: u64,
}

/// A score: overall and per component (0–100), with confidences (0–1).
#[derive(Debug, Clone, Serialize)]
pub struct ScoreView {
    /// Overall score.
    pub overall: f64,
    /// Confidence of the overall score.
    pub confidence: f64,
    /// Per component, in [`COMPONENTS`] order: name, score, confidence.
    pub components: [ComponentView; 7],
}

/// One component's score.
#[derive(Debug, Clone, Serialize)]
pub struct ComponentView {
    /// One of [`COMPONENTS`].
    pub component: &'static str,
    /// 0–100.
    pub score: f64,
    /// 0–1; 0 means no evidence yet.
    pub confidence: f64,
}

/// The customer's state.
#[derive(Debug, Clone, Serialize)]
pub struct CustomerView {
    /// -1 (negative) to 1 (positive).
    pub sentiment: f64,
    /// 0 to 1.
    pub frustration: f64,
    /// `improving`, `steady`, `worsening` or `unspecified`.
    pub trend: &'static str,
}

/// A point of a conversation's score history.
#[derive(Debug, Clone, Serialize)]
pub struct Point {
    /// The utterance the score followed.
    pub utterance_id: Arc<str>,
    /// Call time, ms from the start (the latest heard).
    pub offset_ms: i64,
    /// Overall score.
    pub overall: f64,
    /// Component scores in [`COMPONENTS`] order.
    pub components: [f64; 7],
}

/// An utterance of a conversation's view: who spoke, what was found in it.
#[derive(Debug, Clone, Serialize)]
pub struct UtteranceView {
    /// The client's utterance id.
    pub utterance_id: Arc<str>,
    /// `agent`, `customer`, `other` or `unknown`.
    pub role: &'static str,
    /// Start (or end) in ms from the conversation's start, when timed.
    pub offset_ms: Option<i64>,
    /// The text, masked by the redactor (cut to [`crate::floor::TEXT_BYTES`]); only with `--ui-show-text`,
    /// and only for the latest `--ui-text-utterances` utterances.
    pub text: Option<String>,
    /// Behaviours found in it.
    pub behaviours: Vec<BehaviourView>,
}

/// A behaviour found in an utterance.
#[derive(Debug, Clone, Serialize)]
pub struct BehaviourView {
    /// Lower-case behaviour name (`interruption`, `open_question`, …).
    pub behaviour: &'static str,
    /// 0–1.
    pub confidence: f32,
    /// The words that carry it, masked by the redactor; only with `--ui-show-text`.
    pub evidence: Option<String>,
    /// How long it lasted, for timed behaviours (ms).
    pub duration_ms: i64,
}

/// An alert, as the feed and the views show it.
#[derive(Debug, Clone, Serialize)]
pub struct FeedAlert {
    /// The conversation's floor key.
    pub key: u64,
    /// The client's conversation id.
    pub conversation_id: Arc<str>,
    /// The agent (start metadata), if given.
    pub agent: Arc<str>,
    /// The alert's id.
    pub alert_id: String,
    /// Lower-case kind (`interruption`, `dead_air`, …).
    pub kind: &'static str,
    /// `info`, `warning` or `critical`.
    pub severity: &'static str,
    /// What happened.
    pub message: String,
    /// What the agent can do.
    pub coaching_tip: String,
    /// Call time of the alert, ms from the start.
    pub offset_ms: i64,
    /// When it was raised (ms since the Unix epoch, server clock).
    pub raised_at_ms: i64,
    /// The utterances that show it.
    pub evidence_utterance_ids: Vec<String>,
    #[serde(skip)]
    pub(super) tenant: Option<Arc<str>>,
}

/// Everything the conversation view shows (`GET /api/conversations/{key}`).
#[derive(Debug, Clone, Serialize)]
pub struct Detail {
    /// The floor row.
    #[serde(flatten)]
    pub row: Row,
    /// Score after each final utterance (the latest `history`).
    pub history: Vec<Point>,
    /// The utterances with their behaviours (the latest `history`).
    pub utterances: Vec<UtteranceView>,
    /// Its alerts (the latest 50).
    pub alerts: Vec<Arc<FeedAlert>>,
}

/// A final utterance's row: who spoke, what was found, and (when shown) its words, masked.
pub(super) fn utterance_view(
    utterance_id: Arc<str>,
    pending: Option<&Pending>,
    update: &ScoreUpdate,
) -> UtteranceView {
    let text = pending.and_then(|p| p.text.as_ref());
    let behaviours = update
        .behaviours
        .iter()
        .map(|b| BehaviourView {
            behaviour: Behaviour::try_from(b.behaviour).unwrap_or_default().lower(),
            confidence: (b.confidence * 100.0).round() / 100.0,
            evidence: text.and_then(|(t, _)| {
                t.get(b.span_start as usize..b.span_end as usize)
                    .filter(|s| !s.is_empty())
                    .map(|s| crate::redact::redact(&bounded(s, EVIDENCE_BYTES)))
            }),
            duration_ms: b.duration_ms,
        })
        .collect();
    UtteranceView {
        utterance_id,
        role: pending.map_or("unknown", |p| p.role),
        offset_ms: pending.and_then(|p| p.offset_ms),
        text: text.map(|(t, cut)| {
            let mut shown = crate::redact::redact(t);
            if *cut {
                shown.reserve_exact('…'.len_utf8());
                shown.push('…');
            }
            shown
        }),
        behaviours,
    }
}

/// A score to one decimal, a confidence or sentiment to two: what a page shows, and a third
/// of the bytes of full precision on every row sent.
pub(super) fn tenth(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}

pub(super) fn hundredth(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

pub(super) fn score_view(score: &crate::proto::v1::Score) -> ScoreView {
    let mut components = COMPONENTS.map(|name| ComponentView {
        component: name,
        score: 0.0,
        confidence: 0.0,
    });
    for c in &score.components {
        let i = Component::try_from(c.component).map_or(0, |c| c as usize);
        if let Some(slot) = i.checked_sub(1).and_then(|i| components.get_mut(i)) {
            slot.score = tenth(c.score);
            slot.confidence = hundredth(c.confidence);
        }
    }
    ScoreView {
        overall: tenth(score.overall),
        confidence: hundredth(score.confidence),
        components,
    }
}

//! One call on the floor: what its owner holds ([`CallHandle`]: it queues what it is told and
//! takes no lock), what it tells the aggregator ([`Told`]), and the bounded view the aggregator
//! keeps of it ([`Call`]).

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::time::SystemTime;

use tokio::sync::{mpsc, oneshot};

use super::view::*;
use super::{Floor, TEXT_BYTES, TREND_POINTS};
use crate::proto::WireName as _;
use crate::proto::v1::{Alert, ConversationStart, EndReason, ScoreUpdate, Scorecard, Severity};

/// `s` cut to at most `max` bytes at a character boundary.
pub(super) fn bounded(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_owned();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s[..end].to_owned()
}

/// One conversation's view. Everything in it is bounded: `history` points and utterances,
/// `ALERTS_PER_CALL` alerts, `TREND_POINTS` trend points.
#[derive(Debug)]
pub(super) struct Call {
    pub(super) key: u64,
    pub(super) conversation_id: Arc<str>,
    pub(super) tenant: Option<Arc<str>>,
    pub(super) agent: Arc<str>,
    pub(super) queue: Arc<str>,
    pub(super) channel: &'static str,
    pub(super) profile: Arc<str>,
    pub(super) opened_at: SystemTime,
    /// Why it ended, once it has.
    pub(super) ended: Option<&'static str>,
    pub(super) score: Option<ScoreView>,
    pub(super) customer: Option<CustomerView>,
    pub(super) trend: VecDeque<f64>,
    pub(super) history: VecDeque<Point>,
    pub(super) utterances: VecDeque<UtteranceView>,
    /// The utterance being scored: its role, and its text when text is shown.
    pub(super) pending: Option<Pending>,
    pub(super) alerts: VecDeque<Arc<FeedAlert>>,
    pub(super) alert_count: u64,
    /// Each alert kind raised, with its highest severity (at most one entry per kind).
    pub(super) alert_kinds: BTreeMap<&'static str, Severity>,
    pub(super) utterance_count: u64,
    /// The latest call time heard (ms from the start).
    pub(super) offset_ms: i64,
    /// Its row as JSON, until it changes.
    pub(super) json: Option<Arc<str>>,
}

#[derive(Debug)]
pub(super) struct Pending {
    pub(super) utterance_id: String,
    pub(super) role: &'static str,
    pub(super) offset_ms: Option<i64>,
    /// Its text up to [`TEXT_BYTES`], and whether it was cut.
    pub(super) text: Option<(String, bool)>,
}

impl Call {
    pub(super) fn visible_to(&self, tenant: Option<&str>) -> bool {
        tenant.is_none() || self.tenant.as_deref() == tenant
    }

    pub(super) fn row(&self) -> Row {
        Row {
            key: self.key,
            conversation_id: self.conversation_id.clone(),
            agent: self.agent.clone(),
            queue: self.queue.clone(),
            channel: self.channel,
            profile: self.profile.clone(),
            opened_at_ms: epoch_ms(self.opened_at),
            offset_ms: self.offset_ms,
            state: if self.ended.is_some() {
                "ended"
            } else {
                "live"
            },
            end_reason: self.ended,
            score: self.score.clone(),
            customer: self.customer.clone(),
            trend: self.trend.iter().copied().collect(),
            latest_alert: self.alerts.back().cloned(),
            alert_count: self.alert_count,
            alert_kinds: self
                .alert_kinds
                .iter()
                .map(|(kind, severity)| (*kind, severity.lower()))
                .collect(),
            utterance_count: self.utterance_count,
        }
    }

    /// The row as JSON, serialised at most once per change.
    pub(super) fn row_json(&mut self) -> Arc<str> {
        if let Some(json) = &self.json {
            return Arc::clone(json);
        }
        let json: Arc<str> = Arc::from(serde_json::to_string(&self.row()).unwrap_or_default());
        self.json = Some(Arc::clone(&json));
        json
    }

    pub(super) fn detail(&self) -> Detail {
        Detail {
            row: self.row(),
            history: self.history.iter().cloned().collect(),
            utterances: self.utterances.iter().cloned().collect(),
            alerts: self.alerts.iter().cloned().collect(),
        }
    }
}

/// A live conversation's place on the floor, owned by its stream task or pipeline partition.
/// Dropping it marks the conversation ended (`freed` unless a scorecard said why). It queues
/// what it is told for the floor's aggregator and takes no lock.
#[derive(Debug)]
pub struct CallHandle {
    pub(super) floor: Arc<Floor>,
    /// `None` for a call the floor had no room for (not shown).
    pub(super) key: Option<u64>,
    /// The room held for the call's end.
    pub(super) end: Option<mpsc::OwnedPermit<Told>>,
}

impl CallHandle {
    /// The utterance about to be scored: its role, and its text if the floor shows text.
    pub fn utterance(&self, u: &crate::engine::Utterance) {
        let Some(key) = self.key else { return };
        let text = self.floor.config.show_text.then(|| {
            let kept = bounded(&u.text, TEXT_BYTES);
            let cut = kept.len() < u.text.len();
            (kept, cut)
        });
        let pending = Pending {
            utterance_id: bounded(&u.utterance_id, 256),
            role: u.role.name(),
            offset_ms: u.start_ms.or(u.end_ms),
            text,
        };
        let offset = u.end_ms.or(u.start_ms);
        self.floor
            .tell(Told::Utterance(key, Box::new(pending), offset));
    }

    /// A score update the engine emitted.
    pub fn update(&self, update: &ScoreUpdate) {
        if let Some(key) = self.key {
            self.floor.tell(Told::Update(key, Box::new(update.clone())));
        }
    }

    /// An alert the engine raised.
    pub fn alert(&self, alert: &Alert) {
        if let Some(key) = self.key {
            self.floor
                .tell(Told::Alert(key, Box::new(alert.clone()), SystemTime::now()));
        }
    }

    /// The scorecard: the conversation ended.
    pub fn scorecard(&self, card: &Scorecard) {
        if let Some(key) = self.key {
            let reason = EndReason::try_from(card.end_reason)
                .unwrap_or_default()
                .lower();
            let score = card.score.as_ref().map(|s| Box::new(score_view(s)));
            self.floor.tell(Told::Scorecard(key, score, reason));
        }
    }
}

/// The floor watches the service's conversations.
impl crate::host::watch::Watcher for Arc<Floor> {
    fn open(
        &self,
        conversation_id: &str,
        tenant: Option<Arc<str>>,
        start: &ConversationStart,
    ) -> Box<dyn crate::host::watch::WatchedCall> {
        Box::new(Floor::open(self, conversation_id, tenant, start))
    }
}

impl crate::host::watch::WatchedCall for CallHandle {
    fn utterance(&self, utterance: &crate::engine::Utterance) {
        CallHandle::utterance(self, utterance);
    }
    fn update(&self, update: &ScoreUpdate) {
        CallHandle::update(self, update);
    }
    fn alert(&self, alert: &Alert) {
        CallHandle::alert(self, alert);
    }
    fn scorecard(&self, card: &Scorecard) {
        CallHandle::scorecard(self, card);
    }
}

impl Drop for CallHandle {
    fn drop(&mut self) {
        if let (Some(key), Some(end)) = (self.key, self.end.take()) {
            end.send(Told::Ended(key));
        }
    }
}

impl Call {
    /// A score update the engine emitted.
    pub(super) fn update(&mut self, update: &ScoreUpdate, history: usize, text_utterances: usize) {
        // The utterance's id, shared by its score point and its row.
        let mut id: Option<Arc<str>> = None;
        let call = self;
        call.json = None;
        if let Some(score) = &update.score {
            let view = score_view(score);
            if !update.partial {
                let mut components = [0.0; 7];
                for (slot, c) in components.iter_mut().zip(&view.components) {
                    *slot = c.score;
                }
                push_bounded(&mut call.trend, view.overall, TREND_POINTS);
                let offset_ms = call.offset_ms;
                let utterance_id =
                    id.get_or_insert_with(|| Arc::from(bounded(&update.utterance_id, 256)));
                push_bounded(
                    &mut call.history,
                    Point {
                        utterance_id: Arc::clone(utterance_id),
                        offset_ms,
                        overall: view.overall,
                        components,
                    },
                    history,
                );
            }
            call.score = Some(view);
        }
        if let Some(c) = &update.customer {
            call.customer = Some(CustomerView {
                sentiment: hundredth(c.sentiment),
                frustration: hundredth(c.frustration),
                trend: c.trend().lower(),
            });
        }
        if !update.partial {
            let pending = call
                .pending
                .take_if(|p| p.utterance_id == update.utterance_id);
            let utterance_id = id
                .take()
                .unwrap_or_else(|| Arc::from(bounded(&update.utterance_id, 256)));
            let view = utterance_view(utterance_id, pending.as_ref(), update);
            // A final utterance that was sent again replaces its row.
            if call
                .utterances
                .back()
                .is_some_and(|u| u.utterance_id == view.utterance_id)
            {
                call.utterances.pop_back();
            } else {
                call.utterance_count += 1;
            }
            push_bounded(&mut call.utterances, view, history);
            // Only the latest `text_utterances` keep their words.
            if let Some(older) = call
                .utterances
                .len()
                .checked_sub(text_utterances + 1)
                .and_then(|i| call.utterances.get_mut(i))
            {
                older.text = None;
                for b in &mut older.behaviours {
                    b.evidence = None;
                }
            }
        }
    }
}

pub(super) fn push_bounded<T>(q: &mut VecDeque<T>, item: T, cap: usize) {
    if cap == 0 {
        return;
    }
    if q.capacity() == 0 {
        // Exactly what it will hold, not the next power of two.
        q.reserve_exact(cap.min(1_024));
    }
    while q.len() >= cap {
        q.pop_front();
    }
    q.push_back(item);
}

/// What a conversation told the floor, queued for the aggregator.
#[derive(Debug)]
pub(super) enum Told {
    Opened(Box<Call>),
    Utterance(u64, Box<Pending>, Option<i64>),
    Update(u64, Box<ScoreUpdate>),
    Alert(u64, Box<Alert>, SystemTime),
    Scorecard(u64, Option<Box<ScoreView>>, &'static str),
    Ended(u64),
    /// Answered once everything queued before it is applied.
    CaughtUp(oneshot::Sender<()>),
}

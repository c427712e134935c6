//! The supervisor's live floor: what every live conversation looks like now, kept for the page
//! that `hearken serve --ui-addr` serves ([`http`]).
//!
//! The owner of a live conversation (a stream task, a pipeline partition) holds a
//! [`CallHandle`] per conversation and tells it what the engine emitted (the same
//! `ScoreUpdate`s, alerts and scorecards the client gets). The handle takes no lock: it queues
//! what it was told on a bounded channel (console-subscriber's shape), and one task, the
//! floor's aggregator (`Floor::aggregate`), applies it to the floor's state: a bounded view of
//! each call (latest score, a short trend, the last `history` points and utterances, the last
//! alerts), marked changed. A call that opens holds room in the channel for its end, so the
//! floor never keeps a call that has gone; what finds the channel full is dropped and counted
//! ([`Floor::dropped_told`], `hearken.floor.dropped`). Once per `update_interval` the aggregator
//! serialises each changed row and each new alert once, for every viewer (a `Tick`); a viewer
//! only picks out what its tenant may see and concatenates. A call that changed many times in an interval is one row; a
//! browser that cannot keep up has its rows coalesced further (latest per conversation) until
//! it reads or is let go. So a floor costs the server its changes once per interval, plus a
//! copy per viewer.
//!
//! Nothing here holds transcript text unless `show_text` is on, and then only after
//! [`crate::redact::redact`]. Calls that end stay on the floor for `ended_linger` (at most
//! `max_ended` of them), so a supervisor sees how a call finished.

mod call;
pub mod http;
mod listener;
mod view;

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant, SystemTime};

use tokio::sync::{broadcast, mpsc, oneshot};

use crate::proto::WireName as _;
use crate::proto::v1::{Alert, ConversationStart, Severity};

pub use call::CallHandle;
use call::{Call, Told, bounded, push_bounded};
pub use http::serve;
use view::epoch_ms;
pub use view::{
    BehaviourView, ComponentView, CustomerView, Detail, FeedAlert, Point, Row, ScoreView,
    UtteranceView,
};

/// How the floor behaves; the defaults are `hearken serve`'s.
#[derive(Debug, Clone)]
pub struct FloorConfig {
    /// Keep utterance text (masked by the redactor) and show it on the page.
    pub show_text: bool,
    /// A browser gets at most one update per conversation this often.
    pub update_interval: Duration,
    /// Score points and utterances kept per conversation for its view (the latest ones).
    pub history: usize,
    /// With `show_text`, the latest utterances of a conversation that keep their text (each
    /// cut to [`TEXT_BYTES`]); older ones keep only their behaviours.
    pub text_utterances: usize,
    /// Ended conversations stay on the floor this long.
    pub ended_linger: Duration,
    /// At most this many ended conversations stay on the floor.
    pub max_ended: usize,
    /// Browsers watching at once.
    pub max_viewers: usize,
    /// A browser that has not taken an update for this long is dropped with a notice.
    pub slow_viewer_timeout: Duration,
    /// A connection that has had no response written within this long of being accepted is
    /// closed: a request's headers must arrive whole by then (slow or half-sent headers).
    pub header_timeout: Duration,
    /// A connection with nothing written to it for this long is closed (an event stream
    /// writes at least every 15 s, so only idle connections are).
    pub idle_timeout: Duration,
    /// Connections to the page's port at once; further ones are closed as they are accepted.
    /// 0: four per viewer allowed and 16 more (a browser opens several).
    pub max_connections: usize,
}

impl FloorConfig {
    /// The connection cap in force: `max_connections`, or four per viewer and 16 more.
    pub fn connection_cap(&self) -> usize {
        match self.max_connections {
            0 => self.max_viewers.saturating_mul(4).saturating_add(16),
            n => n,
        }
    }
}

impl FloorConfig {
    /// `--ui-update-interval`'s default.
    pub const DEFAULT_UPDATE_INTERVAL: Duration = Duration::from_millis(500);
    /// `--ui-max-viewers`' default.
    pub const DEFAULT_MAX_VIEWERS: usize = 100;
    /// `--ui-history`'s default.
    pub const DEFAULT_HISTORY: usize = 200;
    /// `--ui-text-utterances`' default.
    pub const DEFAULT_TEXT_UTTERANCES: usize = 20;
}

impl Default for FloorConfig {
    fn default() -> Self {
        FloorConfig {
            show_text: false,
            update_interval: Self::DEFAULT_UPDATE_INTERVAL,
            history: Self::DEFAULT_HISTORY,
            text_utterances: Self::DEFAULT_TEXT_UTTERANCES,
            ended_linger: Duration::from_secs(120),
            max_ended: 1_000,
            max_viewers: Self::DEFAULT_MAX_VIEWERS,
            slow_viewer_timeout: Duration::from_secs(10),
            header_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            max_connections: 0,
        }
    }
}

/// With text shown, an utterance's text is kept up to this many bytes (cut at a character
/// boundary, marked with "…"), and a behaviour's evidence up to [`EVIDENCE_BYTES`].
pub const TEXT_BYTES: usize = 1_024;
/// A behaviour's evidence words kept, in bytes.
pub const EVIDENCE_BYTES: usize = 200;

/// Points of the small trend line on the floor.
const TREND_POINTS: usize = 40;
/// Alerts kept per conversation for its view.
const ALERTS_PER_CALL: usize = 50;
/// Alerts kept for the feed of a browser that connects.
const FEED: usize = 100;
/// Ticks a viewer may fall behind by before it re-reads the whole floor.
const TICKS_BUFFER: usize = 64;
/// Alerts carried by one tick; more in one interval are counted as skipped (the feed and the
/// conversations still hold them).
const ALERTS_PER_TICK: usize = 200;

/// What conversations may have told the floor and the aggregator not yet applied. Each call
/// on the floor holds one place for its end, so this also bounds the calls shown.
const TOLD_QUEUE: usize = 131_072;

/// The seven components, in the order of the `Component` enum.
pub const COMPONENTS: [&str; 7] = [
    "patience",
    "talk_balance",
    "inquiry",
    "acknowledgement",
    "empathy",
    "understanding",
    "customer_experience",
];

/// What changed since the last tick.
#[derive(Debug, Default)]
struct Changes {
    calls: BTreeSet<u64>,
    alerts: Vec<Arc<FeedAlert>>,
    skipped_alerts: u64,
}

/// A changed conversation in a [`Tick`]: its key, tenant and row (JSON), or `None` for one
/// that left the floor.
pub(crate) type TickRow = (u64, Option<Arc<str>>, Option<Arc<str>>);

/// What changed on the floor in one update interval, serialised once for every viewer.
#[derive(Debug)]
pub(crate) struct Tick {
    /// Changed conversations.
    pub(crate) rows: Vec<TickRow>,
    /// New alerts: tenant and alert (JSON).
    pub(crate) alerts: Vec<(Option<Arc<str>>, Arc<str>)>,
    /// Alerts raised in the interval beyond `ALERTS_PER_TICK`.
    pub(crate) skipped_alerts: u64,
}

/// The floor: every live (and lately ended) conversation of this process.
#[derive(Debug)]
pub struct Floor {
    config: FloorConfig,
    calls: RwLock<BTreeMap<u64, Arc<Mutex<Call>>>>,
    /// Ended conversations, oldest first, with when they ended.
    ended: Mutex<VecDeque<(u64, Instant)>>,
    feed: Mutex<VecDeque<Arc<FeedAlert>>>,
    changes: Mutex<Changes>,
    ticks: broadcast::Sender<Arc<Tick>>,
    next_key: AtomicU64,
    viewers: AtomicUsize,
    /// Conversations on the floor that have not ended.
    live: AtomicUsize,
    /// Browsers dropped because they did not keep up.
    dropped_viewers: AtomicU64,
    /// Turns true when the server shuts down: viewers are told and let go.
    closing: tokio::sync::watch::Sender<bool>,
    metrics: Arc<crate::telemetry::Metrics>,
    /// What conversations tell the floor, for the aggregator.
    told: mpsc::Sender<Told>,
    /// The receiving end, until the aggregator takes it (or `settle` reads it).
    told_rx: Mutex<Option<mpsc::Receiver<Told>>>,
    /// What was told and found no room (calls, then events).
    dropped: AtomicU64,
}

impl Floor {
    /// An empty floor, recording its viewers and events into `metrics`.
    pub fn new(config: FloorConfig, metrics: Arc<crate::telemetry::Metrics>) -> Arc<Floor> {
        Self::with_queue(config, metrics, TOLD_QUEUE)
    }

    /// An empty floor whose aggregator's queue holds `queue` things told.
    fn with_queue(
        config: FloorConfig,
        metrics: Arc<crate::telemetry::Metrics>,
        queue: usize,
    ) -> Arc<Floor> {
        let (ticks, _) = broadcast::channel(TICKS_BUFFER);
        let (told, told_rx) = mpsc::channel(queue);
        Arc::new(Floor {
            told,
            told_rx: Mutex::new(Some(told_rx)),
            dropped: AtomicU64::new(0),
            config,
            calls: RwLock::default(),
            ended: Mutex::default(),
            feed: Mutex::default(),
            changes: Mutex::default(),
            ticks,
            next_key: AtomicU64::new(1),
            viewers: AtomicUsize::new(0),
            live: AtomicUsize::new(0),
            dropped_viewers: AtomicU64::new(0),
            closing: tokio::sync::watch::Sender::new(false),
            metrics,
        })
    }

    /// How the floor behaves.
    pub fn config(&self) -> &FloorConfig {
        &self.config
    }

    /// Puts a conversation that just opened on the floor; it stays until the handle drops
    /// (then as ended, for a while).
    pub fn open(
        self: &Arc<Self>,
        conversation_id: &str,
        tenant: Option<Arc<str>>,
        start: &ConversationStart,
    ) -> CallHandle {
        let key = self.next_key.fetch_add(1, Ordering::Relaxed);
        let pick = |names: &[&str]| {
            names
                .iter()
                .find_map(|n| start.metadata.get(*n))
                .map_or_else(|| Arc::from(""), |v| Arc::from(bounded(v, 128)))
        };
        let call = Call {
            key,
            conversation_id: Arc::from(bounded(conversation_id, 256)),
            tenant,
            agent: pick(&["agent", "agent_id", "agent_name", "agentId"]),
            queue: pick(&["queue", "queue_name", "queueName", "skill"]),
            channel: start.channel().upper(),
            profile: Arc::from(bounded(&start.rubric_profile, 64)),
            opened_at: SystemTime::now(),
            ended: None,
            score: None,
            customer: None,
            trend: VecDeque::new(),
            history: VecDeque::new(),
            utterances: VecDeque::new(),
            pending: None,
            alerts: VecDeque::new(),
            alert_count: 0,
            alert_kinds: BTreeMap::new(),
            utterance_count: 0,
            offset_ms: 0,
            json: None,
        };
        // Room for the call and for its end, or it is not shown (counted).
        let permits = self
            .told
            .clone()
            .try_reserve_owned()
            .and_then(|first| Ok((first, self.told.clone().try_reserve_owned()?)));
        let Ok((opened, end)) = permits else {
            self.dropped("call");
            return CallHandle {
                floor: Arc::clone(self),
                key: None,
                end: None,
            };
        };
        opened.send(Told::Opened(Box::new(call)));
        CallHandle {
            floor: Arc::clone(self),
            key: Some(key),
            end: Some(end),
        }
    }

    /// Counts something told that found no room.
    fn dropped(&self, what: &'static str) {
        self.dropped.fetch_add(1, Ordering::Relaxed);
        self.metrics.floor_dropped(what);
    }

    /// What conversations told the floor and found no room for (calls not shown, events not
    /// applied), since it started.
    pub fn dropped_told(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Queues what a call told, if there is room (else drops and counts it).
    fn tell(&self, told: Told) {
        if self.told.try_send(told).is_err() {
            self.dropped("event");
        }
    }

    /// Applies what was told, in order. Only the aggregator (or `settle`) calls this.
    fn apply(&self, told: Told) {
        match told {
            Told::Opened(call) => {
                let key = call.key;
                self.write_calls().insert(key, Arc::new(Mutex::new(*call)));
                self.live.fetch_add(1, Ordering::Relaxed);
                self.changed(key);
            }
            Told::Utterance(key, pending, offset) => {
                self.with_call(key, |call| {
                    call.pending = Some(*pending);
                    if let Some(offset) = offset {
                        call.offset_ms = call.offset_ms.max(offset);
                        call.json = None;
                    }
                });
            }
            Told::Update(key, update) => {
                let (history, text_utterances) = (self.config.history, self.config.text_utterances);
                self.with_call(key, |call| call.update(&update, history, text_utterances));
                self.changed(key);
            }
            Told::Alert(key, alert, at) => self.alert(key, &alert, at),
            Told::Scorecard(key, score, reason) => self.with_call(key, |call| {
                call.json = None;
                if let Some(score) = score {
                    call.score = Some(*score);
                }
                call.ended = Some(reason);
            }),
            Told::Ended(key) => {
                self.with_call(key, |call| {
                    call.ended.get_or_insert("freed");
                    call.json = None;
                });
                self.ended(key);
            }
            Told::CaughtUp(done) => {
                let _ = done.send(());
            }
        }
    }

    fn with_call(&self, key: u64, f: impl FnOnce(&mut Call)) {
        if let Some(call) = self.read_calls().get(&key).cloned() {
            f(&mut lock(&call));
        }
    }

    /// An alert the engine raised for call `key`, onto the call and the feed.
    fn alert(&self, key: u64, alert: &Alert, raised_at: SystemTime) {
        let Some(call) = self.read_calls().get(&key).cloned() else {
            return;
        };
        let feed = {
            let mut call = lock(&call);
            let feed = Arc::new(FeedAlert {
                key,
                conversation_id: call.conversation_id.clone(),
                agent: call.agent.clone(),
                alert_id: alert.alert_id.clone(),
                kind: alert.kind().lower(),
                severity: Severity::try_from(alert.severity)
                    .unwrap_or_default()
                    .lower(),
                message: alert.message.clone(),
                coaching_tip: alert.coaching_tip.clone(),
                offset_ms: alert.offset_ms,
                raised_at_ms: epoch_ms(raised_at),
                evidence_utterance_ids: alert.evidence_utterance_ids.clone(),
                tenant: call.tenant.clone(),
            });
            call.alert_count += 1;
            call.json = None;
            let severity = Severity::try_from(alert.severity).unwrap_or_default();
            let highest = call.alert_kinds.entry(feed.kind).or_insert(severity);
            *highest = (*highest).max(severity);
            push_bounded(&mut call.alerts, Arc::clone(&feed), ALERTS_PER_CALL);
            feed
        };
        push_bounded(&mut lock(&self.feed), Arc::clone(&feed), FEED);
        self.raised(feed);
        self.changed(key);
    }

    /// Applies, at once, what was told so far, when no aggregator runs (tools, tests); with
    /// one, it does nothing (the aggregator applies as things come).
    pub fn settle(&self) {
        if let Some(rx) = lock(&self.told_rx).as_mut() {
            while let Ok(told) = rx.try_recv() {
                self.apply(told);
            }
        }
    }

    /// Waits (at most a second) until the aggregator has applied everything told before now,
    /// so that a page read after a call's answers sees them.
    pub(crate) async fn caught_up(&self) {
        self.settle();
        let (done, applied) = oneshot::channel();
        let wait = async {
            if self.told.send(Told::CaughtUp(done)).await.is_ok() {
                let _ = applied.await;
            }
        };
        let _ = tokio::time::timeout(Duration::from_secs(1), wait).await;
    }

    /// The aggregator: applies what conversations tell the floor as it comes, and publishes
    /// what changed once per `update_interval`, until the floor closes.
    pub(crate) async fn aggregate(self: Arc<Self>) {
        let Some(mut rx) = lock(&self.told_rx).take() else {
            return; // another aggregator runs
        };
        let mut closing = self.closing.subscribe();
        let mut tick = tokio::time::interval(self.config.update_interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = async { let _ = closing.wait_for(|c| *c).await; } => break,
                told = rx.recv() => match told {
                    Some(told) => self.apply(told),
                    None => break,
                },
                _ = tick.tick() => {
                    if let Some(t) = self.tick() {
                        let _ = self.ticks.send(t);
                    }
                }
            }
        }
        // Put back, so that what is told after is still bounded and `settle` can read it.
        *lock(&self.told_rx) = Some(rx);
    }

    fn write_calls(&self) -> std::sync::RwLockWriteGuard<'_, BTreeMap<u64, Arc<Mutex<Call>>>> {
        self.calls
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn read_calls(&self) -> std::sync::RwLockReadGuard<'_, BTreeMap<u64, Arc<Mutex<Call>>>> {
        self.calls
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Marks a conversation changed (or gone) for the next tick.
    fn changed(&self, key: u64) {
        lock(&self.changes).calls.insert(key);
    }

    /// Queues a new alert for the next tick.
    fn raised(&self, alert: Arc<FeedAlert>) {
        let mut changes = lock(&self.changes);
        if changes.alerts.len() < ALERTS_PER_TICK {
            changes.alerts.push(alert);
        } else {
            changes.skipped_alerts += 1;
        }
    }

    /// Takes what changed since the last tick and serialises it once for every viewer; `None`
    /// when nothing changed or nobody watches.
    pub(crate) fn tick(&self) -> Option<Arc<Tick>> {
        self.prune();
        let changes = std::mem::take(&mut *lock(&self.changes));
        if self.ticks.receiver_count() == 0
            || (changes.calls.is_empty() && changes.alerts.is_empty())
        {
            return None;
        }
        let rows = changes
            .calls
            .into_iter()
            .map(|key| match self.read_calls().get(&key).cloned() {
                Some(call) => {
                    let mut call = lock(&call);
                    (key, call.tenant.clone(), Some(call.row_json()))
                }
                None => (key, None, None),
            })
            .collect();
        let alerts = changes
            .alerts
            .into_iter()
            .filter_map(|a| {
                let json = serde_json::to_string(&*a).ok()?;
                Some((a.tenant.clone(), Arc::from(json)))
            })
            .collect();
        Some(Arc::new(Tick {
            rows,
            alerts,
            skipped_alerts: changes.skipped_alerts,
        }))
    }

    /// Ticks, for a viewer (subscribe before reading the snapshot).
    pub(crate) fn subscribe(&self) -> broadcast::Receiver<Arc<Tick>> {
        self.ticks.subscribe()
    }

    /// Every row a viewer of `tenant` may see, as JSON (each row serialised once per change).
    pub(crate) fn rows_json(&self, tenant: Option<&str>) -> Vec<Arc<str>> {
        self.prune();
        let calls: Vec<_> = self.read_calls().values().cloned().collect();
        calls
            .iter()
            .filter_map(|c| {
                let mut call = lock(c);
                call.visible_to(tenant).then(|| call.row_json())
            })
            .collect()
    }

    /// Marks a call ended and lets old ended calls leave the floor.
    fn ended(&self, key: u64) {
        self.live.fetch_sub(1, Ordering::Relaxed);
        lock(&self.ended).push_back((key, Instant::now()));
        self.changed(key);
        self.prune();
    }

    /// Lets ended calls leave the floor once past their linger or beyond `max_ended` (done
    /// whenever a call ends, and before the floor is read).
    fn prune(&self) {
        let now = Instant::now();
        let mut gone = Vec::new();
        {
            let mut ended = lock(&self.ended);
            while ended.len() > self.config.max_ended
                || ended
                    .front()
                    .is_some_and(|(_, at)| now.duration_since(*at) > self.config.ended_linger)
            {
                if let Some((key, _)) = ended.pop_front() {
                    gone.push(key);
                }
            }
        }
        if !gone.is_empty() {
            let mut calls = self.write_calls();
            for key in &gone {
                calls.remove(key);
            }
        }
        for key in gone {
            self.changed(key);
        }
    }

    /// The rows of the floor a viewer of `tenant` may see (`None`: every tenant).
    pub fn rows(&self, tenant: Option<&str>) -> Vec<Row> {
        self.prune();
        let calls: Vec<_> = self.read_calls().values().cloned().collect();
        calls
            .iter()
            .filter_map(|c| {
                let call = lock(c);
                call.visible_to(tenant).then(|| call.row())
            })
            .collect()
    }

    /// The full view of one call, if it is on the floor and visible to `tenant`.
    pub fn detail(&self, key: u64, tenant: Option<&str>) -> Option<Detail> {
        let call = self.read_calls().get(&key).cloned()?;
        let call = lock(&call);
        call.visible_to(tenant).then(|| call.detail())
    }

    /// The latest alerts a viewer of `tenant` may see, oldest first.
    pub fn feed(&self, tenant: Option<&str>) -> Vec<Arc<FeedAlert>> {
        lock(&self.feed)
            .iter()
            .filter(|a| tenant.is_none() || a.tenant.as_deref() == tenant)
            .cloned()
            .collect()
    }

    /// Live calls on the floor now (ended ones excluded).
    pub fn live_calls(&self) -> usize {
        self.live.load(Ordering::Relaxed)
    }

    /// Tells every viewer the server is shutting down and ends their streams.
    pub fn close(&self) {
        self.closing.send_replace(true);
    }

    /// Browsers watching now.
    pub fn viewers(&self) -> usize {
        self.viewers.load(Ordering::Relaxed)
    }

    /// Browsers dropped because they did not keep up.
    pub fn dropped_viewers(&self) -> u64 {
        self.dropped_viewers.load(Ordering::Relaxed)
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::v1::{Behaviour, Component, ComponentScore, Score, ScoreUpdate};

    fn update(id: &str, overall: f64) -> ScoreUpdate {
        ScoreUpdate {
            utterance_id: id.into(),
            score: Some(Score {
                overall,
                confidence: 0.5,
                components: vec![ComponentScore {
                    component: Component::Empathy as i32,
                    score: 40.0,
                    confidence: 0.3,
                    weight: 1.0,
                }],
            }),
            ..Default::default()
        }
    }

    fn noop() -> Arc<crate::telemetry::Metrics> {
        Arc::new(crate::telemetry::Metrics::noop())
    }

    #[test]
    fn a_call_is_bounded_and_leaves_after_it_ends() {
        let floor = Floor::new(
            FloorConfig {
                history: 5,
                ended_linger: Duration::ZERO,
                ..FloorConfig::default()
            },
            noop(),
        );
        let handle = floor.open("c1", None, &ConversationStart::default());
        for i in 0..100 {
            handle.update(&update(&format!("u{i}"), i as f64));
        }
        let key = handle.key.unwrap();
        floor.settle();
        let detail = floor.detail(key, None).expect("on the floor");
        assert_eq!(detail.history.len(), 5);
        assert_eq!(detail.utterances.len(), 5);
        assert_eq!(detail.row.utterance_count, 100);
        assert_eq!(detail.row.trend.len(), TREND_POINTS);
        assert_eq!(detail.row.score.as_ref().unwrap().components[4].score, 40.0);
        assert_eq!(floor.live_calls(), 1);
        drop(handle);
        floor.settle();
        // Linger zero: it leaves at the next read.
        std::thread::sleep(Duration::from_millis(2));
        assert!(floor.rows(None).is_empty());
        assert_eq!(floor.live_calls(), 0);
    }

    #[test]
    fn text_is_kept_only_when_shown_and_then_masked() {
        let utterance = crate::engine::Utterance {
            utterance_id: "u1".into(),
            role: crate::engine::Role::Customer,
            participant_id: None,
            text: "my card is 4111 1111 1111 1111 please".into(),
            start_ms: None,
            end_ms: None,
            partial: false,
            confidence: None,
        };
        for show_text in [false, true] {
            let floor = Floor::new(
                FloorConfig {
                    show_text,
                    ..FloorConfig::default()
                },
                noop(),
            );
            let handle = floor.open("c1", None, &ConversationStart::default());
            handle.utterance(&utterance);
            handle.update(&update("u1", 70.0));
            floor.settle();
            let detail = floor.detail(handle.key.unwrap(), None).unwrap();
            let json = serde_json::to_string(&detail).unwrap();
            assert!(!json.contains("4111"), "{json}");
            assert_eq!(detail.utterances[0].role, "customer");
            assert_eq!(
                json.contains("my card is"),
                show_text,
                "text only when shown: {json}"
            );
        }
    }

    /// #29: with text shown, 100 calls added 317 MiB (3.2 MiB each: 200 utterances of up to
    /// 16 KiB). Now only the latest `text_utterances` keep their words, each cut to 1 KiB.
    #[test]
    fn shown_text_is_kept_for_the_latest_utterances_only_and_cut() {
        let floor = Floor::new(
            FloorConfig {
                show_text: true,
                history: 10,
                text_utterances: 3,
                ..FloorConfig::default()
            },
            noop(),
        );
        let handle = floor.open("c1", None, &ConversationStart::default());
        let long = "é".repeat(5_000); // 10 000 bytes, two bytes a character
        for i in 0..8 {
            handle.utterance(&crate::engine::Utterance {
                utterance_id: format!("u{i}"),
                role: crate::engine::Role::Customer,
                participant_id: None,
                text: if i == 7 {
                    long.clone()
                } else {
                    format!("words {i}")
                },
                start_ms: None,
                end_ms: None,
                partial: false,
                confidence: None,
            });
            let mut u = update(&format!("u{i}"), 70.0);
            u.behaviours = vec![crate::proto::v1::DetectedBehaviour {
                behaviour: Behaviour::Acknowledgement as i32,
                confidence: 0.9,
                span_start: 0,
                span_end: 5,
                ..Default::default()
            }];
            handle.update(&u);
        }
        floor.settle();
        let detail = floor.detail(handle.key.unwrap(), None).unwrap();
        assert_eq!(detail.utterances.len(), 8);
        let texts: Vec<Option<&str>> = detail
            .utterances
            .iter()
            .map(|u| u.text.as_deref())
            .collect();
        assert!(texts[..5].iter().all(Option::is_none), "{texts:?}");
        assert_eq!(texts[5], Some("words 5"));
        assert!(detail.utterances[4].behaviours[0].evidence.is_none());
        assert_eq!(
            detail.utterances[5].behaviours[0].evidence.as_deref(),
            Some("words")
        );
        let cut = texts[7].unwrap();
        assert!(
            cut.ends_with('…') && cut.len() <= TEXT_BYTES + 3,
            "{}",
            cut.len()
        );
        // The shared id: the score point and the utterance row name the same utterance.
        assert_eq!(
            detail.history[7].utterance_id,
            detail.utterances[7].utterance_id
        );
    }

    #[test]
    fn tenants_see_only_their_calls() {
        let floor = Floor::new(FloorConfig::default(), noop());
        let a = floor.open("c1", Some(Arc::from("a")), &ConversationStart::default());
        let _b = floor.open("c1", Some(Arc::from("b")), &ConversationStart::default());
        floor.settle();
        assert_eq!(floor.rows(None).len(), 2);
        assert_eq!(floor.rows(Some("a")).len(), 1);
        assert!(floor.detail(a.key.unwrap(), Some("b")).is_none());
    }

    /// The owner of a call never waits for the floor: what finds the queue full is dropped and
    /// counted, a call is shown only with room for its end, and a call shown always leaves.
    #[test]
    fn a_full_queue_drops_and_counts_but_never_keeps_a_call_that_went() {
        let floor = Floor::with_queue(FloorConfig::default(), noop(), 4);
        let first = floor.open("c1", None, &ConversationStart::default());
        for i in 0..10 {
            first.update(&update(&format!("u{i}"), 50.0));
        }
        // Opened (1) + its end's room (1) + two updates fill the queue of 4.
        assert_eq!(floor.dropped_told(), 8);
        let second = floor.open("c2", None, &ConversationStart::default());
        assert!(second.key.is_none(), "no room: not shown");
        assert_eq!(floor.dropped_told(), 9);
        drop(first); // its end had room kept for it
        drop(second);
        floor.settle();
        let rows = floor.rows(None);
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].state, "ended");
        assert_eq!(rows[0].utterance_count, 2);
        assert_eq!(floor.live_calls(), 0);
        // With room again, what is told is applied.
        let third = floor.open("c3", None, &ConversationStart::default());
        third.update(&update("u1", 60.0));
        floor.settle();
        assert_eq!(
            floor
                .detail(third.key.unwrap(), None)
                .unwrap()
                .row
                .utterance_count,
            1
        );
    }
}

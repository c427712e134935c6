//! The supervisor's live floor: what every live conversation looks like now, kept for the page
//! that `hearken serve --ui-addr` serves ([`http`]).
//!
//! The owner of a live conversation (a stream task, a pipeline partition) holds a
//! [`CallHandle`] per conversation and tells it what the engine emitted (the same
//! `ScoreUpdate`s, alerts and scorecards the client gets). The handle takes no lock: it queues
//! what it was told on a bounded channel (console-subscriber's shape), and one task, the
//! floor's aggregator ([`Floor::aggregate`]), applies it to the floor's state: a bounded view of
//! each call (latest score, a short trend, the last `history` points and utterances, the last
//! alerts), marked changed. A call that opens holds room in the channel for its end, so the
//! floor never keeps a call that has gone; what finds the channel full is dropped and counted
//! ([`Floor::dropped`], `hearken.floor.dropped`). Once per `update_interval` the aggregator
//! serialises each changed row and each new alert once, for every viewer (a `Tick`); a viewer
//! only picks out what its tenant may see and concatenates. A call that changed many times in an interval is one row; a
//! browser that cannot keep up has its rows coalesced further (latest per conversation) until
//! it reads or is let go. So a floor costs the server its changes once per interval, plus a
//! copy per viewer.
//!
//! Nothing here holds transcript text unless `show_text` is on, and then only after
//! [`crate::redact::redact`]. Calls that end stay on the floor for `ended_linger` (at most
//! `max_ended` of them), so a supervisor sees how a call finished.

pub mod http;
mod listener;

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant, SystemTime};

use serde::Serialize;
use tokio::sync::{broadcast, mpsc, oneshot};

use crate::proto::WireName as _;
use crate::proto::v1::{
    Alert, Behaviour, Component, ConversationStart, EndReason, ScoreUpdate, Scorecard, Severity,
};

pub use http::serve;

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

/// What a conversation told the floor, queued for the aggregator.
#[derive(Debug)]
enum Told {
    Opened(Box<Call>),
    Utterance(u64, Box<Pending>, Option<i64>),
    Update(u64, Box<ScoreUpdate>),
    Alert(u64, Box<Alert>, SystemTime),
    Scorecard(u64, Option<Box<ScoreView>>, &'static str),
    Ended(u64),
    /// Answered once everything queued before it is applied.
    CaughtUp(oneshot::Sender<()>),
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

/// `s` cut to at most `max` bytes at a character boundary.
fn bounded(s: &str, max: usize) -> String {
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
struct Call {
    key: u64,
    conversation_id: Arc<str>,
    tenant: Option<Arc<str>>,
    agent: Arc<str>,
    queue: Arc<str>,
    channel: &'static str,
    profile: Arc<str>,
    opened_at: SystemTime,
    /// Why it ended, once it has.
    ended: Option<&'static str>,
    score: Option<ScoreView>,
    customer: Option<CustomerView>,
    trend: VecDeque<f64>,
    history: VecDeque<Point>,
    utterances: VecDeque<UtteranceView>,
    /// The utterance being scored: its role, and its text when text is shown.
    pending: Option<Pending>,
    alerts: VecDeque<Arc<FeedAlert>>,
    alert_count: u64,
    /// Each alert kind raised, with its highest severity (at most one entry per kind).
    alert_kinds: BTreeMap<&'static str, Severity>,
    utterance_count: u64,
    /// The latest call time heard (ms from the start).
    offset_ms: i64,
    /// Its row as JSON, until it changes.
    json: Option<Arc<str>>,
}

#[derive(Debug)]
struct Pending {
    utterance_id: String,
    role: &'static str,
    offset_ms: Option<i64>,
    /// Its text up to [`TEXT_BYTES`], and whether it was cut.
    text: Option<(String, bool)>,
}

impl Call {
    fn visible_to(&self, tenant: Option<&str>) -> bool {
        tenant.is_none() || self.tenant.as_deref() == tenant
    }

    fn row(&self) -> Row {
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
    fn row_json(&mut self) -> Arc<str> {
        if let Some(json) = &self.json {
            return Arc::clone(json);
        }
        let json: Arc<str> = Arc::from(serde_json::to_string(&self.row()).unwrap_or_default());
        self.json = Some(Arc::clone(&json));
        json
    }

    fn detail(&self) -> Detail {
        Detail {
            row: self.row(),
            history: self.history.iter().cloned().collect(),
            utterances: self.utterances.iter().cloned().collect(),
            alerts: self.alerts.iter().cloned().collect(),
        }
    }
}

fn epoch_ms(t: SystemTime) -> i64 {
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
    /// The text, masked by the redactor (cut to [`TEXT_BYTES`]); only with `--ui-show-text`,
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
    tenant: Option<Arc<str>>,
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

/// A live conversation's place on the floor, owned by its stream task or pipeline partition.
/// Dropping it marks the conversation ended (`freed` unless a scorecard said why). It queues
/// what it is told for the floor's aggregator and takes no lock.
#[derive(Debug)]
pub struct CallHandle {
    floor: Arc<Floor>,
    /// `None` for a call the floor had no room for (not shown).
    key: Option<u64>,
    /// The room held for the call's end.
    end: Option<mpsc::OwnedPermit<Told>>,
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
    fn update(&mut self, update: &ScoreUpdate, history: usize, text_utterances: usize) {
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

/// A final utterance's row: who spoke, what was found, and (when shown) its words, masked.
fn utterance_view(
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

fn push_bounded<T>(q: &mut VecDeque<T>, item: T, cap: usize) {
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

/// A score to one decimal, a confidence or sentiment to two: what a page shows, and a third
/// of the bytes of full precision on every row sent.
fn tenth(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}

fn hundredth(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

fn score_view(score: &crate::proto::v1::Score) -> ScoreView {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::v1::{ComponentScore, Score};

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

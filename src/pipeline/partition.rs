//! The conversations of the input partitions this replica owns, and what each record does to
//! them. Pure: no Kafka, no wall clock except where a caller passes one in ([`State::sweep`]).
//!
//! Requests are handled as a stream handles them (`service/stream`): a `start` opens, the first
//! utterance of an unknown conversation opens it with defaults, an `end` closes with the
//! scorecard, messages for a conversation that ended lately are rejected. Two things differ,
//! both so that a replica that re-reads a partition produces the very same records:
//! - time is the partition's *record time* (the largest record timestamp read so far), not
//!   the wall clock: a conversation is idle when record time has passed its last record by
//!   the idle timeout, and an alert's time is the conversation's start time (or its first
//!   record's timestamp) plus the alert's offset;
//! - there is no per-conversation message rate: the log is already written.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::checkpoint::{self, Checkpoint};
use super::records::{DeadLetter, DeadReason, Decoded};
use crate::engine::{self, Event, InputLimits, RejectReason, Rejected, Rubric};
use crate::host::ended::Ended;
use crate::host::live::{Closed, Host, Owner};
use crate::proto::WireName as _;
use crate::proto::v1::stream_conversations_response::Payload;
use crate::proto::{self, v1::*};

/// What the partitions' conversations may use.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The rubric new conversations are scored with.
    pub rubric: Arc<Rubric>,
    /// Per-conversation input limits.
    pub input: InputLimits,
    /// Live conversations in this replica, over all its partitions.
    pub max_conversations: usize,
    /// A conversation whose partition's record time passes its last record by this much ends
    /// as abandoned.
    pub idle_timeout: Duration,
    /// An ended conversation's id is remembered this long in record time (later messages for
    /// it are rejected rather than opening a new conversation).
    pub ended_linger: Duration,
    /// Who else is told what the conversations do (the supervisor's floor page, `--ui-addr`).
    pub watcher: Option<Arc<dyn crate::host::watch::Watcher>>,
}

/// An input partition: topic and number.
pub type PartitionId = (Arc<str>, i32);

/// One input record, as the state needs it.
#[derive(Debug, Clone, Copy)]
pub struct Record<'a> {
    /// Where it was read.
    pub partition: i32,
    /// Its offset.
    pub offset: i64,
    /// Its timestamp (milliseconds since the epoch), if it has one.
    pub timestamp_ms: Option<i64>,
    /// The conversation id (the record key), checked by the caller to be UTF-8.
    pub key: &'a str,
}

/// What handling a record, or a sweep, gives.
#[derive(Debug, Default)]
pub struct Outcome {
    /// Responses to write, in order.
    pub responses: Vec<StreamConversationsResponse>,
    /// Why the record goes to the dead-letter topic, if it does (at most one per record).
    pub dead: Option<DeadLetter>,
    /// The record was read again to rebuild state: an earlier owner wrote its outputs, so
    /// these are not written again.
    pub rebuilt: bool,
    /// The record's partition is not owned here (a straggler fetched before a revoke): its
    /// owner reads it; nothing is done with it here.
    pub not_owned: bool,
    /// The record is at or below an offset already handled in this assignment (the broker
    /// delivered it again): skipped, counted, nothing written.
    pub redelivered: bool,
    /// Conversations opened.
    pub opened: u32,
    /// Conversations ended by their `end` (completed).
    pub completed: u32,
    /// Conversations ended as abandoned.
    pub abandoned: u32,
    /// The record was re-read below the checkpoint's `processed` and belongs to no call that
    /// was live there (the tail of one that began before the resume offset, or one that ended
    /// before `processed`): passed over, nothing opened. Counted with `rebuilt`.
    pub passed_over: bool,
}

impl Outcome {
    /// The record goes to the dead-letter topic for `r` (the first reason, if several).
    fn dead_letter(&mut self, r: &Rejected) {
        if self.dead.is_none() {
            let reason = crate::proto::rejection(r);
            self.dead = Some(DeadLetter::new(
                DeadReason::Rejected,
                &reason.field,
                format!("{}: {}", reason.reason().upper(), reason.description),
            ));
        }
    }
}

/// What a partition keeps per conversation besides what its host keeps.
struct Extra {
    /// Offset of its first record: the partition's commit point stays at or below it while
    /// the conversation is live, so that whoever owns the partition next can rebuild it.
    first_offset: i64,
    /// Record time before its first record (what a re-reading owner starts its clock at).
    clock_before: i64,
    /// Record time of its last record.
    last_ms: i64,
    /// What alert offsets count from: the start's time, else the first record's timestamp.
    base_ms: i64,
}

/// A partition taken on with its last owner's checkpoint, until the re-read reaches the
/// checkpoint's `processed` (`until`): nothing is committed or swept meanwhile.
struct Rebuild {
    /// Records below this offset were handled, and their outputs written, by the last owner.
    until: i64,
    /// Below `until`, a call opens only at one of these offsets (the first records of the calls
    /// live at the checkpoint), ascending.
    live_firsts: Vec<i64>,
    /// At `until`, the last owner's memory of calls that ended, and its record time.
    recent: Ended<i64>,
    clock_ms: i64,
}

/// One partition's conversations and position.
#[derive(Default)]
struct Partition {
    /// Its live conversations, and those that ended or whose start was refused lately, in
    /// record time.
    host: Host<i64, Extra>,
    /// The next offset to read (one past the last record handled).
    next_offset: Option<i64>,
    /// Taken on with a checkpoint and still re-reading up to it.
    rebuild: Option<Rebuild>,
    /// Something changed since the last checkpoint was taken.
    dirty: bool,
    /// Record time: the largest timestamp read.
    clock_ms: i64,
    /// When (wall clock) the last record arrived.
    last_arrival: Option<std::time::Instant>,
}

/// Where a partition may be committed: the offset to resume from and the offset processing
/// has reached (kept in the partition's checkpoint, so that the next owner writes nothing twice
/// below it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CommitPoint {
    /// The lowest offset a live conversation still needs, or `processed` if none is live.
    pub resume: i64,
    /// One past the last record handled.
    pub processed: i64,
}

/// Every owned partition's conversations.
pub struct State {
    settings: Settings,
    partitions: BTreeMap<PartitionId, Partition>,
    live_total: usize,
}

impl std::fmt::Debug for State {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("State")
            .field("partitions", &self.partitions.len())
            .field("live", &self.live_total)
            .finish()
    }
}

impl State {
    /// No partitions yet.
    pub fn new(settings: Settings) -> Self {
        State {
            settings,
            partitions: BTreeMap::new(),
            live_total: 0,
        }
    }

    /// Live conversations over all partitions.
    pub fn live(&self) -> usize {
        self.live_total
    }

    /// The partitions owned.
    pub fn partitions(&self) -> impl Iterator<Item = &PartitionId> {
        self.partitions.keys()
    }

    /// Takes a partition on. With the last owner's checkpoint, the partition's live calls are
    /// rebuilt exactly: records below its `processed` rebuild state without writing anything,
    /// and open a call only where one of the live calls began. Without one (a partition never
    /// checkpointed), every record is handled as new work. `from` is the offset reading starts
    /// at, if known (the committed offset).
    pub fn assign(
        &mut self,
        partition: PartitionId,
        checkpoint: Option<Checkpoint>,
        from: Option<i64>,
    ) {
        let p = self.partitions.entry(partition).or_default();
        let Some(c) = checkpoint else {
            return;
        };
        p.clock_ms = p.clock_ms.max(c.clock_before_resume);
        p.rebuild = Some(Rebuild {
            until: c.processed,
            live_firsts: c.live,
            recent: c
                .ended
                .iter()
                .map(|e| (e.id.clone(), e.at, e.gone()))
                .collect(),
            clock_ms: c.clock,
        });
        if from.is_some_and(|from| from >= c.processed) {
            p.settle_now();
        }
    }

    /// Lets a partition go; returns how many live conversations it held (the next owner
    /// rebuilds them).
    pub fn revoke(&mut self, partition: &PartitionId) -> usize {
        let n = self
            .partitions
            .remove(partition)
            .map_or(0, |p| p.host.len());
        self.live_total -= n;
        n
    }

    /// Where `partition` may be committed, if it has handled a record and is not still
    /// re-reading up to its last owner's checkpoint.
    pub fn commit_point(&self, partition: &PartitionId) -> Option<CommitPoint> {
        let p = self.partitions.get(partition)?;
        if p.rebuild.is_some() {
            return None;
        }
        let processed = p.next_offset?;
        let resume = p
            .host
            .iter()
            .map(|(_, h)| h.extra.first_offset)
            .min()
            .unwrap_or(processed)
            .min(processed);
        Some(CommitPoint { resume, processed })
    }

    /// The checkpoint to write for `partition` before committing it at its commit point, if
    /// anything changed since the last one was taken (and marks it taken).
    pub fn checkpoint(&mut self, partition: &PartitionId) -> Option<Checkpoint> {
        let point = self.commit_point(partition)?;
        let linger = self.settings.ended_linger;
        let p = self.partitions.get_mut(partition)?;
        if !p.dirty {
            return None;
        }
        p.dirty = false;
        let mut live: Vec<(i64, i64)> = p
            .host
            .iter()
            .map(|(_, h)| (h.extra.first_offset, h.extra.clock_before))
            .collect();
        live.sort_unstable();
        let clock = p.clock_ms;
        Some(Checkpoint {
            v: checkpoint::VERSION,
            resume: point.resume,
            processed: point.processed,
            clock_before_resume: live.first().map_or(clock, |&(_, before)| before),
            clock,
            live: live.into_iter().map(|(first, _)| first).collect(),
            ended: p
                .host
                .recent()
                .lately(clock, linger)
                .map(|(id, at, gone)| checkpoint::Ended::new(id, *at, *gone))
                .collect(),
        })
    }

    /// Handles one record: `None` for one that could not be decoded, which only moves the
    /// partition on. A record for a partition not owned (a straggler after a revoke) is
    /// ignored: its owner reads it.
    pub fn record(
        &mut self,
        topic: &Arc<str>,
        record: Record<'_>,
        decoded: Option<Decoded>,
    ) -> Outcome {
        let key: PartitionId = (Arc::clone(topic), record.partition);
        let Some(p) = self.partitions.get_mut(&key) else {
            return Outcome {
                not_owned: true,
                ..Outcome::default()
            };
        };
        // Each offset is handled once per assignment, whatever the broker delivers again.
        if p.next_offset.is_some_and(|next| record.offset < next) {
            return Outcome {
                redelivered: true,
                ..Outcome::default()
            };
        }
        let rebuilt = p.rebuild.as_ref().is_some_and(|r| record.offset < r.until);
        if !rebuilt {
            p.settle_now();
        }
        let clock_before = p.clock_ms;
        p.advance(record);
        let out = self.handle(&key, record, decoded, rebuilt, clock_before);
        if let Some(p) = self.partitions.get_mut(&key)
            && p.rebuild
                .as_ref()
                .is_some_and(|r| record.offset + 1 >= r.until)
        {
            // The re-read reached the checkpoint with this record: what the last owner knew
            // at `processed` applies from the next one on.
            p.settle_now();
        }
        out
    }

    fn handle(
        &mut self,
        key: &PartitionId,
        record: Record<'_>,
        decoded: Option<Decoded>,
        rebuilt: bool,
        clock_before: i64,
    ) -> Outcome {
        let Some(p) = self.partitions.get_mut(key) else {
            return Outcome::default();
        };
        let id = record.key;
        // Re-read below the checkpoint: only the calls that were live there are rebuilt; a
        // record of any other call (its tail, when it began before the resume offset; all of
        // it, when it ended before `processed`) opens nothing and writes nothing.
        if let Some(r) = &p.rebuild
            && rebuilt
            && !p.host.is_live(id)
            && r.live_firsts.binary_search(&record.offset).is_err()
        {
            return Outcome {
                rebuilt,
                passed_over: true,
                ..Outcome::default()
            };
        }
        let Some(decoded) = decoded else {
            return Outcome {
                rebuilt,
                ..Outcome::default()
            };
        };
        let mut ctx = Ctx {
            settings: &self.settings,
            live_total: &mut self.live_total,
            clock_ms: p.clock_ms,
            offset: record.offset,
            clock_before,
            ts: record.timestamp_ms.unwrap_or(p.clock_ms),
            out: Outcome {
                rebuilt,
                ..Outcome::default()
            },
        };
        let (host, mut out) = (&mut p.host, Vec::new());
        // An idle conversation ends before anything else is done with it, exactly as a sweep
        // would have ended it: whether it is idle depends on record time alone.
        let idle_ms = self.settings.idle_timeout.as_millis() as i64;
        if host
            .extra(id)
            .is_some_and(|x| ctx.clock_ms - x.last_ms >= idle_ms)
        {
            host.abandon(&mut ctx, &mut out, id);
        }
        if let Some(start) = decoded.start_if_unknown {
            host.start_if_unknown(&mut ctx, &mut out, id, &start);
        }
        for request in decoded.requests {
            let Some(payload) = request.payload else {
                continue; // keep-alive
            };
            host.request(&mut ctx, &mut out, &request.conversation_id, payload);
        }
        ctx.out.responses = out;
        ctx.out
    }

    /// Ends, as abandoned, the conversations that are idle in record time. A partition that
    /// has had no record for the idle timeout of wall time (`now`) has its record time moved
    /// up to the wall clock first, so that the calls on a quiet partition end too.
    pub fn sweep(
        &mut self,
        now: SystemTime,
        arrived_before: Option<std::time::Instant>,
    ) -> Vec<(PartitionId, Outcome)> {
        let now_ms = now
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64);
        let idle_ms = self.settings.idle_timeout.as_millis() as i64;
        let mut all = Vec::new();
        for (key, p) in &mut self.partitions {
            if p.rebuild.is_some() {
                continue; // still re-reading up to the last owner's checkpoint
            }
            if let (Some(last), Some(cut)) = (p.last_arrival, arrived_before)
                && last <= cut
                && now_ms > p.clock_ms
            {
                p.clock_ms = now_ms;
                p.dirty = true;
            }
            let clock = p.clock_ms;
            let idle = p.host.ids_where(|x| clock - x.last_ms >= idle_ms);
            if idle.is_empty() {
                continue;
            }
            p.dirty = true;
            let mut ctx = Ctx {
                settings: &self.settings,
                live_total: &mut self.live_total,
                clock_ms: clock,
                offset: 0,
                clock_before: clock,
                ts: clock,
                out: Outcome::default(),
            };
            let mut out = Vec::new();
            for id in idle {
                p.host.abandon(&mut ctx, &mut out, &id);
            }
            ctx.out.responses = out;
            all.push((key.clone(), ctx.out));
        }
        all
    }
}

impl Partition {
    /// The re-read has reached the last owner's checkpoint: its memory of ended calls and its
    /// record time apply, and the partition may be committed again.
    fn settle_now(&mut self) {
        if let Some(rebuild) = self.rebuild.take() {
            self.host.set_recent(rebuild.recent);
            self.clock_ms = self.clock_ms.max(rebuild.clock_ms);
            self.dirty = true;
        }
    }

    fn advance(&mut self, record: Record<'_>) {
        self.dirty = true;
        self.next_offset = Some(record.offset + 1);
        if let Some(ts) = record.timestamp_ms {
            self.clock_ms = self.clock_ms.max(ts);
        }
        self.last_arrival = Some(std::time::Instant::now());
    }
}

/// A partition as the owner of its conversations, for one record (or sweep): record time, the
/// replica's cap, alerts timed from the call's start, rejections dead-lettered.
struct Ctx<'a> {
    settings: &'a Settings,
    live_total: &'a mut usize,
    /// Record time.
    clock_ms: i64,
    offset: i64,
    /// Record time before the record.
    clock_before: i64,
    /// The record's timestamp (or the record time, if it has none).
    ts: i64,
    /// What the record gives, but its responses (the host writes those).
    out: Outcome,
}

impl Owner for Ctx<'_> {
    type Moment = i64;
    type Extra = Extra;

    fn input_limits(&self) -> &InputLimits {
        &self.settings.input
    }

    fn rubric(&self) -> Arc<Rubric> {
        Arc::clone(&self.settings.rubric)
    }

    fn now(&self) -> i64 {
        self.clock_ms
    }

    fn linger(&self) -> Duration {
        self.settings.ended_linger
    }

    fn memory_cap(&self) -> usize {
        self.settings.max_conversations.max(1)
    }

    /// The replica's cap, over all its partitions.
    fn room(&self, _live: usize) -> Result<(), Rejected> {
        if *self.live_total >= self.settings.max_conversations {
            return Err(Rejected::new(
                RejectReason::TooManyConversations,
                "conversation_id",
                format!(
                    "this replica already has the maximum of {} live conversations (--max-conversations); add replicas or partitions",
                    self.settings.max_conversations
                ),
            )
            .retry_after(1_000));
        }
        Ok(())
    }

    fn open(&mut self, _id: &str, start: &ConversationStart) -> Result<Extra, Rejected> {
        let base_ms = start
            .start_time
            .as_ref()
            .and_then(proto::system_time)
            .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
            .map_or(self.ts, |d| d.as_millis() as i64);
        *self.live_total += 1;
        self.out.opened += 1;
        Ok(Extra {
            first_offset: self.offset,
            clock_before: self.clock_before,
            last_ms: self.clock_ms,
            base_ms,
        })
    }

    fn watch(
        &self,
        id: &str,
        start: &ConversationStart,
    ) -> Option<Box<dyn crate::host::watch::WatchedCall>> {
        Some(self.settings.watcher.as_ref()?.open(id, None, start))
    }

    /// No message rate: the log is already written.
    fn admit(&mut self, _extra: &mut Extra, _event: &Event) -> Result<(), Rejected> {
        Ok(())
    }

    fn touch(&mut self, extra: &mut Extra) {
        extra.last_ms = self.clock_ms;
    }

    fn alert_time(extra: &Extra, alert: &engine::Alert) -> Option<SystemTime> {
        let ms = extra.base_ms.saturating_add(alert.offset_ms.max(0));
        Some(UNIX_EPOCH + Duration::from_millis(ms.max(0) as u64))
    }

    fn told(&mut self, _id: &str, _payload: &Payload) {}

    fn refused(&mut self, r: &Rejected) {
        self.out.dead_letter(r);
    }

    fn closed(&mut self, _extra: Extra, how: Closed) {
        *self.live_total -= 1;
        match how {
            Closed::Completed => self.out.completed += 1,
            Closed::Abandoned => self.out.abandoned += 1,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::records::{self, InputEncoding};

    fn settings() -> Settings {
        settings_for(2)
    }

    fn settings_for(max_conversations: usize) -> Settings {
        static RUBRIC: std::sync::OnceLock<Arc<Rubric>> = std::sync::OnceLock::new();
        Settings {
            rubric: Arc::clone(RUBRIC.get_or_init(|| Arc::new(Rubric::from_toml_str("").unwrap()))),
            input: InputLimits::default(),
            max_conversations,
            idle_timeout: Duration::from_secs(60),
            ended_linger: Duration::from_secs(60),
            watcher: None,
        }
    }

    fn topic() -> Arc<str> {
        Arc::from("in")
    }

    /// Feeds JSON requests, one per record, as (key, timestamp, json).
    fn feed(state: &mut State, from: i64, records: &[(&str, i64, &str)]) -> Vec<Outcome> {
        records
            .iter()
            .enumerate()
            .map(|(i, (key, ts, json))| {
                let decoded = records::decode(
                    key,
                    json.as_bytes(),
                    None,
                    InputEncoding::Json,
                    &Default::default(),
                )
                .unwrap();
                let record = Record {
                    partition: 0,
                    offset: from + i as i64,
                    timestamp_ms: Some(*ts),
                    key,
                };
                state.record(&topic(), record, Some(decoded))
            })
            .collect()
    }

    const AGENT: &str = r#"{"utterance":{"utteranceId":"a1","role":"ROLE_AGENT","text":"Hello, how can I help you today?","startMs":0,"endMs":2000}}"#;
    const CUSTOMER: &str = r#"{"utterance":{"utteranceId":"c1","role":"ROLE_CUSTOMER","text":"My bill is wrong again.","startMs":2500,"endMs":4000}}"#;
    const END: &str = r#"{"end":{}}"#;

    #[test]
    fn the_commit_point_stays_at_the_oldest_live_conversation() {
        let mut s = State::new(settings());
        s.assign((topic(), 0), None, None);
        feed(
            &mut s,
            10,
            &[("a", 1, AGENT), ("b", 2, AGENT), ("a", 3, END)],
        );
        let p = (topic(), 0);
        // `a` ended; `b` (first at offset 11) is live.
        assert_eq!(
            s.commit_point(&p),
            Some(CommitPoint {
                resume: 11,
                processed: 13
            })
        );
        feed(&mut s, 13, &[("b", 4, END)]);
        assert_eq!(
            s.commit_point(&p),
            Some(CommitPoint {
                resume: 14,
                processed: 14
            })
        );
        assert_eq!(s.live(), 0);
    }

    /// Requests of one partition, as (key, timestamp, json).
    type Log = Vec<(String, i64, String)>;

    fn feed_owned(state: &mut State, from: i64, log: &[(String, i64, String)]) -> Vec<Outcome> {
        let records: Vec<(&str, i64, &str)> = log
            .iter()
            .map(|(k, t, j)| (k.as_str(), *t, j.as_str()))
            .collect();
        feed(state, from, &records)
    }

    fn utterance(n: usize) -> String {
        let agent = n.is_multiple_of(2);
        let role = if agent { "ROLE_AGENT" } else { "ROLE_CUSTOMER" };
        let text = if agent {
            "So what I'm hearing is the bill went up again, is that right?"
        } else {
            "Yes, it doubled this month and nobody told me why."
        };
        format!(
            r#"{{"utterance":{{"utteranceId":"u{n}","role":"{role}","text":"{text}","startMs":{},"endMs":{}}}}}"#,
            n * 3000,
            n * 3000 + 2000
        )
    }

    /// A partition of `calls` interleaved calls of different lengths, starting one after
    /// another (some with a `start`, some by their first utterance), each ended; a late message
    /// after some ends.
    fn interleaved(calls: usize, seed: u64) -> Log {
        let mut rng = seed;
        let mut next = move |n: u64| {
            rng = rng
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (rng >> 33) % n
        };
        // Each call's id and messages, in order.
        let mut pending: Vec<(String, Vec<String>)> = (0..calls)
            .map(|c| {
                let mut msgs = Vec::new();
                if c % 3 != 0 {
                    msgs.push(r#"{"start":{}}"#.to_owned());
                }
                for n in 0..2 + next(8) as usize {
                    msgs.push(utterance(n));
                }
                msgs.push(END.to_owned());
                if c % 4 == 0 {
                    msgs.push(utterance(99)); // late: rejected, the call has ended
                }
                (format!("call-{c}"), msgs)
            })
            .collect();
        let mut log = Vec::new();
        let mut active: Vec<(String, std::vec::IntoIter<String>)> = Vec::new();
        let mut ts = 1_000;
        while !pending.is_empty() || !active.is_empty() {
            if !pending.is_empty() && (active.len() < 3 || next(3) == 0) {
                let (id, msgs) = pending.remove(0);
                active.push((id, msgs.into_iter()));
            }
            let i = next(active.len() as u64) as usize;
            match active[i].1.next() {
                Some(m) => {
                    ts += 100;
                    log.push((active[i].0.clone(), ts, m));
                }
                None => {
                    active.remove(i);
                }
            }
        }
        log
    }

    /// #29: a new owner that takes a partition on with its last owner's checkpoint and re-reads
    /// from the commit offset (or from an older commit, when the last owner died between the
    /// checkpoint and the commit) writes nothing below the checkpoint and, from it on, exactly
    /// what the last owner wrote; the tails of calls that began before the resume offset, or
    /// ended before the checkpoint, open nothing.
    #[test]
    fn a_new_owner_with_the_checkpoint_writes_exactly_what_the_last_owner_wrote() {
        for seed in 0..12 {
            let log = interleaved(10, seed);
            let mut first = State::new(settings_for(100));
            first.assign((topic(), 0), None, None);
            let once = feed_owned(&mut first, 0, &log);
            for cut in (1..log.len()).step_by(2) {
                // The last owner up to `cut`, checkpointed there.
                let mut owner = State::new(settings_for(100));
                owner.assign((topic(), 0), None, None);
                feed_owned(&mut owner, 0, &log[..cut]);
                let c = owner.checkpoint(&(topic(), 0)).unwrap();
                assert_eq!(c.processed, cut as i64);
                let c = Checkpoint::decode(&c.encode()).unwrap();
                // An older commit too: the last owner died after the checkpoint, before the
                // commit.
                for from in [c.resume, c.resume / 2] {
                    let mut next = State::new(settings_for(100));
                    next.assign((topic(), 0), Some(c.clone()), Some(from));
                    let again = feed_owned(&mut next, from, &log[from as usize..]);
                    for (i, out) in again.iter().enumerate() {
                        let offset = from as usize + i;
                        if offset < cut {
                            assert!(
                                out.rebuilt,
                                "seed {seed} cut {cut} from {from}: offset {offset}"
                            );
                        } else {
                            assert!(!out.rebuilt);
                            assert_eq!(
                                out.responses, once[offset].responses,
                                "seed {seed} cut {cut} from {from}: offset {offset}"
                            );
                            assert_eq!(out.dead.is_some(), once[offset].dead.is_some());
                        }
                    }
                    assert_eq!(next.live(), 0, "seed {seed} cut {cut}: a call left open");
                }
            }
        }
    }

    /// The issue's minimal case: X start, X u1, L start, X u2, X end, L u1, then a hand-over.
    /// Without the checkpoint the new owner opened X again from u2 and wrote a second, wrong
    /// scorecard; with it, X's tail opens nothing.
    #[test]
    fn the_tail_of_a_call_that_began_before_the_resume_offset_opens_nothing() {
        let start = r#"{"start":{}}"#;
        let log: Log = [
            ("X", start),
            ("X", AGENT),
            ("L", start),
            ("X", CUSTOMER),
            ("X", END),
            ("L", AGENT),
        ]
        .iter()
        .enumerate()
        .map(|(i, (k, j))| (k.to_string(), 1_000 + i as i64, j.to_string()))
        .collect();
        let mut owner = State::new(settings());
        owner.assign((topic(), 0), None, None);
        feed_owned(&mut owner, 0, &log);
        let c = owner.checkpoint(&(topic(), 0)).unwrap();
        assert_eq!((c.resume, c.processed, c.live.clone()), (2, 6, vec![2]));
        assert_eq!(c.ended.len(), 1);
        // Nothing changed: no second checkpoint.
        assert!(owner.checkpoint(&(topic(), 0)).is_none());

        let mut next = State::new(settings());
        next.assign((topic(), 0), Some(c), Some(2));
        let again = feed_owned(&mut next, 2, &log[2..]);
        // All rebuilt (the Kafka side writes nothing for them); X's tail passed over.
        assert!(again.iter().all(|o| o.rebuilt));
        assert!(again[1].passed_over && again[2].passed_over);
        assert!(again[1].responses.is_empty() && again[2].responses.is_empty());
        assert_eq!(
            again.iter().map(|o| o.opened).sum::<u32>(),
            1,
            "only L opens"
        );
        assert_eq!(next.live(), 1);
        // A late message for X after the hand-over is rejected as the last owner would have.
        let late = feed(&mut next, 6, &[("X", 1_010, CUSTOMER)]).remove(0);
        assert_eq!(late.opened, 0);
        assert_eq!(late.responses.len(), 1);
        assert_eq!(records::kind_of(&late.responses[0]), "rejection");
        assert_eq!(late.dead.map(|d| d.reason), Some(DeadReason::Rejected));
        // Committing again waits for nothing: the re-read reached the checkpoint.
        assert!(next.commit_point(&(topic(), 0)).is_some());
    }

    /// While a new owner re-reads up to the checkpoint it commits nothing (a commit there would
    /// lose the calls not yet re-opened) and sweeps nothing.
    #[test]
    fn nothing_is_committed_until_the_re_read_reaches_the_checkpoint() {
        let log = interleaved(6, 7);
        let mut owner = State::new(settings_for(100));
        owner.assign((topic(), 0), None, None);
        feed_owned(&mut owner, 0, &log[..20]);
        let c = owner.checkpoint(&(topic(), 0)).unwrap();
        let mut next = State::new(settings_for(100));
        next.assign((topic(), 0), Some(c.clone()), Some(0));
        feed_owned(&mut next, 0, &log[..19]);
        assert_eq!(next.commit_point(&(topic(), 0)), None);
        assert!(next.checkpoint(&(topic(), 0)).is_none());
        feed_owned(&mut next, 19, &log[19..20]);
        let again = next.checkpoint(&(topic(), 0)).unwrap();
        assert_eq!(again, c);
    }

    #[test]
    fn idle_is_judged_in_record_time_the_same_way_by_a_sweep_or_by_the_next_record() {
        let late = ("a", 1 + 61_000, CUSTOMER);
        let records = [("a", 1, AGENT), ("b", 61_001, AGENT)];
        // By the next record of the idle conversation: abandoned, then the record is rejected.
        let mut lazy = State::new(settings());
        lazy.assign((topic(), 0), None, None);
        feed(&mut lazy, 0, &records);
        let lazy_out = feed(&mut lazy, 2, &[late]).remove(0);
        // By a sweep in between (the partition is not quiet: no wall-clock move).
        let mut swept = State::new(settings());
        swept.assign((topic(), 0), None, None);
        feed(&mut swept, 0, &records);
        let sweep = swept.sweep(SystemTime::UNIX_EPOCH, None);
        let swept_out = feed(&mut swept, 2, &[late]).remove(0);
        let mut by_sweep: Vec<_> = sweep.into_iter().flat_map(|(_, o)| o.responses).collect();
        by_sweep.extend(swept_out.responses);
        assert_eq!(lazy_out.responses, by_sweep);
        assert_eq!(lazy_out.abandoned, 1);
        let kinds: Vec<_> = by_sweep.iter().map(records::kind_of).collect();
        assert_eq!(kinds, ["scorecard", "rejection"]);
        assert_eq!(
            lazy_out.dead.as_ref().map(|d| d.reason),
            Some(DeadReason::Rejected)
        );
    }

    #[test]
    fn a_quiet_partition_ends_its_calls_by_the_wall_clock() {
        let mut s = State::new(settings());
        s.assign((topic(), 0), None, None);
        feed(&mut s, 0, &[("a", 1, AGENT)]);
        // Arrived before the cut-off: the partition is quiet, record time moves to `now`.
        let ended = s.sweep(
            UNIX_EPOCH + Duration::from_secs(120),
            Some(std::time::Instant::now()),
        );
        assert_eq!(ended.len(), 1);
        assert_eq!(ended[0].1.abandoned, 1);
        assert_eq!(s.live(), 0);
    }

    #[test]
    fn the_replica_cap_rejects_new_conversations_and_dead_letters_them() {
        let mut s = State::new(settings());
        s.assign((topic(), 0), None, None);
        let out = feed(
            &mut s,
            0,
            &[("a", 1, AGENT), ("b", 1, AGENT), ("c", 1, AGENT)],
        );
        assert_eq!(s.live(), 2);
        let dead = out[2].dead.as_ref().unwrap();
        assert_eq!(dead.reason, DeadReason::Rejected);
        assert!(
            dead.description.starts_with("RESOURCE_EXHAUSTED"),
            "{}",
            dead.description
        );
        // The rejection is in the outputs too, outside any conversation's sequence.
        assert_eq!(out[2].responses[0].seq, 0);
        assert_eq!(s.revoke(&(topic(), 0)), 2);
        assert_eq!(s.live(), 0);
    }

    #[test]
    fn records_of_a_partition_not_owned_are_left_to_its_owner_decoded_or_not() {
        let mut s = State::new(settings());
        let record = Record {
            partition: 3,
            offset: 0,
            timestamp_ms: Some(1),
            key: "a",
        };
        // Undecodable: not dead-lettered here (the owner does that), only marked.
        assert!(s.record(&topic(), record, None).not_owned);
        let decoded = records::decode(
            "a",
            AGENT.as_bytes(),
            None,
            InputEncoding::Json,
            &Default::default(),
        );
        let out = s.record(&topic(), record, Some(decoded.unwrap()));
        assert!(out.not_owned && out.responses.is_empty());
        assert_eq!(s.live(), 0);
    }

    /// A consumer that has handled offset N does not handle offsets <= N again in the same
    /// assignment (#29: a replica handled input offsets 5212-5230 twice and dead-lettered 19
    /// valid records as "conversation has ended").
    #[test]
    fn an_offset_delivered_again_in_one_assignment_is_skipped() {
        let mut s = State::new(settings());
        s.assign((topic(), 0), None, None);
        let first = feed(
            &mut s,
            0,
            &[("a", 1, AGENT), ("a", 2, CUSTOMER), ("a", 3, END)],
        );
        assert!(first.iter().all(|o| !o.redelivered));
        assert_eq!(first[2].completed, 1);
        // The broker delivers offsets 1 and 2 again: nothing is written, nothing dead-lettered.
        let again = feed(&mut s, 1, &[("a", 2, CUSTOMER), ("a", 3, END)]);
        for o in &again {
            assert!(o.redelivered && o.responses.is_empty() && o.dead.is_none());
        }
        // The next offset is new work.
        let next = feed(&mut s, 3, &[("b", 4, AGENT)]);
        assert!(!next[0].redelivered && next[0].opened == 1);
        // A new assignment reads from where it is told to.
        s.revoke(&(topic(), 0));
        s.assign((topic(), 0), None, None);
        assert!(!feed(&mut s, 0, &[("c", 5, AGENT)])[0].redelivered);
    }
}

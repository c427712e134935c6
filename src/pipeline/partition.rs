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

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::records::{DeadLetter, DeadReason, Decoded};
use crate::engine::{
    self, Conversation, Emitted, End, EndReason, Event, InputLimits, RejectReason, Rejected, Rubric,
};
use crate::proto::{self, v1::*};
use crate::service::route::{self, Conversations as _, Gone};

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
}

impl Outcome {
    fn reject(&mut self, response: StreamConversationsResponse, r: &Rejected) {
        self.responses.push(response);
        if self.dead.is_none() {
            let reason = crate::service::error::rejection(r);
            self.dead = Some(DeadLetter::new(
                DeadReason::Rejected,
                &reason.field,
                format!(
                    "{}: {}",
                    reason
                        .reason()
                        .as_str_name()
                        .trim_start_matches("REJECTION_REASON_"),
                    reason.description
                ),
            ));
        }
    }
}

struct Live {
    conversation: Conversation,
    /// Offset of its first record: the partition's commit point stays at or below it while
    /// the conversation is live, so that whoever owns the partition next can rebuild it.
    first_offset: i64,
    seq: i64,
    /// Record time of its last record.
    last_ms: i64,
    /// What alert offsets count from: the start's time, else the first record's timestamp.
    base_ms: i64,
}

/// One partition's conversations and position.
#[derive(Default)]
struct Partition {
    live: HashMap<String, Live>,
    /// Conversations that ended or whose start was refused lately: id, record time, why.
    recent: VecDeque<(String, i64, Gone)>,
    /// The next offset to read (one past the last record handled).
    next_offset: Option<i64>,
    /// Records below this offset were handled, and their outputs written, by an earlier owner.
    replay_until: i64,
    /// Record time: the largest timestamp read.
    clock_ms: i64,
    /// When (wall clock) the last record arrived.
    last_arrival: Option<std::time::Instant>,
}

/// Where a partition may be committed: the offset to resume from and the offset processing
/// has reached (kept in the commit's metadata, so that the next owner writes nothing twice
/// below it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CommitPoint {
    /// The lowest offset a live conversation still needs, or `processed` if none is live.
    pub resume: i64,
    /// One past the last record handled.
    pub processed: i64,
}

/// The commit metadata that carries `processed`.
pub fn commit_metadata(processed: i64) -> String {
    format!("hearken:v1:processed={processed}")
}

/// `processed` from commit metadata, if it is hearken's.
pub fn parse_commit_metadata(metadata: &str) -> Option<i64> {
    metadata
        .strip_prefix("hearken:v1:processed=")
        .and_then(|n| n.parse().ok())
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

fn response(
    id: &str,
    seq: i64,
    payload: stream_conversations_response::Payload,
) -> StreamConversationsResponse {
    StreamConversationsResponse {
        conversation_id: id.to_owned(),
        seq,
        payload: Some(payload),
    }
}

fn rejection(id: &str, seq: i64, r: &Rejected) -> StreamConversationsResponse {
    response(
        id,
        seq,
        stream_conversations_response::Payload::Rejection(crate::service::error::rejection(r)),
    )
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

    /// Takes a partition on; records below `replay_until` (the last owner's processed offset,
    /// from the commit metadata) rebuild state without writing anything.
    pub fn assign(&mut self, partition: PartitionId, replay_until: Option<i64>) {
        let p = self.partitions.entry(partition).or_default();
        p.replay_until = replay_until.unwrap_or(0);
    }

    /// Lets a partition go; returns how many live conversations it held (the next owner
    /// rebuilds them).
    pub fn revoke(&mut self, partition: &PartitionId) -> usize {
        let n = self
            .partitions
            .remove(partition)
            .map_or(0, |p| p.live.len());
        self.live_total -= n;
        n
    }

    /// Where `partition` may be committed, if it has handled a record.
    pub fn commit_point(&self, partition: &PartitionId) -> Option<CommitPoint> {
        let p = self.partitions.get(partition)?;
        let processed = p.next_offset?;
        let resume = p
            .live
            .values()
            .map(|l| l.first_offset)
            .min()
            .unwrap_or(processed)
            .min(processed);
        Some(CommitPoint { resume, processed })
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
        let key = (Arc::clone(topic), record.partition);
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
        let rebuilt = record.offset < p.replay_until;
        p.advance(record);
        let Some(decoded) = decoded else {
            return Outcome {
                rebuilt,
                ..Outcome::default()
            };
        };
        let ts = record.timestamp_ms.unwrap_or(p.clock_ms);
        let mut ctx = Ctx {
            settings: &self.settings,
            live_total: &mut self.live_total,
            p,
            offset: record.offset,
            ts,
            out: Outcome {
                rebuilt,
                ..Outcome::default()
            },
        };
        let id = record.key;
        // An idle conversation ends before anything else is done with it, exactly as a sweep
        // would have ended it: whether it is idle depends on record time alone.
        ctx.end_if_idle(id);
        if let Some(start) = decoded.start_if_unknown
            && !ctx.p.live.contains_key(id)
            && ctx.gone_lately(id).is_none()
        {
            route::on_start(&mut ctx, id, &start, false, None);
        }
        for request in decoded.requests {
            let Some(payload) = request.payload else {
                continue; // keep-alive
            };
            match route::check_id(&request.conversation_id, &ctx.settings.input) {
                Ok(()) => route::route(&mut ctx, &request.conversation_id, payload),
                Err(r) => ctx.out.reject(rejection("", 0, &r), &r),
            }
        }
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
            if let (Some(last), Some(cut)) = (p.last_arrival, arrived_before)
                && last <= cut
            {
                p.clock_ms = p.clock_ms.max(now_ms);
            }
            let mut idle: Vec<String> = p
                .live
                .iter()
                .filter(|(_, l)| p.clock_ms - l.last_ms >= idle_ms)
                .map(|(id, _)| id.clone())
                .collect();
            if idle.is_empty() {
                continue;
            }
            idle.sort();
            let ts = p.clock_ms;
            let mut ctx = Ctx {
                settings: &self.settings,
                live_total: &mut self.live_total,
                p,
                offset: 0,
                ts,
                out: Outcome::default(),
            };
            for id in idle {
                ctx.abandon(&id);
            }
            all.push((key.clone(), ctx.out));
        }
        all
    }
}

impl Partition {
    fn advance(&mut self, record: Record<'_>) {
        self.next_offset = Some(record.offset + 1);
        if let Some(ts) = record.timestamp_ms {
            self.clock_ms = self.clock_ms.max(ts);
        }
        self.last_arrival = Some(std::time::Instant::now());
    }
}

/// One record's view of the state, and what it gives.
struct Ctx<'a> {
    settings: &'a Settings,
    live_total: &'a mut usize,
    p: &'a mut Partition,
    offset: i64,
    /// The record's timestamp (or the record time, if it has none).
    ts: i64,
    out: Outcome,
}

impl Ctx<'_> {
    fn close(&mut self, id: &str) {
        if self.p.live.remove(id).is_some() {
            *self.live_total -= 1;
            self.remember(id, Gone::Ended);
        }
    }

    fn end_if_idle(&mut self, id: &str) {
        let idle_ms = self.settings.idle_timeout.as_millis() as i64;
        if self
            .p
            .live
            .get(id)
            .is_some_and(|l| self.p.clock_ms - l.last_ms >= idle_ms)
        {
            self.abandon(id);
        }
    }

    fn abandon(&mut self, id: &str) {
        if self.p.live.contains_key(id) {
            self.observe(id, Event::End(End::default(), EndReason::Abandoned));
            self.close(id);
            self.out.abandoned += 1;
        }
    }

    /// Applies an event to a live conversation; returns whether it ended.
    fn observe(&mut self, id: &str, event: Event) -> bool {
        let clock = self.p.clock_ms;
        let Some(live) = self.p.live.get_mut(id) else {
            return false;
        };
        live.last_ms = clock;
        let base_ms = live.base_ms;
        let alert_time = move |a: &engine::Alert| {
            let ms = base_ms.saturating_add(a.offset_ms.max(0));
            Some(UNIX_EPOCH + Duration::from_millis(ms.max(0) as u64))
        };
        let mut ended = false;
        match live.conversation.observe(event) {
            Ok(emitted) => {
                use stream_conversations_response::Payload as P;
                for e in emitted {
                    live.seq += 1;
                    let payload = match e {
                        Emitted::Update(u) => P::Update(proto::update_to_proto(&u)),
                        Emitted::Alert(a) => P::Alert(proto::alert_to_proto(&a, alert_time(&a))),
                        Emitted::Scorecard(card) => {
                            ended = true;
                            P::Scorecard(proto::scorecard_to_proto(&card, alert_time))
                        }
                    };
                    self.out.responses.push(response(id, live.seq, payload));
                }
            }
            Err(r) => {
                live.seq += 1;
                let seq = live.seq;
                self.out.reject(rejection(id, seq, &r), &r);
            }
        }
        ended
    }
}

impl route::Conversations for Ctx<'_> {
    fn input_limits(&self) -> &InputLimits {
        &self.settings.input
    }

    fn is_live(&self, id: &str) -> bool {
        self.p.live.contains_key(id)
    }

    fn gone_lately(&mut self, id: &str) -> Option<Gone> {
        let linger = self.settings.ended_linger.as_millis() as i64;
        let clock = self.p.clock_ms;
        while self
            .p
            .recent
            .front()
            .is_some_and(|(_, at, _)| clock - at > linger)
        {
            self.p.recent.pop_front();
        }
        self.p
            .recent
            .iter()
            .rev()
            .find(|(g, _, _)| g == id)
            .map(|(_, _, gone)| *gone)
    }

    fn remember(&mut self, id: &str, gone: Gone) {
        if self.p.recent.len() >= self.settings.max_conversations.max(1) {
            self.p.recent.pop_front();
        }
        self.p
            .recent
            .push_back((id.to_owned(), self.p.clock_ms, gone));
    }

    fn forget(&mut self, id: &str) {
        self.p.recent.retain(|(g, _, _)| g != id);
    }

    fn open(&mut self, id: &str, start: &ConversationStart) -> Result<(), Rejected> {
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
        let conversation = Conversation::open(
            proto::start_from_proto(start),
            &self.settings.rubric,
            self.settings.input.clone(),
        )?;
        let base_ms = start
            .start_time
            .as_ref()
            .and_then(proto::system_time)
            .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
            .map_or(self.ts, |d| d.as_millis() as i64);
        self.p.live.insert(
            id.to_owned(),
            Live {
                conversation,
                first_offset: self.offset,
                seq: 0,
                last_ms: self.p.clock_ms,
                base_ms,
            },
        );
        *self.live_total += 1;
        self.out.opened += 1;
        Ok(())
    }

    /// A rejection for a live conversation takes its next seq; for another, seq 0.
    fn reject(&mut self, id: &str, r: Rejected) {
        let seq = match self.p.live.get_mut(id) {
            Some(live) => {
                live.seq += 1;
                live.seq
            }
            None => 0,
        };
        self.out.reject(rejection(id, seq, &r), &r);
    }

    fn apply(&mut self, id: &str, event: Event) {
        if self.observe(id, event) {
            self.close(id);
            self.out.completed += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::records::{self, InputEncoding};

    fn settings() -> Settings {
        Settings {
            rubric: Arc::new(Rubric::from_toml_str("").unwrap()),
            input: InputLimits::default(),
            max_conversations: 2,
            idle_timeout: Duration::from_secs(60),
            ended_linger: Duration::from_secs(60),
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
        s.assign((topic(), 0), None);
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

    #[test]
    fn a_partition_read_again_gives_the_same_responses_and_marks_what_was_written() {
        let records = [
            ("a", 1, AGENT),
            ("b", 2, AGENT),
            ("a", 3, CUSTOMER),
            ("a", 4, END),
            ("b", 5, END),
        ];
        let mut first = State::new(settings());
        first.assign((topic(), 0), None);
        let once = feed(&mut first, 0, &records);
        let mut again = State::new(settings());
        again.assign((topic(), 0), Some(3));
        let twice = feed(&mut again, 0, &records);
        for (i, (a, b)) in once.iter().zip(&twice).enumerate() {
            assert_eq!(a.responses, b.responses, "record {i}");
            assert!(!a.rebuilt);
            assert_eq!(b.rebuilt, i < 3, "record {i}");
        }
    }

    #[test]
    fn idle_is_judged_in_record_time_the_same_way_by_a_sweep_or_by_the_next_record() {
        let late = ("a", 1 + 61_000, CUSTOMER);
        let records = [("a", 1, AGENT), ("b", 61_001, AGENT)];
        // By the next record of the idle conversation: abandoned, then the record is rejected.
        let mut lazy = State::new(settings());
        lazy.assign((topic(), 0), None);
        feed(&mut lazy, 0, &records);
        let lazy_out = feed(&mut lazy, 2, &[late]).remove(0);
        // By a sweep in between (the partition is not quiet: no wall-clock move).
        let mut swept = State::new(settings());
        swept.assign((topic(), 0), None);
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
        s.assign((topic(), 0), None);
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
        s.assign((topic(), 0), None);
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
        s.assign((topic(), 0), None);
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
        s.assign((topic(), 0), None);
        assert!(!feed(&mut s, 0, &[("c", 5, AGENT)])[0].redelivered);
    }

    #[test]
    fn commit_metadata_round_trips_and_ignores_others() {
        assert_eq!(parse_commit_metadata(&commit_metadata(42)), Some(42));
        assert_eq!(parse_commit_metadata("something else"), None);
        assert_eq!(parse_commit_metadata(""), None);
    }
}

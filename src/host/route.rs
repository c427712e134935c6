//! How a request for a conversation is routed: the rules a gRPC stream (`service/stream`) and a
//! Kafka partition (`pipeline/partition.rs`) share, written once. A `start` opens; the first
//! utterance of an unknown conversation opens it with defaults; a signal or end needs a live
//! conversation; a conversation that ended lately, or whose start was refused, rejects what
//! comes for it rather than opening again.

use crate::engine::{self, End, EndReason, Event, InputLimits, RejectReason, Rejected};
use crate::proto::{self, v1::*};

/// A conversation that is not live but was lately.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Gone {
    /// It ended; its id is not reused for a while (R-PRIV-2).
    Ended,
    /// Its `start` was rejected (the field named): its other messages are rejected too, rather
    /// than silently opening it with defaults.
    StartRefused(&'static str),
}

/// A set of live conversations that requests are routed to (a host's, `live.rs`, with its
/// owner's caps and clock).
pub(crate) trait Conversations {
    /// The per-conversation input limits.
    fn input_limits(&self) -> &InputLimits;
    /// Whether `id` is live.
    fn is_live(&self, id: &str) -> bool;
    /// Why `id`, which is not live, was lately, if it was.
    fn gone_lately(&mut self, id: &str) -> Option<Gone>;
    /// Remembers why `id` is not live.
    fn remember(&mut self, id: &str, gone: Gone);
    /// Forgets a refused start of `id`.
    fn forget(&mut self, id: &str);
    /// Opens `id`, within the set's caps.
    fn open(&mut self, id: &str, start: &ConversationStart) -> Result<(), Rejected>;
    /// Answers with a rejection: it takes the conversation's next `seq` if it is live, else
    /// `seq` 0.
    fn reject(&mut self, id: &str, r: Rejected);
    /// Applies an event to the live conversation `id` (closing it if it ends).
    fn apply(&mut self, id: &str, event: Event);
}

/// Routes one request (its id already checked) to `set`.
pub(crate) fn route(
    set: &mut impl Conversations,
    id: &str,
    payload: stream_conversations_request::Payload,
) {
    use stream_conversations_request::Payload;
    let live = set.is_live(id);
    let gone = if live { None } else { set.gone_lately(id) };
    let event = match payload {
        Payload::Start(start) => return on_start(set, id, &start, live, gone),
        Payload::Utterance(utterance) => {
            let utterance = proto::utterance_from_proto(utterance);
            if !live {
                let refused = match gone {
                    Some(gone) => Err(not_live(gone)),
                    // The first utterance of an unknown conversation opens it.
                    None => set.open(id, &ConversationStart::default()),
                };
                if let Err(r) = refused {
                    let r = r.for_utterance(&utterance, set.input_limits());
                    return set.reject(id, r);
                }
            }
            Event::Utterance(utterance)
        }
        Payload::Signal(signal) => {
            if !live {
                let r = gone.map_or_else(
                    || unknown("unknown conversation; send start or an utterance first"),
                    not_live,
                );
                return set.reject(id, r);
            }
            match proto::signal_from_proto(&signal) {
                Some(signal) => Event::Signal(signal),
                None => {
                    let r = Rejected::new(
                        RejectReason::Malformed,
                        "signal.kind",
                        "must be a known, specified kind",
                    );
                    return set.reject(id, r);
                }
            }
        }
        Payload::End(end) => {
            if !live {
                let r = gone.map_or_else(|| unknown("unknown conversation"), not_live);
                return set.reject(id, r);
            }
            Event::End(
                End {
                    offset_ms: end.offset_ms,
                },
                EndReason::Completed,
            )
        }
    };
    set.apply(id, event);
}

/// A `start`: opens the conversation unless it is live or ended lately. A refused start is
/// remembered, so that the conversation's next messages do not open it with defaults.
pub(crate) fn on_start(
    set: &mut impl Conversations,
    id: &str,
    start: &ConversationStart,
    live: bool,
    gone: Option<Gone>,
) {
    if live {
        let r = Rejected::new(
            RejectReason::AlreadyLive,
            "start",
            "the conversation is already live",
        );
        return set.reject(id, r);
    }
    if gone == Some(Gone::Ended) {
        return set.reject(id, not_live(Gone::Ended));
    }
    // A start refused before is forgotten once this one is judged.
    if gone.is_some() {
        set.forget(id);
    }
    if let Err(r) = set.open(id, start) {
        // A cap that is full may have room later: only a start that is wrong in itself keeps
        // the conversation from opening by its next utterance.
        if !r.reason.may_pass_later() {
            set.remember(id, Gone::StartRefused(r.field));
        }
        set.reject(id, r);
    }
}

/// The `&'static` name of a start field a refused start was remembered for, read back from a
/// pipeline checkpoint: one of the fields a start can be refused for, else `start`.
pub(crate) fn start_field(name: &str) -> &'static str {
    const FIELDS: [&str; 6] = [
        "start",
        "start.language",
        "start.rubric_profile",
        "start.metadata",
        "start.channel",
        "conversation_id",
    ];
    FIELDS.into_iter().find(|f| *f == name).unwrap_or("start")
}

/// Checks a request's conversation id: the rejection (outside any sequence) if it is not one.
pub(crate) fn check_id(id: &str, limits: &InputLimits) -> Result<(), Rejected> {
    engine::limits::check_id(id, "conversation_id", limits.max_id_bytes)
}

/// Why a message for a conversation that is not live, but was lately, is rejected.
pub(crate) fn not_live(gone: Gone) -> Rejected {
    match gone {
        Gone::Ended => Rejected::new(
            RejectReason::ConversationEnded,
            "conversation_id",
            "the conversation has ended; use a new conversation_id",
        ),
        Gone::StartRefused(field) => Rejected::new(
            RejectReason::NotOpen,
            "start",
            format!(
                "the conversation's start was rejected ({field}); it is not open: send a valid start first"
            ),
        ),
    }
}

/// A signal or end for a conversation that is not known.
pub(crate) fn unknown(hint: &'static str) -> Rejected {
    Rejected::new(RejectReason::NotOpen, "conversation_id", hint)
}

//! Why a message could not be used, in the domain's terms. The engine, the routing of requests
//! and the transports name what went wrong; `service::error` alone turns that into the wire's
//! `RejectionReason` and into gRPC codes.

use super::{InputLimits, Utterance, limits};

/// What was wrong with a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RejectReason {
    /// A field is missing, empty, of an unknown kind or holds characters it may not.
    Malformed,
    /// A field is longer, or has more entries, than its limit.
    TooLong,
    /// An offset outside `[0, max_offset_ms]`.
    OffsetOutOfRange,
    /// An utterance that ends before it starts.
    EndsBeforeStart,
    /// A final utterance id already scored with different content, or a partial segment after
    /// the final one of the same id.
    DuplicateUtterance,
    /// The conversation has ended.
    ConversationEnded,
    /// A hold signal that does not fit: a hold already open, none open, or one ending before it
    /// started.
    HoldConflict,
    /// A `start` for a conversation that is already live.
    AlreadyLive,
    /// A message for a conversation that is not open: never started, or its start was refused.
    NotOpen,
    /// The conversation already has its maximum number of utterances.
    TooManyUtterances,
    /// A cap on live conversations is full (per stream, tenant, process or replica).
    TooManyConversations,
    /// Messages for the conversation come faster than its rate allows.
    RateLimited,
    /// The rubric profile does not exist.
    UnknownProfile,
}

impl RejectReason {
    /// Whether the same message may be accepted later, once a cap has room: a start refused for
    /// it is not held against the conversation.
    pub fn may_pass_later(self) -> bool {
        matches!(
            self,
            RejectReason::TooManyConversations | RejectReason::RateLimited
        )
    }
}

/// A message that could not be used. Names fields and limits, never text or metadata values.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {description}")]
pub struct Rejected {
    /// Why.
    pub reason: RejectReason,
    /// The offending field's path.
    pub field: &'static str,
    /// What is wrong.
    pub description: String,
    /// The utterance id, when the message had a valid one.
    pub utterance_id: Option<String>,
    /// How long to wait before retrying, when waiting helps.
    pub retry_after_ms: Option<i64>,
}

impl Rejected {
    /// A rejection without utterance id or retry hint.
    pub fn new(reason: RejectReason, field: &'static str, description: impl Into<String>) -> Self {
        Rejected {
            reason,
            field,
            description: description.into(),
            utterance_id: None,
            retry_after_ms: None,
        }
    }

    /// Names the utterance the rejection is about, when its id is a valid one (an invalid id is
    /// never echoed).
    pub fn for_utterance(mut self, utterance: &Utterance, limits: &InputLimits) -> Self {
        if limits::check_id(&utterance.utterance_id, "", limits.max_id_bytes).is_ok() {
            self.utterance_id = Some(utterance.utterance_id.clone());
        }
        self
    }

    /// Says when to try again.
    pub fn retry_after(mut self, ms: i64) -> Self {
        self.retry_after_ms = Some(ms);
        self
    }
}

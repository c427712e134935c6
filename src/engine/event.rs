//! Domain inputs of the engine: what a conversation is told. Not the proto types: the service
//! converts, so the engine never depends on the wire format.

use std::collections::BTreeMap;

/// How a conversation reaches the contact centre.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Channel {
    /// Speech, transcribed: every timing behaviour applies.
    #[default]
    Voice,
    /// Written chat: speech-timing behaviours (interruption, overtalk, dead air, monologue,
    /// speaking rate) are not computed.
    Chat,
}

/// Who spoke.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub enum Role {
    /// The agent whose listening is scored.
    Agent,
    /// The customer.
    Customer,
    /// Anyone else (IVR, a third party).
    Other,
    /// Not known.
    #[default]
    Unknown,
}

impl Role {
    /// The role in lower case, as files and pages write it: `agent`, `customer`, `other`,
    /// `unknown`.
    pub fn name(self) -> &'static str {
        match self {
            Role::Agent => "agent",
            Role::Customer => "customer",
            Role::Other => "other",
            Role::Unknown => "unknown",
        }
    }

    /// The role on the other side of the agent–customer pair, if this is one of the two.
    pub fn counterpart(self) -> Option<Role> {
        match self {
            Role::Agent => Some(Role::Customer),
            Role::Customer => Some(Role::Agent),
            Role::Other | Role::Unknown => None,
        }
    }
}

/// How a conversation starts.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Start {
    /// Voice or chat.
    pub channel: Channel,
    /// BCP-47 language tag ("en" when empty).
    pub language: String,
    /// Rubric profile name; empty for the default.
    pub rubric_profile: String,
    /// Free metadata. Never logged.
    pub metadata: BTreeMap<String, String>,
}

/// One transcript segment or chat message.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Utterance {
    /// Identifies the utterance in its conversation.
    pub utterance_id: String,
    /// Who spoke.
    pub role: Role,
    /// Which participant, when a role has several.
    pub participant_id: Option<String>,
    /// The words.
    pub text: String,
    /// Start in milliseconds from the conversation's start; `None` without timing.
    pub start_ms: Option<i64>,
    /// End in milliseconds from the conversation's start; `None` without timing.
    pub end_ms: Option<i64>,
    /// An interim segment, superseded by a later one with the same id.
    pub partial: bool,
    /// Recognition confidence in [0, 1].
    pub confidence: Option<f32>,
}

impl Utterance {
    /// The utterance's interval, when it has one.
    pub fn interval(&self) -> Option<(i64, i64)> {
        match (self.start_ms, self.end_ms) {
            (Some(start), Some(end)) => Some((start, end)),
            _ => None,
        }
    }
}

/// A non-speech event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignalKind {
    /// The customer was put on hold.
    HoldStarted,
    /// The hold ended.
    HoldEnded,
    /// The call was transferred.
    Transfer,
}

/// A non-speech event at an offset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Signal {
    /// What happened.
    pub kind: SignalKind,
    /// When, in milliseconds from the conversation's start.
    pub offset_ms: i64,
}

/// The conversation is over.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct End {
    /// End offset, when known.
    pub offset_ms: Option<i64>,
}

/// Why a conversation ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum EndReason {
    /// The client ended it.
    #[default]
    Completed,
    /// Nothing was heard of it within the idle timeout.
    Abandoned,
}

/// Everything a conversation can be told after it started.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// A transcript segment or message.
    Utterance(Utterance),
    /// A hold or transfer.
    Signal(Signal),
    /// The end, with its reason.
    End(End, EndReason),
}

//! The listening engine. **Pure**: no async, no I/O, no clocks, no globals, no randomness.
//! `Conversation::observe(event)` applies one event to one conversation's state and returns
//! what it caused, in order. The same events in the same order give the same outputs, field
//! for field, which is what lets a client rebuild a conversation anywhere by replaying it.
//!
//! Live streams, `ScoreTranscript`, `hearken score` and `hearken eval` all drive this one
//! engine; none of them scores on its own.
//!
//! Flow of one final utterance (`Conversation::score_final`): analyse → place on the windowed
//! timeline (`state`) → run every detector (`detectors`) and the learned layer (`learned`) →
//! update the running counts (`Metrics`) → follow-ups → alerts (`alerts`) → score (`scorer`)
//! and explain the change → emit. At `end`: the [`Scorecard`]. The submodules are private:
//! what other code needs is re-exported here.

pub(crate) mod alerts;
mod batch;
mod conversation;
pub(crate) mod detectors;
pub(crate) mod event;
mod finals;
pub(crate) mod followups;
pub(crate) mod language;
pub(crate) mod learned;
pub(crate) mod limits;
pub(crate) mod metrics;
mod output;
mod reject;
pub(crate) mod rubric;
pub(crate) mod scorecard;
pub(crate) mod scorer;
pub(crate) mod state;
pub(crate) mod text;
pub(crate) mod timing;

pub use alerts::{Alert, AlertKind, Severity};
pub use batch::{Scored, score_events, transcript_events};
pub use conversation::Conversation;
pub use detectors::{Behaviour, Detection};
pub use event::{Channel, End, EndReason, Event, Role, Signal, SignalKind, Start, Utterance};
pub use learned::model::ListeningModel;
pub use limits::InputLimits;
pub use metrics::Metrics;
pub use output::{Contribution, CustomerState, Emitted, Trend, Update};
pub use reject::{RejectReason, Rejected};
pub use rubric::{Profile, Rubric, RubricError};
pub use scorecard::{CoachingPoint, Scorecard};
pub use scorer::{Component, ComponentScore, Score, score_with_mood};

/// Alerts kept for the scorecard at most; later ones are still emitted live.
pub const MAX_ALERTS_KEPT: usize = 1_000;

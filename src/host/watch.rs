//! Who else watches the conversations an owner hosts (a gRPC stream or a Kafka partition): the
//! supervisor's floor page, when it is served. Owners know only this interface; the floor
//! implements it (so the floor depends on the host, never the other way round), and `serve` and
//! `pipeline` hand it to their owners.

use std::sync::Arc;

use crate::engine::Utterance;
use crate::proto::v1::{Alert, ConversationStart, ScoreUpdate, Scorecard};

/// Watches every conversation an owner opens.
pub trait Watcher: Send + Sync + std::fmt::Debug {
    /// A conversation opened; what is told about it goes to the returned call, which is
    /// dropped when the conversation is freed.
    fn open(
        &self,
        conversation_id: &str,
        tenant: Option<Arc<str>>,
        start: &ConversationStart,
    ) -> Box<dyn WatchedCall>;
}

/// One watched conversation: what the engine was given and what it emitted.
pub trait WatchedCall: Send + Sync + std::fmt::Debug {
    /// The utterance about to be scored.
    fn utterance(&self, utterance: &Utterance);
    /// A score update.
    fn update(&self, update: &ScoreUpdate);
    /// An alert.
    fn alert(&self, alert: &Alert);
    /// The scorecard: the conversation ended.
    fn scorecard(&self, card: &Scorecard);
}

/// Tells a watched conversation an answer the engine emitted (a rejection is not told).
pub(crate) fn tell(
    watched: &dyn WatchedCall,
    payload: &crate::proto::v1::stream_conversations_response::Payload,
) {
    use crate::proto::v1::stream_conversations_response::Payload;
    match payload {
        Payload::Update(update) => watched.update(update),
        Payload::Alert(alert) => watched.alert(alert),
        Payload::Scorecard(card) => watched.scorecard(card),
        Payload::Rejection(_) => {}
    }
}

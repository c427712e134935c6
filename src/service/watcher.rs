//! Who else watches the conversations a stream hosts: the supervisor's floor page, when it is
//! served. The service knows only this interface; the floor implements it (so the floor depends
//! on the service, never the other way round).

use std::sync::Arc;

use crate::engine::Utterance;
use crate::proto::v1::{Alert, ConversationStart, ScoreUpdate, Scorecard};

/// Watches every conversation the service opens.
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

//! The live conversations of one owner (a gRPC stream, a Kafka partition), written once: the
//! map of conversations by id with each one's `seq`, the memory of those that ended lately,
//! the routing of a request (`route.rs`), and `observe` → responses (`respond.rs`). What differs
//! between owners is asked of their [`Owner`]: its clock, its caps, its message rate, how an
//! alert is timed, who is told what, and what a conversation keeps besides.
//!
//! Sans-IO: a [`Host`] never awaits, reads a socket or the wall clock; its owner does.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use super::ended::{Ended, Moment};
use super::respond::{self, rejection, response};
use super::route::{self, Gone};
use super::watch::WatchedCall;
use crate::engine::{self, Conversation, End, EndReason, Event, InputLimits, Rejected, Rubric};
use crate::proto::v1::stream_conversations_response::Payload;
use crate::proto::{self, v1::*};

/// How a conversation left its host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Closed {
    /// Its `end` came, and its scorecard was answered.
    Completed,
    /// Its host ended it (idle, the client finished, the stream failed): scorecard `abandoned`.
    Abandoned,
}

impl Closed {
    /// The metric label.
    pub(crate) fn label(self) -> &'static str {
        match self {
            Closed::Completed => "completed",
            Closed::Abandoned => "abandoned",
        }
    }
}

/// What hosting asks of the owner of a set of conversations.
pub(crate) trait Owner {
    /// The owner's clock: the wall clock for a stream, record time for a Kafka partition.
    type Moment: Moment;
    /// What the owner keeps per conversation besides what the host keeps.
    type Extra;

    /// Per-conversation input limits.
    fn input_limits(&self) -> &InputLimits;
    /// The rubric a conversation opened now is scored with.
    fn rubric(&self) -> Arc<Rubric>;
    /// Now, on the owner's clock.
    fn now(&self) -> Self::Moment;
    /// How long an ended conversation's id is remembered, on the owner's clock.
    fn linger(&self) -> Duration;
    /// At most this many ended conversations are remembered.
    fn memory_cap(&self) -> usize;
    /// Room for another conversation, with `live` live here; judged before its start is.
    fn room(&self, live: usize) -> Result<(), Rejected>;
    /// Opens the owner's part of a conversation whose start was judged good (it may still be
    /// refused, by caps shared with other owners).
    fn open(&mut self, id: &str, start: &ConversationStart) -> Result<Self::Extra, Rejected>;
    /// Who else watches the conversation that just opened (the supervisor's floor), if anyone.
    fn watch(&self, id: &str, start: &ConversationStart) -> Option<Box<dyn WatchedCall>>;
    /// Whether a client's event may be applied now (the stream's message rate); if not, why.
    /// The refusal takes no `seq`: the event was not applied, and a client that sends it again
    /// later gets the same answers as if it had never been refused.
    fn admit(&mut self, extra: &mut Self::Extra, event: &Event) -> Result<(), Rejected>;
    /// An event is about to be applied to the conversation.
    fn touch(&mut self, extra: &mut Self::Extra);
    /// When an alert of the conversation was raised, as its wire time.
    fn alert_time(extra: &Self::Extra, alert: &engine::Alert) -> Option<SystemTime>;
    /// The conversation answered `payload` (the alert watchers are told alerts).
    fn told(&mut self, id: &str, payload: &Payload);
    /// A message was refused with `r` (the pipeline's dead letters).
    fn refused(&mut self, r: &Rejected);
    /// The conversation left the host (its slot under the caps goes with `extra`).
    fn closed(&mut self, extra: Self::Extra, how: Closed);
}

/// A live conversation.
pub(crate) struct Hosted<X> {
    conversation: Conversation,
    /// The `seq` of its last response.
    seq: i64,
    /// Its place on the supervisor's floor, when the page is served.
    watched: Option<Box<dyn WatchedCall>>,
    /// What its owner keeps besides.
    pub(crate) extra: X,
}

/// The live conversations of one owner, and those that ended lately.
/// `T` is the owner's clock, `X` what it keeps per conversation (its [`Owner`]'s `Moment` and
/// `Extra`: the owner itself may borrow what it needs for one request only).
pub(crate) struct Host<T, X> {
    live: HashMap<String, Hosted<X>>,
    recent: Ended<T>,
}

impl<T, X> Default for Host<T, X> {
    fn default() -> Self {
        Host {
            live: HashMap::new(),
            recent: Ended::default(),
        }
    }
}

impl<T: Moment, X> Host<T, X> {
    /// Live conversations.
    pub(crate) fn len(&self) -> usize {
        self.live.len()
    }

    /// Whether `id` is live.
    pub(crate) fn is_live(&self, id: &str) -> bool {
        self.live.contains_key(id)
    }

    /// What the owner keeps for `id`, if it is live.
    pub(crate) fn extra(&self, id: &str) -> Option<&X> {
        self.live.get(id).map(|h| &h.extra)
    }

    /// The live conversations, in no order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (&String, &Hosted<X>)> {
        self.live.iter()
    }

    /// The ids of the live conversations that `pick` chooses, sorted (an order that does not
    /// depend on the map's).
    pub(crate) fn ids_where(&self, pick: impl Fn(&X) -> bool) -> Vec<String> {
        let mut ids: Vec<String> = self
            .live
            .iter()
            .filter(|(_, h)| pick(&h.extra))
            .map(|(id, _)| id.clone())
            .collect();
        ids.sort();
        ids
    }

    /// The memory of conversations that ended lately.
    pub(crate) fn recent(&self) -> &Ended<T> {
        &self.recent
    }

    /// Replaces the memory of ended conversations (a pipeline partition's last owner's).
    pub(crate) fn set_recent(&mut self, recent: Ended<T>) {
        self.recent = recent;
    }

    /// Why `id`, which is not live, was lately, if it was.
    pub(crate) fn gone_lately<O: Owner<Moment = T, Extra = X>>(
        &mut self,
        owner: &O,
        id: &str,
    ) -> Option<Gone> {
        self.recent.gone_lately(id, owner.now(), owner.linger())
    }

    /// Answers one request: its id checked, then routed by the rules in `route.rs`.
    pub(crate) fn request<O: Owner<Moment = T, Extra = X>>(
        &mut self,
        owner: &mut O,
        out: &mut Vec<StreamConversationsResponse>,
        id: &str,
        payload: stream_conversations_request::Payload,
    ) {
        if let Err(r) = route::check_id(id, owner.input_limits()) {
            out.push(response("", 0, rejection(&r)));
            owner.refused(&r);
            return;
        }
        route::route(&mut self.routing(owner, out), id, payload);
    }

    /// Opens `id` with `start` unless it is live or ended lately (a pipeline's start implied
    /// by its first record).
    pub(crate) fn start_if_unknown<O: Owner<Moment = T, Extra = X>>(
        &mut self,
        owner: &mut O,
        out: &mut Vec<StreamConversationsResponse>,
        id: &str,
        start: &ConversationStart,
    ) {
        if !self.is_live(id) && self.gone_lately(owner, id).is_none() {
            route::on_start(&mut self.routing(owner, out), id, start, false, None);
        }
    }

    /// Ends `id`, if live, as abandoned (its scorecard answered). The host's own end is never
    /// rate-limited. Returns whether it was live.
    pub(crate) fn abandon<O: Owner<Moment = T, Extra = X>>(
        &mut self,
        owner: &mut O,
        out: &mut Vec<StreamConversationsResponse>,
        id: &str,
    ) -> bool {
        if !self.is_live(id) {
            return false;
        }
        let end = Event::End(End::default(), EndReason::Abandoned);
        self.observe(owner, out, id, end);
        self.close(owner, id, Closed::Abandoned);
        true
    }

    fn routing<'a, O: Owner<Moment = T, Extra = X>>(
        &'a mut self,
        owner: &'a mut O,
        out: &'a mut Vec<StreamConversationsResponse>,
    ) -> Routing<'a, T, X, O> {
        Routing {
            host: self,
            owner,
            out,
        }
    }

    /// Frees a conversation that ended and remembers its id.
    fn close<O: Owner<Moment = T, Extra = X>>(&mut self, owner: &mut O, id: &str, how: Closed) {
        if let Some(hosted) = self.live.remove(id) {
            owner.closed(hosted.extra, how);
            let now = owner.now();
            self.recent
                .remember(id, now, Gone::Ended, owner.memory_cap());
        }
    }

    /// Applies an event to a live conversation, answering into `out`; returns whether it
    /// ended.
    fn observe<O: Owner<Moment = T, Extra = X>>(
        &mut self,
        owner: &mut O,
        out: &mut Vec<StreamConversationsResponse>,
        id: &str,
        event: Event,
    ) -> bool {
        let Some(hosted) = self.live.get_mut(id) else {
            return false;
        };
        owner.touch(&mut hosted.extra);
        let Hosted {
            conversation,
            seq,
            watched,
            extra,
        } = hosted;
        let watched = watched.as_deref();
        if let (Some(watched), Event::Utterance(u)) = (watched, &event) {
            watched.utterance(u);
        }
        let extra = &*extra;
        let told = respond::respond(
            conversation,
            id,
            seq,
            event,
            |a| O::alert_time(extra, a),
            |payload| {
                if let Some(watched) = watched {
                    super::watch::tell(watched, payload);
                }
                owner.told(id, payload);
            },
            out,
        );
        told.unwrap_or_else(|r| {
            owner.refused(&r);
            false
        })
    }
}

/// A host's conversations as the routing rules see them, with the answers so far.
struct Routing<'a, T, X, O> {
    host: &'a mut Host<T, X>,
    owner: &'a mut O,
    out: &'a mut Vec<StreamConversationsResponse>,
}

impl<T: Moment, X, O: Owner<Moment = T, Extra = X>> route::Conversations for Routing<'_, T, X, O> {
    fn input_limits(&self) -> &InputLimits {
        self.owner.input_limits()
    }

    fn is_live(&self, id: &str) -> bool {
        self.host.is_live(id)
    }

    fn gone_lately(&mut self, id: &str) -> Option<Gone> {
        self.host.gone_lately(self.owner, id)
    }

    fn remember(&mut self, id: &str, gone: Gone) {
        let (now, cap) = (self.owner.now(), self.owner.memory_cap());
        self.host.recent.remember(id, now, gone, cap);
    }

    fn forget(&mut self, id: &str) {
        self.host.recent.forget(id);
    }

    fn open(&mut self, id: &str, start: &ConversationStart) -> Result<(), Rejected> {
        let owner = &mut *self.owner;
        owner.room(self.host.live.len())?;
        let conversation = Conversation::open(
            proto::start_from_proto(start),
            &owner.rubric(),
            owner.input_limits().clone(),
        )?;
        let extra = owner.open(id, start)?;
        let watched = owner.watch(id, start);
        self.host.live.insert(
            id.to_owned(),
            Hosted {
                conversation,
                seq: 0,
                watched,
                extra,
            },
        );
        Ok(())
    }

    /// A rejection for a live conversation takes its next `seq`; for another, `seq` 0.
    fn reject(&mut self, id: &str, r: Rejected) {
        let seq = match self.host.live.get_mut(id) {
            Some(hosted) => {
                hosted.seq += 1;
                hosted.seq
            }
            None => 0,
        };
        self.out.push(response(id, seq, rejection(&r)));
        self.owner.refused(&r);
    }

    /// Applies a client's event, if its owner admits it now.
    fn apply(&mut self, id: &str, event: Event) {
        let Some(hosted) = self.host.live.get_mut(id) else {
            return;
        };
        if let Err(r) = self.owner.admit(&mut hosted.extra, &event) {
            self.out.push(response(id, 0, rejection(&r)));
            self.owner.refused(&r);
            return;
        }
        if self.host.observe(self.owner, self.out, id, event) {
            self.host.close(self.owner, id, Closed::Completed);
        }
    }
}

//! An event applied to a live conversation, and what it answers: each thing the engine emits
//! takes the conversation's next `seq`, and so does a rejection of the event; a rejection of a
//! message for no live conversation takes `seq` 0.

use std::time::SystemTime;

use crate::engine::{self, Conversation, Emitted, Event, Rejected};
use crate::proto::{self, v1::*};

use stream_conversations_response::Payload;

/// A response of `conversation_id`.
pub(crate) fn response(
    conversation_id: &str,
    seq: i64,
    payload: Payload,
) -> StreamConversationsResponse {
    StreamConversationsResponse {
        conversation_id: conversation_id.to_owned(),
        seq,
        payload: Some(payload),
    }
}

/// A rejection on the wire.
pub(crate) fn rejection(r: &Rejected) -> Payload {
    Payload::Rejection(proto::rejection(r))
}

/// Applies `event` to `conversation` (`id`, its last `seq`), appending the answers to `out`.
/// Alerts are timed by `alert_time`; `each` sees every answer the engine emitted before it is
/// appended (the stream tells the floor and the alert watchers). Returns whether the
/// conversation ended; a refused event's rejection is appended too (it takes the next `seq`)
/// and returned, for owners that also record it elsewhere (the pipeline's dead letters).
pub(crate) fn respond(
    conversation: &mut Conversation,
    id: &str,
    seq: &mut i64,
    event: Event,
    alert_time: impl Fn(&engine::Alert) -> Option<SystemTime>,
    mut each: impl FnMut(&Payload),
    out: &mut Vec<StreamConversationsResponse>,
) -> Result<bool, Rejected> {
    let mut ended = false;
    match conversation.observe(event) {
        Ok(emitted) => {
            for e in emitted {
                *seq += 1;
                let payload = match e {
                    Emitted::Update(u) => Payload::Update(proto::update_to_proto(&u)),
                    Emitted::Alert(a) => Payload::Alert(proto::alert_to_proto(&a, alert_time(&a))),
                    Emitted::Scorecard(card) => {
                        ended = true;
                        Payload::Scorecard(proto::scorecard_to_proto(&card, &alert_time))
                    }
                };
                each(&payload);
                out.push(response(id, *seq, payload));
            }
        }
        Err(r) => {
            *seq += 1;
            out.push(response(id, *seq, rejection(&r)));
            return Err(r);
        }
    }
    Ok(ended)
}

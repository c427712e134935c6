//! What hosting live conversations takes, whatever carries them: a gRPC stream
//! (`service/stream`) or a Kafka partition (`pipeline/partition.rs`). Sans-IO: no sockets, no
//! runtime, no wall clock unless the owner passes one in.
//!
//! - `live`: the live conversations of one owner, written once: the map by id, `seq`, the
//!   memory of those that ended, requests routed and events observed; what differs between
//!   owners (clock, caps, rate, alert time, who is told) is asked of the owner.
//! - `route`: the rules a request follows (a start opens, an utterance of an unknown
//!   conversation opens it, an ended one rejects what comes late).
//! - `ended`: the memory of conversations that ended, or whose start was refused, lately.
//! - `respond`: an event applied to a live conversation, and what it answers, in `seq` order.
//! - `watch`: who else is told what the conversations do (the supervisor's floor page).

pub mod ended;
pub(crate) mod live;
pub mod respond;
pub(crate) mod route;
pub mod watch;

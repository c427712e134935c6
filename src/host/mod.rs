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
//!
//! Who is told what, and why not one channel of host events: the host calls its owner's hooks
//! (`Owner::told`, `closed`, `refused`) in line, and each listener takes what it needs in its own
//! way. The floor is a subscriber: a watched call queues what it is told on the floor's bounded
//! channel and one aggregator task owns the page's state (no lock shared with a stream task);
//! alert watchers get a tokio broadcast; telemetry is counters the hooks add to. A channel of
//! every host event, with a task fanning it out, would put a send and a task hop on every
//! utterance for listeners that need less (a counter is one atomic add), on the path issue #31
//! asks to pay only for scoring.

pub mod ended;
pub(crate) mod live;
pub mod respond;
pub(crate) mod route;
pub mod watch;

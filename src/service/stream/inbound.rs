//! The client's side of a stream, read promptly.
//!
//! HTTP/2 (h2) keeps a connection-wide budget for small DATA frames that arrived but were not
//! yet read by the application, and closes the *whole connection* (GOAWAY ENHANCE_YOUR_CALM)
//! when it runs out; every call multiplexed on that connection dies with it. A stream task that
//! reads a message only after scoring the previous one and queuing its answers leaves a burst
//! of small messages unread in h2. So a reader task takes each message off the connection as it
//! arrives and parks it in the stream's own bounded queue (`inbound_queue` messages and
//! `inbound_queue_bytes` bytes, and within the process's `max_inflight_request_bytes` across
//! all streams). Only when that queue is full does the reader stop, and then
//! HTTP/2 flow control slows the sender with at most one stream window of data left unread
//! (see `server.rs` for the window sizes and what they bound).
//!
//! A request stream that fails is sorted here: a client that went away, or a message that could
//! not be decoded (malformed protobuf, invalid UTF-8, over the size limit), which ends the
//! stream with a status that says so.

use std::sync::Arc;

use prost::Message as _;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};
use tokio::time::Instant;
use tonic::{Code, Status, Streaming};

use crate::proto::v1::StreamConversationsRequest;
use crate::service::ServiceError;

/// What the reader hands the stream task.
pub(super) enum Received {
    /// One request, when it arrived, and its share of the stream's and the process's byte
    /// budgets (given back when it is handled).
    Message {
        request: StreamConversationsRequest,
        at: Instant,
        _bytes: Option<(OwnedSemaphorePermit, OwnedSemaphorePermit)>,
    },
    /// The client has sent everything (half-close).
    Finished,
    /// The client is gone: nothing more can be delivered.
    Gone,
    /// The request stream cannot go on: the stream ends with this error.
    Failed(ServiceError),
}

/// What a stream may hold read and unhandled.
pub(super) struct Budget {
    /// Messages in the stream's queue.
    pub(super) messages: usize,
    /// Bytes in the stream's queue.
    pub(super) bytes: usize,
    /// Bytes across the process's streams (shared), and its size.
    pub(super) process: Arc<Semaphore>,
    pub(super) process_cap: usize,
}

/// Starts reading `inbound` into a queue within `budget`.
pub(super) fn read(
    mut inbound: Streaming<StreamConversationsRequest>,
    budget: Budget,
    max_message_bytes: usize,
) -> mpsc::Receiver<Received> {
    let (tx, rx) = mpsc::channel(budget.messages.max(1));
    let cap = budget
        .bytes
        .min(budget.process_cap)
        .clamp(1, Semaphore::MAX_PERMITS);
    let stream_bytes = Arc::new(Semaphore::new(cap));
    let process_bytes = budget.process;
    tokio::spawn(async move {
        loop {
            let next = tokio::select! {
                _ = tx.closed() => return,
                next = inbound.message() => next,
            };
            let received = match next {
                Ok(Some(request)) => {
                    let at = Instant::now();
                    // A message takes its encoded size from both budgets (all of the smaller
                    // one, if larger).
                    let size = (request.encoded_len() as u32).min(cap as u32).max(1);
                    let permit = tokio::select! {
                        _ = tx.closed() => return,
                        permits = async {
                            let stream = Arc::clone(&stream_bytes).acquire_many_owned(size).await.ok()?;
                            let process = Arc::clone(&process_bytes).acquire_many_owned(size).await.ok()?;
                            Some((stream, process))
                        } => permits,
                    };
                    Received::Message {
                        request,
                        at,
                        _bytes: permit,
                    }
                }
                Ok(None) => Received::Finished,
                Err(status) => classify(&status, max_message_bytes),
            };
            let last = !matches!(received, Received::Message { .. });
            if tx.send(received).await.is_err() || last {
                return;
            }
        }
    });
    rx
}

/// Sorts a failed request stream: a transport error (the connection or the stream broke, the
/// client reset it) means the client is gone; anything tonic's decoder reports means the client
/// sent something that cannot be used, and the stream must end saying so.
fn classify(status: &Status, max_message_bytes: usize) -> Received {
    use std::error::Error as _;
    if status.source().is_some() {
        tracing::debug!(code = ?status.code(), "inbound stream broke");
        return Received::Gone;
    }
    tracing::debug!(code = ?status.code(), "a request could not be decoded");
    Received::Failed(match status.code() {
        // tonic: "decoded message length too large" (and a decompressed one).
        Code::OutOfRange | Code::ResourceExhausted => ServiceError::TooLarge {
            over: crate::service::error::Oversize::Message,
            what: "a StreamConversations request",
            limit: max_message_bytes,
        },
        _ => ServiceError::MalformedMessage,
    })
}

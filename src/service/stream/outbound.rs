//! The server's side of a stream: a bounded queue of responses (R-SLOW-1), unless the task
//! aborts it (R-SLOW-2), in which case the abort status goes out at once.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;
use tokio_stream::Stream;
use tonic::Status;

use crate::proto::v1::StreamConversationsResponse;
use crate::telemetry::metrics::Metrics;

/// A queued response, with the time its utterance arrived when it is that utterance's update.
pub(super) struct Queued {
    pub(super) response: Result<StreamConversationsResponse, Status>,
    pub(super) utterance_received: Option<Instant>,
}

/// The response stream: the queue, unless the task aborts it, in which case the abort status
/// goes out at once and whatever was queued is dropped.
pub(super) struct Outbound {
    pub(super) rx: mpsc::Receiver<Queued>,
    pub(super) abort: Option<oneshot::Receiver<Status>>,
    pub(super) done: bool,
    pub(super) metrics: Arc<Metrics>,
}

impl Stream for Outbound {
    type Item = Result<StreamConversationsResponse, Status>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        if this.done {
            return Poll::Ready(None);
        }
        if let Some(abort) = this.abort.as_mut() {
            match Pin::new(abort).poll(cx) {
                Poll::Ready(Ok(status)) => {
                    this.done = true;
                    this.rx.close();
                    return Poll::Ready(Some(Err(status)));
                }
                Poll::Ready(Err(_)) => this.abort = None,
                Poll::Pending => {}
            }
        }
        let queued = std::task::ready!(this.rx.poll_recv(cx));
        Poll::Ready(queued.map(|q| {
            if let Some(received) = q.utterance_received {
                this.metrics.utterance_answered(received.elapsed());
            }
            q.response
        }))
    }
}

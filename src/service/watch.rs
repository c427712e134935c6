//! `WatchAlerts`: a supervisor's feed of alerts across conversations. Producers publish into a
//! bounded broadcast and never wait; a watcher that falls behind by more than the buffer is told
//! how many alerts it missed (an `AlertGap`) and carries on from the newest (R-SLOW-3).

use std::collections::HashSet;

use tokio::sync::{broadcast, mpsc};
use tokio_stream::wrappers::ReceiverStream;

use super::error::ServiceError;
use super::{PublishedAlert, ResponseStream, Shared};
use crate::proto::v1::*;

/// Conversation ids a watcher may filter on.
const MAX_FILTER_IDS: usize = 10_000;
/// Responses queued per watcher.
const WATCHER_QUEUE: usize = 64;

struct Filter {
    conversations: HashSet<String>,
    kinds: HashSet<i32>,
    min_severity: i32,
}

impl Filter {
    fn matches(&self, a: &PublishedAlert) -> bool {
        (self.conversations.is_empty() || self.conversations.contains(&*a.conversation_id))
            && (self.kinds.is_empty() || self.kinds.contains(&a.alert.kind))
            && a.alert.severity >= self.min_severity
    }
}

pub(super) fn start(
    shared: &Shared,
    request: WatchAlertsRequest,
) -> Result<ResponseStream<WatchAlertsResponse>, ServiceError> {
    let invalid = |field: &str, description: &str| ServiceError::InvalidArgument {
        field: field.into(),
        description: description.into(),
    };
    if request.conversation_ids.len() > MAX_FILTER_IDS {
        return Err(invalid("conversation_ids", "must hold at most 10000 ids"));
    }
    if request
        .kinds
        .iter()
        .any(|k| !matches!(AlertKind::try_from(*k), Ok(k) if k != AlertKind::Unspecified))
    {
        return Err(invalid("kinds", "must hold known, specified alert kinds"));
    }
    if Severity::try_from(request.min_severity).is_err() {
        return Err(invalid("min_severity", "must be a known severity"));
    }
    let filter = Filter {
        conversations: request.conversation_ids.into_iter().collect(),
        kinds: request.kinds.into_iter().collect(),
        min_severity: request.min_severity,
    };
    let mut alerts = shared.alerts.subscribe();
    let mut draining = shared.draining.clone();
    let (tx, rx) = mpsc::channel(WATCHER_QUEUE);
    tokio::spawn(async move {
        loop {
            let next = tokio::select! {
                biased;
                _ = async {
                    if draining.wait_for(|d| *d).await.is_err() {
                        std::future::pending::<()>().await;
                    }
                } => {
                    let _ = tx.send(Err(ServiceError::Draining.into())).await;
                    break;
                }
                _ = tx.closed() => break,
                next = alerts.recv() => next,
            };
            let payload = match next {
                Ok(published) if filter.matches(&published) => {
                    watch_alerts_response::Payload::Alert(WatchedAlert {
                        conversation_id: published.conversation_id.to_string(),
                        alert: Some(published.alert),
                    })
                }
                Ok(_) => continue,
                Err(broadcast::error::RecvError::Lagged(missed)) => {
                    watch_alerts_response::Payload::Gap(AlertGap { missed })
                }
                Err(broadcast::error::RecvError::Closed) => break,
            };
            if tx
                .send(Ok(WatchAlertsResponse {
                    payload: Some(payload),
                }))
                .await
                .is_err()
            {
                break;
            }
        }
    });
    Ok(Box::pin(ReceiverStream::new(rx)))
}

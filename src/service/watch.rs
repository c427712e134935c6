//! `WatchAlerts`: a supervisor's feed of alerts across conversations. Producers publish into a
//! bounded broadcast and never wait; a watcher that falls behind by more than the buffer is told
//! how many alerts it missed (an `AlertGap`) and carries on from the newest (R-SLOW-3).
//!
//! Bounded: a filter is at most `max_watch_request_bytes` on the wire (refused before it is
//! decoded) and names at most `max_watch_filter_ids` valid ids; at most `max_watchers` watch
//! at once. With authentication on, a watcher sees only its own tenant's alerts.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use tokio::sync::{broadcast, mpsc};
use tokio_stream::wrappers::ReceiverStream;

use super::error::ServiceError;
use super::{PublishedAlert, ResponseStream, Shared};
use crate::proto::v1::*;

/// Responses queued per watcher.
const WATCHER_QUEUE: usize = 64;

struct Filter {
    /// The watcher's authenticated tenant: only its alerts (`None`: no authentication).
    tenant: Option<Arc<str>>,
    conversations: HashSet<String>,
    kinds: HashSet<i32>,
    min_severity: i32,
}

impl Filter {
    fn matches(&self, a: &PublishedAlert) -> bool {
        (self.tenant.is_none() || self.tenant == a.tenant)
            && (self.conversations.is_empty() || self.conversations.contains(&*a.conversation_id))
            && (self.kinds.is_empty() || self.kinds.contains(&a.alert.kind))
            && a.alert.severity >= self.min_severity
    }
}

/// A watcher's place under `max_watchers`, given back when its task ends.
struct WatcherSlot(Arc<Shared>);

impl Drop for WatcherSlot {
    fn drop(&mut self) {
        self.0.watchers.fetch_sub(1, Ordering::Relaxed);
    }
}

/// A watch request's filter, checked: ids, kinds and severity as the wire defines them.
fn check_request(
    request: &WatchAlertsRequest,
    limits: &crate::service::Limits,
) -> Result<(), ServiceError> {
    let invalid = |field: &str, description: &str| ServiceError::InvalidArgument {
        field: field.into(),
        description: description.into(),
    };
    if request.conversation_ids.len() > limits.max_watch_filter_ids {
        return Err(invalid(
            "conversation_ids",
            &format!("must hold at most {} ids", limits.max_watch_filter_ids),
        ));
    }
    for id in &request.conversation_ids {
        crate::engine::limits::check_id(id, "conversation_ids", limits.input.max_id_bytes)
            .map_err(|r| invalid(r.field, &r.description))?;
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
    Ok(())
}

pub(super) fn start(
    shared: &Arc<Shared>,
    request: WatchAlertsRequest,
    tenant: Option<Arc<str>>,
) -> Result<ResponseStream<WatchAlertsResponse>, ServiceError> {
    let limits = &shared.limits;
    check_request(&request, limits)?;
    if shared.watchers.fetch_add(1, Ordering::Relaxed) >= limits.max_watchers {
        shared.watchers.fetch_sub(1, Ordering::Relaxed);
        return Err(ServiceError::TooMany {
            what: "WatchAlerts streams on this server",
            limit: limits.max_watchers,
        });
    }
    let slot = WatcherSlot(Arc::clone(shared));
    let filter = Filter {
        tenant,
        conversations: request.conversation_ids.into_iter().collect(),
        kinds: request.kinds.into_iter().collect(),
        min_severity: request.min_severity,
    };
    let mut alerts = shared.alerts.subscribe();
    let mut draining = shared.draining.clone();
    let (tx, rx) = mpsc::channel(WATCHER_QUEUE);
    tokio::spawn(async move {
        let _slot = slot;
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

//! gRPC health (`grpc.health.v1`, R-HEALTH-1) for `""` (liveness) and
//! `hearken.v1.ListeningService` (readiness).
//!
//! Readiness is NOT_SERVING while the server drains and while the process holds its maximum of
//! live conversations (it turns SERVING again below 95 % of the cap), so that Kubernetes routes
//! new calls to other pods instead of to one that would reject them. Liveness stays SERVING
//! until the drain begins. When streams are told to go, `Watch` streams end too, with
//! UNAVAILABLE (`DRAINING`) after their last status, so that a probe holding a watch open never
//! holds the drain to its deadline.

use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio::sync::watch;
use tokio_stream::Stream;
use tonic::{Request, Response, Status};
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_server::{Health, HealthServer};
use tonic_health::pb::{HealthCheckRequest, HealthCheckResponse};

use super::error::ServiceError;

/// The readiness service's name.
pub const LISTENING_SERVICE: &str = "hearken.v1.ListeningService";

/// What health reports; shared by the server (draining) and the service (its caps).
#[derive(Debug)]
pub struct Readiness {
    liveness: watch::Sender<ServingStatus>,
    readiness: watch::Sender<ServingStatus>,
    draining: AtomicBool,
    at_cap: AtomicBool,
}

impl Default for Readiness {
    fn default() -> Self {
        Readiness {
            liveness: watch::Sender::new(ServingStatus::Serving),
            readiness: watch::Sender::new(ServingStatus::NotServing),
            draining: AtomicBool::new(false),
            at_cap: AtomicBool::new(false),
        }
    }
}

impl Readiness {
    /// The rubric is loaded and validated: ready, unless draining or at the cap.
    pub fn ready(&self) {
        self.update();
    }

    /// The drain has begun: both services NOT_SERVING from now on.
    pub fn draining(&self) {
        self.draining.store(true, Ordering::SeqCst);
        self.liveness.send_replace(ServingStatus::NotServing);
        self.update();
    }

    /// The process now holds `live` conversations of at most `cap`.
    pub(crate) fn conversations_changed(&self, live: usize, cap: usize) {
        let was = self.at_cap.load(Ordering::Relaxed);
        let now = if was {
            // Hysteresis: ready again only with some room, not on every freed slot.
            live.saturating_mul(100) >= cap.saturating_mul(95)
        } else {
            live >= cap
        };
        if now != was {
            self.at_cap.store(now, Ordering::SeqCst);
            if now {
                tracing::warn!(
                    cap,
                    "at the live-conversation cap: readiness NOT_SERVING until below 95 %"
                );
            } else {
                tracing::info!(cap, "below the live-conversation cap: readiness SERVING");
            }
            self.update();
        }
    }

    fn update(&self) {
        let serving = !self.draining.load(Ordering::SeqCst) && !self.at_cap.load(Ordering::SeqCst);
        let status = if serving {
            ServingStatus::Serving
        } else {
            ServingStatus::NotServing
        };
        self.readiness.send_if_modified(|current| {
            let changed = *current != status;
            *current = status;
            changed
        });
    }

    fn status_of(&self, service: &str) -> Option<&watch::Sender<ServingStatus>> {
        match service {
            "" => Some(&self.liveness),
            LISTENING_SERVICE => Some(&self.readiness),
            _ => None,
        }
    }
}

/// The `grpc.health.v1.Health` service over a [`Readiness`]; its `Watch` streams end when
/// `draining` turns true (the signal that tells every stream to go).
#[derive(Debug, Clone)]
pub struct HealthService {
    readiness: std::sync::Arc<Readiness>,
    draining: watch::Receiver<bool>,
}

impl HealthService {
    /// Health over `readiness`, watchers ended by `draining`.
    pub fn new(readiness: std::sync::Arc<Readiness>, draining: watch::Receiver<bool>) -> Self {
        HealthService {
            readiness,
            draining,
        }
    }

    /// As a tonic service.
    pub fn server(self) -> HealthServer<HealthService> {
        HealthServer::new(self)
    }
}

type WatchStream = Pin<Box<dyn Stream<Item = Result<HealthCheckResponse, Status>> + Send>>;

fn answer(status: ServingStatus) -> HealthCheckResponse {
    HealthCheckResponse {
        status: status as i32,
    }
}

#[tonic::async_trait]
impl Health for HealthService {
    async fn check(
        &self,
        request: Request<HealthCheckRequest>,
    ) -> Result<Response<HealthCheckResponse>, Status> {
        let status = self
            .readiness
            .status_of(&request.get_ref().service)
            .ok_or_else(|| Status::not_found("service not registered"))?;
        Ok(Response::new(answer(*status.borrow())))
    }

    type WatchStream = WatchStream;

    async fn watch(
        &self,
        request: Request<HealthCheckRequest>,
    ) -> Result<Response<Self::WatchStream>, Status> {
        let mut statuses = self
            .readiness
            .status_of(&request.get_ref().service)
            .ok_or_else(|| Status::not_found("service not registered"))?
            .subscribe();
        let mut ended = self.draining.clone();
        let (tx, rx) = tokio::sync::mpsc::channel(4);
        // The current status, each change, and once the drain ends watchers, UNAVAILABLE.
        tokio::spawn(async move {
            let first = *statuses.borrow_and_update();
            let mut next = Some(first);
            loop {
                if let Some(status) = next.take()
                    && tx.send(Ok(answer(status))).await.is_err()
                {
                    return;
                }
                let drained = tokio::select! {
                    biased;
                    changed = statuses.changed() => match changed {
                        Ok(()) => {
                            let status = *statuses.borrow_and_update();
                            next = Some(status);
                            false
                        }
                        Err(_) => return,
                    },
                    // A server that stops without draining drops the sender: no end then.
                    () = async {
                        if ended.wait_for(|e| *e).await.is_err() {
                            std::future::pending::<()>().await;
                        }
                    } => true,
                    _ = tx.closed() => return,
                };
                if drained {
                    let _ = tx.send(Err(Status::from(ServiceError::Draining))).await;
                    return;
                }
            }
        });
        let stream: WatchStream = Box::pin(tokio_stream::wrappers::ReceiverStream::new(rx));
        Ok(Response::new(stream))
    }
}

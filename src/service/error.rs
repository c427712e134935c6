//! The one place where what went wrong becomes what the wire says: stream- and call-level
//! failures become gRPC statuses, and the engine's and routing's reasons for refusing a message
//! ([`RejectReason`]) become the proto `RejectionReason` of an in-band rejection or, when a whole
//! call fails on them, a status. Every status carries `ErrorInfo { reason, domain: "hearken" }`;
//! none carries transcript text or metadata values.

use std::time::Duration;

use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

use crate::engine::{RejectReason, Rejected};
use crate::proto::WireName as _;
use crate::proto::v1::RejectionReason;
pub use crate::proto::{rejection, rejection_reason};

/// The gRPC code of a call that fails on a refused message (a `ScoreTranscript` whose start is
/// refused).
fn rejection_code(reason: RejectReason) -> Code {
    match rejection_reason(reason) {
        RejectionReason::OutOfRange => Code::OutOfRange,
        RejectionReason::AlreadyExists => Code::AlreadyExists,
        RejectionReason::FailedPrecondition | RejectionReason::UnknownProfile => {
            Code::FailedPrecondition
        }
        RejectionReason::ResourceExhausted => Code::ResourceExhausted,
        RejectionReason::InvalidArgument | RejectionReason::Unspecified => Code::InvalidArgument,
    }
}

/// Which limit a request is over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Oversize {
    /// The encoded message is larger than the method's limit (`MESSAGE_TOO_LARGE`).
    Message,
    /// A transcript has more utterances than allowed (`TOO_MANY_UTTERANCES`).
    Utterances,
}

/// The `ErrorInfo.domain` of every hearken error.
pub const ERROR_DOMAIN: &str = "hearken";

/// What can end a call.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ServiceError {
    /// A request argument is missing or invalid (whole-call problems).
    #[error("{field}: {description}")]
    InvalidArgument {
        /// Field path.
        field: String,
        /// What is wrong (limits only).
        description: String,
    },
    /// A request is larger than its limit.
    #[error("{what} exceeds the limit of {limit}")]
    TooLarge {
        /// Which limit.
        over: Oversize,
        /// What is too large.
        what: &'static str,
        /// The limit.
        limit: usize,
    },
    /// A request on a stream could not be decoded (not protobuf of the right message, or
    /// invalid UTF-8 in a string field).
    #[error("a request could not be decoded as a valid message")]
    MalformedMessage,
    /// Too many calls of this kind are open at once (watchers).
    #[error("{what}: at most {limit} at once; retry later")]
    TooMany {
        /// What there are too many of.
        what: &'static str,
        /// The limit.
        limit: usize,
    },
    /// The call's one message was refused, as a message on a stream would have been.
    #[error(transparent)]
    Rejected(Rejected),
    /// The server is shutting down; reconnect (to another instance) and replay.
    #[error("the server is draining; reconnect and replay")]
    Draining,
    /// The stream reached its maximum duration; open a new one and replay.
    #[error("the stream reached its maximum duration of {0:?}; open a new stream")]
    StreamMaxDuration(Duration),
    /// No message arrived on the stream within the idle timeout.
    #[error("no message on the stream for {0:?}; send a keep-alive at least every few minutes")]
    StreamIdle(Duration),
    /// A defect on the server's side (a scoring task failed).
    #[error("internal error")]
    Internal,
    /// The client did not read its responses for too long.
    #[error("responses were not read for {0:?}")]
    ClientNotReading(Duration),
    /// No valid credentials (the reason names what is wrong with them).
    #[error("authentication failed: {0}")]
    Unauthenticated(&'static str),
    /// Valid credentials that do not allow the call.
    #[error("not allowed: {0}")]
    PermissionDenied(&'static str),
    /// The caller opened streams faster than its quota allows; retry after the delay.
    #[error("too many new streams for this tenant; retry in {0:?}")]
    StreamOpenRate(Duration),
}

impl ServiceError {
    /// The gRPC code.
    pub fn code(&self) -> Code {
        match self {
            ServiceError::InvalidArgument { .. } | ServiceError::MalformedMessage => {
                Code::InvalidArgument
            }
            ServiceError::TooLarge { .. }
            | ServiceError::TooMany { .. }
            | ServiceError::ClientNotReading(_)
            | ServiceError::StreamOpenRate(_) => Code::ResourceExhausted,
            ServiceError::Rejected(r) => rejection_code(r.reason),
            ServiceError::Draining => Code::Unavailable,
            ServiceError::Internal => Code::Internal,
            ServiceError::StreamMaxDuration(_) | ServiceError::StreamIdle(_) => Code::OutOfRange,
            ServiceError::Unauthenticated(_) => Code::Unauthenticated,
            ServiceError::PermissionDenied(_) => Code::PermissionDenied,
        }
    }

    /// The `ErrorInfo.reason`.
    pub fn reason(&self) -> &'static str {
        match self {
            ServiceError::InvalidArgument { .. } => "INVALID_ARGUMENT",
            ServiceError::TooLarge {
                over: Oversize::Message,
                ..
            } => "MESSAGE_TOO_LARGE",
            ServiceError::TooLarge {
                over: Oversize::Utterances,
                ..
            } => "TOO_MANY_UTTERANCES",
            ServiceError::MalformedMessage => "MALFORMED_MESSAGE",
            ServiceError::TooMany { .. } => "TOO_MANY_CALLS",
            ServiceError::Rejected(r) => match r.reason {
                RejectReason::UnknownProfile => "UNKNOWN_RUBRIC_PROFILE",
                reason => rejection_reason(reason).upper(),
            },
            ServiceError::Draining => "DRAINING",
            ServiceError::Internal => "INTERNAL",
            ServiceError::StreamMaxDuration(_) => "STREAM_MAX_DURATION",
            ServiceError::StreamIdle(_) => "STREAM_IDLE",
            ServiceError::ClientNotReading(_) => "CLIENT_NOT_READING",
            ServiceError::StreamOpenRate(_) => "STREAM_OPEN_RATE",
            ServiceError::Unauthenticated(reason) | ServiceError::PermissionDenied(reason) => {
                reason
            }
        }
    }
}

impl From<ServiceError> for Status {
    fn from(error: ServiceError) -> Status {
        let mut details = ErrorDetails::with_error_info(
            error.reason(),
            ERROR_DOMAIN,
            std::collections::HashMap::new(),
        );
        match &error {
            ServiceError::InvalidArgument { field, description } => {
                details.add_bad_request_violation(field.clone(), description.clone());
            }
            ServiceError::Rejected(r) if r.reason != RejectReason::UnknownProfile => {
                details.add_bad_request_violation(r.field, r.description.clone());
            }
            ServiceError::Draining => {
                details.set_retry_info(Some(Duration::ZERO));
            }
            ServiceError::TooMany { .. } => {
                details.set_retry_info(Some(Duration::from_secs(1)));
            }
            ServiceError::StreamOpenRate(wait) => {
                details.set_retry_info(Some(*wait));
                details.add_quota_failure_violation(
                    "tenant",
                    "stream opens per second (hearken serve --stream-opens-per-second)",
                );
            }
            _ => {}
        }
        Status::with_error_details(error.code(), error.to_string(), details)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_status_carries_error_info_in_the_hearken_domain() {
        let cases = [
            (
                ServiceError::InvalidArgument {
                    field: "utterances".into(),
                    description: "must not be empty".into(),
                },
                Code::InvalidArgument,
                "INVALID_ARGUMENT",
            ),
            (
                ServiceError::Rejected(Rejected::new(
                    RejectReason::UnknownProfile,
                    "start.rubric_profile",
                    "no rubric profile of that name on this server",
                )),
                Code::FailedPrecondition,
                "UNKNOWN_RUBRIC_PROFILE",
            ),
            (
                ServiceError::Rejected(Rejected::new(
                    RejectReason::TooLong,
                    "start.metadata",
                    "must have at most 32 entries, got 40",
                )),
                Code::InvalidArgument,
                "INVALID_ARGUMENT",
            ),
            (ServiceError::Draining, Code::Unavailable, "DRAINING"),
            (
                ServiceError::StreamMaxDuration(Duration::from_secs(2)),
                Code::OutOfRange,
                "STREAM_MAX_DURATION",
            ),
            (
                ServiceError::StreamIdle(Duration::from_secs(2)),
                Code::OutOfRange,
                "STREAM_IDLE",
            ),
            (
                ServiceError::ClientNotReading(Duration::from_secs(30)),
                Code::ResourceExhausted,
                "CLIENT_NOT_READING",
            ),
            (
                ServiceError::TooLarge {
                    over: Oversize::Message,
                    what: "message",
                    limit: 10,
                },
                Code::ResourceExhausted,
                "MESSAGE_TOO_LARGE",
            ),
        ];
        for (error, code, reason) in cases {
            let status = Status::from(error);
            assert_eq!(status.code(), code);
            let details = status.get_error_details();
            let info = details.error_info().expect("error info");
            assert_eq!(
                (info.reason.as_str(), info.domain.as_str()),
                (reason, ERROR_DOMAIN)
            );
        }
        let draining = Status::from(ServiceError::Draining).get_error_details();
        assert_eq!(
            draining.retry_info().unwrap().retry_delay,
            Some(Duration::ZERO)
        );
    }

    #[test]
    fn every_domain_reason_has_its_wire_reason() {
        use RejectReason as R;
        use RejectionReason as W;
        for (reason, wire) in [
            (R::Malformed, W::InvalidArgument),
            (R::TooLong, W::InvalidArgument),
            (R::OffsetOutOfRange, W::OutOfRange),
            (R::EndsBeforeStart, W::OutOfRange),
            (R::DuplicateUtterance, W::AlreadyExists),
            (R::ConversationEnded, W::FailedPrecondition),
            (R::HoldConflict, W::FailedPrecondition),
            (R::AlreadyLive, W::FailedPrecondition),
            (R::NotOpen, W::FailedPrecondition),
            (R::TooManyUtterances, W::ResourceExhausted),
            (R::TooManyConversations, W::ResourceExhausted),
            (R::RateLimited, W::ResourceExhausted),
            (R::UnknownProfile, W::UnknownProfile),
        ] {
            assert_eq!(rejection_reason(reason), wire, "{reason:?}");
            let r = Rejected::new(reason, "f", "d").retry_after(5);
            let on_wire = rejection(&r);
            assert_eq!(
                (
                    on_wire.reason,
                    on_wire.field.as_str(),
                    on_wire.retry_after_ms
                ),
                (wire as i32, "f", 5)
            );
        }
    }
}

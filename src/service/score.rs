//! `ScoreTranscript`: a finished conversation scored at once, through the same engine loop as
//! every other path (`engine::score_events`), on a blocking thread so a large transcript never
//! stalls the streams sharing the runtime.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use prost::Message as _;

use super::Shared;
use super::error::{Oversize, ServiceError};
use crate::engine::{self, Conversation, End};
use crate::proto::{self, v1::*};

/// The whole-call checks of a request: its size, its id, its number of utterances.
fn check_request(
    request: &ScoreTranscriptRequest,
    limits: &crate::service::Limits,
) -> Result<(), ServiceError> {
    if request.encoded_len() > limits.max_transcript_message_bytes {
        return Err(ServiceError::TooLarge {
            over: Oversize::Message,
            what: "a ScoreTranscript request",
            limit: limits.max_transcript_message_bytes,
        });
    }
    engine::limits::check_id(
        &request.conversation_id,
        "conversation_id",
        limits.input.max_id_bytes,
    )
    .map_err(ServiceError::Rejected)?;
    if request.utterances.is_empty() {
        return Err(ServiceError::InvalidArgument {
            field: "utterances".to_owned(),
            description: "must hold at least one utterance".into(),
        });
    }
    if request.utterances.len() > limits.max_transcript_utterances {
        return Err(ServiceError::TooLarge {
            over: Oversize::Utterances,
            what: "utterances",
            limit: limits.max_transcript_utterances,
        });
    }
    Ok(())
}

pub(super) async fn score_transcript(
    shared: Arc<Shared>,
    request: ScoreTranscriptRequest,
) -> Result<ScoreTranscriptResponse, ServiceError> {
    let limits = &shared.limits;
    check_request(&request, limits)?;
    let invalid = |field: &str, description: String| ServiceError::InvalidArgument {
        field: field.to_owned(),
        description,
    };
    let start = request.start.unwrap_or_default();
    let conversation = Conversation::open(
        proto::start_from_proto(&start),
        &shared.rubric(),
        limits.input.clone(),
    )
    .map_err(ServiceError::Rejected)?;
    let mut signals = Vec::with_capacity(request.signals.len());
    for (i, s) in request.signals.iter().enumerate() {
        signals.push(proto::signal_from_proto(s).ok_or_else(|| {
            invalid(
                &format!("signals[{i}].kind"),
                "must be a known, specified kind".into(),
            )
        })?);
    }
    let utterances: Vec<engine::Utterance> = request
        .utterances
        .into_iter()
        .map(proto::utterance_from_proto)
        .collect();
    let include_timeline = request.include_timeline;
    let scored = tokio::task::spawn_blocking(move || {
        engine::score_events(
            conversation,
            engine::transcript_events(utterances, signals, End::default()),
        )
    })
    .await
    .map_err(|_| ServiceError::Internal)?;

    let start_time = start.start_time.as_ref().and_then(proto::system_time);
    let now = SystemTime::now();
    let alert_time = |a: &engine::Alert| {
        Some(start_time.map_or(now, |t| {
            t + Duration::from_millis(a.offset_ms.max(0) as u64)
        }))
    };
    let mut response = proto::scored_to_response(
        request.conversation_id,
        &scored,
        include_timeline,
        alert_time,
    );
    response.metadata = start.metadata;
    Ok(response)
}

//! What goes on the topics: input records decoded into requests, responses and dead letters
//! encoded into output records. No Kafka here: the bytes, the key and the headers only.

use prost::Message as _;

use crate::input::RoleMap;
use crate::proto::v1::*;
use crate::proto::{self, v1::stream_conversations_request::Payload};
use crate::transcript::Transcript;

/// Header naming a record's encoding (input or output): `application/json` (proto3 JSON) or
/// `application/x-protobuf`.
pub const HEADER_CONTENT_TYPE: &str = "content-type";
/// Output header: the response's `seq` in its conversation, as decimal text.
pub const HEADER_SEQ: &str = "hearken-seq";
/// Output header: `update`, `alert`, `scorecard`, `rejection` or `dead-letter`.
pub const HEADER_KIND: &str = "hearken-kind";
/// Output header: the input record the output answers, `topic/partition/offset`.
pub const HEADER_SOURCE: &str = "hearken-source";
/// Output header: the input record's timestamp (milliseconds since the epoch), from which the
/// latency of a result can be measured downstream.
pub const HEADER_SOURCE_TIME: &str = "hearken-source-time";
/// Dead-letter header: why the record was not scored (one of [`DeadReason`]'s names).
pub const HEADER_ERROR_REASON: &str = "hearken-error-reason";
/// Dead-letter header: the field at fault, if one is.
pub const HEADER_ERROR_FIELD: &str = "hearken-error-field";
/// Dead-letter header: what is wrong, in words (limits and field names, never the text).
pub const HEADER_ERROR_DESCRIPTION: &str = "hearken-error-description";

/// `application/json`.
pub const CONTENT_JSON: &str = "application/json";
/// `application/x-protobuf`.
pub const CONTENT_PROTOBUF: &str = "application/x-protobuf";

/// How input records are encoded, when their `content-type` header does not say.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum InputEncoding {
    /// From the value: a JSON object with `EventType` or `ContactId` is a Contact Lens event,
    /// another JSON object a `StreamConversationsRequest`, anything else binary protobuf.
    Auto,
    /// A `StreamConversationsRequest` in proto3 JSON.
    Json,
    /// A `StreamConversationsRequest` in binary protobuf.
    Protobuf,
    /// An Amazon Connect Contact Lens real-time event (`EventType`, `Segments`), keyed by
    /// `ContactId`.
    ContactLensRealtime,
}

/// How output records are encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum OutputEncoding {
    /// `StreamConversationsResponse` in proto3 JSON.
    Json,
    /// `StreamConversationsResponse` in binary protobuf.
    Protobuf,
}

impl OutputEncoding {
    /// The `content-type` header of records in this encoding.
    pub fn content_type(self) -> &'static str {
        match self {
            OutputEncoding::Json => CONTENT_JSON,
            OutputEncoding::Protobuf => CONTENT_PROTOBUF,
        }
    }

    /// A response in this encoding.
    pub fn encode(self, response: &StreamConversationsResponse) -> Vec<u8> {
        match self {
            OutputEncoding::Json => serde_json::to_vec(response).unwrap_or_default(),
            OutputEncoding::Protobuf => response.encode_to_vec(),
        }
    }
}

/// Why a record went to the dead-letter topic: a closed set, the metric's label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeadReason {
    /// No value (a tombstone).
    NoValue,
    /// No key: the conversation id must be the key, so that its events share a partition.
    NoKey,
    /// A key that is not UTF-8 or not a valid conversation id.
    BadKey,
    /// Over `--max-record-bytes`.
    TooLarge,
    /// Not a record in the expected encoding.
    Undecodable,
    /// The request names another conversation than the record's key.
    KeyMismatch,
    /// Decoded, but the engine or a limit rejected it (the rejection says why).
    Rejected,
}

impl DeadReason {
    /// The reason as the header and metric write it.
    pub fn as_str(self) -> &'static str {
        match self {
            DeadReason::NoValue => "NO_VALUE",
            DeadReason::NoKey => "NO_KEY",
            DeadReason::BadKey => "BAD_KEY",
            DeadReason::TooLarge => "TOO_LARGE",
            DeadReason::Undecodable => "UNDECODABLE",
            DeadReason::KeyMismatch => "KEY_MISMATCH",
            DeadReason::Rejected => "REJECTED",
        }
    }
}

/// Why a record is dead-lettered: the reason, the field if one, a description without text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadLetter {
    /// Why.
    pub reason: DeadReason,
    /// The field at fault, or empty.
    pub field: String,
    /// What is wrong (limits and field names, never a value from the record).
    pub description: String,
}

impl DeadLetter {
    pub(crate) fn new(reason: DeadReason, field: &str, description: impl Into<String>) -> Self {
        DeadLetter {
            reason,
            field: field.to_owned(),
            description: description.into(),
        }
    }
}

/// What one input record asks for: requests for one conversation, in order.
#[derive(Debug, Default, PartialEq)]
pub struct Decoded {
    /// The requests, each with its conversation id filled in.
    pub requests: Vec<StreamConversationsRequest>,
    /// A start to apply first if the conversation is not live (a Contact Lens event that is
    /// not `STARTED` still says the channel and language).
    pub start_if_unknown: Option<ConversationStart>,
    /// Contact Lens turn slices passed over (their turns come whole later).
    pub slices: usize,
}

/// Decodes one input record whose key is `key` (the conversation id).
pub fn decode(
    key: &str,
    value: &[u8],
    content_type: Option<&str>,
    encoding: InputEncoding,
    roles: &RoleMap,
) -> Result<Decoded, DeadLetter> {
    let encoding = match content_type.map(|c| c.split(';').next().unwrap_or("").trim()) {
        Some(
            "application/x-protobuf" | "application/protobuf" | "application/vnd.google.protobuf",
        ) => InputEncoding::Protobuf,
        Some("application/json") if encoding == InputEncoding::Protobuf => InputEncoding::Auto,
        _ => encoding,
    };
    let encoding = match encoding {
        InputEncoding::Auto => sniff(value),
        e => e,
    };
    match encoding {
        InputEncoding::Json | InputEncoding::Auto => {
            let request: StreamConversationsRequest =
                serde_json::from_slice(value).map_err(|e| {
                    DeadLetter::new(
                        DeadReason::Undecodable,
                        "",
                        format!(
                            "not a StreamConversationsRequest in proto3 JSON (line {}, column {})",
                            e.line(),
                            e.column()
                        ),
                    )
                })?;
            one(key, request)
        }
        InputEncoding::Protobuf => {
            let request = StreamConversationsRequest::decode(value).map_err(|_| {
                DeadLetter::new(
                    DeadReason::Undecodable,
                    "",
                    "not a StreamConversationsRequest in binary protobuf",
                )
            })?;
            one(key, request)
        }
        InputEncoding::ContactLensRealtime => contact_lens(key, value, roles),
    }
}

/// The encoding a value looks like: JSON objects by their fields, anything else protobuf.
fn sniff(value: &[u8]) -> InputEncoding {
    if !value.trim_ascii_start().starts_with(b"{") {
        return InputEncoding::Protobuf;
    }
    // Top-level keys only: a Contact Lens event has `EventType` and `ContactId`; a request
    // has `conversationId` and a payload.
    match serde_json::from_slice::<serde_json::Map<String, serde_json::Value>>(value) {
        Ok(map) if map.contains_key("EventType") || map.contains_key("ContactId") => {
            InputEncoding::ContactLensRealtime
        }
        _ => InputEncoding::Json,
    }
}

fn one(key: &str, mut request: StreamConversationsRequest) -> Result<Decoded, DeadLetter> {
    if request.conversation_id.is_empty() {
        request.conversation_id = key.to_owned();
    } else if request.conversation_id != key {
        return Err(DeadLetter::new(
            DeadReason::KeyMismatch,
            "conversation_id",
            "differs from the record key; key each record by its conversation id",
        ));
    }
    Ok(Decoded {
        requests: vec![request],
        ..Decoded::default()
    })
}

fn contact_lens(key: &str, value: &[u8], roles: &RoleMap) -> Result<Decoded, DeadLetter> {
    let event: serde_json::Value = serde_json::from_slice(value).map_err(|e| {
        DeadLetter::new(
            DeadReason::Undecodable,
            "",
            format!("malformed JSON (line {}, column {})", e.line(), e.column()),
        )
    })?;
    let event = crate::input::realtime_event(&event, roles)
        .map_err(|message| DeadLetter::new(DeadReason::Undecodable, "", message))?;
    if event.contact_id.as_deref().is_some_and(|id| id != key) {
        return Err(DeadLetter::new(
            DeadReason::KeyMismatch,
            "ContactId",
            "differs from the record key; key each record by its ContactId",
        ));
    }
    let request = |payload| StreamConversationsRequest {
        conversation_id: key.to_owned(),
        payload: Some(payload),
    };
    let start = proto::start_to_proto(&event.start);
    let mut requests = Vec::with_capacity(event.utterances.len() + 2);
    let mut start_if_unknown = None;
    if event.opens {
        requests.push(request(Payload::Start(start)));
    } else if !event.utterances.is_empty() {
        start_if_unknown = Some(start);
    }
    requests.extend(
        event
            .utterances
            .iter()
            .map(|u| request(Payload::Utterance(proto::utterance_to_proto(u)))),
    );
    if event.ends {
        requests.push(request(Payload::End(ConversationEnd { offset_ms: None })));
    }
    Ok(Decoded {
        requests,
        start_if_unknown,
        slices: event.slices,
    })
}

/// A transcript as the requests a live integration would send for it: its start, its
/// utterances and signals in the order the batch driver takes them, and its end — what
/// `hearken pipeline send` writes.
pub fn transcript_requests(t: &Transcript) -> Vec<StreamConversationsRequest> {
    let request = |payload| StreamConversationsRequest {
        conversation_id: t.conversation_id.clone(),
        payload: Some(payload),
    };
    let events = crate::engine::transcript_events(
        t.utterances.clone(),
        t.signals.clone(),
        crate::engine::End::default(),
    );
    let mut out = Vec::with_capacity(events.len() + 1);
    out.push(request(Payload::Start(proto::start_to_proto(&t.start))));
    for event in events {
        out.push(request(match event {
            crate::engine::Event::Utterance(u) => Payload::Utterance(proto::utterance_to_proto(&u)),
            crate::engine::Event::Signal(s) => Payload::Signal(proto::signal_to_proto(&s)),
            crate::engine::Event::End(end, _) => Payload::End(ConversationEnd {
                offset_ms: end.offset_ms,
            }),
        }));
    }
    out
}

/// The kind of a response, as the `hearken-kind` header writes it.
pub fn kind_of(response: &StreamConversationsResponse) -> &'static str {
    use stream_conversations_response::Payload as P;
    match response.payload {
        Some(P::Update(_)) => "update",
        Some(P::Alert(_)) => "alert",
        Some(P::Scorecard(_)) => "scorecard",
        Some(P::Rejection(_)) => "rejection",
        None => "none",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_requests_take_their_id_from_the_key_and_must_agree_with_it() {
        let roles = RoleMap::default();
        let json = br#"{"utterance":{"utteranceId":"u1","role":"ROLE_AGENT","text":"hello","startMs":0,"endMs":900}}"#;
        let d = decode("call-1", json, None, InputEncoding::Auto, &roles).unwrap();
        assert_eq!(d.requests.len(), 1);
        assert_eq!(d.requests[0].conversation_id, "call-1");
        let named = br#"{"conversationId":"call-2","end":{}}"#;
        let e = decode("call-1", named, None, InputEncoding::Auto, &roles).unwrap_err();
        assert_eq!(e.reason, DeadReason::KeyMismatch);
    }

    #[test]
    fn protobuf_is_told_by_header_or_by_shape() {
        let roles = RoleMap::default();
        let request = StreamConversationsRequest {
            conversation_id: "c".into(),
            payload: Some(Payload::End(ConversationEnd { offset_ms: Some(5) })),
        };
        let bytes = request.encode_to_vec();
        for content_type in [Some(CONTENT_PROTOBUF), None] {
            let d = decode("c", &bytes, content_type, InputEncoding::Auto, &roles).unwrap();
            assert_eq!(d.requests, vec![request.clone()]);
        }
        // JSON forced as protobuf is not decodable, and the description has none of the value.
        let e = decode(
            "c",
            b"{\"secret\":1}",
            None,
            InputEncoding::Protobuf,
            &roles,
        )
        .unwrap_err();
        assert_eq!(e.reason, DeadReason::Undecodable);
        assert!(!e.description.contains("secret"));
    }

    #[test]
    fn undecodable_json_says_where_not_what() {
        let e = decode(
            "c",
            br#"{"utterance":{"text":"my card is 4111"#,
            None,
            InputEncoding::Json,
            &RoleMap::default(),
        )
        .unwrap_err();
        assert_eq!(e.reason, DeadReason::Undecodable);
        assert!(!e.description.contains("4111"), "{}", e.description);
    }

    #[test]
    fn a_contact_lens_event_becomes_its_turns() {
        let event = serde_json::json!({
            "Version": "1.0.0", "Channel": "VOICE", "ContactId": "c-9", "LanguageCode": "en-US",
            "EventType": "SEGMENTS",
            "Segments": [
                {"Utterance": {"ParticipantId": "AGENT", "TranscriptId": "t1", "PartialContent": "hello",
                               "BeginOffsetMillis": 0, "EndOffsetMillis": 400}},
                {"Transcript": {"ParticipantId": "AGENT", "Id": "t1", "Content": "hello there",
                                "BeginOffsetMillis": 0, "EndOffsetMillis": 900}},
                {"Transcript": {"ParticipantId": "CUSTOMER", "Id": "t2", "Content": "hi",
                                "BeginOffsetMillis": 1000, "EndOffsetMillis": 1400}}
            ]
        });
        let bytes = serde_json::to_vec(&event).unwrap();
        let d = decode(
            "c-9",
            &bytes,
            None,
            InputEncoding::Auto,
            &RoleMap::default(),
        )
        .unwrap();
        assert_eq!(d.requests.len(), 2);
        assert_eq!(d.slices, 1);
        assert!(d.start_if_unknown.is_some());
        let Some(Payload::Utterance(u)) = &d.requests[1].payload else {
            panic!("an utterance")
        };
        assert_eq!(u.role, Role::Customer as i32);
        let other = decode(
            "c-8",
            &bytes,
            None,
            InputEncoding::Auto,
            &RoleMap::default(),
        );
        assert_eq!(other.unwrap_err().reason, DeadReason::KeyMismatch);
        let done = serde_json::json!({"ContactId": "c-9", "EventType": "COMPLETED"});
        let d = decode(
            "c-9",
            &serde_json::to_vec(&done).unwrap(),
            None,
            InputEncoding::ContactLensRealtime,
            &RoleMap::default(),
        )
        .unwrap();
        assert!(matches!(d.requests[0].payload, Some(Payload::End(_))));
    }
}

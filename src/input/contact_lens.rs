//! Amazon Connect Contact Lens and Amazon Transcribe Call Analytics: the post-call output file
//! (one JSON document per call: voice turns with offsets in milliseconds, or chat messages with
//! absolute times) and Contact Lens real-time segment events. The two post-call formats share
//! their `Transcript` array; voice files name the speaker by `ParticipantId` (`AGENT`,
//! `CUSTOMER`), chat files and Call Analytics by `ParticipantRole`.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::BufRead;

use serde_json::Value;

use super::fields::{
    annotations, epoch_ms, finish, language, millis_at, rebase, role_or_unknown, start, str_at,
    turn_annotations, unknown_roles_warning,
};
use super::{Items, RoleMap};
use crate::engine::{Channel, Utterance};
use crate::transcript::{LineError, Transcript};

/// One post-call output file (Contact Lens voice or chat, or Transcribe Call Analytics).
pub(super) fn post_call(v: &Value, roles: &RoleMap, name: &str) -> Result<Transcript, String> {
    let turns = v.get("Transcript").and_then(Value::as_array).ok_or(
        "Transcript: missing or not an array (is this a Contact Lens or Call Analytics output file?)",
    )?;
    let chat = str_at(v, "Channel").is_some_and(|c| c.eq_ignore_ascii_case("CHAT"));
    let participants: HashMap<&str, &str> = v
        .get("Participants")
        .and_then(Value::as_array)
        .map(|ps| {
            ps.iter()
                .filter_map(|p| Some((str_at(p, "ParticipantId")?, str_at(p, "ParticipantRole")?)))
                .collect()
        })
        .unwrap_or_default();
    let conversation_id = v
        .pointer("/CustomerMetadata/ContactId")
        .and_then(Value::as_str)
        .or_else(|| str_at(v, "JobName"))
        .unwrap_or(name)
        .to_owned();
    let mut warnings = Vec::new();
    let mut utterances = Vec::with_capacity(turns.len());
    let (mut events, mut not_text, mut unknown_roles) = (0usize, 0usize, 0usize);
    let mut per_turn = Vec::with_capacity(turns.len());
    for (i, t) in turns.iter().enumerate() {
        if chat && str_at(t, "Type").is_some_and(|k| k != "MESSAGE") {
            events += 1; // joined, left, typing: not something said
            continue;
        }
        let Some(content) = str_at(t, "Content") else {
            not_text += 1;
            continue;
        };
        let participant = str_at(t, "ParticipantId").unwrap_or("");
        let role_label = str_at(t, "ParticipantRole")
            .or_else(|| participants.get(participant).copied())
            .unwrap_or("");
        let role = role_or_unknown(&[participant, role_label], roles, &mut unknown_roles);
        let id = str_at(t, "Id").unwrap_or("").to_owned();
        let (start_ms, end_ms) = if chat {
            let at = str_at(t, "AbsoluteTime").and_then(epoch_ms);
            if at.is_none() {
                return Err(format!(
                    "Transcript[{i}].AbsoluteTime: missing or not an RFC 3339 time"
                ));
            }
            (at, None)
        } else {
            (
                millis_at(t, "BeginOffsetMillis", || {
                    format!("Transcript[{i}].BeginOffsetMillis")
                })?,
                millis_at(t, "EndOffsetMillis", || {
                    format!("Transcript[{i}].EndOffsetMillis")
                })?,
            )
        };
        per_turn.push(turn_annotations(t));
        utterances.push(Utterance {
            utterance_id: id,
            role,
            participant_id: (!participant.is_empty()).then(|| participant.to_owned()),
            text: content.to_owned(),
            start_ms,
            end_ms,
            partial: false,
            confidence: None,
        });
    }
    if chat {
        // Chat messages carry wall-clock times: offsets from the first one.
        rebase(&mut utterances);
    }
    if events > 0 {
        warnings.push(format!(
            "{events} chat event(s) (joins, leaves, typing) are not utterances and were passed over"
        ));
    }
    if not_text > 0 {
        warnings.push(format!(
            "{not_text} turn(s) without Content (attachments, or no text) were passed over"
        ));
    }
    if unknown_roles > 0 {
        warnings.push(unknown_roles_warning(
            unknown_roles,
            "ParticipantId, ParticipantRole",
        ));
    }
    let mut metadata = BTreeMap::new();
    if let Some(categories) = v
        .pointer("/Categories/MatchedCategories")
        .and_then(Value::as_array)
    {
        let names: Vec<&str> = categories.iter().filter_map(Value::as_str).collect();
        if !names.is_empty() {
            metadata.insert("platform.categories".into(), names.join(","));
        }
    }
    if let Some(overall) = v
        .pointer("/ConversationCharacteristics/Sentiment/OverallSentiment")
        .and_then(Value::as_object)
    {
        for (who, score) in overall {
            if let Some(score) = score.as_f64() {
                metadata.insert(
                    format!("platform.sentiment.{}", who.to_ascii_lowercase()),
                    score.to_string(),
                );
            }
        }
    }
    let language = language(str_at(v, "LanguageCode"), &mut warnings);
    let channel = if chat { Channel::Chat } else { Channel::Voice };
    // The published voice example gives every turn the same placeholder id: `finish` numbers
    // them, and the notes go under the final ids.
    let mut t = finish(
        conversation_id,
        start(channel, language, metadata),
        utterances,
        warnings,
    );
    t.annotations = annotations(&t.utterances, per_turn);
    Ok(t)
}

/// Real-time segment events, one JSON object per line.
pub(super) fn realtime_lines(input: Box<dyn BufRead>, roles: &RoleMap, name: &str) -> Items {
    let events = input
        .lines()
        .enumerate()
        .filter_map(|(i, line)| match line {
            Err(e) => Some(Err(LineError {
                line: i + 1,
                message: format!("could not be read ({})", e.kind()),
            })),
            Ok(line) if line.trim().is_empty() => None,
            Ok(line) => Some(serde_json::from_str::<Value>(&line).map_err(|e| LineError {
                line: i + 1,
                message: format!("malformed JSON (column {})", e.column()),
            })),
        });
    realtime(events, roles, name)
}

/// One contact's turns as the events have given them so far.
#[derive(Default)]
struct Contact {
    channel: Option<String>,
    language: Option<String>,
    /// Finished turns (`Transcript` segments), by id, in the order they came.
    turns: Vec<Utterance>,
    /// The platform's notes on each turn of `turns` (sentiment, issues), in the same order.
    notes: Vec<Vec<(&'static str, String)>>,
    /// Finished turns seen, by participant and id: a segment delivered twice counts once.
    finished: HashSet<(String, String)>,
    /// Slices (`Utterance` segments) of turns not finished yet, by transcript id.
    slices: BTreeMap<String, Utterance>,
    order: Vec<String>,
    unknown_roles: usize,
    completed: bool,
}

/// Real-time segment events (STARTED, SEGMENTS, COMPLETED, FAILED), grouped by `ContactId`. A
/// `Transcript` segment is a finished turn; `Utterance` segments are consecutive slices of a
/// turn (linked by `TranscriptId`), not interim versions, so they accumulate; a turn whose
/// `Transcript` never came is kept from its slices, with a warning.
pub(super) fn realtime(
    events: impl Iterator<Item = Result<Value, LineError>>,
    roles: &RoleMap,
    name: &str,
) -> Items {
    let mut errors = Vec::new();
    let mut contacts: BTreeMap<String, Contact> = BTreeMap::new();
    let mut first_seen: Vec<String> = Vec::new();
    for (i, event) in events.enumerate() {
        let event = match event {
            Ok(e) => e,
            Err(e) => {
                errors.push(Err(e));
                continue;
            }
        };
        let id = str_at(&event, "ContactId").unwrap_or(name).to_owned();
        let contact = contacts.entry(id.clone()).or_insert_with(|| {
            first_seen.push(id.clone());
            Contact::default()
        });
        contact.channel = str_at(&event, "Channel")
            .map(str::to_owned)
            .or(contact.channel.take());
        if let Some(language) = str_at(&event, "LanguageCode") {
            contact.language = Some(language.to_owned());
        }
        match str_at(&event, "EventType") {
            Some("COMPLETED") | Some("FAILED") => contact.completed = true,
            _ => {}
        }
        let Some(segments) = event.get("Segments").and_then(Value::as_array) else {
            continue;
        };
        for (j, segment) in segments.iter().enumerate() {
            let field = |k: &str| format!("event {}: Segments[{j}].{k}", i + 1);
            let (raw, finished) = if let Some(t) = segment.get("Transcript") {
                (t, true)
            } else if let Some(u) = segment.get("Utterance") {
                (u, false)
            } else {
                continue; // Categories, PostContactSummary: not speech
            };
            let turn = match segment_turn(raw, finished, roles, &mut contact.unknown_roles, field) {
                Ok(u) => u,
                Err(message) => {
                    errors.push(Err(LineError {
                        line: i + 1,
                        message,
                    }));
                    continue;
                }
            };
            let participant = turn.participant_id.clone().unwrap_or_default();
            let turn_id = turn.utterance_id.clone();
            if finished {
                contact.slices.remove(&turn_id);
                if contact.finished.insert((participant, turn_id)) {
                    contact.notes.push(turn_annotations(raw));
                    contact.turns.push(turn);
                }
            } else if !contact.finished.contains(&(participant, turn_id.clone())) {
                match contact.slices.get_mut(&turn_id) {
                    Some(u) => {
                        // The next slice of the same turn: appended, and the turn ends later.
                        if !turn.text.is_empty() {
                            u.text.push(' ');
                            u.text.push_str(&turn.text);
                        }
                        u.end_ms = turn.end_ms.or(u.end_ms);
                    }
                    None => {
                        contact.order.push(turn_id.clone());
                        contact.slices.insert(turn_id, turn);
                    }
                }
            }
        }
    }
    let mut out = errors;
    for id in first_seen {
        let Some(mut contact) = contacts.remove(&id) else {
            continue;
        };
        let mut warnings = Vec::new();
        let unfinished: Vec<String> = contact
            .order
            .iter()
            .filter(|t| contact.slices.contains_key(*t))
            .cloned()
            .collect();
        if !unfinished.is_empty() {
            warnings.push(format!(
                "{} turn(s) had slices (Utterance segments) but no Transcript segment: kept from their slices",
                unfinished.len()
            ));
            for t in unfinished {
                if let Some(u) = contact.slices.remove(&t) {
                    contact.notes.push(Vec::new());
                    contact.turns.push(u);
                }
            }
        }
        if contact.unknown_roles > 0 {
            warnings.push(unknown_roles_warning(
                contact.unknown_roles,
                "ParticipantId, ParticipantRole",
            ));
        }
        if !contact.completed {
            warnings.push("no COMPLETED or FAILED event: the contact may not have ended".into());
        }
        let chat = contact
            .channel
            .as_deref()
            .is_some_and(|c| c.eq_ignore_ascii_case("CHAT"));
        let channel = if chat { Channel::Chat } else { Channel::Voice };
        let language = language(contact.language.as_deref(), &mut warnings);
        let mut t = finish(
            id,
            start(channel, language, BTreeMap::new()),
            contact.turns,
            warnings,
        );
        t.annotations = annotations(&t.utterances, contact.notes);
        out.push(Ok(t));
    }
    Box::new(out.into_iter())
}

/// One speech segment's turn: a finished `Transcript` (its `Content`, its `Id`) or an
/// `Utterance` slice (its `PartialContent`, the `TranscriptId` of the turn it belongs to).
/// `field` names a field of the segment for errors.
fn segment_turn(
    turn: &Value,
    finished: bool,
    roles: &RoleMap,
    unknown_roles: &mut usize,
    field: impl Fn(&str) -> String,
) -> Result<Utterance, String> {
    let participant = str_at(turn, "ParticipantId").unwrap_or("");
    let role_label = str_at(turn, "ParticipantRole").unwrap_or("");
    let role = role_or_unknown(&[participant, role_label], roles, unknown_roles);
    let text = str_at(
        turn,
        if finished {
            "Content"
        } else {
            "PartialContent"
        },
    );
    let start_ms = millis_at(turn, "BeginOffsetMillis", || field("BeginOffsetMillis"))?;
    let end_ms = millis_at(turn, "EndOffsetMillis", || field("EndOffsetMillis"))?;
    let id = if finished {
        str_at(turn, "Id")
    } else {
        str_at(turn, "TranscriptId").or_else(|| str_at(turn, "Id"))
    };
    Ok(Utterance {
        utterance_id: id.unwrap_or("").to_owned(),
        role,
        participant_id: (!participant.is_empty()).then(|| participant.to_owned()),
        text: text.unwrap_or("").to_owned(),
        start_ms,
        end_ms,
        partial: false,
        confidence: None,
    })
}

/// One Contact Lens real-time event (one Kinesis record) as the pipeline takes it, record by
/// record: what it opens, the finished turns it carries, whether it ends the contact.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RealtimeEvent {
    /// `ContactId`, if the event has one.
    pub contact_id: Option<String>,
    /// Channel and language as the event gives them (every event carries them).
    pub start: crate::engine::Start,
    /// `EventType` is `STARTED`.
    pub opens: bool,
    /// The finished turns (`Transcript` segments), in order.
    pub utterances: Vec<Utterance>,
    /// Turn slices (`Utterance` segments) passed over: each turn also comes finished, as a
    /// `Transcript` segment, and is scored then.
    pub slices: usize,
    /// Turns whose speaker the event does not name as agent or customer (scored as unknown).
    pub unknown_roles: usize,
    /// `EventType` is `COMPLETED` or `FAILED`.
    pub ends: bool,
}

/// Reads one real-time event. The error names the field (never a value).
pub fn realtime_event(event: &Value, roles: &RoleMap) -> Result<RealtimeEvent, String> {
    if !event.is_object() {
        return Err("not a JSON object".into());
    }
    let chat = str_at(event, "Channel").is_some_and(|c| c.eq_ignore_ascii_case("CHAT"));
    let mut warnings = Vec::new();
    let language = language(str_at(event, "LanguageCode"), &mut warnings);
    let event_type = str_at(event, "EventType").unwrap_or("");
    let mut out = RealtimeEvent {
        contact_id: str_at(event, "ContactId").map(str::to_owned),
        start: start(
            if chat { Channel::Chat } else { Channel::Voice },
            language,
            BTreeMap::new(),
        ),
        opens: event_type == "STARTED",
        ends: matches!(event_type, "COMPLETED" | "FAILED"),
        ..RealtimeEvent::default()
    };
    let segments = match event.get("Segments") {
        None | Some(Value::Null) => return Ok(out),
        Some(Value::Array(segments)) => segments,
        Some(_) => return Err("Segments: wrong type (an array)".into()),
    };
    for (j, segment) in segments.iter().enumerate() {
        let field = |k: &str| format!("Segments[{j}].Transcript.{k}");
        let Some(turn) = segment.get("Transcript") else {
            if segment.get("Utterance").is_some() {
                out.slices += 1;
            }
            continue; // Categories, PostContactSummary: not speech
        };
        out.utterances.push(segment_turn(
            turn,
            true,
            roles,
            &mut out.unknown_roles,
            field,
        )?);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::Role;

    fn event(segments: serde_json::Value) -> Result<Value, LineError> {
        Ok(
            serde_json::json!({"ContactId": "c1", "Channel": "VOICE", "LanguageCode": "en-US",
            "EventType": "SEGMENTS", "Segments": segments}),
        )
    }

    /// Slices of one turn are consecutive parts, not interim versions: the customer's whole
    /// turn is kept (before: treated as partials, all but the last slice were lost).
    #[test]
    fn utterance_slices_accumulate_into_their_turn() {
        let slice = |id: &str, text: &str, begin: i64, end: i64| {
            serde_json::json!({"Utterance": {"Id": id, "TranscriptId": "t-cust", "ParticipantId": "CUSTOMER",
                "ParticipantRole": "CUSTOMER", "PartialContent": text, "BeginOffsetMillis": begin, "EndOffsetMillis": end}})
        };
        let events = vec![
            event(serde_json::json!([slice(
                "s1",
                "my router keeps dropping",
                0,
                2000
            )])),
            event(serde_json::json!([slice(
                "s2",
                "every evening since Monday",
                2100,
                4000
            )])),
            Ok(serde_json::json!({"ContactId": "c1", "EventType": "COMPLETED"})),
        ];
        let out: Vec<_> = realtime(events.into_iter(), &RoleMap::default(), "f").collect();
        let t = out[0].as_ref().unwrap();
        assert_eq!(t.utterances.len(), 1);
        let u = &t.utterances[0];
        assert_eq!(
            u.text,
            "my router keeps dropping every evening since Monday"
        );
        assert_eq!((u.start_ms, u.end_ms), (Some(0), Some(4000)));
        assert_eq!(u.role, Role::Customer);
        assert!(
            t.warnings
                .iter()
                .any(|w| w.contains("no Transcript segment")),
            "{:?}",
            t.warnings
        );

        // With its Transcript segment, the finished turn replaces the slices, once, even when
        // the segment is delivered twice.
        let finished = serde_json::json!({"Transcript": {"Id": "t-cust", "ParticipantId": "CUSTOMER",
            "ParticipantRole": "CUSTOMER", "Content": "My router keeps dropping every evening since Monday.",
            "BeginOffsetMillis": 0, "EndOffsetMillis": 4000, "Sentiment": "NEGATIVE"}});
        let events = vec![
            event(serde_json::json!([slice(
                "s1",
                "my router keeps dropping",
                0,
                2000
            )])),
            event(serde_json::json!([finished.clone()])),
            event(serde_json::json!([finished])),
        ];
        let out: Vec<_> = realtime(events.into_iter(), &RoleMap::default(), "f").collect();
        let t = out[0].as_ref().unwrap();
        assert_eq!(t.utterances.len(), 1);
        assert!(t.utterances[0].text.starts_with("My router"));
    }

    #[test]
    fn speaker_labels_the_platform_does_not_name_come_from_the_role_map() {
        let doc = serde_json::json!({"JobName": "job-7", "LanguageCode": "en-US", "Transcript": [
            {"Id": "a", "ParticipantRole": "spk_0", "Content": "Thanks for calling, how can I help?", "BeginOffsetMillis": 0, "EndOffsetMillis": 2000},
            {"Id": "b", "ParticipantRole": "spk_1", "Content": "My bill is wrong.", "BeginOffsetMillis": 2500, "EndOffsetMillis": 4000}]});
        let t = post_call(&doc, &RoleMap::default(), "f").unwrap();
        assert_eq!(t.conversation_id, "job-7");
        assert!(t.utterances.iter().all(|u| u.role == Role::Unknown));
        assert!(
            t.warnings.iter().any(|w| w.contains("--role-map")),
            "{:?}",
            t.warnings
        );
        let roles = RoleMap::parse("spk_0=agent,spk_1=customer").unwrap();
        let t = post_call(&doc, &roles, "f").unwrap();
        assert_eq!(t.utterances[0].role, Role::Agent);
        assert_eq!(t.utterances[1].role, Role::Customer);
        assert!(t.warnings.is_empty(), "{:?}", t.warnings);
    }

    #[test]
    fn a_file_without_a_transcript_says_what_it_expected() {
        let e = post_call(
            &serde_json::json!({"Version": "VOICE-2022-11-30"}),
            &RoleMap::default(),
            "f",
        )
        .unwrap_err();
        assert!(e.starts_with("Transcript: missing"), "{e}");
    }
}

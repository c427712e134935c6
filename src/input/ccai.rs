//! Google CCAI Insights conversations: the conversation data format for chat imports
//! (`entries` with `start_timestamp_usec`, `role`, `user_id`) and the voice transcript of the
//! Insights API (`transcript.transcriptSegments` with word offsets and `segmentParticipant`).

use std::collections::BTreeMap;

use serde_json::Value;

use super::RoleMap;
use super::fields::{
    finish, rebase, role_or_unknown, start, str_at, unknown_roles_warning, utterance,
};
use crate::engine::Channel;
use crate::transcript::Transcript;

/// One CCAI conversation document.
pub(super) fn conversation(v: &Value, roles: &RoleMap, name: &str) -> Result<Transcript, String> {
    if let Some(entries) = v.get("entries").and_then(Value::as_array) {
        return chat(entries, roles, name);
    }
    match v.pointer("/transcript/transcriptSegments").and_then(Value::as_array) {
        Some(segments) => voice(v, segments, roles, name),
        None => Err("entries or transcript.transcriptSegments: missing (is this a CCAI Insights conversation?)".into()),
    }
}

fn chat(entries: &[Value], roles: &RoleMap, name: &str) -> Result<Transcript, String> {
    let mut utterances = Vec::with_capacity(entries.len());
    let mut unknown = 0;
    for (i, e) in entries.iter().enumerate() {
        let text = str_at(e, "text").ok_or_else(|| format!("entries[{i}].text: missing"))?;
        let micros = e
            .get("start_timestamp_usec")
            .and_then(Value::as_f64)
            .ok_or_else(|| format!("entries[{i}].start_timestamp_usec: missing or not a number"))?;
        let user = e.get("user_id").map(|u| match u {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        });
        let user_label = user.as_deref().map(|u| format!("user:{u}"));
        let role = role_or_unknown(
            &[
                str_at(e, "role").unwrap_or(""),
                user_label.as_deref().unwrap_or(""),
            ],
            roles,
            &mut unknown,
        );
        utterances.push(utterance(
            format!("e{}", i + 1),
            role,
            user,
            text.to_owned(),
            Some((micros / 1000.0).round() as i64),
            None,
        ));
    }
    rebase(&mut utterances);
    let mut warnings = Vec::new();
    if unknown > 0 {
        warnings.push(unknown_roles_warning(unknown, "role, or user:N"));
    }
    Ok(finish(
        name.to_owned(),
        start(Channel::Chat, String::new(), BTreeMap::new()),
        utterances,
        warnings,
    ))
}

/// `"1.500s"` (a protobuf Duration in JSON) in milliseconds.
fn offset_ms(text: &str) -> Option<i64> {
    let seconds: f64 = text.strip_suffix('s')?.parse().ok()?;
    seconds
        .is_finite()
        .then(|| (seconds * 1000.0).round() as i64)
}

fn voice(v: &Value, segments: &[Value], roles: &RoleMap, name: &str) -> Result<Transcript, String> {
    let mut utterances = Vec::with_capacity(segments.len());
    let mut unknown = 0;
    for (i, s) in segments.iter().enumerate() {
        let text = str_at(s, "text")
            .ok_or_else(|| format!("transcript.transcriptSegments[{i}].text: missing"))?;
        let words = s.get("words").and_then(Value::as_array);
        let first = words
            .and_then(|w| w.first())
            .and_then(|w| str_at(w, "startOffset"))
            .and_then(offset_ms);
        let last = words
            .and_then(|w| w.last())
            .and_then(|w| str_at(w, "endOffset"))
            .and_then(offset_ms);
        let channel = s.get("channelTag").map(|c| format!("channel:{c}"));
        let role = role_or_unknown(
            &[
                s.pointer("/segmentParticipant/role")
                    .and_then(Value::as_str)
                    .unwrap_or(""),
                channel.as_deref().unwrap_or(""),
            ],
            roles,
            &mut unknown,
        );
        let mut u = utterance(
            format!("s{}", i + 1),
            role,
            channel,
            text.to_owned(),
            first,
            last,
        );
        u.confidence = s
            .get("confidence")
            .and_then(Value::as_f64)
            .map(|c| c as f32);
        utterances.push(u);
    }
    let mut warnings = Vec::new();
    if unknown > 0 {
        warnings.push(unknown_roles_warning(
            unknown,
            "segmentParticipant.role, or channel:N",
        ));
    }
    let id = str_at(v, "name")
        .map(|n| n.rsplit('/').next().unwrap_or(n).to_owned())
        .unwrap_or_else(|| name.to_owned());
    let language = super::fields::language(str_at(v, "languageCode"), &mut warnings);
    Ok(finish(
        id,
        start(Channel::Voice, language, BTreeMap::new()),
        utterances,
        warnings,
    ))
}

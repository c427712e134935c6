//! Genesys Cloud speech and text analytics transcripts (the transcript URL's JSON):
//! `transcripts[].phrases[]` with `text` (or `decoratedText`), `startTimeMs`, `duration`, and
//! `participantPurpose` (`internal`: the agent, `external`: the customer).

use std::collections::BTreeMap;

use serde_json::Value;

use super::RoleMap;
use super::fields::{
    finish, rebase, role_or_unknown, start, str_at, unknown_roles_warning, utterance,
};
use crate::engine::Channel;
use crate::transcript::Transcript;

/// One transcript document.
/// Phrase times are epoch milliseconds: made offsets from the conversation's start, or from
/// the first phrase.
fn to_offsets(v: &Value, utterances: &mut [crate::engine::Utterance]) {
    match v.get("conversationStartTime").and_then(Value::as_f64) {
        Some(origin)
            if utterances
                .iter()
                .all(|u| u.start_ms.is_none_or(|s| s as f64 >= origin)) =>
        {
            let origin = origin.round() as i64;
            for u in utterances.iter_mut() {
                u.start_ms = u.start_ms.map(|t| t - origin);
                u.end_ms = u.end_ms.map(|t| t - origin);
            }
        }
        _ => {
            if utterances
                .iter()
                .flat_map(|u| u.start_ms)
                .min()
                .is_some_and(|t| t >= 1_000_000_000_000)
            {
                rebase(utterances);
            }
        }
    }
}

pub(super) fn transcript(v: &Value, roles: &RoleMap, name: &str) -> Result<Transcript, String> {
    let transcripts = v
        .get("transcripts")
        .and_then(Value::as_array)
        .ok_or("transcripts: missing or not an array (is this a Genesys Cloud transcript?)")?;
    let mut utterances = Vec::new();
    let mut unknown = 0;
    for (t, transcript) in transcripts.iter().enumerate() {
        let phrases = transcript
            .get("phrases")
            .and_then(Value::as_array)
            .ok_or_else(|| format!("transcripts[{t}].phrases: missing"))?;
        for (i, p) in phrases.iter().enumerate() {
            let text = str_at(p, "decoratedText")
                .or_else(|| str_at(p, "text"))
                .ok_or_else(|| format!("transcripts[{t}].phrases[{i}].text: missing"))?;
            let start_ms = p
                .get("startTimeMs")
                .and_then(Value::as_f64)
                .map(|s| s.round() as i64);
            let duration = p
                .pointer("/duration/milliseconds")
                .and_then(Value::as_f64)
                .map(|d| d.round() as i64);
            let purpose = str_at(p, "participantPurpose").unwrap_or("");
            let role = role_or_unknown(&[purpose], roles, &mut unknown);
            utterances.push(utterance(
                format!(
                    "t{}p{}",
                    t + 1,
                    str_at(p, "phraseIndex").map_or(i.to_string(), str::to_owned)
                ),
                role,
                (!purpose.is_empty()).then(|| purpose.to_owned()),
                text.to_owned(),
                start_ms,
                start_ms.zip(duration).map(|(s, d)| s + d),
            ));
        }
    }
    to_offsets(v, &mut utterances);
    utterances.sort_by_key(|u| u.start_ms);
    let mut warnings = Vec::new();
    if unknown > 0 {
        warnings.push(unknown_roles_warning(unknown, "participantPurpose"));
    }
    let channel = match str_at(v, "mediaType") {
        Some(m) if !m.eq_ignore_ascii_case("voice") && !m.eq_ignore_ascii_case("call") => {
            Channel::Chat
        }
        _ => Channel::Voice,
    };
    let id = str_at(v, "conversationId").unwrap_or(name).to_owned();
    Ok(finish(
        id,
        start(channel, String::new(), BTreeMap::new()),
        utterances,
        warnings,
    ))
}

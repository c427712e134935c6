//! Reading platform fields: speaker labels to roles, strings and milliseconds with errors that
//! name the field, language codes, and the finishing checks every reader applies.

use std::collections::{BTreeMap, HashSet};

use serde_json::Value;

use super::RoleMap;
use crate::engine::{Channel, Role, Start, Utterance};
use crate::transcript::Transcript;

/// The role of a platform speaker label: the role map first, then the platform's own names.
pub(super) fn role_of(labels: &[&str], roles: &RoleMap) -> Option<Role> {
    labels.iter().find_map(|l| roles.get(l)).or_else(|| {
        labels
            .iter()
            .find_map(|l| match l.to_ascii_uppercase().as_str() {
                // Contact Lens, Call Analytics, CCAI Insights, Genesys (internal/external).
                "AGENT" | "HUMAN_AGENT" | "INTERNAL" => Some(Role::Agent),
                "CUSTOMER" | "END_USER" | "EXTERNAL" => Some(Role::Customer),
                "SYSTEM" | "SUPERVISOR" | "CUSTOM_BOT" | "AUTOMATED_AGENT" | "IVR" | "ACD" => {
                    Some(Role::Other)
                }
                _ => None,
            })
    })
}

/// [`role_of`], or `Unknown` with the count of such turns raised.
pub(super) fn role_or_unknown(labels: &[&str], roles: &RoleMap, unknown: &mut usize) -> Role {
    role_of(labels, roles).unwrap_or_else(|| {
        *unknown += 1;
        Role::Unknown
    })
}

pub(super) fn str_at<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key).and_then(Value::as_str)
}

pub(super) fn millis_at(
    v: &Value,
    key: &str,
    field: impl Fn() -> String,
) -> Result<Option<i64>, String> {
    match v.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => match n.as_f64() {
            Some(x) if x.is_finite() && x.abs() < 9.0e15 => Ok(Some(x.round() as i64)),
            _ => Err(format!("{}: not a number of milliseconds", field())),
        },
        Some(_) => Err(format!(
            "{}: wrong type (a number of milliseconds)",
            field()
        )),
    }
}

/// Milliseconds since the Unix epoch of an RFC 3339 time (`2022-10-27T03:31:50.735Z`).
pub(super) fn epoch_ms(text: &str) -> Option<i64> {
    let t = humantime::parse_rfc3339_weak(text.trim_end_matches('Z'))
        .or_else(|_| humantime::parse_rfc3339(text))
        .ok()?;
    Some(
        t.duration_since(std::time::SystemTime::UNIX_EPOCH)
            .ok()?
            .as_millis() as i64,
    )
}

/// The platform's language code when it is a usable tag; else empty, with a warning (the
/// published samples carry placeholders such as "the language code of the contact").
pub(super) fn language(code: Option<&str>, warnings: &mut Vec<String>) -> String {
    match code {
        Some(c) if c.len() <= 64 && c.chars().all(|ch| ch.is_ascii_alphanumeric() || ch == '-') => {
            c.to_owned()
        }
        Some(_) => {
            warnings.push("LanguageCode is not a language tag: left out".into());
            String::new()
        }
        None => String::new(),
    }
}

/// A conversation read from a platform's file: ids made unique (numbered `t1, t2, …` with a
/// warning when they repeat or are missing), wall-clock times made offsets from the first,
/// and the checks every reader applies.
pub(super) fn finish(
    conversation_id: String,
    start: Start,
    mut utterances: Vec<Utterance>,
    mut warnings: Vec<String>,
) -> Transcript {
    let mut ids = HashSet::new();
    if !utterances
        .iter()
        .all(|u| !u.utterance_id.is_empty() && ids.insert(u.utterance_id.clone()))
    {
        for (n, u) in utterances.iter_mut().enumerate() {
            u.utterance_id = format!("t{}", n + 1);
        }
        warnings
            .push("turn ids are missing or repeat: turns are numbered t1, t2, … in order".into());
    }
    let mut signals = Vec::new();
    crate::transcript::check(&mut utterances, &mut signals, &mut warnings);
    crate::transcript::check_language(&start.language, &mut warnings);
    let labels = vec![None; utterances.len()];
    Transcript {
        conversation_id,
        start,
        utterances,
        signals,
        labels,
        warnings,
        annotations: BTreeMap::new(),
    }
}

/// Times that are wall-clock (ms since the epoch) made offsets from the earliest, silently:
/// for formats whose times are absolute by definition.
pub(super) fn rebase(utterances: &mut [Utterance]) {
    if let Some(first) = utterances
        .iter()
        .flat_map(|u| [u.start_ms, u.end_ms])
        .flatten()
        .min()
    {
        for u in utterances {
            u.start_ms = u.start_ms.map(|t| t - first);
            u.end_ms = u.end_ms.map(|t| t - first);
        }
    }
}

/// A start for a conversation of `channel`: chat is scored with the `chat` profile.
pub(super) fn start(
    channel: Channel,
    language: String,
    metadata: BTreeMap<String, String>,
) -> Start {
    Start {
        channel,
        language,
        rubric_profile: if channel == Channel::Chat {
            "chat".into()
        } else {
            String::new()
        },
        metadata,
    }
}

/// An utterance with no confidence, final.
pub(super) fn utterance(
    id: String,
    role: Role,
    participant: Option<String>,
    text: String,
    start_ms: Option<i64>,
    end_ms: Option<i64>,
) -> Utterance {
    Utterance {
        utterance_id: id,
        role,
        participant_id: participant,
        text,
        start_ms,
        end_ms,
        partial: false,
        confidence: None,
    }
}

/// The warning for turns whose speaker no role was found for.
pub(super) fn unknown_roles_warning(n: usize, labels: &str) -> String {
    format!(
        "{n} turn(s) by a speaker that is neither agent nor customer ({labels}), scored as unknown (--role-map can name them)"
    )
}

/// A turn's sentiment and issues as a platform gives them (`Sentiment`, `IssuesDetected` with
/// character offsets), for `Transcript::annotations` under the turn's final id.
pub(super) fn turn_annotations(turn: &Value) -> Vec<(&'static str, String)> {
    let mut out = Vec::new();
    if let Some(sentiment) = str_at(turn, "Sentiment") {
        out.push(("sentiment", sentiment.to_owned()));
    }
    if let Some(issues) = turn.get("IssuesDetected").and_then(Value::as_array) {
        let spans: Vec<String> = issues
            .iter()
            .filter_map(|i| {
                let o = i.get("CharacterOffsets")?;
                let begin = o
                    .get("BeginOffsetChar")
                    .or_else(|| o.get("Begin"))?
                    .as_u64()?;
                let end = o.get("EndOffsetChar").or_else(|| o.get("End"))?.as_u64()?;
                Some(format!("{begin}-{end}"))
            })
            .collect();
        if !spans.is_empty() {
            out.push(("issues", spans.join(",")));
        }
    }
    out
}

/// Each turn's notes (from [`turn_annotations`], in turn order) under the turn's final id:
/// `platform.<what>.<utterance_id>`.
pub(super) fn annotations(
    utterances: &[Utterance],
    notes: Vec<Vec<(&'static str, String)>>,
) -> BTreeMap<String, String> {
    utterances
        .iter()
        .zip(notes)
        .flat_map(|(u, notes)| {
            notes
                .into_iter()
                .map(move |(what, value)| (format!("platform.{what}.{}", u.utterance_id), value))
        })
        .collect()
}

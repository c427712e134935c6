//! Amazon Transcribe Post-Call Analytics (the PCA sample solution's output): `SpeechSegments`
//! with times in seconds and a `SegmentSpeaker` label, whose party `ConversationAnalytics.
//! SpeakerLabels` names (`spk_0` → "Agent"); `--role-map` overrides it.

use std::collections::{BTreeMap, HashMap};

use serde_json::Value;

use super::RoleMap;
use super::fields::{finish, language, role_of, start, str_at, unknown_roles_warning, utterance};
use crate::engine::{Channel, Role};
use crate::transcript::Transcript;

/// Seconds to milliseconds, for a field named by `field` in errors.
fn seconds(v: &Value, key: &str, field: &dyn Fn() -> String) -> Result<Option<i64>, String> {
    match v.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(x) => x
            .as_f64()
            .filter(|s| s.is_finite() && s.abs() < 9.0e12)
            .map(|s| Some((s * 1000.0).round() as i64))
            .ok_or_else(|| format!("{}: not a number of seconds", field())),
    }
}

/// One PCA output document.
pub(super) fn output(v: &Value, roles: &RoleMap, name: &str) -> Result<Transcript, String> {
    let segments = v
        .get("SpeechSegments")
        .and_then(Value::as_array)
        .ok_or("SpeechSegments: missing or not an array (is this a Post-Call Analytics output?)")?;
    let analytics = v.get("ConversationAnalytics").unwrap_or(&Value::Null);
    let labels: HashMap<&str, &str> = analytics
        .get("SpeakerLabels")
        .and_then(Value::as_array)
        .map(|ls| {
            ls.iter()
                .filter_map(|l| Some((str_at(l, "Speaker")?, str_at(l, "DisplayText")?)))
                .collect()
        })
        .unwrap_or_default();
    let mut utterances = Vec::with_capacity(segments.len());
    let mut unknown = 0;
    for (i, s) in segments.iter().enumerate() {
        let field = |k: &str| format!("SpeechSegments[{i}].{k}");
        let text = str_at(s, "DisplayText")
            .or_else(|| str_at(s, "OriginalText"))
            .ok_or_else(|| field("DisplayText") + ": missing")?;
        let speaker = str_at(s, "SegmentSpeaker").unwrap_or("");
        let named = labels.get(speaker).copied().unwrap_or("");
        // The role map first (labels can be wrong), then the file's own names for speakers.
        let role = roles
            .get(speaker)
            .or_else(|| role_of(&[named], roles))
            .unwrap_or_else(|| {
                unknown += 1;
                Role::Unknown
            });
        utterances.push(utterance(
            format!("s{}", i + 1),
            role,
            (!speaker.is_empty()).then(|| speaker.to_owned()),
            text.to_owned(),
            seconds(s, "SegmentStartTime", &|| field("SegmentStartTime"))?,
            seconds(s, "SegmentEndTime", &|| field("SegmentEndTime"))?,
        ));
    }
    let mut warnings = Vec::new();
    if unknown > 0 {
        warnings.push(unknown_roles_warning(unknown, "SegmentSpeaker"));
    }
    let id = str_at(analytics, "GUID")
        .filter(|g| !g.is_empty() && *g != "None")
        .unwrap_or(name)
        .to_owned();
    let language = language(str_at(analytics, "LanguageCode"), &mut warnings);
    Ok(finish(
        id,
        start(Channel::Voice, language, BTreeMap::new()),
        utterances,
        warnings,
    ))
}

//! Azure AI Speech batch transcription results: `recognizedPhrases` with offsets and durations
//! in ticks (100 ns), the best alternative's `display` text, and a `speaker` (diarisation) or
//! `channel` that `--role-map` names (`speaker:1=agent`, `channel:0=customer`).

use std::collections::BTreeMap;

use serde_json::Value;

use super::RoleMap;
use super::fields::{finish, role_or_unknown, start, str_at, unknown_roles_warning, utterance};
use crate::engine::Channel;
use crate::transcript::Transcript;

/// One transcription result file.
/// The span of a recognised phrase's words, in milliseconds (offset, duration), when every
/// word is timed.
fn word_span(best: &Value) -> Option<(i64, i64)> {
    let words = best
        .get("displayWords")
        .or_else(|| best.get("words"))
        .and_then(Value::as_array)
        .filter(|w| !w.is_empty())?;
    let spans: Vec<(f64, f64)> = words
        .iter()
        .filter_map(|w| {
            Some((
                w.get("offsetInTicks")?.as_f64()?,
                w.get("durationInTicks")?.as_f64()?,
            ))
        })
        .filter(|(o, d)| o.is_finite() && d.is_finite())
        .collect();
    if spans.len() != words.len() {
        return None;
    }
    let first = spans.iter().map(|(o, _)| *o).fold(f64::INFINITY, f64::min);
    let last = spans
        .iter()
        .map(|(o, d)| o + d)
        .fold(f64::NEG_INFINITY, f64::max);
    Some((
        (first / 10_000.0).round() as i64,
        ((last - first) / 10_000.0).round() as i64,
    ))
}

pub(super) fn result(v: &Value, roles: &RoleMap, name: &str) -> Result<Transcript, String> {
    let phrases = v.get("recognizedPhrases").and_then(Value::as_array).ok_or(
        "recognizedPhrases: missing or not an array (is this an Azure batch transcription result?)",
    )?;
    let mut utterances = Vec::with_capacity(phrases.len());
    let (mut unknown, mut failed) = (0, 0);
    for (i, p) in phrases.iter().enumerate() {
        if str_at(p, "recognitionStatus").is_some_and(|s| s != "Success") {
            failed += 1;
            continue;
        }
        let best = p
            .pointer("/nBest/0")
            .ok_or_else(|| format!("recognizedPhrases[{i}].nBest: empty"))?;
        let text = str_at(best, "display")
            .or_else(|| str_at(best, "lexical"))
            .ok_or_else(|| format!("recognizedPhrases[{i}].nBest[0].display: missing"))?;
        let ticks = |k: &str| -> Result<Option<i64>, String> {
            match p.get(k) {
                None => Ok(None),
                Some(t) => t
                    .as_f64()
                    .filter(|t| t.is_finite())
                    .map(|t| Some((t / 10_000.0).round() as i64))
                    .ok_or_else(|| format!("recognizedPhrases[{i}].{k}: not a number of ticks")),
            }
        };
        let mut offset = ticks("offsetInTicks")?;
        let mut duration = ticks("durationInTicks")?;
        // Word timings, when requested (`displayWords` or `words`): the phrase runs from its
        // first word's start to its last word's end.
        if let Some((o, d)) = word_span(best) {
            (offset, duration) = (Some(o), Some(d));
        }
        let speaker = p.get("speaker").map(|s| format!("speaker:{s}"));
        let channel = p.get("channel").map(|c| format!("channel:{c}"));
        let role = role_or_unknown(
            &[
                speaker.as_deref().unwrap_or(""),
                channel.as_deref().unwrap_or(""),
            ],
            roles,
            &mut unknown,
        );
        let mut u = utterance(
            format!("p{}", i + 1),
            role,
            speaker.or(channel),
            text.to_owned(),
            offset,
            offset.zip(duration).map(|(o, d)| o + d),
        );
        u.confidence = best
            .get("confidence")
            .and_then(Value::as_f64)
            .map(|c| c as f32);
        utterances.push(u);
    }
    let mut warnings = Vec::new();
    if failed > 0 {
        warnings.push(format!("{failed} phrase(s) not recognised (recognitionStatus other than Success) were passed over"));
    }
    if unknown > 0 {
        warnings.push(unknown_roles_warning(unknown, "speaker:N or channel:N"));
    }
    let language = super::fields::language(str_at(v, "locale"), &mut warnings);
    Ok(finish(
        name.to_owned(),
        start(Channel::Voice, language, BTreeMap::new()),
        utterances,
        warnings,
    ))
}

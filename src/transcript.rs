//! Transcript files: JSON Lines, one conversation per line (`api.md`). Unknown fields are
//! ignored; a malformed line is reported with its number and skipped, never stopping the rest.
//! Error messages name lines, columns and fields, never the text or values on them.

use std::collections::BTreeMap;
use std::io::{self, BufRead};

use serde::Deserialize;

use crate::engine::{Channel, Role, Signal, SignalKind, Start, Utterance};

/// Roles for the speaker labels a platform uses (`--role-map spk_0=agent,spk_1=customer`):
/// keys are matched without regard to case against a turn's participant id, role or speaker
/// label; `channel:N` matches a channel number.
#[derive(Debug, Clone, Default)]
pub struct RoleMap(BTreeMap<String, Role>);

impl RoleMap {
    /// Parses `key=role[,key=role…]`; roles are agent, customer, other, unknown.
    pub fn parse(spec: &str) -> Result<RoleMap, String> {
        let mut map = BTreeMap::new();
        for pair in spec.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (key, role) = pair
                .split_once('=')
                .ok_or_else(|| format!("--role-map: `{pair}` is not KEY=ROLE"))?;
            let role = role_name(role).ok_or_else(|| {
                format!("--role-map: {key}: the role must be agent, customer, other or unknown")
            })?;
            map.insert(key.trim().to_ascii_lowercase(), role);
        }
        Ok(RoleMap(map))
    }

    /// The role the map gives `label`, if any.
    pub fn get(&self, label: &str) -> Option<Role> {
        self.0.get(&label.to_ascii_lowercase()).copied()
    }

    /// Whether the map is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// A role written out (any case): agent, customer, other, unknown.
pub fn role_name(name: &str) -> Option<Role> {
    match name.trim().to_ascii_lowercase().as_str() {
        "agent" => Some(Role::Agent),
        "customer" => Some(Role::Customer),
        "other" => Some(Role::Other),
        "unknown" => Some(Role::Unknown),
        _ => None,
    }
}

/// Longest line read (R-SIZE-4); a longer one is skipped as malformed.
pub const MAX_LINE_BYTES: usize = 4 * 1024 * 1024;

/// One conversation of a transcript file.
#[derive(Debug, Clone, PartialEq)]
pub struct Transcript {
    /// Its id.
    pub conversation_id: String,
    /// Channel, language, profile, metadata.
    pub start: Start,
    /// Utterances in file order.
    pub utterances: Vec<Utterance>,
    /// Holds and transfers.
    pub signals: Vec<Signal>,
    /// Per utterance: the `labels` object of a labelled file, if any.
    pub labels: Vec<Option<serde_json::Value>>,
    /// What was guessed at or looks wrong but was kept (no text or values): every reader of a
    /// file prints these.
    pub warnings: Vec<String>,
    /// What a platform's file says about the turns that hearken passes through but does not
    /// score (`platform.sentiment.<utterance_id>`, `platform.issues.<utterance_id>`):
    /// `hearken score` echoes them in `metadata` beside the start's.
    pub annotations: BTreeMap<String, String>,
}

/// A line that could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {message}")]
pub struct LineError {
    /// 1-based line number.
    pub line: usize,
    /// What is wrong (no text or values from the line).
    pub message: String,
}

#[derive(Deserialize)]
struct Line {
    conversation_id: String,
    #[serde(default)]
    channel: Option<String>,
    #[serde(default)]
    language: Option<String>,
    #[serde(default)]
    rubric_profile: Option<String>,
    #[serde(default)]
    metadata: BTreeMap<String, String>,
    utterances: Vec<UtteranceLine>,
    #[serde(default)]
    signals: Vec<SignalLine>,
}

#[derive(Deserialize)]
struct UtteranceLine {
    utterance_id: String,
    #[serde(default)]
    role: Option<String>,
    #[serde(default)]
    participant_id: Option<String>,
    /// Corpora without roles name speakers ("A", "B"); used as the participant.
    #[serde(default)]
    speaker: Option<String>,
    text: String,
    /// Milliseconds; fractions are rounded.
    #[serde(default)]
    start_ms: Option<f64>,
    #[serde(default)]
    end_ms: Option<f64>,
    #[serde(default)]
    partial: bool,
    #[serde(default)]
    confidence: Option<f32>,
    #[serde(default)]
    labels: Option<serde_json::Value>,
    /// Word timings, when the recogniser gives them: the turn runs from its first word's start
    /// to its last word's end (silence before and after the words is not talk).
    #[serde(default)]
    words: Option<Vec<WordLine>>,
}

#[derive(Deserialize)]
struct WordLine {
    #[serde(default)]
    #[allow(dead_code)] // read for the format's sake; the words' text is the utterance's
    text: Option<String>,
    start_ms: f64,
    end_ms: f64,
}

#[derive(Deserialize)]
struct SignalLine {
    kind: String,
    offset_ms: f64,
}

fn describe(e: &serde_path_to_error::Error<serde_json::Error>) -> String {
    use serde_json::error::Category;
    let inner = e.inner();
    let path = e.path().to_string();
    let at = |what: String| {
        if path == "." || path.is_empty() {
            what
        } else {
            format!("{path}: {what}")
        }
    };
    let text = inner.to_string();
    match inner.classify() {
        // serde's "missing field `x`" names a field, never a value.
        Category::Data if text.starts_with("missing field") => at(text
            .split(" at line")
            .next()
            .unwrap_or("missing field")
            .to_string()),
        // serde's own text would quote the value: the field's path and the column only.
        Category::Data => at(format!("wrong type or value (column {})", inner.column())),
        Category::Syntax => format!("malformed JSON (column {})", inner.column()),
        Category::Eof => "the line ends in the middle of a JSON value".into(),
        Category::Io => "could not be read".into(),
    }
}

/// Milliseconds from a JSON number, rounded; `field` names it in the error.
fn millis(value: f64, field: impl FnOnce() -> String) -> Result<i64, String> {
    if value.is_finite() && value.abs() < 9.0e15 {
        Ok(value.round() as i64)
    } else {
        Err(format!("{}: not a number of milliseconds", field()))
    }
}

/// Offsets at or beyond this (2001-09-09 in epoch milliseconds) are wall-clock times, not
/// offsets from the call's start.
const EPOCH_MS_FLOOR: i64 = 1_000_000_000_000;

/// Rebases epoch-millisecond times to the call's first moment, and says what looks wrong.
fn check_times(utterances: &mut [Utterance], signals: &mut [Signal], warnings: &mut Vec<String>) {
    let starts = utterances
        .iter()
        .flat_map(|u| [u.start_ms, u.end_ms])
        .flatten()
        .chain(signals.iter().map(|s| s.offset_ms));
    let Some(first) = starts.clone().min() else {
        return;
    };
    if first >= EPOCH_MS_FLOOR {
        for u in utterances.iter_mut() {
            u.start_ms = u.start_ms.map(|t| t - first);
            u.end_ms = u.end_ms.map(|t| t - first);
        }
        for s in signals.iter_mut() {
            s.offset_ms -= first;
        }
        warnings.push(
            "times look like epoch milliseconds (wall-clock), not offsets from the call's start: \
             rebased to the earliest time in the conversation"
                .into(),
        );
        return;
    }
    let last = starts.max().unwrap_or(first);
    let words: usize = utterances
        .iter()
        .map(|u| u.text.split_whitespace().count())
        .sum();
    // Real speech runs at about 2–3 words a second; 20 words in under 2 "milliseconds" per
    // word are times in seconds.
    if utterances.len() >= 2 && words >= 20 && ((last - first) as usize) < words * 2 {
        warnings.push(format!(
            "times look like seconds, not milliseconds: {words} words in {} ms; the timing \
             behaviours will be wrong (multiply the times by 1000)",
            last - first
        ));
    }
}

/// What every reader checks once a conversation is read: epoch times rebased, times that look
/// like seconds, no agent at all.
pub(crate) fn check(
    utterances: &mut [Utterance],
    signals: &mut [Signal],
    warnings: &mut Vec<String>,
) {
    if !utterances.is_empty() && !utterances.iter().any(|u| u.role == Role::Agent) {
        warnings
            .push("no utterance is the agent's: the listening score has nobody to judge".into());
    }
    // Streams send segments as they are finalised, so starts may go back (a long turn ends
    // after a short one inside it); an utterance that both starts and ends before the one
    // above it is out of order.
    let out_of_order = utterances
        .windows(2)
        .filter(|w| match (w[0].interval(), w[1].interval()) {
            (Some((s0, e0)), Some((s1, e1))) => s1 < s0 && e1 < e0,
            _ => false,
        })
        .count();
    if out_of_order > 0 {
        warnings.push(format!(
            "{out_of_order} utterance(s) start and end before the one above them: utterances are \
             scored in file order, as a stream would send them; sort the file by time if that is \
             not the order they were finalised"
        ));
    }
    check_times(utterances, signals, warnings);
}

/// Warns when the conversation's language is not one the rubric's vocabularies are written in.
pub(crate) fn check_language(language: &str, warnings: &mut Vec<String>) {
    let primary = language
        .split(['-', '_'])
        .next()
        .unwrap_or("")
        .to_ascii_lowercase();
    if !primary.is_empty() && primary != "en" {
        warnings.push(format!(
            "language {language}: hearken's listening vocabularies are English; the language \
             behaviours (questions, empathy, reflections, …) will be unreliable (timing \
             behaviours are not affected)"
        ));
    }
}

/// Utterance `i`'s role: one written out, else one the role map gives its role label,
/// participant or speaker; `None` when neither says.
fn role_of(u: &UtteranceLine, roles: &RoleMap, i: usize) -> Result<Option<Role>, String> {
    if let Some(r) = u.role.as_deref().filter(|r| !r.is_empty()) {
        return match role_name(r).or_else(|| roles.get(r)) {
            Some(role) => Ok(Some(role)),
            None => Err(format!(
                "utterances[{i}].role: must be agent, customer, other or unknown (or a label --role-map maps)"
            )),
        };
    }
    let label = u.participant_id.as_deref().or(u.speaker.as_deref());
    Ok(label.and_then(|l| roles.get(l)))
}

/// The span of an utterance's timed words (`i` its place, for errors): first start, last end.
fn word_span(words: &[WordLine], i: usize) -> Result<(i64, i64), String> {
    let mut first = i64::MAX;
    let mut last = i64::MIN;
    for (j, w) in words.iter().enumerate() {
        let s = millis(w.start_ms, || {
            format!("utterances[{i}].words[{j}].start_ms")
        })?;
        let e = millis(w.end_ms, || format!("utterances[{i}].words[{j}].end_ms"))?;
        if e < s {
            return Err(format!(
                "utterances[{i}].words[{j}].end_ms: before its start_ms"
            ));
        }
        first = first.min(s);
        last = last.max(e);
    }
    Ok((first, last))
}

/// Signal `i` of a line.
fn signal(s: SignalLine, i: usize) -> Result<Signal, String> {
    let kind = match s.kind.to_ascii_lowercase().as_str() {
        "hold_started" => SignalKind::HoldStarted,
        "hold_ended" => SignalKind::HoldEnded,
        "transfer" => SignalKind::Transfer,
        _ => {
            return Err(format!(
                "signals[{i}].kind: must be hold_started, hold_ended or transfer"
            ));
        }
    };
    Ok(Signal {
        kind,
        offset_ms: millis(s.offset_ms, || format!("signals[{i}].offset_ms"))?,
    })
}

fn convert(line: Line, roles: &RoleMap) -> Result<Transcript, String> {
    let channel = match line
        .channel
        .as_deref()
        .map(str::to_ascii_lowercase)
        .as_deref()
    {
        None | Some("") | Some("voice") => Channel::Voice,
        Some("chat") => Channel::Chat,
        Some(_) => return Err("channel: must be voice or chat".into()),
    };
    let mut utterances = Vec::with_capacity(line.utterances.len());
    let mut labels = Vec::with_capacity(line.utterances.len());
    let mut warnings = Vec::new();
    let mut without_role = 0;
    for (i, u) in line.utterances.into_iter().enumerate() {
        let role = match role_of(&u, roles, i)? {
            Some(role) => role,
            None => {
                without_role += 1;
                Role::Unknown
            }
        };
        let ms = |value: Option<f64>, field: &str| {
            value
                .map(|v| millis(v, || format!("utterances[{i}].{field}")))
                .transpose()
        };
        let (mut start_ms, mut end_ms) = (ms(u.start_ms, "start_ms")?, ms(u.end_ms, "end_ms")?);
        if let Some(words) = u.words.as_deref().filter(|w| !w.is_empty()) {
            let (first, last) = word_span(words, i)?;
            (start_ms, end_ms) = (Some(first), Some(last));
        }
        utterances.push(Utterance {
            utterance_id: u.utterance_id,
            role,
            participant_id: u.participant_id.or(u.speaker),
            text: u.text,
            start_ms,
            end_ms,
            partial: u.partial,
            confidence: u.confidence,
        });
        labels.push(u.labels);
    }
    if without_role > 0 {
        warnings.push(format!(
            "{without_role} utterance(s) without a role, scored as unknown: nothing they say is \
             judged as the agent's"
        ));
    }
    let mut signals = line
        .signals
        .into_iter()
        .enumerate()
        .map(|(i, s)| signal(s, i))
        .collect::<Result<Vec<_>, _>>()?;
    check(&mut utterances, &mut signals, &mut warnings);
    check_language(line.language.as_deref().unwrap_or(""), &mut warnings);
    Ok(Transcript {
        conversation_id: line.conversation_id,
        start: Start {
            channel,
            language: line.language.unwrap_or_default(),
            rubric_profile: line.rubric_profile.unwrap_or_default(),
            metadata: line.metadata,
        },
        utterances,
        signals,
        labels,
        warnings,
        annotations: BTreeMap::new(),
    })
}

/// Parses one line.
pub fn parse_line(line: &[u8]) -> Result<Transcript, String> {
    parse_line_with(line, &RoleMap::default())
}

/// Parses one line, with roles for speaker labels.
pub fn parse_line_with(line: &[u8], roles: &RoleMap) -> Result<Transcript, String> {
    let mut deserializer = serde_json::Deserializer::from_slice(line);
    let parsed: Line =
        serde_path_to_error::deserialize(&mut deserializer).map_err(|e| describe(&e))?;
    deserializer.end().map_err(|e| {
        format!(
            "malformed JSON after the conversation (column {})",
            e.column()
        )
    })?;
    convert(parsed, roles)
}

/// One conversation from a JSON value (a document, or an element of an array of them).
pub fn from_value(value: serde_json::Value, roles: &RoleMap) -> Result<Transcript, String> {
    let parsed: Line = serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner().to_string();
        if inner.starts_with("missing field") {
            let what = inner
                .split(" at line")
                .next()
                .unwrap_or("missing field")
                .to_owned();
            if path == "." {
                what
            } else {
                format!("{path}: {what}")
            }
        } else {
            format!("{path}: wrong type or value")
        }
    })?;
    convert(parsed, roles)
}

/// Reads a transcript file line by line. Blank lines are skipped; a line longer than
/// [`MAX_LINE_BYTES`] is skipped without being held in memory.
#[derive(Debug)]
pub struct Reader<R> {
    input: R,
    line: usize,
    buffer: Vec<u8>,
    /// An I/O error ended the input: reported once, then nothing more is read.
    failed: bool,
    /// Roles for speaker labels (`--role-map`).
    roles: RoleMap,
}

impl<R: BufRead> Reader<R> {
    /// Reads from `input`.
    pub fn new(input: R) -> Self {
        Reader {
            input,
            line: 0,
            buffer: Vec::new(),
            failed: false,
            roles: RoleMap::default(),
        }
    }

    /// The line number of the item read last (1-based; 0 before the first).
    pub fn line(&self) -> usize {
        self.line
    }

    /// Reads speaker labels with `roles`.
    pub fn with_roles(mut self, roles: RoleMap) -> Self {
        self.roles = roles;
        self
    }

    /// Reads the next line into the buffer; `Ok(false)` at the end, `Err` for an I/O failure.
    /// Sets `too_long` when the line was cut.
    fn next_line(&mut self, too_long: &mut bool) -> io::Result<bool> {
        self.buffer.clear();
        *too_long = false;
        let mut read_any = false;
        loop {
            let available = self.input.fill_buf()?;
            if available.is_empty() {
                return Ok(read_any);
            }
            read_any = true;
            let (chunk, done) = match available.iter().position(|b| *b == b'\n') {
                Some(i) => (&available[..i], Some(i + 1)),
                None => (available, None),
            };
            if !*too_long {
                if self.buffer.len() + chunk.len() > MAX_LINE_BYTES {
                    *too_long = true;
                    self.buffer.clear();
                } else {
                    self.buffer.extend_from_slice(chunk);
                }
            }
            let consumed = done.unwrap_or(available.len());
            self.input.consume(consumed);
            if done.is_some() {
                return Ok(true);
            }
        }
    }
}

impl<R: BufRead> Iterator for Reader<R> {
    type Item = Result<Transcript, LineError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        loop {
            let mut too_long = false;
            match self.next_line(&mut too_long) {
                Ok(false) => return None,
                Ok(true) => {}
                Err(error) => {
                    // Reading again would fail again (a directory, a device error): once.
                    self.failed = true;
                    self.line += 1;
                    return Some(Err(LineError {
                        line: self.line,
                        message: format!(
                            "could not be read ({}); the rest of the input is skipped",
                            error.kind()
                        ),
                    }));
                }
            }
            self.line += 1;
            if too_long {
                return Some(Err(LineError {
                    line: self.line,
                    message: format!("longer than {MAX_LINE_BYTES} bytes"),
                }));
            }
            if self.buffer.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            return Some(
                parse_line_with(&self.buffer, &self.roles).map_err(|message| LineError {
                    line: self.line,
                    message,
                }),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_lines_and_reports_malformed_ones_by_number_without_their_text() {
        let input = concat!(
            r#"{"conversation_id": "c1", "channel": "voice", "utterances": [{"utterance_id": "u1", "role": "customer", "text": "hi", "start_ms": 0, "end_ms": 900, "extra": 1}]}"#,
            "\n",
            "\n",
            r#"{"conversation_id": "c2", "utterances": [{"utterance_id": "u1", "role": "SECRET-ROLE", "text": "x"}]}"#,
            "\n",
            r#"{"conversation_id": "c3", "utterances": [{"utterance_id": "u1", "text": 4111111111111111}]}"#,
            "\n",
            r#"{"conversation_id": "c4" "#,
            "\n",
            r#"{"conversation_id": "c5", "utterances": [{"utterance_id": "u1", "text": "ok", "start_ms": null, "end_ms": null}], "signals": [{"kind": "hold_started", "offset_ms": 5}]}"#,
        );
        let results: Vec<_> = Reader::new(input.as_bytes()).collect();
        assert_eq!(results.len(), 5);
        let first = results[0].as_ref().unwrap();
        assert_eq!(
            (first.conversation_id.as_str(), first.utterances[0].role),
            ("c1", Role::Customer)
        );
        let errors: Vec<_> = results.iter().filter_map(|r| r.as_ref().err()).collect();
        assert_eq!(errors.iter().map(|e| e.line).collect::<Vec<_>>(), [3, 4, 5]);
        for e in &errors {
            let text = e.to_string();
            assert!(!text.contains("SECRET") && !text.contains("4111"), "{text}");
        }
        let last = results[4].as_ref().unwrap();
        assert_eq!(last.utterances[0].start_ms, None);
        assert_eq!(
            last.signals,
            [Signal {
                kind: SignalKind::HoldStarted,
                offset_ms: 5
            }]
        );
    }

    #[test]
    fn an_over_long_line_is_skipped_and_reading_goes_on() {
        let mut input = vec![b'x'; MAX_LINE_BYTES + 10];
        input.push(b'\n');
        input.extend_from_slice(br#"{"conversation_id": "ok", "utterances": []}"#);
        let results: Vec<_> = Reader::new(io::BufReader::with_capacity(8192, &input[..])).collect();
        assert_eq!(results[0].as_ref().unwrap_err().line, 1);
        assert_eq!(results[1].as_ref().unwrap().conversation_id, "ok");
    }

    #[test]
    fn missing_fields_are_named() {
        let e = parse_line(br#"{"conversation_id": "c"}"#).unwrap_err();
        assert_eq!(e, "missing field `utterances`");
        let e = parse_line(br#"{"conversation_id": "c", "utterances": [{"utterance_id": "u1"}]}"#)
            .unwrap_err();
        assert_eq!(e, "utterances[0]: missing field `text`");
    }

    #[test]
    fn type_errors_name_the_field_never_the_value() {
        let e = parse_line(
            br#"{"conversation_id": "c", "utterances": [{"utterance_id": "u1", "text": "x"}, {"utterance_id": "u2", "text": "y", "start_ms": "SECRET12"}]}"#,
        )
        .unwrap_err();
        assert!(
            e.starts_with("utterances[1].start_ms: wrong type or value"),
            "{e}"
        );
        assert!(!e.contains("SECRET"), "{e}");
    }

    #[test]
    fn upper_case_roles_and_channels_and_fractional_milliseconds_are_read() {
        let t = parse_line(
            br#"{"conversation_id": "c", "channel": "VOICE", "utterances": [{"utterance_id": "u1", "role": "AGENT", "text": "hi", "start_ms": 0.4, "end_ms": 1250.6}], "signals": [{"kind": "HOLD_STARTED", "offset_ms": 10.2}]}"#,
        )
        .unwrap();
        assert_eq!(t.start.channel, Channel::Voice);
        assert_eq!(t.utterances[0].role, Role::Agent);
        assert_eq!(
            (t.utterances[0].start_ms, t.utterances[0].end_ms),
            (Some(0), Some(1251))
        );
        assert_eq!(t.signals[0].offset_ms, 10);
        assert!(t.warnings.is_empty(), "{:?}", t.warnings);
    }

    #[test]
    fn guesses_and_suspicious_input_are_said() {
        // Epoch milliseconds: rebased, and said.
        let t = parse_line(
            br#"{"conversation_id": "c", "utterances": [{"utterance_id": "u1", "role": "customer", "text": "hi", "start_ms": 1764000000000, "end_ms": 1764000002000}, {"utterance_id": "u2", "role": "agent", "text": "hello", "start_ms": 1764000003000, "end_ms": 1764000004000}]}"#,
        )
        .unwrap();
        assert_eq!(t.utterances[0].start_ms, Some(0));
        assert_eq!(t.utterances[1].end_ms, Some(4000));
        assert!(
            t.warnings[0].contains("epoch milliseconds"),
            "{:?}",
            t.warnings
        );
        // Seconds, a missing role, no agent.
        let t = parse_line(
            br#"{"conversation_id": "c", "utterances": [{"utterance_id": "u1", "text": "my internet keeps dropping out every single evening since last week", "start_ms": 0, "end_ms": 4}, {"utterance_id": "u2", "role": "customer", "text": "and nobody has called me back about it even once so far", "start_ms": 5, "end_ms": 9}]}"#,
        )
        .unwrap();
        let all = t.warnings.join(" | ");
        assert!(all.contains("1 utterance(s) without a role"), "{all}");
        assert!(all.contains("no utterance is the agent's"), "{all}");
        assert!(all.contains("look like seconds"), "{all}");
    }
}

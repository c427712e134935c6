//! Input limits every conversation enforces (`reliability.md`, R-SIZE-2, -3, -5 and R-CONV-2),
//! whatever path it came by: live stream, `ScoreTranscript` or a transcript file.

use super::event::{Start, Utterance};
use super::{RejectReason, Rejected};

/// Limits on what a conversation accepts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InputLimits {
    /// Bytes of UTF-8 text per utterance.
    pub max_text_bytes: usize,
    /// Bytes of `conversation_id`, `utterance_id` and `participant_id`.
    pub max_id_bytes: usize,
    /// Metadata entries in `start`.
    pub max_metadata_entries: usize,
    /// Bytes of a metadata key.
    pub max_metadata_key_bytes: usize,
    /// Bytes of a metadata value.
    pub max_metadata_value_bytes: usize,
    /// Largest offset, in milliseconds.
    pub max_offset_ms: i64,
    /// Final utterances per conversation.
    pub max_utterances: u32,
}

impl InputLimits {
    /// 16 384 bytes, as Amazon Connect's chat messages.
    pub const DEFAULT_MAX_TEXT_BYTES: usize = 16_384;
    /// 256 bytes, as Contact Lens' contact id.
    pub const DEFAULT_MAX_ID_BYTES: usize = 256;
    /// 24 hours.
    pub const DEFAULT_MAX_OFFSET_MS: i64 = 24 * 60 * 60 * 1000;
    /// A one-hour call has 600–1 000 utterances.
    pub const DEFAULT_MAX_UTTERANCES: u32 = 20_000;
}

impl Default for InputLimits {
    fn default() -> Self {
        InputLimits {
            max_text_bytes: Self::DEFAULT_MAX_TEXT_BYTES,
            max_id_bytes: Self::DEFAULT_MAX_ID_BYTES,
            max_metadata_entries: 32,
            max_metadata_key_bytes: 64,
            max_metadata_value_bytes: 256,
            max_offset_ms: Self::DEFAULT_MAX_OFFSET_MS,
            max_utterances: Self::DEFAULT_MAX_UTTERANCES,
        }
    }
}

fn malformed(field: &'static str, description: String) -> Rejected {
    Rejected::new(RejectReason::Malformed, field, description)
}

fn too_long(field: &'static str, description: String) -> Rejected {
    Rejected::new(RejectReason::TooLong, field, description)
}

/// Whether `c` may not stand in an identifier: a control character; an invisible character
/// (Unicode's Default_Ignorable_Code_Point, DerivedCoreProperties.txt: bidirectional overrides
/// and isolates, zero-width characters, the byte-order mark, the soft hyphen, Hangul fillers,
/// variation selectors, tag characters, interlinear annotation marks); or a blank one that
/// reads as a space or as nothing (non-ASCII white space, the Braille blank). Any of them would
/// let an id shown in a supervisor's feed pose as another.
fn hidden_or_control(c: char) -> bool {
    c.is_control()
        || (c.is_whitespace() && c != ' ')
        || matches!(c,
            '\u{00AD}'
            | '\u{034F}'
            | '\u{061C}'
            | '\u{115F}'..='\u{1160}'
            | '\u{17B4}'..='\u{17B5}'
            | '\u{180B}'..='\u{180F}'
            | '\u{200B}'..='\u{200F}'
            | '\u{202A}'..='\u{202E}'
            | '\u{2060}'..='\u{206F}'
            | '\u{2800}'
            | '\u{3164}'
            | '\u{FE00}'..='\u{FE0F}'
            | '\u{FEFF}'
            | '\u{FFA0}'
            | '\u{FFF0}'..='\u{FFFB}'
            | '\u{1BCA0}'..='\u{1BCA3}'
            | '\u{1D173}'..='\u{1D17A}'
            | '\u{E0000}'..='\u{E0FFF}')
}

/// Checks an identifier: 1 to `max` bytes, no control, invisible or blank
/// characters. Never echoes the value.
pub(crate) fn check_id(value: &str, field: &'static str, max: usize) -> Result<(), Rejected> {
    if value.is_empty() {
        return Err(malformed(field, "must not be empty".into()));
    }
    if value.len() > max {
        return Err(too_long(
            field,
            format!("must be at most {max} bytes, got {}", value.len()),
        ));
    }
    if value.chars().any(hidden_or_control) {
        return Err(malformed(
            field,
            "must not contain control, invisible or blank characters (only the ASCII space is allowed)".into(),
        ));
    }
    Ok(())
}

impl InputLimits {
    /// Checks a `start`.
    pub fn check_start(&self, start: &Start) -> Result<(), Rejected> {
        if start.language.len() > 64
            || start
                .language
                .chars()
                .any(|c| !(c.is_ascii_alphanumeric() || c == '-'))
        {
            return Err(malformed(
                "start.language",
                "must be a BCP-47 tag of at most 64 letters, digits and dashes".into(),
            ));
        }
        if start.rubric_profile.len() > self.max_id_bytes {
            return Err(too_long(
                "start.rubric_profile",
                format!("must be at most {} bytes", self.max_id_bytes),
            ));
        }
        if start.metadata.len() > self.max_metadata_entries {
            return Err(too_long(
                "start.metadata",
                format!(
                    "must have at most {} entries, got {}",
                    self.max_metadata_entries,
                    start.metadata.len()
                ),
            ));
        }
        for (key, value) in &start.metadata {
            if key.is_empty() || key.len() > self.max_metadata_key_bytes {
                let reject = if key.is_empty() { malformed } else { too_long };
                return Err(reject(
                    "start.metadata",
                    format!("keys must be 1 to {} bytes", self.max_metadata_key_bytes),
                ));
            }
            if value.len() > self.max_metadata_value_bytes {
                return Err(too_long(
                    "start.metadata",
                    format!(
                        "values must be at most {} bytes",
                        self.max_metadata_value_bytes
                    ),
                ));
            }
        }
        Ok(())
    }

    /// Checks an utterance's fields (not its place in the conversation).
    pub fn check_utterance(&self, u: &Utterance) -> Result<(), Rejected> {
        check_id(&u.utterance_id, "utterance.utterance_id", self.max_id_bytes)?;
        if let Some(participant) = &u.participant_id {
            check_id(participant, "utterance.participant_id", self.max_id_bytes)?;
        }
        if u.text.len() > self.max_text_bytes {
            return Err(too_long(
                "utterance.text",
                format!(
                    "must be at most {} bytes, got {}",
                    self.max_text_bytes,
                    u.text.len()
                ),
            ));
        }
        if let Some(c) = u.confidence
            && !(0.0..=1.0).contains(&c)
        {
            return Err(malformed(
                "utterance.confidence",
                "must be within [0, 1]".into(),
            ));
        }
        let out_of_range = |field, description: String| {
            Rejected::new(RejectReason::OffsetOutOfRange, field, description)
        };
        match (u.start_ms, u.end_ms) {
            (None, None) => {}
            (Some(start), Some(end)) => {
                for (field, v) in [("utterance.start_ms", start), ("utterance.end_ms", end)] {
                    if !(0..=self.max_offset_ms).contains(&v) {
                        return Err(out_of_range(
                            field,
                            format!("must be within [0, {}]", self.max_offset_ms),
                        ));
                    }
                }
                if end < start {
                    return Err(Rejected::new(
                        RejectReason::EndsBeforeStart,
                        "utterance.end_ms",
                        "must not be before start_ms",
                    ));
                }
            }
            // Start-only timing (AnnoMI, CCAI Insights, chat platforms): scored; behaviours
            // that need an end are not computed for it (`Metrics::start_only_utterances`).
            (Some(start), None) => {
                if !(0..=self.max_offset_ms).contains(&start) {
                    return Err(out_of_range(
                        "utterance.start_ms",
                        format!("must be within [0, {}]", self.max_offset_ms),
                    ));
                }
            }
            (None, Some(_)) => {
                return Err(malformed(
                    "utterance.start_ms",
                    "must be set when end_ms is".into(),
                ));
            }
        }
        Ok(())
    }

    /// Checks an offset of a signal or an end.
    pub fn check_offset(&self, field: &'static str, offset_ms: i64) -> Result<(), Rejected> {
        if (0..=self.max_offset_ms).contains(&offset_ms) {
            Ok(())
        } else {
            Err(Rejected::new(
                RejectReason::OffsetOutOfRange,
                field,
                format!("must be within [0, {}]", self.max_offset_ms),
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::check_id;

    /// #29: sixteen invisible or blank characters passed as id characters, so an id could pose
    /// as another in a supervisor's feed.
    #[test]
    fn invisible_and_blank_characters_are_not_id_characters() {
        for c in [
            '\u{00AD}',  // soft hyphen
            '\u{115F}',  // Hangul choseong filler
            '\u{1160}',  // Hangul jungseong filler
            '\u{3164}',  // Hangul filler
            '\u{FFA0}',  // halfwidth Hangul filler
            '\u{E0041}', // tag latin capital letter A
            '\u{E007F}', // cancel tag
            '\u{FE0F}',  // variation selector-16
            '\u{E0100}', // variation selector-17
            '\u{034F}',  // combining grapheme joiner
            '\u{180E}',  // Mongolian vowel separator
            '\u{2063}',  // invisible separator
            '\u{00A0}',  // no-break space
            '\u{3000}',  // ideographic space
            '\u{2800}',  // Braille blank
            '\u{FFF0}',  // unassigned specials
            '\u{200B}',  // zero-width space (already refused)
        ] {
            let id = format!("call{c}42");
            assert!(check_id(&id, "conversation_id", 128).is_err(), "{:?}", c);
        }
        for id in [
            "call-42",
            "Kundenanruf-ä-42",
            "通話-42",
            "call 42",
            "call_42.a",
        ] {
            assert!(check_id(id, "conversation_id", 128).is_ok(), "{id}");
        }
    }
}

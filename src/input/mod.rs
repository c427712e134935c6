//! Transcripts as contact-centre platforms write them: hearken's own JSON Lines (or one JSON
//! document, or an array of conversations), Amazon Connect Contact Lens output files (voice
//! and chat), Contact Lens real-time segment events, Amazon Transcribe Call Analytics output,
//! Google CCAI Insights conversations, Genesys Cloud transcripts and Azure AI Speech batch
//! transcription results. Each is read into [`Transcript`]s, the one shape the engine's batch driver takes,
//! so `score`, `replay` and `eval` (and a service that wants to) read every format the same
//! way. `docs/integrations.md` says which field maps where.
//!
//! Nothing is dropped without a word: what cannot be read is an error naming the file's line
//! or the field (never its value); what was guessed at is a warning on the transcript.

mod azure;
mod ccai;
mod contact_lens;
pub use contact_lens::{RealtimeEvent, realtime_event};
mod fields;
mod genesys;
mod pca;

use std::io::{BufRead, Read as _};

use crate::transcript::{self, LineError, Transcript};

/// Largest single-document file read (a platform's output file for one call is far smaller).
pub const MAX_DOCUMENT_BYTES: usize = 64 * 1024 * 1024;

/// The format of an input file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum InputFormat {
    /// Detected from the first JSON value's shape.
    Auto,
    /// hearken's transcript format (`api.md`): JSON Lines, one JSON document, or an array.
    Hearken,
    /// Amazon Connect Contact Lens post-call output (voice `VOICE-…` or chat `CHAT-…`).
    ContactLens,
    /// Amazon Connect Contact Lens real-time segment events (Kinesis), one per line or an array.
    ContactLensRealtime,
    /// Amazon Transcribe Call Analytics post-call output (`Transcript` with `ParticipantRole`).
    TranscribeCallAnalytics,
    /// Google CCAI Insights conversations (chat `entries`, or `transcript.transcriptSegments`).
    CcaiInsights,
    /// Genesys Cloud speech and text analytics transcripts (`transcripts[].phrases`).
    Genesys,
    /// Azure AI Speech batch transcription results (`recognizedPhrases`).
    AzureSpeech,
    /// Amazon Transcribe Post-Call Analytics output (`SpeechSegments`, times in seconds).
    Pca,
}

pub use crate::transcript::{RoleMap, role_name};

/// How to read input files.
#[derive(Debug, Clone)]
pub struct InputOptions {
    /// The format, or `Auto`.
    pub format: InputFormat,
    /// Roles for speaker labels.
    pub roles: RoleMap,
}

impl Default for InputOptions {
    fn default() -> Self {
        InputOptions {
            format: InputFormat::Auto,
            roles: RoleMap::default(),
        }
    }
}

/// What reading one file gives, in order: transcripts, and errors for what could not be read.
pub type Items = Box<dyn Iterator<Item = Result<Transcript, LineError>>>;

/// Reads one input. `name` names the conversation when the format carries no id (a Contact
/// Lens file is named after its contact).
pub fn read(mut input: Box<dyn BufRead>, options: &InputOptions, name: &str) -> Items {
    // The first line with something on it tells JSON Lines (a whole value per line) from one
    // document; blank lines before it are kept, so that line numbers stay right.
    let mut first = Vec::new();
    let at = loop {
        let at = first.len();
        match read_line(&mut input, &mut first) {
            Err(e) => return one_error(1, format!("could not be read: {e}")),
            // Nothing, or only blank lines: no conversations.
            Ok(()) if first.len() == at => {
                return if first.trim_ascii().is_empty() {
                    Box::new(std::iter::empty())
                } else {
                    one_error(1, "could not be read".into())
                };
            }
            Ok(()) if first[at..].trim_ascii().is_empty() => continue,
            Ok(()) => break at,
        }
    };
    let first_value: Option<serde_json::Value> = serde_json::from_slice(&first[at..]).ok();
    let lines = first_value.is_some() && !first[at..].trim_ascii().starts_with(b"[");
    let format = match options.format {
        InputFormat::Auto => match &first_value {
            Some(v) if lines => detect(v),
            // Not one value per line: detected once the document is read.
            _ => InputFormat::Auto,
        },
        given => given,
    };
    match (format, lines) {
        (InputFormat::Hearken, true) => {
            let rest = std::io::Cursor::new(first).chain(input);
            Box::new(transcript::Reader::new(rest).with_roles(options.roles.clone()))
        }
        (InputFormat::ContactLensRealtime, true) => {
            let rest = std::io::Cursor::new(first).chain(input);
            contact_lens::realtime_lines(Box::new(rest), &options.roles, name)
        }
        _ => {
            // One document: read whole (bounded) and parsed once.
            let mut bytes = first;
            let limit = (MAX_DOCUMENT_BYTES + 1 - bytes.len().min(MAX_DOCUMENT_BYTES)) as u64;
            if let Err(e) = input.take(limit).read_to_end(&mut bytes) {
                return one_error(1, format!("could not be read: {e}"));
            }
            if bytes.len() > MAX_DOCUMENT_BYTES {
                return one_error(
                    1,
                    format!(
                        "the file is over {} MiB and not JSON Lines: split it, or write one conversation per line",
                        MAX_DOCUMENT_BYTES / (1024 * 1024)
                    ),
                );
            }
            let value: serde_json::Value = match serde_json::from_slice(&bytes) {
                Ok(v) => v,
                Err(e) => {
                    return one_error(
                        e.line(),
                        format!(
                            "not JSON Lines and not one JSON document: malformed JSON (column {})",
                            e.column()
                        ),
                    );
                }
            };
            document(value, format, options, name)
        }
    }
}

fn read_line(input: &mut Box<dyn BufRead>, out: &mut Vec<u8>) -> std::io::Result<()> {
    // Bounded like a whole document: a first line longer than a transcript line may be a
    // document written on one line, or JSON Lines whose first conversation is too long (that
    // line is then refused by the reader and the others are read). It is told which by
    // whether it holds one whole value.
    let at = out.len();
    input
        .by_ref()
        .take(MAX_DOCUMENT_BYTES as u64 + 1)
        .read_until(b'\n', out)?;
    debug_assert!(out.len() - at <= MAX_DOCUMENT_BYTES + 1);
    Ok(())
}

fn one_error(line: usize, message: String) -> Items {
    Box::new(std::iter::once(Err(LineError { line, message })))
}

/// The format a JSON value looks like.
/// The format a JSON value's shape says it is in (what `Auto` decides).
pub fn detect(value: &serde_json::Value) -> InputFormat {
    let has = |k: &str| value.get(k).is_some();
    if has("utterances") && has("conversation_id") {
        InputFormat::Hearken
    } else if has("SpeechSegments") {
        InputFormat::Pca
    } else if has("recognizedPhrases") {
        InputFormat::AzureSpeech
    } else if has("entries") || value.pointer("/transcript/transcriptSegments").is_some() {
        InputFormat::CcaiInsights
    } else if has("transcripts") {
        InputFormat::Genesys
    } else if has("EventType") || has("Segments") {
        InputFormat::ContactLensRealtime
    } else if has("Transcript") {
        let version = value.get("Version").and_then(|v| v.as_str()).unwrap_or("");
        let by_id = value["Transcript"]
            .as_array()
            .and_then(|t| t.first())
            .is_some_and(|t| t.get("ParticipantId").is_some());
        if version.starts_with("VOICE-") || version.starts_with("CHAT-") || by_id {
            InputFormat::ContactLens
        } else {
            InputFormat::TranscribeCallAnalytics
        }
    } else {
        InputFormat::Hearken
    }
}

/// A whole document: one conversation, an array of them, or an array of real-time events.
fn document(
    value: serde_json::Value,
    format: InputFormat,
    options: &InputOptions,
    name: &str,
) -> Items {
    let format = match format {
        InputFormat::Auto => match &value {
            serde_json::Value::Array(items) => items.first().map_or(InputFormat::Hearken, detect),
            v => detect(v),
        },
        f => f,
    };
    match format {
        InputFormat::Hearken => {
            let items = match value {
                serde_json::Value::Array(items) => items,
                v => vec![v],
            };
            let roles = options.roles.clone();
            Box::new(items.into_iter().enumerate().map(move |(i, v)| {
                transcript::from_value(v, &roles).map_err(|message| LineError {
                    line: i + 1,
                    message: format!("conversation {}: {message}", i + 1),
                })
            }))
        }
        InputFormat::ContactLensRealtime => {
            let events = match value {
                serde_json::Value::Array(items) => items,
                v => vec![v],
            };
            contact_lens::realtime(events.into_iter().map(Ok), &options.roles, name)
        }
        format => {
            let items = match value {
                serde_json::Value::Array(items) => items,
                v => vec![v],
            };
            let read: fn(&serde_json::Value, &RoleMap, &str) -> Result<Transcript, String> =
                match format {
                    InputFormat::CcaiInsights => ccai::conversation,
                    InputFormat::Genesys => genesys::transcript,
                    InputFormat::AzureSpeech => azure::result,
                    InputFormat::Pca => pca::output,
                    _ => contact_lens::post_call,
                };
            let roles = options.roles.clone();
            let name = name.to_owned();
            Box::new(items.into_iter().enumerate().map(move |(i, v)| {
                read(&v, &roles, &name).map_err(|message| LineError {
                    line: i + 1,
                    message,
                })
            }))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::Role;

    fn read_str(text: &str, format: InputFormat) -> Vec<Result<Transcript, LineError>> {
        let options = InputOptions {
            format,
            roles: RoleMap::default(),
        };
        read(
            Box::new(std::io::Cursor::new(text.as_bytes().to_vec())),
            &options,
            "file",
        )
        .collect()
    }

    #[test]
    fn hearken_files_may_be_lines_one_document_or_an_array() {
        let one = r#"{"conversation_id":"c1","utterances":[{"utterance_id":"u1","role":"AGENT","text":"hi","start_ms":0,"end_ms":900}]}"#;
        let lines = format!("{one}\n{}\n", one.replace("c1", "c2"));
        let pretty =
            serde_json::to_string_pretty(&serde_json::from_str::<serde_json::Value>(one).unwrap())
                .unwrap();
        let array = format!("[{one},\n{}]", one.replace("c1", "c2"));
        for (text, n) in [
            (lines.as_str(), 2),
            (pretty.as_str(), 1),
            (array.as_str(), 2),
        ] {
            for format in [InputFormat::Auto, InputFormat::Hearken] {
                let got = read_str(text, format);
                assert_eq!(got.len(), n, "{text}");
                let t = got[0].as_ref().unwrap();
                assert_eq!(t.conversation_id, "c1");
                assert_eq!(t.utterances[0].role, Role::Agent);
            }
        }
    }

    #[test]
    fn empty_input_and_leading_blank_lines_are_fine() {
        assert!(read_str("", InputFormat::Auto).is_empty());
        assert!(read_str("\n \n", InputFormat::Auto).is_empty());
        let one = r#"{"conversation_id":"c1","utterances":[]}"#;
        let got = read_str(&format!("\n\n{one}\nnot json\n"), InputFormat::Auto);
        assert_eq!(got.len(), 2);
        assert!(got[0].is_ok());
        // Line numbers count the blank lines.
        assert_eq!(got[1].as_ref().unwrap_err().line, 4);
    }

    /// #29: a first line over the line limit that is a whole conversation skipped the whole
    /// file ("line 2: not JSON Lines…"); it is that line that is refused, and the rest read.
    #[test]
    fn an_over_long_first_conversation_is_refused_and_the_rest_read() {
        let long = serde_json::json!({
            "conversation_id": "big",
            "utterances": [{"utterance_id": "u1", "role": "customer",
                            "text": "a ".repeat(transcript::MAX_LINE_BYTES / 2 + 10)}]
        });
        let one = r#"{"conversation_id":"c1","utterances":[{"utterance_id":"u1","role":"customer","text":"hello"}]}"#;
        let got = read_str(&format!("{long}\n{one}\n"), InputFormat::Auto);
        assert_eq!(
            got.len(),
            2,
            "{:?}",
            got.iter().map(|g| g.as_ref().err()).collect::<Vec<_>>()
        );
        let e = got[0].as_ref().unwrap_err();
        assert_eq!(e.line, 1);
        assert!(e.message.contains("longer than"), "{e}");
        assert_eq!(got[1].as_ref().unwrap().conversation_id, "c1");
    }

    #[test]
    fn a_broken_document_is_one_error_naming_where() {
        let got = read_str(
            "{\n \"conversation_id\": \"c1\",\n \"utterances\": [\n",
            InputFormat::Auto,
        );
        assert_eq!(got.len(), 1);
        let e = got[0].as_ref().unwrap_err();
        assert!(
            e.message
                .contains("not JSON Lines and not one JSON document"),
            "{e}"
        );
    }

    #[test]
    fn role_maps_parse_and_refuse_what_they_cannot_use() {
        let map = RoleMap::parse("spk_0=agent, SPK_1=Customer,channel:0=other").unwrap();
        assert_eq!(map.get("Spk_0"), Some(Role::Agent));
        assert_eq!(map.get("spk_1"), Some(Role::Customer));
        assert_eq!(map.get("channel:0"), Some(Role::Other));
        assert!(RoleMap::parse("spk_0").is_err());
        assert!(RoleMap::parse("spk_0=boss").is_err());
    }
}

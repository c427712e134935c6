//! Splits an utterance into the sentences (or clauses) that carry behaviours. Speech-recognition
//! turns and chat messages bundle several ("My name is Adam. How can I help you?"), and a
//! behaviour is judged on the sentence that carries it.
//!
//! With punctuation, a sentence ends at `.`, `?`, `!` or `;` followed by a space (not after a
//! title such as "Mr."). Without it (speech recognition), a long stretch is cut before a
//! discourse cue that opens a new clause ("so", "okay", "alright", "anyway", "now") once the
//! clause so far has [`MIN_WORDS_BEFORE_CUE`] words and [`MIN_WORDS_AFTER_CUE`] follow, and every [`MAX_WORDS`] words at the latest.

/// A cue only opens a new clause after this many words of the current one.
pub(crate) const MIN_WORDS_BEFORE_CUE: usize = 8;
/// Words a cue must have after it (itself not counted) to open a clause.
pub(crate) const MIN_WORDS_AFTER_CUE: usize = 3;
/// An unpunctuated clause is cut after this many words.
pub(crate) const MAX_WORDS: usize = 40;

const CUES: &[&str] = &["so", "okay", "ok", "alright", "anyway", "now"];
const TITLES: &[&str] = &[
    "mr", "mrs", "ms", "dr", "st", "no", "vs", "etc", "e.g", "i.e",
];

/// One sentence: byte range in the text, and its Unicode-scalar range (for evidence spans).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Sentence {
    /// Byte offsets, half-open.
    pub bytes: (usize, usize),
    /// Unicode scalar offsets, half-open.
    pub chars: (u32, u32),
}

impl Sentence {
    /// Its text.
    pub(crate) fn text<'t>(&self, text: &'t str) -> &'t str {
        &text[self.bytes.0..self.bytes.1]
    }
}

/// The sentences of `text`, in order, trimmed of surrounding spaces; never empty for text with
/// a non-space character.
pub(crate) fn split(text: &str) -> Vec<Sentence> {
    let mut out = Vec::new();
    let mut start: Option<(usize, u32)> = None; // first non-space of the current sentence
    let mut last_end = (0usize, 0u32); // end of its last non-space character
    let mut words = 0usize; // words in the current sentence
    let mut in_word = false;
    let mut word_start = 0usize;
    let chars: Vec<(usize, char)> = text.char_indices().collect();
    let push = |out: &mut Vec<Sentence>, s: (usize, u32), e: (usize, u32)| {
        if e.0 > s.0 {
            out.push(Sentence {
                bytes: (s.0, e.0),
                chars: (s.1, e.1),
            });
        }
    };
    for (i, &(b, c)) in chars.iter().enumerate() {
        let ci = i as u32;
        let next_is_space = chars.get(i + 1).is_none_or(|&(_, n)| n.is_whitespace());
        if c.is_whitespace() {
            in_word = false;
            continue;
        }
        let word_char = c.is_alphanumeric() || c == '\'' || c == '’';
        if word_char && !in_word {
            // A new word: maybe a cue that opens a new clause.
            in_word = true;
            word_start = b;
            if let Some(s) = start
                && words >= MIN_WORDS_BEFORE_CUE
            {
                let word = word_at(text, b);
                // A cue opens a clause of some length ("so far" at the end opens nothing).
                let opens = CUES.contains(&word.as_str())
                    && text[b..]
                        .split_whitespace()
                        .take(MIN_WORDS_AFTER_CUE + 1)
                        .count()
                        > MIN_WORDS_AFTER_CUE;
                if opens || words >= MAX_WORDS {
                    push(&mut out, s, last_end);
                    start = None;
                    words = 0;
                }
            }
            words += 1;
        } else if !word_char {
            in_word = false;
        }
        if start.is_none() {
            start = Some((b, ci));
        }
        last_end = (b + c.len_utf8(), ci + 1);
        let terminal = matches!(c, '.' | '?' | '!' | ';' | '…');
        if terminal && next_is_space {
            let before = text[word_start..b].trim_end_matches(['.', '?', '!', ';']);
            let title = c == '.' && TITLES.contains(&before.to_lowercase().as_str());
            if !title && let Some(s) = start {
                push(&mut out, s, last_end);
                start = None;
                words = 0;
            }
        }
    }
    if let Some(s) = start {
        push(&mut out, s, last_end);
    }
    out
}

fn word_at(text: &str, byte: usize) -> String {
    text[byte..]
        .chars()
        .take_while(|c| c.is_alphanumeric() || *c == '\'' || *c == '’')
        .flat_map(char::to_lowercase)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(text: &str) -> Vec<&str> {
        split(text).iter().map(|s| s.text(text)).collect()
    }

    #[test]
    fn splits_on_terminal_punctuation() {
        assert_eq!(
            texts("My name is Adam. How can I help you?"),
            ["My name is Adam.", "How can I help you?"]
        );
        assert_eq!(
            texts("  Right!  So what happened?  "),
            ["Right!", "So what happened?"]
        );
        assert_eq!(
            texts("It costs 2.50 a month; is that okay?"),
            ["It costs 2.50 a month;", "is that okay?"]
        );
    }

    #[test]
    fn titles_and_unfinished_words_do_not_end_a_sentence() {
        assert_eq!(
            texts("I spoke to Mr. Jones yesterday."),
            ["I spoke to Mr. Jones yesterday."]
        );
        assert_eq!(texts("what...?"), ["what...?"]);
    }

    #[test]
    fn unpunctuated_text_is_cut_at_cues_after_enough_words() {
        let asr =
            "i can see the charge on your statement from the twelfth so what happened after that";
        assert_eq!(
            texts(asr),
            [
                "i can see the charge on your statement from the twelfth",
                "so what happened after that"
            ]
        );
        // Too early for a cue, or too little after it: one clause.
        assert_eq!(texts("okay so what happened"), ["okay so what happened"]);
        let far = "no problem at all can you walk me through what you've tried so far";
        assert_eq!(texts(far), [far]);
    }

    #[test]
    fn very_long_unpunctuated_stretches_are_cut() {
        let long = vec!["word"; 100].join(" ");
        let parts = split(&long);
        assert_eq!(parts.len(), 3);
        assert!(
            parts
                .iter()
                .all(|s| s.text(&long).split(' ').count() <= MAX_WORDS)
        );
    }

    #[test]
    fn spans_are_unicode_scalars() {
        let text = "Désolé. Ça va?";
        let parts = split(text);
        assert_eq!(parts[1].chars, (8, 14));
        assert_eq!(parts[1].text(text), "Ça va?");
        assert!(split("   ").is_empty());
    }
}

//! Words of an utterance: lower-cased tokens with their character spans. Works on speech
//! recognition output (no capitals, no punctuation) as well as on chat text.

/// One word of an utterance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Token {
    /// The word, lower-cased, curly apostrophes straightened.
    pub word: String,
    /// Start of the word in the text, in Unicode scalar values.
    pub start_char: u32,
    /// End of the word (exclusive), in Unicode scalar values.
    pub end_char: u32,
}

fn is_word_char(c: char) -> bool {
    c.is_alphanumeric()
}

fn is_joiner(c: char) -> bool {
    matches!(c, '\'' | '\u{2019}' | '-')
}

/// Splits text into words. Apostrophes and hyphens inside a word keep it whole ("don't",
/// "mm-hmm"); everything else that is not a letter or digit separates words.
pub fn tokenize(text: &str) -> Vec<Token> {
    let mut tokens = Vec::new();
    let chars: Vec<char> = text.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        if !is_word_char(chars[i]) {
            i += 1;
            continue;
        }
        let start = i;
        let mut word = String::new();
        while i < chars.len() {
            let c = chars[i];
            if is_word_char(c) {
                word.extend(c.to_lowercase());
                i += 1;
            } else if is_joiner(c) && i + 1 < chars.len() && is_word_char(chars[i + 1]) {
                word.push(if c == '-' { '-' } else { '\'' });
                i += 1;
            } else {
                break;
            }
        }
        tokens.push(Token {
            word,
            start_char: start as u32,
            end_char: i as u32,
        });
    }
    tokens
}

/// Whether `tokens` consist only of the given phrases (each a sequence of words) and fillers,
/// in any order and repetition: "yeah yeah", "uh okay", "i see right". Empty input is not.
pub fn covered_by_phrases(tokens: &[Token], phrases: &[Vec<String>], fillers: &[String]) -> bool {
    if tokens.is_empty() {
        return false;
    }
    let mut i = 0;
    let mut matched_phrase = false;
    'outer: while i < tokens.len() {
        if fillers.iter().any(|f| *f == tokens[i].word) {
            i += 1;
            continue;
        }
        for phrase in phrases {
            let n = phrase.len();
            if n > 0
                && i + n <= tokens.len()
                && phrase
                    .iter()
                    .zip(&tokens[i..i + n])
                    .all(|(p, t)| *p == t.word)
            {
                i += n;
                matched_phrase = true;
                continue 'outer;
            }
        }
        return false;
    }
    matched_phrase
}

/// Splits each phrase of a vocabulary into its words, with the same rules as [`tokenize`].
pub fn phrase_words(phrases: &[String]) -> Vec<Vec<String>> {
    let mut out: Vec<Vec<String>> = phrases
        .iter()
        .map(|p| tokenize(p).into_iter().map(|t| t.word).collect::<Vec<_>>())
        .filter(|p: &Vec<String>| !p.is_empty())
        .collect();
    // Longest first, so that "i see" wins over "i".
    out.sort_by(|a, b| b.len().cmp(&a.len()).then_with(|| a.cmp(b)));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(text: &str) -> Vec<String> {
        tokenize(text).into_iter().map(|t| t.word).collect()
    }

    #[test]
    fn splits_on_punctuation_and_keeps_inner_joiners() {
        assert_eq!(
            words("Mm-hmm, I DON'T know—really?"),
            ["mm-hmm", "i", "don't", "know", "really"]
        );
        assert_eq!(words("it’s fine"), ["it's", "fine"]);
        assert_eq!(words("  -- ' - "), Vec::<String>::new());
        assert_eq!(words("trailing- 'quoted'"), ["trailing", "quoted"]);
    }

    #[test]
    fn spans_are_in_unicode_scalars() {
        let tokens = tokenize("né ok");
        assert_eq!((tokens[1].start_char, tokens[1].end_char), (3, 5));
        assert_eq!((tokens[0].start_char, tokens[0].end_char), (0, 2));
    }

    #[test]
    fn phrase_cover_accepts_repeats_and_fillers_only_with_a_phrase() {
        let phrases = phrase_words(&["i see".into(), "yeah".into(), "okay".into()]);
        let fillers = vec!["uh".to_string(), "um".to_string()];
        assert!(covered_by_phrases(
            &tokenize("uh yeah yeah"),
            &phrases,
            &fillers
        ));
        assert!(covered_by_phrases(&tokenize("I see."), &phrases, &fillers));
        assert!(!covered_by_phrases(&tokenize("uh um"), &phrases, &fillers));
        assert!(!covered_by_phrases(
            &tokenize("I see the problem"),
            &phrases,
            &fillers
        ));
        assert!(!covered_by_phrases(&[], &phrases, &fillers));
    }
}

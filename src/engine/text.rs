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

/// An utterance's words ready for phrase matching: fillers dropped, immediate repeats of a
/// word collapsed ("what what do you" → "what do you"), joined as `" w1 w2 … "`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Words {
    /// `" w1 w2 … wn "`.
    joined: String,
    /// Byte offset of each word in `joined`.
    starts: Vec<usize>,
    /// For each word, its index in the utterance's tokens.
    pub token_index: Vec<usize>,
}

impl Words {
    /// The words of `tokens`, without fillers and immediate repeats.
    pub fn new(tokens: &[Token], fillers: &[String]) -> Words {
        let mut words = Words {
            joined: String::from(" "),
            ..Words::default()
        };
        let mut last: Option<&str> = None;
        for (i, t) in tokens.iter().enumerate() {
            if fillers.contains(&t.word) || last == Some(t.word.as_str()) {
                continue;
            }
            words.starts.push(words.joined.len());
            words.joined.push_str(&t.word);
            words.joined.push(' ');
            words.token_index.push(i);
            last = Some(&t.word);
        }
        words
    }

    /// Number of words.
    pub fn len(&self) -> usize {
        self.starts.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.starts.is_empty()
    }

    /// The `i`-th word.
    pub fn get(&self, i: usize) -> Option<&str> {
        let start = *self.starts.get(i)?;
        let end = self.joined[start..]
            .find(' ')
            .map_or(self.joined.len(), |e| start + e);
        Some(&self.joined[start..end])
    }

    /// Iterates over the words.
    pub fn iter(&self) -> impl Iterator<Item = &str> + '_ {
        (0..self.len()).filter_map(|i| self.get(i))
    }

    /// Word index of a byte offset at a word start.
    fn word_at(&self, byte: usize) -> usize {
        self.starts.partition_point(|&s| s < byte)
    }
}

/// A vocabulary of phrases matched word by word (never inside a word), case-insensitively.
#[derive(Debug, Clone, Default)]
pub struct PhraseSet {
    automaton: Option<aho_corasick::AhoCorasick>,
    lengths: Vec<usize>,
    /// Words in the longest phrase.
    longest: usize,
}

/// A phrase found in an utterance: words `[start, end)` of its [`Words`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PhraseMatch {
    /// First word.
    pub start: usize,
    /// One past the last word.
    pub end: usize,
    /// Which phrase of the set.
    pub phrase: usize,
}

impl PhraseSet {
    /// Compiles the phrases (each tokenised like an utterance).
    pub fn new(phrases: &[String]) -> PhraseSet {
        let patterns: Vec<(String, usize)> = phrases
            .iter()
            .map(|p| {
                let words: Vec<String> = tokenize(p).into_iter().map(|t| t.word).collect();
                (format!(" {} ", words.join(" ")), words.len())
            })
            .filter(|(_, n)| *n > 0)
            .collect();
        if patterns.is_empty() {
            return PhraseSet::default();
        }
        let automaton = aho_corasick::AhoCorasick::builder()
            .match_kind(aho_corasick::MatchKind::Standard)
            .build(patterns.iter().map(|(p, _)| p.as_str()))
            .ok();
        let lengths: Vec<usize> = patterns.into_iter().map(|(_, n)| n).collect();
        PhraseSet {
            automaton,
            longest: lengths.iter().copied().max().unwrap_or(0),
            lengths,
        }
    }

    /// Every occurrence, overlapping ones included, in order of their end.
    pub fn find_all<'a>(&'a self, words: &'a Words) -> impl Iterator<Item = PhraseMatch> + 'a {
        self.automaton.iter().flat_map(move |automaton| {
            automaton
                .find_overlapping_iter(&words.joined)
                .map(move |m| {
                    let start = words.word_at(m.start() + 1);
                    let phrase = m.pattern().as_usize();
                    PhraseMatch {
                        start,
                        end: start + self.lengths[phrase],
                        phrase,
                    }
                })
        })
    }

    /// The first occurrence, if any.
    pub fn find(&self, words: &Words) -> Option<PhraseMatch> {
        self.find_all(words)
            .min_by_key(|m| (m.start, std::cmp::Reverse(m.end)))
    }

    /// The longest phrase starting exactly at word `at`.
    pub fn at(&self, words: &Words, at: usize) -> Option<PhraseMatch> {
        // Matches come in order of their end: none starting at `at` ends after the longest
        // phrase would.
        let horizon = at + self.longest;
        self.find_all(words)
            .take_while(|m| m.end <= horizon)
            .filter(|m| m.start == at)
            .max_by_key(|m| m.end)
    }

    /// The longest phrase ending exactly at the last word.
    pub fn at_end(&self, words: &Words) -> Option<PhraseMatch> {
        self.find_all(words)
            .filter(|m| m.end == words.len())
            .min_by_key(|m| m.start)
    }

    /// Whether the phrases cover every word (repeats allowed).
    pub fn covers(&self, words: &Words) -> bool {
        if words.is_empty() {
            return false;
        }
        // Dynamic programming over word positions: reachable[i] when words[..i] are covered.
        let matches: Vec<PhraseMatch> = self.find_all(words).collect();
        let mut reachable = vec![false; words.len() + 1];
        reachable[0] = true;
        for i in 0..words.len() {
            if !reachable[i] {
                continue;
            }
            for m in matches.iter().filter(|m| m.start == i) {
                reachable[m.end] = true;
            }
        }
        reachable[words.len()]
    }
}

/// Character span of words `[start, end)` of `words` in the utterance.
pub fn span_of(tokens: &[Token], words: &Words, start: usize, end: usize) -> Option<(u32, u32)> {
    let first = *words.token_index.get(start)?;
    let last = *words.token_index.get(end.checked_sub(1)?)?;
    Some((tokens[first].start_char, tokens[last].end_char))
}

#[cfg(test)]
mod phrase_tests {
    use super::*;

    fn words(text: &str) -> Words {
        Words::new(&tokenize(text), &["uh".to_string(), "um".to_string()])
    }

    #[test]
    fn words_drop_fillers_and_collapse_stutters() {
        let w = words("what, what, uh, what do you think");
        assert_eq!(w.iter().collect::<Vec<_>>(), ["what", "do", "you", "think"]);
        assert_eq!(w.token_index, [0, 4, 5, 6]);
    }

    #[test]
    fn phrases_match_whole_words_only() {
        let set = PhraseSet::new(&["i see".into(), "see".into(), "tell me about".into()]);
        let w = words("oh I see, tell me about it");
        let found: Vec<_> = set.find_all(&w).map(|m| (m.start, m.end)).collect();
        assert_eq!(found, [(1, 3), (2, 3), (3, 6)]);
        assert!(set.find(&words("overseas")).is_none());
        assert_eq!(set.at(&w, 1).map(|m| m.end), Some(3));
        assert_eq!(
            span_of(&tokenize("oh I see, tell me about it"), &w, 3, 6),
            Some((10, 23))
        );
    }

    #[test]
    fn cover_requires_every_word() {
        let set = PhraseSet::new(&["yeah".into(), "oh".into(), "that's great".into()]);
        assert!(set.covers(&words("oh yeah that's great")));
        assert!(!set.covers(&words("oh yeah that's great news")));
        assert!(!set.covers(&words("")));
    }
}

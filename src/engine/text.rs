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
/// "mm-hmm"); everything else that is not a letter or digit separates words. A redaction
/// marker ([`blank_redactions`]: `[PII]`, `[CARD NUMBER]`, `[unintelligible 00:06:16]`) is
/// opaque: no word at all, so that two turns that both had something redacted do not share a
/// word. The learned layer reads the same blanked text, so the rules and the layer agree on
/// what a marker is.
pub(crate) fn tokenize(text: &str) -> Vec<Token> {
    let blanked = blank_redactions(text);
    let text = &*blanked;
    let mut tokens = Vec::with_capacity(text.len() / 5 + 1);
    let mut chars = text.char_indices().peekable();
    // Index, in Unicode scalar values, of the next char `chars` yields.
    let mut index: u32 = 0;
    while let Some((start_byte, c)) = chars.next() {
        let start_char = index;
        index += 1;
        if !is_word_char(c) {
            continue;
        }
        let mut end_byte = start_byte + c.len_utf8();
        while let Some(&(at, c)) = chars.peek() {
            let joins = is_joiner(c) && {
                let mut after = chars.clone();
                after.next();
                after.peek().is_some_and(|&(_, next)| is_word_char(next))
            };
            if !(is_word_char(c) || joins) {
                break;
            }
            chars.next();
            index += 1;
            end_byte = at + c.len_utf8();
        }
        tokens.push(Token {
            word: lower_word(&text[start_byte..end_byte]),
            start_char,
            end_char: index,
        });
    }
    tokens
}

/// The text with each redaction marker (square brackets around letters and digits, with
/// spaces, `_`, `-` or `:` between them: `[PII]`, `[CARD NUMBER]`, `[unintelligible
/// 00:06:16]`) blanked out, one space per character, so that character offsets still point into
/// the original. Borrowed when there is none.
pub(crate) fn blank_redactions(text: &str) -> std::borrow::Cow<'_, str> {
    if !text.contains('[') {
        return std::borrow::Cow::Borrowed(text);
    }
    let chars: Vec<char> = text.chars().collect();
    let mut out = chars.clone();
    let mut i = 0;
    while i < chars.len() {
        if chars[i] == '[' {
            let end = chars[i + 1..]
                .iter()
                .position(|&c| c == ']' || c == '[')
                .map(|k| i + 1 + k);
            if let Some(end) = end.filter(|&e| chars[e] == ']') {
                let inner = &chars[i + 1..end];
                if inner.iter().any(|c| is_word_char(*c))
                    && inner
                        .iter()
                        .all(|c| is_word_char(*c) || matches!(c, ' ' | '_' | '-' | ':'))
                {
                    out[i..=end].fill(' ');
                    i = end + 1;
                    continue;
                }
            }
        }
        i += 1;
    }
    std::borrow::Cow::Owned(out.into_iter().collect())
}

/// A word lower-cased, its apostrophes straightened.
fn lower_word(word: &str) -> String {
    if word
        .bytes()
        .all(|b| b.is_ascii() && !b.is_ascii_uppercase())
    {
        return word.to_owned();
    }
    let mut out = String::with_capacity(word.len());
    for c in word.chars() {
        match c {
            '\u{2019}' => out.push('\''),
            c if c.is_ascii() => out.push(c.to_ascii_lowercase()),
            c => out.extend(c.to_lowercase()),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(text: &str) -> Vec<String> {
        tokenize(text).into_iter().map(|t| t.word).collect()
    }

    #[test]
    fn redaction_markers_are_blanked_in_place() {
        assert_eq!(
            blank_redactions("my card [CARD NUMBER] and [PII]. ok [x"),
            "my card               and      . ok [x"
        );
        assert_eq!(blank_redactions("[a [b] c]"), "[a     c]");
        assert!(matches!(
            blank_redactions("no markers"),
            std::borrow::Cow::Borrowed(_)
        ));
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

    /// The tokenizer as first written: one char at a time over a `Vec<char>`.
    fn reference_tokenize(text: &str) -> Vec<Token> {
        let text = &*blank_redactions(text);
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

    #[test]
    fn redaction_markers_are_no_words() {
        assert_eq!(
            words("my name is [PII] and [CARD NUMBER] ok [unintelligible 00:06:16]"),
            ["my", "name", "is", "and", "ok"]
        );
        // Offsets still point into the original text.
        let tokens = tokenize("[CARD NUMBER] ok");
        assert_eq!((tokens[0].start_char, tokens[0].end_char), (14, 16));
        // Not a marker: brackets around other punctuation, or unclosed.
        assert_eq!(words("[a.b] [x"), ["a", "b", "x"]);
        assert_eq!(words("[REDACTED]"), Vec::<String>::new());
    }

    proptest::proptest! {
        #[test]
        fn tokenize_agrees_with_the_reference(text in "[a-zA-Z0-9 '’\\-,.?!é ÉİßΣ日本\u{0301}]{0,60}") {
            proptest::prop_assert_eq!(tokenize(&text), reference_tokenize(&text));
        }

        #[test]
        fn tokenize_agrees_on_any_text(text in "\\PC{0,40}") {
            proptest::prop_assert_eq!(tokenize(&text), reference_tokenize(&text));
        }
    }

    #[test]
    fn spans_are_in_unicode_scalars() {
        let tokens = tokenize("né ok");
        assert_eq!((tokens[1].start_char, tokens[1].end_char), (3, 5));
        assert_eq!((tokens[0].start_char, tokens[0].end_char), (0, 2));
    }
}

/// An utterance's words ready for phrase matching: fillers dropped, immediate repeats of a
/// word collapsed ("what what do you" → "what do you"), joined as `" w1 w2 … "`, and, once
/// [`PhraseIndex::scan`] has run, every phrase of every vocabulary found in them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Words {
    /// `" w1 w2 … wn "`.
    joined: String,
    /// Byte offset of each word in `joined`.
    starts: Vec<u32>,
    /// For each word, its index in the utterance's tokens.
    pub token_index: Vec<u32>,
    /// The phrases found, in order of their end; set by [`PhraseIndex::scan`].
    matches: Vec<SetMatch>,
    /// Whether a [`PhraseIndex`] has scanned these words (a profile has one index, so its
    /// sets are asked only about words it scanned).
    scanned: bool,
}

/// A phrase of one vocabulary found in an utterance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct SetMatch {
    set: u16,
    found: PhraseMatch,
}

/// A word stuttered with hyphens as transcribers write it ("I-I", "and-and", "wha-wha-what",
/// "t-to") is the word; "mm-hmm", "uh-huh", "uh-uh" and "mm-mm" ("no") stay as they are (a
/// filler or a word without a vowel is never the stuttered word).
fn destutter<'a>(word: &'a str, fillers: &[String]) -> &'a str {
    let Some((_, last)) = word.rsplit_once('-') else {
        return word;
    };
    let stuttered = !last.is_empty()
        && word[..word.len() - last.len() - 1]
            .split('-')
            .all(|part| !part.is_empty() && last.starts_with(part));
    let voiced = last.contains(['a', 'e', 'i', 'o', 'u', 'y']);
    if stuttered && voiced && !fillers.iter().any(|f| f == last) {
        last
    } else {
        word
    }
}

impl Words {
    /// The words of `tokens`, without fillers and immediate repeats.
    pub fn new(tokens: &[Token], fillers: &[String]) -> Words {
        let mut words = Words {
            joined: String::with_capacity(
                tokens.iter().map(|t| t.word.len() + 1).sum::<usize>() + 1,
            ),
            ..Words::default()
        };
        words.joined.push(' ');
        let mut last: Option<&str> = None;
        for (i, t) in tokens.iter().enumerate() {
            let word = destutter(&t.word, fillers);
            if fillers.contains(&t.word) || last == Some(word) {
                continue;
            }
            words.starts.push(words.joined.len() as u32);
            words.joined.push_str(word);
            words.joined.push(' ');
            words.token_index.push(i as u32);
            last = Some(word);
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
        let start = *self.starts.get(i)? as usize;
        // Each word is followed by one space, the next word's start by that space.
        let end = self
            .starts
            .get(i + 1)
            .map_or(self.joined.len(), |&next| next as usize)
            .checked_sub(1)?;
        self.joined.get(start..end)
    }

    /// Adjacent pairs of words from word `start` on.
    pub fn pairs_from(&self, start: usize) -> impl Iterator<Item = (&str, &str)> + '_ {
        (start + 1..self.len()).filter_map(move |i| Some((self.get(i - 1)?, self.get(i)?)))
    }

    /// Iterates over the words.
    pub fn iter(&self) -> impl Iterator<Item = &str> + '_ {
        (0..self.len()).filter_map(|i| self.get(i))
    }

    /// Word index of a byte offset at a word start.
    fn word_at(&self, byte: usize) -> usize {
        self.starts.partition_point(|&s| (s as usize) < byte)
    }

    /// Token index of word `i`.
    pub fn token_of(&self, i: usize) -> Option<usize> {
        self.token_index.get(i).map(|&t| t as usize)
    }
}

/// Every phrase of every vocabulary of a rubric profile in one automaton, so that an utterance
/// is scanned once however many vocabularies the detectors consult. Vocabularies are added
/// with [`PhraseIndexBuilder::add`], which hands back the [`PhraseSet`] to query them by.
#[derive(Debug, Clone, Default)]
pub(crate) struct PhraseIndex {
    automaton: Option<aho_corasick::AhoCorasick>,
    /// For each pattern of the automaton, its length in words and the vocabularies it is in.
    patterns: Vec<(usize, Vec<u16>)>,
}

/// Collects the vocabularies of a [`PhraseIndex`].
#[derive(Debug, Default)]
pub(crate) struct PhraseIndexBuilder {
    /// Pattern text (`" w1 w2 "`) → its place in `texts` and `patterns`.
    numbers: std::collections::HashMap<String, usize>,
    texts: Vec<String>,
    patterns: Vec<(usize, Vec<u16>)>,
    sets: u16,
}

impl PhraseIndexBuilder {
    /// An empty builder.
    pub(crate) fn new() -> Self {
        PhraseIndexBuilder::default()
    }

    /// Adds a vocabulary (each phrase tokenised like an utterance).
    pub(crate) fn add(&mut self, phrases: &[String]) -> PhraseSet {
        let set = self.sets;
        self.sets = self
            .sets
            .checked_add(1)
            .expect("fewer than 65 536 vocabularies");
        let mut longest = 0;
        for p in phrases {
            let words: Vec<String> = tokenize(p).into_iter().map(|t| t.word).collect();
            if words.is_empty() {
                continue;
            }
            longest = longest.max(words.len());
            let text = format!(" {} ", words.join(" "));
            let number = match self.numbers.get(&text) {
                Some(&n) => n,
                None => {
                    self.numbers.insert(text.clone(), self.texts.len());
                    self.texts.push(text);
                    self.patterns.push((words.len(), Vec::new()));
                    self.texts.len() - 1
                }
            };
            let sets = &mut self.patterns[number].1;
            if !sets.contains(&set) {
                sets.push(set);
            }
        }
        PhraseSet { set, longest }
    }

    /// Compiles the automaton. An error (the phrases are too many or too long for it) is the
    /// rubric's, never "matches nothing".
    pub(crate) fn build(self) -> Result<PhraseIndex, aho_corasick::BuildError> {
        let automaton = if self.texts.is_empty() {
            None
        } else {
            Some(
                aho_corasick::AhoCorasick::builder()
                    .match_kind(aho_corasick::MatchKind::Standard)
                    .build(&self.texts)?,
            )
        };
        Ok(PhraseIndex {
            automaton,
            patterns: self.patterns,
        })
    }
}

impl PhraseIndex {
    /// Finds every phrase of every vocabulary in `words` (overlapping ones included) and
    /// keeps them with the words, in order of their end, for the [`PhraseSet`] queries.
    pub(crate) fn scan(&self, words: &mut Words) {
        words.matches.clear();
        words.scanned = true;
        let Some(automaton) = &self.automaton else {
            return;
        };
        for m in automaton.find_overlapping_iter(&words.joined) {
            let start = words.word_at(m.start() + 1);
            let (length, sets) = &self.patterns[m.pattern().as_usize()];
            for &set in sets {
                words.matches.push(SetMatch {
                    set,
                    found: PhraseMatch {
                        start,
                        end: start + length,
                    },
                });
            }
        }
    }
}

/// One vocabulary of a [`PhraseIndex`]: phrases matched word by word (never inside a word),
/// case-insensitively, in words the index has scanned.
#[derive(Debug, Clone, Default)]
pub struct PhraseSet {
    set: u16,
    /// Words in the longest phrase (0: an empty vocabulary).
    longest: usize,
}

/// A phrase found in an utterance: words `[start, end)` of its [`Words`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PhraseMatch {
    /// First word.
    pub start: usize,
    /// One past the last word.
    pub end: usize,
}

impl PhraseSet {
    /// Every occurrence, overlapping ones included, in order of their end.
    pub fn find_all<'a>(&'a self, words: &'a Words) -> impl Iterator<Item = PhraseMatch> + 'a {
        debug_assert!(
            self.longest == 0 || words.scanned,
            "words must be scanned by the profile's phrase index before its sets are asked"
        );
        words
            .matches
            .iter()
            .filter(move |m| m.set == self.set)
            .map(|m| m.found)
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

    /// Whether words `[start, end)` are exactly one of the phrases.
    pub fn is_exactly(&self, words: &Words, start: usize, end: usize) -> bool {
        self.find_all(words)
            .any(|m| m.start == start && m.end == end)
    }

    /// Whether the phrases cover every word (repeats allowed).
    pub fn covers(&self, words: &Words) -> bool {
        if words.is_empty() {
            return false;
        }
        // Dynamic programming over word positions: reachable[i] when words[..i] are covered.
        // Matches come in order of their end, so reachable[m.start] is settled when m comes.
        let mut reachable = vec![false; words.len() + 1];
        reachable[0] = true;
        for m in self.find_all(words) {
            if reachable[m.start] {
                reachable[m.end] = true;
            }
        }
        reachable[words.len()]
    }
}

/// Character span of words `[start, end)` of `words` in the utterance.
pub(crate) fn span_of(
    tokens: &[Token],
    words: &Words,
    start: usize,
    end: usize,
) -> Option<(u32, u32)> {
    let first = words.token_of(start)?;
    let last = words.token_of(end.checked_sub(1)?)?;
    Some((tokens[first].start_char, tokens[last].end_char))
}

#[cfg(test)]
mod phrase_tests {
    use super::*;

    fn words(text: &str) -> Words {
        Words::new(&tokenize(text), &["uh".to_string(), "um".to_string()])
    }

    /// One vocabulary in an index of its own, and a way to scan text with it.
    fn single(phrases: &[&str]) -> (PhraseSet, impl Fn(&str) -> Words) {
        let mut builder = PhraseIndexBuilder::new();
        let set = builder.add(&phrases.iter().map(|p| p.to_string()).collect::<Vec<_>>());
        let index = builder.build().expect("a small automaton");
        (set, move |text: &str| {
            let mut w = words(text);
            index.scan(&mut w);
            w
        })
    }

    #[test]
    fn a_cover_accepts_repeats_and_fillers_only_with_a_phrase() {
        let (set, words) = single(&["i see", "yeah", "okay"]);
        assert!(set.covers(&words("uh yeah yeah")));
        assert!(set.covers(&words("I see.")));
        assert!(set.covers(&words("yeah i see okay")));
        assert!(!set.covers(&words("uh um")));
        assert!(!set.covers(&words("I see the problem")));
        assert!(!set.covers(&words("")));
    }

    #[test]
    fn pairs_are_adjacent_words_from_a_start() {
        let w = words("so what do you think");
        assert_eq!(
            w.pairs_from(1).collect::<Vec<_>>(),
            [("what", "do"), ("do", "you"), ("you", "think")]
        );
        assert_eq!(w.pairs_from(4).count(), 0);
        assert_eq!(words("").pairs_from(0).count(), 0);
    }

    #[test]
    fn words_drop_fillers_and_collapse_stutters() {
        let w = words("what, what, uh, what do you think");
        assert_eq!(w.iter().collect::<Vec<_>>(), ["what", "do", "you", "think"]);
        assert_eq!(w.token_index, [0, 4, 5, 6]);
        let w = words("So what-what would, wha-wha-what I-I t-to say");
        assert_eq!(
            w.iter().collect::<Vec<_>>(),
            ["so", "what", "would", "what", "i", "to", "say"]
        );
        let w = words("uh-uh mm-mm mm-hmm uh-huh well-known so-so");
        assert_eq!(
            w.iter().collect::<Vec<_>>(),
            ["uh-uh", "mm-mm", "mm-hmm", "uh-huh", "well-known", "so"]
        );
    }

    #[test]
    fn phrases_match_whole_words_only() {
        let (set, words) = single(&["i see", "see", "tell me about"]);
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
    fn one_scan_serves_every_vocabulary_even_when_they_share_phrases() {
        let mut builder = PhraseIndexBuilder::new();
        let thanks = builder.add(&["thank you".into(), "thanks".into()]);
        let polite = builder.add(&["please".into(), "thank you".into(), "thank you".into()]);
        let empty = builder.add(&[]);
        let index = builder.build().expect("a small automaton");
        let mut w = words("well thank you, please");
        index.scan(&mut w);
        assert_eq!(thanks.find(&w).map(|m| (m.start, m.end)), Some((1, 3)));
        let polite_found: Vec<_> = polite.find_all(&w).map(|m| (m.start, m.end)).collect();
        assert_eq!(
            polite_found,
            [(1, 3), (3, 4)],
            "a phrase listed twice is found once"
        );
        assert!(empty.find(&w).is_none());
        assert!(
            thanks
                .find(&{
                    let mut w = words("thanksgiving");
                    index.scan(&mut w);
                    w
                })
                .is_none()
        );
    }

    #[test]
    fn cover_requires_every_word() {
        let (set, words) = single(&["yeah", "oh", "that's great"]);
        assert!(set.covers(&words("oh yeah that's great")));
        assert!(!set.covers(&words("oh yeah that's great news")));
        assert!(!set.covers(&words("")));
    }
}

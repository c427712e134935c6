//! Dismissive language (rubric: language behaviours): "calm down", "that's not our problem",
//! "you should have…", "as I already said", flat contradiction — from the agent. Read in
//! context: an order or a retort counts where it opens a clause ("sir, please calm down",
//! "whatever."), not inside one ("deep breaths help people calm down", "whatever he likes");
//! reassurance is not blame ("it is not your fault", "you shouldn't have to live with that").

use std::cell::OnceCell;

use super::{Behaviour, Context, Detection, Detector, Speakers};
use crate::engine::language::{self, CompiledLanguage};
use crate::engine::state::Segment;
use crate::engine::text::PhraseMatch;

/// Reports dismissive language of the agent.
#[derive(Debug)]
pub(super) struct DismissiveDetector;

impl Detector for DismissiveDetector {
    fn speakers(&self) -> Speakers {
        Speakers::Agent
    }

    fn detect(&self, utterance: &Segment, context: &Context<'_>, found: &mut Vec<Detection>) {
        let lang = context.profile.lang();
        let words = &utterance.analysis.words;
        let clause = Clauses {
            utterance,
            lang,
            marks: OnceCell::new(),
        };
        let unless_next = |m: &PhraseMatch| {
            words
                .get(m.end)
                .is_some_and(|w| lang.dismissive_unless_next.contains(w))
        };
        // Repeating oneself to a customer who is upset or asking.
        let unheard = || {
            let threshold = context.profile.language.thresholds.emotion_sentiment;
            context.other_turns(utterance, 1).next().is_some_and(|p| {
                p.question_mark || p.question.is_some() || p.sentiment <= threshold
            })
        };
        let hit = lang
            .dismissive
            .find_all(words)
            .find(|m| !unless_next(m))
            .or_else(|| {
                lang.dismissive_openers
                    .find_all(words)
                    .find(|m| clause.opens(m.start) && !unless_next(m))
            })
            .or_else(|| {
                lang.dismissive_retorts
                    .find_all(words)
                    .find(|m| clause.opens(m.start) && clause.closes(m.end))
            })
            .or_else(|| {
                lang.dismissive_when_unheard
                    .find_all(words)
                    .find(|m| clause.opens(m.start))
                    .filter(|_| unheard())
            });
        if let Some(m) = hit {
            found.push(Detection::words(
                Behaviour::DismissiveLanguage,
                0.8,
                utterance,
                m.start,
                m.end,
            ));
        }
    }
}

/// Punctuation that ends a clause: `. ! ? ; : ,` and dashes.
const CLAUSE_MARKS: [char; 8] = ['.', '!', '?', ';', ':', ',', '\u{2014}', '\u{2013}'];

/// Where an utterance's clauses begin and end: at its ends and at [`CLAUSE_MARKS`] between two
/// words (`language::set_off_before`), so speech recognition's text is one clause. The marks
/// are found only when a phrase asks.
struct Clauses<'a> {
    utterance: &'a Segment,
    lang: &'a CompiledLanguage,
    marks: OnceCell<Vec<u32>>,
}

impl Clauses<'_> {
    /// Whether punctuation stands between word `i - 1` and word `i`.
    fn boundary_before(&self, i: usize) -> bool {
        let u = self.utterance;
        let marks = self
            .marks
            .get_or_init(|| language::marks_in(&u.text, &CLAUSE_MARKS));
        language::set_off_before(&u.analysis, &u.tokens, marks, i)
    }

    /// Whether word `i` opens a clause: only discourse markers or words of address stand
    /// between it and the clause's start ("so, sir, please calm down").
    fn opens(&self, mut i: usize) -> bool {
        let words = &self.utterance.analysis.words;
        while i > 0 && !self.boundary_before(i) {
            let before = words.get(i - 1).unwrap_or_default();
            if !(self.lang.discourse_markers.contains(before)
                || self.lang.dismissive_preludes.contains(before))
            {
                return false;
            }
            i -= 1;
        }
        true
    }

    /// Whether the clause ends where a phrase ending before word `end` ends.
    fn closes(&self, end: usize) -> bool {
        end >= self.utterance.analysis.words.len() || self.boundary_before(end)
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{kinds, run_text, voice};
    use super::*;
    use crate::engine::event::Role;

    #[test]
    fn dismissing_the_customer_is_reported_and_helping_is_not() {
        let found = run_text(
            &voice(),
            &[
                (Role::Customer, "this is the third time I'm calling"),
                (Role::Agent, "sir please calm down"),
                (Role::Agent, "like I said that's not our problem"),
                (Role::Agent, "let me look into it"),
            ],
        );
        assert!(kinds(&found[1]).contains(&Behaviour::DismissiveLanguage));
        assert!(kinds(&found[2]).contains(&Behaviour::DismissiveLanguage));
        assert!(!kinds(&found[3]).contains(&Behaviour::DismissiveLanguage));
    }

    fn dismissive(text: &str) -> bool {
        let found = run_text(
            &voice(),
            &[
                (
                    Role::Customer,
                    "i feel like it was all my fault and i can't relax",
                ),
                (Role::Agent, text),
            ],
        );
        kinds(&found[1]).contains(&Behaviour::DismissiveLanguage)
    }

    #[test]
    fn orders_and_retorts_count_where_they_open_a_clause() {
        for text in [
            "calm down",
            "Sir, please calm down.",
            "okay just relax, it's fine",
            "Whatever.",
            "whatever, that's how it works",
            "It's fine. Relax.",
            "that's wrong, you never sent it",
            "it's your fault for not reading the terms",
            "you should have read the email",
        ] {
            assert!(dismissive(text), "{text}");
        }
    }

    #[test]
    fn repeating_oneself_to_a_puzzled_customer_is_dismissive_and_referring_back_is_not() {
        let said = |customer: &str, agent: &str| {
            let found = run_text(
                &voice(),
                &[(Role::Customer, customer), (Role::Agent, agent)],
            );
            kinds(&found[1]).contains(&Behaviour::DismissiveLanguage)
        };
        let answer = "as i said it's the account on your old phone";
        assert!(said("sorry which account do you mean?", answer));
        assert!(said("this is ridiculous i still can't find it", answer));
        assert!(!said(
            "thanks that helps a lot",
            "Like I said, the refund takes ten days."
        ));
    }

    #[test]
    fn reassurance_and_the_same_words_inside_a_clause_are_not_dismissive() {
        for text in [
            "It is not your fault.",
            "it really is not at all your fault",
            "Just know that it's not your fault that this happened.",
            "You shouldn't have to live worrying that it will happen again.",
            "you should have a new card by friday",
            "Deep breaths can help people calm down.",
            "Is there anything else you usually do to help you relax?",
            "Whatever you do, keep the receipt.",
            "try to play games with him whatever he likes",
            "Is there something in particular that's wrong?",
            "Thank you for being willing to listen to me as well!",
            "You can relax now, the refund has gone through.",
        ] {
            assert!(!dismissive(text), "{text}");
        }
    }
}

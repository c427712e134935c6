//! Clarifying questions (rubric: language behaviours): asking the other person to elaborate on
//! or confirm what they said ("what do you mean by…", "just to make sure…", "can you say more
//! about…"), including short signals of not having caught it ("sorry?", "pardon?", "huh?") and
//! echo questions that repeat their words with a question mark. "I'm sorry, what?" is a
//! clarification, not empathy.

use super::{Behaviour, Context, Detection, Detector, Speakers};
use crate::engine::language::{self, QuestionForm};
use crate::engine::state::{Earlier, Segment};

/// Reports clarifying questions.
#[derive(Debug)]
pub(super) struct ClarifyingDetector;

/// Words at most in a bare "sorry?"-style signal or an echo question.
const SHORT: usize = 4;

/// Whether the utterance is a short signal of not having heard ("pardon?", "sorry what").
pub(super) fn is_non_understanding(utterance: &Segment, context: &Context<'_>) -> bool {
    let a = &utterance.analysis;
    let lang = context.profile.lang();
    // "Hm?", "Uh?": nothing but a questioning noise.
    if a.words.is_empty() {
        return a.question_mark && !utterance.tokens.is_empty();
    }
    if a.words.len() > SHORT || !lang.non_understanding.covers(&a.words) {
        return false;
    }
    // Without a question mark only the unambiguous ones count (`unambiguous_non_understanding`).
    a.question_mark
        || lang
            .unambiguous_non_understanding
            .is_exactly(&a.words, 0, a.words.len())
}

/// "A what?", "Did what?": an echo of the other person's words with the part not caught
/// replaced by a wh-word. Not "you know what?" or "guess what?" (news announced), "she said,
/// what?" (a question quoted) nor "oldies or what?" (alternatives offered).
fn is_wh_echo(utterance: &Segment, context: &Context<'_>) -> bool {
    let a = &utterance.analysis;
    let lang = context.profile.lang();
    let n = a.words.len();
    a.question_mark
        && (2..=SHORT).contains(&n)
        && a.words
            .get(n - 1)
            .is_some_and(|w| lang.echo_wh_words.contains(w))
        && a.words.get(n - 2).is_some_and(|before| {
            !matches!(before, "know" | "guess" | "or") && !lang.reporting_verbs.contains(before)
        })
}

impl Detector for ClarifyingDetector {
    fn speakers(&self) -> Speakers {
        Speakers::AgentOrUnknown
    }

    fn detect(&self, utterance: &Segment, context: &Context<'_>, found: &mut Vec<Detection>) {
        let a = &utterance.analysis;
        let lang = context.profile.lang();
        if context.cues.non_understanding || is_wh_echo(utterance, context) {
            found.push(Detection::whole(
                Behaviour::ClarifyingQuestion,
                0.85,
                utterance,
            ));
            return;
        }
        for m in lang.clarifying.find_all(&a.words) {
            let first = a.words.get(m.start);
            // Phrases that also start ordinary sentences count only when asked.
            let weak = lang.weak_clarifying.is_exactly(&a.words, m.start, m.end);
            let whole = m.end + 1 >= a.words.len();
            // Asked: the utterance has a question's form or mark, the phrase is itself one
            // ("do you mean", "did you say"), or a question follows it ("just to check, is
            // the letter from us"), as speech recognition writes it without punctuation.
            let inverted = |i: usize| {
                a.words.get(i).is_some_and(|w| lang.auxiliaries.contains(w))
                    && a.words
                        .get(i + 1)
                        .is_some_and(|w| lang.subjects.contains(w))
            };
            let asked =
                a.question.is_some() || a.question_mark || inverted(m.start) || inverted(m.end);
            // "what you know about it" is not asking what was meant; "pardon my French"
            // apologises.
            let idiom = (first == Some("what")
                && a.words.pairs_from(0).any(|p| p == ("you", "know")))
                || (first == Some("pardon") && a.words.get(m.end) == Some("my"));
            // "and I said, what do you mean…": a question quoted, not asked (the reporting
            // verb just before the phrase, or before the question it ends; "when you say…"
            // points at the other's words instead).
            let quoted = (m.start.saturating_sub(3)..m.start).any(|j| {
                a.words
                    .get(j)
                    .is_some_and(|w| lang.reporting_verbs.contains(w))
                    && !(j > 0 && a.words.get(j - 1).is_some_and(language::is_you))
            });
            let counts = if weak {
                asked && (whole || first == Some("you"))
            } else {
                (m.start <= a.lead && a.words.len() <= m.end + 8) || asked
            };
            if counts && !idiom && !quoted {
                found.push(Detection::words(
                    Behaviour::ClarifyingQuestion,
                    0.8,
                    utterance,
                    m.start,
                    m.end,
                ));
                return;
            }
        }
        // An echo: a short question repeating the other person's words from one of their last
        // three turns ("in our country?", "Amarillo?"), or their question said back in one's
        // own words ("Do I vote?" after "Do you vote?"): checking what was said or asked.
        if !a.question_mark || a.content.is_empty() {
            return;
        }
        let restates = |t: &&Earlier| matches!(a.overlap_with(&t.content), (shared, share) if shared >= 1 && share >= 0.99);
        let echo = (a.words.len() <= SHORT
            && matches!(a.question, Some(QuestionForm::Declarative)))
        .then(|| context.other_turns(utterance, ECHO_TURNS).find(restates))
        .flatten();
        let said_back = || {
            (a.words.len() <= QUESTION_ECHO_MAX_WORDS
                && a.words
                    .iter()
                    .any(|w| matches!(w, "i" | "my" | "me" | "i'm")))
            .then(|| context.other_turns(utterance, 1).next())
            .flatten()
            .filter(|p| (p.question_mark || p.question.is_some()) && restates(p))
        };
        if let Some(source) = echo.or_else(said_back) {
            found.push(
                Detection::whole(Behaviour::ClarifyingQuestion, 0.6, utterance)
                    .related([&*source.utterance_id]),
            );
        }
    }
}

/// The other person's turns an echo question may repeat.
const ECHO_TURNS: usize = 3;

/// Longest question that can be the other's question said back ("Why did I pick music?").
const QUESTION_ECHO_MAX_WORDS: usize = 6;

#[cfg(test)]
mod tests {
    use super::super::testing::{kinds, run_text, voice};
    use super::*;
    use crate::engine::event::Role;

    fn clarifies(previous: &str, text: &str) -> bool {
        let found = run_text(&voice(), &[(Role::Customer, previous), (Role::Agent, text)]);
        kinds(&found[1]).contains(&Behaviour::ClarifyingQuestion)
    }

    #[test]
    fn requests_to_elaborate_or_repeat_are_clarifying() {
        let before = "the box keeps flashing orange at night";
        for text in [
            "what do you mean by flashing",
            "just to make sure, is it the router or the modem",
            "sorry?",
            "I'm sorry, what?",
            "pardon",
            // A wh-word for the part not caught, as speech recognition writes it.
            "the what",
            "a what",
            "can you say more about the orange light",
            "Orange?",
            // as speech recognition writes them: no punctuation, the question after the phrase
            "sorry when you say at night do you mean every night or just some",
            "just to check is it the box from us or your own",
            "sorry did you say it flashes orange or amber",
        ] {
            assert!(clarifies(before, text), "{text}");
        }
    }

    #[test]
    fn echoes_of_an_earlier_turn_and_questions_said_back_are_clarifying() {
        let profile = voice();
        let found = run_text(
            &profile,
            &[
                (Role::Customer, "I grew up in Amarillo actually."),
                (Role::Customer, "So we moved a lot."),
                (Role::Agent, "Amarillo?"),
            ],
        );
        assert!(kinds(&found[2]).contains(&Behaviour::ClarifyingQuestion));
        let found = run_text(
            &profile,
            &[
                (Role::Customer, "Do you vote?"),
                (Role::Agent, "Do I vote?"),
            ],
        );
        assert!(kinds(&found[1]).contains(&Behaviour::ClarifyingQuestion));
        let found = run_text(
            &profile,
            &[(Role::Customer, "Hello?"), (Role::Agent, "Hm?")],
        );
        assert!(kinds(&found[1]).contains(&Behaviour::ClarifyingQuestion));
    }

    #[test]
    fn apologies_and_ordinary_questions_are_not() {
        let before = "the box keeps flashing orange at night";
        for text in [
            "sorry",
            "I'm sorry to hear that",
            "did you restart it",
            "you know what?",
            "and I said, what do you mean it's gone",
            "pardon my French, but it's a joke",
            "I didn't catch anything last weekend",
            "guess what?",
            "the blue one or what?",
            "okay",
            "that sounds annoying",
        ] {
            assert!(!clarifies(before, text), "{text}");
        }
    }
}

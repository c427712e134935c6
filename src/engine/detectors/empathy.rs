//! Empathy (rubric: language behaviours): naming or validating the customer's feeling, or
//! apologising for their experience ("that sounds really frustrating", "I'm sorry you've had to
//! deal with this", "I'd be upset too"). Stronger right after the customer showed emotion. A
//! short "sorry?" or "I'm sorry, what?" asks to repeat and is not empathy.

use super::{Behaviour, Context, Detection, Detector, Speakers};
use crate::engine::language::{Analysis, CompiledLanguage};
use crate::engine::state::Segment;

/// Reports expressions of empathy.
#[derive(Debug)]
pub(super) struct EmpathyDetector;

impl Detector for EmpathyDetector {
    fn speakers(&self) -> Speakers {
        Speakers::AgentOrUnknown
    }

    fn detect(&self, utterance: &Segment, context: &Context<'_>, found: &mut Vec<Detection>) {
        if context.cues.non_understanding {
            return;
        }
        let a = &utterance.analysis;
        let lang = context.profile.lang();
        if a.question_mark && a.words.len() <= 3 {
            return;
        }
        // An apology for a procedure ("sorry, due to quality purposes I will have to close this
        // chat") is not one for the customer's trouble: a phrase the procedural reason follows
        // closely (within `PROCEDURE_REACH` words) does not count. A reason further on belongs
        // to a sentence of its own ("Sorry for the trouble! … so I'm going to close the chat").
        let procedural = |end: usize| {
            lang.procedural_apologies
                .find_all(&a.words)
                .any(|p| p.start >= end && p.start <= end + PROCEDURE_REACH)
        };
        let phrase = lang.empathy.find_all(&a.words).find(|m| {
            // "oh no" and friends count only as a reply of their own, not inside a longer turn.
            let short_only =
                a.words.len() > 4 && lang.short_only_empathy.is_exactly(&a.words, m.start, m.end);
            !short_only && !procedural(m.end)
        });
        let emotional = context
            .other_turns(utterance, 1)
            .next()
            .is_some_and(|p| p.sentiment <= context.profile.language.thresholds.emotion_sentiment);
        let Some((start, end)) = phrase
            .map(|m| (m.start, m.end))
            .or_else(|| named_feeling(a, lang))
            .or_else(|| {
                // A validation opening a reply to emotion ("I understand. That's a lot.").
                let m = a.opening(&lang.validations).filter(|_| emotional)?;
                Some((m.start, m.end))
            })
        else {
            return;
        };
        found.push(Detection::words(
            Behaviour::Empathy,
            if emotional { 0.95 } else { 0.8 },
            utterance,
            start,
            end,
        ));
    }
}

/// Words after an apology within which a procedural reason makes it a procedural apology ("i am
/// sorry [,] due to quality purposes", "i'm sorry but i will have to close this chat").
const PROCEDURE_REACH: usize = 6;

/// Words a named feeling may follow its frame by ("you seem [really quite] overwhelmed").
const FEELING_REACH: usize = 4;

/// Words a named feeling may follow a general frame by ("that's [so] sad").
const NEAR_FEELING_REACH: usize = 2;

/// The words naming the other's feeling, if the utterance names one: a frame of the rubric
/// ("it sounds like you're", "you must feel") and, within [`FEELING_REACH`] words and before a
/// new clause, a feeling word ("overwhelmed"); not where the frame follows an auxiliary ("do
/// you feel anxious?" asks about a feeling, it does not name it).
fn named_feeling(a: &Analysis, lang: &CompiledLanguage) -> Option<(usize, usize)> {
    let far = lang
        .feeling_frames
        .find_all(&a.words)
        .map(|m| (m, FEELING_REACH));
    let near = lang
        .near_feeling_frames
        .find_all(&a.words)
        .map(|m| (m, NEAR_FEELING_REACH));
    far.chain(near).find_map(|(m, reach)| {
        let asked = m
            .start
            .checked_sub(1)
            .and_then(|i| a.words.get(i))
            .is_some_and(|w| lang.auxiliaries.contains(w));
        if asked {
            return None;
        }
        (m.end..m.end + reach)
            .map_while(|i| a.words.get(i).map(|w| (i, w)))
            .take_while(|(_, w)| !lang.feeling_breaks.contains(*w))
            .find(|(_, w)| lang.feeling_words.contains(*w))
            .map(|(i, _)| (m.start, i + 1))
    })
}

#[cfg(test)]
mod tests {
    use super::super::testing::{kinds, run_text, voice};
    use super::*;
    use crate::engine::event::Role;

    fn empathic(text: &str) -> bool {
        let found = run_text(
            &voice(),
            &[
                (
                    Role::Customer,
                    "I've been without internet for a week and I'm really fed up",
                ),
                (Role::Agent, text),
            ],
        );
        kinds(&found[1]).contains(&Behaviour::Empathy)
    }

    #[test]
    fn validating_feelings_and_apologising_are_empathy() {
        for text in [
            "that sounds really frustrating",
            "I'm sorry you've had to deal with this",
            "I'd be upset too",
            "oh no",
            "I completely understand, let me fix that",
            "i can imagine that's been stressful",
            "That's disappointing when you planned ahead for it.",
            "oh how disappointing",
            "I can tell this is really hurting you a lot.",
            "We deeply apologize for this inconvenience.",
            "Don't worry, I'm here to help you.",
            "It sounds like you are overwhelmed and want a plan.",
            "You must feel so alone after all that.",
            "You're feeling bad about not keeping up, and that makes it worse?",
            "i know you might be feeling betrayed right now",
            // An apology for bad news is one for the customer's trouble.
            "I'm sorry, but I still can't find an account with that email.",
            "I can definitely understand your frustration.",
            "I understand your concern, and I'll look into it now.",
            "I would be furious too!",
            "I hate to hear that.",
        ] {
            assert!(empathic(text), "{text}");
        }
    }

    #[test]
    fn a_procedural_reason_only_cancels_the_apology_it_follows() {
        // The reason right after the apology: a procedural apology.
        assert!(!empathic(
            "I'm sorry, I will have to close this chat if I don't hear from you."
        ));
        // An apology for the trouble, with the procedure sentences later: empathy.
        assert!(empathic(
            "Sorry for the trouble! Unfortunately the studio cancelled the class on their side, \
             so you will need to speak with them directly. It seems you're busy right now, so \
             I'm going to close out the chat."
        ));
    }

    #[test]
    fn clarifications_and_plain_statements_are_not() {
        for text in [
            "I'm sorry, what?",
            "sorry?",
            "let me check the line",
            "oh no that's not right the account number is different",
            "I am sorry, due to quality purposes I will have to close this chat.",
            "You're welcome.",
            "Thanks for your patience.",
            "Do you feel anxious when the bill arrives?",
            "Are you feeling stressed about it?",
            "You are right and the form is hard to find.",
            "you were charged twice for the same order",
            // Courtesy formulas are not empathy.
            "It was my pleasure to assist you today.",
            "I'd be happy to help with that.",
        ] {
            assert!(!empathic(text), "{text}");
        }
    }

    #[test]
    fn the_short_only_list_is_the_rubrics() {
        let script = [
            (Role::Customer, "my card was declined at the shop today"),
            (Role::Agent, "oh no, the card was declined at the shop"),
        ];
        let found = run_text(&voice(), &script);
        assert!(!kinds(&found[1]).contains(&Behaviour::Empathy));
        let rubric =
            crate::engine::Rubric::from_toml_str("[base.language]\nshort_only_empathy = []\n")
                .unwrap();
        let found = run_text(&rubric.profile("voice").unwrap(), &script);
        assert!(kinds(&found[1]).contains(&Behaviour::Empathy));
    }
}

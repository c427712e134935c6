//! Customer emotion (rubric: language behaviours): negative sentiment (a VADER-style lexicon
//! with negation and intensifiers, so "not bad at all" is not negative) or a frustration marker
//! ("ridiculous", "fed up", "waste of time").

use super::{Behaviour, Context, Detection, Detector, Speakers};
use crate::engine::state::Segment;

/// Marks a writer raises their voice with (speech recognition never writes them).
const WRITTEN_MARKS: [&str; 4] = ["??", "!!", "?!", "!?"];

/// Reports customer emotion.
#[derive(Debug)]
pub(super) struct CustomerEmotionDetector;

impl Detector for CustomerEmotionDetector {
    fn speakers(&self) -> Speakers {
        Speakers::Customer
    }

    fn detect(&self, utterance: &Segment, context: &Context<'_>, found: &mut Vec<Detection>) {
        let a = &utterance.analysis;
        let threshold = context.profile.language.thresholds.emotion_sentiment;
        if let Some(m) = context.profile.lang().frustration.find(&a.words) {
            let confidence = if a.sentiment <= threshold { 0.95 } else { 0.8 };
            found.push(Detection::words(
                Behaviour::CustomerEmotion,
                confidence,
                utterance,
                m.start,
                m.end,
            ));
        } else if a.sentiment <= threshold {
            found.push(Detection::whole(
                Behaviour::CustomerEmotion,
                (-a.sentiment).min(1.0) as f32,
                utterance,
            ));
        } else if WRITTEN_MARKS.iter().any(|m| utterance.text.contains(m)) {
            // Written chat: doubled question or exclamation marks are raised voice ("Can it
            // take weeks??", "I still can't!!").
            found.push(Detection::whole(Behaviour::CustomerEmotion, 0.7, utterance));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{kinds, run_text, voice};
    use super::*;
    use crate::engine::event::Role;

    fn emotional(text: &str) -> bool {
        kinds(&run_text(&voice(), &[(Role::Customer, text)])[0])
            .contains(&Behaviour::CustomerEmotion)
    }

    #[test]
    fn frustration_and_negative_sentiment_are_emotion() {
        for text in [
            "this is ridiculous",
            "I'm so angry about this",
            "honestly it's been a horrible week with this awful service",
            "I'm fed up",
            "So I paid for a device and it lost this capacity??? Can it take weeks??",
            "It has reappeared, but still does not carry.",
        ] {
            assert!(emotional(text), "{text}");
        }
    }

    #[test]
    fn negated_negatives_and_neutral_talk_are_not() {
        for text in [
            "not bad at all",
            "it's not a problem",
            "my account number is four four two",
            "that's great thanks",
            "no worries",
        ] {
            assert!(!emotional(text), "{text}");
        }
    }
}

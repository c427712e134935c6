//! Sentence completion (rubric: language behaviours): the agent finishes the customer's
//! sentence — takes the floor right after a customer utterance that stops unfinished ("it keeps
//! dropping when the…") and continues it in a few words ("…when the microwave is on").
//!
//! What tells a completion from an answer or a turn of one's own:
//! - the other person's utterance is unfinished, has some substance
//!   (`completion_min_context_words`) and is not a question;
//! - the agent's words are few (`completion_max_words`), are not a listening cue, do not open
//!   as an answer, a reaction or a clause of their own (`completion_blocked_openers`: "yeah",
//!   "well", "i", "that's"…), do not themselves stop mid-clause, and are not only the other's
//!   own words said back (that mirrors them);
//! - the agent's own previous turn was finished: after their own unfinished turn, a few words
//!   continue their sentence, not the other's;
//! - a listening cue of the agent's in between ("uh-huh") does not matter;
//! - with timing, the agent starts within `completion_max_gap_ms` of the customer stopping.

use super::{Behaviour, Context, Detection, Detector, Speakers};
use crate::engine::language::{Ending, QuestionForm};
use crate::engine::state::Segment;

/// Reports completions of the other person's sentence.
#[derive(Debug)]
pub(super) struct SentenceCompletionDetector;

impl Detector for SentenceCompletionDetector {
    fn speakers(&self) -> Speakers {
        Speakers::AgentOrUnknown
    }

    fn detect(&self, utterance: &Segment, context: &Context<'_>, found: &mut Vec<Detection>) {
        let a = &utterance.analysis;
        let lang = context.profile.lang();
        let rules = &context.profile.language.thresholds;
        if a.words.is_empty()
            || a.words.len() > rules.completion_max_words
            || a.ending == Ending::MidClause
            || a.words
                .get(0)
                .is_some_and(|w| lang.completion_blocked_openers.contains(w))
            || matches!(
                a.question,
                Some(QuestionForm::Wh | QuestionForm::Inversion | QuestionForm::Request)
            )
            || context.cues.acknowledgement
            || context.cues.non_understanding
        {
            return;
        }
        let Some((unfinished, mut before)) = context.latest_turn(utterance) else {
            return;
        };
        if !utterance.is_other_party(unfinished)
            || !unfinished.ending.unfinished()
            || unfinished.question_mark
            || unfinished.question.is_some()
            || (unfinished.words as usize) < rules.completion_min_context_words
        {
            return;
        }
        // Saying the other's own words back ("…five bedrooms," "Five bedrooms.") mirrors them; a
        // completion adds what they had not said yet.
        if a.overlap_with(&unfinished.content).1 >= 1.0 {
            return;
        }
        // The speaker's own turn before it must be finished (a listening cue counts as one).
        if before
            .find(|s| !utterance.is_other_party(s))
            .is_some_and(|own| !own.backchannel && own.ending.unfinished())
        {
            return;
        }
        let mut confidence = 0.5;
        if let (Some(end), Some(start)) = (unfinished.end_ms, utterance.start_ms) {
            if start - end > rules.completion_max_gap_ms {
                return;
            }
            confidence = 0.7;
        }
        found.push(
            Detection::whole(Behaviour::SentenceCompletion, confidence, utterance)
                .related([&*unfinished.utterance_id]),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{kinds, run, run_text, voice};
    use super::*;
    use crate::engine::event::Role;

    fn completes(turns: &[(Role, &str)]) -> bool {
        let found = run_text(&voice(), turns);
        kinds(found.last().expect("turns")).contains(&Behaviour::SentenceCompletion)
    }

    #[test]
    fn finishing_an_unfinished_sentence_is_a_completion() {
        let found = run(
            &voice(),
            &[
                (Role::Customer, "it keeps dropping whenever the", 0, 3000),
                (Role::Agent, "microwave is on", 3100, 4000),
            ],
        );
        assert!(kinds(&found[1]).contains(&Behaviour::SentenceCompletion));
        for turns in [
            // Speech recognition: no punctuation, the customer trails off on a filler.
            [
                (Role::Customer, "we tried to pay online but the card got uh"),
                (Role::Agent, "declined"),
            ],
            // Punctuated text without a final stop.
            [
                (Role::Customer, "So I went to the store and asked for a"),
                (Role::Agent, "refund?"),
            ],
            [
                (
                    Role::Customer,
                    "I moved house in March, so the bills go to the old,",
                ),
                (Role::Agent, "address."),
            ],
        ] {
            assert!(completes(&turns), "{turns:?}");
        }
        // A listening cue of the agent's in between does not matter.
        assert!(completes(&[
            (Role::Customer, "and then you don't work out because you"),
            (Role::Agent, "uh-huh"),
            (Role::Agent, "get winded"),
        ]));
    }

    #[test]
    fn answers_reactions_and_own_sentences_are_not() {
        for turns in [
            // A finished sentence.
            vec![
                (Role::Customer, "it keeps dropping every night."),
                (Role::Agent, "since when"),
            ],
            // An answer or a reaction, not the rest of the sentence.
            vec![
                (Role::Customer, "I called twice last week about the"),
                (Role::Agent, "yeah that's the outage"),
            ],
            vec![
                (Role::Customer, "I called twice last week about the"),
                (Role::Agent, "I can see both calls"),
            ],
            // A verdict or a reaction of one's own.
            vec![
                (Role::Customer, "and honestly the people on the phone were,"),
                (Role::Agent, "not great, I imagine."),
            ],
            vec![
                (
                    Role::Customer,
                    "so I'd rather not wait another week for the,",
                ),
                (Role::Agent, "sounds like it."),
            ],
            vec![
                (Role::Customer, "well we'll see how it goes with the,"),
                (Role::Agent, "thank you."),
            ],
            // A question is not unfinished.
            vec![
                (Role::Customer, "do you want the account number or"),
                (Role::Agent, "the order number"),
            ],
            // Too little to complete.
            vec![
                (Role::Customer, "and, uh,"),
                (Role::Agent, "the order number"),
            ],
            // The agent carries on their own unfinished sentence.
            vec![
                (Role::Agent, "the fastest way would be to"),
                (Role::Customer, "I already tried the app and then,"),
                (Role::Agent, "reset it from the website"),
            ],
            // The agent's words stop mid-clause themselves: a false start.
            vec![
                (Role::Customer, "I called twice last week about the"),
                (Role::Agent, "and the"),
            ],
        ] {
            assert!(!completes(&turns), "{turns:?}");
        }
        let paused = run(
            &voice(),
            &[
                (Role::Customer, "it keeps dropping whenever the", 0, 3000),
                (Role::Agent, "microwave is on", 5000, 6000),
            ],
        );
        assert!(!kinds(&paused[1]).contains(&Behaviour::SentenceCompletion));
    }
}

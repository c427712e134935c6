//! Sentence completion (rubric: language behaviours): the agent finishes the customer's
//! sentence — takes the floor right after a customer utterance that stops mid-clause ("it keeps
//! dropping when the…") and continues it in a few words ("…when the microwave is on"). With
//! timing, the agent must start within `completion_max_gap_ms` of the customer stopping.

use super::{Behaviour, Context, Detection, Detector};
use crate::engine::language::QuestionForm;
use crate::engine::state::Segment;

/// Reports completions of the other person's sentence.
#[derive(Debug)]
pub(super) struct SentenceCompletionDetector;

impl Detector for SentenceCompletionDetector {
    fn name(&self) -> &'static str {
        "sentence_completion"
    }

    fn detect(&self, utterance: &Segment, context: &Context<'_>, found: &mut Vec<Detection>) {
        if !utterance.may_be_agent() {
            return;
        }
        let Some(previous) = context.previous() else {
            return;
        };
        if !utterance.is_other_party(previous)
            || !previous.analysis.open_ending
            || previous.analysis.words.len() < 2
        {
            return;
        }
        let a = &utterance.analysis;
        let rules = &context.profile.language.thresholds;
        if a.words.is_empty()
            || a.words.len() > rules.completion_max_words
            || a.lead > 0
            || matches!(
                a.question,
                Some(QuestionForm::Wh | QuestionForm::Inversion | QuestionForm::Request)
            )
            || context.cues.acknowledgement
            || context.cues.non_understanding
        {
            return;
        }
        let mut confidence = 0.5;
        if let (Some(end), Some(start)) = (previous.end_ms, utterance.start_ms) {
            if start - end > rules.completion_max_gap_ms {
                return;
            }
            confidence = 0.7;
        }
        found.push(
            Detection::whole(Behaviour::SentenceCompletion, confidence, utterance)
                .related([previous.utterance_id.clone()]),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{kinds, run, voice};
    use super::*;
    use crate::engine::event::Role;

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
    }

    #[test]
    fn answering_a_finished_sentence_or_after_a_pause_is_not() {
        let finished = run(
            &voice(),
            &[
                (Role::Customer, "it keeps dropping every night", 0, 3000),
                (Role::Agent, "since when", 3100, 4000),
            ],
        );
        assert!(!kinds(&finished[1]).contains(&Behaviour::SentenceCompletion));
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

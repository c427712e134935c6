//! Side issue (rubric: language behaviours, "head off small problems"): the customer raises a
//! further problem in passing — a marker ("also", "by the way", "oh and another thing")
//! followed by a problem word ("the bill looked odd"). Whether the agent picks it up is
//! followed by the conversation (`side_issue_dropped`).

use super::{Behaviour, Context, Detection, Detector, Speakers};
use crate::engine::state::Segment;

/// Reports side issues raised by the customer.
#[derive(Debug)]
pub(super) struct SideIssueDetector;

impl Detector for SideIssueDetector {
    fn speakers(&self) -> Speakers {
        Speakers::Customer
    }

    fn detect(&self, utterance: &Segment, context: &Context<'_>, found: &mut Vec<Detection>) {
        let lang = context.profile.lang();
        let words = &utterance.analysis.words;
        let Some(marker) = lang.side_issue_markers.find(words) else {
            return;
        };
        let problem = lang
            .problem_words
            .find_all(words)
            .filter(|p| p.start >= marker.end)
            .max_by_key(|p| p.end);
        if let Some(problem) = problem {
            found.push(Detection::words(
                Behaviour::SideIssue,
                0.7,
                utterance,
                marker.start,
                problem.end.max(words.len().min(problem.end + 4)),
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{kinds, run_text, voice};
    use super::*;
    use crate::engine::event::Role;

    #[test]
    fn a_problem_mentioned_in_passing_is_a_side_issue() {
        let found = run_text(
            &voice(),
            &[
                (
                    Role::Customer,
                    "thanks that fixed it, oh and by the way my last bill looked odd",
                ),
                (Role::Customer, "also thanks for your help"),
            ],
        );
        assert!(kinds(&found[0]).contains(&Behaviour::SideIssue));
        assert!(!kinds(&found[1]).contains(&Behaviour::SideIssue));
    }
}

//! Backchannel (rubric: timing behaviours): a short acknowledgement, at most
//! `timing.backchannel_max_words` words and `timing.backchannel_max_ms` long, made only of the
//! acknowledgement vocabulary (fillers allowed). An active-listening cue, never an interruption.

use super::{Behaviour, Context, Detection, Detector, Speakers};
use crate::engine::event::Role;
use crate::engine::rubric::Profile;
use crate::engine::state::Segment;
use crate::engine::text::{Token, Words};

/// Whether an utterance of these tokens (whose `words` the rubric's phrases were found in) and
/// this duration (if timed) is a backchannel.
pub(crate) fn is_backchannel(
    tokens: &[Token],
    words: &Words,
    duration_ms: Option<i64>,
    profile: &Profile,
) -> bool {
    tokens.len() <= profile.timing.backchannel_max_words
        && duration_ms.is_none_or(|d| d <= profile.timing.backchannel_max_ms)
        && profile.lang().backchannels.covers(words)
}

/// Whether the backchannel detector reports this utterance: a timed agent cue under speech
/// timing. Untimed cues are acknowledgements.
pub(super) fn reports(utterance: &Segment, context: &Context<'_>) -> bool {
    utterance.role == Role::Agent
        && utterance.backchannel
        && utterance.interval().is_some()
        && context.profile.timing.speech_timing
}

/// Reports agent backchannels.
#[derive(Debug)]
pub(super) struct BackchannelDetector;

impl Detector for BackchannelDetector {
    fn speakers(&self) -> Speakers {
        Speakers::Agent
    }

    fn detect(&self, utterance: &Segment, context: &Context<'_>, found: &mut Vec<Detection>) {
        if !reports(utterance, context) {
            return;
        }
        let span = utterance
            .tokens
            .first()
            .zip(utterance.tokens.last())
            .map(|(first, last)| (first.start_char, last.end_char));
        found.push(Detection {
            behaviour: Behaviour::Backchannel,
            confidence: 0.9,
            span,
            related_utterance_ids: Vec::new(),
            duration_ms: 0,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{run, timing_kinds as kinds, voice};
    use super::*;
    use crate::engine::text::tokenize;

    /// Whether `text` lasting `ms` is a backchannel, its words found as the engine finds them.
    fn cue(text: &str, ms: Option<i64>, p: &Profile) -> bool {
        let tokens = tokenize(text);
        let a = crate::engine::language::analyse(text, &tokens, &p.compiled.fillers, p.lang());
        is_backchannel(&tokens, &a.words, ms, p)
    }

    #[test]
    fn short_cues_are_backchannels_and_long_or_wordy_ones_are_not() {
        let p = voice();
        assert!(cue("mm-hmm", Some(400), &p));
        assert!(cue("uh I see", Some(900), &p));
        assert!(cue("Right, right.", None, &p));
        assert!(!cue("mm-hmm", Some(1500), &p), "too long");
        assert!(
            !cue("yeah yeah okay right", Some(800), &p),
            "too many words"
        );
        assert!(!cue("I see the problem", Some(800), &p), "takes the floor");
        assert!(!cue("", Some(100), &p));
    }

    #[test]
    fn only_agent_backchannels_are_reported() {
        let found = run(
            &voice(),
            &[
                (Role::Customer, "mm-hmm", 0, 300),
                (Role::Agent, "got it", 500, 900),
            ],
        );
        assert!(kinds(&found[0]).is_empty());
        assert_eq!(kinds(&found[1]), [Behaviour::Backchannel]);
        assert_eq!(found[1][0].span, Some((0, 6)));
    }
}

//! Fast speech (rubric: `fast_speech` alert): agent words per minute above
//! `timing.fast_speech_wpm` over at least `timing.fast_speech_window_ms` of agent speech,
//! counting agent utterances at least `timing.speaking_rate_min_utterance_ms` long.

use super::{Behaviour, Context, Detection, Detector, Speakers};
use crate::engine::state::Segment;

/// Reports fast agent speech.
#[derive(Debug)]
pub(super) struct FastSpeechDetector;

impl Detector for FastSpeechDetector {
    fn speakers(&self) -> Speakers {
        Speakers::Anyone
    }

    fn detect(&self, _utterance: &Segment, context: &Context<'_>, found: &mut Vec<Detection>) {
        let Some((words, ms)) = context.placement.rate_window else {
            return;
        };
        let wpm = words as f64 * 60_000.0 / ms as f64;
        if wpm > context.profile.timing.fast_speech_wpm {
            found.push(Detection::timing(
                Behaviour::FastSpeech,
                0.8,
                ms,
                Vec::new(),
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{run, timing_kinds as kinds, voice};
    use super::*;
    use crate::engine::event::Role;

    #[test]
    fn many_words_over_the_window_is_fast_speech() {
        // 4 utterances of 6 s with 22 words each: 220 words per minute over 24 s.
        let words = "one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen seventeen eighteen nineteen twenty twentyone twentytwo";
        let script: Vec<_> = (0..4)
            .map(|i| (Role::Agent, words, i * 6500, i * 6500 + 6000))
            .collect();
        let found = run(&voice(), &script);
        assert!(
            found[..3].iter().all(|f| f.is_empty()),
            "window not full yet"
        );
        assert_eq!(kinds(&found[3]), [Behaviour::FastSpeech]);
    }

    #[test]
    fn normal_pace_is_not_fast_speech() {
        let words = "so what I can do for you today is check the account and see";
        let script: Vec<_> = (0..5)
            .map(|i| (Role::Agent, words, i * 6500, i * 6500 + 6000))
            .collect();
        assert!(run(&voice(), &script).iter().all(|f| kinds(f).is_empty()));
    }
}

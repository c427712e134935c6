//! Reflection (rubric: language behaviours): the agent restates what the customer said — with
//! a reflective opening ("so what you're saying is…", "it sounds like…", "if I've got this
//! right…"), with a weaker opening ("so you…") and some of their words, or by restating most of
//! its content words from the customer's recent turns.

use super::{Behaviour, Context, Detection, Detector, Speakers};
use crate::engine::state::Segment;

/// Reports paraphrases and summaries.
#[derive(Debug)]
pub(super) struct ReflectionDetector;

impl Detector for ReflectionDetector {
    fn speakers(&self) -> Speakers {
        Speakers::AgentOrUnknown
    }

    fn detect(&self, utterance: &Segment, context: &Context<'_>, found: &mut Vec<Detection>) {
        let a = &utterance.analysis;
        let lang = context.profile.lang();
        let rules = &context.profile.language.thresholds;
        if a.words.is_empty() || a.asks_outright() {
            return;
        }
        if context.cues.acknowledgement || lang.courtesies.find(&a.words).is_some() {
            return;
        }
        // A reflection answers the other person: it starts a turn right after they spoke (a
        // listening cue of one's own in between takes no floor).
        let turn_initial = context
            .latest_turn(utterance)
            .is_some_and(|(p, _)| utterance.is_other_party(p));
        let mut recent: Vec<crate::engine::language::Stem> = Vec::new();
        let mut related = Vec::new();
        let mut latest: &[crate::engine::language::Stem] = &[];
        for turn in context.other_turns(utterance, rules.reflection_context_turns) {
            if related.is_empty() {
                latest = &turn.content;
            }
            recent.extend(turn.content.iter().cloned());
            related.push(&*turn.utterance_id);
        }
        // An echo of the other's latest words is a listening cue, not a paraphrase.
        if turn_initial
            && a.words.len() <= rules.reflection_echo_max_words
            && a.overlap_with(latest).1 >= 1.0
        {
            return;
        }
        recent.sort_unstable();
        recent.dedup();
        let (shared, share) = a.overlap_with(&recent);
        if let Some(m) = a.opening(&lang.reflection_openings) {
            let strong = a.words.get(m.start) != Some("so");
            if strong || turn_initial {
                let confidence = if strong { 0.85 } else { 0.7 };
                found.push(
                    Detection::words(
                        Behaviour::Reflection,
                        confidence,
                        utterance,
                        m.start,
                        a.words.len(),
                    )
                    .related(related),
                );
            }
        } else if lang.own_ground(a) {
            // Advice, an appraisal, a story of one's own or people in general: not a
            // restatement, however many of the other's words it repeats ("That is a great
            // idea! Keep studying for the tests at work.").
        } else if turn_initial && shared >= 1 && a.opening(&lang.weak_reflection_openings).is_some()
        {
            found.push(Detection::whole(Behaviour::Reflection, 0.6, utterance).related(related));
        } else if turn_initial
            && shared >= rules.reflection_min_content_words
            && share >= rules.reflection_min_overlap
        {
            found.push(Detection::whole(Behaviour::Reflection, 0.5, utterance).related(related));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{kinds, run_text, voice};
    use super::*;
    use crate::engine::event::Role;

    fn reflects(customer: &str, agent: &str) -> bool {
        let found = run_text(
            &voice(),
            &[(Role::Customer, customer), (Role::Agent, agent)],
        );
        kinds(&found[1]).contains(&Behaviour::Reflection)
    }

    #[test]
    fn paraphrases_and_summaries_are_reflections() {
        let customer = "since the update last week the printer won't print anything from my laptop";
        for agent in [
            "so what you're saying is nothing prints since the update",
            "it sounds like the update broke printing",
            "so since the update the printer stopped printing from the laptop",
            "since the update the printer won't print from your laptop",
        ] {
            assert!(reflects(customer, agent), "{agent}");
        }
    }

    #[test]
    fn a_listening_cue_of_ones_own_in_between_does_not_matter() {
        let found = run_text(
            &voice(),
            &[
                (
                    Role::Customer,
                    "i went to my account and then orders but there's only a list of orders and no invoices",
                ),
                (Role::Agent, "i see"),
                (
                    Role::Agent,
                    "so you can see the list of orders but there's no invoice on it",
                ),
            ],
        );
        assert!(kinds(&found[2]).contains(&Behaviour::Reflection));
    }

    #[test]
    fn echoes_and_mirrored_courtesies_are_not_paraphrases() {
        let customer = "it has dropped three or four times";
        assert!(!reflects(customer, "three or four times"));
        // Longer than an echo: only the courtesy list tells it apart.
        assert!(!reflects(
            "well it was nice talking to you",
            "it was really nice talking with you as well"
        ));
        // The same words with something of the agent's own are still a restatement.
        assert!(reflects(
            customer,
            "so the connection dropped three or four times today"
        ));
    }

    #[test]
    fn new_content_questions_and_cues_are_not() {
        let customer = "since the update last week the printer won't print anything from my laptop";
        for agent in [
            "have you restarted the printer",
            "okay",
            "let me check our system status page",
            "what model is the printer",
        ] {
            assert!(!reflects(customer, agent), "{agent}");
        }
    }
}

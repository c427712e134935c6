//! Open and closed questions (rubric: language behaviours). A question is recognised by its
//! form, not its punctuation: a wh- or "how" opening, auxiliary inversion, an imperative
//! request for information, a tag, or (as extra evidence only) a question mark. It is **open**
//! when it admits a wide range of answers ("what happened when…", "how does it behave", "tell
//! me about…", "why…"), **closed** when a yes/no or one short fact answers it ("did you restart
//! it", "what's your account number", "how many times", "which one", "when").

use super::{Behaviour, Context, Detection, Detector, Speakers};
use crate::engine::language::{self, Analysis, CompiledLanguage, QuestionForm};
use crate::engine::state::Segment;

/// Reports open and closed questions of the agent.
#[derive(Debug)]
pub(super) struct QuestionDetector;

/// Open or closed, with a confidence; `None` for what is not a question of either kind.
pub(crate) fn classify(a: &Analysis, lang: &CompiledLanguage) -> Option<(Behaviour, f32)> {
    use Behaviour::{ClosedQuestion as Closed, OpenQuestion as Open};
    let form = a.question?;
    let head = a.head()?;
    if !addressed_to_the_other(a, lang) {
        return None;
    }
    let second = a.second().unwrap_or("");
    let boost = if a.question_mark { 0.1 } else { 0.0 };
    // "what do you think", "where do you see this going": opinions, whatever the wh-word.
    let asks_opinion = || {
        a.words
            .pairs_from(a.lead)
            .any(|(w, next)| w == "you" && lang.opinion_verbs.contains(next))
    };
    // The first noun-like word after "what's your" / "what is the": a fact ("number") or not.
    let fact = || {
        a.words
            .iter()
            .skip(a.lead + 1)
            .take(4)
            .any(|w| lang.fact_nouns.contains(w))
    };
    // "how about you", "what about your other account", "how about Pink Floyd": the floor or a
    // topic handed over, open; "how about Tuesday at ten", "what about the blue one", "how about
    // I send a new one": an offer to accept or not, closed.
    let about_kind = || {
        let next = a.words.get(a.lead + 2);
        if next.is_some_and(|w| lang.handover_words.contains(w)) {
            (Open, 0.8)
        } else if next.is_some_and(|w| matches!(w, "i" | "we"))
            || a.words.iter().skip(a.lead + 2).take(4).any(|w| {
                lang.choice_words.contains(w)
                    || w.chars().next().is_some_and(|c| c.is_ascii_digit())
            })
        {
            (Closed, 0.6)
        } else {
            (Open, 0.7)
        }
    };
    let (kind, confidence) = match form {
        QuestionForm::Request => (Open, 0.85),
        // "do you have any thoughts on…": the form of yes/no, asking for an opinion.
        QuestionForm::Inversion
            if a.words
                .iter()
                .skip(a.lead + 2)
                .any(|w| lang.opinion_nouns.contains(w)) =>
        {
            (Open, 0.7)
        }
        QuestionForm::Inversion | QuestionForm::Indirect => (Closed, 0.8 + boost),
        QuestionForm::Tag => (Closed, 0.7 + boost),
        QuestionForm::Declarative => (Closed, 0.6),
        QuestionForm::Wh if head == "why" || head == "why'd" => (Open, 0.85),
        QuestionForm::Wh if asks_opinion() => (Open, 0.8),
        // "who else could you ask", "where else have you looked": a range, not one fact.
        QuestionForm::Wh if lang.closed_wh_words.contains(head) && second == "else" => (Open, 0.7),
        QuestionForm::Wh if lang.closed_wh_words.contains(head) => (Closed, 0.7 + boost),
        QuestionForm::Wh if head.starts_with("how") => {
            if lang.closed_wh_followers.contains(second) {
                (Closed, 0.8)
            } else if second == "about" {
                about_kind()
            } else {
                (Open, 0.8)
            }
        }
        QuestionForm::Wh => {
            // what / what's / which-like.
            if second.is_empty() {
                return None; // a bare "what?" asks to repeat
            } else if second == "about" {
                about_kind()
            } else if lang.range_followers.contains(second) {
                (Open, 0.75)
            } else if fact() {
                (Closed, 0.75)
            } else if lang.auxiliaries.contains(second) || lang.contracted_what.contains(head) {
                (Open, 0.7)
            } else if a.words.len() <= a.lead + 6 || a.question_mark {
                (Closed, 0.6) // "what time", "what model is it"
            } else {
                return None; // "what usually happens with these is that…": a statement
            }
        }
    };
    Some((kind, f32::min(confidence, 1.0)))
}

/// Whether a question asks the other party at all. Not a greeting ("how are you doing
/// today"), a search of one's own memory ("what's the word", "what was his name"), a question
/// that expects no answer ("why bother"), one quoted after a reporting verb, or one about oneself that never speaks of the other
/// ("what else do I do", "what did I put it in") unless it offers ("how can I help").
pub(crate) fn addressed_to_the_other(a: &Analysis, lang: &CompiledLanguage) -> bool {
    let words = &a.words;
    // A question mark with no form left: the question was quoted ("and she said, why…?").
    if a.question_mark && a.question.is_none() {
        return false;
    }
    if lang
        .greeting_questions
        .find(words)
        .is_some_and(|m| m.end + 2 >= words.len())
        || lang.word_searches.at(words, a.lead).is_some()
        || lang
            .rhetorical_questions
            .at(words, a.lead)
            .is_some_and(|m| m.end == words.len())
    {
        return false;
    }
    // "what if,", "how did,", "what are the,": abandoned before asking anything.
    let rest = words.len().saturating_sub(a.lead);
    let abandoned = !a.question_mark
        && a.ending.unfinished()
        && rest <= 3
        && words.get(words.len() - 1).is_some_and(|w| {
            lang.auxiliaries.contains(w)
                || lang.wh_words.contains(w)
                || lang.determiners.contains(w)
                || w == "if"
        });
    if abandoned {
        return false;
    }
    let speaks_of_you = words
        .iter()
        .any(|w| language::is_you(w) || matches!(w, "ya" | "y'all"));
    let about_oneself = !speaks_of_you
        && !words.iter().any(|w| lang.offer_verbs.contains(w))
        && a.words
            .pairs_from(a.lead)
            .take(3)
            .any(|(aux, subject)| lang.auxiliaries.contains(aux) && matches!(subject, "i" | "we"));
    !(a.question == Some(QuestionForm::Wh) && about_oneself)
}

impl Detector for QuestionDetector {
    fn speakers(&self) -> Speakers {
        Speakers::AgentOrUnknown
    }

    fn detect(&self, utterance: &Segment, context: &Context<'_>, found: &mut Vec<Detection>) {
        let a = &utterance.analysis;
        // "Really?", "Do you?", "Is it?": backchannel questions acknowledge, they do not ask.
        // "Sorry, what?" asks to repeat: a clarifying question, not an open or closed one.
        if context.cues.acknowledgement || context.cues.non_understanding {
            return;
        }
        if let Some((kind, confidence)) = classify(a, context.profile.lang()) {
            found.push(Detection::words(
                kind,
                confidence,
                utterance,
                a.lead,
                a.words.len(),
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{kinds, run_text, voice};
    use super::*;
    use crate::engine::event::Role;

    fn kind_of(text: &str) -> Vec<Behaviour> {
        let found = run_text(&voice(), &[(Role::Agent, text)]);
        kinds(&found[0])
            .into_iter()
            .filter(|b| matches!(b, Behaviour::OpenQuestion | Behaviour::ClosedQuestion))
            .collect()
    }

    #[test]
    fn open_questions_invite_elaboration_with_or_without_a_question_mark() {
        for text in [
            "what happened when you tried to log in",
            "so uh how does it behave when it drops",
            "tell me about the problem",
            "can you walk me through what you did",
            "why do you think that is",
            "what have you tried so far",
            "How about you?",
            "what else is going on with the account",
            // the question's form in a later clause, after a condition or a name
            "So, if you did decide to change it, how would you go about that?",
            "Sandra, can you give me an example of a time it happened?",
            // stuttered as transcribers write it
            "Okay, and-and why would you want to make this change?",
            "Wha-wha-what do you think made them leave?",
            "Hmm. So, who else could you ask to help you?",
            // yes/no in form, asking for an opinion; a topic handed over
            "do you have any thoughts on the new plan",
            "How about Pink Floyd?",
            "what about your other account",
            // a question about oneself that still addresses the other: an offer
            "how can I help today",
            // a copula ending a clause about a noun, not a pseudo-cleft
            "what's the reason the payment is late",
            "How are you doing with the new router?",
            // "what" asking for a cause, or for a list of the other's own
            "What makes it uncomfortable?",
            "what brought you in today",
            "what got in the way last time",
            "What questions do you still have for me?",
            "so what steps could you take before the move",
            "tell me something about that",
        ] {
            assert_eq!(kind_of(text), [Behaviour::OpenQuestion], "{text}");
        }
    }

    #[test]
    fn closed_questions_take_a_yes_no_or_one_fact_even_when_they_start_with_what() {
        for text in [
            "did you restart it",
            "is it plugged in",
            "what's your account number",
            "what is your date of birth",
            "how many times has it happened",
            "which router do you have",
            "when did it start",
            "it's the blue one isn't it",
            // a positive tag after a negative clause, with or without a question mark
            "it hasn't arrived yet, has it.",
            "you didn't get the email, did you",
            "You've tried that already?",
            // an offer to accept or not
            "how about Tuesday at ten",
            "what about the blue one",
            "how about I send you a new one",
            // "what" before a noun asking one fact stays closed
            "what time does the engineer come",
            "what model is it?",
        ] {
            assert_eq!(kind_of(text), [Behaviour::ClosedQuestion], "{text}");
        }
    }

    #[test]
    fn statements_are_not_questions() {
        for text in [
            "what you need to do is restart it",
            "when I was at home it worked",
            "how nice",
            "what a shame",
            "I can do that for you",
            // agreeing with a negative, not a tag
            "I don't like it either, neither do I",
            "I don't know where they are",
            "I didn't do it.",
            "",
            // not asking the other party: greetings, memory searches, rhetoric, self-talk
            "Hi, how are you doing today?",
            "How you doing, Howard?",
            "what's the word I'm looking for",
            "oh what was his name",
            "why bother",
            "what else did I serve with that.",
            "What was I going to say about that,",
            // abandoned before asking; quoted, not asked
            "what if,",
            "how did,",
            "And she said, why are you cutting off the phone?",
            // pseudo-clefts state
            "what's even worse, is they promote them",
            "But what was so fun though is that I had to take my son",
        ] {
            assert!(kind_of(text).is_empty(), "{text}");
        }
    }
}

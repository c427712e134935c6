//! The learned listening layer and start-only timing, through the public engine API: the heads
//! on hand-written contact-centre turns and traps, evidence spans on the sentence that carries a
//! behaviour, and utterances with a start time and no end.

use hearken::engine::*;

fn conversation() -> Conversation {
    Conversation::open(
        Start::default(),
        &Rubric::embedded(),
        InputLimits::default(),
    )
    .unwrap()
}

fn u(id: &str, role: Role, text: &str) -> Utterance {
    Utterance {
        utterance_id: id.into(),
        role,
        text: text.into(),
        ..Default::default()
    }
}

/// The behaviours found in the last utterance of a script, with their evidence text.
fn found(script: &[(Role, &str)]) -> Vec<(Behaviour, String)> {
    let mut c = conversation();
    let mut last = Vec::new();
    for (i, (role, text)) in script.iter().enumerate() {
        let out = c
            .observe(Event::Utterance(u(&format!("u{i}"), *role, text)))
            .unwrap();
        last = out
            .into_iter()
            .filter_map(|e| match e {
                Emitted::Update(up) => Some(up.behaviours),
                _ => None,
            })
            .flatten()
            .map(|d| {
                let span = d.span.map_or(String::new(), |(s, e)| {
                    text.chars()
                        .skip(s as usize)
                        .take((e - s) as usize)
                        .collect()
                });
                (d.behaviour, span)
            })
            .collect();
    }
    last
}

fn has(found: &[(Behaviour, String)], b: Behaviour) -> bool {
    found.iter().any(|(x, _)| *x == b)
}

#[test]
fn a_question_after_an_introduction_is_found_on_its_own_sentence() {
    let f = found(&[(
        Role::Agent,
        "My name is Adam. What seems to be the problem with the router?",
    )]);
    let open = f.iter().find(|(b, _)| *b == Behaviour::OpenQuestion);
    assert_eq!(
        open.map(|(_, s)| s.as_str()),
        Some("What seems to be the problem with the router?"),
        "{f:?}"
    );
    assert!(!has(&f, Behaviour::ClosedQuestion), "{f:?}");
}

#[test]
fn fact_questions_are_closed_whatever_comes_before() {
    for text in [
        "what's your account number",
        "Thanks for holding. Can I take your account number?",
        "how long has this been going on",
    ] {
        let f = found(&[
            (Role::Customer, "my bill is wrong again"),
            (Role::Agent, text),
        ]);
        assert!(has(&f, Behaviour::ClosedQuestion), "{text}: {f:?}");
        assert!(!has(&f, Behaviour::OpenQuestion), "{text}: {f:?}");
    }
}

#[test]
fn a_reflection_after_a_first_sentence_of_something_else_is_found() {
    let f = found(&[
        (
            Role::Customer,
            "My internet keeps dropping out every evening around eight and I've restarted the router five times this week.",
        ),
        (
            Role::Agent,
            "Okay, thanks for bearing with me. So the connection drops most evenings around eight, even after restarting the router.",
        ),
    ]);
    let r = f.iter().find(|(b, _)| *b == Behaviour::Reflection);
    assert_eq!(
        r.map(|(_, s)| s.as_str()),
        Some(
            "So the connection drops most evenings around eight, even after restarting the router."
        ),
        "{f:?}"
    );
}

/// A listening cue from the customer ("mm-hmm") says nothing to reflect: the reflection that
/// follows says back their last turn with substance, and points at it.
#[test]
fn a_reflection_after_the_customers_listening_cue_refers_to_what_they_said() {
    let mut c = conversation();
    let script = [
        (
            Role::Customer,
            "I was charged twice for my phone bill this month and I can't afford that right now.",
        ),
        (Role::Agent, "Let me have a look at the account."),
        (Role::Customer, "Mm-hmm."),
        (
            Role::Agent,
            "So you've been billed twice for the same month, and money is tight.",
        ),
    ];
    let mut related = Vec::new();
    for (i, (role, text)) in script.iter().enumerate() {
        for e in c
            .observe(Event::Utterance(u(&format!("u{i}"), *role, text)))
            .unwrap()
        {
            if let Emitted::Update(up) = e {
                related.extend(
                    up.behaviours
                        .into_iter()
                        .filter(|d| d.behaviour == Behaviour::Reflection)
                        .map(|d| (i, d.related_utterance_ids)),
                );
            }
        }
    }
    assert_eq!(related, [(3, vec!["u0".to_string()])]);
}

#[test]
fn traps_clarifying_is_not_a_question_type_and_empathy_is_not_a_reflection() {
    let f = found(&[
        (
            Role::Customer,
            "i've been without a proper connection for a week",
        ),
        (Role::Agent, "I'm sorry, what?"),
    ]);
    assert!(has(&f, Behaviour::ClarifyingQuestion), "{f:?}");
    assert!(
        !has(&f, Behaviour::OpenQuestion) && !has(&f, Behaviour::ClosedQuestion),
        "{f:?}"
    );
    assert!(!has(&f, Behaviour::Empathy), "{f:?}");
    let f = found(&[
        (
            Role::Customer,
            "i said i've been without a proper connection for a week",
        ),
        (Role::Agent, "i understand that must be really stressful"),
    ]);
    assert!(has(&f, Behaviour::Empathy), "{f:?}");
    assert!(!has(&f, Behaviour::Reflection), "{f:?}");
}

#[test]
fn statements_and_instructions_are_neither_questions_nor_reflections() {
    for text in [
        "I've started a refund for the duplicate payment.",
        "Could you unplug it and plug it back in firmly, then wait two minutes.",
        "Your policy includes a courtesy car so I'll arrange one.",
    ] {
        let f = found(&[
            (Role::Customer, "the router light is orange"),
            (Role::Agent, text),
        ]);
        assert!(
            !has(&f, Behaviour::OpenQuestion) && !has(&f, Behaviour::Reflection),
            "{text}: {f:?}"
        );
    }
}

#[test]
fn the_customer_asking_is_not_the_agent_asking() {
    let f = found(&[(
        Role::Customer,
        "So what are you going to do about it? How long will it take?",
    )]);
    assert!(
        !has(&f, Behaviour::OpenQuestion) && !has(&f, Behaviour::ClosedQuestion),
        "{f:?}"
    );
}

/// The bits of every confidence and score of a short call, folded into one number (FNV-1a).
fn digest_of_call() -> u64 {
    let script = [
        (
            Role::Customer,
            "I was charged twice this month and I can't afford that right now.",
        ),
        (
            Role::Agent,
            "I'm sorry. So you've been billed twice and that's a strain. How did you notice?",
        ),
        // Turns the heads decide (their probabilities are the confidences), so the pin
        // follows the model's weights too, not only the rules.
        (
            Role::Customer,
            "the app logs me out every single time I open it and I lose my basket",
        ),
        (
            Role::Agent,
            "Every time you open it, it throws you out and the basket is gone.",
        ),
        (Role::Customer, "yes and it started after the update"),
        (
            Role::Agent,
            "Right. And what else changed on the phone around then?",
        ),
    ];
    let mut c = conversation();
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut fold = |bits: u64| {
        for b in bits.to_le_bytes() {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
    };
    for (i, (role, text)) in script.iter().enumerate() {
        for e in c
            .observe(Event::Utterance(u(&format!("u{i}"), *role, text)))
            .unwrap()
        {
            if let Emitted::Update(up) = e {
                for d in &up.behaviours {
                    fold(d.behaviour as u64);
                    fold(u64::from(d.confidence.to_bits()));
                }
                fold(up.score.overall.to_bits());
            }
        }
    }
    h
}

/// Same bits run after run and machine after machine: the digest is pinned. It changes when the
/// embedded model is rebuilt or the engine's arithmetic changes (then pin the new value, saying
/// why in the commit); it must never change between machines or runs.
#[test]
fn the_same_turns_give_the_same_bits() {
    assert_eq!(digest_of_call(), digest_of_call());
    assert_eq!(digest_of_call(), PINNED_DIGEST, "{:#x}", digest_of_call());
}

const PINNED_DIGEST: u64 = 0xf220_f431_ccc9_6d94;

#[test]
fn start_only_timing_is_scored_and_said_to_be_partial() {
    let s = |id: &str, role, start: i64, text: &str| Utterance {
        start_ms: Some(start),
        ..u(id, role, text)
    };
    let scored = score_events(
        conversation(),
        transcript_events(
            vec![
                s(
                    "1",
                    Role::Customer,
                    0,
                    "My order never arrived and I need it for tomorrow.",
                ),
                s(
                    "2",
                    Role::Agent,
                    5_000,
                    "I'm sorry to hear that. What happened when you tracked it?",
                ),
                s(
                    "3",
                    Role::Customer,
                    9_000,
                    "It says delivered but nothing came.",
                ),
            ],
            vec![],
            End::default(),
        ),
    );
    assert!(scored.rejections.is_empty(), "{:?}", scored.rejections);
    let m = &scored.scorecard.metrics;
    assert_eq!(m.start_only_utterances, 3);
    assert_eq!(m.utterances, 3);
    assert_eq!((m.agent_talk_ms, m.interruptions, m.overtalk_ms), (0, 0, 0));
    assert_eq!(m.open_questions, 1, "language behaviours are scored");
    // An end without a start is still refused.
    let mut c = conversation();
    let r = c
        .observe(Event::Utterance(Utterance {
            end_ms: Some(10),
            ..u("x", Role::Agent, "hi")
        }))
        .unwrap_err();
    assert_eq!(r.field, "utterance.start_ms");
}

#[test]
fn the_live_score_does_not_move_on_the_customers_turn() {
    let mut c = conversation();
    let score = |out: Vec<Emitted>| {
        out.into_iter()
            .find_map(|e| match e {
                Emitted::Update(up) => Some(up.score.overall),
                _ => None,
            })
            .unwrap()
    };
    let a = score(
        c.observe(Event::Utterance(u(
            "1",
            Role::Agent,
            "Hello, how can I help?",
        )))
        .unwrap(),
    );
    let b = score(
        c.observe(Event::Utterance(u(
            "2",
            Role::Customer,
            "This is ridiculous, I'm furious, I've called four times and nobody helps!",
        )))
        .unwrap(),
    );
    assert_eq!(
        a, b,
        "the customer's anger alone does not move the agent's score"
    );
    let after = score(
        c.observe(Event::Utterance(u(
            "3",
            Role::Agent,
            "Calm down, that's not my problem.",
        )))
        .unwrap(),
    );
    assert!(after < b, "the agent's answer moves it: {b} -> {after}");
}

#[test]
fn the_customer_saying_they_were_cut_off_or_repeating_is_heard_in_the_words() {
    let f = found(&[
        (
            Role::Customer,
            "I've been waiting three weeks for my refund and every time someone",
        ),
        (Role::Agent, "What's your order number?"),
        (
            Role::Customer,
            "Can I just finish? Every time they promise and nothing happens.",
        ),
    ]);
    assert!(has(&f, Behaviour::Interruption), "{f:?}");
    let f = found(&[
        (Role::Customer, "The router light is orange."),
        (Role::Agent, "Have you restarted it?"),
        (
            Role::Customer,
            "That's what I'm telling you, it's orange and I restarted it.",
        ),
    ]);
    assert!(has(&f, Behaviour::CustomerRepeat), "{f:?}");
}

#[test]
fn dismissive_language_raises_an_alert() {
    let mut c = conversation();
    c.observe(Event::Utterance(u(
        "1",
        Role::Customer,
        "This is the third time my internet has gone down this month!",
    )))
    .unwrap();
    let out = c
        .observe(Event::Utterance(u(
            "2",
            Role::Agent,
            "Calm down, that's not my problem.",
        )))
        .unwrap();
    assert!(
        out.iter()
            .any(|e| matches!(e, Emitted::Alert(a) if a.kind == AlertKind::DismissiveLanguage)),
        "{out:?}"
    );
}

#[test]
fn a_reflective_opening_with_the_customers_words_is_a_reflection_whatever_the_head_says() {
    for (customer, agent) in [
        (
            "My flight to Madrid was cancelled this morning and I've got a wedding there on Saturday.",
            "So your flight's been cancelled and you need to be in Madrid before Saturday.",
        ),
        (
            "my flight to madrid was cancelled this morning and i've got a wedding there on saturday",
            "so your flight's been cancelled and you need to be in madrid before saturday",
        ),
    ] {
        let f = found(&[(Role::Customer, customer), (Role::Agent, agent)]);
        assert!(has(&f, Behaviour::Reflection), "{agent}: {f:?}");
    }
}

/// A sentence that opens reflectively with the customer's words is a reflection in a turn that
/// also asks (the question heads judge the question; the reflection keeps its own sentence).
#[test]
fn a_reflection_beside_a_question_in_one_turn_is_found_on_its_sentence() {
    let f = found(&[
        (
            Role::Customer,
            "Hi, I ordered a kettle last week and you billed my card twice for the same order.",
        ),
        (
            Role::Agent,
            "I'm sorry. So you've been billed twice for the one kettle order. What happened when you called before?",
        ),
    ]);
    let span = |b: Behaviour| f.iter().find(|(x, _)| *x == b).map(|(_, s)| s.as_str());
    assert_eq!(
        span(Behaviour::Reflection),
        Some("So you've been billed twice for the one kettle order."),
        "{f:?}"
    );
    assert_eq!(
        span(Behaviour::OpenQuestion),
        Some("What happened when you called before?"),
        "{f:?}"
    );
    // Not when the sentence only opens reflectively and says nothing of theirs back.
    let f = found(&[
        (
            Role::Customer,
            "Hi, I ordered a kettle last week and you billed my card twice for the same order.",
        ),
        (
            Role::Agent,
            "I'm sorry. So you're calling today. What happened when you called before?",
        ),
    ]);
    assert!(!has(&f, Behaviour::Reflection), "{f:?}");
}

/// Without punctuation, a turn that says back and then asks with an open form ("so tell me
/// how…") is open: in a multi-sentence turn whose question sentences the rules all read as
/// open, the head may decide that it asks but not make it closed.
#[test]
fn an_open_request_after_saying_back_stays_open_without_punctuation() {
    let f = found(&[
        (
            Role::Customer,
            "the trainers i ordered came in the wrong size i ordered a nine and got a seven",
        ),
        (
            Role::Agent,
            "right so you ordered a size nine and we sent you a seven so tell me how you'd like to sort it out",
        ),
    ]);
    assert!(has(&f, Behaviour::OpenQuestion), "{f:?}");
    assert!(!has(&f, Behaviour::ClosedQuestion), "{f:?}");
    assert!(has(&f, Behaviour::Reflection), "{f:?}");
}

/// The final metrics and empathy score of a call where the customer shows emotion and the
/// agent answers with `answer`.
fn emotion_answered_with(answer: &str) -> (Metrics, f64, usize) {
    let mut c = conversation();
    let script = [
        (
            Role::Customer,
            "I'm really upset, my card was charged twice for the same order and now I can't pay my rent this week.",
        ),
        (Role::Agent, answer),
        (Role::Customer, "Yes."),
        (Role::Agent, "Let me look at the order now."),
    ];
    for (i, (role, text)) in script.iter().enumerate() {
        c.observe(Event::Utterance(u(&format!("u{i}"), *role, text)))
            .unwrap();
    }
    let card = c
        .observe(Event::End(End::default(), EndReason::Completed))
        .unwrap()
        .into_iter()
        .find_map(|e| match e {
            Emitted::Scorecard(card) => Some(card),
            _ => None,
        })
        .unwrap();
    let missed = card
        .alerts
        .iter()
        .filter(|a| a.kind == AlertKind::EmpathyMissed)
        .count();
    let empathy = card.score.component(Component::Empathy).score;
    (card.metrics, empathy, missed)
}

#[test]
fn emotion_said_back_earns_part_of_the_empathy_that_naming_it_earns() {
    let (named, named_score, named_missed) =
        emotion_answered_with("I'm so sorry, that must be really stressful.");
    let (said_back, said_back_score, said_back_missed) = emotion_answered_with(
        "So you were charged twice for the one order and that's left you short for the rent.",
    );
    let (ignored, ignored_score, ignored_missed) =
        emotion_answered_with("What's the order number?");
    assert_eq!(
        (
            named.emotion_answered,
            named.emotion_reflected,
            named_missed
        ),
        (1, 0, 0)
    );
    assert_eq!(
        (
            said_back.emotion_answered,
            said_back.emotion_reflected,
            said_back_missed
        ),
        (0, 1, 0)
    );
    assert_eq!(
        (
            ignored.emotion_answered,
            ignored.emotion_reflected,
            ignored_missed
        ),
        (0, 0, 1)
    );
    assert!(
        named_score > said_back_score && said_back_score > ignored_score,
        "{named_score} > {said_back_score} > {ignored_score}"
    );
}

/// In a turn of several sentences the heads decide, but a question the rules read as open
/// stays found, and stays open.
#[test]
fn an_open_request_after_a_first_sentence_stays_open() {
    for agent in [
        "Okay. Tell me a little bit about your family.",
        "Right, thanks for that. And can I ask you, how is all of this affecting you day to day?",
        "okay so tell me how you've been managing since the last bill",
    ] {
        let f = found(&[
            (
                Role::Customer,
                "It's been a hard few months, the bills keep coming and I don't know where to start.",
            ),
            (Role::Agent, agent),
        ]);
        assert!(
            has(&f, Behaviour::OpenQuestion) && !has(&f, Behaviour::ClosedQuestion),
            "{agent}: {f:?}"
        );
    }
}

/// Support conversations (#28): a reflection says back what the customer said; advice, an
/// appraisal or a story of one's own is not one, however many of their words it repeats; a
/// reflection followed by a question is both.
#[test]
fn suggestions_appraisals_and_stories_are_not_reflections_and_a_reflection_before_a_question_is_both()
 {
    let customer = "I keep failing the tests at work and my boss is getting angry with me.";
    for agent in [
        "Try and find new music to listen to while you study for the tests.",
        "That is a great idea! Keep studying for the tests at work.",
        "I failed tests at work too when my boss was angry with me.",
        "A lot of people fail tests at work when a boss gets angry.",
    ] {
        let f = found(&[(Role::Customer, customer), (Role::Agent, agent)]);
        assert!(!has(&f, Behaviour::Reflection), "{agent}: {f:?}");
    }
    let f = found(&[
        (
            Role::Customer,
            "I lost my job last month and I don't know if anyone will hire me.",
        ),
        (
            Role::Agent,
            "It sounds like you're worried about your skillset. Is there any way you can improve it?",
        ),
    ]);
    assert!(has(&f, Behaviour::Reflection), "{f:?}");
    assert!(has(&f, Behaviour::ClosedQuestion), "{f:?}");
}

/// Empathy as customers hear it (#28): an apology for their trouble, their feeling named,
/// reassurance; not a courtesy and not an apology for a procedure.
#[test]
fn apologies_for_the_trouble_are_empathy_and_courtesies_and_procedures_are_not() {
    let customer = "I've tried three times and the book still won't open, I'm really fed up.";
    for agent in [
        "We deeply apologize for this inconvenience.",
        "Don't worry, I'm here to help you.",
        "I can tell this is really hurting you a lot.",
    ] {
        let f = found(&[(Role::Customer, customer), (Role::Agent, agent)]);
        assert!(has(&f, Behaviour::Empathy), "{agent}: {f:?}");
    }
    for agent in [
        "You're welcome.",
        "Thanks for your patience.",
        "I am sorry, due to quality purposes I will have to close this chat.",
    ] {
        let f = found(&[(Role::Customer, customer), (Role::Agent, agent)]);
        assert!(!has(&f, Behaviour::Empathy), "{agent}: {f:?}");
    }
}

/// Dismissive language in context (#28): negation and reassurance are not dismissive.
#[test]
fn negated_and_reassuring_phrases_are_not_dismissive() {
    let customer = "I feel like it was all my fault and I just can't relax.";
    for agent in [
        "It is not your fault.",
        "Don't worry about it, you can relax now.",
        "Deep breaths can help people calm down.",
    ] {
        let f = found(&[(Role::Customer, customer), (Role::Agent, agent)]);
        assert!(!has(&f, Behaviour::DismissiveLanguage), "{agent}: {f:?}");
    }
    for agent in ["Calm down.", "Whatever.", "That's not my problem."] {
        let f = found(&[(Role::Customer, customer), (Role::Agent, agent)]);
        assert!(has(&f, Behaviour::DismissiveLanguage), "{agent}: {f:?}");
    }
}

/// Support chats (#28): reassurance, praise, information, a closing courtesy or a story of
/// one's own in reply to a worried customer is not a reflection; saying back their situation or
/// their fear is.
#[test]
fn reassurance_information_and_courtesy_in_a_support_chat_are_not_reflections() {
    let customer = "I lost my job last week and I'm scared I won't find another one.";
    for agent in [
        "You are stronger than you think, and you will find something soon.",
        "It was my pleasure.",
        "I went through a layoff last year and it took me two months to find work.",
        "Update your CV and ask your old colleagues if they know of any openings.",
        "Job centres offer free help with applications and interviews.",
    ] {
        let f = found(&[(Role::Customer, customer), (Role::Agent, agent)]);
        assert!(!has(&f, Behaviour::Reflection), "{agent}: {f:?}");
    }
    for agent in [
        "So losing the job has left you frightened about what comes next.",
        "You're scared that nobody will hire you after losing this job.",
    ] {
        let f = found(&[(Role::Customer, customer), (Role::Agent, agent)]);
        assert!(has(&f, Behaviour::Reflection), "{agent}: {f:?}");
    }
}

//! Properties the design promises, through the public engine API: determinism, partial
//! supersession, scores in range, interval maths bounded by the span of speech.

use hearken::engine::*;
use proptest::prelude::*;

fn role() -> impl Strategy<Value = Role> {
    prop_oneof![Just(Role::Agent), Just(Role::Customer), Just(Role::Other)]
}

fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("mm-hmm".to_string()),
        Just("i see".to_string()),
        Just("okay so what you need to do is restart it".to_string()),
        Just("my internet keeps dropping every evening and i work from home".to_string()),
        "[a-z ]{0,40}",
    ]
}

/// Utterances with random (overlapping, out-of-order) timings, some partial, some untimed.
fn utterances() -> impl Strategy<Value = Vec<Utterance>> {
    prop::collection::vec(
        (
            role(),
            text(),
            0i64..120_000,
            0i64..20_000,
            prop::bool::weighted(0.1),
            prop::bool::weighted(0.1),
        ),
        0..40,
    )
    .prop_map(|items| {
        items
            .into_iter()
            .enumerate()
            .map(
                |(i, (role, text, start, len, partial, untimed))| Utterance {
                    utterance_id: format!("u{}", if partial { i + 1000 } else { i }),
                    role,
                    text,
                    start_ms: (!untimed).then_some(start),
                    end_ms: (!untimed).then_some(start + len),
                    partial,
                    ..Default::default()
                },
            )
            .collect()
    })
}

fn rubric() -> Rubric {
    // Loading the rubric dominates a property case; load it once per test thread.
    thread_local!(static RUBRIC: Rubric = Rubric::embedded());
    RUBRIC.with(Rubric::clone)
}

fn conversation() -> Conversation {
    Conversation::open(Start::default(), &rubric(), InputLimits::default()).unwrap()
}

fn run(utterances: &[Utterance]) -> Scored {
    score_events(
        conversation(),
        transcript_events(utterances.to_vec(), vec![], End::default()),
    )
}

/// The same on a call known to raise many alerts, so the property above is not vacuous.
#[test]
fn scorecard_alerts_are_the_streamed_alerts_on_a_long_call() {
    let scored = run(&hearken::samples::long_call(20));
    assert!(scored.alerts.len() > 20, "{} alerts", scored.alerts.len());
    assert_eq!(scored.scorecard.alerts, scored.alerts);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    /// The same events in the same order give the same outputs, field for field.
    #[test]
    fn same_events_give_the_same_outputs(us in utterances()) {
        prop_assert_eq!(run(&us), run(&us));
    }

    /// The scorecard lists exactly the alerts streamed during the call, in order (the
    /// conversation keeps a compact record of each and rebuilds it for the scorecard).
    #[test]
    fn scorecard_alerts_are_the_streamed_alerts(us in utterances()) {
        let scored = run(&us);
        prop_assert_eq!(&scored.scorecard.alerts, &scored.alerts);
    }

    /// A partial followed by its final scores exactly like the final alone.
    #[test]
    fn partial_then_final_equals_final_alone(us in utterances()) {
        let finals: Vec<Utterance> = us.iter().filter(|u| !u.partial).cloned().collect();
        let with_partials: Vec<Utterance> = finals
            .iter()
            .flat_map(|u| {
                let partial = Utterance { partial: true, text: u.text.chars().take(5).collect(), ..u.clone() };
                [partial, u.clone()]
            })
            .collect();
        let a = run(&finals);
        let b = run(&with_partials);
        prop_assert_eq!(a.scorecard, b.scorecard);
        prop_assert_eq!(a.alerts, b.alerts);
    }

    /// Scores stay in 0–100, confidences in 0–1, talk times within the span of speech, and
    /// overtalk within each role's talk time.
    #[test]
    fn scores_and_times_stay_in_range(us in utterances()) {
        let scored = run(&us);
        let spans: Vec<(i64, i64)> = us.iter().filter(|u| !u.partial).filter_map(Utterance::interval).collect();
        let span = spans.iter().map(|s| s.1).max().unwrap_or(0) - spans.iter().map(|s| s.0).min().unwrap_or(0);
        for u in &scored.timeline {
            prop_assert!((0.0..=100.0).contains(&u.score.overall));
            prop_assert!((0.0..=1.0).contains(&u.score.confidence));
            for c in &u.score.components {
                prop_assert!((0.0..=100.0).contains(&c.score) && (0.0..=1.0).contains(&c.confidence));
            }
        }
        let m = &scored.scorecard.metrics;
        prop_assert!(m.agent_talk_ms <= span && m.customer_talk_ms <= span);
        prop_assert!(m.overtalk_ms <= m.agent_talk_ms.min(m.customer_talk_ms));
        prop_assert!(m.cut_offs <= m.interruptions);
    }
}

#[test]
fn talk_time_counts_overlapping_utterances_of_one_role_once() {
    let u = |id: &str, start, end| Utterance {
        utterance_id: id.into(),
        role: Role::Customer,
        text: "words here".into(),
        start_ms: Some(start),
        end_ms: Some(end),
        ..Default::default()
    };
    let scored = run(&[u("a", 0, 5_000), u("b", 3_000, 8_000), u("c", 7_000, 7_500)]);
    assert_eq!(scored.scorecard.metrics.customer_talk_ms, 8_000);
}

#[test]
fn utterances_without_timing_are_scored_by_words_and_raise_no_timing_alerts() {
    let u = |id: &str, role, text: &str| Utterance {
        utterance_id: id.into(),
        role,
        text: text.into(),
        ..Default::default()
    };
    let scored = run(&[
        u(
            "1",
            Role::Customer,
            "my order never arrived and I need it for tomorrow",
        ),
        u(
            "2",
            Role::Agent,
            "I'm sorry to hear that, let me check the tracking for you",
        ),
        u("3", Role::Customer, "thanks"),
    ]);
    let m = &scored.scorecard.metrics;
    assert_eq!(
        (m.agent_talk_ms, m.customer_talk_ms, m.interruptions),
        (0, 0, 0)
    );
    assert!(scored.alerts.is_empty());
    assert!(
        scored
            .scorecard
            .score
            .components
            .iter()
            .any(|c| c.confidence > 0.0),
        "talk balance measured in words"
    );
}

#[test]
fn an_utterance_after_end_is_rejected_and_input_limits_hold() {
    let mut c = conversation();
    let too_long = Utterance {
        utterance_id: "u".into(),
        text: "x".repeat(16_385),
        ..Default::default()
    };
    let r = c.observe(Event::Utterance(too_long)).unwrap_err();
    assert_eq!(
        (r.reason, r.field),
        (RejectReason::TooLong, "utterance.text")
    );
    let at_limit = Utterance {
        utterance_id: "u".into(),
        text: "x".repeat(16_384),
        ..Default::default()
    };
    assert!(c.observe(Event::Utterance(at_limit)).is_ok());
    let late = Utterance {
        utterance_id: "v".into(),
        start_ms: Some(0),
        end_ms: Some(86_400_001),
        ..Default::default()
    };
    assert_eq!(
        c.observe(Event::Utterance(late)).unwrap_err().reason,
        RejectReason::OffsetOutOfRange
    );
    let id_257 = Utterance {
        utterance_id: "i".repeat(257),
        ..Default::default()
    };
    let r = c.observe(Event::Utterance(id_257)).unwrap_err();
    assert_eq!((r.field, r.utterance_id), ("utterance.utterance_id", None));
    let id_256 = Utterance {
        utterance_id: "i".repeat(256),
        ..Default::default()
    };
    assert!(c.observe(Event::Utterance(id_256)).is_ok());
    c.observe(Event::End(End::default(), EndReason::Completed))
        .unwrap();
    let after = Utterance {
        utterance_id: "w".into(),
        ..Default::default()
    };
    assert_eq!(
        c.observe(Event::Utterance(after)).unwrap_err().reason,
        RejectReason::ConversationEnded
    );
}

#[test]
fn utterances_beyond_the_cap_are_rejected() {
    let limits = InputLimits {
        max_utterances: 50,
        ..InputLimits::default()
    };
    let mut c = Conversation::open(Start::default(), &rubric(), limits).unwrap();
    for i in 0..60 {
        let u = Utterance {
            utterance_id: format!("u{i}"),
            role: Role::Customer,
            text: "hello".into(),
            start_ms: Some(i * 1000),
            end_ms: Some(i * 1000 + 800),
            ..Default::default()
        };
        let r = c.observe(Event::Utterance(u));
        assert_eq!(r.is_ok(), i < 50, "utterance {i}");
        if i >= 50 {
            assert_eq!(r.unwrap_err().reason, RejectReason::TooManyUtterances);
        }
    }
}

#[test]
fn holds_must_pair_up() {
    let mut c = conversation();
    let hold = |kind, offset_ms| Event::Signal(Signal { kind, offset_ms });
    assert_eq!(
        c.observe(hold(SignalKind::HoldEnded, 10))
            .unwrap_err()
            .reason,
        RejectReason::HoldConflict
    );
    assert!(
        c.observe(hold(SignalKind::HoldStarted, 10))
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        c.observe(hold(SignalKind::HoldStarted, 20))
            .unwrap_err()
            .reason,
        RejectReason::HoldConflict
    );
    assert!(c.observe(hold(SignalKind::HoldEnded, 30)).is_ok());
}

//! The role-play suite (`tests/fixtures/roleplay.jsonl`): eight situations from the training
//! material behind the rubric, each handled well and handled poorly. The well-handled call must
//! score higher overall and on every component where the two differ, the poor call must raise
//! the alerts its faults call for, and the good call must raise none of them.

use std::collections::BTreeMap;

use hearken::engine::*;

/// Situation → (components the good call must win, alerts the poor call must raise).
const EXPECTED: &[(&str, &[Component], &[AlertKind])] = {
    use AlertKind as A;
    use Component as C;
    &[
        (
            "angry-customer",
            &[C::Patience, C::Empathy, C::CustomerExperience],
            &[
                A::Interruption,
                A::EscalationRisk,
                A::CustomerRepeating,
                A::PrematureSolution,
                A::ClosedQuestionStreak,
                A::EmpathyMissed,
            ],
        ),
        (
            "confused-customer",
            &[C::Inquiry, C::Understanding, C::Acknowledgement],
            &[A::PrematureSolution, A::Interruption],
        ),
        (
            "chatty-customer",
            &[C::Inquiry, C::CustomerExperience, C::Acknowledgement],
            &[
                A::SideIssueDropped,
                A::ClosedQuestionStreak,
                A::Interruption,
            ],
        ),
        (
            "faulty-product",
            &[C::Understanding, C::Empathy, C::Patience],
            &[A::PrematureSolution, A::Interruption, A::EmpathyMissed],
        ),
        (
            "website-navigation",
            &[C::Inquiry, C::Understanding, C::CustomerExperience],
            &[
                A::ClosedQuestionStreak,
                A::CustomerRepeating,
                A::Interruption,
            ],
        ),
        (
            "needs-to-vent",
            &[C::Patience, C::Empathy, C::CustomerExperience],
            &[A::Interruption, A::EscalationRisk, A::EmpathyMissed],
        ),
        (
            "billing-complaint",
            &[C::Understanding, C::Empathy, C::Patience],
            &[A::Interruption, A::EscalationRisk],
        ),
        (
            "delivery-delay",
            &[C::Empathy, C::Understanding, C::Patience],
            &[A::Interruption, A::PrematureSolution],
        ),
    ]
};

fn scorecards() -> BTreeMap<String, Scorecard> {
    let rubric = Rubric::embedded();
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/roleplay.jsonl"
    ))
    .unwrap();
    hearken::transcript::Reader::new(text.as_bytes())
        .map(|t| {
            let t = t.unwrap();
            let conversation =
                Conversation::open(t.start.clone(), &rubric, InputLimits::default()).unwrap();
            let scored = score_events(
                conversation,
                transcript_events(t.utterances, t.signals, End::default()),
            );
            assert!(
                scored.rejections.is_empty(),
                "{}: {:?}",
                t.conversation_id,
                scored.rejections
            );
            (t.conversation_id, scored.scorecard)
        })
        .collect()
}

#[test]
fn every_well_handled_call_outscores_its_poorly_handled_twin() {
    let cards = scorecards();
    assert_eq!(cards.len(), 2 * EXPECTED.len());
    for (situation, components, _) in EXPECTED {
        let good = &cards[&format!("rp-{situation}-good")];
        let poor = &cards[&format!("rp-{situation}-poor")];
        assert!(
            good.score.overall > poor.score.overall + 5.0,
            "{situation}: overall {:.1} vs {:.1}",
            good.score.overall,
            poor.score.overall
        );
        for c in *components {
            let (g, p) = (good.score.component(*c), poor.score.component(*c));
            assert!(
                g.score > p.score,
                "{situation}: {c:?} {:.1} (confidence {:.2}) vs {:.1} (confidence {:.2})",
                g.score,
                g.confidence,
                p.score,
                p.confidence
            );
        }
    }
}

#[test]
fn the_poor_calls_raise_the_alerts_their_faults_call_for_and_the_good_ones_none() {
    let cards = scorecards();
    for (situation, _, alerts) in EXPECTED {
        let good = &cards[&format!("rp-{situation}-good")];
        let poor = &cards[&format!("rp-{situation}-poor")];
        let raised: Vec<AlertKind> = poor.alerts.iter().map(|a| a.kind).collect();
        for kind in *alerts {
            assert!(
                raised.contains(kind),
                "{situation}: poor call lacks {kind:?}; raised {raised:?}"
            );
        }
        assert!(
            good.alerts.is_empty(),
            "{situation}: good call raised {:?}",
            good.alerts.iter().map(|a| a.kind).collect::<Vec<_>>()
        );
        // Each alert names its evidence, and each coaching point of the poor call too.
        for a in &poor.alerts {
            assert!(
                !a.evidence_utterance_ids.is_empty() && !a.coaching_tip.is_empty(),
                "{situation}: {a:?}"
            );
        }
        assert!(
            !poor.coaching.is_empty() && poor.coaching.len() <= 3,
            "{situation}: {:?}",
            poor.coaching
        );
        assert!(
            !good.strengths.is_empty(),
            "{situation}: the good call has strengths"
        );
    }
}

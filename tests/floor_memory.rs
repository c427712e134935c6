//! What the floor page holds per conversation, counted by the allocator (not RSS, so the
//! figure is exact and the same on every machine): a 300-utterance call with behaviours on
//! every utterance and an alert every 20, with the default `--ui-history`, with and without
//! `--ui-show-text`, with short and with the longest texts the service accepts. The bounds
//! asserted are the ones `docs/operations.md` ("Memory") and `docs/ui.md` give.

use std::alloc::System;
use std::sync::Arc;

use hearken::floor::{Floor, FloorConfig};
use hearken::proto::v1::*;
use stats_alloc::{INSTRUMENTED_SYSTEM, StatsAlloc};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

/// Bytes allocated and not freed so far (stats_alloc folds reallocations into both counts).
fn live() -> isize {
    let s = GLOBAL.stats();
    s.bytes_allocated as isize - s.bytes_deallocated as isize
}

const CALLS: usize = 50;
const UTTERANCES: usize = 300;

/// Bytes held per conversation once `CALLS` calls of `UTTERANCES` utterances of `text_len`
/// bytes are on the floor.
fn per_call(show_text: bool, text_len: usize) -> usize {
    let floor = Floor::new(
        FloorConfig {
            show_text,
            ..FloorConfig::default()
        },
        Arc::new(hearken::telemetry::Metrics::noop()),
    );
    let text: String = "my bill went up again and nobody told me why "
        .chars()
        .cycle()
        .take(text_len)
        .collect();
    let before = live();
    let mut handles = Vec::new();
    for c in 0..CALLS {
        let mut start = ConversationStart::default();
        start
            .metadata
            .insert("agent".into(), format!("agent-{c:04}"));
        start.metadata.insert("queue".into(), "billing".into());
        let handle = floor.open(&format!("call-{c:06}"), None, &start);
        for i in 0..UTTERANCES {
            let id = format!("utt-{i:05}");
            handle.utterance(&hearken::engine::Utterance {
                utterance_id: id.clone(),
                role: if i % 2 == 0 {
                    hearken::engine::Role::Customer
                } else {
                    hearken::engine::Role::Agent
                },
                participant_id: None,
                text: text.clone(),
                start_ms: Some(i as i64 * 4_000),
                end_ms: Some(i as i64 * 4_000 + 3_000),
                partial: false,
                confidence: None,
            });
            handle.update(&ScoreUpdate {
                utterance_id: id.clone(),
                score: Some(Score {
                    overall: 70.0,
                    confidence: 0.5,
                    components: (1..=7)
                        .map(|k| ComponentScore {
                            component: k,
                            score: 60.0,
                            confidence: 0.4,
                            weight: 1.0,
                        })
                        .collect(),
                }),
                customer: Some(CustomerState {
                    sentiment: -0.2,
                    frustration: 0.3,
                    ..Default::default()
                }),
                behaviours: (0..2)
                    .map(|b| DetectedBehaviour {
                        behaviour: Behaviour::Acknowledgement as i32 + b,
                        confidence: 0.8,
                        span_start: 0,
                        span_end: (text_len as u32).min(40),
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            });
            if i % 20 == 19 {
                handle.alert(&Alert {
                    alert_id: format!("a-{i}"),
                    kind: AlertKind::Interruption as i32,
                    severity: Severity::Warning as i32,
                    message: "The agent spoke over the customer twice in a minute.".into(),
                    coaching_tip: "Let the customer finish; pause a beat before answering.".into(),
                    evidence_utterance_ids: vec![id.clone()],
                    ..Default::default()
                });
            }
        }
        // What the call told, applied (the aggregator's work), and the row as the page serves
        // it (cached until the call changes).
        floor.settle();
        let _ = floor.rows(None);
        handles.push(handle);
    }
    let held = (live() - before) as usize / CALLS;
    drop(handles);
    held
}

#[test]
fn the_page_holds_a_bounded_amount_per_conversation_with_and_without_text() {
    let hidden = per_call(false, 120);
    let shown = per_call(true, 120);
    let longest = per_call(true, 16_384);
    eprintln!(
        "per 300-utterance call: text hidden {} KiB; shown, 120-byte utterances {} KiB; shown, 16 KiB utterances {} KiB",
        hidden / 1024,
        shown / 1024,
        longest / 1024
    );
    // docs/operations.md ("Memory"): ≤ 80 KiB per conversation with the default history, and
    // with text shown ≤ 30 KiB more (20 utterances of ≤ 1 KiB, their evidence ≤ 200 bytes).
    assert!(hidden <= 80 * 1024, "text hidden: {hidden} bytes per call");
    assert!(
        shown <= hidden + 30 * 1024,
        "text shown: {shown} bytes per call"
    );
    assert!(
        longest <= hidden + 30 * 1024,
        "text shown, longest utterances: {longest} bytes per call"
    );
}

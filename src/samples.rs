//! Sample material bundled into the binary.

/// Three fictional contact-centre calls, as a speech recogniser would deliver them (lower case,
/// no punctuation, timings in milliseconds): an attentive agent on a billing query, an agent who
/// interrupts, monologues, talks over the customer and leaves dead air, and a delivery query
/// with a hold and a partial segment superseded by its final. Also in `samples/`.
pub const DEMO_CALLS: &str = include_str!("../samples/demo-calls.jsonl");

/// A long call for benchmarks and measurements: the demo calls' final utterances back to back
/// until about `minutes` minutes, offsets shifted and ids made unique (an hour is about 680
/// utterances).
pub fn long_call(minutes: i64) -> Vec<crate::engine::Utterance> {
    let calls: Vec<_> = crate::transcript::Reader::new(DEMO_CALLS.as_bytes())
        .filter_map(Result::ok)
        .collect();
    let mut out = Vec::new();
    let mut offset = 0;
    let mut round = 0;
    while offset < minutes * 60_000 && !calls.is_empty() {
        for t in &calls {
            let length = t
                .utterances
                .iter()
                .filter_map(|u| u.end_ms)
                .max()
                .unwrap_or(0);
            for u in t.utterances.iter().filter(|u| !u.partial) {
                out.push(crate::engine::Utterance {
                    utterance_id: format!("r{round}-{}-{}", t.conversation_id, u.utterance_id),
                    start_ms: u.start_ms.map(|s| s + offset),
                    end_ms: u.end_ms.map(|e| e + offset),
                    ..u.clone()
                });
            }
            offset += length + 1_000;
            round += 1;
        }
    }
    out
}

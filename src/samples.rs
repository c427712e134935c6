//! Sample material bundled into the binary.

/// Three fictional contact-centre calls, as a speech recogniser would deliver them (lower case,
/// no punctuation, timings in milliseconds): an attentive agent on a billing query, an agent who
/// interrupts, monologues, talks over the customer and leaves dead air, and a delivery query
/// with a hold and a partial segment superseded by its final. Also in `samples/`.
pub const DEMO_CALLS: &str = include_str!("../samples/demo-calls.jsonl");

//! Engine cost per utterance, on calls of growing length built from the bundled demo calls
//! (back to back, offsets shifted, ids made unique): a one-hour call is 684 final utterances.
//!
//! Run: `cargo bench --bench engine`. Results are recorded in docs/performance.md with the
//! machine and date; end-to-end latency comes from `hearken replay`/`loadgen`, not from here.

use hearken::engine::{self, Conversation, End, Event, InputLimits, Rubric, Start};
use hearken::samples::long_call;

/// The server's allocator (`src/main.rs`), so that the engine is measured as it runs there.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    divan::main();
}

fn conversation(rubric: &Rubric) -> Conversation {
    Conversation::open(Start::default(), rubric, InputLimits::default()).unwrap()
}

/// Each utterance of a one-hour call on its own, in the state the call had reached: one
/// sample per utterance, so the median is the median cost of an utterance over the call (the
/// target of docs/performance.md). Inputs cycle through the call in order.
#[divan::bench(sample_count = 3000, sample_size = 1)]
fn observe_each_utterance_of_a_one_hour_call(bencher: divan::Bencher<'_, '_>) {
    observe_each(bencher, || {});
}

/// Samples `observe` on each utterance of a one-hour call in turn, from the state the call had
/// reached; `before_sample` runs after each sample's setup, outside the timed section.
fn observe_each(bencher: divan::Bencher<'_, '_>, mut before_sample: impl FnMut()) {
    let rubric = Rubric::embedded();
    let utterances = long_call(60);
    let mut state = conversation(&rubric);
    let mut next = 0;
    bencher
        .with_inputs(|| {
            if next == utterances.len() {
                state = conversation(&rubric);
                next = 0;
            }
            let before = state.clone();
            let u = utterances[next].clone();
            state.observe(Event::Utterance(u.clone())).unwrap();
            next += 1;
            before_sample();
            (before, u)
        })
        .bench_local_values(|(mut c, u)| {
            let emitted = c.observe(Event::Utterance(u)).unwrap();
            (c, emitted)
        });
}

/// Whole call through `observe`, one utterance at a time; throughput is utterances per second.
#[divan::bench(args = [5, 60])]
fn observe_whole_call(bencher: divan::Bencher<'_, '_>, minutes: i64) {
    let rubric = Rubric::embedded();
    let utterances = long_call(minutes);
    bencher
        .counter(divan::counter::ItemsCount::new(utterances.len()))
        .with_inputs(|| (conversation(&rubric), utterances.clone()))
        .bench_local_values(|(mut c, us)| {
            for u in us {
                divan::black_box(c.observe(Event::Utterance(u)).unwrap());
            }
            c
        });
}

/// One utterance observed at the end of a call already `minutes` long (the state is as full
/// as the window allows).
#[divan::bench(args = [60])]
fn observe_one_utterance_late_in_a_call(bencher: divan::Bencher<'_, '_>, minutes: i64) {
    let mut utterances = long_call(minutes);
    let last = utterances.pop().unwrap();
    let mut warm = conversation(&Rubric::embedded());
    for u in utterances {
        warm.observe(Event::Utterance(u)).unwrap();
    }
    bencher
        .with_inputs(|| (warm.clone(), last.clone()))
        .bench_local_values(|(mut c, u)| {
            divan::black_box(c.observe(Event::Utterance(u)).unwrap());
            c
        });
}

/// A whole transcript through `score_events`, as `ScoreTranscript` and `hearken score` do.
#[divan::bench(args = [60])]
fn score_transcript(bencher: divan::Bencher<'_, '_>, minutes: i64) {
    let rubric = Rubric::embedded();
    let utterances = long_call(minutes);
    bencher
        .counter(divan::counter::ItemsCount::new(utterances.len()))
        .bench_local(|| {
            engine::score_events(
                conversation(&rubric),
                engine::transcript_events(utterances.clone(), vec![], End::default()),
            )
        });
}

/// Scoring alone: the metrics of a 60-minute call into the seven components and the overall
/// score (what every utterance pays after its detectors).
#[divan::bench]
fn score_components(bencher: divan::Bencher<'_, '_>) {
    let mut c = conversation(&Rubric::embedded());
    for u in long_call(60) {
        c.observe(Event::Utterance(u)).unwrap();
    }
    let profile = Rubric::embedded().profile("voice").unwrap();
    let metrics = c
        .observe(Event::End(End::default(), engine::EndReason::Completed))
        .unwrap();
    let engine::Emitted::Scorecard(card) = &metrics[metrics.len() - 1] else {
        panic!("scorecard")
    };
    let metrics = card.metrics.clone();
    bencher.bench_local(|| engine::score_with_mood(&profile, divan::black_box(&metrics), 0.2));
}

/// As above, with the caches emptied before each sample (a 64 MiB buffer written, twice the
/// machine's last-level cache here): the engine as a server meets it when a conversation's next
/// utterance arrives after other work has run. The sample above is measured right after the
/// same utterance went through the same state (its setup), so everything it touches is cached:
/// it is the engine's best case, this its worst (docs/performance.md, "The engine in the server
/// is the engine with cold caches").
#[divan::bench(sample_count = 1500, sample_size = 1)]
fn observe_each_utterance_cold(bencher: divan::Bencher<'_, '_>) {
    let mut junk = vec![0u8; 64 << 20];
    let mut k = 0u8;
    observe_each(bencher, || {
        k = k.wrapping_add(1);
        for i in (0..junk.len()).step_by(64) {
            junk[i] = junk[i].wrapping_add(k);
        }
        std::hint::black_box(&junk);
    });
}

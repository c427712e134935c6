//! Memory held by live conversations, measured as resident memory (Linux): opens `N` conversations
//! (default 1 000) and feeds each the same long call (default 60 minutes, built from the
//! bundled demo calls back to back, as in `benches/engine.rs`), then reports the live heap per
//! conversation at several points of the call. The engine's share of "memory per live call";
//! the stream's share (HTTP/2 and tonic buffers) comes from `hearken serve` under loadgen
//! (docs/performance.md).
//!
//! The baseline is taken after one conversation has gone through the whole call, so what the
//! process loads once (the embedded model, compiled rubric, caches) is not counted.
//!
//! `cargo run --release --example call_memory -- [conversations] [minutes]`

use hearken::engine::{Conversation, Event, InputLimits, Rubric, Start};
use hearken::samples::long_call;

/// The server's allocator, so that fragmentation is counted as it would be there.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Resident memory of this process, in bytes.
fn rss() -> i64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<i64>().ok())
        .map_or(0, |kb| kb * 1024)
}

fn main() {
    let mut args = std::env::args().skip(1);
    let n: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(1_000);
    let minutes: i64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(60);
    let rubric = Rubric::embedded();
    let utterances = long_call(minutes);
    let checkpoints = [1, 10, 50, 100, 200, 400, utterances.len()];
    // One conversation through the whole call first, so that what a process loads once (the
    // embedded model, the rubric's automata, the stem cache) is not counted per conversation.
    let mut warm = Conversation::open(Start::default(), &rubric, InputLimits::default()).unwrap();
    for u in &utterances {
        warm.observe(Event::Utterance(u.clone())).unwrap();
    }
    drop(warm);
    let before = rss();
    let mut conversations: Vec<Conversation> = (0..n)
        .map(|_| Conversation::open(Start::default(), &rubric, InputLimits::default()).unwrap())
        .collect();
    println!(
        "{n} conversations, a {minutes}-minute call of {} utterances each",
        utterances.len()
    );
    println!("{:>10} {:>14}", "utterances", "RSS/conv KiB");
    let mut done = 0;
    let mut alerts = 0;
    for &upto in checkpoints.iter().filter(|&&c| c <= utterances.len()) {
        for c in conversations.iter_mut() {
            for u in &utterances[done..upto] {
                // Updates and alerts go to the transport and are dropped, as in the server.
                let out = c.observe(Event::Utterance(u.clone())).unwrap();
                alerts += out
                    .iter()
                    .filter(|e| matches!(e, hearken::engine::Emitted::Alert(_)))
                    .count();
            }
        }
        done = upto;
        let live = rss() - before;
        println!("{:>10} {:>14.1}", upto, live as f64 / n as f64 / 1024.0);
    }
    println!("alerts raised per conversation: {}", alerts / n.max(1));
}

//! Exact replay (R-DRAIN-3): a call whose server dies (SIGKILL) or drains (SIGTERM) half-way
//! is reconnected by `hearken replay`, which resends the conversation's messages at once; the
//! final scorecard equals `hearken score` of the same transcript, field for field. Before, the
//! restarted server rate-limited the resent burst and the client's de-duplication by `seq`
//! dropped the rejections: a scorecard built from 205 of 300 utterances, exit 0.

mod common;

use std::io::{BufRead as _, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;

/// A transcript file with one call of about 300 utterances (29 minutes).
fn long_call_file(dir: &std::path::Path) -> std::path::PathBuf {
    let utterances: Vec<serde_json::Value> = hearken::samples::long_call(29)
        .into_iter()
        .map(|u| {
            serde_json::json!({
                "utterance_id": u.utterance_id,
                "role": format!("{:?}", u.role).to_lowercase(),
                "text": u.text,
                "start_ms": u.start_ms,
                "end_ms": u.end_ms,
            })
        })
        .collect();
    assert!(utterances.len() >= 300, "{}", utterances.len());
    let line = serde_json::json!({
        "conversation_id": "long-1",
        "channel": "voice",
        "utterances": utterances,
    });
    let path = dir.join("long.jsonl");
    std::fs::write(&path, format!("{line}\n")).unwrap();
    path
}

fn serve_on(port: u16) -> Child {
    spawn_serve_on(port, &[], &[], Stdio::null()).0
}

/// The scorecard of a JSON object (a `ScoreTranscriptResponse` or a `StreamConversationsResponse`)
/// without the wall-clock alert times, the one thing outside determinism.
fn scorecard_of(value: &serde_json::Value) -> Option<serde_json::Value> {
    let mut card = value.get("scorecard")?.clone();
    if let Some(alerts) = card.get_mut("alerts").and_then(|a| a.as_array_mut()) {
        for alert in alerts {
            alert.as_object_mut().unwrap().remove("time");
        }
    }
    Some(card)
}

/// How the server is interrupted half-way.
#[derive(Clone, Copy, Debug)]
enum Interruption {
    Kill,
    Drain,
}

fn replay_through(interruption: Interruption) {
    let dir = std::env::temp_dir().join(format!(
        "hearken-replay-exact-{}-{interruption:?}",
        std::process::id()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let file = long_call_file(&dir);
    let offline = Command::new(env!("CARGO_BIN_EXE_hearken"))
        .args(["score", file.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(offline.status.success());
    let offline: serde_json::Value =
        serde_json::from_slice(offline.stdout.split(|b| *b == b'\n').next().unwrap()).unwrap();
    let expected = scorecard_of(&offline).expect("an offline scorecard");

    let port = free_port();
    let url = format!("http://127.0.0.1:{port}");
    let mut server = KillOnDrop(Some(serve_on(port)));
    wait_for_listener(&url);
    // 29 minutes of call at 600× real time: about 2.9 s, so the interruption lands mid-call.
    let mut replay = KillOnDrop(Some(
        Command::new(env!("CARGO_BIN_EXE_hearken"))
            .args(["replay", file.to_str().unwrap(), "--addr", &url])
            .args(["--speed", "600", "--json"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    ));
    let stdout = replay.0.as_mut().unwrap().stdout.take().unwrap();
    let lines = std::thread::spawn(move || {
        BufReader::new(stdout)
            .lines()
            .map(Result::unwrap)
            .collect::<Vec<_>>()
    });
    // The server is interrupted once it has answered about half the call: polled through its
    // own answers, counted by the client's output file descriptor would race; a short wait
    // for ~150 updates at this pace is about 1.3 s.
    std::thread::sleep(Duration::from_millis(1_300));
    let child = server.0.as_mut().unwrap();
    match interruption {
        Interruption::Kill => child.kill().unwrap(),
        Interruption::Drain => terminate(child),
    }
    let deadline = Instant::now() + WAIT;
    while child.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "the server did not stop");
        std::thread::sleep(Duration::from_millis(20));
    }
    server.0 = Some(serve_on(port));
    let status = {
        let child = replay.0.as_mut().unwrap();
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                break status;
            }
            assert!(Instant::now() < deadline, "replay did not finish");
            std::thread::sleep(Duration::from_millis(50));
        }
    };
    let mut stderr = String::new();
    std::io::Read::read_to_string(
        replay.0.as_mut().unwrap().stderr.as_mut().unwrap(),
        &mut stderr,
    )
    .unwrap();
    let lines = lines.join().unwrap();
    assert!(status.success(), "replay failed: {stderr}");
    assert!(
        stderr.contains("reconnecting"),
        "the interruption did not land mid-call: {stderr}"
    );
    let responses: Vec<serde_json::Value> = lines
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let before_card = responses
        .iter()
        .position(|r| r.get("scorecard").is_some())
        .expect("a scorecard");
    assert!(
        before_card > 100,
        "only {before_card} responses before the scorecard"
    );
    assert!(
        responses.iter().all(|r| r.get("rejection").is_none()),
        "rejections: {:?}",
        responses
            .iter()
            .filter(|r| r.get("rejection").is_some())
            .take(3)
            .collect::<Vec<_>>()
    );
    // Every seq once, 1..n without gaps.
    let seqs: Vec<i64> = responses
        .iter()
        .map(|r| r["seq"].as_str().unwrap().parse().unwrap())
        .collect();
    assert_eq!(seqs, (1..=seqs.len() as i64).collect::<Vec<_>>());
    let live = scorecard_of(&responses[before_card]).unwrap();
    assert_eq!(live, expected, "the replayed call's scorecard differs");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_call_replayed_after_the_server_was_killed_scores_as_if_never_interrupted() {
    replay_through(Interruption::Kill);
}

#[test]
fn a_call_replayed_after_a_drain_scores_as_if_never_interrupted() {
    replay_through(Interruption::Drain);
}

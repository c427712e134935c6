//! The `hearken` binary as a user runs it.

mod common;

use std::io::Write as _;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn hearken() -> Command {
    Command::new(env!("CARGO_BIN_EXE_hearken"))
}

#[test]
fn demo_runs_with_no_arguments_beyond_pace_and_shows_scores_alerts_and_scorecards() {
    let out = hearken().args(["demo", "--speed", "0"]).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    for expected in [
        "demo-billing-attentive",
        "demo-internet-interrupting",
        "demo-delivery-hold",
        "⚠ CRITICAL interruption",
        "long monologue",
        "dead air",
        "scorecard",
        "summary",
    ] {
        assert!(
            stdout.contains(expected),
            "missing {expected:?} in:\n{stdout}"
        );
    }
}

#[test]
fn demo_with_the_floor_page_plays_its_rounds_and_says_where_the_page_is() {
    let out = hearken()
        .args([
            "demo",
            "--ui",
            "--ui-addr",
            "127.0.0.1:0",
            "--rounds",
            "1",
            "--speed",
            "0",
        ])
        .output()
        .unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("floor is at  http://127.0.0.1:"),
        "{stdout}"
    );
    let calls = stdout
        .lines()
        .filter(|l| l.contains(" agent ") && l.contains(" score "))
        .count();
    assert_eq!(calls, 12, "{stdout}");
}

#[test]
fn score_writes_one_json_scorecard_per_conversation_and_skips_malformed_lines() {
    let dir = std::env::temp_dir().join(format!("hearken-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("calls.jsonl");
    let mut f = std::fs::File::create(&file).unwrap();
    f.write_all(hearken::samples::DEMO_CALLS.as_bytes())
        .unwrap();
    writeln!(
        f,
        "{{\"conversation_id\": \"broken\", \"utterances\": [{{\"utterance_id\": 5}}]}}"
    )
    .unwrap();
    writeln!(
        f,
        "{}",
        hearken::samples::DEMO_CALLS
            .lines()
            .next()
            .unwrap()
            .replace("demo-billing-attentive", "again")
    )
    .unwrap();
    drop(f);
    let out = hearken().arg("score").arg(&file).output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(1),
        "a skipped line gives exit code 1"
    );
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(stderr.contains("line 4:"), "{stderr}");
    let lines: Vec<serde_json::Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 4);
    assert_eq!(lines[3]["conversationId"], "again");
    assert_eq!(lines[0]["scorecard"]["endReason"], "END_REASON_COMPLETED");
    let overall = |i: usize| lines[i]["scorecard"]["score"]["overall"].as_f64().unwrap();
    assert!(
        overall(0) > overall(1),
        "the attentive agent outscores the interrupting one"
    );
    assert_eq!(
        lines[0]["scorecard"], lines[3]["scorecard"],
        "deterministic"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn score_reads_standard_input_and_prints_text() {
    let mut child = hearken()
        .args(["score", "--format", "text", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(hearken::samples::DEMO_CALLS.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(
        stdout.contains("── scorecard demo-internet-interrupting")
            && stdout.contains("listening score"),
        "{stdout}"
    );
}

#[test]
fn an_invalid_rubric_file_is_refused_with_every_problem() {
    let dir = std::env::temp_dir().join(format!("hearken-rubric-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("rubric.toml");
    std::fs::write(&file, "[base.timing]\ndead_air_ms = -1\novertalk_ms = 0\n").unwrap();
    let out = hearken()
        .arg("score")
        .arg("--rubric")
        .arg(&file)
        .arg("-")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(
        stderr.contains("timing.dead_air_ms") && stderr.contains("timing.overtalk_ms"),
        "{stderr}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn serve_and_replay_work_together_and_sigterm_drains() {
    let (server, addr) = common::spawn_serve(&[], &[], Stdio::piped());
    let file = std::env::temp_dir().join(format!("hearken-replay-{}.jsonl", std::process::id()));
    std::fs::write(&file, hearken::samples::DEMO_CALLS).unwrap();
    let out = common::until_success(|| {
        let mut c = hearken();
        c.args(["replay", "--json", "--addr", &addr]).arg(&file);
        c
    });
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let responses: Vec<serde_json::Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(
        responses
            .iter()
            .filter(|r| r.get("scorecard").is_some())
            .count(),
        3
    );
    assert!(
        responses
            .iter()
            .any(|r| r["alert"]["kind"] == "ALERT_KIND_INTERRUPTION")
    );
    assert!(
        String::from_utf8(out.stderr)
            .unwrap()
            .contains("latency p50")
    );
    // In text, each call's lines come under a header naming the call.
    let text = hearken()
        .args(["replay", "--addr", &addr])
        .arg(&file)
        .output()
        .unwrap();
    let text = String::from_utf8(text.stdout).unwrap();
    for call in [
        "demo-billing-attentive",
        "demo-internet-interrupting",
        "demo-delivery-hold",
    ] {
        assert!(text.contains(&format!("━━ call {call} ━━")), "{text}");
    }
    common::terminate(&server);
    let server = server.wait_with_output().unwrap();
    assert!(
        server.status.success(),
        "clean exit after SIGTERM: {:?}",
        server.status
    );
    let log = String::from_utf8_lossy(&server.stderr);
    assert!(
        log.contains("SIGTERM received") && log.contains("server stopped"),
        "{log}"
    );
    std::fs::remove_file(&file).unwrap();
}

#[test]
fn eval_scores_the_labelled_fixtures_and_reports_the_malformed_line() {
    let fixture = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/labelled.jsonl");
    let out = hearken()
        .args(["eval", "--json", fixture])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(1),
        "the fixture's malformed last line gives exit code 1"
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("line 3:"));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    // Positives per behaviour, counted here from the file itself.
    let mut positives = std::collections::BTreeMap::<String, u64>::new();
    for line in std::fs::read_to_string(fixture).unwrap().lines() {
        let Ok(c) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        for u in c["utterances"].as_array().unwrap() {
            let ignore: Vec<&str> = u["labels"]["behaviours_ignore"]
                .as_array()
                .map(|a| a.iter().filter_map(|x| x.as_str()).collect())
                .unwrap_or_default();
            for b in u["labels"]["behaviours"]
                .as_array()
                .unwrap()
                .iter()
                .filter_map(|x| x.as_str())
            {
                if b != "none" && !ignore.contains(&b) {
                    *positives.entry(b.to_string()).or_default() += 1;
                }
            }
        }
    }
    assert!(
        positives.len() >= 12,
        "every behaviour has a fixture: {positives:?}"
    );
    let behaviours = report["behaviours"].as_object().unwrap();
    for (name, expected) in &positives {
        let c = &behaviours[name];
        assert_eq!(
            c["tp"].as_u64().unwrap() + c["fn"].as_u64().unwrap(),
            *expected,
            "{name}"
        );
        assert_eq!(c["f1"].as_f64().unwrap(), 1.0, "{name}: {c}");
    }
    assert_eq!(report["scored"], 32);
    let per_unit: serde_json::Value = serde_json::from_slice(
        &hearken()
            .args(["eval", "--json", "--per-unit", fixture])
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    assert_eq!(per_unit["scored"], 31, "the split unit counts once");
}

#[test]
fn loadgen_reports_throughput_latency_and_errors_as_json() {
    let (mut server, addr) = common::spawn_serve(&[], &[], Stdio::null());
    let out = common::until_success(|| {
        let mut c = hearken();
        c.args([
            "loadgen",
            "--addr",
            &addr,
            "--calls",
            "8",
            "--connections",
            "2",
            "--duration",
            "1",
            "--drain",
            "2",
            "--json",
        ]);
        c
    });
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["errors"], 0);
    assert!(report["received"].as_u64().unwrap() > 100, "{report}");
    assert_eq!(
        report["sent"], report["received"],
        "every utterance answered"
    );
    let l = &report["latency_us"];
    let (p50, p99, max) = (
        l["p50"].as_u64().unwrap(),
        l["p99"].as_u64().unwrap(),
        l["max"].as_u64().unwrap(),
    );
    assert!(0 < p50 && p50 <= p99 && p99 <= max, "{l}");
    common::terminate(&server);
    assert!(server.wait().unwrap().success());
}

/// The client contract (docs/operations.md, R-DRAIN-3): a server killed mid-call and restarted
/// loses no scorecard for a replaying client, and the replayed call's scorecard equals an
/// uninterrupted one.
#[test]
fn replay_survives_a_killed_and_restarted_server_with_the_same_scorecards() {
    let (mut server, addr) = common::spawn_serve(&[], &[], Stdio::null());
    let listen = addr.trim_start_matches("http://").to_string();
    let file = std::env::temp_dir().join(format!("hearken-resume-{}.jsonl", std::process::id()));
    std::fs::write(&file, hearken::samples::DEMO_CALLS).unwrap();
    // Wait until the server accepts connections before starting the call.
    common::wait_for_listener(&addr);
    let replay = hearken()
        .args(["replay", "--json", "--speed", "40", "--addr", &addr])
        .arg(&file)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(1500));
    server.kill().unwrap(); // SIGKILL: no drain, state lost
    server.wait().unwrap();
    std::thread::sleep(std::time::Duration::from_millis(300));
    let mut server = hearken()
        .args([
            "serve",
            "--plaintext",
            "--addr",
            &listen,
            "--drain-delay",
            "0s",
            "--drain-deadline",
            "2s",
            "--metrics-addr",
            "off",
        ])
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let out = replay.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("reconnecting"),
        "the call was really interrupted: {stderr}"
    );

    let responses: Vec<serde_json::Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let scored = hearken().arg("score").arg(&file).output().unwrap();
    let expected: Vec<serde_json::Value> = String::from_utf8(scored.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(expected.len(), 3);
    for e in &expected {
        let id = e["conversationId"].as_str().unwrap();
        let mine: Vec<&serde_json::Value> = responses
            .iter()
            .filter(|r| r["conversationId"] == id)
            .collect();
        let seqs: Vec<i64> = mine
            .iter()
            .map(|r| r["seq"].as_str().unwrap().parse().unwrap())
            .collect();
        assert_eq!(
            seqs,
            (1..=seqs.len() as i64).collect::<Vec<_>>(),
            "{id}: gap-free, no duplicates after the reconnect"
        );
        let mut live = mine
            .iter()
            .find_map(|r| r.get("scorecard"))
            .unwrap_or_else(|| panic!("{id}: no scorecard"))
            .clone();
        if let Some(alerts) = live.get_mut("alerts").and_then(|a| a.as_array_mut()) {
            for a in alerts {
                a.as_object_mut().unwrap().remove("time");
            }
        }
        assert_eq!(
            live, e["scorecard"],
            "{id}: the replayed scorecard equals an uninterrupted run's"
        );
    }
    common::terminate(&server);
    server.wait().unwrap();
    std::fs::remove_file(&file).unwrap();
}

#[test]
fn serve_refuses_to_start_without_choosing_tls_or_plaintext() {
    let out = hearken()
        .args(["serve", "--addr", "127.0.0.1:0", "--metrics-addr", "off"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("--tls-cert") && stderr.contains("--plaintext"),
        "{stderr}"
    );
}

#[test]
fn loadgen_reconnects_when_streams_end_at_their_maximum_duration() {
    let (mut server, addr) =
        common::spawn_serve(&["--max-stream-duration", "1s"], &[], Stdio::null());
    common::wait_for_listener(&addr);
    let out = hearken()
        .args([
            "loadgen",
            "--addr",
            &addr,
            "--calls",
            "4",
            "--connections",
            "1",
        ])
        .args(["--rate", "40", "--duration", "2.5", "--json"])
        .output()
        .unwrap();
    // Failures make the exit code 1: use the report.
    let report: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)));
    let (errors, reconnects) = (
        report["errors"].as_u64().unwrap(),
        report["reconnects"].as_u64().unwrap(),
    );
    assert!(errors >= 4 && reconnects >= 4, "{report}");
    // Calls went on after the first stream of each ended at 1 s.
    assert!(report["received"].as_u64().unwrap() > 50, "{report}");
    server.kill().unwrap();
    server.wait().unwrap();
}

/// `hearken replay` never exits 0 on a call the server rejected messages of, unless asked to.
#[test]
fn replay_exits_non_zero_when_the_server_rejected_messages() {
    let (server, addr) = common::spawn_serve(&[], &[], Stdio::null());
    let _server = common::KillOnDrop(Some(server));
    let file = std::env::temp_dir().join(format!("hearken-rejected-{}.jsonl", std::process::id()));
    let call = serde_json::json!({
        "conversation_id": "r1",
        "utterances": [
            {"utterance_id": "u1", "role": "customer", "text": "hello", "start_ms": 0, "end_ms": 900},
            {"utterance_id": "u2", "role": "agent", "text": "hi", "start_ms": 2000, "end_ms": 1000}
        ]
    });
    std::fs::write(&file, format!("{call}\n")).unwrap();
    common::wait_for_listener(&addr);
    let run = |allow: bool| {
        let mut c = hearken();
        c.args(["replay", "--addr", &addr]).arg(&file);
        if allow {
            c.arg("--allow-rejections");
        }
        c.output().unwrap()
    };
    let out = run(false);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("rejected 1 message(s)"), "{stderr}");
    assert!(stderr.contains("--allow-rejections"), "{stderr}");
    assert!(run(true).status.success());
    std::fs::remove_file(&file).unwrap();
}

/// `hearken replay` ends when the server refuses the conversation id itself (#29: it waited
/// for a scorecard that could never come), and says it was rejected.
#[test]
fn replay_ends_when_the_server_refuses_the_conversation_id() {
    let (server, addr) = common::spawn_serve(&[], &[], Stdio::null());
    let _server = common::KillOnDrop(Some(server));
    let file =
        std::env::temp_dir().join(format!("hearken-refused-id-{}.jsonl", std::process::id()));
    let call = serde_json::json!({
        "conversation_id": "r\u{200b}1",
        "utterances": [
            {"utterance_id": "u1", "role": "customer", "text": "hello", "start_ms": 0, "end_ms": 900}
        ]
    });
    std::fs::write(&file, format!("{call}\n")).unwrap();
    common::wait_for_listener(&addr);
    let mut child = hearken()
        .args(["replay", "--speed", "0", "--addr", &addr])
        .arg(&file)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            child.kill().unwrap();
            panic!("replay did not end after its conversation id was refused");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    assert_eq!(status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("rejected"), "{stderr}");
    std::fs::remove_file(&file).unwrap();
}

/// `replay --addr host:port` (the form `serve` takes) works; nothing listening says what to
/// check, once; a reader that closes the pipe early ends `score` quietly.
#[test]
fn client_addresses_and_closed_pipes_are_handled_as_a_person_expects() {
    let (server, url) = common::spawn_serve(&[], &[], Stdio::null());
    let _server = common::KillOnDrop(Some(server));
    common::wait_for_listener(&url);
    let file = std::env::temp_dir().join(format!("hearken-hostport-{}.jsonl", std::process::id()));
    std::fs::write(&file, hearken::samples::DEMO_CALLS).unwrap();
    let host_port = url.trim_start_matches("http://");
    let out = hearken()
        .args(["replay", "--quiet", "--addr", host_port])
        .arg(&file)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let nothing = format!("127.0.0.1:{}", common::free_port());
    let out = hearken()
        .args(["replay", "--addr", &nothing])
        .arg(&file)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr.contains(&format!("is `hearken serve` running on {nothing}?")),
        "{stderr}"
    );
    assert_eq!(stderr.lines().count(), 1, "{stderr}");

    // A reader that takes one line and closes the pipe.
    let mut child = hearken()
        .args(["score", "--timeline"])
        .args(std::iter::repeat_n(&file, 200))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let mut first = [0u8; 64];
    std::io::Read::read_exact(&mut stdout, &mut first).unwrap();
    drop(stdout);
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{:?} {stderr}", out.status);
    assert!(
        !stderr.contains("Broken pipe") && !stderr.contains("panicked"),
        "{stderr}"
    );
    std::fs::remove_file(&file).unwrap();
}

/// A directory is read as its files, never looped over (before: 1.2 million lines of
/// `could not be read`, never ending); where a file is expected, one line says why.
#[test]
fn a_directory_is_read_as_its_files() {
    let dir = std::env::temp_dir().join(format!("hearken-dir-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("a.jsonl"), hearken::samples::DEMO_CALLS).unwrap();
    std::fs::write(dir.join("b.jsonl"), hearken::samples::DEMO_CALLS).unwrap();
    let out = hearken().arg("score").arg(&dir).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).lines().count(), 6);
    let out = hearken().arg("eval").arg(&dir).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.lines().count() <= 3, "{stderr}");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A file whose utterances are all rejected is not a quiet 70.0 with exit 0: every rejection is
/// printed (text on standard output, every format on standard error) and counted, exit 1.
#[test]
fn score_says_what_it_rejected_and_exits_non_zero() {
    let file =
        std::env::temp_dir().join(format!("hearken-allrejected-{}.jsonl", std::process::id()));
    let call = serde_json::json!({
        "conversation_id": "bad",
        "utterances": [
            {"utterance_id": "u1", "role": "customer", "text": "hello", "start_ms": 5000, "end_ms": 1000},
            {"utterance_id": "u2", "role": "agent", "text": "x".repeat(20_000), "start_ms": 6000, "end_ms": 7000}
        ]
    });
    std::fs::write(&file, format!("{call}\n")).unwrap();
    for format in ["json", "text"] {
        let out = hearken()
            .args(["score", "--format", format])
            .arg(&file)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{format}: {stderr}");
        assert!(
            stderr.contains("rejected utterance u1 utterance.end_ms"),
            "{stderr}"
        );
        assert!(
            stderr.contains("rejected utterance u2 utterance.text"),
            "{stderr}"
        );
        assert!(stderr.contains("2 message(s) rejected"), "{stderr}");
        assert!(!stderr.contains("xxxx"), "text echoed: {stderr}");
        if format == "text" {
            let stdout = String::from_utf8_lossy(&out.stdout);
            assert!(stdout.contains("rejected u1 utterance.end_ms"), "{stdout}");
        }
    }
    let out = hearken()
        .args(["score", "--allow-rejections"])
        .arg(&file)
        .output()
        .unwrap();
    assert!(out.status.success());
    std::fs::remove_file(&file).unwrap();
}

/// `replay` honours a stream-open refusal's `RetryInfo` instead of giving up (before: a file of
/// 300 calls stopped after the tenant's burst of 50).
#[test]
fn replay_waits_out_stream_open_refusals() {
    let (server, addr) = common::spawn_serve(
        &[
            "--stream-open-rate-by-peer",
            "--stream-opens-per-second",
            "5",
            "--stream-open-burst",
            "2",
        ],
        &[],
        Stdio::null(),
    );
    let _server = common::KillOnDrop(Some(server));
    common::wait_for_listener(&addr);
    let file = std::env::temp_dir().join(format!("hearken-openrate-{}.jsonl", std::process::id()));
    let mut calls = String::new();
    for round in 0..4 {
        for line in hearken::samples::DEMO_CALLS.lines() {
            calls.push_str(&line.replacen("\"demo-", &format!("\"r{round}-demo-"), 1));
            calls.push('\n');
        }
    }
    std::fs::write(&file, calls).unwrap();
    let out = hearken()
        .args(["replay", "--quiet", "--json", "--addr", &addr])
        .arg(&file)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let cards = String::from_utf8_lossy(&out.stdout)
        .matches("\"scorecard\"")
        .count();
    assert_eq!(cards, 12, "{stderr}");
    assert!(
        stderr.contains("refused the stream for now"),
        "no refusal was met: {stderr}"
    );
    std::fs::remove_file(&file).unwrap();
}

/// `loadgen` against a server pacing stream opens (RESOURCE_EXHAUSTED with a retry delay):
/// the refusals are counted apart from errors and waited out as asked (before: each refusal
/// was an error, and the run exited 1).
#[test]
fn loadgen_counts_refusals_for_now_apart_from_errors() {
    let (server, addr) = common::spawn_serve(
        &[
            "--stream-open-rate-by-peer",
            "--stream-opens-per-second",
            "4",
            "--stream-open-burst",
            "1",
        ],
        &[],
        Stdio::null(),
    );
    let _server = common::KillOnDrop(Some(server));
    common::wait_for_listener(&addr);
    let out = hearken()
        .args([
            "loadgen",
            "--addr",
            &addr,
            "--calls",
            "12",
            "--connections",
            "1",
            "--duration",
            "2",
            "--drain",
            "2",
            "--json",
        ])
        .output()
        .unwrap();
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["errors"], 0, "{report}");
    assert!(report["refusals"].as_u64().unwrap() > 0, "{report}");
    assert!(out.status.success(), "{report}");
}

/// Empty input (standard input at its end, an empty file) is no conversations, not an error.
#[test]
fn empty_input_scores_nothing_and_exits_zero() {
    let out = hearken()
        .args(["score", "-"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("0 conversation(s) scored, 0 skipped"));
}

/// Runs `hearken ARGS` and checks that it fails before doing anything, naming every one of
/// `flags` in one error ("N flags are out of range").
fn refuses_flags(args: &[&str], flags: &[&str]) {
    let out = hearken().args(args).output().unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    for flag in flags {
        assert!(stderr.contains(flag), "{flag} not named: {stderr}");
    }
    let count = format!("{} flags are out of range", flags.len());
    assert!(stderr.contains(&count), "{stderr}");
}

/// Flags out of range are all named in one error, and none is clamped silently.
#[test]
fn serve_names_every_flag_out_of_range_at_once() {
    refuses_flags(
        &[
            "serve",
            "--plaintext",
            "--addr",
            "127.0.0.1:0",
            "--metrics-addr",
            "off",
            "--stream-open-burst",
            "0",
            "--max-messages-per-second",
            "0",
            "--drain-delay",
            "10s",
            "--drain-deadline",
            "5s",
        ],
        &[
            "--stream-open-burst",
            "--max-messages-per-second",
            "--drain-deadline",
        ],
    );
}

/// The pipeline checks its flags the same way, before it connects to anything.
#[test]
fn pipeline_names_every_flag_out_of_range_at_once() {
    refuses_flags(
        &[
            "pipeline",
            "--brokers",
            "127.0.0.1:1",
            "--metrics-addr",
            "off",
            "--max-conversations",
            "0",
            "--commit-interval",
            "0s",
        ],
        &["--max-conversations", "--commit-interval"],
    );
}

/// The load generator too: `--window 0` was clamped to 1, and a negative `--drain` would have
/// panicked once the calls were done; both are refused by name before anything connects
/// (nothing listens on the address given).
#[test]
fn loadgen_names_every_flag_out_of_range_at_once() {
    refuses_flags(
        &[
            "loadgen",
            "--addr",
            "http://127.0.0.1:1",
            "--window",
            "0",
            "--drain=-1",
            "--duration",
            "1",
        ],
        &["--window", "--drain"],
    );
}

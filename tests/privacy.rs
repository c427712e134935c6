//! No transcript text, metadata value or conversation id reaches the logs, and no text or
//! metadata value comes back in a rejection or status — even at debug level, even for messages
//! that are refused (R-PRIV-1, R-ERR-2).

mod common;

use std::process::{Command, Stdio};

const PAN: &str = "4111 1111 1111 1111";
const NAME: &str = "Zebulon Quartermaine";
const META: &str = "metacanary7731";
const CONVERSATION: &str = "convcanary4402";

#[test]
fn canaries_never_reach_logs_or_error_details() {
    let (server, addr) = common::spawn_serve(&[], &[("HEARKEN_LOG", "debug")], Stdio::piped());
    let long = format!("{NAME} {}", "x".repeat(16_400));
    let call = serde_json::json!({
        "conversation_id": CONVERSATION, "channel": "voice", "metadata": {"customer": META},
        "utterances": [
            {"utterance_id": "u1", "role": "customer", "text": format!("hi I'm {NAME} my card is {PAN}"), "start_ms": 0, "end_ms": 4000},
            {"utterance_id": "u2", "role": "agent", "text": format!("thanks {NAME} can you confirm {PAN}"), "start_ms": 2000, "end_ms": 3500},
            {"utterance_id": "u3", "role": "customer", "text": format!("yes {PAN}"), "start_ms": 9000, "end_ms": 1000},
            {"utterance_id": "u4", "role": "customer", "text": long, "start_ms": 9000, "end_ms": 9500},
            {"utterance_id": "u1", "role": "customer", "text": format!("changed {PAN}"), "start_ms": 0, "end_ms": 4000}
        ]
    });
    let file = std::env::temp_dir().join(format!("hearken-privacy-{}.jsonl", std::process::id()));
    std::fs::write(&file, format!("{call}\n")).unwrap();
    let out = common::until_success(|| {
        let mut c = Command::new(env!("CARGO_BIN_EXE_hearken"));
        c.args(["replay", "--json", "--allow-rejections", "--addr", &addr])
            .arg(&file);
        c
    });
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let responses = String::from_utf8(out.stdout).unwrap();
    assert_eq!(
        responses.matches("\"rejection\"").count(),
        3,
        "three refused messages: {responses}"
    );
    common::terminate(&server);
    let server = server.wait_with_output().unwrap();
    let log = String::from_utf8_lossy(&server.stderr);
    assert!(log.contains("stream opened"), "debug logging was on: {log}");
    for canary in [PAN, "4111", NAME, "Zebulon", META, CONVERSATION] {
        assert!(!log.contains(canary), "{canary} in the server log:\n{log}");
    }
    for canary in [PAN, "4111", NAME, "Zebulon", META] {
        assert!(
            !responses.contains(canary),
            "{canary} in a response:\n{responses}"
        );
    }
    std::fs::remove_file(&file).unwrap();
}

#[test]
fn the_opt_in_text_log_masks_card_data_and_warns_at_start() {
    let (server, addr) = common::spawn_serve(&["--log-text"], &[], Stdio::piped());
    let call = serde_json::json!({
        "conversation_id": "c1",
        "utterances": [
            {"utterance_id": "u1", "role": "customer", "text": format!("my card is {PAN} and the cvv is 737"), "start_ms": 0, "end_ms": 4000},
            {"utterance_id": "u2", "role": "customer", "text": "it expires oh four two seven", "start_ms": 5000, "end_ms": 7000}
        ]
    });
    let file = std::env::temp_dir().join(format!("hearken-textlog-{}.jsonl", std::process::id()));
    std::fs::write(&file, format!("{call}\n")).unwrap();
    let out = common::until_success(|| {
        let mut c = Command::new(env!("CARGO_BIN_EXE_hearken"));
        c.args(["replay", "--json", "--addr", &addr]).arg(&file);
        c
    });
    assert!(out.status.success());
    common::terminate(&server);
    let log = String::from_utf8_lossy(&server.wait_with_output().unwrap().stderr).into_owned();
    assert!(log.contains("the text log is on"), "{log}");
    assert!(
        log.contains("my card is **** **** **** 1111 and the cvv is ***"),
        "{log}"
    );
    assert!(log.contains("it expires * * * *"), "{log}");
    // "737" as a number of its own: a timestamp's digits (".737199Z") are not the CVV.
    let cvv_logged = log
        .split(|c: char| !c.is_ascii_digit())
        .any(|number| number == "737");
    assert!(!log.contains(PAN) && !cvv_logged, "{log}");
    std::fs::remove_file(&file).unwrap();
}

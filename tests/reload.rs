//! `hearken serve --rubric FILE` reloads the rubric when the file changes and on SIGHUP, without
//! dropping streams; a file that does not validate is refused and the old rubric stays.

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use hearken::proto::v1::listening_service_client::ListeningServiceClient;
use hearken::proto::v1::*;
use tokio_stream::wrappers::ReceiverStream;

fn request(profile: &str) -> ScoreTranscriptRequest {
    ScoreTranscriptRequest {
        conversation_id: "t".into(),
        start: Some(ConversationStart {
            rubric_profile: profile.into(),
            ..Default::default()
        }),
        utterances: vec![Utterance {
            utterance_id: "u1".into(),
            role: Role::Customer as i32,
            text: "hello".into(),
            ..Default::default()
        }],
        ..Default::default()
    }
}

/// Retries `check` until it holds, for at most 15 s.
async fn eventually(mut check: impl AsyncFnMut() -> bool) -> bool {
    let deadline = Instant::now() + Duration::from_secs(15);
    while Instant::now() < deadline {
        if check().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

/// `hearken serve` polling the rubric file `file` every `poll`, and a client once it answers.
async fn serve_with_rubric(
    file: &std::path::Path,
    poll: &str,
) -> (
    std::process::Child,
    ListeningServiceClient<tonic::transport::Channel>,
) {
    let (server, url) = common::spawn_serve(
        &["--rubric-poll", poll, "--rubric", file.to_str().unwrap()],
        &[],
        Stdio::piped(),
    );
    let mut client = None;
    assert!(
        eventually(async || {
            client = ListeningServiceClient::connect(url.clone()).await.ok();
            client.is_some()
        })
        .await,
        "server up"
    );
    (server, client.unwrap())
}

/// A folder of its own (`hearken-reload-<tag>-<pid>`) with `rubric.toml` holding `content`.
fn rubric_file(tag: &str, content: &str) -> (std::path::PathBuf, std::path::PathBuf) {
    let dir = std::env::temp_dir().join(format!("hearken-reload-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("rubric.toml");
    std::fs::write(&file, content).unwrap();
    (dir, file)
}

/// Stops the server with SIGTERM and waits for it off the runtime (so the client's connection
/// task can close its socket meanwhile): its exit status and log.
async fn stop(server: std::process::Child) -> (std::process::ExitStatus, String) {
    common::terminate(&server);
    let output = tokio::task::spawn_blocking(move || server.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    (
        output.status,
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[tokio::test]
async fn the_rubric_reloads_on_change_and_sighup_and_a_bad_file_is_refused() {
    let (dir, file) = rubric_file("change", "# no changes yet\n");
    let (server, mut client) = serve_with_rubric(&file, "100ms").await;
    assert_eq!(
        client
            .score_transcript(request("strict"))
            .await
            .unwrap_err()
            .code(),
        tonic::Code::FailedPrecondition
    );

    // A live stream opened before the reload.
    let (tx, rx) = tokio::sync::mpsc::channel(16);
    let mut live = client
        .stream_conversations(ReceiverStream::new(rx))
        .await
        .unwrap()
        .into_inner();
    let utterance = |id: &str| StreamConversationsRequest {
        conversation_id: "live".into(),
        payload: Some(stream_conversations_request::Payload::Utterance(
            Utterance {
                utterance_id: id.into(),
                role: Role::Customer as i32,
                text: "still here".into(),
                ..Default::default()
            },
        )),
    };
    tx.send(utterance("u1")).await.unwrap();
    assert!(live.message().await.unwrap().is_some());

    // A new profile appears once the file changes.
    std::fs::write(
        &file,
        "[profiles.strict.timing]\ninterruption_min_remaining_ms = 100\n",
    )
    .unwrap();
    assert!(
        eventually(async || client.score_transcript(request("strict")).await.is_ok()).await,
        "new profile live"
    );

    // A broken file, announced with SIGHUP, is refused; the previous rubric stays.
    std::fs::write(&file, "[profiles.strict.timing]\ndead_air_ms = -5\n").unwrap();
    assert!(
        Command::new("kill")
            .args(["-HUP", &server.id().to_string()])
            .status()
            .unwrap()
            .success()
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        client.score_transcript(request("strict")).await.is_ok(),
        "old rubric kept"
    );

    // The stream opened before both reloads is still there.
    tx.send(utterance("u2")).await.unwrap();
    let r = live.message().await.unwrap().unwrap();
    assert_eq!(r.seq, 2);

    drop((tx, live, client));
    let (status, log) = stop(server).await;
    assert!(status.success());
    assert!(log.contains("rubric reloaded"), "{log}");
    assert!(
        log.contains("rubric file refused") && log.contains("timing.dead_air_ms"),
        "{log}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A file caught half-written is not loaded. Editors and `cp` truncate a file before they write
/// it, and an empty file is a valid rubric (the default, without the file's profiles): a poll
/// that read it in between once dropped every profile of the file. Here the file stays empty
/// for 40 ms at a time while the server polls every 20 ms, ten times over; its profile must
/// never go away.
#[tokio::test]
async fn a_rubric_file_read_while_it_is_being_written_is_not_loaded() {
    let content = "[profiles.strict.timing]\ninterruption_min_remaining_ms = 100\n";
    let (dir, file) = rubric_file("half", content);
    let (server, mut client) = serve_with_rubric(&file, "20ms").await;
    assert!(client.score_transcript(request("strict")).await.is_ok());
    for round in 0..10 {
        std::fs::write(&file, "").unwrap();
        tokio::time::sleep(Duration::from_millis(40)).await;
        std::fs::write(&file, content).unwrap();
        tokio::time::sleep(Duration::from_millis(150)).await;
        assert!(
            client.score_transcript(request("strict")).await.is_ok(),
            "round {round}: the profile went away"
        );
    }
    drop(client);
    let (_, log) = stop(server).await;
    assert!(!log.contains("rubric reloaded"), "{log}");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A rubric rewritten in two steps, the file truncated and written well past the settle wait
/// (#29: an empty rubric loaded and profile `custom` went away, 28 of 40 new calls refused
/// `UNKNOWN_PROFILE`): an empty file keeps the running rubric, says so, and the write after it
/// loads.
#[tokio::test]
async fn an_empty_rubric_file_keeps_the_running_rubric() {
    let content = "[profiles.custom.timing]\ninterruption_min_remaining_ms = 100\n";
    let (dir, file) = rubric_file("empty", content);
    let (server, mut client) = serve_with_rubric(&file, "20ms").await;
    assert!(client.score_transcript(request("custom")).await.is_ok());
    std::fs::write(&file, "").unwrap();
    // Many polls and settle waits go by with the file empty.
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert!(
        client.score_transcript(request("custom")).await.is_ok(),
        "the profile went away with an empty file"
    );
    let changed = "[profiles.custom.timing]\ninterruption_min_remaining_ms = 200\n";
    std::fs::write(&file, changed).unwrap();
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert!(client.score_transcript(request("custom")).await.is_ok());
    drop(client);
    let (_, log) = stop(server).await;
    assert!(
        log.contains("the rubric file is empty; keeping the current rubric"),
        "{log}"
    );
    assert!(log.contains("rubric reloaded"), "{log}");
    std::fs::remove_dir_all(&dir).unwrap();
}

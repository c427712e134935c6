//! Memory bounded by configuration (docs/operations.md, "Memory"): the four attacks that pinned
//! memory before — half-sent over-size messages on hundreds of streams, multi-megabyte
//! `WatchAlerts` filters, dozens of concurrent 4 MB `ScoreTranscript` calls — against a real
//! `hearken serve` on default flags. Its peak RSS (VmHWM) stays under the bound computed from the
//! flags and under 512 MiB, and a canary call keeps answering throughout.

mod common;

use std::time::{Duration, Instant};

use common::raw;
use common::*;
use hearken::proto::v1::*;
use hearken::service::Limits;

fn status_kib(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_attacks_stay_within_the_configured_bound() {
    let (child, url) = spawn_serve(&[], &[], std::process::Stdio::null());
    let pid = child.id();
    let _server = KillOnDrop(Some(child));
    let channel = connect_when_up(&url).await;
    let addr: std::net::SocketAddr = url.trim_start_matches("http://").parse().unwrap();
    let baseline = status_kib(pid, "VmRSS:");

    // The canary: one utterance every 50 ms on its own connection, each answered in time.
    let canary = {
        let mut client =
            hearken::proto::v1::listening_service_client::ListeningServiceClient::new(channel);
        tokio::spawn(async move {
            let mut call = Call::open(&mut client).await;
            let mut worst = Duration::ZERO;
            for i in 0..100i64 {
                let sent = Instant::now();
                call.send(utterance(
                    "canary",
                    &format!("u{i}"),
                    Role::Customer,
                    "still there",
                    i * 1_000,
                    i * 1_000 + 800,
                ))
                .await;
                assert_eq!(kind(&call.expect().await), "update");
                worst = worst.max(sent.elapsed());
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            worst
        })
    };

    // 1. 300 streams, each with a message whose prefix claims 4 MB, half-sent and held.
    let mut held = Vec::new();
    for _ in 0..3 {
        let mut connection = raw::connect(addr).await;
        for _ in 0..100 {
            let (response, mut send) = raw::open(&mut connection, "StreamConversations").await;
            let mut prefix = vec![0u8];
            prefix.extend_from_slice(&4_000_000u32.to_be_bytes());
            prefix.extend_from_slice(&[b'a'; 100_000]);
            let _ = send.send_data(prefix.into(), false);
            held.push((response, send));
        }
    }
    let mut refused = 0;
    eprintln!("half-sent messages on 300 streams");
    for (response, _send) in held.drain(..) {
        let answer = tokio::time::timeout(WAIT, raw::read_answer(response, |_| false))
            .await
            .expect("refused without the rest of the message");
        refused += usize::from(answer.reason.as_deref() == Some("MESSAGE_TOO_LARGE"));
    }
    assert_eq!(refused, 300);

    // 2. 300 watchers asking with 2.6 MB filters (refused before decoding), then 300 with the
    //    largest filters allowed (1 000 ids).
    let mut client = hearken::proto::v1::listening_service_client::ListeningServiceClient::new(
        tonic::transport::Endpoint::from_shared(url.clone())
            .unwrap()
            .connect()
            .await
            .unwrap(),
    )
    .max_encoding_message_size(8 * 1024 * 1024);
    let huge = WatchAlertsRequest {
        conversation_ids: (0..10_000).map(|i| format!("{i:0>250}")).collect(),
        ..Default::default()
    };
    for _ in 0..300 {
        let status = client
            .watch_alerts(huge.clone())
            .await
            .map(|_| ())
            .unwrap_err();
        assert_eq!(status.code(), tonic::Code::ResourceExhausted, "{status:?}");
    }
    let largest = WatchAlertsRequest {
        conversation_ids: (0..1_000).map(|i| format!("c-{i:0>50}")).collect(),
        ..Default::default()
    };
    eprintln!("watchers with huge filters refused");
    let mut watchers = Vec::new();
    for _ in 0..300 {
        watchers.push(
            client
                .watch_alerts(largest.clone())
                .await
                .unwrap()
                .into_inner(),
        );
    }

    // 3. 64 concurrent 4 MB ScoreTranscript calls (their utterances over the text limit, so
    //    the test measures memory, not scoring time).
    let big = ScoreTranscriptRequest {
        conversation_id: "big".into(),
        utterances: (0..240)
            .map(|i| Utterance {
                utterance_id: format!("u{i}"),
                role: Role::Customer as i32,
                text: "a".repeat(17_000),
                start_ms: Some(i * 1_000),
                end_ms: Some(i * 1_000 + 900),
                ..Default::default()
            })
            .collect(),
        ..Default::default()
    };
    // Beyond the concurrency limit a call is refused with a retry delay; each client retries
    // until it is scored.
    let mut calls = tokio::task::JoinSet::new();
    for _ in 0..64 {
        let mut client = client.clone();
        let big = big.clone();
        calls.spawn(async move {
            let mut refusals = 0;
            loop {
                match client.score_transcript(big.clone()).await {
                    Ok(_) => return refusals,
                    Err(status) if status.code() == tonic::Code::ResourceExhausted => {
                        use tonic_types::StatusExt as _;
                        let wait = status
                            .get_error_details()
                            .retry_info()
                            .and_then(|r| r.retry_delay)
                            .expect("a retry delay");
                        refusals += 1;
                        tokio::time::sleep(wait).await;
                    }
                    Err(status) => panic!("{status:?}"),
                }
            }
        });
    }
    let mut refusals = 0;
    let scoring = tokio::time::timeout(Duration::from_secs(120), async {
        while let Some(result) = calls.join_next().await {
            refusals += result.unwrap();
        }
    });
    scoring
        .await
        .expect("all 64 transcripts scored within two minutes");
    eprintln!("64 transcripts scored after {refusals} refusals");
    let worst = canary.await.unwrap();
    let peak = status_kib(pid, "VmHWM:");
    let after = status_kib(pid, "VmRSS:");
    drop(watchers);
    // The bound from the flags (docs/operations.md): transcripts in flight, each decoded with
    // its text (×4 for the request, its decoded copy and the engine's), watchers' filters (×4
    // for the set), connections' flow-control windows and h2's frame budget, plus the process's baseline and 64 MiB.
    let limits = Limits::default();
    let connections = 5;
    let bound_kib = baseline
        + (limits.max_concurrent_transcripts * 4 * limits.max_transcript_message_bytes
            + limits.max_watchers.min(300) * 4 * limits.max_watch_request_bytes
            + connections * hearken::server::CONNECTION_MEMORY
            + 64 * 1024 * 1024) as u64
            / 1024;
    eprintln!(
        "RSS baseline {baseline} KiB, peak {peak} KiB, after {after} KiB; bound {bound_kib} KiB; canary worst {worst:?}"
    );
    assert!(
        peak < bound_kib,
        "peak {peak} KiB over the bound {bound_kib} KiB"
    );
    assert!(peak < 512 * 1024, "peak {peak} KiB over 512 MiB");
    assert!(
        worst < Duration::from_secs(2),
        "the canary waited {worst:?}"
    );
}

//! Limits and their errors: caps answer in band and spare the others; whole-call problems get
//! the status `reliability.md` names, with `ErrorInfo` in the hearken domain.

mod common;

use common::*;
use hearken::proto::v1::stream_conversations_response::Payload;
use hearken::proto::v1::*;
use tonic_types::StatusExt as _;

#[tokio::test]
async fn conversations_beyond_the_stream_cap_are_rejected_and_the_others_keep_scoring() {
    let server = TestServer::new()
        .limits(|l| l.max_conversations_per_stream = 3)
        .start()
        .await;
    let mut client = server.client().await;
    let mut call = Call::open(&mut client).await;
    for id in ["a", "b", "c", "d"] {
        call.send(start(id)).await;
    }
    let r = call.expect().await;
    let Some(Payload::Rejection(rej)) = &r.payload else {
        panic!("{r:?}")
    };
    assert_eq!((r.conversation_id.as_str(), r.seq), ("d", 0));
    assert_eq!(rej.reason, RejectionReason::ResourceExhausted as i32);
    assert!(rej.retry_after_ms > 0);
    for id in ["a", "b", "c"] {
        call.send(utterance(id, "u1", Role::Customer, "hello", 0, 900))
            .await;
        let r = call.expect().await;
        assert_eq!((r.conversation_id.as_str(), kind(&r)), (id, "update"));
    }
    // Ending one frees a place.
    call.send(end("a")).await;
    assert_eq!(kind(&call.expect().await), "scorecard");
    call.send(start("d")).await;
    call.send(utterance("d", "u1", Role::Customer, "hello", 0, 900))
        .await;
    let r = call.expect().await;
    assert_eq!(
        (r.conversation_id.as_str(), r.seq, kind(&r)),
        ("d", 1, "update")
    );
}

#[tokio::test]
async fn the_process_cap_counts_conversations_across_streams() {
    let server = TestServer::new()
        .limits(|l| l.max_conversations_per_process = 2)
        .start()
        .await;
    let mut client = server.client().await;
    let mut first = Call::open(&mut client).await;
    let mut second = Call::open(&mut client).await;
    first.send(start("a")).await;
    first.send(start("b")).await;
    first
        .send(utterance("b", "u1", Role::Customer, "hi", 0, 500))
        .await;
    assert_eq!(kind(&first.expect().await), "update");
    second.send(start("c")).await;
    let r = second.expect().await;
    let Some(Payload::Rejection(rej)) = &r.payload else {
        panic!("{r:?}")
    };
    assert_eq!(rej.reason, RejectionReason::ResourceExhausted as i32);
    drop(first);
    // Once the first stream is gone its conversations are freed.
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        second.send(start("c")).await;
        second
            .send(utterance("c", "u1", Role::Customer, "hi", 0, 500))
            .await;
        let r = second.expect().await;
        if kind(&r) == "update" {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "conversations of a closed stream are freed"
        );
        let _ = second.expect().await; // the rejected utterance
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn an_over_size_message_ends_the_stream_with_resource_exhausted() {
    let server = TestServer::new()
        .limits(|l| l.max_stream_message_bytes = 1024)
        .start()
        .await;
    let mut client = server.client().await;
    let mut call = Call::open(&mut client).await;
    call.send(utterance(
        "c",
        "u1",
        Role::Customer,
        &"a".repeat(900),
        0,
        500,
    ))
    .await;
    assert_eq!(kind(&call.expect().await), "update");
    call.send(utterance(
        "c",
        "u2",
        Role::Customer,
        &"a".repeat(1100),
        0,
        500,
    ))
    .await;
    // The stream cannot go on, so its live conversation ends first, as abandoned, and the
    // scorecard is delivered before the status.
    let card = call.expect().await;
    match &card.payload {
        Some(Payload::Scorecard(card)) => {
            assert_eq!(card.end_reason, EndReason::Abandoned as i32)
        }
        other => panic!("{other:?}"),
    }
    let status = call.next().await.expect_err("stream-fatal");
    assert_eq!(status.code(), tonic::Code::ResourceExhausted);
    assert_eq!(
        status.get_error_details().error_info().unwrap().reason,
        "MESSAGE_TOO_LARGE"
    );
    assert!(!status.message().contains("aaaa"));
}

#[tokio::test]
async fn an_idle_conversation_is_ended_as_abandoned_with_its_scorecard() {
    let server = TestServer::new()
        .limits(|l| l.conversation_idle_timeout = std::time::Duration::from_millis(200))
        .start()
        .await;
    let mut client = server.client().await;
    let mut call = Call::open(&mut client).await;
    call.send(utterance("quiet", "u1", Role::Customer, "hello", 0, 500))
        .await;
    assert_eq!(kind(&call.expect().await), "update");
    let r = call.expect().await;
    let Some(Payload::Scorecard(card)) = &r.payload else {
        panic!("{r:?}")
    };
    assert_eq!(card.end_reason, EndReason::Abandoned as i32);
    // Its state is gone: a late message is refused as for an ended conversation.
    call.send(utterance(
        "quiet",
        "u2",
        Role::Customer,
        "still there",
        600,
        900,
    ))
    .await;
    let r = call.expect().await;
    let Some(Payload::Rejection(rej)) = &r.payload else {
        panic!("{r:?}")
    };
    assert_eq!(
        (r.seq, rej.reason),
        (0, RejectionReason::FailedPrecondition as i32)
    );
}

#[tokio::test]
async fn score_transcript_maps_whole_call_problems_to_statuses() {
    let server = TestServer::new()
        .limits(|l| l.max_transcript_utterances = 5)
        .start()
        .await;
    let mut client = server.client().await;
    let u = |i: usize| Utterance {
        utterance_id: format!("u{i}"),
        role: Role::Customer as i32,
        text: "hi".into(),
        ..Default::default()
    };
    let request = |utterances: Vec<Utterance>, profile: &str| ScoreTranscriptRequest {
        conversation_id: "t".into(),
        start: Some(ConversationStart {
            rubric_profile: profile.into(),
            ..Default::default()
        }),
        utterances,
        ..Default::default()
    };
    let empty = client
        .score_transcript(request(vec![], ""))
        .await
        .unwrap_err();
    assert_eq!(empty.code(), tonic::Code::InvalidArgument);
    let details = empty.get_error_details();
    assert_eq!(
        details.bad_request().unwrap().field_violations[0].field,
        "utterances"
    );
    assert_eq!(details.error_info().unwrap().domain, "hearken");

    let too_many = client
        .score_transcript(request((0..6).map(u).collect(), ""))
        .await
        .unwrap_err();
    assert_eq!(too_many.code(), tonic::Code::ResourceExhausted);
    assert_eq!(
        too_many.get_error_details().error_info().unwrap().reason,
        "TOO_MANY_UTTERANCES"
    );

    let profile = client
        .score_transcript(request(vec![u(1)], "nope"))
        .await
        .unwrap_err();
    assert_eq!(profile.code(), tonic::Code::FailedPrecondition);

    let ok = client
        .score_transcript(request((0..5).map(u).collect(), "chat"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(ok.scorecard.unwrap().rubric_profile, "chat");
    // A bad utterance inside is reported and the rest is scored.
    let mut bad = (0..3).map(u).collect::<Vec<_>>();
    bad[1].end_ms = Some(10); // an end without a start (a start without an end is scored)
    let partial = client
        .score_transcript(request(bad, ""))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(partial.rejections.len(), 1);
    assert_eq!(partial.scorecard.unwrap().metrics.unwrap().utterances, 2);
}

#[tokio::test]
async fn a_stream_ends_at_its_maximum_duration_after_delivering_its_responses() {
    let server = TestServer::new()
        .limits(|l| l.max_stream_duration = std::time::Duration::from_secs(2))
        .start()
        .await;
    let mut client = server.client().await;
    let opened = std::time::Instant::now();
    let mut call = Call::open(&mut client).await;
    call.send(utterance(
        "c",
        "u1",
        Role::Customer,
        "my router keeps dropping the connection every evening",
        0,
        6000,
    ))
    .await;
    call.send(utterance(
        "c",
        "u2",
        Role::Agent,
        "have you tried turning it off and on",
        3000,
        4500,
    ))
    .await;
    let kinds: Vec<&str> = [
        call.expect().await,
        call.expect().await,
        call.expect().await,
    ]
    .iter()
    .map(kind)
    .collect();
    assert_eq!(
        kinds,
        ["update", "update", "alert"],
        "responses before the limit are delivered"
    );
    let status = call
        .next()
        .await
        .expect_err("the stream ends with a status");
    let elapsed = opened.elapsed();
    assert_eq!(status.code(), tonic::Code::OutOfRange);
    assert_eq!(
        status.get_error_details().error_info().unwrap().reason,
        "STREAM_MAX_DURATION"
    );
    assert!(
        elapsed >= std::time::Duration::from_millis(1500)
            && elapsed <= std::time::Duration::from_millis(2500),
        "{elapsed:?}"
    );
}

#[tokio::test]
async fn an_idle_stream_ends_and_keep_alives_hold_it_open() {
    let idle = std::time::Duration::from_millis(600);
    let server = TestServer::new()
        .limits(|l| l.stream_idle_timeout = idle)
        .start()
        .await;
    let mut client = server.client().await;
    let mut call = Call::open(&mut client).await;
    // Keep-alives (no payload) every 200 ms for 1.5 s keep it open...
    for _ in 0..8 {
        call.send(StreamConversationsRequest {
            conversation_id: String::new(),
            payload: None,
        })
        .await;
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    call.send(utterance("c", "u1", Role::Customer, "still there", 0, 900))
        .await;
    assert_eq!(
        kind(&call.expect().await),
        "update",
        "the stream outlived its idle timeout thanks to keep-alives"
    );
    // ...and silence ends it.
    let quiet = std::time::Instant::now();
    let status = call.next().await.expect_err("idle stream ends");
    assert_eq!(status.code(), tonic::Code::OutOfRange);
    assert_eq!(
        status.get_error_details().error_info().unwrap().reason,
        "STREAM_IDLE"
    );
    assert!(
        quiet.elapsed() >= std::time::Duration::from_millis(400),
        "{:?}",
        quiet.elapsed()
    );
}

#[tokio::test]
async fn a_client_that_stops_reading_is_ended_and_its_conversations_freed() {
    let server = TestServer::new()
        .limits(|l| {
            l.client_not_reading_timeout = std::time::Duration::from_millis(800);
            l.outbound_queue = 4;
            l.max_conversations_per_process = 1;
        })
        .start()
        .await;
    // A connection with a tiny HTTP/2 window, so the server cannot park the responses in
    // flow-control buffers.
    let slow = tonic::transport::Endpoint::from_shared(server.url())
        .unwrap()
        .initial_stream_window_size(Some(1024))
        .connect()
        .await
        .unwrap();
    let mut slow_client =
        hearken::proto::v1::listening_service_client::ListeningServiceClient::new(slow);
    let call = Call::open(&mut slow_client).await;
    for i in 0..400 {
        call.send(utterance(
            "hog",
            &format!("u{i}"),
            Role::Customer,
            "words words words",
            i * 1000,
            i * 1000 + 900,
        ))
        .await;
    }
    // The only conversation slot of the process is freed once the stream is ended.
    let mut client = server.client().await;
    let mut other = Call::open(&mut client).await;
    let deadline = tokio::time::Instant::now() + WAIT;
    let mut attempt = 0;
    loop {
        attempt += 1;
        let id = format!("next-{attempt}");
        other
            .send(utterance(&id, "u1", Role::Customer, "hello", 0, 500))
            .await;
        let r = other.expect().await;
        if kind(&r) == "update" {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the slow client's conversation was never freed"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    // When it finally reads, the slow client learns why.
    let mut call = call;
    let status = loop {
        match call.next().await {
            Ok(Some(_)) => continue,
            Ok(None) => panic!("stream ended without a status"),
            Err(status) => break status,
        }
    };
    assert_eq!(status.code(), tonic::Code::ResourceExhausted);
    assert_eq!(
        status.get_error_details().error_info().unwrap().reason,
        "CLIENT_NOT_READING"
    );
}

#[tokio::test]
async fn a_conversation_sending_too_fast_is_rejected_in_band_and_the_others_go_on() {
    let server = TestServer::new()
        .limits(|l| l.max_messages_per_second = 50.0)
        .start()
        .await;
    let mut client = server.client().await;
    let mut call = Call::open(&mut client).await;
    call.send(start("calm")).await;
    call.send(start("burst")).await;
    // 100 messages at once from one conversation, all within the same second of the call (so
    // its call time earns them nothing): the burst allowance is 50.
    for i in 0..100 {
        call.send(utterance(
            "burst",
            &format!("u{i}"),
            Role::Customer,
            "hello",
            i,
            i + 5,
        ))
        .await;
    }
    call.send(utterance(
        "calm",
        "u1",
        Role::Customer,
        "hello there",
        0,
        900,
    ))
    .await;
    let (mut updates, mut limited, mut calm) = (0, 0, false);
    while updates + limited < 100 || !calm {
        let r = call.expect().await;
        match (&r.conversation_id[..], &r.payload) {
            ("calm", Some(Payload::Update(_))) => calm = true,
            ("burst", Some(Payload::Update(_))) => updates += 1,
            ("burst", Some(Payload::Rejection(rej))) => {
                assert_eq!(rej.reason, RejectionReason::ResourceExhausted as i32);
                assert!(rej.retry_after_ms > 0);
                // Not applied, so not in the conversation's sequence: a replay's
                // de-duplication by seq can never mistake it for data.
                assert_eq!(r.seq, 0);
                limited += 1;
            }
            other => panic!("{other:?}"),
        }
    }
    // The bucket refills while the burst is being read, so a few more than 50 may get through.
    assert!(
        (50..=60).contains(&updates),
        "{updates} accepted, {limited} limited"
    );
    assert!(limited >= 40, "{limited}");
}

#[tokio::test]
async fn a_tenant_opening_streams_too_fast_is_refused_with_a_retry_delay_and_open_streams_go_on() {
    let server = TestServer::new()
        .limits(|l| {
            l.stream_opens_per_second = 10.0;
            l.stream_open_burst = 50;
            // This client is unauthenticated: limited by its address only when asked to.
            l.stream_open_rate_by_peer = true;
        })
        .start()
        .await;
    let mut client = server.client().await;
    // 100 opens at once from one tenant (this client's address): the burst of 50 gets in (one
    // or two more if the bucket refills meanwhile), the rest are refused. A refusal is the
    // stream's only response (never a reset of the HTTP/2 stream by the server).
    let mut calls = Vec::new();
    let mut refused = Vec::new();
    for _ in 0..100 {
        let (tx, rx) = tokio::sync::mpsc::channel(4);
        match client
            .stream_conversations(tokio_stream::wrappers::ReceiverStream::new(rx))
            .await
        {
            Ok(response) => calls.push(Call {
                tx,
                rx: response.into_inner(),
            }),
            Err(status) => refused.push(status),
        }
    }
    // An admitted stream answers nothing until spoken to; a refused one has ended by now.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let mut open = Vec::new();
    for mut call in calls {
        match tokio::time::timeout(std::time::Duration::from_millis(20), call.rx.message()).await {
            Err(_) => open.push(call),
            Ok(Err(status)) => refused.push(status),
            Ok(other) => panic!("{other:?}"),
        }
    }
    assert!((50..=55).contains(&open.len()), "{} opened", open.len());
    assert_eq!(open.len() + refused.len(), 100);
    for status in &refused {
        assert_eq!(status.code(), tonic::Code::ResourceExhausted);
        let details = status.get_error_details();
        assert_eq!(details.error_info().unwrap().reason, "STREAM_OPEN_RATE");
        let wait = details.retry_info().unwrap().retry_delay.unwrap();
        assert!(wait <= std::time::Duration::from_millis(100), "{wait:?}");
        assert_eq!(
            details.quota_failure().unwrap().violations[0].subject,
            "tenant"
        );
    }
    // The streams that were admitted work.
    let call = &mut open[0];
    call.send(utterance("c", "u1", Role::Customer, "hello", 0, 900))
        .await;
    assert_eq!(kind(&call.expect().await), "update");
}

#[tokio::test]
async fn an_open_stream_outlives_its_connections_maximum_age_and_new_calls_still_work() {
    let server = TestServer::new()
        .config(|c| c.max_connection_age = std::time::Duration::from_millis(500))
        .start()
        .await;
    let mut client = server.client().await;
    let mut call = Call::open(&mut client).await;
    call.send(utterance("c", "u1", Role::Customer, "hello", 0, 900))
        .await;
    assert_eq!(kind(&call.expect().await), "update");
    // Past the age (with its +10 % jitter): the server has sent GOAWAY on this connection.
    tokio::time::sleep(std::time::Duration::from_millis(1_200)).await;
    call.send(utterance(
        "c",
        "u2",
        Role::Agent,
        "I can help with that",
        1_000,
        2_000,
    ))
    .await;
    assert_eq!(
        kind(&call.expect().await),
        "update",
        "the open stream lives on (grace)"
    );
    // New calls on the same channel go out on a fresh connection.
    let mut again = Call::open(&mut client).await;
    again
        .send(utterance("d", "u1", Role::Customer, "hi", 0, 900))
        .await;
    assert_eq!(kind(&again.expect().await), "update");
}

#[tokio::test]
async fn the_tenant_cap_counts_live_conversations_across_the_tenants_streams() {
    let server = TestServer::new()
        .limits(|l| l.max_conversations_per_tenant = 3)
        .start()
        .await;
    let mut client = server.client().await;
    let mut first = Call::open(&mut client).await;
    let mut second = Call::open(&mut client).await;
    for id in ["a", "b"] {
        first.send(start(id)).await;
    }
    second.send(start("c")).await;
    second.send(start("d")).await;
    let r = second.expect().await;
    let Some(Payload::Rejection(rej)) = &r.payload else {
        panic!("{r:?}")
    };
    assert_eq!(r.conversation_id, "d");
    assert_eq!(rej.reason, RejectionReason::ResourceExhausted as i32);
    assert!(
        rej.description.contains("this tenant"),
        "{}",
        rej.description
    );
    // Ending one on the first stream frees a place for the tenant on the second.
    first.send(end("a")).await;
    assert_eq!(kind(&first.expect().await), "scorecard");
    second.send(start("d")).await;
    second
        .send(utterance("d", "u1", Role::Customer, "hello", 0, 900))
        .await;
    let r = second.expect().await;
    assert_eq!((r.conversation_id.as_str(), kind(&r)), ("d", "update"));
    // A stream that goes away gives its tenant's places back ("b" was still live on it).
    drop(first);
    let mut third = Call::open(&mut client).await;
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        // The utterance opens the conversation when there is a place.
        third
            .send(utterance("e", "u1", Role::Customer, "hello", 0, 900))
            .await;
        let r = third.expect().await;
        if kind(&r) == "update" {
            break;
        }
        // The first stream's task may not have ended yet: retry until it has.
        assert!(
            std::time::Instant::now() < deadline,
            "the place was never freed"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    third.send(start("f")).await;
    assert_eq!(
        kind(&third.expect().await),
        "rejection",
        "the tenant is at its cap again"
    );
}

//! What a real deployment does to a server, over real sockets: bursts of small messages,
//! a gateway opening a thousand calls at once, refusals, messages that cannot be decoded,
//! half-closes after a burst, refused starts, probes watching health through a drain.

mod common;

use std::time::Duration;

use common::raw;
use common::*;
use hearken::proto::v1::stream_conversations_response::Payload;
use hearken::proto::v1::*;
use prost::Message as _;
use tokio_stream::StreamExt as _;
use tonic_types::StatusExt as _;

/// h2 closes a whole connection (GOAWAY ENHANCE_YOUR_CALM "too_many_data_frames") when small
/// DATA frames pile up unread; before, a burst on one stream did that, and every call on the
/// connection died. Now the flood is read promptly (and, when its queue is full, held back by
/// its own stream window), and a canary call on the same connection finishes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_small_messages_never_costs_the_other_calls_on_its_connection() {
    let server = TestServer::new().start().await;
    let mut connection = raw::connect(server.addr).await;
    let (flood_response, mut flood) = raw::open(&mut connection, "StreamConversations").await;
    // 20 conversations × 1 000 utterances, one DATA frame each, as fast as h2 sends them.
    let mut sent = 0;
    let mut smallest = usize::MAX;
    for i in 0..1_000i64 {
        for c in 0..20 {
            let request = utterance(
                &format!("flood-{c:02}"),
                &format!("u{i:05}"),
                if i % 2 == 0 {
                    Role::Customer
                } else {
                    Role::Agent
                },
                "okay yes I see that thank you",
                i * 2_000,
                i * 2_000 + 1_500,
            );
            let bytes = raw::message(&request);
            smallest = smallest.min(bytes.len());
            flood.send_data(bytes, false).unwrap();
            sent += 1;
        }
    }
    assert!(
        smallest < 256,
        "the messages must be small frames: {smallest}"
    );
    for c in 0..20 {
        flood
            .send_data(raw::message(&end(&format!("flood-{c:02}"))), false)
            .unwrap();
    }
    let flood_reader = tokio::spawn(async move {
        let mut cards = 0;
        raw::read_answer(flood_response, move |r| {
            cards += usize::from(raw::is_scorecard(r));
            cards == 20
        })
        .await
    });
    // The canary, on the same connection, while the flood is in flight.
    let (canary_response, mut canary) = raw::open(&mut connection, "StreamConversations").await;
    for request in [
        start("canary"),
        utterance("canary", "u1", Role::Customer, "my bill is wrong", 0, 2_000),
        utterance(
            "canary",
            "u2",
            Role::Agent,
            "I see, tell me more",
            2_500,
            4_000,
        ),
        end("canary"),
    ] {
        canary.send_data(raw::message(&request), false).unwrap();
    }
    let canary = tokio::time::timeout(WAIT, raw::read_answer(canary_response, raw::is_scorecard))
        .await
        .expect("the canary within the wait");
    assert!(
        canary.responses.iter().any(raw::is_scorecard),
        "the canary got no scorecard: {canary:?}"
    );
    let flood = tokio::time::timeout(Duration::from_secs(60), flood_reader)
        .await
        .expect("the flood within a minute")
        .unwrap();
    let updates = flood
        .responses
        .iter()
        .filter(|r| matches!(r.payload, Some(Payload::Update(_))))
        .count();
    assert_eq!(updates, sent, "every flooded utterance answered");
}

/// One gateway (one client, one connection) opens a thousand calls at once on default flags:
/// all stream within 10 s, and again after a drain sends them all to another server at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gateway_opening_a_thousand_calls_at_once_gets_them_all_in_and_again_after_a_drain() {
    // Default admission (the test harness lifts the open rate; this test must not).
    let defaults = hearken::service::Limits::default();
    let mut first = TestServer::new()
        .limits(|l| l.stream_opens_per_second = defaults.stream_opens_per_second)
        .start()
        .await;
    let second = TestServer::new()
        .limits(|l| l.stream_opens_per_second = defaults.stream_opens_per_second)
        .start()
        .await;
    async fn thousand_calls(
        client: hearken::proto::v1::listening_service_client::ListeningServiceClient<
            tonic::transport::Channel,
        >,
    ) -> Vec<Call> {
        let opened = std::time::Instant::now();
        let mut calls = Vec::new();
        let mut tasks = tokio::task::JoinSet::new();
        for i in 0..1_000 {
            let mut client = client.clone();
            tasks.spawn(async move {
                let mut call = Call::open(&mut client).await;
                call.send(utterance(
                    &format!("call-{i}"),
                    "u1",
                    Role::Customer,
                    "hello",
                    0,
                    900,
                ))
                .await;
                let first = call.expect().await;
                assert_eq!(kind(&first), "update", "{first:?}");
                call
            });
        }
        while let Some(call) = tasks.join_next().await {
            calls.push(call.unwrap());
        }
        assert!(
            opened.elapsed() < Duration::from_secs(10),
            "{:?} to get 1 000 calls streaming",
            opened.elapsed()
        );
        calls
    }
    let calls = thousand_calls(first.client().await).await;
    assert_eq!(calls.len(), 1_000);
    first.shutdown();
    let mut drained = 0;
    for mut call in calls {
        let status = call.next().await.expect_err("drained");
        assert_eq!(status.code(), tonic::Code::Unavailable);
        drained += 1;
    }
    assert_eq!(drained, 1_000);
    // The reconnect storm: every call to the other server at once.
    let calls = thousand_calls(second.client().await).await;
    assert_eq!(calls.len(), 1_000);
}

/// A message that cannot be decoded ends the stream with a status that says so (before: OK and
/// nothing), after the stream's live conversations end with abandoned scorecards.
#[tokio::test]
async fn a_message_that_cannot_be_decoded_ends_the_stream_honestly() {
    let server = TestServer::new().start().await;
    let mut connection = raw::connect(server.addr).await;
    let mut invalid_utf8 = utterance("c", "u2", Role::Agent, "ok", 1_000, 1_500).encode_to_vec();
    let at = invalid_utf8
        .windows(2)
        .position(|w| w == b"ok")
        .expect("the text's bytes");
    invalid_utf8[at] = 0xff;
    for bad in [
        raw::frame(&[0xff, 0xff, 0xff, 0x0f]),
        raw::frame(&invalid_utf8),
    ] {
        let (response, mut send) = raw::open(&mut connection, "StreamConversations").await;
        send.send_data(
            raw::message(&utterance("c", "u1", Role::Customer, "hello", 0, 900)),
            false,
        )
        .unwrap();
        send.send_data(bad, false).unwrap();
        let answer = tokio::time::timeout(WAIT, raw::read_answer(response, |_| false))
            .await
            .expect("an answer");
        let kinds: Vec<&str> = answer.responses.iter().map(kind).collect();
        assert_eq!(kinds, ["update", "scorecard"], "{answer:?}");
        match &answer.responses[1].payload {
            Some(Payload::Scorecard(card)) => {
                assert_eq!(card.end_reason, EndReason::Abandoned as i32)
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(answer.code, Some(tonic::Code::InvalidArgument as i32));
        assert_eq!(answer.reason.as_deref(), Some("MALFORMED_MESSAGE"));
    }
}

/// A message over the stream limit is refused from its length prefix, before its body is
/// buffered: a half-sent 4 MB message is answered at once instead of held for the idle timeout.
#[tokio::test]
async fn a_half_sent_over_size_message_is_refused_before_it_is_buffered() {
    let server = TestServer::new().start().await;
    let mut connection = raw::connect(server.addr).await;
    let mut pending = Vec::new();
    for _ in 0..50 {
        let (response, mut send) = raw::open(&mut connection, "StreamConversations").await;
        let mut prefix = vec![0u8];
        prefix.extend_from_slice(&4_000_000u32.to_be_bytes());
        prefix.extend_from_slice(&[b'a'; 60_000]);
        send.send_data(prefix.into(), false).unwrap();
        pending.push((response, send));
    }
    for (response, _send) in pending {
        let answer = tokio::time::timeout(WAIT, raw::read_answer(response, |_| false))
            .await
            .expect("answered without the rest of the message");
        assert_eq!(answer.code, Some(tonic::Code::ResourceExhausted as i32));
        assert_eq!(answer.reason.as_deref(), Some("MESSAGE_TOO_LARGE"));
    }
}

/// `ScoreTranscript` over its limit: RESOURCE_EXHAUSTED with `ErrorInfo{MESSAGE_TOO_LARGE}` as
/// documented (before: tonic's OUT_OF_RANGE without details).
#[tokio::test]
async fn an_over_size_transcript_is_resource_exhausted_as_documented() {
    let server = TestServer::new()
        .limits(|l| l.max_transcript_message_bytes = 64 * 1024)
        .start()
        .await;
    let mut client = server.client().await;
    let mut request = one_utterance_transcript("big", "hello");
    request.utterances[0].text = "a".repeat(60_000);
    for i in 0..2 {
        let mut u = request.utterances[0].clone();
        u.utterance_id = format!("more{i}");
        request.utterances.push(u);
    }
    let status = client.score_transcript(request).await.unwrap_err();
    assert_eq!(status.code(), tonic::Code::ResourceExhausted, "{status:?}");
    assert_eq!(
        status.get_error_details().error_info().unwrap().reason,
        "MESSAGE_TOO_LARGE"
    );
}

/// A burst then a half-close: the server's own end of the live conversation is never
/// rate-limited, so its scorecard arrives (before: the abandon was refused, no scorecard).
#[tokio::test]
async fn a_burst_then_a_half_close_still_gets_the_scorecard() {
    let server = TestServer::new().start().await;
    let mut client = server.client().await;
    let requests: Vec<_> = (0..150)
        .map(|i| utterance("b", &format!("u{i}"), Role::Customer, "hi", 0, 10))
        .collect();
    let mut responses = client
        .stream_conversations(tokio_stream::iter(requests))
        .await
        .unwrap()
        .into_inner();
    let mut kinds = Vec::new();
    while let Some(r) = tokio::time::timeout(WAIT, responses.next())
        .await
        .expect("an answer")
    {
        kinds.push(kind(&r.expect("ends OK")));
    }
    assert!(kinds.contains(&"rejection"), "the burst was over the rate");
    assert_eq!(kinds.last(), Some(&"scorecard"), "{kinds:?}");
}

/// A `start` refused for its profile does not let the next utterance open the call with the
/// default profile (before: silently opened with defaults); a valid start then opens it.
#[tokio::test]
async fn a_refused_start_keeps_its_conversation_closed() {
    let server = TestServer::new().start().await;
    let mut client = server.client().await;
    let mut call = Call::open(&mut client).await;
    let mut bad = start("c");
    if let Some(stream_conversations_request::Payload::Start(s)) = bad.payload.as_mut() {
        s.rubric_profile = "no-such-profile".into();
    }
    call.send(bad).await;
    let refused = call.expect().await;
    assert_eq!(kind(&refused), "rejection");
    call.send(utterance("c", "u1", Role::Customer, "hello", 0, 900))
        .await;
    let r = call.expect().await;
    match &r.payload {
        Some(Payload::Rejection(rejection)) => {
            assert_eq!(rejection.field, "start");
            assert!(
                rejection.description.contains("start was rejected"),
                "{rejection:?}"
            );
            assert_eq!(r.seq, 0);
        }
        other => panic!("{other:?}"),
    }
    call.send(start("c")).await;
    call.send(utterance("c", "u1", Role::Customer, "hello", 0, 900))
        .await;
    assert_eq!(kind(&call.expect().await), "update");
}

/// Ids with bidirectional overrides or zero-width characters would let an id in a supervisor's
/// feed pose as another: rejected like control characters.
#[tokio::test]
async fn ids_with_bidi_or_zero_width_characters_are_rejected() {
    let server = TestServer::new().start().await;
    let mut client = server.client().await;
    let mut call = Call::open(&mut client).await;
    for id in ["abc\u{202E}fed", "a\u{200B}b", "x\u{2066}y"] {
        call.send(utterance(id, "u1", Role::Customer, "hello", 0, 900))
            .await;
        match call.expect().await.payload {
            Some(Payload::Rejection(r)) => assert_eq!(r.field, "conversation_id"),
            other => panic!("{other:?}"),
        }
    }
}

/// `f`, failing the test after `WAIT`.
async fn within<T>(f: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(WAIT, f)
        .await
        .expect("an answer within the wait")
}

/// Readiness turns NOT_SERVING at the process's conversation cap (so Kubernetes routes new calls
/// elsewhere) and SERVING again with room; liveness stays SERVING.
#[tokio::test]
async fn readiness_follows_the_conversation_cap() {
    use tonic_health::pb::health_client::HealthClient;
    use tonic_health::pb::{HealthCheckRequest, health_check_response::ServingStatus};
    let server = TestServer::new()
        .limits(|l| l.max_conversations_per_process = 2)
        .start()
        .await;
    let mut health = HealthClient::new(server.channel().await);
    let check = |service: &str| HealthCheckRequest {
        service: service.into(),
    };
    let status = |r: tonic::Response<tonic_health::pb::HealthCheckResponse>| r.into_inner().status;
    let ready = "hearken.v1.ListeningService";
    assert_eq!(
        status(health.check(check(ready)).await.unwrap()),
        ServingStatus::Serving as i32
    );
    let mut client = server.client().await;
    let mut call = Call::open(&mut client).await;
    for id in ["a", "b"] {
        call.send(utterance(id, "u1", Role::Customer, "hello", 0, 900))
            .await;
        assert_eq!(kind(&call.expect().await), "update");
    }
    assert_eq!(
        status(health.check(check(ready)).await.unwrap()),
        ServingStatus::NotServing as i32
    );
    assert_eq!(
        status(health.check(check("")).await.unwrap()),
        ServingStatus::Serving as i32
    );
    call.send(end("a")).await;
    assert_eq!(kind(&call.expect().await), "scorecard");
    assert_eq!(
        status(health.check(check(ready)).await.unwrap()),
        ServingStatus::Serving as i32
    );
}

/// A probe holding `Health/Watch` open no longer holds the drain to its deadline: it sees
/// NOT_SERVING, then its watch ends with UNAVAILABLE (DRAINING), and the server stops at once.
#[tokio::test]
async fn a_health_watcher_sees_the_drain_and_does_not_hold_it() {
    use tonic_health::pb::health_check_response::ServingStatus;
    let mut server = TestServer::new()
        .config(|c| {
            c.drain_delay = Duration::from_millis(200);
            c.drain_deadline = Duration::from_secs(20);
        })
        .start()
        .await;
    let mut watch = server.watch_readiness().await;
    let first = within(watch.message()).await.unwrap().unwrap();
    assert_eq!(first.status, ServingStatus::Serving as i32);
    let stopping = std::time::Instant::now();
    server.shutdown();
    let not_serving = within(watch.message()).await.unwrap().unwrap();
    assert_eq!(not_serving.status, ServingStatus::NotServing as i32);
    let status = within(watch.message()).await.expect_err("the watch ends");
    assert_eq!(status.code(), tonic::Code::Unavailable);
    assert_eq!(
        status.get_error_details().error_info().unwrap().reason,
        "DRAINING"
    );
    drop(watch);
    tokio::time::timeout(Duration::from_secs(5), server.task)
        .await
        .expect("the server stops well before its 20 s deadline")
        .unwrap()
        .unwrap();
    assert!(stopping.elapsed() < Duration::from_secs(5));
}

/// A process-wide budget of request bytes smaller than one message: each reader takes the
/// whole budget per message instead of waiting for more than exists (a deadlock), and three
/// streams sharing it still get every update, in order. (It checks the clamp, not how much the
/// budget slows anyone: that is not observable here.)
#[tokio::test]
async fn a_process_wide_request_budget_smaller_than_a_message_neither_deadlocks_nor_loses() {
    let server = TestServer::new()
        .limits(|l| l.max_inflight_request_bytes = 64)
        .start()
        .await;
    let mut client = server.client().await;
    let mut calls = Vec::new();
    for c in 0..3 {
        let call = Call::open(&mut client).await;
        for i in 0..50i64 {
            call.send(utterance(
                &format!("c{c}"),
                &format!("u{i}"),
                Role::Customer,
                "a message larger than the whole budget of sixty-four bytes",
                i * 1_000,
                i * 1_000 + 900,
            ))
            .await;
        }
        calls.push(call);
    }
    for mut call in calls {
        let mut ids = Vec::new();
        while ids.len() < 50 {
            match call.expect().await.payload {
                Some(Payload::Update(u)) => ids.push(u.utterance_id),
                Some(Payload::Alert(_)) => {}
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(ids, (0..50).map(|i| format!("u{i}")).collect::<Vec<_>>());
    }
}

/// #29: ~35-byte messages, each opening a conversation, from a client that reads its responses:
/// GOAWAY `too_many_data_frames` after 5 000–6 300 frames, and the neighbouring call on the
/// connection got nothing (89-, 129- and 231-byte messages were fine). Now no size closes the
/// connection: keep-alives (5 bytes, the smallest message there is) and utterances of 35 to 231
/// bytes, each in a DATA frame of its own, as fast as h2 sends them; the flood is answered, the
/// neighbour on the same connection finishes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_of_any_size_on_one_stream_never_close_the_connection() {
    for target in [5usize, 35, 60, 89, 129, 231] {
        let server = TestServer::new().start().await;
        let mut connection = raw::connect(server.addr).await;
        let (flood_response, mut flood) = raw::open(&mut connection, "StreamConversations").await;
        let n = 9_000;
        // Each opens a conversation of its own (or, at 5 bytes, is a keep-alive).
        let message = |i: usize| {
            if target == 5 {
                return raw::message(&StreamConversationsRequest::default());
            }
            let mut text = String::from("ok");
            loop {
                let r = utterance(&format!("t{i:05}"), "u", Role::Customer, &text, 0, 1);
                let bytes = raw::message(&r);
                if bytes.len() >= target {
                    return bytes;
                }
                text.push('k');
            }
        };
        let size = message(0).len();
        assert!(
            size.abs_diff(target) <= 1,
            "{target}: a message is {size} bytes"
        );
        // The flood's reader runs from the start: this client reads promptly. Keep-alives are
        // not answered; one utterance after them is.
        let expected = if target == 5 { 1 } else { n };
        let flood_reader = tokio::spawn(async move {
            let mut answered = 0;
            raw::read_answer(flood_response, move |_| {
                answered += 1;
                answered == expected
            })
            .await
        });
        for i in 0..n {
            flood.send_data(message(i), false).unwrap();
        }
        if target == 5 {
            let last = utterance("after", "u", Role::Customer, "ok", 0, 1);
            flood.send_data(raw::message(&last), false).unwrap();
        }
        let (canary_response, mut canary) = raw::open(&mut connection, "StreamConversations").await;
        for request in [
            start("canary"),
            utterance("canary", "u1", Role::Customer, "my bill is wrong", 0, 2_000),
            end("canary"),
        ] {
            canary.send_data(raw::message(&request), false).unwrap();
        }
        let canary =
            tokio::time::timeout(WAIT, raw::read_answer(canary_response, raw::is_scorecard))
                .await
                .unwrap_or_else(|_| panic!("{target}-byte flood: the canary within the wait"));
        assert!(
            canary.responses.iter().any(raw::is_scorecard),
            "{target}-byte flood: the canary got no scorecard: {canary:?}"
        );
        let flood = tokio::time::timeout(Duration::from_secs(60), flood_reader)
            .await
            .unwrap_or_else(|_| panic!("{target}-byte flood: not answered within a minute"))
            .unwrap();
        assert_eq!(
            flood.responses.len(),
            expected,
            "{target}-byte flood: {} answers, ended {:?} {:?}",
            flood.responses.len(),
            flood.code,
            flood.reason
        );
        eprintln!("{size}-byte messages: {n} sent, {expected} answered, the neighbour served");
    }
}

//! `StreamConversations` over real gRPC on loopback.

mod common;

use common::*;
use hearken::proto::v1::stream_conversations_response::Payload;
use hearken::proto::v1::*;

#[tokio::test]
async fn interruption_alert_comes_in_the_same_batch_and_backchannel_raises_none() {
    let server = TestServer::new().start().await;
    let mut client = server.client().await;
    let mut call = Call::open(&mut client).await;
    call.send(start("c1")).await;
    call.send(utterance(
        "c1",
        "u1",
        Role::Customer,
        "my router keeps dropping the connection every single evening",
        0,
        6000,
    ))
    .await;
    let r = call.expect().await;
    assert_eq!((r.seq, kind(&r)), (1, "update"));

    // "mm-hmm" inside the customer's turn: a backchannel, no alert.
    call.send(utterance("c1", "u2", Role::Agent, "mm-hmm", 2000, 2400))
        .await;
    let r = call.expect().await;
    let Some(Payload::Update(update)) = &r.payload else {
        panic!("{r:?}")
    };
    assert_eq!(r.seq, 2);
    assert_eq!(
        update
            .behaviours
            .iter()
            .map(|b| b.behaviour)
            .collect::<Vec<_>>(),
        [Behaviour::Backchannel as i32]
    );

    // Talking over the customer mid-sentence: update, then the alert, before anything else.
    call.send(utterance(
        "c1",
        "u3",
        Role::Agent,
        "have you tried turning it off and on",
        3000,
        4500,
    ))
    .await;
    let update = call.expect().await;
    let alert = call.expect().await;
    assert_eq!((update.seq, kind(&update)), (3, "update"));
    let Some(Payload::Alert(alert_body)) = &alert.payload else {
        panic!("{alert:?}")
    };
    assert_eq!(alert.seq, 4);
    assert_eq!(alert_body.kind, AlertKind::Interruption as i32);
    assert_eq!(alert_body.evidence_utterance_ids, ["u3", "u1"]);
    assert_eq!(alert_body.alert_id, "interruption-1");
    assert!(alert_body.time.is_some());

    call.send(end("c1")).await;
    let card = call.expect().await;
    let Some(Payload::Scorecard(card_body)) = &card.payload else {
        panic!("{card:?}")
    };
    assert_eq!(card.seq, 5);
    assert_eq!(card_body.alerts.len(), 1);
    assert_eq!(card_body.metrics.as_ref().unwrap().interruptions, 1);
    assert_eq!(card_body.metrics.as_ref().unwrap().backchannels, 1);
    let Call { tx, mut rx } = call;
    drop(tx);
    let last = tokio::time::timeout(WAIT, rx.message()).await.unwrap();
    assert!(
        last.unwrap().is_none(),
        "stream ends OK after the client half-closes"
    );
}

#[tokio::test]
async fn a_bad_message_is_rejected_in_band_and_other_conversations_go_on() {
    let server = TestServer::new().start().await;
    let mut client = server.client().await;
    let mut call = Call::open(&mut client).await;
    call.send(start("good")).await;
    call.send(start("bad")).await;
    call.send(utterance(
        "good",
        "u1",
        Role::Customer,
        "hello there",
        0,
        1000,
    ))
    .await;
    // End before start: out of range, and its text must not come back.
    call.send(utterance(
        "bad",
        "u1",
        Role::Customer,
        "card 4111 1111 1111 1111",
        5000,
        1000,
    ))
    .await;
    // A second start for a live conversation.
    call.send(start("good")).await;
    // Too long text.
    call.send(utterance(
        "bad",
        "u2",
        Role::Agent,
        &"x".repeat(16_385),
        0,
        1000,
    ))
    .await;
    call.send(utterance(
        "good",
        "u2",
        Role::Agent,
        "hi how can I help",
        1200,
        2500,
    ))
    .await;
    call.send(end("good")).await;
    call.send(end("bad")).await;
    let responses = call.until_scorecards(2).await;

    let good: Vec<_> = responses
        .iter()
        .filter(|r| r.conversation_id == "good")
        .collect();
    let bad: Vec<_> = responses
        .iter()
        .filter(|r| r.conversation_id == "bad")
        .collect();
    assert_eq!(
        good.iter().map(|r| kind(r)).collect::<Vec<_>>(),
        ["update", "rejection", "update", "scorecard"]
    );
    assert_eq!(
        good.iter().map(|r| r.seq).collect::<Vec<_>>(),
        [1, 2, 3, 4],
        "seq gap-free, rejection included"
    );
    assert_eq!(
        bad.iter().map(|r| kind(r)).collect::<Vec<_>>(),
        ["rejection", "rejection", "scorecard"]
    );
    let rejections: Vec<&Rejection> = bad
        .iter()
        .filter_map(|r| match &r.payload {
            Some(Payload::Rejection(x)) => Some(x),
            _ => None,
        })
        .collect();
    assert_eq!(rejections[0].reason, RejectionReason::OutOfRange as i32);
    assert_eq!(rejections[0].field, "utterance.end_ms");
    assert_eq!(rejections[0].utterance_id, "u1");
    assert_eq!(
        rejections[1].reason,
        RejectionReason::InvalidArgument as i32
    );
    assert_eq!(rejections[1].field, "utterance.text");
    for r in &responses {
        let json = serde_json::to_string(r).unwrap();
        assert!(
            !json.contains("4111") && !json.contains("xxxxxxxx"),
            "no text echoed: {json}"
        );
    }
}

#[tokio::test]
async fn unknown_conversations_and_messages_after_end_are_rejected_without_a_seq() {
    let server = TestServer::new().start().await;
    let mut client = server.client().await;
    let mut call = Call::open(&mut client).await;
    call.send(end("never-started")).await;
    let r = call.expect().await;
    assert_eq!(
        (r.seq, kind(&r), r.conversation_id.as_str()),
        (0, "rejection", "never-started")
    );

    // The first utterance of an unknown conversation starts it with defaults.
    call.send(utterance("auto", "u1", Role::Customer, "hello", 0, 500))
        .await;
    assert_eq!(call.expect().await.seq, 1);
    call.send(end("auto")).await;
    assert_eq!(kind(&call.expect().await), "scorecard");
    call.send(utterance(
        "auto",
        "u2",
        Role::Customer,
        "are you there",
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

    // An invalid conversation id is not echoed.
    call.send(utterance(
        &"c".repeat(300),
        "u1",
        Role::Customer,
        "hello",
        0,
        500,
    ))
    .await;
    let r = call.expect().await;
    assert_eq!((r.conversation_id.as_str(), kind(&r)), ("", "rejection"));

    // Unknown rubric profile.
    let mut s = start("p");
    if let Some(stream_conversations_request::Payload::Start(st)) = &mut s.payload {
        st.rubric_profile = "no-such-profile".into();
    }
    call.send(s).await;
    let r = call.expect().await;
    let Some(Payload::Rejection(rej)) = &r.payload else {
        panic!("{r:?}")
    };
    assert_eq!(rej.reason, RejectionReason::UnknownProfile as i32);
}

#[tokio::test]
async fn partial_segments_are_acknowledged_and_superseded_by_the_final() {
    let server = TestServer::new().start().await;
    let mut client = server.client().await;
    let mut call = Call::open(&mut client).await;
    let mut partial = utterance("c", "u1", Role::Customer, "my bill is", 0, 900);
    if let Some(stream_conversations_request::Payload::Utterance(u)) = &mut partial.payload {
        u.partial = true;
    }
    call.send(partial).await;
    let r = call.expect().await;
    let Some(Payload::Update(u)) = &r.payload else {
        panic!()
    };
    assert!(u.partial);
    assert_eq!(
        u.metrics.as_ref().unwrap().utterances,
        0,
        "a partial scores nothing"
    );
    call.send(utterance(
        "c",
        "u1",
        Role::Customer,
        "my bill is wrong this month",
        0,
        2400,
    ))
    .await;
    let r = call.expect().await;
    let Some(Payload::Update(u)) = &r.payload else {
        panic!()
    };
    assert!(!u.partial);
    assert_eq!(u.metrics.as_ref().unwrap().customer_talk_ms, 2400);
    // Repeating the identical final is ignored; a different final with the same id is rejected.
    call.send(utterance(
        "c",
        "u1",
        Role::Customer,
        "my bill is wrong this month",
        0,
        2400,
    ))
    .await;
    call.send(utterance(
        "c",
        "u1",
        Role::Customer,
        "something else",
        0,
        2400,
    ))
    .await;
    let r = call.expect().await;
    let Some(Payload::Rejection(rej)) = &r.payload else {
        panic!("{r:?}")
    };
    assert_eq!(
        (r.seq, rej.reason),
        (3, RejectionReason::AlreadyExists as i32)
    );
}

#[tokio::test]
async fn live_stream_and_score_transcript_give_the_same_scorecard() {
    let server = TestServer::new().start().await;
    let mut client = server.client().await;
    for t in demo_calls() {
        let mut call = Call::open(&mut client).await;
        for r in requests_of(&t, &t.conversation_id) {
            call.send(r).await;
        }
        let responses = call.until_scorecards(1).await;
        let Some(Payload::Scorecard(live)) = responses.last().unwrap().payload.clone() else {
            panic!()
        };
        let request = ScoreTranscriptRequest {
            conversation_id: t.conversation_id.clone(),
            start: Some(ConversationStart::default()),
            utterances: t
                .utterances
                .iter()
                .map(hearken::proto::utterance_to_proto)
                .collect(),
            signals: t
                .signals
                .iter()
                .map(hearken::proto::signal_to_proto)
                .collect(),
            include_timeline: true,
        };
        let batch = client.score_transcript(request).await.unwrap().into_inner();
        assert_eq!(
            without_times(live.clone()),
            without_times(batch.scorecard.clone().unwrap()),
            "{}",
            t.conversation_id
        );
        let live_updates: Vec<_> = responses
            .iter()
            .filter_map(|r| match &r.payload {
                Some(Payload::Update(u)) => Some(u.clone()),
                _ => None,
            })
            .collect();
        assert_eq!(
            live_updates, batch.timeline,
            "timeline equals the live updates"
        );
        assert!(batch.rejections.is_empty());
    }
}

#[tokio::test]
async fn many_conversations_interleaved_on_one_stream_keep_their_own_seq() {
    let server = TestServer::new().start().await;
    let mut client = server.client().await;
    let mut call = Call::open(&mut client).await;
    let calls = demo_calls();
    let n = 30;
    let streams: Vec<Vec<StreamConversationsRequest>> = (0..n)
        .map(|i| requests_of(&calls[i % calls.len()], &format!("conv-{i}")))
        .collect();
    let longest = streams.iter().map(Vec::len).max().unwrap();
    for step in 0..longest {
        for s in &streams {
            if let Some(r) = s.get(step) {
                call.send(r.clone()).await;
            }
        }
    }
    let responses = call.until_scorecards(n).await;
    for i in 0..n {
        let id = format!("conv-{i}");
        let seqs: Vec<i64> = responses
            .iter()
            .filter(|r| r.conversation_id == id)
            .map(|r| r.seq)
            .collect();
        assert_eq!(seqs, (1..=seqs.len() as i64).collect::<Vec<_>>(), "{id}");
    }
}

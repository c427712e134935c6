//! `WatchAlerts`: filters, and a slow watcher that is told what it missed instead of slowing
//! anyone down.

mod common;

use common::*;
use hearken::proto::v1::watch_alerts_response::Payload;
use hearken::proto::v1::*;

async fn interrupting_call(
    client: &mut hearken::proto::v1::listening_service_client::ListeningServiceClient<
        tonic::transport::Channel,
    >,
    id: &str,
) {
    let mut call = Call::open(client).await;
    call.send(start(id)).await;
    call.send(utterance(
        id,
        "u1",
        Role::Customer,
        "my router keeps dropping the connection every evening",
        0,
        6000,
    ))
    .await;
    call.send(utterance(
        id,
        "u2",
        Role::Agent,
        "have you tried turning it off and on",
        3000,
        4500,
    ))
    .await;
    // 14 s of silence: dead air (info).
    call.send(utterance(
        id,
        "u3",
        Role::Agent,
        "right I found it",
        20_000,
        21_000,
    ))
    .await;
    call.send(end(id)).await;
    call.until_scorecards(1).await;
}

#[tokio::test]
async fn watchers_see_only_what_their_filters_ask_for() {
    let server = TestServer::new().start().await;
    let mut client = server.client().await;
    let mut all = client
        .watch_alerts(WatchAlertsRequest::default())
        .await
        .unwrap()
        .into_inner();
    let mut only_b_warnings = client
        .watch_alerts(WatchAlertsRequest {
            conversation_ids: vec!["b".into()],
            kinds: vec![],
            min_severity: Severity::Warning as i32,
        })
        .await
        .unwrap()
        .into_inner();
    let mut dead_air = client
        .watch_alerts(WatchAlertsRequest {
            conversation_ids: vec![],
            kinds: vec![AlertKind::DeadAir as i32],
            min_severity: 0,
        })
        .await
        .unwrap()
        .into_inner();
    // The subscriptions are registered once the calls return; alerts raised from now on reach them.
    interrupting_call(&mut client, "a").await;
    interrupting_call(&mut client, "b").await;

    let next = async |s: &mut tonic::Streaming<WatchAlertsResponse>| {
        let r = tokio::time::timeout(WAIT, s.message())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        match r.payload {
            Some(Payload::Alert(a)) => (a.conversation_id, a.alert.unwrap().kind),
            other => panic!("{other:?}"),
        }
    };
    let (i, d) = (AlertKind::Interruption as i32, AlertKind::DeadAir as i32);
    let mut seen = Vec::new();
    for _ in 0..4 {
        seen.push(next(&mut all).await);
    }
    assert_eq!(
        seen,
        [
            ("a".into(), i),
            ("a".into(), d),
            ("b".into(), i),
            ("b".into(), d)
        ]
    );
    assert_eq!(next(&mut only_b_warnings).await, ("b".into(), i));
    assert_eq!(next(&mut dead_air).await, ("a".into(), d));
    assert_eq!(next(&mut dead_air).await, ("b".into(), d));
    // Nothing more for the filtered watchers.
    assert!(
        tokio::time::timeout(
            std::time::Duration::from_millis(200),
            only_b_warnings.message()
        )
        .await
        .is_err()
    );
}

/// `n` conversations multiplexed on one stream, each raising an interruption and a dead-air alert.
async fn burst(
    client: &mut hearken::proto::v1::listening_service_client::ListeningServiceClient<
        tonic::transport::Channel,
    >,
    n: usize,
) {
    let mut call = Call::open(client).await;
    let sender = call.tx.clone();
    tokio::spawn(async move {
        for i in 0..n {
            let id = format!("c{i}");
            for r in [
                start(&id),
                utterance(
                    &id,
                    "u1",
                    Role::Customer,
                    "my router keeps dropping the connection every evening",
                    0,
                    6000,
                ),
                utterance(
                    &id,
                    "u2",
                    Role::Agent,
                    "have you tried turning it off and on",
                    3000,
                    4500,
                ),
                utterance(&id, "u3", Role::Agent, "right I found it", 20_000, 21_000),
                end(&id),
            ] {
                sender.send(r).await.unwrap();
            }
        }
    });
    call.until_scorecards(n).await;
}

#[tokio::test]
async fn a_watcher_that_falls_behind_is_told_how_many_alerts_it_missed() {
    let server = TestServer::new()
        .limits(|l| l.watch_buffer = 16)
        .start()
        .await;
    let mut client = server.client().await;
    // The slow watcher has its own connection with a tiny HTTP/2 window, so the server cannot
    // park thousands of alerts in flow-control buffers on its behalf.
    let slow_channel = tonic::transport::Endpoint::from_shared(server.url())
        .unwrap()
        .initial_stream_window_size(Some(1024))
        .connect()
        .await
        .unwrap();
    let mut slow =
        hearken::proto::v1::listening_service_client::ListeningServiceClient::new(slow_channel)
            .watch_alerts(WatchAlertsRequest::default())
            .await
            .unwrap()
            .into_inner();
    // 3 000 conversations × 2 alerts while the watcher reads nothing; producers never wait for it.
    let conversations = 3_000;
    burst(&mut client, conversations).await;
    let expected = 2 * conversations as u64;
    let (mut alerts, mut missed) = (0u64, 0u64);
    while alerts + missed < expected {
        let r = tokio::time::timeout(WAIT, slow.message())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        match r.payload {
            Some(Payload::Alert(_)) => alerts += 1,
            Some(Payload::Gap(g)) => missed += g.missed,
            None => panic!("empty response"),
        }
    }
    assert_eq!(
        alerts + missed,
        expected,
        "every alert is either delivered or counted as missed"
    );
    assert!(
        missed > 0,
        "a watcher that read nothing cannot have received {expected} alerts"
    );
}

#[tokio::test]
async fn invalid_filters_are_rejected() {
    let server = TestServer::new().start().await;
    let mut client = server.client().await;
    let err = client
        .watch_alerts(WatchAlertsRequest {
            kinds: vec![999],
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::InvalidArgument);
}

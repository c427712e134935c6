//! Draining: health flips to NOT_SERVING first, open streams end with UNAVAILABLE (DRAINING,
//! retry at once), and the server stops within its deadline even when a client never closes.

mod common;

use std::time::{Duration, Instant};

use common::*;
use hearken::proto::v1::*;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_types::StatusExt as _;

#[tokio::test]
async fn shutdown_with_50_open_streams_flips_health_then_ends_every_stream_with_unavailable() {
    let mut server = TestServer::new()
        .config(|c| {
            c.drain_delay = Duration::from_millis(300);
            c.drain_deadline = Duration::from_secs(5);
        })
        .start()
        .await;
    let mut client = server.client().await;
    let mut watch = server.watch_readiness().await;
    assert_eq!(
        watch.message().await.unwrap().unwrap().status,
        ServingStatus::Serving as i32
    );

    // 50 open streams (R-DRAIN-1), over five connections as several integrations would.
    let mut clients = Vec::new();
    for _ in 0..5 {
        clients.push(server.client().await);
    }
    let mut calls = Vec::new();
    for i in 0..50 {
        let mut call = Call::open(&mut clients[i % 5]).await;
        let id = format!("c{i}");
        call.send(start(&id)).await;
        call.send(utterance(
            &id,
            "u1",
            Role::Customer,
            "hello I need help",
            0,
            1500,
        ))
        .await;
        assert_eq!(kind(&call.expect().await), "update");
        calls.push(call);
    }
    // A watcher is told too.
    let mut watcher = client
        .watch_alerts(WatchAlertsRequest::default())
        .await
        .unwrap()
        .into_inner();

    let signalled = Instant::now();
    server.shutdown();
    let status = tokio::time::timeout(WAIT, watch.message())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(
        status.status,
        ServingStatus::NotServing as i32,
        "health flips first"
    );
    let flipped = signalled.elapsed();

    assert_eq!(calls.len(), 50);
    for mut call in calls {
        let status = call.next().await.expect_err("stream ends with a status");
        assert_eq!(status.code(), tonic::Code::Unavailable, "{status:?}");
        let details = status.get_error_details();
        assert_eq!(details.error_info().unwrap().reason, "DRAINING");
        assert_eq!(
            details.retry_info().unwrap().retry_delay,
            Some(Duration::ZERO)
        );
    }
    let drained = signalled.elapsed();
    assert!(
        flipped < drained && drained >= Duration::from_millis(300),
        "streams end after the drain delay: {flipped:?} {drained:?}"
    );
    let status = tokio::time::timeout(WAIT, watcher.message())
        .await
        .unwrap()
        .expect_err("watcher ends");
    assert_eq!(status.code(), tonic::Code::Unavailable);

    // With every stream ended and the health watch closed, the server stops well before its
    // deadline (GOAWAY closes the idle connections).
    drop(watch);
    tokio::time::timeout(Duration::from_secs(4), &mut server.task)
        .await
        .expect("server stops before the deadline")
        .unwrap()
        .unwrap();
}

#[tokio::test]
async fn server_exits_by_the_deadline_even_if_a_client_never_closes() {
    let mut server = TestServer::new()
        .config(|c| {
            c.drain_delay = Duration::ZERO;
            c.drain_deadline = Duration::from_millis(1500);
        })
        .start()
        .await;
    // A connection that never speaks HTTP/2, and a stream whose client never reads.
    let _silent = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    let mut client = server.client().await;
    let call = Call::open(&mut client).await;
    call.send(start("c")).await;
    for i in 0..200 {
        call.send(utterance(
            "c",
            &format!("u{i}"),
            Role::Customer,
            "hello hello hello",
            i * 1000,
            i * 1000 + 900,
        ))
        .await;
    }
    let signalled = Instant::now();
    server.shutdown();
    tokio::time::timeout(Duration::from_secs(10), &mut server.task)
        .await
        .expect("server stops")
        .unwrap()
        .unwrap();
    let took = signalled.elapsed();
    assert!(
        took < Duration::from_secs(5),
        "stopped by the deadline: {took:?}"
    );
    drop(call);
}

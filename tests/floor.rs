//! The supervisor's floor page over real sockets: calls streamed over gRPC appear in
//! `/api/floor` and `/api/events` with the scores the client got, the conversation view holds
//! the history and behaviours, text is hidden unless shown (then masked), viewers are capped,
//! and a viewer is told when the server shuts down. (The page itself in a browser:
//! tests/floor_browser.rs.)

mod common;

use std::time::Duration;

use common::web;
use common::*;
use hearken::floor::FloorConfig;
use hearken::proto::v1::stream_conversations_response::Payload;
use hearken::proto::v1::*;

fn start_with(conversation: &str, agent: &str) -> StreamConversationsRequest {
    let mut request = start(conversation);
    if let Some(stream_conversations_request::Payload::Start(s)) = &mut request.payload {
        s.metadata.insert("agent".into(), agent.into());
        s.metadata.insert("queue".into(), "billing".into());
    }
    request
}

/// A short call; the agent talks over the customer at u3 (an interruption alert).
fn interrupted_call(id: &str) -> Vec<StreamConversationsRequest> {
    vec![
        start_with(id, "Marcus"),
        utterance(
            id,
            "u1",
            Role::Agent,
            "thanks for calling, how can I help",
            0,
            2_000,
        ),
        utterance(
            id,
            "u2",
            Role::Customer,
            "my card 4111 1111 1111 1111 was charged twice and I am really upset about it",
            2_500,
            9_000,
        ),
        utterance(
            id,
            "u3",
            Role::Agent,
            "have you tried turning the router off and on",
            6_000,
            7_500,
        ),
    ]
}

/// Sends `requests` and reads responses until every final utterance has its update and the
/// alerts that follow; returns the responses.
async fn play(
    call: &mut Call,
    requests: Vec<StreamConversationsRequest>,
) -> Vec<StreamConversationsResponse> {
    let mut updates = 0;
    for r in &requests {
        if matches!(
            r.payload,
            Some(stream_conversations_request::Payload::Utterance(_))
        ) {
            updates += 1;
        }
    }
    for r in requests {
        call.send(r).await;
    }
    let mut out = Vec::new();
    while updates > 0 {
        let r = call.expect().await;
        if matches!(r.payload, Some(Payload::Update(_))) {
            updates -= 1;
        }
        out.push(r);
    }
    // Alerts follow the update of the utterance that raised them.
    while let Ok(Ok(Some(r))) =
        tokio::time::timeout(Duration::from_millis(300), call.rx.message()).await
    {
        out.push(r);
    }
    out
}

fn last_score(responses: &[StreamConversationsResponse]) -> f64 {
    responses
        .iter()
        .rev()
        .find_map(|r| match &r.payload {
            Some(Payload::Update(u)) => u.score.as_ref().map(|s| s.overall),
            _ => None,
        })
        .expect("an update")
}

fn row<'a>(floor: &'a serde_json::Value, id: &str) -> &'a serde_json::Value {
    floor["rows"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["conversation_id"] == id)
        .unwrap_or_else(|| panic!("{id} on the floor: {floor}"))
}

/// A server with a floor configured so, its page's address, and an open stream to it.
async fn floor_server(config: FloorConfig) -> (Running, std::net::SocketAddr, Call) {
    let running = TestServer::new().floor(config).start().await;
    let ui = running.ui.unwrap();
    let mut client = running.client().await;
    let call = Call::open(&mut client).await;
    (running, ui, call)
}

#[tokio::test]
async fn streamed_calls_are_on_the_floor_with_the_scores_the_client_got() {
    let (_running, ui, mut call) = floor_server(FloorConfig::default()).await;
    let responses = play(&mut call, interrupted_call("c-floor-1")).await;
    let score = last_score(&responses);
    assert!(
        responses.iter().any(
            |r| matches!(&r.payload, Some(Payload::Alert(a)) if a.kind() == AlertKind::Interruption)
        ),
        "the call raises an interruption alert"
    );

    let floor = web::get(ui, "/api/floor", None).await;
    assert_eq!(floor.status, 200);
    assert_eq!(floor.header("content-type"), Some("application/json"));
    assert_eq!(floor.header("cache-control"), Some("no-store"));
    let floor = floor.json();
    assert_eq!(floor["live"], 1);
    assert_eq!(floor["show_text"], false);
    let r = row(&floor, "c-floor-1");
    assert_eq!(r["agent"], "Marcus");
    assert_eq!(r["queue"], "billing");
    assert_eq!(r["state"], "live");
    assert_eq!(r["utterance_count"], 3);
    assert_eq!(
        r["score"]["overall"].as_f64().unwrap(),
        (score * 10.0).round() / 10.0
    );
    assert_eq!(r["score"]["components"].as_array().unwrap().len(), 7);
    assert_eq!(r["latest_alert"]["kind"], "interruption");
    assert!(r["latest_alert"]["coaching_tip"].as_str().unwrap().len() > 10);
    assert!(r["alert_kinds"]["interruption"].is_string());
    assert_eq!(r["trend"].as_array().unwrap().len(), 3);
    assert!(
        floor["alerts"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["kind"] == "interruption" && a["conversation_id"] == "c-floor-1")
    );

    let key = r["key"].as_u64().unwrap();
    let detail = web::get(ui, &format!("/api/conversations/{key}"), None).await;
    assert_eq!(detail.status, 200);
    let text = detail.body.clone();
    let detail = detail.json();
    assert_eq!(detail["history"].as_array().unwrap().len(), 3);
    let utterances = detail["utterances"].as_array().unwrap();
    assert_eq!(utterances.len(), 3);
    assert_eq!(utterances[2]["role"], "agent");
    assert!(
        utterances[2]["behaviours"]
            .as_array()
            .unwrap()
            .iter()
            .any(|b| b["behaviour"] == "interruption"),
        "{detail}"
    );
    assert!(utterances.iter().all(|u| u["text"].is_null()));
    // Text is not on the page unless the operator turns it on.
    for words in ["charged twice", "4111", "turning the router"] {
        assert!(!text.contains(words), "{words} in {text}");
        assert!(!floor.to_string().contains(words));
    }
    assert_eq!(
        web::get(ui, "/api/conversations/999999", None).await.status,
        404
    );
    assert_eq!(
        web::get(ui, "/api/conversations/abc", None).await.status,
        400
    );

    // The page and its assets are embedded, with a strict content security policy.
    let page = web::get(ui, "/", None).await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains("/assets/app.js"));
    assert!(
        page.header("content-security-policy")
            .unwrap()
            .contains("default-src 'self'")
    );
    for asset in [
        "/assets/app.js",
        "/assets/app.css",
        "/assets/vendor/uPlot.iife.min.js",
        "/assets/vendor/uPlot.LICENSE",
    ] {
        assert_eq!(web::get(ui, asset, None).await.status, 200, "{asset}");
    }

    // Ended: on the floor as ended, with its end reason.
    call.send(end("c-floor-1")).await;
    call.until_scorecards(1).await;
    let floor = web::get(ui, "/api/floor", None).await.json();
    assert_eq!(floor["live"], 0);
    let r = row(&floor, "c-floor-1");
    assert_eq!(r["state"], "ended");
    assert_eq!(r["end_reason"], "completed");
}

#[tokio::test]
async fn text_is_shown_only_when_turned_on_and_then_masked() {
    let (_running, ui, mut call) = floor_server(FloorConfig {
        show_text: true,
        ..FloorConfig::default()
    })
    .await;
    play(&mut call, interrupted_call("c-text")).await;
    let floor = web::get(ui, "/api/floor", None).await.json();
    assert_eq!(floor["show_text"], true);
    let key = row(&floor, "c-text")["key"].as_u64().unwrap();
    let detail = web::get(ui, &format!("/api/conversations/{key}"), None).await;
    assert!(detail.body.contains("charged twice"), "{}", detail.body);
    assert!(
        !detail.body.contains("4111"),
        "card numbers are masked: {}",
        detail.body
    );
    let detail = detail.json();
    let interruption = detail["utterances"][2]["behaviours"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["behaviour"] == "interruption")
        .cloned()
        .unwrap();
    assert!(interruption["duration_ms"].as_i64().unwrap() > 0);
}

#[tokio::test]
async fn events_stream_a_snapshot_then_coalesced_batches_and_end_on_shutdown() {
    let mut running = TestServer::new()
        .floor(FloorConfig {
            update_interval: Duration::from_millis(100),
            ..FloorConfig::default()
        })
        .start()
        .await;
    let ui = running.ui.unwrap();
    let mut events = web::events(ui, None).await;
    assert_eq!(events.status, 200);
    let first = events
        .until("floor", WAIT)
        .await
        .expect("a floor snapshot first");
    assert_eq!(first["rows"].as_array().unwrap().len(), 0);

    let mut client = running.client().await;
    let mut call = Call::open(&mut client).await;
    let responses = play(&mut call, interrupted_call("c-live")).await;
    let score = last_score(&responses);
    // Batches until the row shows the last score and the alert has come through.
    let mut seen_alert = false;
    let mut seen_score = false;
    let mut batches = 0;
    while !(seen_alert && seen_score) {
        let batch = events
            .until("batch", WAIT)
            .await
            .expect("batches keep coming");
        batches += 1;
        seen_alert |= batch["alerts"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["kind"] == "interruption" && a["conversation_id"] == "c-live");
        for r in batch["rows"].as_array().unwrap() {
            if r["conversation_id"] == "c-live" && r["utterance_count"] == 3 {
                assert_eq!(
                    r["score"]["overall"].as_f64().unwrap(),
                    (score * 10.0).round() / 10.0
                );
                seen_score = true;
            }
        }
    }
    // Three utterances and an alert, coalesced: no more batches than there were changes.
    assert!(batches <= 6, "{batches} batches");

    // Shutting the page down tells the viewer and ends its stream.
    running.stop_ui();
    let notice = events
        .until("notice", WAIT)
        .await
        .expect("a notice at shutdown");
    assert_eq!(notice["reason"], "SHUTTING_DOWN");
    assert!(events.next_within(WAIT).await.is_none(), "the stream ends");
    tokio::time::timeout(WAIT, running.ui_task.take().unwrap())
        .await
        .expect("the page stops")
        .unwrap()
        .unwrap();
}

#[tokio::test]
async fn viewers_are_capped_and_a_refused_one_is_told_when_to_retry() {
    let running = TestServer::new()
        .floor(FloorConfig {
            max_viewers: 1,
            ..FloorConfig::default()
        })
        .start()
        .await;
    let ui = running.ui.unwrap();
    let mut first = web::events(ui, None).await;
    assert_eq!(first.status, 200);
    first.until("floor", WAIT).await.unwrap();
    let second = web::events(ui, None).await;
    assert_eq!(second.status, 429);
    drop(first);
    // The slot comes back once the first viewer's connection is gone.
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let again = web::events(ui, None).await;
        if again.status == 200 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the viewer slot never came back"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Only reads: anything else is refused.
    let mut io = tokio::net::TcpStream::connect(ui).await.unwrap();
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    io.write_all(
        b"POST /api/floor HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
    )
    .await
    .unwrap();
    let mut raw = String::new();
    io.read_to_string(&mut raw).await.unwrap();
    assert!(raw.starts_with("HTTP/1.1 405"), "{raw}");
}

#[tokio::test]
async fn a_call_whose_stream_goes_away_ends_on_the_floor_as_freed() {
    let (_running, ui, mut call) = floor_server(FloorConfig::default()).await;
    play(&mut call, interrupted_call("c-gone")).await;
    drop(call);
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let floor = web::get(ui, "/api/floor", None).await.json();
        let r = row(&floor, "c-gone").clone();
        if r["state"] == "ended" {
            assert_eq!(floor["live"], 0);
            assert!(
                r["end_reason"] == "freed" || r["end_reason"] == "abandoned",
                "{r}"
            );
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "still live: {r}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A browser that stops reading is let go (counted), while the floor goes on for everyone else.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_viewer_that_stops_reading_is_let_go() {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let running = TestServer::new()
        .floor(FloorConfig {
            update_interval: Duration::from_millis(50),
            // Long enough that a healthy viewer on a loaded machine is never taken for slow.
            slow_viewer_timeout: Duration::from_secs(1),
            ..FloorConfig::default()
        })
        .start()
        .await;
    let ui = running.ui.unwrap();
    let floor = running.floor.clone().unwrap();
    // A small receive window, and nothing read after the headers.
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let mut stalled = socket.connect(ui).await.unwrap();
    stalled
        .write_all(b"GET /api/events HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut head = [0u8; 64];
    let n = stalled.read(&mut head).await.unwrap();
    assert!(head[..n].starts_with(b"HTTP/1.1 200"));
    // A healthy viewer alongside it.
    let mut healthy = web::events(ui, None).await;
    healthy.until("floor", WAIT).await.unwrap();
    // It reads all the time, on its own task, whatever the sending below is doing.
    let (events, mut received) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Some(event) = healthy.next_within(Duration::from_secs(60)).await {
            if events.send(event).is_err() {
                break;
            }
        }
    });

    let mut client = running.client().await;
    let Call { tx, mut rx } = Call::open(&mut client).await;
    // The call's responses are read all along: a client that does not read holds the stream
    // (backpressure), and the floor would see nothing more from it.
    tokio::spawn(async move { while let Ok(Some(_)) = rx.message().await {} });
    let call = Sender(tx);
    let deadline = tokio::time::Instant::now() + WAIT;
    let mut sent = 0i64;
    while floor.dropped_viewers() == 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the stalled viewer was never let go"
        );
        for c in 0..200 {
            let at = sent * 3_000;
            call.send(utterance(
                &format!("busy-{c}"),
                &format!("u{sent}"),
                if sent % 2 == 0 {
                    Role::Customer
                } else {
                    Role::Agent
                },
                "I would like to know why my bill went up this month",
                at,
                at + 2_500,
            ))
            .await;
        }
        sent += 1;
        while received.try_recv().is_ok() {}
        tokio::task::yield_now().await;
    }
    assert_eq!(floor.dropped_viewers(), 1, "only the stalled viewer");
    // The healthy viewer still gets batches.
    while received.try_recv().is_ok() {}
    call.send(utterance(
        "after",
        "u1",
        Role::Customer,
        "hello again",
        0,
        1_000,
    ))
    .await;
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        let Ok(Some((name, data))) = tokio::time::timeout(left, received.recv()).await else {
            panic!(
                "no batch with the new call for the healthy viewer ({} viewers let go)",
                floor.dropped_viewers()
            );
        };
        let has_after = data["rows"]
            .as_array()
            .is_some_and(|rows| rows.iter().any(|r| r["conversation_id"] == "after"));
        if name == "batch" && has_after {
            break;
        }
    }
    assert_eq!(floor.dropped_viewers(), 1, "the healthy viewer was kept");
}

/// The sending half of a call whose responses another task reads.
struct Sender(tokio::sync::mpsc::Sender<StreamConversationsRequest>);

impl Sender {
    async fn send(&self, request: StreamConversationsRequest) {
        self.0.send(request).await.expect("stream open");
    }
}

/// The page's port as a hardened HTTP server (#29: 600 half-sent headers raised RSS from 91 to
/// 387 MB; 4 200 idle connections exhausted the descriptors so gRPC connections failed).
/// Half-sent and trickled headers are closed after the header timeout, an idle keep-alive
/// connection after the idle timeout, and connections over the cap are closed as they come.
#[tokio::test]
async fn the_page_port_lets_go_of_slow_headers_idle_connections_and_connections_over_its_cap() {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let running = TestServer::new()
        .floor(FloorConfig {
            header_timeout: Duration::from_millis(300),
            idle_timeout: Duration::from_millis(600),
            max_connections: 4,
            ..FloorConfig::default()
        })
        .start()
        .await;
    let ui = running.ui.unwrap();
    // Closed: the read ends (EOF or reset) within `within`.
    async fn closed_within(io: &mut tokio::net::TcpStream, within: Duration) -> bool {
        let mut buf = [0u8; 4096];
        let deadline = tokio::time::Instant::now() + within;
        loop {
            match tokio::time::timeout_at(deadline, io.read(&mut buf)).await {
                Err(_) => return false,
                Ok(Ok(0)) | Ok(Err(_)) => return true,
                Ok(Ok(_)) => continue,
            }
        }
    }
    // Half-sent headers.
    let mut half = tokio::net::TcpStream::connect(ui).await.unwrap();
    half.write_all(b"GET /api/floor HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    assert!(
        closed_within(&mut half, Duration::from_secs(5)).await,
        "half-sent headers kept"
    );
    // Headers trickled a byte at a time: reads do not buy time.
    let mut trickle = tokio::net::TcpStream::connect(ui).await.unwrap();
    let started = tokio::time::Instant::now();
    let mut cut = false;
    for b in b"GET /api/floor HTTP/1.1\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa" {
        if trickle.write_all(&[*b]).await.is_err() {
            cut = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        cut || closed_within(&mut trickle, Duration::from_secs(1)).await,
        "trickled headers kept the connection"
    );
    assert!(started.elapsed() < Duration::from_secs(5));
    // A keep-alive connection that was answered, then says nothing.
    let mut idle = tokio::net::TcpStream::connect(ui).await.unwrap();
    idle.write_all(b"GET /api/floor HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut head = [0u8; 12];
    idle.read_exact(&mut head).await.unwrap();
    assert_eq!(&head, b"HTTP/1.1 200");
    assert!(
        closed_within(&mut idle, Duration::from_secs(5)).await,
        "an idle connection kept"
    );
    // The cap: four connections that say nothing hold the four places; a fifth is closed.
    let mut held = Vec::new();
    for _ in 0..4 {
        held.push(tokio::net::TcpStream::connect(ui).await.unwrap());
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut over = tokio::net::TcpStream::connect(ui).await.unwrap();
    assert!(
        closed_within(&mut over, Duration::from_millis(250)).await,
        "a connection over the cap was served"
    );
    // Once they are gone (closed by the header timeout), the page answers again.
    drop(held);
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let mut again = tokio::net::TcpStream::connect(ui).await.unwrap();
        again
            .write_all(b"GET /api/floor HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .await
            .unwrap();
        let mut raw = Vec::new();
        let _ = tokio::time::timeout(Duration::from_secs(2), again.read_to_end(&mut raw)).await;
        if raw.starts_with(b"HTTP/1.1 200") {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the page never answered again"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

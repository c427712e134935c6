//! Test harness: a real hearken server on `127.0.0.1:0`, a generated client, and helpers to
//! build requests. The listener is bound before the server task starts, so no test sleeps.
#![allow(dead_code, unreachable_pub)]

pub mod raw;
pub mod web;

use std::sync::Arc;
use std::time::Duration;

use hearken::engine::Rubric;
use hearken::proto::v1::listening_service_client::ListeningServiceClient;
use hearken::proto::v1::*;
use hearken::server::{self, ServerConfig};
use hearken::service::Limits;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::Channel;

/// Generous bound for anything a test waits on; a hang fails instead of blocking CI.
pub const WAIT: Duration = Duration::from_secs(20);

pub struct TestServer {
    config: ServerConfig,
}

pub struct Running {
    pub addr: std::net::SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    pub task: JoinHandle<anyhow::Result<()>>,
    /// The floor page's address, when the server was started with a floor.
    pub ui: Option<std::net::SocketAddr>,
    ui_stop: Option<oneshot::Sender<()>>,
    pub ui_task: Option<JoinHandle<anyhow::Result<()>>>,
    /// The floor, when the server was started with one.
    pub floor: Option<Arc<hearken::floor::Floor>>,
}

impl TestServer {
    pub fn new() -> Self {
        let mut config = ServerConfig::new(Arc::new(Rubric::embedded()));
        config.drain_delay = Duration::ZERO;
        // Tests open streams far faster than a tenant's default quota; tests/limits.rs sets it.
        config.limits.stream_opens_per_second = 0.0;
        TestServer { config }
    }

    pub fn limits(mut self, f: impl FnOnce(&mut Limits)) -> Self {
        f(&mut self.config.limits);
        self
    }

    pub fn config(mut self, f: impl FnOnce(&mut ServerConfig)) -> Self {
        f(&mut self.config);
        self
    }

    /// Serves the supervisor's floor page too, on its own loopback port, with the gRPC
    /// port's TLS and JWT settings.
    pub fn floor(mut self, config: hearken::floor::FloorConfig) -> Self {
        self.config.floor = Some(hearken::floor::Floor::new(
            config,
            Arc::clone(&self.config.metrics),
        ));
        self
    }

    pub async fn start(self) -> Running {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind loopback");
        let addr = listener.local_addr().unwrap();
        let (ui, ui_stop, ui_task) = match &self.config.floor {
            Some(floor) => {
                let ui_listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                    .await
                    .expect("bind loopback");
                let ui = ui_listener.local_addr().unwrap();
                let (ui_stop, ui_stopped) = oneshot::channel::<()>();
                let task = tokio::spawn(hearken::floor::serve(
                    ui_listener,
                    Arc::clone(floor),
                    self.config.tls.clone(),
                    self.config.jwt.clone(),
                    async move {
                        let _ = ui_stopped.await;
                    },
                ));
                (Some(ui), Some(ui_stop), Some(task))
            }
            None => (None, None, None),
        };
        let floor = self.config.floor.clone();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(server::run(listener, self.config, async move {
            let _ = stopped.await;
        }));
        Running {
            addr,
            stop: Some(stop),
            task,
            ui,
            ui_stop,
            ui_task,
            floor,
        }
    }
}

impl Running {
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub async fn channel(&self) -> Channel {
        tonic::transport::Endpoint::from_shared(self.url())
            .unwrap()
            .connect()
            .await
            .expect("connect")
    }

    pub async fn client(&self) -> ListeningServiceClient<Channel> {
        ListeningServiceClient::new(self.channel().await)
    }

    /// A `Health/Watch` of the readiness service (`hearken.v1.ListeningService`).
    pub async fn watch_readiness(&self) -> tonic::Streaming<tonic_health::pb::HealthCheckResponse> {
        tonic_health::pb::health_client::HealthClient::new(self.channel().await)
            .watch(tonic_health::pb::HealthCheckRequest {
                service: "hearken.v1.ListeningService".into(),
            })
            .await
            .unwrap()
            .into_inner()
    }

    /// Signals shutdown (as SIGTERM would).
    pub fn shutdown(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }

    /// Stops the floor page (as `hearken serve` does once the server has drained).
    pub fn stop_ui(&mut self) {
        if let Some(stop) = self.ui_stop.take() {
            let _ = stop.send(());
        }
    }
}

/// An open bidirectional stream: push requests, pull responses.
pub struct Call {
    pub tx: mpsc::Sender<StreamConversationsRequest>,
    pub rx: tonic::Streaming<StreamConversationsResponse>,
}

impl Call {
    pub async fn open(client: &mut ListeningServiceClient<Channel>) -> Call {
        let (tx, rx) = mpsc::channel(1024);
        let rx = client
            .stream_conversations(ReceiverStream::new(rx))
            .await
            .expect("open stream")
            .into_inner();
        Call { tx, rx }
    }

    pub async fn send(&self, request: StreamConversationsRequest) {
        self.tx.send(request).await.expect("stream open");
    }

    /// The next response, failing the test after `WAIT`.
    pub async fn next(&mut self) -> Result<Option<StreamConversationsResponse>, tonic::Status> {
        tokio::time::timeout(WAIT, self.rx.message())
            .await
            .expect("a response within the wait")
    }

    pub async fn expect(&mut self) -> StreamConversationsResponse {
        self.next().await.expect("stream ok").expect("a response")
    }

    /// Collects responses until `n` scorecards have arrived.
    pub async fn until_scorecards(&mut self, n: usize) -> Vec<StreamConversationsResponse> {
        let mut out = Vec::new();
        let mut cards = 0;
        while cards < n {
            let r = self.expect().await;
            if matches!(
                r.payload,
                Some(stream_conversations_response::Payload::Scorecard(_))
            ) {
                cards += 1;
            }
            out.push(r);
        }
        out
    }
}

pub fn utterance(
    conversation: &str,
    id: &str,
    role: Role,
    text: &str,
    start_ms: i64,
    end_ms: i64,
) -> StreamConversationsRequest {
    StreamConversationsRequest {
        conversation_id: conversation.into(),
        payload: Some(stream_conversations_request::Payload::Utterance(
            Utterance {
                utterance_id: id.into(),
                role: role as i32,
                text: text.into(),
                start_ms: Some(start_ms),
                end_ms: Some(end_ms),
                ..Default::default()
            },
        )),
    }
}

pub fn start(conversation: &str) -> StreamConversationsRequest {
    StreamConversationsRequest {
        conversation_id: conversation.into(),
        payload: Some(stream_conversations_request::Payload::Start(
            ConversationStart {
                channel: hearken::proto::v1::Channel::Voice as i32,
                ..Default::default()
            },
        )),
    }
}

pub fn end(conversation: &str) -> StreamConversationsRequest {
    StreamConversationsRequest {
        conversation_id: conversation.into(),
        payload: Some(stream_conversations_request::Payload::End(
            ConversationEnd::default(),
        )),
    }
}

pub fn kind(r: &StreamConversationsResponse) -> &'static str {
    use stream_conversations_response::Payload;
    match &r.payload {
        Some(Payload::Update(_)) => "update",
        Some(Payload::Alert(_)) => "alert",
        Some(Payload::Scorecard(_)) => "scorecard",
        Some(Payload::Rejection(_)) => "rejection",
        None => "none",
    }
}

/// The bundled demo calls.
pub fn demo_calls() -> Vec<hearken::transcript::Transcript> {
    hearken::transcript::Reader::new(hearken::samples::DEMO_CALLS.as_bytes())
        .map(|t| t.unwrap())
        .collect()
}

/// A transcript's messages as a live stream sends them (start, utterances and signals, end).
pub fn requests_of(
    t: &hearken::transcript::Transcript,
    conversation_id: &str,
) -> Vec<StreamConversationsRequest> {
    use hearken::engine::{End, Event};
    use stream_conversations_request::Payload;
    let mut out = vec![start(conversation_id)];
    for event in
        hearken::engine::transcript_events(t.utterances.clone(), t.signals.clone(), End::default())
    {
        let payload = match event {
            Event::Utterance(u) => Payload::Utterance(hearken::proto::utterance_to_proto(&u)),
            Event::Signal(s) => Payload::Signal(hearken::proto::signal_to_proto(&s)),
            Event::End(_, _) => Payload::End(ConversationEnd::default()),
        };
        out.push(StreamConversationsRequest {
            conversation_id: conversation_id.into(),
            payload: Some(payload),
        });
    }
    out
}

/// Clears wall-clock times (the one thing excluded from determinism).
pub fn without_times(mut card: Scorecard) -> Scorecard {
    for a in &mut card.alerts {
        a.time = None;
    }
    card
}

/// `hearken serve` as a separate process on a free loopback port, with a short drain, any extra
/// flags and environment; returns the child and the server's URL.
pub fn spawn_serve(
    extra: &[&str],
    env: &[(&str, &str)],
    stderr: std::process::Stdio,
) -> (std::process::Child, String) {
    spawn_serve_on(free_port(), extra, env, stderr)
}

/// `hearken serve` as [`spawn_serve`] does, on a given port (a restart on the same address).
pub fn spawn_serve_on(
    port: u16,
    extra: &[&str],
    env: &[(&str, &str)],
    stderr: std::process::Stdio,
) -> (std::process::Child, String) {
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_hearken"))
        .args([
            "serve",
            "--plaintext",
            "--addr",
            &format!("127.0.0.1:{port}"),
            "--drain-delay",
            "0s",
            "--drain-deadline",
            "3s",
        ])
        .args(extra)
        // No scrape endpoint unless a test asks for one (tests run side by side).
        .env("HEARKEN_METRICS_ADDR", "off")
        .envs(env.iter().copied())
        .stderr(stderr)
        .spawn()
        .unwrap();
    (child, format!("http://127.0.0.1:{port}"))
}

/// Runs a client command until it succeeds (a server may take a moment to bind), for at most
/// 20 s; returns its last output.
pub fn until_success(mut command: impl FnMut() -> std::process::Command) -> std::process::Output {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let out = command().output().unwrap();
        if out.status.success() || std::time::Instant::now() > deadline {
            return out;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

/// Sends SIGTERM to a child process.
pub fn terminate(child: &std::process::Child) {
    assert!(
        std::process::Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .unwrap()
            .success()
    );
}

/// A free loopback port (bound, then released).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `GET path` over HTTP/1.1 on loopback; the response body, or `None` while nothing listens.
pub fn http_get(port: u16, path: &str) -> Option<String> {
    use std::io::{Read as _, Write as _};
    let mut socket = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    socket.set_read_timeout(Some(WAIT)).ok()?;
    write!(
        socket,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut response = String::new();
    socket.read_to_string(&mut response).ok()?;
    let (head, body) = response.split_once("\r\n\r\n")?;
    head.starts_with("HTTP/1.1 200").then(|| body.to_owned())
}

/// A one-utterance transcript: the smallest `ScoreTranscript` request that scores.
pub fn one_utterance_transcript(conversation: &str, text: &str) -> ScoreTranscriptRequest {
    ScoreTranscriptRequest {
        conversation_id: conversation.into(),
        utterances: vec![Utterance {
            utterance_id: "u1".into(),
            role: Role::Customer as i32,
            text: text.into(),
            start_ms: Some(0),
            end_ms: Some(900),
            ..Default::default()
        }],
        ..Default::default()
    }
}

/// Waits (at most `WAIT`) until a server at `url` (`http://host:port`) accepts TCP connections.
pub fn wait_for_listener(url: &str) {
    let addr = url.trim_start_matches("http://");
    let ready = std::time::Instant::now() + WAIT;
    while std::net::TcpStream::connect(addr).is_err() && std::time::Instant::now() < ready {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

/// A channel to a server that may still be starting: retries for at most `WAIT`.
pub async fn connect_when_up(url: &str) -> Channel {
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        match tonic::transport::Endpoint::from_shared(url.to_owned())
            .unwrap()
            .connect()
            .await
        {
            Ok(channel) => return channel,
            Err(e) if std::time::Instant::now() > deadline => panic!("server did not start: {e}"),
            Err(_) => tokio::time::sleep(std::time::Duration::from_millis(50)).await,
        }
    }
}

/// Kills a spawned server if the test fails before stopping it, so no process outlives it.
pub struct KillOnDrop(pub Option<std::process::Child>);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if let Some(child) = self.0.as_mut() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

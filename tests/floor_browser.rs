//! The floor page in a real browser: headless Chromium driven over WebDriver (chromedriver,
//! `fantoccini`) against a real server that calls are streamed to over gRPC. Checks that the
//! floor shows the calls with the scores their clients got, that an interruption alert shows
//! within a second of the client getting it, that filters and the keyboard work, that text is
//! hidden by default; saves screenshots of the floor and of a conversation.
//!
//! Needs `chromedriver` and Chromium (Debian: `chromium`, `chromium-driver`). Without them the
//! test says so and passes; with `HEARKEN_BROWSER_TESTS=required` (as `.ci/run` sets) it fails.
//! Screenshots go to `target/floor-screenshots/`, or to `HEARKEN_SCREENSHOTS_DIR`.
#![cfg(unix)]

mod common;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use common::*;
use fantoccini::{Client, ClientBuilder, Locator, key::Key};
use hearken::floor::FloorConfig;
use hearken::proto::v1::stream_conversations_response::Payload;
use hearken::proto::v1::*;

fn which(names: &[&str]) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    names.iter().find_map(|name| {
        if name.starts_with('/') {
            return std::path::Path::new(name)
                .exists()
                .then(|| PathBuf::from(name));
        }
        std::env::split_paths(&path)
            .map(|dir| dir.join(name))
            .find(|p| p.exists())
    })
}

/// chromedriver and the browser, or why the test cannot run.
fn browser() -> Result<(PathBuf, PathBuf), String> {
    let driver = std::env::var_os("HEARKEN_CHROMEDRIVER")
        .map(PathBuf::from)
        .or_else(|| which(&["chromedriver"]))
        .ok_or("no chromedriver on PATH (Debian: apt-get install chromium-driver)")?;
    let chrome = std::env::var_os("HEARKEN_CHROMIUM")
        .map(PathBuf::from)
        .or_else(|| {
            which(&[
                "chromium",
                "chromium-browser",
                "google-chrome",
                "/usr/bin/chromium",
            ])
        })
        .ok_or("no Chromium on PATH (Debian: apt-get install chromium)")?;
    Ok((driver, chrome))
}

struct Browser {
    client: Client,
    _driver: Driver,
}

/// chromedriver in a process group of its own: dropping it (also when the test fails) kills the
/// driver and the browsers it started.
struct Driver(std::process::Child);

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = std::process::Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.0.id())])
            .status();
        let _ = self.0.wait();
    }
}

async fn launch(driver: &PathBuf, chrome: &PathBuf) -> Browser {
    let port = free_port();
    use std::os::unix::process::CommandExt as _;
    let child = std::process::Command::new(driver)
        .arg(format!("--port={port}"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .process_group(0)
        .spawn()
        .expect("start chromedriver");
    let guard = Driver(child);
    let deadline = Instant::now() + WAIT;
    while tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .is_err()
    {
        assert!(Instant::now() < deadline, "chromedriver did not listen");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        serde_json::json!({
            "binary": chrome,
            "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                     "--window-size=1600,1000", "--force-device-scale-factor=1"],
        }),
    );
    let client = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(caps)
        .connect(&format!("http://127.0.0.1:{port}"))
        .await
        .expect("a WebDriver session");
    Browser {
        client,
        _driver: guard,
    }
}

/// Polls `check` until it returns `Some`, failing after `within`.
async fn eventually<T, F, Fut>(within: Duration, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + within;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

async fn text_of(client: &Client, css: &str) -> Option<String> {
    client.find(Locator::Css(css)).await.ok()?.text().await.ok()
}

async fn count(client: &Client, css: &str) -> usize {
    client
        .find_all(Locator::Css(css))
        .await
        .map_or(0, |v| v.len())
}

fn start_with(conversation: &str, agent: &str, queue: &str) -> StreamConversationsRequest {
    let mut request = start(conversation);
    if let Some(stream_conversations_request::Payload::Start(s)) = &mut request.payload {
        s.metadata.insert("agent".into(), agent.into());
        s.metadata.insert("queue".into(), queue.into());
    }
    request
}

/// What the gRPC client got per conversation: the latest overall score, the alert kinds.
#[derive(Default)]
struct Seen {
    scores: std::collections::HashMap<String, f64>,
    alerts: std::collections::HashMap<String, std::collections::HashSet<AlertKind>>,
}

impl Seen {
    fn note(&mut self, r: &StreamConversationsResponse) {
        match &r.payload {
            Some(Payload::Update(u)) => {
                if let Some(s) = &u.score {
                    self.scores.insert(r.conversation_id.clone(), s.overall);
                }
            }
            Some(Payload::Alert(a)) => {
                self.alerts
                    .entry(r.conversation_id.clone())
                    .or_default()
                    .insert(a.kind());
            }
            _ => {}
        }
    }
}

/// Sends `requests` and reads until each utterance has its update (and the alerts after).
async fn play(call: &mut Call, requests: Vec<StreamConversationsRequest>, seen: &mut Seen) {
    let mut updates = requests
        .iter()
        .filter(|r| {
            matches!(
                r.payload,
                Some(stream_conversations_request::Payload::Utterance(_))
            )
        })
        .count();
    for r in requests {
        call.send(r).await;
    }
    while updates > 0 {
        let r = call.expect().await;
        if matches!(&r.payload, Some(Payload::Update(_))) {
            updates -= 1;
        }
        seen.note(&r);
    }
    while let Ok(Ok(Some(r))) =
        tokio::time::timeout(Duration::from_millis(300), call.rx.message()).await
    {
        seen.note(&r);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_floor_in_a_real_browser() {
    let (driver, chrome) = match browser() {
        Ok(found) => found,
        Err(why) => {
            assert!(
                std::env::var("HEARKEN_BROWSER_TESTS").as_deref() != Ok("required"),
                "browser tests are required here, but: {why}"
            );
            eprintln!("skipped: the floor's browser test needs a browser: {why}");
            return;
        }
    };
    let running = TestServer::new()
        .floor(FloorConfig {
            update_interval: Duration::from_millis(250),
            ..FloorConfig::default()
        })
        .start()
        .await;
    let ui = running.ui.unwrap();
    let mut client = running.client().await;
    let mut call = Call::open(&mut client).await;
    let mut seen = Seen::default();

    // The sample calls, live (no end), with agents and queues; and a call about to go wrong.
    let agents = [
        ("Priya", "billing"),
        ("Marcus", "internet"),
        ("Lena", "delivery"),
    ];
    for (t, (agent, queue)) in demo_calls().iter().zip(agents) {
        let id = t.conversation_id.clone();
        let mut requests = requests_of(t, &id);
        requests[0] = start_with(&id, agent, queue);
        requests.pop(); // stays live
        play(&mut call, requests, &mut seen).await;
    }
    let rude = "floor-test-rude";
    play(
        &mut call,
        vec![
            start_with(rude, "Jonas", "billing"),
            utterance(
                rude,
                "u1",
                Role::Agent,
                "thanks for calling, how can I help",
                0,
                2_000,
            ),
            utterance(
                rude,
                "u2",
                Role::Customer,
                "I was charged twice this month and nobody has called me back about it",
                2_500,
                9_000,
            ),
        ],
        &mut seen,
    )
    .await;

    let browser = launch(&driver, &chrome).await;
    let c = &browser.client;
    c.goto(&format!("http://{ui}/")).await.unwrap();

    // Every call is on the floor with the score its client got.
    let scores = seen.scores.clone();
    for (id, score) in &scores {
        let css = format!("tr[data-conversation-id=\"{id}\"] .score-value");
        let want = format!("{:.1}", (score * 10.0).round() / 10.0);
        eventually(WAIT, &format!("{id} showing {want}"), || async {
            (text_of(c, &css).await.as_deref() == Some(want.as_str())).then_some(())
        })
        .await;
    }
    assert_eq!(count(c, "#floor-rows tr").await, scores.len());
    assert_eq!(text_of(c, "#connection").await.as_deref(), Some("live"));
    let agent_cell = text_of(c, &format!("tr[data-conversation-id=\"{rude}\"] .sub")).await;
    assert!(agent_cell.unwrap().contains("agent Jonas"));

    // The agent talks over the customer: the alert is on the page within a second of the
    // client getting it over gRPC.
    call.send(utterance(
        rude,
        "u3",
        Role::Agent,
        "have you tried turning the router off and on",
        6_000,
        7_500,
    ))
    .await;
    let (received, coaching_tip) = loop {
        let r = call.expect().await;
        seen.note(&r);
        if let Some(Payload::Alert(a)) = &r.payload
            && a.kind() == AlertKind::Interruption
        {
            break (Instant::now(), a.coaching_tip.clone());
        }
    };
    let feed_item = "#feed li[data-kind=\"interruption\"]";
    let row_alert =
        format!("tr[data-conversation-id=\"{rude}\"] .latest-alert [data-kind=\"interruption\"]");
    eventually(
        Duration::from_secs(5),
        "the interruption alert on the page",
        || async {
            (count(c, feed_item).await > 0 && count(c, &row_alert).await > 0).then_some(())
        },
    )
    .await;
    let shown_after = received.elapsed();
    eprintln!("interruption alert on the page {shown_after:?} after the gRPC client got it");
    assert!(
        shown_after < Duration::from_secs(1),
        "the alert took {shown_after:?} to show"
    );
    let tip = text_of(c, "#feed li[data-kind=\"interruption\"] .tip")
        .await
        .unwrap();
    // The tip the gRPC client got (the page adds a "Tip:" label in CSS).
    assert!(!coaching_tip.is_empty());
    assert!(tip.ends_with(&coaching_tip), "{tip} / {coaching_tip}");
    let severity = text_of(c, &format!("{row_alert} .sev")).await.unwrap();
    assert_eq!(
        severity.to_lowercase(),
        "warning",
        "severity has a text label"
    );

    // Filters: by alert kind, then by agent.
    c.find(Locator::Css("#kind option[value=\"interruption\"]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let mut interrupted: Vec<String> = seen
        .alerts
        .iter()
        .filter(|(_, kinds)| kinds.contains(&AlertKind::Interruption))
        .map(|(id, _)| id.clone())
        .collect();
    interrupted.sort();
    assert!(
        interrupted.len() < scores.len(),
        "the filter has something to leave out"
    );
    eventually(WAIT, "only the interrupted calls", || async {
        let mut shown = Vec::new();
        for row in c.find_all(Locator::Css("#floor-rows tr")).await.ok()? {
            shown.push(row.attr("data-conversation-id").await.ok()??);
        }
        shown.sort();
        (shown == interrupted).then_some(())
    })
    .await;
    c.find(Locator::Css("#kind option[value=\"\"]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    c.find(Locator::Css("#agent"))
        .await
        .unwrap()
        .send_keys("Priya")
        .await
        .unwrap();
    eventually(WAIT, "only Priya's call", || async {
        (count(c, "#floor-rows tr").await == 1).then_some(())
    })
    .await;
    let only = c.find(Locator::Css("#floor-rows tr")).await.unwrap();
    assert_eq!(
        only.attr("data-conversation-id").await.unwrap().as_deref(),
        Some("demo-billing-attentive")
    );
    c.find(Locator::Css("#agent"))
        .await
        .unwrap()
        .clear()
        .await
        .unwrap();
    eventually(WAIT, "every call again", || async {
        (count(c, "#floor-rows tr").await == scores.len()).then_some(())
    })
    .await;
    // Lowest score first: the rows are in score order.
    let mut shown = Vec::new();
    for cell in c
        .find_all(Locator::Css("#floor-rows .score-value"))
        .await
        .unwrap()
    {
        shown.push(cell.text().await.unwrap().parse::<f64>().unwrap());
    }
    assert!(shown.windows(2).all(|w| w[0] <= w[1]), "{shown:?}");

    let dir = std::env::var_os("HEARKEN_SCREENSHOTS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("../floor-screenshots"));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("floor.png"), c.screenshot().await.unwrap()).unwrap();

    // The keyboard opens a conversation (Enter on its row) and Escape goes back.
    let row = c
        .find(Locator::Css(&format!(
            "tr[data-conversation-id=\"{rude}\"]"
        )))
        .await
        .unwrap();
    row.send_keys(&Key::Enter.to_string()).await.unwrap();
    eventually(WAIT, "the conversation view", || async {
        (count(c, "#utterance-rows tr").await == 3).then_some(())
    })
    .await;
    let title = text_of(c, "#detail-title").await.unwrap();
    assert!(title.starts_with(rude), "{title}");
    let chips = count(c, "#utterance-rows [data-behaviour=\"interruption\"]").await;
    assert_eq!(chips, 1, "the interruption is shown on its utterance");
    assert!(
        count(c, "#chart-score canvas").await > 0,
        "the score chart is drawn"
    );
    assert!(count(c, "#detail-alerts li[data-kind=\"interruption\"]").await > 0);
    // Text is hidden unless the server shows it.
    for cell in c.find_all(Locator::Css(".utterance-text")).await.unwrap() {
        assert_eq!(cell.text().await.unwrap(), "hidden");
    }
    let source = c.source().await.unwrap();
    assert!(!source.contains("charged twice"));
    assert!(!source.contains("turning the router"));
    c.find(Locator::Css("#detail"))
        .await
        .unwrap()
        .send_keys(&Key::Escape.to_string())
        .await
        .unwrap();
    eventually(WAIT, "back on the floor", || async {
        let hidden = c
            .find(Locator::Css("#detail"))
            .await
            .ok()?
            .attr("hidden")
            .await
            .ok()?;
        hidden.is_some().then_some(())
    })
    .await;
    // The conversation view of the longest sample call, for the README.
    let key = c
        .find(Locator::Css(
            "tr[data-conversation-id=\"demo-internet-interrupting\"]",
        ))
        .await
        .unwrap()
        .attr("data-key")
        .await
        .unwrap()
        .unwrap();
    c.goto(&format!("http://{ui}/#/c/{key}")).await.unwrap();
    let utterances = demo_calls()[1].utterances.len();
    eventually(WAIT, "the sample call's view", || async {
        (count(c, "#utterance-rows tr").await == utterances).then_some(())
    })
    .await;
    assert!(count(c, "#detail-alerts li").await > 1);
    tokio::time::sleep(Duration::from_millis(300)).await;
    std::fs::write(dir.join("conversation.png"), c.screenshot().await.unwrap()).unwrap();
    eprintln!("screenshots in {}", dir.display());
    browser.client.clone().close().await.unwrap();
}

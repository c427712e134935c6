//! A minimal HTTP/1.1 client for the floor page's JSON and Server-Sent Events: requests over a
//! real socket (plain or TLS), chunked bodies decoded, events parsed. Enough for tests; the
//! browser tests use a real browser.

use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _};

use super::WAIT;

/// A response: status, lower-cased header block, body (de-chunked).
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub head: String,
    pub body: String,
}

impl Response {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.head.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            (k.trim().to_ascii_lowercase() == name).then_some(v.trim())
        })
    }
}

fn request(path: &str, token: Option<&str>, close: bool) -> String {
    let mut r = format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n");
    if let Some(token) = token {
        r.push_str(&format!("Authorization: Bearer {token}\r\n"));
    }
    if close {
        r.push_str("Connection: close\r\n");
    }
    r.push_str("\r\n");
    r
}

/// `GET path` on `io`, read to the end.
pub async fn get_on<S: AsyncRead + AsyncWrite + Unpin>(
    io: S,
    path: &str,
    token: Option<&str>,
) -> Response {
    try_get_on(io, path, token).await.unwrap()
}

/// `GET path` on `io`, read to the end; the I/O error if the connection fails (a TLS alert).
pub async fn try_get_on<S: AsyncRead + AsyncWrite + Unpin>(
    mut io: S,
    path: &str,
    token: Option<&str>,
) -> std::io::Result<Response> {
    io.write_all(request(path, token, true).as_bytes()).await?;
    let mut raw = Vec::new();
    tokio::time::timeout(WAIT, io.read_to_end(&mut raw))
        .await
        .expect("a response within the wait")?;
    Ok(parse(&raw))
}

/// `GET path` on the plain-HTTP server at `addr`.
pub async fn get(addr: std::net::SocketAddr, path: &str, token: Option<&str>) -> Response {
    let io = tokio::net::TcpStream::connect(addr).await.unwrap();
    get_on(io, path, token).await
}

fn parse(raw: &[u8]) -> Response {
    let text = String::from_utf8_lossy(raw);
    let (head, body) = text.split_once("\r\n\r\n").expect("an HTTP response");
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("a status");
    let head = head.to_owned();
    let chunked = head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked");
    let body = if chunked {
        let mut out = Vec::new();
        dechunk(body.as_bytes(), &mut out);
        String::from_utf8_lossy(&out).into_owned()
    } else {
        body.to_owned()
    };
    Response { status, head, body }
}

/// Decodes the complete chunks at the front of `buf` into `out`; returns the bytes consumed.
fn dechunk(buf: &[u8], out: &mut Vec<u8>) -> usize {
    let mut at = 0;
    loop {
        let Some(line_end) = buf[at..].windows(2).position(|w| w == b"\r\n") else {
            return at;
        };
        let size_text = String::from_utf8_lossy(&buf[at..at + line_end]);
        let Ok(size) = usize::from_str_radix(size_text.split(';').next().unwrap().trim(), 16)
        else {
            return at;
        };
        let data_start = at + line_end + 2;
        if size == 0 || buf.len() < data_start + size + 2 {
            return at;
        }
        out.extend_from_slice(&buf[data_start..data_start + size]);
        at = data_start + size + 2;
    }
}

/// An open `/api/events` stream.
pub struct Events<S> {
    io: S,
    pub status: u16,
    raw: Vec<u8>,
    text: Vec<u8>,
}

/// Opens `/api/events` on `io`.
pub async fn events_on<S: AsyncRead + AsyncWrite + Unpin>(
    mut io: S,
    token: Option<&str>,
) -> Events<S> {
    io.write_all(request("/api/events", token, false).as_bytes())
        .await
        .unwrap();
    let mut raw = Vec::new();
    let mut buf = [0u8; 8192];
    let head_end = loop {
        if let Some(end) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
            break end;
        }
        let n = tokio::time::timeout(WAIT, io.read(&mut buf))
            .await
            .expect("headers within the wait")
            .unwrap();
        assert!(n > 0, "the server closed before the headers");
        raw.extend_from_slice(&buf[..n]);
    };
    let head = String::from_utf8_lossy(&raw[..head_end]).into_owned();
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap();
    let rest = raw[head_end + 4..].to_vec();
    Events {
        io,
        status,
        raw: rest,
        text: Vec::new(),
    }
}

pub async fn events(
    addr: std::net::SocketAddr,
    token: Option<&str>,
) -> Events<tokio::net::TcpStream> {
    events_on(tokio::net::TcpStream::connect(addr).await.unwrap(), token).await
}

impl<S: AsyncRead + Unpin> Events<S> {
    /// The next event (name, data as JSON), or `None` when the stream ends or `within` passes.
    pub async fn next_within(&mut self, within: Duration) -> Option<(String, serde_json::Value)> {
        let deadline = tokio::time::Instant::now() + within;
        let mut buf = [0u8; 16384];
        loop {
            let used = dechunk(&self.raw, &mut self.text);
            self.raw.drain(..used);
            while let Some(end) = self.text.windows(2).position(|w| w == b"\n\n") {
                let block = String::from_utf8_lossy(&self.text[..end]).into_owned();
                self.text.drain(..end + 2);
                let mut name = String::from("message");
                let mut data = String::new();
                for line in block.lines() {
                    if let Some(n) = line.strip_prefix("event:") {
                        name = n.trim().to_owned();
                    } else if let Some(d) = line.strip_prefix("data:") {
                        data.push_str(d.strip_prefix(' ').unwrap_or(d));
                    }
                }
                if data.is_empty() {
                    continue; // keep-alive comment
                }
                return Some((
                    name,
                    serde_json::from_str(&data).expect("event data is JSON"),
                ));
            }
            let n = match tokio::time::timeout_at(deadline, self.io.read(&mut buf)).await {
                Ok(Ok(n)) => n,
                _ => return None,
            };
            if n == 0 {
                return None;
            }
            self.raw.extend_from_slice(&buf[..n]);
        }
    }

    /// The next event named `name` within `within`, skipping others.
    pub async fn until(&mut self, name: &str, within: Duration) -> Option<serde_json::Value> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let (n, data) = self.next_within(left).await?;
            if n == name {
                return Some(data);
            }
        }
    }
}

//! A raw HTTP/2 gRPC client (the `h2` crate): one DATA frame per message, half-sent messages,
//! bytes that are not protobuf — what tonic's own client never sends.

use bytes::{Buf as _, BufMut as _, Bytes, BytesMut};
use h2::client::SendRequest;
use hearken::proto::v1::*;
use prost::Message as _;

/// An HTTP/2 connection to `addr` (h2c).
pub async fn connect(addr: std::net::SocketAddr) -> SendRequest<Bytes> {
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    tcp.set_nodelay(true).unwrap();
    let (client, connection) = h2::client::Builder::new()
        .initial_window_size(4 * 1024 * 1024)
        .initial_connection_window_size(16 * 1024 * 1024)
        .handshake(tcp)
        .await
        .unwrap();
    tokio::spawn(async move {
        let _ = connection.await;
    });
    client
}

/// `bytes` as one gRPC message (uncompressed, length-prefixed).
pub fn frame(bytes: &[u8]) -> Bytes {
    let mut out = BytesMut::with_capacity(5 + bytes.len());
    out.put_u8(0);
    out.put_u32(bytes.len() as u32);
    out.put_slice(bytes);
    out.freeze()
}

/// A request as one gRPC message.
pub fn message(request: &impl prost::Message) -> Bytes {
    frame(&request.encode_to_vec())
}

/// Opens a call of `method` (`StreamConversations`, `ScoreTranscript`, `WatchAlerts`).
pub async fn open(
    client: &mut SendRequest<Bytes>,
    method: &str,
) -> (h2::client::ResponseFuture, h2::SendStream<Bytes>) {
    let request = http::Request::builder()
        .method("POST")
        .uri(format!(
            "http://localhost/hearken.v1.ListeningService/{method}"
        ))
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .body(())
        .unwrap();
    let mut ready = client.clone().ready().await.unwrap();
    ready.send_request(request, false).unwrap()
}

/// What a call answered: its messages, and its status (code, ErrorInfo reason) from the
/// trailers, or from the headers of a trailers-only answer.
#[derive(Debug, Default)]
pub struct Answer {
    pub responses: Vec<StreamConversationsResponse>,
    pub code: Option<i32>,
    pub reason: Option<String>,
}

fn status_of(headers: &http::HeaderMap) -> Option<(i32, Option<String>)> {
    use tonic_types::StatusExt as _;
    let status = tonic::Status::from_header_map(headers)?;
    let reason = status
        .get_error_details()
        .error_info()
        .map(|i| i.reason.clone());
    Some((status.code() as i32, reason))
}

/// The responses of a `StreamConversations` call, read as they come.
pub struct Responses {
    body: Option<h2::RecvStream>,
    buffer: BytesMut,
    /// The status, once the call has ended.
    pub code: Option<i32>,
    pub reason: Option<String>,
}

impl Responses {
    /// Waits for the call's headers.
    pub async fn of(response: h2::client::ResponseFuture) -> Responses {
        let response = match response.await {
            Ok(r) => r,
            Err(e) => panic!("the call failed at the HTTP/2 level: {e}"),
        };
        let mut responses = Responses {
            body: None,
            buffer: BytesMut::new(),
            code: None,
            reason: None,
        };
        if let Some((code, reason)) = status_of(response.headers()) {
            responses.code = Some(code);
            responses.reason = reason;
        } else {
            responses.body = Some(response.into_body());
        }
        responses
    }

    /// The next response, or `None` once the call has ended (its status is then known).
    pub async fn next(&mut self) -> Option<StreamConversationsResponse> {
        loop {
            if self.buffer.len() >= 5 {
                let b = &self.buffer;
                let len = u32::from_be_bytes([b[1], b[2], b[3], b[4]]) as usize;
                if self.buffer.len() >= 5 + len {
                    self.buffer.advance(5);
                    let message = self.buffer.split_to(len);
                    return Some(StreamConversationsResponse::decode(message).unwrap());
                }
            }
            let body = self.body.as_mut()?;
            match body.data().await {
                Some(chunk) => {
                    let chunk = chunk
                        .unwrap_or_else(|e| panic!("the call failed at the HTTP/2 level: {e}"));
                    let _ = body.flow_control().release_capacity(chunk.len());
                    self.buffer.extend_from_slice(&chunk);
                }
                None => {
                    if let Ok(Some(trailers)) = body.trailers().await
                        && let Some((code, reason)) = status_of(&trailers)
                    {
                        self.code = Some(code);
                        self.reason = reason;
                    }
                    self.body = None;
                    return None;
                }
            }
        }
    }
}

/// Reads a `StreamConversations` call to its end, releasing flow control as it reads; `until`
/// may stop early once it has seen enough.
pub async fn read_answer(
    response: h2::client::ResponseFuture,
    mut until: impl FnMut(&StreamConversationsResponse) -> bool,
) -> Answer {
    let mut responses = Responses::of(response).await;
    let mut answer = Answer::default();
    while let Some(response) = responses.next().await {
        let stop = until(&response);
        answer.responses.push(response);
        if stop {
            return answer;
        }
    }
    answer.code = responses.code;
    answer.reason = responses.reason;
    answer
}

pub fn is_scorecard(r: &StreamConversationsResponse) -> bool {
    matches!(
        r.payload,
        Some(stream_conversations_response::Payload::Scorecard(_))
    )
}

//! Service limits (`reliability.md`): what one stream, one process and one call may use. Every
//! one has a documented default and a setting (`hearken serve --help`, docs/operations.md).

use std::time::Duration;

use crate::engine::InputLimits;

/// Limits of the service.
#[derive(Debug, Clone, PartialEq)]
pub struct Limits {
    /// Per-conversation input limits (text, ids, offsets, utterances).
    pub input: InputLimits,
    /// Live conversations on one stream (R-CONV-1).
    pub max_conversations_per_stream: usize,
    /// Live conversations in the process (R-CONV-1).
    pub max_conversations_per_process: usize,
    /// Encoded size of one `StreamConversations` or `WatchAlerts` request (R-SIZE-1).
    pub max_stream_message_bytes: usize,
    /// Encoded size of one `ScoreTranscript` request (R-SIZE-1).
    pub max_transcript_message_bytes: usize,
    /// Utterances in one `ScoreTranscript` request (R-SIZE-4).
    pub max_transcript_utterances: usize,
    /// Encoded size of one `WatchAlerts` request (its filter).
    pub max_watch_request_bytes: usize,
    /// Conversation ids one `WatchAlerts` filter may name.
    pub max_watch_filter_ids: usize,
    /// `WatchAlerts` streams open at once in the process.
    pub max_watchers: usize,
    /// `ScoreTranscript` calls decoded and scored at once; more are refused at once with a
    /// retry delay, before their request is read (a burst of large transcripts cannot pin
    /// memory).
    pub max_concurrent_transcripts: usize,
    /// Requests read off a stream and not yet handled: the reader takes messages off the
    /// connection promptly (so HTTP/2's connection-wide budgets never end a call) up to this.
    pub inbound_queue: usize,
    /// Bytes of requests read off a stream and not yet handled.
    pub inbound_queue_bytes: usize,
    /// Bytes of requests read off all streams of the process and not yet handled: past it,
    /// streams are no longer read until the engine catches up (HTTP/2 flow control holds the
    /// senders).
    pub max_inflight_request_bytes: usize,
    /// Responses queued per stream before the server stops reading it (R-SLOW-1).
    pub outbound_queue: usize,
    /// A stream whose queue makes no progress for this long is ended (R-SLOW-2).
    pub client_not_reading_timeout: Duration,
    /// Alerts buffered for `WatchAlerts` before a slow watcher starts missing them (R-SLOW-3).
    pub watch_buffer: usize,
    /// Longest a stream may stay open (R-STREAM-1).
    pub max_stream_duration: Duration,
    /// A stream with no message for this long is ended (R-STREAM-2).
    pub stream_idle_timeout: Duration,
    /// A conversation with no message for this long ends as abandoned (R-STREAM-3).
    pub conversation_idle_timeout: Duration,
    /// Messages per second one conversation may send, partial segments included, with a burst
    /// of as many (R-CONV-3); excess messages are rejected in band with a retry hint.
    pub max_messages_per_second: f64,
    /// An ended conversation's id is remembered this long, so that late messages for it are
    /// rejected rather than starting a new conversation (R-PRIV-2).
    pub ended_linger: Duration,
    /// Live conversations one tenant may hold across its streams; 0 for no cap (R-CONV-1).
    pub max_conversations_per_tenant: usize,
    /// Streams (`StreamConversations`, `WatchAlerts`) one tenant may open per second; 0 for
    /// no limit (R-SEC-5).
    pub stream_opens_per_second: f64,
    /// Streams one tenant may open at once before the per-second rate applies.
    pub stream_open_burst: u32,
    /// Rate-limit unauthenticated callers' stream opens by peer IP address (off by default:
    /// behind a gateway or a mesh sidecar every call comes from one address).
    pub stream_open_rate_by_peer: bool,
}

impl Limits {
    /// 256 KiB.
    pub const DEFAULT_MAX_STREAM_MESSAGE_BYTES: usize = 256 * 1024;
    /// 4 MiB, tonic's default.
    pub const DEFAULT_MAX_TRANSCRIPT_MESSAGE_BYTES: usize = 4 * 1024 * 1024;
    /// 64 KiB: a filter of a thousand conversation ids.
    pub const DEFAULT_MAX_WATCH_REQUEST_BYTES: usize = 64 * 1024;
    /// A thousand ids.
    pub const DEFAULT_MAX_WATCH_FILTER_IDS: usize = 1_000;
    /// 500 watchers.
    pub const DEFAULT_MAX_WATCHERS: usize = 500;
    /// Four transcripts at once (two cores score them; the rest wait).
    pub const DEFAULT_MAX_CONCURRENT_TRANSCRIPTS: usize = 4;
    /// 1 024 requests, like the outbound queue.
    pub const DEFAULT_INBOUND_QUEUE: usize = 1_024;
    /// 1 MiB.
    pub const DEFAULT_INBOUND_QUEUE_BYTES: usize = 1024 * 1024;
    /// 256 MiB.
    pub const DEFAULT_MAX_INFLIGHT_REQUEST_BYTES: usize = 256 * 1024 * 1024;
    /// 10 000 live conversations on one stream.
    pub const DEFAULT_MAX_CONVERSATIONS_PER_STREAM: usize = 10_000;
    /// 50 000 live conversations in the process.
    pub const DEFAULT_MAX_CONVERSATIONS_PER_PROCESS: usize = 50_000;
    /// 30 s without progress on a stream's responses.
    pub const DEFAULT_CLIENT_NOT_READING_TIMEOUT: Duration = Duration::from_secs(30);
    /// 4 h: longer than any call.
    pub const DEFAULT_MAX_STREAM_DURATION: Duration = Duration::from_secs(4 * 60 * 60);
    /// 10 min without a message on a stream.
    pub const DEFAULT_STREAM_IDLE_TIMEOUT: Duration = Duration::from_secs(10 * 60);
    /// 30 min without a message for a conversation.
    pub const DEFAULT_CONVERSATION_IDLE_TIMEOUT: Duration = Duration::from_secs(30 * 60);
    /// An ended conversation's id is remembered for 60 s.
    pub const DEFAULT_ENDED_LINGER: Duration = Duration::from_secs(60);
    /// 50 messages per second per conversation.
    pub const DEFAULT_MAX_MESSAGES_PER_SECOND: f64 = 50.0;
    /// 10 stream opens per second per tenant.
    pub const DEFAULT_STREAM_OPENS_PER_SECOND: f64 = 10.0;
    /// Bursts of 50 stream opens per tenant.
    pub const DEFAULT_STREAM_OPEN_BURST: u32 = 50;
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            input: InputLimits::default(),
            max_conversations_per_stream: Self::DEFAULT_MAX_CONVERSATIONS_PER_STREAM,
            max_conversations_per_process: Self::DEFAULT_MAX_CONVERSATIONS_PER_PROCESS,
            max_stream_message_bytes: Self::DEFAULT_MAX_STREAM_MESSAGE_BYTES,
            max_transcript_message_bytes: Self::DEFAULT_MAX_TRANSCRIPT_MESSAGE_BYTES,
            max_transcript_utterances: 10_000,
            max_watch_request_bytes: Self::DEFAULT_MAX_WATCH_REQUEST_BYTES,
            max_watch_filter_ids: Self::DEFAULT_MAX_WATCH_FILTER_IDS,
            max_watchers: Self::DEFAULT_MAX_WATCHERS,
            max_concurrent_transcripts: Self::DEFAULT_MAX_CONCURRENT_TRANSCRIPTS,
            inbound_queue: Self::DEFAULT_INBOUND_QUEUE,
            inbound_queue_bytes: Self::DEFAULT_INBOUND_QUEUE_BYTES,
            max_inflight_request_bytes: Self::DEFAULT_MAX_INFLIGHT_REQUEST_BYTES,
            outbound_queue: 1_024,
            client_not_reading_timeout: Self::DEFAULT_CLIENT_NOT_READING_TIMEOUT,
            watch_buffer: 4_096,
            max_stream_duration: Self::DEFAULT_MAX_STREAM_DURATION,
            stream_idle_timeout: Self::DEFAULT_STREAM_IDLE_TIMEOUT,
            conversation_idle_timeout: Self::DEFAULT_CONVERSATION_IDLE_TIMEOUT,
            ended_linger: Self::DEFAULT_ENDED_LINGER,
            max_messages_per_second: Self::DEFAULT_MAX_MESSAGES_PER_SECOND,
            max_conversations_per_tenant: 0,
            stream_opens_per_second: Self::DEFAULT_STREAM_OPENS_PER_SECOND,
            stream_open_burst: Self::DEFAULT_STREAM_OPEN_BURST,
            stream_open_rate_by_peer: false,
        }
    }
}

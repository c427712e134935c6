//! Property: a conversation's responses do not change when other conversations are interleaved
//! with it on the same stream — over real gRPC.

mod common;

use common::*;
use hearken::proto::v1::*;
use proptest::prelude::*;

/// Responses of `conversation` when `requests` are sent on one fresh stream.
async fn responses_of(
    server: &Running,
    requests: &[StreamConversationsRequest],
    conversations: usize,
) -> Vec<StreamConversationsResponse> {
    let mut client = server.client().await;
    let mut call = Call::open(&mut client).await;
    for r in requests {
        call.send(r.clone()).await;
    }
    let mut out = call.until_scorecards(conversations).await;
    for r in &mut out {
        if let Some(stream_conversations_response::Payload::Alert(a)) = &mut r.payload {
            a.time = None;
        }
        if let Some(stream_conversations_response::Payload::Scorecard(c)) = &mut r.payload {
            *c = without_times(c.clone());
        }
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(12))]

    #[test]
    fn interleaving_other_conversations_changes_nothing(order in prop::collection::vec(0usize..3, 0..120)) {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        runtime.block_on(async {
            let server = TestServer::new().start().await;
            let calls = demo_calls();
            let queues: Vec<Vec<StreamConversationsRequest>> = calls.iter().map(|t| requests_of(t, &t.conversation_id)).collect();
            // Each conversation alone.
            let mut alone = Vec::new();
            for q in &queues {
                alone.push(responses_of(&server, q, 1).await);
            }
            // All three on one stream, in the order the strategy chose (then the rest).
            let mut cursors = [0usize; 3];
            let mut mixed = Vec::new();
            for &i in order.iter().chain([0, 1, 2].iter().cycle().take(3 * 40)) {
                if let Some(r) = queues[i].get(cursors[i]) {
                    mixed.push(r.clone());
                    cursors[i] += 1;
                }
            }
            for (i, q) in queues.iter().enumerate() {
                mixed.extend(q[cursors[i]..].iter().cloned());
            }
            let together = responses_of(&server, &mixed, 3).await;
            for (t, alone) in calls.iter().zip(&alone) {
                let mine: Vec<_> = together.iter().filter(|r| r.conversation_id == t.conversation_id).cloned().collect();
                assert_eq!(&mine, alone, "{}", t.conversation_id);
            }
        });
    }
}

//! What a stream lets in: a conversation's place under the process's and the tenant's caps
//! ([`Slot`]), and a conversation's message rate ([`MessageRate`], R-CONV-3).

use std::num::NonZeroU32;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use governor::clock::{Clock as _, DefaultClock};
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};

use crate::service::Shared;

/// A live conversation's place under the process's and the tenant's caps, counted in the
/// `conversations.active` gauge and in readiness; all are given back when it drops.
pub(super) struct Slot {
    shared: Arc<Shared>,
    tenant: Arc<str>,
}

impl Slot {
    /// Takes a place, or names the cap that is full and its size.
    pub(super) fn take(
        shared: &Arc<Shared>,
        tenant: &Arc<str>,
    ) -> Result<Slot, (&'static str, usize)> {
        let cap = shared.limits.max_conversations_per_process;
        let before = shared.live_conversations.fetch_add(1, Ordering::Relaxed);
        if before >= cap {
            shared.live_conversations.fetch_sub(1, Ordering::Relaxed);
            return Err(("this server", cap));
        }
        if let Some(caps) = &shared.tenant_conversations
            && !caps.try_open(tenant)
        {
            shared.live_conversations.fetch_sub(1, Ordering::Relaxed);
            return Err(("this tenant", caps.cap()));
        }
        shared.metrics.conversations_changed(1);
        shared.readiness.conversations_changed(before + 1, cap);
        Ok(Slot {
            shared: Arc::clone(shared),
            tenant: Arc::clone(tenant),
        })
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let before = self
            .shared
            .live_conversations
            .fetch_sub(1, Ordering::Relaxed);
        if let Some(caps) = &self.shared.tenant_conversations {
            caps.closed(&self.tenant, 1);
        }
        self.shared.metrics.conversations_changed(-1);
        self.shared.readiness.conversations_changed(
            before.saturating_sub(1),
            self.shared.limits.max_conversations_per_process,
        );
    }
}

/// How many messages a conversation may send (R-CONV-3): `per_second` a second of wall-clock
/// time with bursts of as many (a token bucket), **or** as many as its own call time has earned,
/// `per_second × call seconds`, whichever lets the message in.
///
/// The second allowance is what makes a replay exact: a client that reconnects after a server
/// restart or drain resends a conversation's messages at once, far faster than wall-clock time
/// allows, but never faster than the call they describe. A real call cannot outrun its own
/// clock, so the allowance only admits what the conversation could have sent live; a flood of
/// messages that all claim the same moment (or carry no time) still meets the bucket.
pub(super) struct MessageRate {
    bucket: Option<DefaultDirectRateLimiter>,
    per_second: f64,
    admitted: u64,
    /// The latest offset any message of the conversation has carried, in milliseconds.
    call_ms: i64,
}

impl MessageRate {
    /// `per_second` messages a second with bursts of as many (at least one), timed by `clock`
    /// (one for the process: making a clock is not free).
    pub(super) fn new(per_second: f64, clock: &DefaultClock) -> Self {
        let per_second = if per_second.is_finite() && per_second > 0.0 {
            per_second
        } else {
            1.0
        };
        let burst = per_second.ceil().min(f64::from(u32::MAX)) as u32;
        let bucket = Quota::with_period(Duration::from_secs_f64(1.0 / per_second))
            .zip(NonZeroU32::new(burst.max(1)))
            .map(|(quota, burst)| {
                RateLimiter::direct_with_clock(quota.allow_burst(burst), clock.clone())
            });
        MessageRate {
            bucket,
            per_second,
            admitted: 0,
            call_ms: 0,
        }
    }

    /// Lets one message in, given the call time it carries (its end, else its start, else
    /// nothing), or says how long until the bucket has room.
    pub(super) fn admit(&mut self, offset_ms: Option<i64>) -> Result<(), Duration> {
        if let Some(offset) = offset_ms {
            self.call_ms = self.call_ms.max(offset);
        }
        let earned = self.per_second * (self.call_ms.max(0) as f64 / 1000.0);
        if (self.admitted as f64) >= earned
            && let Some(bucket) = &self.bucket
        {
            bucket
                .check()
                .map_err(|not_until| not_until.wait_time_from(bucket.clock().now()))?;
        }
        self.admitted += 1;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_without_call_time_get_the_burst_then_wait() {
        let mut rate = MessageRate::new(50.0, &DefaultClock::default());
        let admitted = (0..100).filter(|_| rate.admit(None).is_ok()).count();
        assert!((50..=52).contains(&admitted), "{admitted}");
        let wait = rate.admit(None).unwrap_err();
        assert!(wait <= Duration::from_millis(20), "{wait:?}");
    }

    #[test]
    fn a_replay_at_once_is_admitted_as_far_as_its_call_time_allows() {
        let mut rate = MessageRate::new(50.0, &DefaultClock::default());
        // 300 utterances a second apart, all at once: 300 s of call earn 15 000.
        for i in 0..300 {
            assert!(rate.admit(Some(i * 1000 + 900)).is_ok(), "message {i}");
        }
        // Many messages claiming one moment are not: one second of call earns 50, then the
        // bucket's burst of 50, then they wait.
        let mut rate = MessageRate::new(50.0, &DefaultClock::default());
        let admitted = (0..300).filter(|_| rate.admit(Some(1_000)).is_ok()).count();
        assert!((100..=105).contains(&admitted), "{admitted}");
    }
}

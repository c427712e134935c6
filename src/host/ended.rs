//! The memory of conversations that ended, or whose start was refused, lately: a late message
//! for one is rejected rather than opening a new conversation under the same id. Oldest first,
//! bounded by a count, forgotten after a linger measured on the owner's clock (the wall clock
//! for a stream, record time for a Kafka partition).

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use super::route::Gone;

/// A point on an owner's clock.
pub trait Moment: Copy {
    /// How long before `now` this was (zero if after).
    fn age(self, now: Self) -> Duration;
}

impl Moment for Instant {
    fn age(self, now: Instant) -> Duration {
        now.saturating_duration_since(self)
    }
}

/// Record time: milliseconds since the Unix epoch.
impl Moment for i64 {
    fn age(self, now: i64) -> Duration {
        Duration::from_millis(now.saturating_sub(self).max(0) as u64)
    }
}

/// Conversations not live but lately, with when and why.
#[derive(Debug)]
pub(crate) struct Ended<T> {
    recent: VecDeque<(String, T, Gone)>,
}

impl<T> Default for Ended<T> {
    fn default() -> Self {
        Ended {
            recent: VecDeque::new(),
        }
    }
}

impl<T: Moment> Ended<T> {
    /// Why `id` is not live, if it ended (or its start was refused) within `linger` of `now`;
    /// older entries are forgotten on the way.
    pub(crate) fn gone_lately(&mut self, id: &str, now: T, linger: Duration) -> Option<Gone> {
        while self
            .recent
            .front()
            .is_some_and(|(_, at, _)| at.age(now) > linger)
        {
            self.recent.pop_front();
        }
        self.recent
            .iter()
            .rev()
            .find(|(g, _, _)| g == id)
            .map(|(_, _, gone)| *gone)
    }

    /// Remembers why `id` is not live, forgetting the oldest entry beyond `cap`.
    pub(crate) fn remember(&mut self, id: &str, at: T, gone: Gone, cap: usize) {
        if self.recent.len() >= cap {
            self.recent.pop_front();
        }
        self.recent.push_back((id.to_owned(), at, gone));
    }

    /// Forgets `id` (a refused start, once a new one is judged).
    pub(crate) fn forget(&mut self, id: &str) {
        self.recent.retain(|(g, _, _)| g != id);
    }

    /// The entries within `linger` of `now`, oldest first (what [`Ended::gone_lately`] would
    /// still find).
    pub(crate) fn lately(
        &self,
        now: T,
        linger: Duration,
    ) -> impl Iterator<Item = &(String, T, Gone)> {
        self.recent
            .iter()
            .filter(move |(_, at, _)| at.age(now) <= linger)
    }
}

impl<T> FromIterator<(String, T, Gone)> for Ended<T> {
    fn from_iter<I: IntoIterator<Item = (String, T, Gone)>>(items: I) -> Self {
        Ended {
            recent: items.into_iter().collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_are_forgotten_after_the_linger_and_beyond_the_cap() {
        let mut e: Ended<i64> = Ended::default();
        let linger = Duration::from_millis(100);
        e.remember("a", 0, Gone::Ended, 2);
        e.remember("b", 50, Gone::StartRefused("start.language"), 2);
        assert_eq!(e.gone_lately("a", 100, linger), Some(Gone::Ended));
        assert_eq!(
            e.gone_lately("b", 101, linger),
            Some(Gone::StartRefused("start.language"))
        );
        assert_eq!(e.gone_lately("a", 101, linger), None, "past the linger");
        e.remember("c", 120, Gone::Ended, 2);
        e.remember("d", 120, Gone::Ended, 2);
        assert_eq!(e.gone_lately("b", 120, linger), None, "beyond the cap");
        e.forget("c");
        let lately = |now| {
            e.lately(now, linger)
                .map(|(id, _, _)| id.as_str())
                .collect::<Vec<_>>()
        };
        assert_eq!(lately(200), ["d"]);
        assert!(lately(221).is_empty(), "past the linger");
    }
}

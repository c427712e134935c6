//! The final utterances a conversation has scored, by id: what tells a repeat (ignored) or a
//! conflicting resend (rejected) from a new utterance. Every final id of the call is kept (a
//! replay may resend any of them), bounded by the conversation's `max_utterances`.
//!
//! Compact because it lives as long as the call: a hash map of 8-byte keys and values rounds
//! up to the next power of two and carries control bytes (a one-hour call's 684 finals took
//! ~22 KiB of resident memory, a third of the call's), so the ids sit in a sorted vector that
//! grows by an eighth, with the newest few in a short unsorted tail merged in when it fills.

/// Id hash → content hash of every final utterance so far.
#[derive(Debug, Clone, Default)]
pub(crate) struct Finals {
    /// Sorted by id hash.
    sorted: Vec<(u64, u64)>,
    /// The newest, unsorted; at most [`TAIL`].
    tail: Vec<(u64, u64)>,
}

/// Entries in the unsorted tail before it is merged: a lookup scans at most this many, and a
/// merge (linear in the call's finals) happens once per this many utterances.
const TAIL: usize = 32;

impl Finals {
    /// The content hash of the final utterance with id hash `id`, if one was scored.
    pub(crate) fn get(&self, id: u64) -> Option<u64> {
        if let Some(&(_, c)) = self.tail.iter().find(|(k, _)| *k == id) {
            return Some(c);
        }
        self.sorted
            .binary_search_by_key(&id, |&(k, _)| k)
            .ok()
            .map(|i| self.sorted[i].1)
    }

    /// Remembers a final utterance (its id is not among them yet: [`Self::get`] first).
    pub(crate) fn insert(&mut self, id: u64, content: u64) {
        if self.tail.capacity() == 0 {
            self.tail.reserve_exact(TAIL);
        }
        self.tail.push((id, content));
        if self.tail.len() == TAIL {
            self.merge();
        }
    }

    fn merge(&mut self) {
        let old = self.sorted.len();
        let need = old + self.tail.len();
        if need > self.sorted.capacity() {
            // An eighth more than needed, not double: it lives as long as the call.
            self.sorted.reserve_exact(need + need / 8 - old);
        }
        self.tail.sort_unstable_by_key(|&(k, _)| k);
        self.sorted.append(&mut self.tail);
        // Two sorted runs, the old entries and the tail: the stable sort merges them in linear
        // time.
        self.sorted.sort_by_key(|&(k, _)| k);
    }

    /// How many final utterances it holds.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.sorted.len() + self.tail.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every id inserted is found with its content, across merges; others are not.
    #[test]
    fn finds_every_id_across_merges_and_no_other() {
        let mut f = Finals::default();
        let key = |i: u64| i.wrapping_mul(0x9e37_79b9_7f4a_7c15);
        for i in 0..1_000u64 {
            assert_eq!(f.get(key(i)), None);
            f.insert(key(i), i);
            assert_eq!(f.get(key(i)), Some(i));
        }
        assert_eq!(f.len(), 1_000);
        for i in 0..1_000u64 {
            assert_eq!(f.get(key(i)), Some(i), "{i}");
            assert_eq!(f.get(key(i + 1_000)), None);
        }
        assert!(f.sorted.windows(2).all(|w| w[0].0 < w[1].0), "sorted");
        assert!(
            f.sorted.capacity() <= 1_000 + 1_000 / 8 + TAIL,
            "grows by an eighth: {}",
            f.sorted.capacity()
        );
    }
}

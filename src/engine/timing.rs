//! Interval maths on millisecond offsets: the union of a role's speech, the part of a new
//! utterance not yet covered, overlaps with the other role. Intervals are half-open
//! `[start, end)`; touching intervals merge.

/// A set of disjoint, sorted, non-touching intervals.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct IntervalSet {
    spans: Vec<(i64, i64)>,
}

impl IntervalSet {
    /// The intervals, sorted and disjoint (for the tests).
    #[cfg(test)]
    pub(crate) fn spans(&self) -> &[(i64, i64)] {
        &self.spans
    }

    /// Index of the first span that ends at or after `t`.
    fn first_ending_at_or_after(&self, t: i64) -> usize {
        self.spans.partition_point(|&(_, end)| end < t)
    }

    /// Adds `[start, end)` and returns how many milliseconds were not covered before.
    pub(crate) fn insert(&mut self, start: i64, end: i64) -> i64 {
        if end <= start {
            return 0;
        }
        let newly = end - start - self.overlap(start, end);
        let first = self.first_ending_at_or_after(start);
        let mut last = first;
        let (mut merged_start, mut merged_end) = (start, end);
        while last < self.spans.len() && self.spans[last].0 <= end {
            merged_start = merged_start.min(self.spans[last].0);
            merged_end = merged_end.max(self.spans[last].1);
            last += 1;
        }
        self.spans
            .splice(first..last, std::iter::once((merged_start, merged_end)));
        newly
    }

    /// Milliseconds of `[start, end)` covered by the set.
    pub(crate) fn overlap(&self, start: i64, end: i64) -> i64 {
        self.pieces_within(start, end).map(|(s, e)| e - s).sum()
    }

    /// The parts of the set inside `[start, end)`, in order.
    pub(crate) fn pieces_within(
        &self,
        start: i64,
        end: i64,
    ) -> impl Iterator<Item = (i64, i64)> + '_ {
        let first = self.first_ending_at_or_after(start);
        self.spans[first..]
            .iter()
            .take_while(move |&&(s, _)| s < end)
            .filter_map(move |&(s, e)| {
                let (s, e) = (s.max(start), e.min(end));
                (e > s).then_some((s, e))
            })
    }

    /// The parts of `[start, end)` that the set does not cover, in order.
    pub(crate) fn uncovered(&self, start: i64, end: i64) -> Vec<(i64, i64)> {
        let mut out = Vec::new();
        let mut cursor = start;
        for (s, e) in self.pieces_within(start, end) {
            if s > cursor {
                out.push((cursor, s));
            }
            cursor = e;
        }
        if cursor < end {
            out.push((cursor, end));
        }
        out
    }

    /// The span of the set that contains `t`, if any.
    pub(crate) fn span_containing(&self, t: i64) -> Option<(i64, i64)> {
        let i = self.first_ending_at_or_after(t);
        self.spans
            .get(i)
            .copied()
            .filter(|&(s, e)| s <= t && t <= e)
    }

    /// Forgets the spans that end before `t` (they are already counted in running totals).
    pub(crate) fn forget_before(&mut self, t: i64) {
        let keep_from = self.spans.partition_point(|&(_, end)| end < t);
        self.spans.drain(..keep_from);
    }
}

/// Length of the longest piece shared by two sorted interval lists.
pub(crate) fn longest_common_piece(a: &IntervalSet, start: i64, end: i64, b: &IntervalSet) -> i64 {
    a.pieces_within(start, end)
        .flat_map(|(s, e)| {
            b.pieces_within(s, e)
                .map(|(s, e)| e - s)
                .collect::<Vec<_>>()
        })
        .max()
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn set(spans: &[(i64, i64)]) -> IntervalSet {
        let mut s = IntervalSet::default();
        for &(a, b) in spans {
            s.insert(a, b);
        }
        s
    }

    #[test]
    fn insert_merges_overlapping_and_touching_spans() {
        let mut s = set(&[(0, 10), (20, 30)]);
        assert_eq!(s.insert(10, 20), 10);
        assert_eq!(s.spans(), &[(0, 30)]);
        assert_eq!(s.insert(5, 25), 0, "fully covered adds nothing");
        assert_eq!(s.insert(40, 40), 0, "empty interval");
        assert_eq!(s.insert(-5, 2), 5);
        assert_eq!(s.spans(), &[(-5, 30)]);
    }

    #[test]
    fn overlapping_utterances_of_one_role_are_not_double_counted() {
        let mut s = IntervalSet::default();
        let total: i64 = [(0, 5000), (3000, 8000), (7000, 7500), (9000, 10000)]
            .iter()
            .map(|&(a, b)| s.insert(a, b))
            .sum();
        assert_eq!(total, 9000);
    }

    #[test]
    fn uncovered_and_overlap_partition_an_interval() {
        let s = set(&[(10, 20), (30, 40)]);
        assert_eq!(s.uncovered(0, 50), vec![(0, 10), (20, 30), (40, 50)]);
        assert_eq!(s.overlap(15, 35), 10);
        assert_eq!(s.uncovered(12, 18), vec![]);
        assert_eq!(s.span_containing(35), Some((30, 40)));
        assert_eq!(s.span_containing(25), None);
    }

    #[test]
    fn longest_common_piece_finds_the_longest_shared_run() {
        let a = set(&[(0, 100)]);
        let b = set(&[(10, 20), (50, 90)]);
        assert_eq!(longest_common_piece(&a, 0, 100, &b), 40);
        assert_eq!(longest_common_piece(&a, 0, 30, &b), 10);
    }

    #[test]
    fn forget_before_keeps_spans_that_reach_the_cut() {
        let mut s = set(&[(0, 10), (20, 30), (40, 50)]);
        s.forget_before(25);
        assert_eq!(s.spans(), &[(20, 30), (40, 50)]);
    }

    proptest! {
        /// The union measured by insertion equals a brute-force count of covered milliseconds,
        /// whatever the order of insertion.
        #[test]
        fn union_matches_brute_force(spans in prop::collection::vec((0i64..200, 0i64..40), 0..30)) {
            let mut s = IntervalSet::default();
            let mut added = 0;
            let mut covered = [false; 240];
            for &(a, len) in &spans {
                added += s.insert(a, a + len);
                for c in covered.iter_mut().skip(a as usize).take(len as usize) { *c = true; }
            }
            let brute = covered.iter().filter(|c| **c).count() as i64;
            prop_assert_eq!(added, brute);
            prop_assert_eq!(s.spans().iter().map(|(a, b)| b - a).sum::<i64>(), brute);
            for w in s.spans().windows(2) { prop_assert!(w[0].1 < w[1].0); }
        }
    }
}

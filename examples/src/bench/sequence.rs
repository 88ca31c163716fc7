//! Checks one publisher's stream as one subscriber saw it: every sequence number once, in order.
//! Sans-IO: sequence numbers in, counts out.

use std::collections::BTreeSet;

/// Most gaps remembered per publisher; past it, a late arrival into a forgotten gap counts as a
/// duplicate and the gap itself as lost (the run is broken anyway and the counts say so).
pub const MAX_GAPS: usize = 100_000;

/// What one subscriber saw of one publisher's sequence numbers `0, 1, 2, …`.
///
/// ```
/// use iot_examples::bench::sequence::SequenceTracker;
/// let mut seen = SequenceTracker::default();
/// for sequence in [0, 1, 3, 2, 2] {
///     seen.observe(sequence);
/// }
/// assert_eq!((seen.received(), seen.reordered(), seen.duplicated()), (4, 1, 1));
/// // Publisher sent 0..5, all acknowledged: 4 never came.
/// assert_eq!(seen.lost(5, |_| true), 1);
/// ```
#[derive(Debug, Clone, Default)]
pub struct SequenceTracker {
    /// One past the highest sequence number seen.
    next: u64,
    /// Numbers below `next` not seen yet (bounded by [`MAX_GAPS`]).
    gaps: BTreeSet<u64>,
    /// Gap numbers not remembered because the set was full.
    forgotten: u64,
    received: u64,
    reordered: u64,
    duplicated: u64,
}

impl SequenceTracker {
    /// Records one arrival.
    pub fn observe(&mut self, sequence: u64) {
        if sequence >= self.next {
            let missing = sequence - self.next;
            let room = (MAX_GAPS.saturating_sub(self.gaps.len())) as u64;
            let remembered = missing.min(room);
            self.gaps.extend(self.next..self.next + remembered);
            self.forgotten += missing - remembered;
            self.next = sequence.saturating_add(1);
            self.received += 1;
        } else if self.gaps.remove(&sequence) {
            self.reordered += 1;
            self.received += 1;
        } else {
            self.duplicated += 1;
        }
    }

    /// Distinct sequence numbers received.
    pub fn received(&self) -> u64 {
        self.received
    }

    /// Arrivals after a higher number had arrived.
    pub fn reordered(&self) -> u64 {
        self.reordered
    }

    /// Arrivals of a number already received.
    pub fn duplicated(&self) -> u64 {
        self.duplicated
    }

    /// Whether every number below `sent` has arrived.
    pub fn complete(&self, sent: u64) -> bool {
        self.next >= sent && self.gaps.is_empty() && self.forgotten == 0
    }

    /// Numbers below `sent` for which `acknowledged` holds that never arrived.
    pub fn lost(&self, sent: u64, acknowledged: impl Fn(u64) -> bool) -> u64 {
        let in_gaps = self
            .gaps
            .iter()
            .filter(|&&s| s < sent && acknowledged(s))
            .count() as u64;
        let beyond = (self.next..sent).filter(|&s| acknowledged(s)).count() as u64;
        in_gaps + beyond + self.forgotten
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn in_order_is_clean() {
        let mut t = SequenceTracker::default();
        (0..1000).for_each(|s| t.observe(s));
        assert!(t.complete(1000));
        assert_eq!((t.received(), t.reordered(), t.duplicated()), (1000, 0, 0));
        assert_eq!(t.lost(1000, |_| true), 0);
    }

    #[test]
    fn unacknowledged_messages_are_not_lost() {
        let mut t = SequenceTracker::default();
        t.observe(0);
        t.observe(2);
        // 1 and 3 never came; only 3 was acknowledged.
        assert_eq!(t.lost(4, |s| s == 3), 1);
        assert!(!t.complete(4));
    }

    #[test]
    fn a_huge_jump_is_bounded() {
        let mut t = SequenceTracker::default();
        t.observe(u64::MAX - 1);
        assert_eq!(t.gaps.len(), MAX_GAPS);
        assert!(t.forgotten > 0);
        t.observe(u64::MAX);
        assert_eq!(t.received(), 2);
    }

    proptest! {
        #[test]
        fn counts_add_up(arrivals in proptest::collection::vec(0u64..64, 0..200)) {
            let mut t = SequenceTracker::default();
            arrivals.iter().for_each(|&s| t.observe(s));
            let distinct: BTreeSet<u64> = arrivals.iter().copied().collect();
            prop_assert_eq!(t.received(), distinct.len() as u64);
            prop_assert_eq!(t.received() + t.duplicated(), arrivals.len() as u64);
            let lost = (0..64).filter(|s| !distinct.contains(s)).count() as u64;
            prop_assert_eq!(t.lost(64, |_| true), lost);
            prop_assert_eq!(t.complete(64), lost == 0);
        }

        #[test]
        fn a_permutation_loses_nothing(mut order in Just((0u64..50).collect::<Vec<_>>()).prop_shuffle()) {
            let mut t = SequenceTracker::default();
            order.iter().for_each(|&s| t.observe(s));
            order.sort_unstable();
            prop_assert!(t.complete(50));
            prop_assert_eq!(t.duplicated(), 0);
        }
    }
}

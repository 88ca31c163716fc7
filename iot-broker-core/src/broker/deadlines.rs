//! The broker's timers: an ordered set of (deadline, what) entries, earliest first, in the
//! quinn-proto style. [`Broker::tick`](super::Broker::tick) takes only the entries that are due;
//! [`Broker::poll_timeout`](super::Broker::poll_timeout) is the first one's deadline.
//!
//! Each timer is owned by one object (a connection, a session, a client id's presence record),
//! which keeps the deadline it armed in an `Option<u64>` slot. Arming keeps the earlier of the
//! armed and the asked deadline (an entry is a wake-up: the handler re-checks the state and
//! arms again if it woke early), so an object has at most one entry of each kind: a connection
//! one, a session three, a presence record one. Disarming removes the entry at once (an ordered
//! set can), so the set never holds entries of objects that are gone; a popped entry whose slot
//! does not hold its deadline is stale and discarded anyway.

use std::collections::BTreeSet;
use std::sync::Arc;

use crate::connection::ConnectionId;
use crate::stats::SessionKey;

/// What a timer entry is for.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(super) enum Timer {
    /// A connection's CONNECT timeout or keep-alive (its phase says which).
    Connection(ConnectionId),
    /// A disconnected persistent session's expiry.
    SessionExpiry(SessionKey),
    /// A connected session's oldest in-flight delivery reaching `max_inflight_age_ms`.
    InflightAge(SessionKey),
    /// A connected session's queue, held back by the publish rate, gets the next second.
    RateHeld(SessionKey),
    /// A client id's lifecycle `versionNumber` record, an hour after its last connection ended.
    PresenceReset(Arc<str>),
}

/// The ordered timer set.
#[derive(Debug, Default)]
pub(super) struct Deadlines {
    entries: BTreeSet<(u64, Timer)>,
    /// Entries taken as due since the broker started: the work `tick` did, for tests.
    #[cfg(test)]
    taken: u64,
}

impl Deadlines {
    /// The earliest deadline, if any.
    pub fn next(&self) -> Option<u64> {
        self.entries.first().map(|(at, _)| *at)
    }

    /// Entries held (at most a constant per connection, session and presence record).
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Entries taken as due so far.
    #[cfg(test)]
    pub fn taken(&self) -> u64 {
        self.taken
    }

    /// Wake `timer` at `at`, or earlier if its `slot` holds an earlier deadline.
    pub fn arm(&mut self, slot: &mut Option<u64>, at: u64, timer: Timer) {
        match *slot {
            Some(armed) if armed <= at => return,
            Some(armed) => {
                self.entries.remove(&(armed, timer.clone()));
            }
            None => {}
        }
        self.entries.insert((at, timer));
        *slot = Some(at);
    }

    /// Wake `timer` exactly at `at`, replacing what its `slot` holds.
    pub fn rearm(&mut self, slot: &mut Option<u64>, at: u64, timer: Timer) {
        if *slot == Some(at) {
            return;
        }
        self.disarm(slot, timer.clone());
        self.entries.insert((at, timer));
        *slot = Some(at);
    }

    /// Remove `timer`'s entry, if its `slot` holds one.
    pub fn disarm(&mut self, slot: &mut Option<u64>, timer: Timer) {
        if let Some(at) = slot.take() {
            self.entries.remove(&(at, timer));
        }
    }

    /// Take the earliest entry if it is due at `now_ms`. The owner's slot still names it: the
    /// handler checks the slot (stale if it differs) and clears it.
    pub fn pop_due(&mut self, now_ms: u64) -> Option<(u64, Timer)> {
        if self.next()? > now_ms {
            return None;
        }
        let entry = self.entries.pop_first()?;
        #[cfg(test)]
        {
            self.taken += 1;
        }
        Some(entry)
    }
}

/// Take `slot` if it names the popped entry's deadline `at` (the entry is live), leaving it
/// empty; `false` for a stale entry.
pub(super) fn fired(slot: &mut Option<u64>, at: u64) -> bool {
    if *slot == Some(at) {
        *slot = None;
        true
    } else {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arm_keeps_the_earlier_deadline_and_disarm_removes_it() {
        let mut d = Deadlines::default();
        let mut slot = None;
        let timer = Timer::RateHeld(SessionKey(1));
        d.arm(&mut slot, 2000, timer.clone());
        d.arm(&mut slot, 3000, timer.clone());
        assert_eq!((d.next(), d.len()), (Some(2000), 1));
        d.arm(&mut slot, 1000, timer.clone());
        assert_eq!((d.next(), d.len(), slot), (Some(1000), 1, Some(1000)));
        d.rearm(&mut slot, 5000, timer.clone());
        assert_eq!((d.next(), d.len()), (Some(5000), 1));
        d.disarm(&mut slot, timer);
        assert_eq!((d.next(), d.len(), slot), (None, 0, None));
    }

    #[test]
    fn only_due_entries_are_taken_earliest_first() {
        let mut d = Deadlines::default();
        let (mut a, mut b) = (None, None);
        d.arm(&mut a, 20, Timer::Connection(ConnectionId(1)));
        d.arm(&mut b, 10, Timer::Connection(ConnectionId(2)));
        assert_eq!(d.pop_due(9), None);
        assert_eq!(
            d.pop_due(20),
            Some((10, Timer::Connection(ConnectionId(2))))
        );
        assert!(fired(&mut b, 10));
        assert!(!fired(&mut b, 10), "a second look finds it stale");
        assert_eq!(
            d.pop_due(20),
            Some((20, Timer::Connection(ConnectionId(1))))
        );
        assert_eq!(d.pop_due(u64::MAX), None);
        assert_eq!(d.taken(), 2);
    }
}

//! One session's in-flight window: the QoS 1/2 deliveries sent and not yet fully acknowledged,
//! in the order they were sent, and the packet ids they carry.
//!
//! Packet ids come from a cursor that walks 1..=65535 and wraps. Every id the cursor hands out
//! is numbered by a 64-bit serial, and an in-flight entry keeps the serial of its id, so the
//! window stays sorted by serial. An entry issued less than one lap (65,535 serials) ago cannot
//! carry the id under the cursor: only entries a whole lap old can, and they are the front of the
//! window. So the next id costs one comparison with the front in the normal case, and one more
//! per delivery left unacknowledged for a whole lap (each is a delivery the client owes, so a
//! client that never acknowledges pays with its own window). No bitmap, no set: an idle session
//! holds an empty `VecDeque`.

use std::collections::VecDeque;

use mqtt_codec::PacketId;

use crate::message::Message;

/// How many distinct packet ids there are (1..=65535).
const ID_SPACE: u64 = u16::MAX as u64;

/// A delivery sent and not yet fully acknowledged.
#[derive(Debug, Clone)]
pub(crate) struct Inflight {
    pub pid: PacketId,
    /// Sequence number in the persistent store, if the session is persistent.
    pub seq: Option<u64>,
    pub message: Message,
    /// QoS 2: PUBREC received and PUBREL sent, waiting for PUBCOMP.
    pub released: bool,
    pub sent_at_ms: u64,
    /// The cursor serial `pid` was issued at (orders the window; see the module doc).
    serial: u64,
}

/// The in-flight deliveries of one session, oldest first, with the packet-id cursor.
#[derive(Debug, Default)]
pub(crate) struct InflightWindow {
    entries: VecDeque<Inflight>,
    /// Serial of the next id the cursor hands out; the id is `serial % 65535 + 1`.
    next_serial: u64,
}

impl InflightWindow {
    /// Deliveries in flight.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether nothing is in flight.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Send `message` under a fresh packet id at `now_ms`; returns the id.
    pub fn push(&mut self, seq: Option<u64>, message: Message, now_ms: u64) -> PacketId {
        let (pid, serial) = self.next_packet_id();
        self.entries.push_back(Inflight {
            pid,
            seq,
            message,
            released: false,
            sent_at_ms: now_ms,
            serial,
        });
        pid
    }

    /// A packet id no in-flight delivery carries, and its serial. O(1) unless deliveries have
    /// stayed unacknowledged for a whole lap of ids (module doc).
    fn next_packet_id(&mut self) -> (PacketId, u64) {
        loop {
            let serial = self.next_serial;
            self.next_serial = self.next_serial.wrapping_add(1);
            let value = u16::try_from(serial % ID_SPACE + 1).unwrap_or(u16::MAX);
            let Some(pid) = PacketId::new(value) else {
                continue; // unreachable: the value is in 1..=65535
            };
            let taken = self
                .entries
                .iter()
                .take_while(|i| serial.wrapping_sub(i.serial) >= ID_SPACE)
                .any(|i| i.pid == pid);
            if !taken {
                return (pid, serial);
            }
        }
    }

    /// Remove the delivery under `pid` if `matches` accepts it. Acknowledgements mostly come in
    /// order, so the oldest is tried first, then the rest.
    pub fn take(&mut self, pid: PacketId, matches: impl Fn(&Inflight) -> bool) -> Option<Inflight> {
        if self
            .entries
            .front()
            .is_some_and(|i| i.pid == pid && matches(i))
        {
            return self.entries.pop_front();
        }
        let at = self
            .entries
            .iter()
            .position(|i| i.pid == pid && matches(i))?;
        self.entries.remove(at)
    }

    /// The delivery under `pid` that `matches` accepts, oldest first.
    pub fn find_mut(
        &mut self,
        pid: PacketId,
        matches: impl Fn(&Inflight) -> bool,
    ) -> Option<&mut Inflight> {
        self.entries.iter_mut().find(|i| i.pid == pid && matches(i))
    }

    /// Every delivery, oldest first (to send them again after a reconnect).
    pub fn iter_mut(&mut self) -> impl Iterator<Item = &mut Inflight> {
        self.entries.iter_mut()
    }

    /// Drop the deliveries sent `max_age_ms` or longer before `now_ms`, handing each to
    /// `dropped`; returns how many went.
    pub fn drop_older_than(
        &mut self,
        now_ms: u64,
        max_age_ms: u64,
        mut dropped: impl FnMut(&Inflight),
    ) -> usize {
        let before = self.entries.len();
        self.entries.retain(|i| {
            let keep = now_ms.saturating_sub(i.sent_at_ms) < max_age_ms;
            if !keep {
                dropped(i);
            }
            keep
        });
        before - self.entries.len()
    }

    /// When the oldest delivery was sent (the earliest `sent_at_ms`, whatever the order).
    pub fn oldest_sent_at(&self) -> Option<u64> {
        self.entries.iter().map(|i| i.sent_at_ms).min()
    }
}

#[cfg(test)]
mod tests {
    use mqtt_codec::QoS;
    use proptest::prelude::*;

    use super::*;

    fn msg() -> Message {
        Message::new("t", &b""[..], QoS::AtLeastOnce, false)
    }

    #[test]
    fn ids_count_up_from_one_and_wrap_after_65535() {
        let mut w = InflightWindow::default();
        assert_eq!(w.push(None, msg(), 0).get(), 1);
        assert_eq!(w.push(None, msg(), 0).get(), 2);
        w.next_serial = ID_SPACE - 1;
        assert_eq!(w.push(None, msg(), 0).get(), u16::MAX);
        // 1 and 2 were issued a lap ago and are still in flight: skipped.
        assert_eq!(w.push(None, msg(), 0).get(), 3);
    }

    #[test]
    fn a_delivery_stuck_for_a_lap_keeps_its_id() {
        let mut w = InflightWindow::default();
        let stuck = w.push(None, msg(), 0);
        for _ in 0..200_000u32 {
            let pid = w.push(None, msg(), 0);
            assert_ne!(pid, stuck);
            assert!(w.take(pid, |_| true).is_some());
        }
        assert_eq!(w.len(), 1);
        assert!(w.take(stuck, |_| true).is_some());
    }

    #[test]
    fn take_tries_the_front_then_the_rest_and_respects_the_predicate() {
        let mut w = InflightWindow::default();
        let a = w.push(None, msg(), 0);
        let b = w.push(None, msg(), 0);
        let c = w.push(None, msg(), 0);
        assert!(w.take(b, |_| true).is_some());
        assert!(w.take(b, |_| true).is_none(), "already taken");
        assert!(w.take(a, |_| false).is_none(), "predicate refuses");
        assert!(w.take(a, |_| true).is_some());
        assert!(w.take(c, |_| true).is_some());
        assert!(w.is_empty());
    }

    #[test]
    fn drop_older_than_keeps_the_young() {
        let mut w = InflightWindow::default();
        w.push(Some(1), msg(), 0);
        w.push(Some(2), msg(), 500);
        let mut gone = Vec::new();
        assert_eq!(w.drop_older_than(1000, 1000, |i| gone.push(i.seq)), 1);
        assert_eq!(gone, [Some(1)]);
        assert_eq!(w.oldest_sent_at(), Some(500));
    }

    #[derive(Debug, Clone)]
    enum Op {
        Send,
        Ack(prop::sample::Index),
        /// As many deliveries sent and acknowledged at once as the cursor moves on.
        Skip(u64),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            4 => Just(Op::Send),
            3 => any::<prop::sample::Index>().prop_map(Op::Ack),
            1 => (0u64..(2 * ID_SPACE)).prop_map(Op::Skip),
        ]
    }

    proptest! {
        /// Whatever the order of acknowledgements and however far the cursor laps, no two
        /// deliveries in flight share an id.
        #[test]
        fn ids_in_flight_are_distinct(ops in prop::collection::vec(op(), 1..300)) {
            let mut w = InflightWindow::default();
            for op in ops {
                match op {
                    Op::Send => {
                        w.push(None, msg(), 0);
                    }
                    Op::Ack(pick) => {
                        let pid = w.entries.get(pick.index(w.len().max(1))).map(|i| i.pid);
                        if let Some(pid) = pid {
                            prop_assert!(w.take(pid, |_| true).is_some());
                        }
                    }
                    Op::Skip(n) => w.next_serial += n,
                }
                let mut ids: Vec<u16> = w.entries.iter().map(|i| i.pid.get()).collect();
                ids.sort_unstable();
                ids.dedup();
                prop_assert_eq!(ids.len(), w.len());
            }
        }
    }
}

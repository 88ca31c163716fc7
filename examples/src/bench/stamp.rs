//! The stamp at the front of every benchmark payload: which publisher sent it, its sequence
//! number on that publisher, and when it was sent (Unix microseconds, the same machine's clock on
//! both ends). Subscribers read it back to measure latency and to find lost, duplicated and
//! reordered messages.

/// Bytes the stamp takes at the front of a payload; payloads are at least this long.
pub const STAMP_LEN: usize = 24;

/// Marks a stamped payload ("MQB1").
const MAGIC: [u8; 4] = *b"MQB1";

/// One message's identity and send time.
///
/// ```
/// use iot_examples::bench::stamp::{Stamp, STAMP_LEN};
/// let stamp = Stamp { publisher: 3, sequence: 41, sent_us: 1_700_000_000_000_000 };
/// let payload = stamp.payload(64);
/// assert_eq!(payload.len(), 64);
/// assert_eq!(Stamp::read(&payload), Some(stamp));
/// assert_eq!(Stamp::read(&payload[..STAMP_LEN - 1]), None);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamp {
    /// The publisher's index in the run (0-based).
    pub publisher: u32,
    /// The message's sequence number on its publisher, from 0 without gaps.
    pub sequence: u64,
    /// When it was sent (or scheduled, at a fixed rate), Unix microseconds.
    pub sent_us: u64,
}

impl Stamp {
    /// Writes the stamp over the first [`STAMP_LEN`] bytes of `out`; `false` when `out` is shorter.
    pub fn write(&self, out: &mut [u8]) -> bool {
        let Some(head) = out.get_mut(..STAMP_LEN) else {
            return false;
        };
        let (magic, rest) = head.split_at_mut(4);
        magic.copy_from_slice(&MAGIC);
        let (publisher, rest) = rest.split_at_mut(4);
        publisher.copy_from_slice(&self.publisher.to_be_bytes());
        let (sequence, sent) = rest.split_at_mut(8);
        sequence.copy_from_slice(&self.sequence.to_be_bytes());
        sent.copy_from_slice(&self.sent_us.to_be_bytes());
        true
    }

    /// A payload of `len` bytes (at least [`STAMP_LEN`]): the stamp, then a filler pattern.
    pub fn payload(&self, len: usize) -> Vec<u8> {
        let mut payload: Vec<u8> = (0..len.max(STAMP_LEN))
            .map(|i| b'a' + (i % 26) as u8)
            .collect();
        self.write(&mut payload);
        payload
    }

    /// The stamp at the front of `payload`, or `None` when it carries none.
    pub fn read(payload: &[u8]) -> Option<Stamp> {
        let head: &[u8; STAMP_LEN] = payload.get(..STAMP_LEN)?.try_into().ok()?;
        let (magic, rest) = head.split_first_chunk::<4>()?;
        if *magic != MAGIC {
            return None;
        }
        let (publisher, rest) = rest.split_first_chunk::<4>()?;
        let (sequence, rest) = rest.split_first_chunk::<8>()?;
        let sent: &[u8; 8] = rest.try_into().ok()?;
        Some(Stamp {
            publisher: u32::from_be_bytes(*publisher),
            sequence: u64::from_be_bytes(*sequence),
            sent_us: u64::from_be_bytes(*sent),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn unstamped_payloads_are_not_read_as_stamps() {
        assert_eq!(Stamp::read(&[0u8; 64]), None);
        assert_eq!(Stamp::read(b""), None);
        let mut short = [0u8; 10];
        assert!(
            !Stamp {
                publisher: 0,
                sequence: 0,
                sent_us: 0
            }
            .write(&mut short)
        );
    }

    #[test]
    fn a_short_length_still_holds_the_stamp() {
        let stamp = Stamp {
            publisher: 1,
            sequence: 2,
            sent_us: 3,
        };
        assert_eq!(stamp.payload(0).len(), STAMP_LEN);
    }

    proptest! {
        #[test]
        fn every_stamp_reads_back(publisher: u32, sequence: u64, sent_us: u64, len in STAMP_LEN..2048usize) {
            let stamp = Stamp { publisher, sequence, sent_us };
            let payload = stamp.payload(len);
            prop_assert_eq!(payload.len(), len);
            prop_assert_eq!(Stamp::read(&payload), Some(stamp));
        }
    }
}

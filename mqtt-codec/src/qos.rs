//! Quality of service levels and packet identifiers.

use core::fmt;
use core::num::NonZeroU16;

/// An MQTT quality-of-service level.
///
/// ```
/// use mqtt_codec::QoS;
/// assert_eq!(QoS::from_u8(1), Some(QoS::AtLeastOnce));
/// assert_eq!(QoS::from_u8(3), None);
/// assert!(QoS::AtMostOnce < QoS::ExactlyOnce);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[repr(u8)]
pub enum QoS {
    /// QoS 0: fire and forget.
    AtMostOnce = 0,
    /// QoS 1: acknowledged with PUBACK, may be delivered more than once.
    AtLeastOnce = 1,
    /// QoS 2: four-way handshake, delivered exactly once.
    ExactlyOnce = 2,
}

impl QoS {
    /// The QoS for a wire value 0, 1 or 2; `None` for anything else.
    pub const fn from_u8(value: u8) -> Option<QoS> {
        match value {
            0 => Some(QoS::AtMostOnce),
            1 => Some(QoS::AtLeastOnce),
            2 => Some(QoS::ExactlyOnce),
            _ => None,
        }
    }

    /// The wire value, 0, 1 or 2.
    pub const fn as_u8(self) -> u8 {
        self as u8
    }
}

impl fmt::Display for QoS {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "QoS {}", self.as_u8())
    }
}

/// A packet identifier: a non-zero 16-bit number (MQTT 3.1.1 section 2.3.1).
///
/// ```
/// use mqtt_codec::PacketId;
/// assert_eq!(PacketId::new(7).map(PacketId::get), Some(7));
/// assert_eq!(PacketId::new(0), None);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PacketId(NonZeroU16);

impl PacketId {
    /// A packet identifier for a non-zero value; `None` for zero.
    pub const fn new(value: u16) -> Option<PacketId> {
        match NonZeroU16::new(value) {
            Some(id) => Some(PacketId(id)),
            None => None,
        }
    }

    /// The numeric value, never zero.
    pub const fn get(self) -> u16 {
        self.0.get()
    }

    /// The identifier after this one, wrapping from 65535 to 1.
    ///
    /// ```
    /// use mqtt_codec::PacketId;
    /// let last = PacketId::new(u16::MAX).unwrap();
    /// assert_eq!(last.next().get(), 1);
    /// ```
    pub const fn next(self) -> PacketId {
        match NonZeroU16::new(self.0.get().wrapping_add(1)) {
            Some(id) => PacketId(id),
            None => PacketId(NonZeroU16::MIN),
        }
    }
}

impl fmt::Display for PacketId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// The QoS of a PUBLISH together with its packet identifier, which exists exactly when QoS > 0.
///
/// ```
/// use mqtt_codec::{PacketId, QoS, QosPid};
/// let pid = PacketId::new(10).unwrap();
/// assert_eq!(QosPid::AtLeastOnce(pid).qos(), QoS::AtLeastOnce);
/// assert_eq!(QosPid::AtMostOnce.packet_id(), None);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum QosPid {
    /// QoS 0, no packet identifier.
    AtMostOnce,
    /// QoS 1 with its packet identifier.
    AtLeastOnce(PacketId),
    /// QoS 2 with its packet identifier.
    ExactlyOnce(PacketId),
}

impl QosPid {
    /// The QoS level.
    pub const fn qos(self) -> QoS {
        match self {
            QosPid::AtMostOnce => QoS::AtMostOnce,
            QosPid::AtLeastOnce(_) => QoS::AtLeastOnce,
            QosPid::ExactlyOnce(_) => QoS::ExactlyOnce,
        }
    }

    /// The packet identifier, present for QoS 1 and 2.
    pub const fn packet_id(self) -> Option<PacketId> {
        match self {
            QosPid::AtMostOnce => None,
            QosPid::AtLeastOnce(id) | QosPid::ExactlyOnce(id) => Some(id),
        }
    }

    /// Combine a QoS with a packet identifier; QoS 0 ignores the identifier.
    pub const fn from_parts(qos: QoS, packet_id: PacketId) -> QosPid {
        match qos {
            QoS::AtMostOnce => QosPid::AtMostOnce,
            QoS::AtLeastOnce => QosPid::AtLeastOnce(packet_id),
            QoS::ExactlyOnce => QosPid::ExactlyOnce(packet_id),
        }
    }
}

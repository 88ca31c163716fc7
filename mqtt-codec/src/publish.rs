//! PUBLISH: an application message, and the header-only encoding a broker uses to send one
//! shared payload to many subscribers.

use crate::encode::{Sink, SliceSink, str_len, write_remaining_length, write_str};
use crate::error::{DecodeError, EncodeError, Field};
use crate::header::remaining_length_len;
use crate::limits::{Limits, MAX_REMAINING_LENGTH};
use crate::packet_type::PacketType;
use crate::qos::{PacketId, QoS, QosPid};
use crate::reader::Reader;
use crate::topic::validate_scanned_topic_name;

/// A PUBLISH packet. `T` is the topic's text type and `B` the payload's binary type.
///
/// ```
/// use mqtt_codec::{decode, BorrowedPacket, Decoded, PacketId, Publish, QosPid};
/// let publish = Publish {
///     dup: false,
///     qos_pid: QosPid::AtLeastOnce(PacketId::new(1).unwrap()),
///     retain: false,
///     topic: "hello/world",
///     payload: b"hi".as_slice(),
/// };
/// let mut buf = [0u8; 32];
/// let n = BorrowedPacket::Publish(publish).encode_to_slice(&mut buf).unwrap();
/// let Decoded::Complete { packet: BorrowedPacket::Publish(back), .. } = decode(&buf[..n]).unwrap()
/// else { panic!("a PUBLISH") };
/// assert_eq!(back, publish);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Publish<T, B> {
    /// DUP: this may be a re-delivery of an earlier attempt (QoS 1 and 2 only).
    pub dup: bool,
    /// QoS and, for QoS 1 and 2, the packet identifier.
    pub qos_pid: QosPid,
    /// RETAIN: store as the topic's retained message (from a client), or this is a retained
    /// message sent on subscribe (from a server).
    pub retain: bool,
    /// Topic name; never holds wildcards.
    pub topic: T,
    /// Application message.
    pub payload: B,
}

impl<T, B> Publish<T, B> {
    /// The QoS level.
    pub fn qos(&self) -> QoS {
        self.qos_pid.qos()
    }

    /// The packet identifier, for QoS 1 and 2.
    pub fn packet_id(&self) -> Option<PacketId> {
        self.qos_pid.packet_id()
    }

    /// Convert the topic and payload types, e.g. from borrowed slices to `Bytes`.
    pub fn map<T2, B2>(
        self,
        text: impl FnOnce(T) -> T2,
        binary: impl FnOnce(B) -> B2,
    ) -> Publish<T2, B2> {
        Publish {
            dup: self.dup,
            qos_pid: self.qos_pid,
            retain: self.retain,
            topic: text(self.topic),
            payload: binary(self.payload),
        }
    }

    fn first_byte(&self) -> u8 {
        let mut byte = (PacketType::Publish as u8) << 4 | self.qos().as_u8() << 1;
        if self.dup {
            byte |= 0b1000;
        }
        if self.retain {
            byte |= 0b0001;
        }
        byte
    }
}

impl<T: AsRef<str>, B: AsRef<[u8]>> Publish<T, B> {
    /// A view of this packet with borrowed fields.
    pub fn as_borrowed(&self) -> Publish<&str, &[u8]> {
        Publish {
            dup: self.dup,
            qos_pid: self.qos_pid,
            retain: self.retain,
            topic: self.topic.as_ref(),
            payload: self.payload.as_ref(),
        }
    }

    /// Bytes of the variable header: topic and packet identifier.
    fn variable_header_len(&self) -> Result<usize, EncodeError> {
        let pid = if self.packet_id().is_some() { 2 } else { 0 };
        Ok(str_len(Field::TopicName, self.topic.as_ref())? + pid)
    }

    pub(crate) fn remaining_len(&self) -> Result<usize, EncodeError> {
        let len = self.variable_header_len()? + self.payload.as_ref().len();
        if len > MAX_REMAINING_LENGTH {
            return Err(EncodeError::PacketTooLarge { len });
        }
        Ok(len)
    }

    /// Bytes [`encode_header_to_slice`](Self::encode_header_to_slice) writes: everything before
    /// the payload.
    pub fn header_len(&self) -> Result<usize, EncodeError> {
        let remaining = self.remaining_len()?;
        Ok(1 + remaining_length_len(remaining) + self.variable_header_len()?)
    }

    /// Encode everything but the payload (fixed header, topic, packet identifier) into `out`, and
    /// return its length. Writing these bytes followed by the payload gives the whole packet, so a
    /// broker can send one shared payload after a small per-subscriber header in one vectored write.
    ///
    /// ```
    /// use mqtt_codec::{Publish, QosPid, BorrowedPacket};
    /// let publish = Publish {
    ///     dup: false, qos_pid: QosPid::AtMostOnce, retain: false,
    ///     topic: "t", payload: b"payload".as_slice(),
    /// };
    /// let mut header = [0u8; 8];
    /// let n = publish.encode_header_to_slice(&mut header).unwrap();
    /// let mut whole = [0u8; 16];
    /// let m = BorrowedPacket::Publish(publish).encode_to_slice(&mut whole).unwrap();
    /// assert_eq!([&header[..n], publish.payload].concat(), &whole[..m]);
    /// ```
    pub fn encode_header_to_slice(&self, out: &mut [u8]) -> Result<usize, EncodeError> {
        let needed = self.header_len()?;
        if out.len() < needed {
            return Err(EncodeError::BufferTooSmall {
                needed,
                available: out.len(),
            });
        }
        let mut sink = SliceSink::new(out);
        self.write_header(&mut sink)?;
        Ok(needed)
    }

    /// Encode everything but the payload into a `BufMut`; see
    /// [`encode_header_to_slice`](Self::encode_header_to_slice).
    #[cfg(feature = "bytes")]
    pub fn encode_header(&self, buf: &mut impl bytes::BufMut) -> Result<usize, EncodeError> {
        let needed = self.header_len()?;
        if buf.remaining_mut() < needed {
            return Err(EncodeError::BufferTooSmall {
                needed,
                available: buf.remaining_mut(),
            });
        }
        self.write_header(&mut crate::encode::BufSink(buf))?;
        Ok(needed)
    }

    fn write_header(&self, sink: &mut impl Sink) -> Result<(), EncodeError> {
        sink.put_u8(self.first_byte());
        write_remaining_length(sink, self.remaining_len()?);
        self.write_variable_header(sink);
        Ok(())
    }

    fn write_variable_header(&self, sink: &mut impl Sink) {
        write_str(sink, self.topic.as_ref());
        if let Some(pid) = self.packet_id() {
            sink.put_u16(pid.get());
        }
    }

    pub(crate) fn encode_first_byte(&self) -> u8 {
        self.first_byte()
    }

    pub(crate) fn write_body(&self, sink: &mut impl Sink) {
        self.write_variable_header(sink);
        sink.put_slice(self.payload.as_ref());
    }
}

impl<'a> Publish<&'a str, &'a [u8]> {
    #[inline(always)]
    pub(crate) fn decode(
        r: &mut Reader<'a>,
        flags: u8,
        limits: &Limits,
    ) -> Result<Self, DecodeError> {
        let dup = flags & 0b1000 != 0;
        let retain = flags & 0b0001 != 0;
        // The fixed header already refused QoS 3 and, where the profile does, QoS 2.
        let qos = QoS::from_u8((flags >> 1) & 0b11).ok_or(DecodeError::InvalidQoS {
            packet: PacketType::Publish,
        })?;
        let scanned = r.scanned_utf8(Field::TopicName)?;
        let topic = scanned.text;
        validate_scanned_topic_name(topic, scanned.wildcard, scanned.slashes, limits).map_err(
            |reason| DecodeError::InvalidTopicName {
                packet: PacketType::Publish,
                offset: scanned.offset,
                reason,
            },
        )?;
        let qos_pid = match qos {
            QoS::AtMostOnce => QosPid::AtMostOnce,
            QoS::AtLeastOnce | QoS::ExactlyOnce => QosPid::from_parts(qos, r.packet_id()?),
        };
        let payload = r.rest();
        if payload.len() > limits.max_payload_size {
            return Err(DecodeError::PayloadTooLarge {
                packet: PacketType::Publish,
                len: payload.len(),
                max: limits.max_payload_size,
            });
        }
        Ok(Publish {
            dup,
            qos_pid,
            retain,
            topic,
            payload,
        })
    }
}

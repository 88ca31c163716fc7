//! The packet enum over all fourteen control packets, and encoding of any packet.

use crate::ack::{PubAck, PubComp, PubRec, PubRel, UnsubAck};
use crate::connack::ConnAck;
use crate::connect::Connect;
use crate::encode::{Sink, SliceSink, write_remaining_length};
use crate::error::EncodeError;
use crate::header::remaining_length_len;
use crate::limits::MAX_REMAINING_LENGTH;
use crate::packet_type::PacketType;
use crate::publish::Publish;
use crate::suback::SubAck;
use crate::subscribe::Subscribe;
use crate::unsubscribe::Unsubscribe;

/// An MQTT 3.1.1 control packet. `T` is the type of text fields and `B` of binary fields:
/// [`BorrowedPacket`] borrows both from the input slice, [`SharedPacket`](crate::SharedPacket)
/// holds reference-counted slices of one frozen frame, and owned types (`String`, `Vec<u8>`) work
/// too. All of them encode the same way.
///
/// ```
/// use mqtt_codec::{BorrowedPacket, PacketType};
/// let ping = BorrowedPacket::PingReq;
/// let mut buf = [0u8; 2];
/// assert_eq!(ping.encode_to_slice(&mut buf), Ok(2));
/// assert_eq!(buf, [0xc0, 0x00]);
/// assert_eq!(ping.packet_type(), PacketType::PingReq);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Packet<T, B> {
    /// CONNECT.
    Connect(Connect<T, B>),
    /// CONNACK.
    ConnAck(ConnAck),
    /// PUBLISH.
    Publish(Publish<T, B>),
    /// PUBACK.
    PubAck(PubAck),
    /// PUBREC.
    PubRec(PubRec),
    /// PUBREL.
    PubRel(PubRel),
    /// PUBCOMP.
    PubComp(PubComp),
    /// SUBSCRIBE.
    Subscribe(Subscribe<B>),
    /// SUBACK.
    SubAck(SubAck<B>),
    /// UNSUBSCRIBE.
    Unsubscribe(Unsubscribe<B>),
    /// UNSUBACK.
    UnsubAck(UnsubAck),
    /// PINGREQ.
    PingReq,
    /// PINGRESP.
    PingResp,
    /// DISCONNECT.
    Disconnect,
}

/// A packet whose text and binary fields borrow from the decoded slice.
pub type BorrowedPacket<'a> = Packet<&'a str, &'a [u8]>;

impl<T, B> Packet<T, B> {
    /// The control packet type.
    pub fn packet_type(&self) -> PacketType {
        match self {
            Packet::Connect(_) => PacketType::Connect,
            Packet::ConnAck(_) => PacketType::ConnAck,
            Packet::Publish(_) => PacketType::Publish,
            Packet::PubAck(_) => PacketType::PubAck,
            Packet::PubRec(_) => PacketType::PubRec,
            Packet::PubRel(_) => PacketType::PubRel,
            Packet::PubComp(_) => PacketType::PubComp,
            Packet::Subscribe(_) => PacketType::Subscribe,
            Packet::SubAck(_) => PacketType::SubAck,
            Packet::Unsubscribe(_) => PacketType::Unsubscribe,
            Packet::UnsubAck(_) => PacketType::UnsubAck,
            Packet::PingReq => PacketType::PingReq,
            Packet::PingResp => PacketType::PingResp,
            Packet::Disconnect => PacketType::Disconnect,
        }
    }

    /// Convert the text and binary field types, e.g. borrowed slices into `Bytes` slices of the
    /// frame they came from.
    pub fn map<T2, B2>(
        self,
        text: impl FnMut(T) -> T2,
        mut binary: impl FnMut(B) -> B2,
    ) -> Packet<T2, B2> {
        match self {
            Packet::Connect(p) => Packet::Connect(p.map(text, binary)),
            Packet::ConnAck(p) => Packet::ConnAck(p),
            Packet::Publish(p) => Packet::Publish(p.map(text, binary)),
            Packet::PubAck(p) => Packet::PubAck(p),
            Packet::PubRec(p) => Packet::PubRec(p),
            Packet::PubRel(p) => Packet::PubRel(p),
            Packet::PubComp(p) => Packet::PubComp(p),
            Packet::Subscribe(p) => Packet::Subscribe(p.map(&mut binary)),
            Packet::SubAck(p) => Packet::SubAck(p.map(&mut binary)),
            Packet::Unsubscribe(p) => Packet::Unsubscribe(p.map(&mut binary)),
            Packet::UnsubAck(p) => Packet::UnsubAck(p),
            Packet::PingReq => Packet::PingReq,
            Packet::PingResp => Packet::PingResp,
            Packet::Disconnect => Packet::Disconnect,
        }
    }
}

impl<T: AsRef<str>, B: AsRef<[u8]>> Packet<T, B> {
    /// A view of this packet with borrowed fields, e.g. to compare packets of different types.
    pub fn as_borrowed(&self) -> BorrowedPacket<'_> {
        match self {
            Packet::Connect(p) => Packet::Connect(p.as_borrowed()),
            Packet::ConnAck(p) => Packet::ConnAck(*p),
            Packet::Publish(p) => Packet::Publish(p.as_borrowed()),
            Packet::PubAck(p) => Packet::PubAck(*p),
            Packet::PubRec(p) => Packet::PubRec(*p),
            Packet::PubRel(p) => Packet::PubRel(*p),
            Packet::PubComp(p) => Packet::PubComp(*p),
            Packet::Subscribe(p) => Packet::Subscribe(p.as_borrowed()),
            Packet::SubAck(p) => Packet::SubAck(p.as_borrowed()),
            Packet::Unsubscribe(p) => Packet::Unsubscribe(p.as_borrowed()),
            Packet::UnsubAck(p) => Packet::UnsubAck(*p),
            Packet::PingReq => Packet::PingReq,
            Packet::PingResp => Packet::PingResp,
            Packet::Disconnect => Packet::Disconnect,
        }
    }

    fn first_byte(&self) -> u8 {
        match self {
            Packet::Publish(p) => p.encode_first_byte(),
            other => {
                let ty = other.packet_type();
                (ty as u8) << 4 | ty.required_flags().unwrap_or(0)
            }
        }
    }

    fn remaining_len(&self) -> Result<usize, EncodeError> {
        let len = match self {
            Packet::Connect(p) => p.remaining_len()?,
            Packet::Publish(p) => p.remaining_len()?,
            Packet::Subscribe(p) => p.remaining_len(),
            Packet::SubAck(p) => p.remaining_len(),
            Packet::Unsubscribe(p) => p.remaining_len(),
            Packet::ConnAck(_)
            | Packet::PubAck(_)
            | Packet::PubRec(_)
            | Packet::PubRel(_)
            | Packet::PubComp(_)
            | Packet::UnsubAck(_) => 2,
            Packet::PingReq | Packet::PingResp | Packet::Disconnect => 0,
        };
        if len > MAX_REMAINING_LENGTH {
            return Err(EncodeError::PacketTooLarge { len });
        }
        Ok(len)
    }

    /// Bytes the encoded packet takes.
    pub fn encoded_len(&self) -> Result<usize, EncodeError> {
        let remaining = self.remaining_len()?;
        Ok(1 + remaining_length_len(remaining) + remaining)
    }

    /// Encode into `out` and return the number of bytes written. Needs no allocator.
    pub fn encode_to_slice(&self, out: &mut [u8]) -> Result<usize, EncodeError> {
        let remaining = self.remaining_len()?;
        let needed = 1 + remaining_length_len(remaining) + remaining;
        if out.len() < needed {
            return Err(EncodeError::BufferTooSmall {
                needed,
                available: out.len(),
            });
        }
        self.write(&mut SliceSink::new(out), remaining);
        Ok(needed)
    }

    /// Encode into a `BufMut` (a `BytesMut` or `Vec<u8>` grows as needed) and return the number of
    /// bytes written.
    ///
    /// ```
    /// use mqtt_codec::{BorrowedPacket, PacketId, PubAck};
    /// let mut out = Vec::new();
    /// let ack = BorrowedPacket::PubAck(PubAck::new(PacketId::new(258).unwrap()));
    /// assert_eq!(ack.encode(&mut out), Ok(4));
    /// assert_eq!(out, [0x40, 0x02, 0x01, 0x02]);
    /// ```
    #[cfg(feature = "bytes")]
    pub fn encode(&self, buf: &mut impl bytes::BufMut) -> Result<usize, EncodeError> {
        let remaining = self.remaining_len()?;
        let needed = 1 + remaining_length_len(remaining) + remaining;
        if buf.remaining_mut() < needed {
            return Err(EncodeError::BufferTooSmall {
                needed,
                available: buf.remaining_mut(),
            });
        }
        self.write(&mut crate::encode::BufSink(buf), remaining);
        Ok(needed)
    }

    fn write(&self, sink: &mut impl Sink, remaining: usize) {
        sink.put_u8(self.first_byte());
        write_remaining_length(sink, remaining);
        match self {
            Packet::Connect(p) => p.write_body(sink),
            Packet::ConnAck(p) => p.write_body(sink),
            Packet::Publish(p) => p.write_body(sink),
            Packet::PubAck(p) => p.write_body(sink),
            Packet::PubRec(p) => p.write_body(sink),
            Packet::PubRel(p) => p.write_body(sink),
            Packet::PubComp(p) => p.write_body(sink),
            Packet::Subscribe(p) => p.write_body(sink),
            Packet::SubAck(p) => p.write_body(sink),
            Packet::Unsubscribe(p) => p.write_body(sink),
            Packet::UnsubAck(p) => p.write_body(sink),
            Packet::PingReq | Packet::PingResp | Packet::Disconnect => {}
        }
    }
}

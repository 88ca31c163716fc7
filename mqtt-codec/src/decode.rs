//! Decoding from a borrowed slice: the one parser both decode faces use.

use crate::ack::{PubAck, PubComp, PubRec, PubRel, UnsubAck};
use crate::connack::ConnAck;
use crate::connect::Connect;
use crate::error::DecodeError;
use crate::header::FixedHeader;
use crate::limits::Limits;
use crate::packet::{BorrowedPacket, Packet};
use crate::packet_type::PacketType;
use crate::publish::Publish;
use crate::reader::Reader;
use crate::suback::SubAck;
use crate::subscribe::Subscribe;
use crate::unsubscribe::Unsubscribe;

/// The outcome of decoding from a buffer that may hold a partial packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Decoded<P> {
    /// A whole packet, which took the first `len` bytes of the buffer.
    Complete {
        /// The decoded packet (or header).
        packet: P,
        /// Bytes it occupied.
        len: usize,
    },
    /// The buffer ends inside the packet: at least `needed` more bytes must arrive. Once the fixed
    /// header is complete, `needed` is exact.
    Incomplete {
        /// Bytes still missing, at least.
        needed: usize,
    },
}

/// Decode one packet from the start of `buf` under the MQTT 3.1.1 limits.
///
/// Text fields are `&str` and binary fields `&[u8]` borrowed from `buf`; nothing is copied or
/// allocated. Bytes after the packet are left alone.
///
/// ```
/// use mqtt_codec::{decode, BorrowedPacket, Decoded};
/// let bytes = [0x30, 0x07, 0x00, 0x03, b'a', b'/', b'b', b'h', b'i', 0xc0];
/// match decode(&bytes).unwrap() {
///     Decoded::Complete { packet: BorrowedPacket::Publish(p), len } => {
///         assert_eq!((p.topic, p.payload, len), ("a/b", &b"hi"[..], 9));
///     }
///     other => panic!("{other:?}"),
/// }
/// assert_eq!(decode(&bytes[..4]).unwrap(), Decoded::Incomplete { needed: 5 });
/// ```
pub fn decode(buf: &[u8]) -> Result<Decoded<BorrowedPacket<'_>>, DecodeError> {
    decode_with(buf, &Limits::mqtt_3_1_1())
}

/// Decode one packet from the start of `buf` under `limits` (e.g. [`Limits::aws_iot`]).
pub fn decode_with<'a>(
    buf: &'a [u8],
    limits: &Limits,
) -> Result<Decoded<BorrowedPacket<'a>>, DecodeError> {
    let header = match FixedHeader::parse(buf, limits)? {
        Decoded::Complete { packet, .. } => packet,
        Decoded::Incomplete { needed } => return Ok(Decoded::Incomplete { needed }),
    };
    let len = header.frame_len();
    let Some(frame) = buf.get(..len) else {
        return Ok(Decoded::Incomplete {
            needed: len - buf.len(),
        });
    };
    let packet = decode_frame(frame, &header, limits)?;
    Ok(Decoded::Complete { packet, len })
}

/// Decode the body of a complete frame whose fixed header was parsed.
#[inline(always)]
pub(crate) fn decode_frame<'a>(
    frame: &'a [u8],
    header: &FixedHeader,
    limits: &Limits,
) -> Result<BorrowedPacket<'a>, DecodeError> {
    let body = frame.get(header.header_len..).unwrap_or_default();
    let mut r = Reader::new(body, header.header_len, header.packet_type);
    let packet = match header.packet_type {
        PacketType::Connect => Packet::Connect(Connect::decode(&mut r, limits)?),
        PacketType::ConnAck => Packet::ConnAck(ConnAck::decode(&mut r)?),
        PacketType::Publish => Packet::Publish(Publish::decode(&mut r, header.flags, limits)?),
        PacketType::PubAck => Packet::PubAck(PubAck::decode(&mut r)?),
        PacketType::PubRec => Packet::PubRec(PubRec::decode(&mut r)?),
        PacketType::PubRel => Packet::PubRel(PubRel::decode(&mut r)?),
        PacketType::PubComp => Packet::PubComp(PubComp::decode(&mut r)?),
        PacketType::Subscribe => Packet::Subscribe(Subscribe::decode(&mut r, limits)?),
        PacketType::SubAck => Packet::SubAck(SubAck::decode(&mut r)?),
        PacketType::Unsubscribe => Packet::Unsubscribe(Unsubscribe::decode(&mut r, limits)?),
        PacketType::UnsubAck => Packet::UnsubAck(UnsubAck::decode(&mut r)?),
        PacketType::PingReq => Packet::PingReq,
        PacketType::PingResp => Packet::PingResp,
        PacketType::Disconnect => Packet::Disconnect,
    };
    debug_assert_eq!(r.packet(), header.packet_type);
    r.finish()?;
    Ok(packet)
}

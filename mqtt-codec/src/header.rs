//! The fixed header: packet type, flags and the variable-length remaining length.

use crate::decode::Decoded;
use crate::error::DecodeError;
use crate::limits::{Limits, MAX_REMAINING_LENGTH};
use crate::packet_type::PacketType;

/// A parsed fixed header.
///
/// ```
/// use mqtt_codec::{FixedHeader, Decoded, Limits, PacketType};
/// let Decoded::Complete { packet: header, len } =
///     FixedHeader::parse(&[0x30, 0x80, 0x01], &Limits::mqtt_3_1_1()).unwrap()
/// else { panic!("complete") };
/// assert_eq!(header.packet_type, PacketType::Publish);
/// assert_eq!(header.remaining_len, 128);
/// assert_eq!((len, header.frame_len()), (3, 131));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FixedHeader {
    /// The control packet type.
    pub packet_type: PacketType,
    /// The low nibble of the first byte.
    pub flags: u8,
    /// Bytes in the fixed header (2 to 5).
    pub header_len: usize,
    /// Bytes following the fixed header.
    pub remaining_len: usize,
}

impl FixedHeader {
    /// Parse and check a fixed header at the start of `buf`.
    ///
    /// Everything knowable from the fixed header alone is checked here, so a bad packet is refused
    /// before its body is buffered: the packet type, its flag bits (QoS 3, and QoS 2 where the
    /// profile refuses it), the length encoding, the remaining length of fixed-size packets, and the
    /// profile's packet-size maximum. `Incomplete` means the header itself is not all there yet.
    #[inline(always)]
    pub fn parse(buf: &[u8], limits: &Limits) -> Result<Decoded<FixedHeader>, DecodeError> {
        let Some(&first) = buf.first() else {
            return Ok(Decoded::Incomplete { needed: 2 });
        };
        let packet_type = check_type_and_flags(first, limits)?;
        let flags = first & 0x0f;

        let mut remaining_len: usize = 0;
        let mut shift = 0u32;
        let mut header_len = 1usize;
        loop {
            let Some(&byte) = buf.get(header_len) else {
                return Ok(Decoded::Incomplete { needed: 1 });
            };
            header_len += 1;
            remaining_len |= usize::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                break;
            }
            if header_len == 5 {
                return Err(DecodeError::RemainingLengthTooLong);
            }
            shift += 7;
        }
        debug_assert!(remaining_len <= MAX_REMAINING_LENGTH);

        if let Some(expected) = packet_type.fixed_remaining_length() {
            if remaining_len != expected {
                return Err(DecodeError::InvalidRemainingLength {
                    packet: packet_type,
                    len: remaining_len,
                    expected,
                });
            }
        }
        let size = header_len + remaining_len;
        if size > limits.max_packet_size {
            return Err(DecodeError::PacketTooLarge {
                packet: packet_type,
                size,
                max: limits.max_packet_size,
            });
        }
        Ok(Decoded::Complete {
            packet: FixedHeader {
                packet_type,
                flags,
                header_len,
                remaining_len,
            },
            len: header_len,
        })
    }

    /// Bytes in the whole packet: fixed header plus remaining length.
    pub const fn frame_len(&self) -> usize {
        self.header_len + self.remaining_len
    }
}

/// Check the first byte: a known packet type with the flag bits MQTT 3.1.1 requires for it.
#[inline]
fn check_type_and_flags(first: u8, limits: &Limits) -> Result<PacketType, DecodeError> {
    let nibble = first >> 4;
    let flags = first & 0x0f;
    let packet_type =
        PacketType::from_nibble(nibble).ok_or(DecodeError::ReservedPacketType(nibble))?;
    match packet_type.required_flags() {
        Some(required) if flags != required => Err(DecodeError::InvalidFlags {
            packet: packet_type,
            flags,
        }),
        Some(_) => Ok(packet_type),
        None => {
            // PUBLISH: DUP (bit 3), QoS (bits 2-1), RETAIN (bit 0).
            let qos = (flags >> 1) & 0b11;
            let dup = flags & 0b1000 != 0;
            match qos {
                3 => Err(DecodeError::InvalidQoS {
                    packet: packet_type,
                }),
                2 if !limits.qos2 => Err(DecodeError::QoS2NotSupported {
                    packet: packet_type,
                }),
                // MQTT-3.3.1-2: DUP must be 0 for QoS 0 messages.
                0 if dup => Err(DecodeError::InvalidFlags {
                    packet: packet_type,
                    flags,
                }),
                _ => Ok(packet_type),
            }
        }
    }
}

/// Bytes the variable-length encoding of `len` takes (1 to 4).
pub(crate) const fn remaining_length_len(len: usize) -> usize {
    if len < 128 {
        1
    } else if len < 16_384 {
        2
    } else if len < 2_097_152 {
        3
    } else {
        4
    }
}

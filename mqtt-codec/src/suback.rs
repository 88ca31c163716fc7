//! SUBACK and its list of return codes, one per requested filter.

use crate::encode::{Sink, SliceSink};
use crate::error::{DecodeError, EncodeError};
use crate::packet_type::PacketType;
use crate::qos::{PacketId, QoS};
use crate::reader::Reader;

/// The answer to one filter of a SUBSCRIBE.
///
/// ```
/// use mqtt_codec::{QoS, SubscribeReturnCode};
/// assert_eq!(SubscribeReturnCode::from_u8(0x80), Some(SubscribeReturnCode::Failure));
/// assert_eq!(SubscribeReturnCode::Success(QoS::AtLeastOnce).as_u8(), 1);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SubscribeReturnCode {
    /// Subscribed; messages are delivered at most at this QoS.
    Success(QoS),
    /// 0x80: the subscription was refused.
    Failure,
}

impl SubscribeReturnCode {
    /// The code for a wire value 0, 1, 2 or 0x80.
    pub const fn from_u8(value: u8) -> Option<SubscribeReturnCode> {
        match value {
            0x80 => Some(SubscribeReturnCode::Failure),
            _ => match QoS::from_u8(value) {
                Some(qos) => Some(SubscribeReturnCode::Success(qos)),
                None => None,
            },
        }
    }

    /// The wire value.
    pub const fn as_u8(self) -> u8 {
        match self {
            SubscribeReturnCode::Success(qos) => qos.as_u8(),
            SubscribeReturnCode::Failure => 0x80,
        }
    }
}

/// A SUBACK packet.
///
/// ```
/// use mqtt_codec::{decode, BorrowedPacket, Decoded, QoS, SubscribeReturnCode};
/// let bytes = [0x90, 0x04, 0x00, 0x01, 0x01, 0x80];
/// let Decoded::Complete { packet: BorrowedPacket::SubAck(ack), .. } = decode(&bytes).unwrap()
/// else { panic!("a SUBACK") };
/// assert_eq!(
///     ack.return_codes.iter().collect::<Vec<_>>(),
///     [SubscribeReturnCode::Success(QoS::AtLeastOnce), SubscribeReturnCode::Failure]
/// );
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SubAck<B> {
    /// The SUBSCRIBE's packet identifier.
    pub packet_id: PacketId,
    /// One code per filter, in the SUBSCRIBE's order.
    pub return_codes: ReturnCodes<B>,
}

impl<B> SubAck<B> {
    /// Convert the binary type of the code list.
    pub fn map<B2>(self, binary: impl FnOnce(B) -> B2) -> SubAck<B2> {
        SubAck {
            packet_id: self.packet_id,
            return_codes: ReturnCodes {
                wire: binary(self.return_codes.wire),
            },
        }
    }
}

impl<B: AsRef<[u8]>> SubAck<B> {
    /// A view of this packet with borrowed fields.
    pub fn as_borrowed(&self) -> SubAck<&[u8]> {
        SubAck {
            packet_id: self.packet_id,
            return_codes: ReturnCodes {
                wire: self.return_codes.wire.as_ref(),
            },
        }
    }

    pub(crate) fn remaining_len(&self) -> usize {
        2 + self.return_codes.wire.as_ref().len()
    }

    pub(crate) fn write_body(&self, sink: &mut impl Sink) {
        sink.put_u16(self.packet_id.get());
        sink.put_slice(self.return_codes.wire.as_ref());
    }
}

impl<'a> SubAck<&'a [u8]> {
    pub(crate) fn decode(r: &mut Reader<'a>) -> Result<Self, DecodeError> {
        let packet_id = r.packet_id()?;
        let offset = r.offset();
        let return_codes = ReturnCodes::validate(r.rest(), offset)?;
        Ok(SubAck {
            packet_id,
            return_codes,
        })
    }
}

/// A SUBACK's return codes, held as validated wire bytes (each 0, 1, 2 or 0x80).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ReturnCodes<B> {
    wire: B,
}

impl<B: AsRef<[u8]>> ReturnCodes<B> {
    /// Check wire bytes: at least one, each 0, 1, 2 or 0x80.
    ///
    /// ```
    /// use mqtt_codec::ReturnCodes;
    /// assert!(ReturnCodes::new([0u8, 0x80]).is_ok());
    /// assert!(ReturnCodes::new([3u8]).is_err());
    /// ```
    pub fn new(wire: B) -> Result<Self, DecodeError> {
        ReturnCodes::validate(wire.as_ref(), 0)?;
        Ok(ReturnCodes { wire })
    }

    /// Number of codes.
    pub fn len(&self) -> usize {
        self.wire.as_ref().len()
    }

    /// Always false: a SUBACK carries at least one code.
    pub fn is_empty(&self) -> bool {
        self.wire.as_ref().is_empty()
    }

    /// Iterate over the codes.
    pub fn iter(&self) -> impl Iterator<Item = SubscribeReturnCode> + '_ {
        self.wire
            .as_ref()
            .iter()
            .filter_map(|&b| SubscribeReturnCode::from_u8(b))
    }
}

impl<'a> ReturnCodes<&'a [u8]> {
    fn validate(wire: &'a [u8], offset: usize) -> Result<Self, DecodeError> {
        if wire.is_empty() {
            return Err(DecodeError::NoReturnCodes);
        }
        for (i, &code) in wire.iter().enumerate() {
            if SubscribeReturnCode::from_u8(code).is_none() {
                return Err(DecodeError::InvalidSubAckReturnCode {
                    offset: offset + i,
                    code,
                });
            }
        }
        Ok(ReturnCodes { wire })
    }

    /// Write codes into `out` and return them, for building a SUBACK without an allocator.
    ///
    /// ```
    /// use mqtt_codec::{ReturnCodes, SubscribeReturnCode};
    /// let mut buf = [0u8; 4];
    /// let codes = ReturnCodes::write_codes(&[SubscribeReturnCode::Failure], &mut buf).unwrap();
    /// assert_eq!(codes.len(), 1);
    /// ```
    pub fn write_codes(
        codes: &[SubscribeReturnCode],
        out: &'a mut [u8],
    ) -> Result<Self, EncodeError> {
        if codes.is_empty() {
            return Err(EncodeError::Empty {
                packet: PacketType::SubAck,
            });
        }
        if out.len() < codes.len() {
            return Err(EncodeError::BufferTooSmall {
                needed: codes.len(),
                available: out.len(),
            });
        }
        let mut sink = SliceSink::new(out);
        for code in codes {
            sink.put_u8(code.as_u8());
        }
        let out: &'a [u8] = out;
        Ok(ReturnCodes {
            wire: out.get(..codes.len()).unwrap_or_default(),
        })
    }
}

#[cfg(feature = "bytes")]
impl ReturnCodes<bytes::Bytes> {
    /// Build a code list.
    ///
    /// ```
    /// use mqtt_codec::{QoS, ReturnCodes, SubscribeReturnCode};
    /// let codes = ReturnCodes::from_codes(&[SubscribeReturnCode::Success(QoS::AtMostOnce)]).unwrap();
    /// assert_eq!(codes.len(), 1);
    /// ```
    pub fn from_codes(codes: &[SubscribeReturnCode]) -> Result<Self, EncodeError> {
        if codes.is_empty() {
            return Err(EncodeError::Empty {
                packet: PacketType::SubAck,
            });
        }
        let wire: bytes::Bytes = codes.iter().map(|c| c.as_u8()).collect();
        Ok(ReturnCodes { wire })
    }
}

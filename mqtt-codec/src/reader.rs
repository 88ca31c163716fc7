//! A bounded reader over exactly one packet body, built on `nom`'s complete-input primitives.
//!
//! The reader holds the remaining length's bytes and nothing more: a field that runs past them is
//! [`DecodeError::Truncated`] (never "need more bytes", since the whole frame is already there), and
//! [`Reader::finish`] turns any byte left over into [`DecodeError::TrailingBytes`].

use nom::IResult;
use nom::Parser;
use nom::bytes::complete::take;
use nom::number::complete::{be_u8, be_u16};

use crate::error::{DecodeError, Field};
use crate::packet_type::PacketType;
use crate::qos::PacketId;

/// nom's unit error: the reader builds its own, more precise, error from the position.
type NomError = ();

/// Reads the fields of one packet body.
#[derive(Debug)]
pub(crate) struct Reader<'a> {
    input: &'a [u8],
    /// Offset of `input`'s first byte from the start of the packet.
    offset: usize,
    packet: PacketType,
}

impl<'a> Reader<'a> {
    /// A reader over `body`, which starts `header_len` bytes into the packet.
    pub(crate) fn new(body: &'a [u8], header_len: usize, packet: PacketType) -> Reader<'a> {
        Reader {
            input: body,
            offset: header_len,
            packet,
        }
    }

    /// The packet type being read.
    pub(crate) fn packet(&self) -> PacketType {
        self.packet
    }

    /// Offset of the next byte from the start of the packet.
    pub(crate) fn offset(&self) -> usize {
        self.offset
    }

    /// Whether every byte has been read.
    pub(crate) fn is_empty(&self) -> bool {
        self.input.is_empty()
    }

    fn advance<O>(
        &mut self,
        result: IResult<&'a [u8], O, NomError>,
        field: Field,
        needed: usize,
    ) -> Result<O, DecodeError> {
        match result {
            Ok((rest, value)) => {
                self.offset += self.input.len() - rest.len();
                self.input = rest;
                Ok(value)
            }
            Err(_) => Err(self.truncated(field, needed)),
        }
    }

    fn truncated(&self, field: Field, needed: usize) -> DecodeError {
        DecodeError::Truncated {
            packet: self.packet,
            field,
            offset: self.offset,
            needed,
            available: self.input.len(),
        }
    }

    /// One byte.
    pub(crate) fn u8(&mut self, field: Field) -> Result<u8, DecodeError> {
        let result = be_u8::<_, NomError>.parse(self.input);
        self.advance(result, field, 1)
    }

    /// A big-endian two-byte integer.
    pub(crate) fn u16(&mut self, field: Field) -> Result<u16, DecodeError> {
        let result = be_u16::<_, NomError>.parse(self.input);
        self.advance(result, field, 2)
    }

    /// A non-zero packet identifier.
    pub(crate) fn packet_id(&mut self) -> Result<PacketId, DecodeError> {
        let value = self.u16(Field::PacketId)?;
        PacketId::new(value).ok_or(DecodeError::ZeroPacketId {
            packet: self.packet,
        })
    }

    /// Binary data: a two-byte length, then that many bytes, all within the frame.
    pub(crate) fn binary(&mut self, field: Field) -> Result<&'a [u8], DecodeError> {
        let start = (self.input, self.offset);
        let len = usize::from(self.u16(field)?);
        let result = take::<_, _, NomError>(len).parse(self.input);
        match result {
            Ok((rest, value)) => {
                self.offset += len;
                self.input = rest;
                Ok(value)
            }
            Err(_) => {
                let (input, offset) = start;
                Err(DecodeError::Truncated {
                    packet: self.packet,
                    field,
                    offset,
                    needed: 2 + len,
                    available: input.len(),
                })
            }
        }
    }

    /// A UTF-8 encoded string (MQTT 3.1.1 section 1.5.3): well-formed UTF-8 without U+0000.
    pub(crate) fn utf8(&mut self, field: Field) -> Result<&'a str, DecodeError> {
        let offset = self.offset;
        let bytes = self.binary(field)?;
        let text = core::str::from_utf8(bytes).map_err(|_| DecodeError::InvalidUtf8 {
            packet: self.packet,
            field,
            offset,
        })?;
        if bytes.contains(&0) {
            return Err(DecodeError::NullCharacter {
                packet: self.packet,
                field,
                offset,
            });
        }
        Ok(text)
    }

    /// Everything not yet read (a PUBLISH payload, a SUBSCRIBE filter list).
    pub(crate) fn rest(&mut self) -> &'a [u8] {
        let rest = self.input;
        self.offset += rest.len();
        self.input = &[];
        rest
    }

    /// Require that the whole frame was read.
    pub(crate) fn finish(self) -> Result<(), DecodeError> {
        if self.input.is_empty() {
            Ok(())
        } else {
            Err(DecodeError::TrailingBytes {
                packet: self.packet,
                offset: self.offset,
                count: self.input.len(),
            })
        }
    }
}

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

    #[inline]
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
    #[inline]
    pub(crate) fn u16(&mut self, field: Field) -> Result<u16, DecodeError> {
        let result = be_u16::<_, NomError>.parse(self.input);
        self.advance(result, field, 2)
    }

    /// A non-zero packet identifier.
    #[inline]
    pub(crate) fn packet_id(&mut self) -> Result<PacketId, DecodeError> {
        let value = self.u16(Field::PacketId)?;
        PacketId::new(value).ok_or(DecodeError::ZeroPacketId {
            packet: self.packet,
        })
    }

    /// Binary data: a two-byte length, then that many bytes, all within the frame.
    #[inline(always)]
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
        Ok(self.scanned_utf8(field)?.text)
    }

    /// A UTF-8 string, checked in one pass that also notes what topic rules need: whether it holds
    /// a wildcard and how many `/` it has.
    #[inline(always)]
    pub(crate) fn scanned_utf8(&mut self, field: Field) -> Result<Scanned<'a>, DecodeError> {
        let offset = self.offset;
        let bytes = self.binary(field)?;
        let mut seen = 0u8;
        let mut slashes = 0usize;
        for &b in bytes {
            let class = byte_class(b);
            seen |= class;
            slashes += usize::from(class & SLASH);
        }
        let non_ascii = seen & NON_ASCII != 0;
        let null = seen & NULL != 0;
        let wildcard = seen & WILDCARD != 0;
        let text = if non_ascii {
            core::str::from_utf8(bytes).map_err(|_| DecodeError::InvalidUtf8 {
                packet: self.packet,
                field,
                offset,
            })?
        } else {
            ascii_str(bytes)
        };
        if null {
            return Err(DecodeError::NullCharacter {
                packet: self.packet,
                field,
                offset,
            });
        }
        Ok(Scanned {
            text,
            wildcard,
            slashes,
            offset,
        })
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

/// A string read by [`Reader::scanned_utf8`], with what the scan noted about it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Scanned<'a> {
    pub(crate) text: &'a str,
    /// Holds `+` or `#`.
    pub(crate) wildcard: bool,
    /// Number of `/`.
    pub(crate) slashes: usize,
    /// Offset of the string's length prefix.
    pub(crate) offset: usize,
}

const SLASH: u8 = 1;
const NULL: u8 = 2;
const WILDCARD: u8 = 4;
const NON_ASCII: u8 = 8;

/// What the one-pass string scan notes about each byte value.
// Built at compile time; the loop index never leaves 0..256.
#[allow(clippy::indexing_slicing)]
static BYTE_CLASSES: [u8; 256] = {
    let mut table = [0u8; 256];
    let mut b = 0usize;
    while b < 256 {
        table[b] = match b as u8 {
            b'/' => SLASH,
            0 => NULL,
            b'+' | b'#' => WILDCARD,
            0x80.. => NON_ASCII,
            _ => 0,
        };
        b += 1;
    }
    table
};

#[inline(always)]
fn byte_class(b: u8) -> u8 {
    // A u8 index into a 256-entry table is always in range.
    #[allow(clippy::indexing_slicing)]
    BYTE_CLASSES[usize::from(b)]
}

/// View bytes already checked to be ASCII as a `str`.
fn ascii_str(bytes: &[u8]) -> &str {
    debug_assert!(bytes.is_ascii());
    // SAFETY: the caller's scan found no byte >= 0x80, and every sequence of ASCII bytes is valid
    // UTF-8. This skips a second validation pass on the per-PUBLISH hot path.
    #[allow(unsafe_code)]
    unsafe {
        core::str::from_utf8_unchecked(bytes)
    }
}

//! Writing packets: a small sink trait over a caller's `&mut [u8]` or any `BufMut`, and the
//! MQTT field encodings.
//!
//! Every encoder computes the packet's length first (which is where every error is found), checks
//! that the output has room, and only then writes, so writing itself cannot fail.

use crate::error::{EncodeError, Field};

/// Where encoded bytes go.
pub(crate) trait Sink {
    fn put_u8(&mut self, value: u8);
    fn put_slice(&mut self, bytes: &[u8]);
    fn put_u16(&mut self, value: u16) {
        self.put_slice(&value.to_be_bytes());
    }
}

/// Writes into a caller's slice that was checked to be large enough.
pub(crate) struct SliceSink<'a> {
    out: &'a mut [u8],
    pos: usize,
}

impl<'a> SliceSink<'a> {
    pub(crate) fn new(out: &'a mut [u8]) -> SliceSink<'a> {
        SliceSink { out, pos: 0 }
    }
}

impl Sink for SliceSink<'_> {
    fn put_u8(&mut self, value: u8) {
        if let Some(slot) = self.out.get_mut(self.pos) {
            *slot = value;
            self.pos += 1;
        }
    }

    fn put_slice(&mut self, bytes: &[u8]) {
        let end = self.pos + bytes.len();
        if let Some(dst) = self.out.get_mut(self.pos..end) {
            dst.copy_from_slice(bytes);
            self.pos = end;
        }
    }
}

/// Writes into a `BufMut` that was checked to have room.
#[cfg(feature = "bytes")]
pub(crate) struct BufSink<'a, B: ?Sized>(pub(crate) &'a mut B);

#[cfg(feature = "bytes")]
impl<B: bytes::BufMut + ?Sized> Sink for BufSink<'_, B> {
    fn put_u8(&mut self, value: u8) {
        self.0.put_u8(value);
    }

    fn put_slice(&mut self, bytes: &[u8]) {
        self.0.put_slice(bytes);
    }
}

/// Encoded size of a UTF-8 string field: two-byte length plus the bytes.
pub(crate) fn str_len(field: Field, value: &str) -> Result<usize, EncodeError> {
    binary_len(field, value.as_bytes())
}

/// Encoded size of a binary field: two-byte length plus the bytes.
pub(crate) fn binary_len(field: Field, value: &[u8]) -> Result<usize, EncodeError> {
    if value.len() > usize::from(u16::MAX) {
        return Err(EncodeError::FieldTooLong {
            field,
            len: value.len(),
        });
    }
    Ok(2 + value.len())
}

/// Write a string field whose length was checked by [`str_len`].
pub(crate) fn write_str(sink: &mut impl Sink, value: &str) {
    write_binary(sink, value.as_bytes());
}

/// Write a binary field whose length was checked by [`binary_len`].
pub(crate) fn write_binary(sink: &mut impl Sink, value: &[u8]) {
    let len = u16::try_from(value.len()).unwrap_or(u16::MAX);
    sink.put_u16(len);
    sink.put_slice(value);
}

/// Write the variable-length remaining length (at most 268,435,455, checked by the caller).
pub(crate) fn write_remaining_length(sink: &mut impl Sink, mut len: usize) {
    loop {
        let mut byte = (len % 128) as u8;
        len /= 128;
        if len > 0 {
            byte |= 0x80;
        }
        sink.put_u8(byte);
        if len == 0 {
            break;
        }
    }
}

/// Split a length-prefixed UTF-8 string off the front of already-validated wire bytes.
pub(crate) fn split_str(bytes: &[u8]) -> Option<(&str, &[u8])> {
    let (len, rest) = bytes.split_first_chunk::<2>()?;
    let len = usize::from(u16::from_be_bytes(*len));
    let (text, rest) = rest.split_at_checked(len)?;
    Some((core::str::from_utf8(text).ok()?, rest))
}

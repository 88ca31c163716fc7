//! The shared decode face: packets cut from a `BytesMut` read buffer, whose text and binary
//! fields are reference-counted `Bytes` slices of one frozen frame.

use core::borrow::Borrow;
use core::fmt;
use core::ops::Deref;

use alloc::string::String;
use bytes::{Buf, Bytes, BytesMut};

use crate::decode::{Decoded, decode_frame};
use crate::error::DecodeError;
use crate::header::FixedHeader;
use crate::limits::Limits;
use crate::packet::Packet;
use crate::publish::Publish;

/// A packet whose fields share one frozen frame: cloning a topic or payload is a reference-count
/// increment, never a copy.
pub type SharedPacket = Packet<Utf8Bytes, Bytes>;

/// `Bytes` known to hold valid UTF-8: a topic, client id or user name that is a zero-copy slice
/// of a received frame.
///
/// ```
/// use mqtt_codec::Utf8Bytes;
/// let topic = Utf8Bytes::from_static("cars/1/gps");
/// assert_eq!(topic.as_str(), "cars/1/gps");
/// assert_eq!(&*topic, "cars/1/gps");
/// ```
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Utf8Bytes(Bytes);

impl Utf8Bytes {
    /// Wrap a static string without copying.
    pub const fn from_static(text: &'static str) -> Utf8Bytes {
        Utf8Bytes(Bytes::from_static(text.as_bytes()))
    }

    /// Wrap `Bytes` after checking it is UTF-8.
    pub fn from_utf8(bytes: Bytes) -> Result<Utf8Bytes, core::str::Utf8Error> {
        core::str::from_utf8(&bytes)?;
        Ok(Utf8Bytes(bytes))
    }

    /// The slice of `frame` that `text` occupies, without copying. `text` must lie inside `frame`
    /// (it is a field decoded from it); if it does not, it is copied instead.
    pub(crate) fn slice_ref(frame: &Bytes, text: &str) -> Utf8Bytes {
        if text.is_empty() {
            return Utf8Bytes::default();
        }
        let start = frame.as_ptr() as usize;
        let ptr = text.as_ptr() as usize;
        if ptr >= start && ptr + text.len() <= start + frame.len() {
            Utf8Bytes(frame.slice_ref(text.as_bytes()))
        } else {
            Utf8Bytes(Bytes::copy_from_slice(text.as_bytes()))
        }
    }

    /// The text.
    pub fn as_str(&self) -> &str {
        // SAFETY: every constructor checks or inherits UTF-8 validity: `from_static` and `From`
        // take `str`/`String`, `from_utf8` checks, and `slice_ref` slices a `&str` it was given
        // (or copies it). The bytes are immutable.
        #[allow(unsafe_code)]
        unsafe {
            core::str::from_utf8_unchecked(&self.0)
        }
    }

    /// The underlying bytes.
    pub fn as_bytes(&self) -> &Bytes {
        &self.0
    }

    /// Give back the underlying bytes.
    pub fn into_bytes(self) -> Bytes {
        self.0
    }
}

impl Deref for Utf8Bytes {
    type Target = str;

    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl AsRef<str> for Utf8Bytes {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

impl Borrow<str> for Utf8Bytes {
    fn borrow(&self) -> &str {
        self.as_str()
    }
}

impl fmt::Debug for Utf8Bytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl fmt::Display for Utf8Bytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl From<&str> for Utf8Bytes {
    /// Copies the text.
    fn from(text: &str) -> Utf8Bytes {
        Utf8Bytes(Bytes::copy_from_slice(text.as_bytes()))
    }
}

impl From<String> for Utf8Bytes {
    fn from(text: String) -> Utf8Bytes {
        Utf8Bytes(Bytes::from(text))
    }
}

impl PartialEq<str> for Utf8Bytes {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for Utf8Bytes {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

/// Decode one packet from the front of a read buffer under `limits`.
///
/// Returns `Ok(None)` while the frame is incomplete, after reserving room in `buf` for the bytes
/// the frame still needs (so the next socket read can fill it). A packet over
/// `limits.max_packet_size` is refused as soon as its fixed header is in, before it is buffered.
/// A complete frame is split off the buffer and frozen once; the packet's topic, payload and other
/// fields are `Bytes` slices of it, never copies.
///
/// ```
/// use bytes::BytesMut;
/// use mqtt_codec::{decode_buf, Limits, SharedPacket};
/// let mut buf = BytesMut::from(&[0x30, 0x07, 0x00, 0x03, b'a', b'/', b'b'][..]);
/// assert_eq!(decode_buf(&mut buf, &Limits::aws_iot()).unwrap(), None);
/// buf.extend_from_slice(b"hi");
/// let Some(SharedPacket::Publish(publish)) = decode_buf(&mut buf, &Limits::aws_iot()).unwrap()
/// else { panic!("a PUBLISH") };
/// assert_eq!((publish.topic.as_str(), &publish.payload[..]), ("a/b", &b"hi"[..]));
/// assert!(buf.is_empty());
/// ```
pub fn decode_buf(
    buf: &mut BytesMut,
    limits: &Limits,
) -> Result<Option<SharedPacket>, DecodeError> {
    let header = match FixedHeader::parse(buf, limits)? {
        Decoded::Complete { packet, .. } => packet,
        Decoded::Incomplete { needed } => {
            buf.reserve(needed);
            return Ok(None);
        }
    };
    let len = header.frame_len();
    if buf.len() < len {
        buf.reserve(len - buf.len());
        return Ok(None);
    }
    let frame = buf.split_to(len).freeze();
    let packet = decode_frame(&frame, &header, limits)?;
    Ok(Some(match packet {
        // The payload is the tail of the frame: hand the frame itself over as the payload rather
        // than slicing it and dropping the original (one reference-count update per PUBLISH
        // instead of three).
        Packet::Publish(p) => {
            let topic = Utf8Bytes::slice_ref(&frame, p.topic);
            let header_len = frame.len() - p.payload.len();
            let (dup, qos_pid, retain) = (p.dup, p.qos_pid, p.retain);
            let mut payload = frame;
            payload.advance(header_len);
            Packet::Publish(Publish {
                dup,
                qos_pid,
                retain,
                topic,
                payload,
            })
        }
        other => other.map(
            |text| Utf8Bytes::slice_ref(&frame, text),
            |binary| slice_bytes(&frame, binary),
        ),
    }))
}

/// The slice of `frame` that `part` occupies, without copying.
fn slice_bytes(frame: &Bytes, part: &[u8]) -> Bytes {
    if part.is_empty() {
        return Bytes::new();
    }
    frame.slice_ref(part)
}

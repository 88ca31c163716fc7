//! UNSUBSCRIBE and its topic-filter list, kept as the frame's bytes and iterated lazily.

use crate::encode::{Sink, SliceSink, str_len, write_str};
use crate::error::{DecodeError, EncodeError, Field};
use crate::limits::Limits;
use crate::packet_type::PacketType;
use crate::qos::PacketId;
use crate::reader::Reader;
use crate::topic::validate_topic_filter;

/// An UNSUBSCRIBE packet.
///
/// ```
/// use mqtt_codec::{decode, BorrowedPacket, Decoded};
/// let bytes = [0xa2, 0x07, 0x00, 0x05, 0x00, 0x03, b'a', b'/', b'+'];
/// let Decoded::Complete { packet: BorrowedPacket::Unsubscribe(unsub), .. } = decode(&bytes).unwrap()
/// else { panic!("an UNSUBSCRIBE") };
/// assert_eq!(unsub.filters.into_iter().collect::<Vec<_>>(), ["a/+"]);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Unsubscribe<B> {
    /// Packet identifier, echoed in the UNSUBACK.
    pub packet_id: PacketId,
    /// The filters to remove.
    pub filters: UnsubscribeFilters<B>,
}

impl<B> Unsubscribe<B> {
    /// Convert the binary type of the filter list.
    pub fn map<B2>(self, binary: impl FnOnce(B) -> B2) -> Unsubscribe<B2> {
        Unsubscribe {
            packet_id: self.packet_id,
            filters: UnsubscribeFilters {
                wire: binary(self.filters.wire),
                count: self.filters.count,
            },
        }
    }
}

impl<B: AsRef<[u8]>> Unsubscribe<B> {
    /// A view of this packet with borrowed fields.
    pub fn as_borrowed(&self) -> Unsubscribe<&[u8]> {
        Unsubscribe {
            packet_id: self.packet_id,
            filters: UnsubscribeFilters {
                wire: self.filters.wire.as_ref(),
                count: self.filters.count,
            },
        }
    }

    pub(crate) fn remaining_len(&self) -> usize {
        2 + self.filters.wire.as_ref().len()
    }

    pub(crate) fn write_body(&self, sink: &mut impl Sink) {
        sink.put_u16(self.packet_id.get());
        sink.put_slice(self.filters.wire.as_ref());
    }
}

impl<'a> Unsubscribe<&'a [u8]> {
    pub(crate) fn decode(r: &mut Reader<'a>, limits: &Limits) -> Result<Self, DecodeError> {
        let packet_id = r.packet_id()?;
        let offset = r.offset();
        let wire = r.rest();
        let mut list = Reader::new(wire, offset, PacketType::Unsubscribe);
        let mut count = 0usize;
        while !list.is_empty() {
            let filter_offset = list.offset();
            let filter = list.utf8(Field::TopicFilter)?;
            validate_topic_filter(filter, limits).map_err(|reason| {
                DecodeError::InvalidTopicFilter {
                    packet: PacketType::Unsubscribe,
                    offset: filter_offset,
                    reason,
                }
            })?;
            count += 1;
        }
        if count == 0 {
            return Err(DecodeError::NoTopicFilters {
                packet: PacketType::Unsubscribe,
            });
        }
        Ok(Unsubscribe {
            packet_id,
            filters: UnsubscribeFilters { wire, count },
        })
    }
}

/// The topic filters of an UNSUBSCRIBE, held as validated wire bytes and decoded lazily.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct UnsubscribeFilters<B> {
    wire: B,
    count: usize,
}

impl<B: AsRef<[u8]>> UnsubscribeFilters<B> {
    /// Number of filters; at least one.
    pub fn len(&self) -> usize {
        self.count
    }

    /// Always false: an UNSUBSCRIBE carries at least one filter.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Iterate over the filters.
    pub fn iter(&self) -> UnsubscribeFilterIter<'_> {
        UnsubscribeFilterIter {
            rest: self.wire.as_ref(),
        }
    }
}

impl<'a> UnsubscribeFilters<&'a [u8]> {
    /// Write a filter list into `out` and return it, for building an UNSUBSCRIBE without an
    /// allocator.
    ///
    /// ```
    /// use mqtt_codec::UnsubscribeFilters;
    /// let mut buf = [0u8; 16];
    /// let filters = UnsubscribeFilters::write_list(&["a/#", "b"], &mut buf).unwrap();
    /// assert_eq!(filters.iter().collect::<Vec<_>>(), ["a/#", "b"]);
    /// ```
    pub fn write_list<S: AsRef<str>>(list: &[S], out: &'a mut [u8]) -> Result<Self, EncodeError> {
        let needed = list_len(list)?;
        if out.len() < needed {
            return Err(EncodeError::BufferTooSmall {
                needed,
                available: out.len(),
            });
        }
        write_list(list, &mut SliceSink::new(out));
        let out: &'a [u8] = out;
        Ok(UnsubscribeFilters {
            wire: out.get(..needed).unwrap_or_default(),
            count: list.len(),
        })
    }
}

#[cfg(feature = "bytes")]
impl UnsubscribeFilters<bytes::Bytes> {
    /// Build a filter list. Each filter must be a valid MQTT 3.1.1 filter.
    ///
    /// ```
    /// use mqtt_codec::UnsubscribeFilters;
    /// let filters = UnsubscribeFilters::from_list(&["a/#"]).unwrap();
    /// assert_eq!(filters.len(), 1);
    /// ```
    pub fn from_list<S: AsRef<str>>(list: &[S]) -> Result<Self, EncodeError> {
        let needed = list_len(list)?;
        let mut buf = bytes::BytesMut::with_capacity(needed);
        write_list(list, &mut crate::encode::BufSink(&mut buf));
        Ok(UnsubscribeFilters {
            wire: buf.freeze(),
            count: list.len(),
        })
    }

    /// Iterate over the filters as zero-copy slices of the frame.
    pub fn iter_shared(&self) -> impl Iterator<Item = crate::Utf8Bytes> + '_ {
        self.iter()
            .map(|filter| crate::Utf8Bytes::slice_ref(&self.wire, filter))
    }
}

fn list_len<S: AsRef<str>>(list: &[S]) -> Result<usize, EncodeError> {
    if list.is_empty() {
        return Err(EncodeError::Empty {
            packet: PacketType::Unsubscribe,
        });
    }
    let mut len = 0usize;
    for filter in list {
        let filter = filter.as_ref();
        validate_topic_filter(filter, &Limits::mqtt_3_1_1())
            .map_err(|reason| EncodeError::InvalidTopicFilter { reason })?;
        len += str_len(Field::TopicFilter, filter)?;
    }
    Ok(len)
}

fn write_list<S: AsRef<str>>(list: &[S], sink: &mut impl Sink) {
    for filter in list {
        write_str(sink, filter.as_ref());
    }
}

impl<'a> IntoIterator for UnsubscribeFilters<&'a [u8]> {
    type Item = &'a str;
    type IntoIter = UnsubscribeFilterIter<'a>;

    fn into_iter(self) -> UnsubscribeFilterIter<'a> {
        UnsubscribeFilterIter { rest: self.wire }
    }
}

/// Iterator over the filters of an [`UnsubscribeFilters`].
#[derive(Debug, Clone)]
pub struct UnsubscribeFilterIter<'a> {
    rest: &'a [u8],
}

impl<'a> Iterator for UnsubscribeFilterIter<'a> {
    type Item = &'a str;

    fn next(&mut self) -> Option<&'a str> {
        let (filter, rest) = crate::encode::split_str(self.rest)?;
        self.rest = rest;
        Some(filter)
    }
}

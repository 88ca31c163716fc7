//! SUBSCRIBE and its topic-filter list, kept as the frame's bytes and iterated lazily.

use crate::encode::{Sink, SliceSink, write_str};
use crate::error::{DecodeError, EncodeError, Field};
use crate::limits::Limits;
use crate::packet_type::PacketType;
use crate::qos::{PacketId, QoS};
use crate::reader::Reader;
use crate::topic::validate_topic_filter;

/// A SUBSCRIBE packet.
///
/// ```
/// use mqtt_codec::{decode, BorrowedPacket, Decoded, QoS};
/// // SUBSCRIBE id 1: "a/b" at QoS 1, "c/#" at QoS 0.
/// let bytes = [0x82, 0x0e, 0x00, 0x01, 0x00, 0x03, b'a', b'/', b'b', 0x01,
///              0x00, 0x03, b'c', b'/', b'#', 0x00];
/// let Decoded::Complete { packet: BorrowedPacket::Subscribe(sub), .. } = decode(&bytes).unwrap()
/// else { panic!("a SUBSCRIBE") };
/// assert_eq!(sub.packet_id.get(), 1);
/// let filters: Vec<(&str, QoS)> = sub.filters.into_iter().collect();
/// assert_eq!(filters, [("a/b", QoS::AtLeastOnce), ("c/#", QoS::AtMostOnce)]);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Subscribe<B> {
    /// Packet identifier, echoed in the SUBACK.
    pub packet_id: PacketId,
    /// The requested filters and their maximum QoS.
    pub filters: SubscribeFilters<B>,
}

impl<B> Subscribe<B> {
    /// Convert the binary type of the filter list.
    pub fn map<B2>(self, binary: impl FnOnce(B) -> B2) -> Subscribe<B2> {
        Subscribe {
            packet_id: self.packet_id,
            filters: self.filters.map(binary),
        }
    }
}

impl<B: AsRef<[u8]>> Subscribe<B> {
    /// A view of this packet with borrowed fields.
    pub fn as_borrowed(&self) -> Subscribe<&[u8]> {
        Subscribe {
            packet_id: self.packet_id,
            filters: self.filters.as_borrowed(),
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

impl<'a> Subscribe<&'a [u8]> {
    pub(crate) fn decode(r: &mut Reader<'a>, limits: &Limits) -> Result<Self, DecodeError> {
        let packet_id = r.packet_id()?;
        let offset = r.offset();
        let filters = SubscribeFilters::validate(r.rest(), offset, limits)?;
        Ok(Subscribe { packet_id, filters })
    }
}

/// The topic filters of a SUBSCRIBE with their requested QoS, held as validated wire bytes (a
/// slice of the received frame) and decoded lazily when iterated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SubscribeFilters<B> {
    wire: B,
    count: usize,
}

impl<B> SubscribeFilters<B> {
    /// Convert the binary type, e.g. from `&[u8]` to `Bytes`.
    pub fn map<B2>(self, binary: impl FnOnce(B) -> B2) -> SubscribeFilters<B2> {
        SubscribeFilters {
            wire: binary(self.wire),
            count: self.count,
        }
    }

    /// Number of filters; at least one.
    pub fn len(&self) -> usize {
        self.count
    }

    /// Always false: a SUBSCRIBE carries at least one filter.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The list as it is on the wire: for each filter its length-prefixed UTF-8 and QoS byte.
    pub fn wire(&self) -> &B {
        &self.wire
    }
}

impl<B: AsRef<[u8]>> SubscribeFilters<B> {
    /// Check wire bytes (length-prefixed filter, requested-QoS byte, repeated) under `limits`.
    ///
    /// ```
    /// use mqtt_codec::{Limits, SubscribeFilters, QoS};
    /// let filters = SubscribeFilters::new(&[0, 1, b'#', 1][..], &Limits::mqtt_3_1_1()).unwrap();
    /// assert_eq!(filters.iter().collect::<Vec<_>>(), [("#", QoS::AtLeastOnce)]);
    /// assert!(SubscribeFilters::new(&[0, 1, b'#', 3][..], &Limits::mqtt_3_1_1()).is_err());
    /// ```
    pub fn new(wire: B, limits: &Limits) -> Result<Self, DecodeError> {
        let count = SubscribeFilters::validate(wire.as_ref(), 0, limits)?.count;
        Ok(SubscribeFilters { wire, count })
    }

    /// Iterate over `(filter, requested QoS)`.
    pub fn iter(&self) -> SubscribeFilterIter<'_> {
        SubscribeFilterIter {
            rest: self.wire.as_ref(),
        }
    }

    /// A view of this list over borrowed bytes.
    pub fn as_borrowed(&self) -> SubscribeFilters<&[u8]> {
        SubscribeFilters {
            wire: self.wire.as_ref(),
            count: self.count,
        }
    }
}

impl<'a> SubscribeFilters<&'a [u8]> {
    fn validate(wire: &'a [u8], offset: usize, limits: &Limits) -> Result<Self, DecodeError> {
        let mut r = Reader::new(wire, offset, PacketType::Subscribe);
        let mut count = 0usize;
        while !r.is_empty() {
            let filter_offset = r.offset();
            let filter = r.utf8(Field::TopicFilter)?;
            validate_topic_filter(filter, limits).map_err(|reason| {
                DecodeError::InvalidTopicFilter {
                    packet: PacketType::Subscribe,
                    offset: filter_offset,
                    reason,
                }
            })?;
            let options_offset = r.offset();
            let options = r.u8(Field::SubscriptionOptions)?;
            let qos = match QoS::from_u8(options) {
                Some(qos) => qos,
                None => {
                    return Err(DecodeError::InvalidSubscriptionOptions {
                        offset: options_offset,
                        byte: options,
                    });
                }
            };
            if qos == QoS::ExactlyOnce && !limits.qos2 {
                return Err(DecodeError::QoS2NotSupported {
                    packet: PacketType::Subscribe,
                });
            }
            count += 1;
        }
        if count == 0 {
            return Err(DecodeError::NoTopicFilters {
                packet: PacketType::Subscribe,
            });
        }
        if count > limits.max_filters_per_subscribe {
            return Err(DecodeError::TooManyTopicFilters {
                count,
                max: limits.max_filters_per_subscribe,
            });
        }
        Ok(SubscribeFilters { wire, count })
    }

    /// Write a filter list into `out` and return it, for building a SUBSCRIBE without an
    /// allocator. Each filter must be a valid MQTT 3.1.1 filter.
    ///
    /// ```
    /// use mqtt_codec::{QoS, SubscribeFilters};
    /// let mut buf = [0u8; 32];
    /// let filters = SubscribeFilters::write_list(&[("cars/+/gps", QoS::AtLeastOnce)], &mut buf).unwrap();
    /// assert_eq!(filters.len(), 1);
    /// ```
    pub fn write_list<S: AsRef<str>>(
        list: &[(S, QoS)],
        out: &'a mut [u8],
    ) -> Result<Self, EncodeError> {
        let needed = list_len(list)?;
        if out.len() < needed {
            return Err(EncodeError::BufferTooSmall {
                needed,
                available: out.len(),
            });
        }
        write_list(list, &mut SliceSink::new(out));
        let out: &'a [u8] = out;
        Ok(SubscribeFilters {
            wire: out.get(..needed).unwrap_or_default(),
            count: list.len(),
        })
    }
}

#[cfg(feature = "bytes")]
impl SubscribeFilters<bytes::Bytes> {
    /// Build a filter list from `(filter, requested QoS)` pairs. Each filter must be a valid
    /// MQTT 3.1.1 filter.
    ///
    /// ```
    /// use mqtt_codec::{QoS, SubscribeFilters};
    /// let filters = SubscribeFilters::from_list(&[("a/#", QoS::AtMostOnce)]).unwrap();
    /// assert_eq!(filters.iter().next(), Some(("a/#", QoS::AtMostOnce)));
    /// assert!(SubscribeFilters::from_list::<&str>(&[]).is_err());
    /// ```
    pub fn from_list<S: AsRef<str>>(list: &[(S, QoS)]) -> Result<Self, EncodeError> {
        let needed = list_len(list)?;
        let mut buf = bytes::BytesMut::with_capacity(needed);
        write_list(list, &mut crate::encode::BufSink(&mut buf));
        Ok(SubscribeFilters {
            wire: buf.freeze(),
            count: list.len(),
        })
    }

    /// Iterate over `(filter, requested QoS)` with each filter a zero-copy slice of the frame.
    pub fn iter_shared(&self) -> impl Iterator<Item = (crate::Utf8Bytes, QoS)> + '_ {
        self.iter()
            .map(|(filter, qos)| (crate::Utf8Bytes::slice_ref(&self.wire, filter), qos))
    }
}

fn list_len<S: AsRef<str>>(list: &[(S, QoS)]) -> Result<usize, EncodeError> {
    if list.is_empty() {
        return Err(EncodeError::Empty {
            packet: PacketType::Subscribe,
        });
    }
    let mut len = 0usize;
    for (filter, _) in list {
        let filter = filter.as_ref();
        validate_topic_filter(filter, &Limits::mqtt_3_1_1())
            .map_err(|reason| EncodeError::InvalidTopicFilter { reason })?;
        len += crate::encode::str_len(Field::TopicFilter, filter)? + 1;
    }
    Ok(len)
}

fn write_list<S: AsRef<str>>(list: &[(S, QoS)], sink: &mut impl Sink) {
    for (filter, qos) in list {
        write_str(sink, filter.as_ref());
        sink.put_u8(qos.as_u8());
    }
}

impl<'a> IntoIterator for SubscribeFilters<&'a [u8]> {
    type Item = (&'a str, QoS);
    type IntoIter = SubscribeFilterIter<'a>;

    fn into_iter(self) -> SubscribeFilterIter<'a> {
        SubscribeFilterIter { rest: self.wire }
    }
}

impl<'s, B: AsRef<[u8]>> IntoIterator for &'s SubscribeFilters<B> {
    type Item = (&'s str, QoS);
    type IntoIter = SubscribeFilterIter<'s>;

    fn into_iter(self) -> SubscribeFilterIter<'s> {
        self.iter()
    }
}

/// Iterator over the `(filter, requested QoS)` pairs of a [`SubscribeFilters`].
#[derive(Debug, Clone)]
pub struct SubscribeFilterIter<'a> {
    rest: &'a [u8],
}

impl<'a> Iterator for SubscribeFilterIter<'a> {
    type Item = (&'a str, QoS);

    fn next(&mut self) -> Option<(&'a str, QoS)> {
        // The list was validated when it was made, so nothing here fails on real input.
        let (filter, rest) = crate::encode::split_str(self.rest)?;
        let (&options, rest) = rest.split_first()?;
        self.rest = rest;
        Some((filter, QoS::from_u8(options)?))
    }
}

//! A zero-copy MQTT 3.1.1 codec for brokers and devices, with AWS IoT Core's limits as a profile.
//!
//! - All fourteen control packets, decoded and encoded, validated against the specification:
//!   reserved flag bits, QoS 3, packet id 0, wildcard placement, UTF-8 without U+0000, and every
//!   length bounded by its own frame (a field that runs past its frame is an error, never a request
//!   for more bytes; bytes left over in a frame are an error too).
//! - Two decode faces over one parser:
//!   - [`decode`] / [`decode_with`] borrow from a `&[u8]`: topics are `&str`, payloads `&[u8]`,
//!     SUBSCRIBE filters a lazy iterator over the frame. This works with `#![no_std]` and no
//!     allocator (build with `default-features = false`; CI links it into a `no_std` library
//!     that has no global allocator, `mqtt-codec/no-std-check`).
//!   - [`decode_buf`] (feature `bytes`, on by default) cuts a frame off a `BytesMut` read buffer,
//!     freezes it once, and returns a [`SharedPacket`] whose fields are `Bytes` slices of it.
//! - Encoding into a caller's `&mut [u8]` ([`Packet::encode_to_slice`]) or any `BufMut`
//!   ([`Packet::encode`]); a PUBLISH header can be encoded apart from its payload
//!   ([`Publish::encode_header`]) for vectored writes of one shared payload.
//! - [`Limits`]: [`Limits::mqtt_3_1_1`] and [`Limits::aws_iot`] (128 KiB payloads, 256-byte topics
//!   with at most 7 `/`, 128-byte client ids, at most 8 filters per SUBSCRIBE, no QoS 2).
//!
//! ```
//! use mqtt_codec::{decode_with, BorrowedPacket, Decoded, Limits, PacketId, Publish, QosPid};
//!
//! let publish = BorrowedPacket::Publish(Publish {
//!     dup: false,
//!     qos_pid: QosPid::AtLeastOnce(PacketId::new(1).unwrap()),
//!     retain: false,
//!     topic: "cars/42/telemetry",
//!     payload: br#"{"speed":88}"#,
//! });
//! let mut wire = [0u8; 64];
//! let len = publish.encode_to_slice(&mut wire).unwrap();
//!
//! // Half a packet: the decoder says how many bytes are still missing.
//! assert_eq!(decode_with(&wire[..10], &Limits::aws_iot()), Ok(Decoded::Incomplete { needed: len - 10 }));
//! // The whole packet: the same value back, borrowing from `wire`.
//! assert_eq!(decode_with(&wire[..len], &Limits::aws_iot()), Ok(Decoded::Complete { packet: publish, len }));
//! ```
#![cfg_attr(not(test), no_std)]
#![doc(html_root_url = "https://docs.rs/mqtt-codec/0.1.0")]

#[cfg(feature = "bytes")]
extern crate alloc;

mod ack;
mod connack;
mod connect;
mod decode;
mod encode;
mod error;
mod header;
mod limits;
mod packet;
mod packet_type;
mod publish;
mod qos;
mod reader;
#[cfg(feature = "bytes")]
mod shared;
mod suback;
mod subscribe;
mod topic;
mod unsubscribe;

pub use ack::{PubAck, PubComp, PubRec, PubRel, UnsubAck};
pub use connack::{ConnAck, ConnectReturnCode};
pub use connect::{Connect, PROTOCOL_LEVEL, PROTOCOL_NAME, Will};
pub use decode::{Decoded, decode, decode_with};
pub use error::{DecodeError, EncodeError, Field, TopicError};
pub use header::FixedHeader;
pub use limits::{Limits, MAX_REMAINING_LENGTH};
pub use packet::{BorrowedPacket, Packet};
pub use packet_type::PacketType;
pub use publish::Publish;
pub use qos::{PacketId, QoS, QosPid};
#[cfg(feature = "bytes")]
pub use shared::{SharedPacket, Utf8Bytes, decode_buf};
pub use suback::{ReturnCodes, SubAck, SubscribeReturnCode};
pub use subscribe::{Subscribe, SubscribeFilterIter, SubscribeFilters};
pub use topic::{
    AWS_RESERVED_PREFIX, BASIC_INGEST_PREFIX, SHARED_SUBSCRIPTION_PREFIX, split_shared,
    validate_topic_filter, validate_topic_name,
};
pub use unsubscribe::{Unsubscribe, UnsubscribeFilterIter, UnsubscribeFilters};

/// The crate README's example, run as a doctest so it stays true.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;

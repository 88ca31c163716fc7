//! The codec's errors: what was wrong, in which packet, which field and at which byte offset.

use core::fmt;

use crate::connack::ConnectReturnCode;
use crate::packet_type::PacketType;

/// A field of a control packet, named in errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Field {
    /// CONNECT protocol name.
    ProtocolName,
    /// CONNECT protocol level.
    ProtocolLevel,
    /// CONNECT flags byte.
    ConnectFlags,
    /// CONNECT keep-alive seconds.
    KeepAlive,
    /// CONNECT client identifier.
    ClientId,
    /// CONNECT will topic.
    WillTopic,
    /// CONNECT will message.
    WillPayload,
    /// CONNECT user name.
    Username,
    /// CONNECT password.
    Password,
    /// CONNACK acknowledge flags.
    ConnAckFlags,
    /// CONNACK return code.
    ConnectReturnCode,
    /// PUBLISH topic name.
    TopicName,
    /// A packet identifier.
    PacketId,
    /// A SUBSCRIBE or UNSUBSCRIBE topic filter.
    TopicFilter,
    /// A SUBSCRIBE requested-QoS byte.
    SubscriptionOptions,
    /// A SUBACK return code.
    SubAckReturnCode,
}

impl Field {
    /// The field's name as the specification writes it.
    pub const fn name(self) -> &'static str {
        match self {
            Field::ProtocolName => "protocol name",
            Field::ProtocolLevel => "protocol level",
            Field::ConnectFlags => "connect flags",
            Field::KeepAlive => "keep alive",
            Field::ClientId => "client identifier",
            Field::WillTopic => "will topic",
            Field::WillPayload => "will message",
            Field::Username => "user name",
            Field::Password => "password",
            Field::ConnAckFlags => "connect acknowledge flags",
            Field::ConnectReturnCode => "connect return code",
            Field::TopicName => "topic name",
            Field::PacketId => "packet identifier",
            Field::TopicFilter => "topic filter",
            Field::SubscriptionOptions => "requested QoS",
            Field::SubAckReturnCode => "return code",
        }
    }
}

impl fmt::Display for Field {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Why a topic name or topic filter is not valid.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
#[non_exhaustive]
pub enum TopicError {
    /// Topic names and filters must be at least one character long.
    #[error("is empty")]
    Empty,
    /// Longer than the profile allows.
    #[error("is {len} bytes long, more than the maximum of {max}")]
    TooLong {
        /// Counted length in bytes.
        len: usize,
        /// The profile's maximum.
        max: usize,
    },
    /// More `/` separators than the profile allows.
    #[error("has {count} '/' separators, more than the maximum of {max}")]
    TooManySlashes {
        /// Counted separators.
        count: usize,
        /// The profile's maximum.
        max: usize,
    },
    /// `+` or `#` in a topic name (only filters may hold wildcards).
    #[error("contains a wildcard character, which a topic name may not")]
    WildcardInName,
    /// `#` not alone in the last level.
    #[error("has '#' somewhere other than alone in the last level")]
    MisplacedMultiLevelWildcard,
    /// `+` not alone in its level.
    #[error("has '+' that does not occupy a whole level")]
    MisplacedSingleLevelWildcard,
    /// The U+0000 character.
    #[error("contains U+0000")]
    NullCharacter,
    /// `$share/{name}/{filter}` with an empty or invalid share name or no filter.
    #[error("is a malformed shared subscription ($share/{{name}}/{{filter}})")]
    InvalidSharedSubscription,
}

/// Why a byte sequence is not a valid MQTT 3.1.1 packet under the configured [`Limits`](crate::Limits).
///
/// Offsets count from the first byte of the packet (the fixed header).
///
/// ```
/// use mqtt_codec::{decode, DecodeError, PacketType};
/// // PINGREQ with a remaining length of 2.
/// let err = decode(&[0xc0, 0x02, 0xd0, 0x00]).unwrap_err();
/// assert_eq!(
///     err,
///     DecodeError::InvalidRemainingLength { packet: PacketType::PingReq, len: 2, expected: 0 }
/// );
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// The variable-length remaining length continues into a fifth byte.
    #[error("remaining length is encoded in more than 4 bytes")]
    RemainingLengthTooLong,
    /// Packet type 0 or 15.
    #[error("packet type {0} is reserved")]
    ReservedPacketType(u8),
    /// The fixed-header flag bits differ from what the packet type requires.
    #[error("{packet}: fixed header flags {flags:#06b} are not allowed")]
    InvalidFlags {
        /// The packet.
        packet: PacketType,
        /// The low nibble of the first byte.
        flags: u8,
    },
    /// The whole packet would be larger than the configured maximum; known from the fixed header.
    #[error("{packet}: packet of {size} bytes exceeds the maximum of {max} bytes")]
    PacketTooLarge {
        /// The packet.
        packet: PacketType,
        /// Fixed header plus remaining length.
        size: usize,
        /// The configured maximum.
        max: usize,
    },
    /// A fixed-size packet with the wrong remaining length.
    #[error("{packet}: remaining length is {len}, must be {expected}")]
    InvalidRemainingLength {
        /// The packet.
        packet: PacketType,
        /// The remaining length received.
        len: usize,
        /// The only valid remaining length for this type.
        expected: usize,
    },
    /// A field runs past the end of its frame.
    #[error("{packet}: {field} at offset {offset} needs {needed} bytes, the frame has {available}")]
    Truncated {
        /// The packet.
        packet: PacketType,
        /// The field being read.
        field: Field,
        /// Where the field starts.
        offset: usize,
        /// Bytes the field needs (for a string: its length prefix plus its declared length).
        needed: usize,
        /// Bytes left in the frame at that offset.
        available: usize,
    },
    /// Bytes left inside the frame after the last field.
    #[error("{packet}: {count} unexpected bytes at offset {offset} after the last field")]
    TrailingBytes {
        /// The packet.
        packet: PacketType,
        /// Where the extra bytes start.
        offset: usize,
        /// How many there are.
        count: usize,
    },
    /// A string is not well-formed UTF-8.
    #[error("{packet}: {field} at offset {offset} is not valid UTF-8")]
    InvalidUtf8 {
        /// The packet.
        packet: PacketType,
        /// The string field.
        field: Field,
        /// Where the string's length prefix starts.
        offset: usize,
    },
    /// A string contains U+0000.
    #[error("{packet}: {field} at offset {offset} contains U+0000")]
    NullCharacter {
        /// The packet.
        packet: PacketType,
        /// The string field.
        field: Field,
        /// Where the string's length prefix starts.
        offset: usize,
    },
    /// A packet identifier of zero.
    #[error("{packet}: packet identifier 0 is not allowed")]
    ZeroPacketId {
        /// The packet.
        packet: PacketType,
    },
    /// QoS 3 in a PUBLISH or in CONNECT's will QoS.
    #[error("{packet}: QoS 3 is not a valid QoS")]
    InvalidQoS {
        /// The packet.
        packet: PacketType,
    },
    /// QoS 2 where the profile does not support it (AWS IoT: PUBLISH, SUBSCRIBE and will).
    #[error("{packet}: QoS 2 is not supported by this broker profile")]
    QoS2NotSupported {
        /// The packet.
        packet: PacketType,
    },
    /// SUBSCRIBE or UNSUBSCRIBE without any topic filter.
    #[error("{packet} carries no topic filter")]
    NoTopicFilters {
        /// The packet.
        packet: PacketType,
    },
    /// SUBSCRIBE with more filters than the profile allows in one packet.
    #[error("SUBSCRIBE carries {count} topic filters, more than the maximum of {max}")]
    TooManyTopicFilters {
        /// Filters in the packet.
        count: usize,
        /// The profile's maximum.
        max: usize,
    },
    /// SUBSCRIBE requested-QoS byte with reserved bits set or QoS 3.
    #[error("SUBSCRIBE: requested QoS byte {byte:#04x} at offset {offset} is not 0, 1 or 2")]
    InvalidSubscriptionOptions {
        /// Where the byte is.
        offset: usize,
        /// Its value.
        byte: u8,
    },
    /// SUBACK without any return code.
    #[error("SUBACK carries no return code")]
    NoReturnCodes,
    /// SUBACK return code other than 0, 1, 2 or 0x80.
    #[error("SUBACK: return code {code:#04x} at offset {offset} is not 0, 1, 2 or 0x80")]
    InvalidSubAckReturnCode {
        /// Where the code is.
        offset: usize,
        /// Its value.
        code: u8,
    },
    /// An invalid PUBLISH topic name or will topic.
    #[error("{packet}: topic name at offset {offset} {reason}")]
    InvalidTopicName {
        /// The packet.
        packet: PacketType,
        /// Where the topic's length prefix starts.
        offset: usize,
        /// What is wrong with it.
        reason: TopicError,
    },
    /// An invalid SUBSCRIBE or UNSUBSCRIBE topic filter.
    #[error("{packet}: topic filter at offset {offset} {reason}")]
    InvalidTopicFilter {
        /// The packet.
        packet: PacketType,
        /// Where the filter's length prefix starts.
        offset: usize,
        /// What is wrong with it.
        reason: TopicError,
    },
    /// A PUBLISH payload or will message larger than the profile allows.
    #[error("{packet}: payload of {len} bytes exceeds the maximum of {max} bytes")]
    PayloadTooLarge {
        /// The packet.
        packet: PacketType,
        /// Payload length.
        len: usize,
        /// The profile's maximum.
        max: usize,
    },
    /// CONNECT protocol name other than `MQTT`.
    #[error("CONNECT: protocol name is not \"MQTT\"")]
    InvalidProtocolName,
    /// CONNECT protocol level other than 4 (MQTT 3.1.1). Answer with CONNACK 0x01.
    #[error("CONNECT: protocol level {0} is not supported, only 4 (MQTT 3.1.1)")]
    UnsupportedProtocolLevel(u8),
    /// CONNECT flags bit 0 is set.
    #[error("CONNECT: the reserved connect flag is set")]
    ConnectReservedFlag,
    /// CONNECT will QoS or will retain without the will flag.
    #[error("CONNECT: will QoS or will retain is set without the will flag")]
    InconsistentWillFlags,
    /// CONNECT password flag without the user name flag.
    #[error("CONNECT: password flag is set without the user name flag")]
    PasswordWithoutUsername,
    /// CONNECT client identifier longer than the profile allows. Answer with CONNACK 0x02.
    #[error("CONNECT: client identifier of {len} bytes exceeds the maximum of {max} bytes")]
    ClientIdTooLong {
        /// Length in bytes.
        len: usize,
        /// The profile's maximum.
        max: usize,
    },
    /// CONNACK acknowledge flags with reserved bits set.
    #[error("CONNACK: acknowledge flags {0:#04x} have reserved bits set")]
    InvalidConnAckFlags(u8),
    /// CONNACK return code above 5.
    #[error("CONNACK: return code {0} is reserved")]
    InvalidConnectReturnCode(u8),
}

impl DecodeError {
    /// The CONNACK a server should send before closing, for the errors MQTT 3.1.1 answers with one
    /// (unsupported protocol level: 0x01; client identifier rejected: 0x02). Every other error closes
    /// the connection without a CONNACK.
    ///
    /// ```
    /// use mqtt_codec::{ConnectReturnCode, DecodeError};
    /// assert_eq!(
    ///     DecodeError::UnsupportedProtocolLevel(5).connack_code(),
    ///     Some(ConnectReturnCode::UnacceptableProtocolVersion)
    /// );
    /// assert_eq!(DecodeError::InvalidProtocolName.connack_code(), None);
    /// ```
    pub const fn connack_code(&self) -> Option<ConnectReturnCode> {
        match self {
            DecodeError::UnsupportedProtocolLevel(_) => {
                Some(ConnectReturnCode::UnacceptableProtocolVersion)
            }
            DecodeError::ClientIdTooLong { .. } => Some(ConnectReturnCode::IdentifierRejected),
            _ => None,
        }
    }
}

/// Why a packet could not be encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EncodeError {
    /// A string or binary field is longer than the 65535 bytes its length prefix can say.
    #[error("{field} of {len} bytes is longer than 65535 bytes")]
    FieldTooLong {
        /// The field.
        field: Field,
        /// Its length.
        len: usize,
    },
    /// The remaining length exceeds MQTT's maximum of 268,435,455 bytes.
    #[error("remaining length of {len} bytes exceeds MQTT's maximum of 268435455")]
    PacketTooLarge {
        /// The remaining length.
        len: usize,
    },
    /// The output buffer is too small.
    #[error("the packet needs {needed} bytes, the buffer has room for {available}")]
    BufferTooSmall {
        /// Encoded size of the packet.
        needed: usize,
        /// Room in the buffer.
        available: usize,
    },
    /// SUBSCRIBE or UNSUBSCRIBE built from an empty list, or SUBACK from no return codes.
    #[error("{packet} needs at least one entry")]
    Empty {
        /// The packet being built.
        packet: PacketType,
    },
    /// A topic filter that is not valid, given to a builder.
    #[error("topic filter {reason}")]
    InvalidTopicFilter {
        /// What is wrong with it.
        reason: TopicError,
    },
}

//! Protocol limits as data: the MQTT 3.1.1 maxima and AWS IoT Core's stricter quotas.

/// The largest remaining length MQTT 3.1.1's four-byte variable-length encoding can express.
pub const MAX_REMAINING_LENGTH: usize = 268_435_455;

/// Limits the decoder enforces. Two profiles come ready-made: [`Limits::mqtt_3_1_1`] (the
/// specification's maxima, what a standard broker such as the edge core's accepts) and
/// [`Limits::aws_iot`] (what AWS IoT Core accepts). Each field is public so a program can adjust
/// one limit of a profile.
///
/// ```
/// use mqtt_codec::{decode_with, DecodeError, Limits, PacketType};
/// // QoS 2 PUBLISH to "a": accepted by the standard profile, refused by AWS IoT's.
/// let qos2 = [0x34, 0x05, 0x00, 0x01, b'a', 0x00, 0x01];
/// assert!(decode_with(&qos2, &Limits::mqtt_3_1_1()).is_ok());
/// assert_eq!(
///     decode_with(&qos2, &Limits::aws_iot()).unwrap_err(),
///     DecodeError::QoS2NotSupported { packet: PacketType::Publish }
/// );
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct Limits {
    /// Largest whole packet (fixed header plus remaining length), refused from the fixed header
    /// alone before the rest is buffered.
    pub max_packet_size: usize,
    /// Largest PUBLISH payload or CONNECT will message.
    pub max_payload_size: usize,
    /// Longest topic name or topic filter, in UTF-8 bytes (exempt prefixes not counted).
    pub max_topic_len: usize,
    /// Most `/` separators in a topic name or filter (exempt prefixes not counted).
    pub max_topic_slashes: usize,
    /// Longest client identifier, in bytes.
    pub max_client_id_len: usize,
    /// Most topic filters in one SUBSCRIBE packet.
    pub max_filters_per_subscribe: usize,
    /// Whether QoS 2 is allowed in PUBLISH, SUBSCRIBE and the will.
    pub qos2: bool,
    /// Whether the AWS IoT prefixes `$aws/rules/{rule}/` (topic names) and `$share/{group}/`
    /// (filters) are left out when counting topic length and separators.
    pub aws_exempt_prefixes: bool,
}

impl Limits {
    /// MQTT 3.1.1's own maxima: 256 MiB packets, 65535-byte strings, QoS 0–2.
    pub const fn mqtt_3_1_1() -> Limits {
        Limits {
            max_packet_size: MAX_REMAINING_LENGTH + 5,
            max_payload_size: MAX_REMAINING_LENGTH,
            max_topic_len: u16::MAX as usize,
            max_topic_slashes: usize::MAX,
            max_client_id_len: u16::MAX as usize,
            max_filters_per_subscribe: usize::MAX,
            qos2: true,
            aws_exempt_prefixes: false,
        }
    }

    /// AWS IoT Core's quotas for MQTT 3.1.1: payload at most 128 KiB, topics and filters at most
    /// 256 bytes and 7 `/`, client ids at most 128 bytes, at most 8 filters per SUBSCRIBE, no QoS 2.
    ///
    /// The packet-size bound is the payload quota plus room for the largest headers AWS allows
    /// (a 256-byte topic, or a CONNECT's client id, will topic, user name and password), so an
    /// oversized packet is refused as soon as its fixed header arrives.
    pub const fn aws_iot() -> Limits {
        Limits {
            max_packet_size: AWS_IOT_MAX_PAYLOAD + AWS_IOT_HEADER_ALLOWANCE,
            max_payload_size: AWS_IOT_MAX_PAYLOAD,
            max_topic_len: 256,
            max_topic_slashes: 7,
            max_client_id_len: 128,
            max_filters_per_subscribe: 8,
            qos2: false,
            aws_exempt_prefixes: true,
        }
    }
}

impl Default for Limits {
    /// The MQTT 3.1.1 maxima.
    fn default() -> Limits {
        Limits::mqtt_3_1_1()
    }
}

/// AWS IoT Core's MQTT payload quota: 128 KiB.
const AWS_IOT_MAX_PAYLOAD: usize = 128 * 1024;
/// Header room above the payload quota in the AWS profile's packet-size bound.
const AWS_IOT_HEADER_ALLOWANCE: usize = 8 * 1024;

//! The packets that carry only a packet identifier: PUBACK, PUBREC, PUBREL, PUBCOMP, UNSUBACK.

use crate::encode::Sink;
use crate::error::DecodeError;
use crate::qos::PacketId;
use crate::reader::Reader;

macro_rules! id_only_packet {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub struct $name {
            /// The packet identifier this packet acknowledges or continues.
            pub packet_id: PacketId,
        }

        impl $name {
            /// The packet for this identifier.
            pub const fn new(packet_id: PacketId) -> $name {
                $name { packet_id }
            }

            pub(crate) fn decode(r: &mut Reader<'_>) -> Result<$name, DecodeError> {
                Ok($name { packet_id: r.packet_id()? })
            }

            pub(crate) fn write_body(&self, sink: &mut impl Sink) {
                sink.put_u16(self.packet_id.get());
            }
        }
    };
}

id_only_packet!(
    /// PUBACK: acknowledges a QoS 1 PUBLISH.
    PubAck
);
id_only_packet!(
    /// PUBREC: first answer to a QoS 2 PUBLISH.
    PubRec
);
id_only_packet!(
    /// PUBREL: releases a QoS 2 message after PUBREC.
    PubRel
);
id_only_packet!(
    /// PUBCOMP: completes the QoS 2 exchange.
    PubComp
);
id_only_packet!(
    /// UNSUBACK: acknowledges an UNSUBSCRIBE.
    UnsubAck
);

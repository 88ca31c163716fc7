//! CONNECT: the client's first packet, with its will, credentials and session options.

use crate::encode::{Sink, binary_len, str_len, write_binary, write_str};
use crate::error::{DecodeError, EncodeError, Field};
use crate::limits::Limits;
use crate::packet_type::PacketType;
use crate::qos::QoS;
use crate::reader::Reader;
use crate::topic::validate_topic_name;

/// The protocol name of MQTT 3.1.1.
pub const PROTOCOL_NAME: &str = "MQTT";
/// The protocol level of MQTT 3.1.1.
pub const PROTOCOL_LEVEL: u8 = 4;

/// A CONNECT packet. `T` is the text type (`&str`, [`Utf8Bytes`](crate::Utf8Bytes), `String`) and
/// `B` the binary type (`&[u8]`, `Bytes`, `Vec<u8>`).
///
/// ```
/// use mqtt_codec::{decode, BorrowedPacket, Connect, Decoded};
/// let connect: Connect<&str, &[u8]> = Connect {
///     client_id: "car-1",
///     clean_session: true,
///     keep_alive: 60,
///     will: None,
///     username: Some("user"),
///     password: Some(b"secret".as_slice()),
/// };
/// let packet = BorrowedPacket::Connect(connect);
/// let mut buf = [0u8; 64];
/// let n = packet.encode_to_slice(&mut buf).unwrap();
/// assert_eq!(decode(&buf[..n]).unwrap(), Decoded::Complete { packet, len: n });
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Connect<T, B> {
    /// Client identifier; may be empty (the server then assigns one or refuses).
    pub client_id: T,
    /// Clean session: discard any previous session and keep none after this connection.
    pub clean_session: bool,
    /// Keep-alive interval in seconds; 0 disables it.
    pub keep_alive: u16,
    /// The will message, published by the server if the connection ends without DISCONNECT.
    pub will: Option<Will<T, B>>,
    /// User name.
    pub username: Option<T>,
    /// Password; MQTT 3.1.1 allows it only with a user name.
    pub password: Option<B>,
}

/// A CONNECT packet's will message.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Will<T, B> {
    /// Topic the will is published to.
    pub topic: T,
    /// The will message.
    pub payload: B,
    /// QoS of the will publish.
    pub qos: QoS,
    /// Whether the will is published retained.
    pub retain: bool,
}

impl<T, B> Connect<T, B> {
    /// Convert the text and binary fields, e.g. from `&str` to `Utf8Bytes`.
    pub fn map<T2, B2>(
        self,
        mut text: impl FnMut(T) -> T2,
        mut binary: impl FnMut(B) -> B2,
    ) -> Connect<T2, B2> {
        Connect {
            client_id: text(self.client_id),
            clean_session: self.clean_session,
            keep_alive: self.keep_alive,
            will: self.will.map(|w| Will {
                topic: text(w.topic),
                payload: binary(w.payload),
                qos: w.qos,
                retain: w.retain,
            }),
            username: self.username.map(&mut text),
            password: self.password.map(binary),
        }
    }
}

impl<T: AsRef<str>, B: AsRef<[u8]>> Connect<T, B> {
    /// A view of this packet with borrowed fields.
    pub fn as_borrowed(&self) -> Connect<&str, &[u8]> {
        Connect {
            client_id: self.client_id.as_ref(),
            clean_session: self.clean_session,
            keep_alive: self.keep_alive,
            will: self.will.as_ref().map(|w| Will {
                topic: w.topic.as_ref(),
                payload: w.payload.as_ref(),
                qos: w.qos,
                retain: w.retain,
            }),
            username: self.username.as_ref().map(AsRef::as_ref),
            password: self.password.as_ref().map(AsRef::as_ref),
        }
    }

    fn flags(&self) -> u8 {
        let mut flags = 0u8;
        if self.clean_session {
            flags |= 0b0000_0010;
        }
        if let Some(will) = &self.will {
            flags |= 0b0000_0100 | (will.qos.as_u8() << 3);
            if will.retain {
                flags |= 0b0010_0000;
            }
        }
        if self.password.is_some() {
            flags |= 0b0100_0000;
        }
        if self.username.is_some() {
            flags |= 0b1000_0000;
        }
        flags
    }

    pub(crate) fn remaining_len(&self) -> Result<usize, EncodeError> {
        // Protocol name (2 + 4), level, flags, keep-alive.
        let mut len = 10 + str_len(Field::ClientId, self.client_id.as_ref())?;
        if let Some(will) = &self.will {
            len += str_len(Field::WillTopic, will.topic.as_ref())?;
            len += binary_len(Field::WillPayload, will.payload.as_ref())?;
        }
        if let Some(username) = &self.username {
            len += str_len(Field::Username, username.as_ref())?;
        }
        if let Some(password) = &self.password {
            len += binary_len(Field::Password, password.as_ref())?;
        }
        Ok(len)
    }

    pub(crate) fn write_body(&self, sink: &mut impl Sink) {
        write_str(sink, PROTOCOL_NAME);
        sink.put_u8(PROTOCOL_LEVEL);
        sink.put_u8(self.flags());
        sink.put_u16(self.keep_alive);
        write_str(sink, self.client_id.as_ref());
        if let Some(will) = &self.will {
            write_str(sink, will.topic.as_ref());
            write_binary(sink, will.payload.as_ref());
        }
        if let Some(username) = &self.username {
            write_str(sink, username.as_ref());
        }
        if let Some(password) = &self.password {
            write_binary(sink, password.as_ref());
        }
    }
}

impl<'a> Connect<&'a str, &'a [u8]> {
    pub(crate) fn decode(r: &mut Reader<'a>, limits: &Limits) -> Result<Self, DecodeError> {
        let name = r.binary(Field::ProtocolName)?;
        let level = r.u8(Field::ProtocolLevel)?;
        match name {
            b"MQTT" if level == PROTOCOL_LEVEL => {}
            // MQTT 3.1.1 (level 4) answers other levels of MQTT, and MQTT 3.1's "MQIsdp", with
            // CONNACK 0x01.
            b"MQTT" | b"MQIsdp" => return Err(DecodeError::UnsupportedProtocolLevel(level)),
            _ => return Err(DecodeError::InvalidProtocolName),
        }
        let flags = r.u8(Field::ConnectFlags)?;
        if flags & 0b0000_0001 != 0 {
            return Err(DecodeError::ConnectReservedFlag);
        }
        let clean_session = flags & 0b0000_0010 != 0;
        let will_flag = flags & 0b0000_0100 != 0;
        let will_qos_bits = (flags >> 3) & 0b11;
        let will_retain = flags & 0b0010_0000 != 0;
        let password_flag = flags & 0b0100_0000 != 0;
        let username_flag = flags & 0b1000_0000 != 0;
        if !will_flag && (will_qos_bits != 0 || will_retain) {
            return Err(DecodeError::InconsistentWillFlags);
        }
        let will_qos = QoS::from_u8(will_qos_bits).ok_or(DecodeError::InvalidQoS {
            packet: PacketType::Connect,
        })?;
        if will_qos == QoS::ExactlyOnce && !limits.qos2 {
            return Err(DecodeError::QoS2NotSupported {
                packet: PacketType::Connect,
            });
        }
        if password_flag && !username_flag {
            return Err(DecodeError::PasswordWithoutUsername);
        }
        let keep_alive = r.u16(Field::KeepAlive)?;

        let client_id = r.utf8(Field::ClientId)?;
        if client_id.len() > limits.max_client_id_len {
            return Err(DecodeError::ClientIdTooLong {
                len: client_id.len(),
                max: limits.max_client_id_len,
            });
        }
        let will = if will_flag {
            let offset = r.offset();
            let topic = r.utf8(Field::WillTopic)?;
            validate_topic_name(topic, limits).map_err(|reason| DecodeError::InvalidTopicName {
                packet: PacketType::Connect,
                offset,
                reason,
            })?;
            let payload = r.binary(Field::WillPayload)?;
            if payload.len() > limits.max_payload_size {
                return Err(DecodeError::PayloadTooLarge {
                    packet: PacketType::Connect,
                    len: payload.len(),
                    max: limits.max_payload_size,
                });
            }
            Some(Will {
                topic,
                payload,
                qos: will_qos,
                retain: will_retain,
            })
        } else {
            None
        };
        let username = if username_flag {
            Some(r.utf8(Field::Username)?)
        } else {
            None
        };
        let password = if password_flag {
            Some(r.binary(Field::Password)?)
        } else {
            None
        };
        Ok(Connect {
            client_id,
            clean_session,
            keep_alive,
            will,
            username,
            password,
        })
    }
}

//! CONNACK: the server's answer to CONNECT.

use core::fmt;

use crate::encode::Sink;
use crate::error::{DecodeError, Field};
use crate::reader::Reader;

/// The CONNACK return code (MQTT 3.1.1 table 3.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum ConnectReturnCode {
    /// 0x00: connection accepted.
    Accepted = 0,
    /// 0x01: the server does not support the requested protocol level.
    UnacceptableProtocolVersion = 1,
    /// 0x02: the client identifier is not allowed.
    IdentifierRejected = 2,
    /// 0x03: the MQTT service is unavailable.
    ServerUnavailable = 3,
    /// 0x04: the user name or password is malformed.
    BadUsernameOrPassword = 4,
    /// 0x05: the client is not authorized to connect.
    NotAuthorized = 5,
}

impl ConnectReturnCode {
    /// The code for a wire value 0 to 5.
    pub const fn from_u8(value: u8) -> Option<ConnectReturnCode> {
        Some(match value {
            0 => ConnectReturnCode::Accepted,
            1 => ConnectReturnCode::UnacceptableProtocolVersion,
            2 => ConnectReturnCode::IdentifierRejected,
            3 => ConnectReturnCode::ServerUnavailable,
            4 => ConnectReturnCode::BadUsernameOrPassword,
            5 => ConnectReturnCode::NotAuthorized,
            _ => return None,
        })
    }
}

impl fmt::Display for ConnectReturnCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ConnectReturnCode::Accepted => "connection accepted",
            ConnectReturnCode::UnacceptableProtocolVersion => "unacceptable protocol version",
            ConnectReturnCode::IdentifierRejected => "identifier rejected",
            ConnectReturnCode::ServerUnavailable => "server unavailable",
            ConnectReturnCode::BadUsernameOrPassword => "bad user name or password",
            ConnectReturnCode::NotAuthorized => "not authorized",
        })
    }
}

/// A CONNACK packet.
///
/// ```
/// use mqtt_codec::{decode, BorrowedPacket, ConnAck, ConnectReturnCode, Decoded};
/// let bytes = [0x20, 0x02, 0x01, 0x00];
/// let expected = BorrowedPacket::ConnAck(ConnAck {
///     session_present: true,
///     code: ConnectReturnCode::Accepted,
/// });
/// assert_eq!(decode(&bytes).unwrap(), Decoded::Complete { packet: expected, len: 4 });
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ConnAck {
    /// Whether the server resumed a stored session.
    pub session_present: bool,
    /// Whether the connection was accepted, and if not why.
    pub code: ConnectReturnCode,
}

impl ConnAck {
    pub(crate) fn decode(r: &mut Reader<'_>) -> Result<ConnAck, DecodeError> {
        let flags = r.u8(Field::ConnAckFlags)?;
        if flags & 0xfe != 0 {
            return Err(DecodeError::InvalidConnAckFlags(flags));
        }
        let code = r.u8(Field::ConnectReturnCode)?;
        Ok(ConnAck {
            session_present: flags & 1 != 0,
            code: ConnectReturnCode::from_u8(code)
                .ok_or(DecodeError::InvalidConnectReturnCode(code))?,
        })
    }

    pub(crate) fn write_body(&self, sink: &mut impl Sink) {
        sink.put_u8(u8::from(self.session_present));
        sink.put_u8(self.code as u8);
    }
}

//! What can stop a benchmark run, or one of its connections.

use std::path::PathBuf;

/// Why a benchmark (or one connection in it) failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BenchError {
    /// The options contradict each other or are out of range.
    #[error("invalid options: {0}")]
    Options(String),
    /// TCP connect to the broker failed (refused, unreachable, out of file descriptors).
    #[error("connect to {endpoint}: {error}")]
    Connect {
        /// host:port.
        endpoint: String,
        /// Why.
        #[source]
        error: std::io::Error,
    },
    /// The TLS handshake failed.
    #[error("TLS handshake with {endpoint}: {error}")]
    Tls {
        /// host:port.
        endpoint: String,
        /// Why.
        #[source]
        error: std::io::Error,
    },
    /// A TLS file could not be read or used.
    #[error("TLS file {path}: {reason}")]
    TlsFile {
        /// The file.
        path: PathBuf,
        /// What was wrong.
        reason: String,
    },
    /// The broker refused the CONNECT with this CONNACK return code.
    #[error("CONNECT refused with return code {0}")]
    Refused(u8),
    /// The broker closed the connection.
    #[error("the broker closed the connection")]
    Closed,
    /// Reading or writing the socket failed.
    #[error("socket: {0}")]
    Io(#[from] std::io::Error),
    /// Nothing came (or could be written) before the deadline.
    #[error("timed out waiting for {0}")]
    Timeout(&'static str),
    /// The broker sent bytes that are not MQTT 3.1.1.
    #[error("malformed packet from the broker: {0}")]
    Decode(#[from] mqtt_codec::DecodeError),
    /// A packet could not be encoded (a topic or payload out of MQTT's bounds).
    #[error("cannot encode a packet: {0}")]
    Encode(#[from] mqtt_codec::EncodeError),
    /// The broker sent a packet the protocol does not allow at this point.
    #[error("unexpected {0:?} from the broker")]
    Unexpected(mqtt_codec::PacketType),
    /// A SUBSCRIBE was refused (SUBACK 0x80).
    #[error("subscription refused")]
    SubscriptionRefused,
    /// Writing the JSON results failed.
    #[error("cannot write {path}: {error}")]
    Output {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        error: std::io::Error,
    },
    /// A task of the run panicked or was cancelled.
    #[error("a benchmark task failed: {0}")]
    Task(String),
}

impl BenchError {
    /// A short stable name for counting failures by kind in the results.
    pub fn kind(&self) -> &'static str {
        match self {
            BenchError::Options(_) => "options",
            BenchError::Connect { .. } => "connect",
            BenchError::Tls { .. } | BenchError::TlsFile { .. } => "tls",
            BenchError::Refused(_) => "refused",
            BenchError::Closed => "closed",
            BenchError::Io(_) => "io",
            BenchError::Timeout(_) => "timeout",
            BenchError::Decode(_) | BenchError::Unexpected(_) => "protocol",
            BenchError::Encode(_) => "encode",
            BenchError::SubscriptionRefused => "subscription_refused",
            BenchError::Output { .. } => "output",
            BenchError::Task(_) => "task",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_are_short_names() {
        assert_eq!(BenchError::Refused(5).kind(), "refused");
        assert_eq!(BenchError::Timeout("CONNACK").kind(), "timeout");
        assert_eq!(
            BenchError::Closed.to_string(),
            "the broker closed the connection"
        );
    }
}

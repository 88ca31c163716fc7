//! What can be wrong with a device shadow's set-up or with a message it is handed.

/// Why a [`DeviceShadow`](super::DeviceShadow) could not be made, or could not use a message.
///
/// A message that is refused leaves the device's state as it was: a request whose answer could
/// not be read stays pending, and its timeout resyncs the shadow.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DeviceShadowError {
    /// The thing or shadow name is not one the service accepts.
    #[error(
        "invalid shadow {0}: thing names are 1-128 of [a-zA-Z0-9:_-], shadow names 1-64 of [$a-zA-Z0-9:_-]"
    )]
    InvalidKey(String),
    /// The clientToken prefix leaves no room for the counter within the service's 64 bytes.
    #[error("clientToken prefix of {len} bytes; at most {max} leave room for the counter")]
    TokenPrefixTooLong {
        /// The prefix's length in bytes.
        len: usize,
        /// The longest prefix allowed.
        max: usize,
    },
    /// The topic is not one of this shadow's (another thing's or shadow's, or not a shadow topic).
    #[error("{topic}: not a topic of shadow {shadow}")]
    ForeignTopic {
        /// The topic the message came on.
        topic: String,
        /// This shadow, as `thing` or `thing/shadow`.
        shadow: String,
    },
    /// A request topic (`…/get`, `…/update`, `…/delete`), which carries no answer for the device.
    #[error("{topic}: a request topic, not an answer")]
    UnexpectedTopic {
        /// The topic the message came on.
        topic: String,
    },
    /// The payload is not UTF-8 JSON holding an object.
    #[error("{topic}: payload is not a JSON object: {detail}")]
    InvalidJson {
        /// The topic the message came on.
        topic: String,
        /// What the parser said.
        detail: String,
    },
    /// A field the answer must have is missing or of the wrong type.
    #[error("{topic}: field `{field}` is missing or of the wrong type")]
    InvalidField {
        /// The topic the message came on.
        topic: String,
        /// The field, as a path (`current.version`).
        field: &'static str,
    },
}

//! Topic names and filters, validated once under a profile and then passed around as types.

use core::fmt;

use mqtt_codec::{TopicError, Utf8Bytes, validate_topic_filter, validate_topic_name};

use crate::profile::Profile;
use crate::reserved::{PublishTarget, SubscribeTarget, classify_publish, classify_subscribe};

/// Why a topic name or filter cannot be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TopicRefusal {
    /// Malformed or over the profile's limits (length, levels, wildcards, U+0000).
    #[error(transparent)]
    Invalid(#[from] TopicError),
    /// In AWS's reserved `$` namespace, and not open to this operation.
    #[error("reserved topic not open to clients for this operation")]
    Reserved,
}

/// A topic name a client may publish to under a profile.
///
/// ```
/// use iot_broker_core::profile::Profile;
/// use iot_broker_core::topic::{TopicName, TopicRefusal};
/// let aws = Profile::aws_iot();
/// assert!(TopicName::new("cars/1/gps", &aws).is_ok());
/// assert!(TopicName::new("$aws/things/car1/shadow/update", &aws).is_ok());
/// assert_eq!(TopicName::new("$SYS/load", &aws), Err(TopicRefusal::Reserved));
/// assert!(TopicName::new("a/b/c/d/e/f/g/h/i", &aws).is_err()); // 8 slashes
/// assert!(TopicName::new("$SYS/load", &Profile::standard()).is_ok());
/// assert!(TopicName::new("cars/+", &Profile::standard()).is_err());
/// ```
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TopicName(Utf8Bytes);

impl TopicName {
    /// Validate `name` for publishing under `profile`.
    pub fn new(name: impl Into<Utf8Bytes>, profile: &Profile) -> Result<TopicName, TopicRefusal> {
        let name = name.into();
        validate_topic_name(&name, &profile.limits)?;
        if profile.reserved_namespace && classify_publish(&name) == PublishTarget::Forbidden {
            return Err(TopicRefusal::Reserved);
        }
        Ok(TopicName(name))
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The name as shared bytes.
    pub fn into_inner(self) -> Utf8Bytes {
        self.0
    }
}

/// A topic filter a client may subscribe to under a profile (plain or `$share/{group}/{filter}`).
///
/// ```
/// use iot_broker_core::profile::Profile;
/// use iot_broker_core::topic::{TopicFilter, TopicRefusal};
/// let aws = Profile::aws_iot();
/// assert!(TopicFilter::new("cars/+/gps", &aws).is_ok());
/// assert!(TopicFilter::new("$share/fleet/cars/#", &aws).is_ok());
/// assert_eq!(TopicFilter::new("$aws/rules/r/#", &aws), Err(TopicRefusal::Reserved));
/// assert!(TopicFilter::new("cars/#/gps", &aws).is_err());
/// ```
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TopicFilter(Utf8Bytes);

impl TopicFilter {
    /// Validate `filter` for subscribing under `profile`.
    pub fn new(
        filter: impl Into<Utf8Bytes>,
        profile: &Profile,
    ) -> Result<TopicFilter, TopicRefusal> {
        let filter = filter.into();
        validate_topic_filter(&filter, &profile.limits)?;
        if profile.reserved_namespace && classify_subscribe(&filter) == SubscribeTarget::Forbidden {
            return Err(TopicRefusal::Reserved);
        }
        Ok(TopicFilter(filter))
    }

    /// The filter.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether the filter has a `+` or `#` level.
    pub fn has_wildcard(&self) -> bool {
        has_wildcard(&self.0)
    }
}

/// Whether a filter has a `+` or `#` level.
pub(crate) fn has_wildcard(filter: &str) -> bool {
    filter.split('/').any(|level| level == "+" || level == "#")
}

macro_rules! text_impls {
    ($name:ident) => {
        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Debug::fmt(self.as_str(), f)
            }
        }
        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                self.as_str()
            }
        }
    };
}
text_impls!(TopicName);
text_impls!(TopicFilter);

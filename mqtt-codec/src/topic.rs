//! Syntax of topic names and topic filters (MQTT 3.1.1 section 4.7) under a profile's limits.

use crate::error::TopicError;
use crate::limits::Limits;

/// The prefix of a shared-subscription filter, `$share/{group}/{filter}`.
pub const SHARED_SUBSCRIPTION_PREFIX: &str = "$share/";
/// The prefix of an AWS IoT Basic Ingest topic, `$aws/rules/{rule}/{topic}`.
pub const BASIC_INGEST_PREFIX: &str = "$aws/rules/";

/// Check a topic name (what a PUBLISH is sent to): not empty, no wildcard, no U+0000, and within
/// the profile's length and separator limits.
///
/// ```
/// use mqtt_codec::{validate_topic_name, Limits, TopicError};
/// let aws = Limits::aws_iot();
/// assert!(validate_topic_name("cars/1/telemetry", &aws).is_ok());
/// assert_eq!(validate_topic_name("cars/+/telemetry", &aws), Err(TopicError::WildcardInName));
/// assert_eq!(
///     validate_topic_name("a/b/c/d/e/f/g/h/i", &aws),
///     Err(TopicError::TooManySlashes { count: 8, max: 7 })
/// );
/// // Basic Ingest's prefix does not count toward AWS's limits.
/// assert!(validate_topic_name("$aws/rules/r/a/b/c/d/e/f/g/h", &aws).is_ok());
/// ```
pub fn validate_topic_name(name: &str, limits: &Limits) -> Result<(), TopicError> {
    if name.is_empty() {
        return Err(TopicError::Empty);
    }
    if name.bytes().any(|b| b == b'+' || b == b'#') {
        return Err(TopicError::WildcardInName);
    }
    if name.bytes().any(|b| b == 0) {
        return Err(TopicError::NullCharacter);
    }
    let counted = if limits.aws_exempt_prefixes {
        strip_basic_ingest(name).unwrap_or(name)
    } else {
        name
    };
    check_size(counted, limits)
}

/// Check a topic name the decoder has scanned once already (see `Reader::scanned_utf8`): the
/// same rules as [`validate_topic_name`] without walking the bytes again.
#[inline]
pub(crate) fn validate_scanned_topic_name(
    name: &str,
    wildcard: bool,
    slashes: usize,
    limits: &Limits,
) -> Result<(), TopicError> {
    if name.is_empty() {
        return Err(TopicError::Empty);
    }
    if wildcard {
        return Err(TopicError::WildcardInName);
    }
    if limits.aws_exempt_prefixes && name.starts_with('$') {
        // Exempt prefixes change what is counted: take the general path.
        return validate_topic_name(name, limits);
    }
    check_counts(name.len(), slashes, limits)
}

/// The prefix of AWS IoT's reserved topics.
pub const AWS_RESERVED_PREFIX: &str = "$aws/";

/// Check a topic filter (what a SUBSCRIBE or UNSUBSCRIBE names): not empty, `#` only alone as the
/// last level, `+` only alone in a level, no U+0000, a well-formed `$share/{group}/` prefix if it
/// has one, and within the profile's length and separator limits.
///
/// ```
/// use mqtt_codec::{validate_topic_filter, Limits, TopicError};
/// let std = Limits::mqtt_3_1_1();
/// assert!(validate_topic_filter("cars/+/telemetry/#", &std).is_ok());
/// assert_eq!(validate_topic_filter("a/#/b", &std), Err(TopicError::MisplacedMultiLevelWildcard));
/// assert_eq!(validate_topic_filter("a+", &std), Err(TopicError::MisplacedSingleLevelWildcard));
/// assert_eq!(validate_topic_filter("#a", &std), Err(TopicError::MisplacedMultiLevelWildcard));
/// assert!(validate_topic_filter("$share/group/cars/#", &std).is_ok());
/// assert_eq!(validate_topic_filter("$share//cars", &std), Err(TopicError::InvalidSharedSubscription));
/// ```
pub fn validate_topic_filter(filter: &str, limits: &Limits) -> Result<(), TopicError> {
    if filter.is_empty() {
        return Err(TopicError::Empty);
    }
    if filter.bytes().any(|b| b == 0) {
        return Err(TopicError::NullCharacter);
    }
    let inner = match split_shared(filter) {
        Some(Ok((_, inner))) => inner,
        Some(Err(e)) => return Err(e),
        None => filter,
    };
    check_wildcards(inner)?;
    let counted = if limits.aws_exempt_prefixes {
        inner
    } else {
        filter
    };
    check_size(counted, limits)
}

/// Split a `$share/{group}/{filter}` filter into its group and inner filter.
///
/// `None` if the filter does not start with `$share/`; an error if it does but the group is empty
/// or holds a wildcard, or no filter follows it.
///
/// ```
/// use mqtt_codec::split_shared;
/// assert_eq!(split_shared("$share/g1/cars/#"), Some(Ok(("g1", "cars/#"))));
/// assert_eq!(split_shared("cars/#"), None);
/// assert!(split_shared("$share/g1").unwrap().is_err());
/// ```
pub fn split_shared(filter: &str) -> Option<Result<(&str, &str), TopicError>> {
    let rest = filter.strip_prefix(SHARED_SUBSCRIPTION_PREFIX)?;
    let Some((group, inner)) = rest.split_once('/') else {
        return Some(Err(TopicError::InvalidSharedSubscription));
    };
    if group.is_empty() || inner.is_empty() || group.contains(['+', '#']) {
        return Some(Err(TopicError::InvalidSharedSubscription));
    }
    Some(Ok((group, inner)))
}

/// The part of a Basic Ingest topic after `$aws/rules/{rule}/`, if `name` is one.
fn strip_basic_ingest(name: &str) -> Option<&str> {
    let rest = name.strip_prefix(BASIC_INGEST_PREFIX)?;
    let (rule, topic) = rest.split_once('/')?;
    (!rule.is_empty()).then_some(topic)
}

fn check_wildcards(filter: &str) -> Result<(), TopicError> {
    let mut levels = filter.split('/').peekable();
    while let Some(level) = levels.next() {
        if level.contains('#') && (level != "#" || levels.peek().is_some()) {
            return Err(TopicError::MisplacedMultiLevelWildcard);
        }
        if level.contains('+') && level != "+" {
            return Err(TopicError::MisplacedSingleLevelWildcard);
        }
    }
    Ok(())
}

/// Check length and separators. In the AWS profile, AWS's own reserved topics (`$aws/...` other
/// than Basic Ingest, whose prefix is stripped before this) have a fixed structure that may need
/// more separators than customer topics (a named shadow's `.../shadow/name/{shadow}/update/accepted`
/// has 8), so only their length is limited.
fn check_size(counted: &str, limits: &Limits) -> Result<(), TopicError> {
    let reserved = limits.aws_exempt_prefixes && counted.starts_with(AWS_RESERVED_PREFIX);
    let slashes = if limits.max_topic_slashes == usize::MAX || reserved {
        0
    } else {
        counted.bytes().filter(|&b| b == b'/').count()
    };
    check_counts(counted.len(), slashes, limits)
}

/// The length and separator limits, given the counted length and separators.
#[inline]
fn check_counts(len: usize, slashes: usize, limits: &Limits) -> Result<(), TopicError> {
    if len > limits.max_topic_len {
        return Err(TopicError::TooLong {
            len,
            max: limits.max_topic_len,
        });
    }
    if slashes > limits.max_topic_slashes {
        return Err(TopicError::TooManySlashes {
            count: slashes,
            max: limits.max_topic_slashes,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters() {
        let l = Limits::mqtt_3_1_1();
        for ok in [
            "#", "+", "a/#", "+/+", "/", "a//b", "+/#", "$SYS/#", "a/+/c",
        ] {
            assert_eq!(validate_topic_filter(ok, &l), Ok(()), "{ok}");
        }
        for (bad, err) in [
            ("", TopicError::Empty),
            ("a/#/b", TopicError::MisplacedMultiLevelWildcard),
            ("#a", TopicError::MisplacedMultiLevelWildcard),
            ("a#", TopicError::MisplacedMultiLevelWildcard),
            ("a+", TopicError::MisplacedSingleLevelWildcard),
            ("+a/b", TopicError::MisplacedSingleLevelWildcard),
            ("a\0b", TopicError::NullCharacter),
            ("$share/+/a", TopicError::InvalidSharedSubscription),
            ("$share/g/", TopicError::InvalidSharedSubscription),
        ] {
            assert_eq!(validate_topic_filter(bad, &l), Err(err), "{bad}");
        }
    }

    #[test]
    fn names() {
        let l = Limits::mqtt_3_1_1();
        assert_eq!(validate_topic_name("", &l), Err(TopicError::Empty));
        assert_eq!(
            validate_topic_name("a/#", &l),
            Err(TopicError::WildcardInName)
        );
        assert_eq!(
            validate_topic_name("a/+", &l),
            Err(TopicError::WildcardInName)
        );
        assert_eq!(validate_topic_name("/", &l), Ok(()));
        assert_eq!(validate_topic_name("$aws/things/x/shadow/get", &l), Ok(()));
    }

    #[test]
    fn aws_limits_count_bytes_and_slashes() {
        let aws = Limits::aws_iot();
        let long = "a".repeat(257);
        assert_eq!(
            validate_topic_name(&long, &aws),
            Err(TopicError::TooLong { len: 257, max: 256 })
        );
        assert_eq!(validate_topic_name(&long[..256], &aws), Ok(()));
        // 128 two-byte characters are 256 bytes; one more is over.
        let wide = "é".repeat(129);
        assert_eq!(
            validate_topic_name(&wide, &aws),
            Err(TopicError::TooLong { len: 258, max: 256 })
        );
        assert_eq!(validate_topic_name("1/2/3/4/5/6/7/8", &aws), Ok(()));
        assert_eq!(
            validate_topic_filter("1/2/3/4/5/6/7/8/#", &aws),
            Err(TopicError::TooManySlashes { count: 8, max: 7 })
        );
        // $share/{group}/ is exempt in the AWS profile, counted in the standard one.
        assert_eq!(
            validate_topic_filter("$share/g/1/2/3/4/5/6/7/8", &aws),
            Ok(())
        );
        let mut strict = Limits::mqtt_3_1_1();
        strict.max_topic_slashes = 7;
        assert_eq!(
            validate_topic_filter("$share/g/1/2/3/4/5/6/7/8", &strict),
            Err(TopicError::TooManySlashes { count: 9, max: 7 })
        );
        // AWS's reserved topics have their own structure: a named shadow's response topic has
        // 8 separators and AWS serves it, so only their length is limited.
        assert_eq!(
            validate_topic_name("$aws/things/t/shadow/name/n/update/accepted", &aws),
            Ok(())
        );
        assert_eq!(
            validate_topic_filter("$aws/things/+/shadow/name/+/update/#", &aws),
            Ok(())
        );
        let long_reserved = format!("$aws/things/{}", "t".repeat(250));
        assert_eq!(
            validate_topic_name(&long_reserved, &aws),
            Err(TopicError::TooLong { len: 262, max: 256 })
        );
    }
}

//! The shadow topics: `$aws/things/{thing}/shadow[/name/{shadow}]/{get|update|delete}[/...]`.

use core::fmt;

/// A shadow request or response operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Operation {
    /// Read the document.
    Get,
    /// Change desired and/or reported state.
    Update,
    /// Delete the shadow.
    Delete,
}

impl Operation {
    /// The topic segment, e.g. `"update"`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Operation::Get => "get",
            Operation::Update => "update",
            Operation::Delete => "delete",
        }
    }
}

/// What a shadow topic is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TopicKind {
    /// A device's request: `.../get`, `.../update`, `.../delete`.
    Request(Operation),
    /// The service's success answer: `.../{op}/accepted`.
    Accepted(Operation),
    /// The service's error answer: `.../{op}/rejected`.
    Rejected(Operation),
    /// `.../update/delta`.
    Delta,
    /// `.../update/documents`.
    Documents,
}

impl TopicKind {
    fn suffix(self) -> (&'static str, Option<&'static str>) {
        match self {
            TopicKind::Request(op) => (op.as_str(), None),
            TopicKind::Accepted(op) => (op.as_str(), Some("accepted")),
            TopicKind::Rejected(op) => (op.as_str(), Some("rejected")),
            TopicKind::Delta => ("update", Some("delta")),
            TopicKind::Documents => ("update", Some("documents")),
        }
    }
}

/// Which shadow: a thing's classic shadow or one of its named shadows.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ShadowKey {
    /// The thing name (1–128 of `[a-zA-Z0-9:_-]`).
    pub thing: String,
    /// The shadow name for a named shadow (1–64 of `[$a-zA-Z0-9:_-]`), `None` for the classic one.
    pub shadow: Option<String>,
}

impl ShadowKey {
    /// The classic shadow of `thing`.
    pub fn classic(thing: impl Into<String>) -> ShadowKey {
        ShadowKey {
            thing: thing.into(),
            shadow: None,
        }
    }

    /// The named shadow `shadow` of `thing`.
    pub fn named(thing: impl Into<String>, shadow: impl Into<String>) -> ShadowKey {
        ShadowKey {
            thing: thing.into(),
            shadow: Some(shadow.into()),
        }
    }

    /// The name AWS uses in "No shadow exists with name" messages: the shadow name for a named
    /// shadow, the thing name for the classic one.
    pub fn display_name(&self) -> &str {
        self.shadow.as_deref().unwrap_or(&self.thing)
    }

    /// The topic of `kind` for this shadow.
    ///
    /// ```
    /// use iot_shadow::{Operation, ShadowKey, TopicKind};
    /// assert_eq!(
    ///     ShadowKey::named("lamp", "color").topic(TopicKind::Accepted(Operation::Update)),
    ///     "$aws/things/lamp/shadow/name/color/update/accepted"
    /// );
    /// assert_eq!(ShadowKey::classic("lamp").topic(TopicKind::Delta), "$aws/things/lamp/shadow/update/delta");
    /// ```
    pub fn topic(&self, kind: TopicKind) -> String {
        let (op, tail) = kind.suffix();
        let mut topic = format!("$aws/things/{}/shadow/", self.thing);
        if let Some(shadow) = &self.shadow {
            topic.push_str("name/");
            topic.push_str(shadow);
            topic.push('/');
        }
        topic.push_str(op);
        if let Some(tail) = tail {
            topic.push('/');
            topic.push_str(tail);
        }
        topic
    }
}

impl fmt::Display for ShadowKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.shadow {
            Some(shadow) => write!(f, "{}/{}", self.thing, shadow),
            None => f.write_str(&self.thing),
        }
    }
}

/// A parsed shadow topic.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ShadowTopic {
    /// Which shadow.
    pub key: ShadowKey,
    /// Which topic of it.
    pub kind: TopicKind,
}

/// Whether `name` is a valid thing name: 1–128 of `[a-zA-Z0-9:_-]`.
pub fn is_valid_thing_name(name: &str) -> bool {
    (1..=128).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b':' | b'_' | b'-'))
}

/// Whether `name` is a valid shadow name: 1–64 of `[$a-zA-Z0-9:_-]`.
pub fn is_valid_shadow_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'$' | b':' | b'_' | b'-'))
}

/// Parse a shadow topic. `None` if `topic` is not one (including invalid thing or shadow names).
///
/// ```
/// use iot_shadow::{parse_topic, Operation, ShadowKey, TopicKind};
/// let t = parse_topic("$aws/things/lamp/shadow/name/color/update").unwrap();
/// assert_eq!(t.key, ShadowKey::named("lamp", "color"));
/// assert_eq!(t.kind, TopicKind::Request(Operation::Update));
/// assert_eq!(parse_topic("$aws/things/lamp/shadow/get/accepted").unwrap().kind,
///            TopicKind::Accepted(Operation::Get));
/// assert!(parse_topic("$aws/things/lamp/shadow/patch").is_none());
/// assert!(parse_topic("cars/lamp/shadow/get").is_none());
/// ```
pub fn parse_topic(topic: &str) -> Option<ShadowTopic> {
    let rest = topic.strip_prefix("$aws/things/")?;
    let (thing, rest) = rest.split_once('/')?;
    let rest = rest.strip_prefix("shadow/")?;
    if !is_valid_thing_name(thing) {
        return None;
    }
    let (shadow, rest) = match rest.strip_prefix("name/") {
        Some(named) => {
            let (shadow, rest) = named.split_once('/')?;
            if !is_valid_shadow_name(shadow) {
                return None;
            }
            (Some(shadow.to_string()), rest)
        }
        None => (None, rest),
    };
    let (op, tail) = match rest.split_once('/') {
        Some((op, tail)) => (op, Some(tail)),
        None => (rest, None),
    };
    let op = match op {
        "get" => Operation::Get,
        "update" => Operation::Update,
        "delete" => Operation::Delete,
        _ => return None,
    };
    let kind = match (op, tail) {
        (op, None) => TopicKind::Request(op),
        (op, Some("accepted")) => TopicKind::Accepted(op),
        (op, Some("rejected")) => TopicKind::Rejected(op),
        (Operation::Update, Some("delta")) => TopicKind::Delta,
        (Operation::Update, Some("documents")) => TopicKind::Documents,
        _ => return None,
    };
    Some(ShadowTopic {
        key: ShadowKey {
            thing: thing.to_string(),
            shadow,
        },
        kind,
    })
}

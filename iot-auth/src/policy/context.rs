//! What is known about the requester when a policy is evaluated, and how `${…}` variables and
//! condition keys read it.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::x509::{CertificateInfo, DnAttribute};

/// The thing attached to the principal whose name equals the client id, as
/// `${iot:Connection.Thing.…}` sees it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ThingContext {
    /// The thing name (= the client id).
    pub name: String,
    /// Its thing type, if any.
    pub type_name: Option<String>,
    /// Its attributes.
    pub attributes: BTreeMap<String, String>,
}

/// The facts about one requester (usually one connection) that policy variables and condition keys
/// read.
///
/// ```
/// use iot_auth::policy::RequestContext;
/// let ctx = RequestContext::for_client("car-1");
/// assert_eq!(ctx.client_id.as_deref(), Some("car-1"));
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RequestContext {
    /// `iot:ClientId`: the MQTT client id (absent for HTTPS).
    pub client_id: Option<String>,
    /// `aws:SourceIp`: the peer address, without port.
    pub source_ip: Option<String>,
    /// The attached thing named like the client id, if there is one.
    pub thing: Option<ThingContext>,
    /// The client certificate, for certificate-authenticated requests.
    pub certificate: Option<Arc<CertificateInfo>>,
    /// `iot:ConnectAttributes` (`PersistentConnect`, `LastWill`), for `iot:Connect`.
    pub connect_attributes: Vec<String>,
    /// `iot:LastWillTopic`, for `iot:Connect` with a will.
    pub last_will_topic: Option<String>,
}

impl RequestContext {
    /// A context that knows only the client id.
    pub fn for_client(client_id: &str) -> Self {
        RequestContext {
            client_id: Some(client_id.to_owned()),
            ..RequestContext::default()
        }
    }
}

/// Which value of a multi-valued certificate field: `X` (the first), `X.N` (0-based), `X.List`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Index {
    First,
    Nth(usize),
    List,
}

/// A variable or condition key, parsed from its name (without `${` `}`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Variable {
    ClientId,
    SourceIp,
    ThingName,
    ThingTypeName,
    ThingAttribute(String),
    ThingIsAttached,
    CertName {
        issuer: bool,
        attribute: DnAttribute,
        index: Index,
    },
    CertAltName {
        issuer: bool,
        kind: String,
        index: Index,
    },
    CertSerialNumber,
    CertAvailableKeys,
    ConnectAttributes,
    LastWillTopic,
    /// A name we do not know: never resolves.
    Unknown,
}

fn strip_prefix_ci<'a>(text: &'a str, prefix: &str) -> Option<&'a str> {
    let head = text.get(..prefix.len())?;
    if head.eq_ignore_ascii_case(prefix) {
        text.get(prefix.len()..)
    } else {
        None
    }
}

impl Variable {
    /// Parses a variable or condition-key name such as `iot:Connection.Thing.Attributes[color]`.
    pub(crate) fn parse(name: &str) -> Variable {
        let name = name.trim();
        if name.eq_ignore_ascii_case("iot:ClientId") {
            return Variable::ClientId;
        }
        if name.eq_ignore_ascii_case("aws:SourceIp") {
            return Variable::SourceIp;
        }
        if name.eq_ignore_ascii_case("iot:ConnectAttributes") {
            return Variable::ConnectAttributes;
        }
        if name.eq_ignore_ascii_case("iot:LastWillTopic") {
            return Variable::LastWillTopic;
        }
        if let Some(rest) = strip_prefix_ci(name, "iot:Connection.Thing.") {
            if rest.eq_ignore_ascii_case("ThingName") {
                return Variable::ThingName;
            }
            if rest.eq_ignore_ascii_case("ThingTypeName") {
                return Variable::ThingTypeName;
            }
            if rest.eq_ignore_ascii_case("IsAttached") {
                return Variable::ThingIsAttached;
            }
            if let Some(attr) = strip_prefix_ci(rest, "Attributes[")
                && let Some(key) = attr.strip_suffix(']')
            {
                return Variable::ThingAttribute(key.to_owned());
            }
            return Variable::Unknown;
        }
        if let Some(rest) = strip_prefix_ci(name, "iot:Certificate.") {
            if rest.eq_ignore_ascii_case("SerialNumber") {
                return Variable::CertSerialNumber;
            }
            if rest.eq_ignore_ascii_case("AvailableKeys") {
                return Variable::CertAvailableKeys;
            }
            let (issuer, field) = if let Some(f) = strip_prefix_ci(rest, "Subject.") {
                (false, f)
            } else if let Some(f) = strip_prefix_ci(rest, "Issuer.") {
                (true, f)
            } else {
                return Variable::Unknown;
            };
            if let Some(alt) = strip_prefix_ci(field, "AlternativeName.") {
                let (kind, index) = split_index(alt);
                let known = [
                    "RFC822Name",
                    "DNSName",
                    "DirectoryName",
                    "UniformResourceIdentifier",
                    "IPAddress",
                ]
                .into_iter()
                .find(|k| k.eq_ignore_ascii_case(kind));
                return match (known, index) {
                    (Some(kind), Some(index)) => Variable::CertAltName {
                        issuer,
                        kind: kind.to_owned(),
                        index,
                    },
                    _ => Variable::Unknown,
                };
            }
            let (attr, index) = split_index(field);
            let attribute = DnAttribute::ALL
                .into_iter()
                .find(|a| a.policy_name().eq_ignore_ascii_case(attr));
            return match (attribute, index) {
                (Some(attribute), Some(index)) => Variable::CertName {
                    issuer,
                    attribute,
                    index,
                },
                _ => Variable::Unknown,
            };
        }
        Variable::Unknown
    }

    /// The values of this key in `ctx`, or `None` when the key is absent.
    pub(crate) fn values(&self, ctx: &RequestContext) -> Option<Vec<String>> {
        let one = |v: Option<&str>| v.map(|s| vec![s.to_owned()]);
        match self {
            Variable::ClientId => one(ctx.client_id.as_deref()),
            Variable::SourceIp => one(ctx.source_ip.as_deref()),
            Variable::ThingName => one(ctx.thing.as_ref().map(|t| t.name.as_str())),
            Variable::ThingTypeName => one(ctx.thing.as_ref().and_then(|t| t.type_name.as_deref())),
            Variable::ThingAttribute(key) => one(ctx
                .thing
                .as_ref()
                .and_then(|t| t.attributes.get(key))
                .map(String::as_str)),
            Variable::ThingIsAttached => ctx
                .client_id
                .as_ref()
                .map(|_| vec![ctx.thing.is_some().to_string()]),
            Variable::CertName {
                issuer,
                attribute,
                index,
            } => {
                let cert = ctx.certificate.as_ref()?;
                let name = if *issuer {
                    cert.issuer()
                } else {
                    cert.subject()
                };
                pick(name.values(*attribute), *index)
            }
            Variable::CertAltName {
                issuer,
                kind,
                index,
            } => {
                let cert = ctx.certificate.as_ref()?;
                let names = if *issuer {
                    cert.issuer_alt_names()
                } else {
                    cert.subject_alt_names()
                };
                pick(names.by_policy_name(kind)?, *index)
            }
            Variable::CertSerialNumber => one(ctx.certificate.as_ref().map(|c| c.serial_number())),
            Variable::CertAvailableKeys => ctx.certificate.as_ref().map(|c| available_keys(c)),
            Variable::ConnectAttributes => Some(ctx.connect_attributes.clone()),
            Variable::LastWillTopic => one(ctx.last_will_topic.as_deref()),
            Variable::Unknown => None,
        }
    }

    /// The single value a `${…}` in a resource stands for, if it resolves to one usable value.
    pub(crate) fn resolve_single(&self, ctx: &RequestContext) -> Option<String> {
        if matches!(
            self,
            Variable::CertName {
                index: Index::List,
                ..
            } | Variable::CertAltName {
                index: Index::List,
                ..
            } | Variable::CertAvailableKeys
                | Variable::ConnectAttributes
        ) {
            return None;
        }
        let mut values = self.values(ctx)?;
        if values.len() != 1 {
            return None;
        }
        let value = values.pop()?;
        let usable = value.len() <= 1024
            && !value
                .chars()
                .any(|c| matches!(c, '*' | '$' | '+' | '?' | '#'));
        usable.then_some(value)
    }
}

fn split_index(field: &str) -> (&str, Option<Index>) {
    match field.rsplit_once('.') {
        None => (field, Some(Index::First)),
        Some((head, tail)) if tail.eq_ignore_ascii_case("List") => (head, Some(Index::List)),
        Some((head, tail)) => match tail.parse::<usize>() {
            Ok(n) => (head, Some(Index::Nth(n))),
            Err(_) => (field, None),
        },
    }
}

fn pick(values: &[String], index: Index) -> Option<Vec<String>> {
    match index {
        Index::First => values.first().map(|v| vec![v.clone()]),
        Index::Nth(n) => values.get(n).map(|v| vec![v.clone()]),
        Index::List => (!values.is_empty()).then(|| values.to_vec()),
    }
}

fn available_keys(cert: &CertificateInfo) -> Vec<String> {
    let mut keys = Vec::new();
    for (side, name) in [("Subject", cert.subject()), ("Issuer", cert.issuer())] {
        for attribute in name.attributes() {
            keys.push(format!("{side}.{attribute}"));
        }
    }
    for (side, names) in [
        ("Subject", cert.subject_alt_names()),
        ("Issuer", cert.issuer_alt_names()),
    ] {
        for kind in names.present() {
            keys.push(format!("{side}.AlternativeName.{kind}"));
        }
    }
    keys.push("SerialNumber".to_owned());
    keys
}

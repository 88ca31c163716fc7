//! Distinguished names and subject alternative names as policy variables see them.

use std::collections::BTreeMap;
use std::fmt;

use x509_cert::der::asn1::{
    BmpString, Ia5StringRef, ObjectIdentifier, PrintableStringRef, TeletexStringRef,
};
use x509_cert::der::{Any, Tag, Tagged};
use x509_cert::ext::pkix::name::GeneralName;
use x509_cert::name::Name;

/// A distinguished-name attribute AWS IoT exposes as `${iot:Certificate.Subject.<X>}` or
/// `${iot:Certificate.Issuer.<X>}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum DnAttribute {
    /// `CN`, OID 2.5.4.3.
    CommonName,
    /// `SN`, OID 2.5.4.4.
    Surname,
    /// `serialNumber`, OID 2.5.4.5.
    SerialNumber,
    /// `C`, OID 2.5.4.6.
    Country,
    /// `ST`, OID 2.5.4.8.
    State,
    /// `O`, OID 2.5.4.10.
    Organization,
    /// `OU`, OID 2.5.4.11.
    OrganizationalUnit,
    /// `title`, OID 2.5.4.12.
    Title,
    /// `GN`, OID 2.5.4.42.
    GivenName,
    /// `initials`, OID 2.5.4.43.
    Initials,
    /// `generationQualifier`, OID 2.5.4.44.
    GenerationQualifier,
    /// `dnQualifier`, OID 2.5.4.46.
    DistinguishedNameQualifier,
    /// `pseudonym`, OID 2.5.4.65.
    Pseudonym,
}

impl DnAttribute {
    /// Every attribute, in the order AWS documents them.
    pub const ALL: [DnAttribute; 13] = [
        DnAttribute::CommonName,
        DnAttribute::Organization,
        DnAttribute::OrganizationalUnit,
        DnAttribute::Country,
        DnAttribute::State,
        DnAttribute::SerialNumber,
        DnAttribute::Title,
        DnAttribute::Surname,
        DnAttribute::GivenName,
        DnAttribute::Initials,
        DnAttribute::Pseudonym,
        DnAttribute::GenerationQualifier,
        DnAttribute::DistinguishedNameQualifier,
    ];

    /// The name used in policy variables, e.g. `CommonName`.
    ///
    /// ```
    /// use iot_auth::x509::DnAttribute;
    /// assert_eq!(DnAttribute::OrganizationalUnit.policy_name(), "OrganizationalUnit");
    /// assert_eq!(DnAttribute::from_policy_name("CommonName"), Some(DnAttribute::CommonName));
    /// ```
    pub fn policy_name(self) -> &'static str {
        match self {
            DnAttribute::CommonName => "CommonName",
            DnAttribute::Surname => "Surname",
            DnAttribute::SerialNumber => "SerialNumber",
            DnAttribute::Country => "Country",
            DnAttribute::State => "State",
            DnAttribute::Organization => "Organization",
            DnAttribute::OrganizationalUnit => "OrganizationalUnit",
            DnAttribute::Title => "Title",
            DnAttribute::GivenName => "GivenName",
            DnAttribute::Initials => "Initials",
            DnAttribute::GenerationQualifier => "GenerationQualifier",
            DnAttribute::DistinguishedNameQualifier => "DistinguishedNameQualifier",
            DnAttribute::Pseudonym => "Pseudonym",
        }
    }

    /// The attribute a policy-variable name designates.
    pub fn from_policy_name(name: &str) -> Option<Self> {
        DnAttribute::ALL
            .into_iter()
            .find(|attribute| attribute.policy_name() == name)
    }

    /// The attribute an X.520 OID designates, if AWS exposes it.
    pub fn from_oid(oid: &ObjectIdentifier) -> Option<Self> {
        let arcs: Vec<u32> = oid.arcs().collect();
        match arcs.as_slice() {
            [2, 5, 4, 3] => Some(DnAttribute::CommonName),
            [2, 5, 4, 4] => Some(DnAttribute::Surname),
            [2, 5, 4, 5] => Some(DnAttribute::SerialNumber),
            [2, 5, 4, 6] => Some(DnAttribute::Country),
            [2, 5, 4, 8] => Some(DnAttribute::State),
            [2, 5, 4, 10] => Some(DnAttribute::Organization),
            [2, 5, 4, 11] => Some(DnAttribute::OrganizationalUnit),
            [2, 5, 4, 12] => Some(DnAttribute::Title),
            [2, 5, 4, 42] => Some(DnAttribute::GivenName),
            [2, 5, 4, 43] => Some(DnAttribute::Initials),
            [2, 5, 4, 44] => Some(DnAttribute::GenerationQualifier),
            [2, 5, 4, 46] => Some(DnAttribute::DistinguishedNameQualifier),
            [2, 5, 4, 65] => Some(DnAttribute::Pseudonym),
            _ => None,
        }
    }
}

impl fmt::Display for DnAttribute {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.policy_name())
    }
}

/// The attributes of a distinguished name that policy variables can name, each with its values in
/// certificate order (a name may carry, say, two `OU`s).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DistinguishedName {
    values: BTreeMap<DnAttribute, Vec<String>>,
}

impl DistinguishedName {
    /// Reads the attributes AWS exposes from an X.509 name; others and undecodable values are skipped.
    pub fn from_name(name: &Name) -> Self {
        let mut values: BTreeMap<DnAttribute, Vec<String>> = BTreeMap::new();
        for rdn in name.0.iter() {
            for atv in rdn.0.iter() {
                if let (Some(attribute), Some(text)) = (
                    DnAttribute::from_oid(&atv.oid),
                    directory_string(&atv.value),
                ) {
                    values.entry(attribute).or_default().push(text);
                }
            }
        }
        DistinguishedName { values }
    }

    /// All values of one attribute, in certificate order.
    pub fn values(&self, attribute: DnAttribute) -> &[String] {
        self.values.get(&attribute).map_or(&[], Vec::as_slice)
    }

    /// The first value of one attribute.
    pub fn first(&self, attribute: DnAttribute) -> Option<&str> {
        self.values(attribute).first().map(String::as_str)
    }

    /// The attributes present, each once.
    pub fn attributes(&self) -> impl Iterator<Item = DnAttribute> + '_ {
        self.values.keys().copied()
    }
}

/// Which subject (or issuer) alternative names a certificate carries, as `…AlternativeName.<X>`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AlternativeNames {
    /// `RFC822Name` (e-mail addresses).
    pub rfc822_names: Vec<String>,
    /// `DNSName`.
    pub dns_names: Vec<String>,
    /// `DirectoryName`, each rendered in RFC 4514 form.
    pub directory_names: Vec<String>,
    /// `UniformResourceIdentifier`.
    pub uris: Vec<String>,
    /// `IPAddress`, in the usual text form.
    pub ip_addresses: Vec<String>,
}

impl AlternativeNames {
    /// Collects the names of a `GeneralNames` list; other kinds are skipped.
    pub fn from_general_names(names: &[GeneralName]) -> Self {
        let mut out = AlternativeNames::default();
        for name in names {
            match name {
                GeneralName::Rfc822Name(s) => out.rfc822_names.push(s.to_string()),
                GeneralName::DnsName(s) => out.dns_names.push(s.to_string()),
                GeneralName::UniformResourceIdentifier(s) => out.uris.push(s.to_string()),
                GeneralName::DirectoryName(n) => out.directory_names.push(n.to_string()),
                GeneralName::IpAddress(octets) => {
                    if let Some(ip) = ip_text(octets.as_bytes()) {
                        out.ip_addresses.push(ip);
                    }
                }
                _ => {}
            }
        }
        out
    }

    /// The values for a policy-variable name (`RFC822Name`, `DNSName`, `DirectoryName`,
    /// `UniformResourceIdentifier`, `IPAddress`), or `None` for another name.
    pub fn by_policy_name(&self, name: &str) -> Option<&[String]> {
        match name {
            "RFC822Name" => Some(&self.rfc822_names),
            "DNSName" => Some(&self.dns_names),
            "DirectoryName" => Some(&self.directory_names),
            "UniformResourceIdentifier" => Some(&self.uris),
            "IPAddress" => Some(&self.ip_addresses),
            _ => None,
        }
    }

    /// The policy-variable names that have at least one value.
    pub fn present(&self) -> impl Iterator<Item = &'static str> + '_ {
        [
            "RFC822Name",
            "DNSName",
            "DirectoryName",
            "UniformResourceIdentifier",
            "IPAddress",
        ]
        .into_iter()
        .filter(|name| self.by_policy_name(name).is_some_and(|v| !v.is_empty()))
    }
}

fn ip_text(octets: &[u8]) -> Option<String> {
    if let Ok(v4) = <[u8; 4]>::try_from(octets) {
        return Some(std::net::Ipv4Addr::from(v4).to_string());
    }
    if let Ok(v6) = <[u8; 16]>::try_from(octets) {
        return Some(std::net::Ipv6Addr::from(v6).to_string());
    }
    None
}

/// Decodes a DirectoryString (and the IA5/Printable strings some attributes use) to text.
fn directory_string(value: &Any) -> Option<String> {
    match value.tag() {
        Tag::Utf8String => value.decode_as::<String>().ok(),
        Tag::PrintableString => value
            .decode_as::<PrintableStringRef<'_>>()
            .ok()
            .map(|s| s.to_string()),
        Tag::Ia5String => value
            .decode_as::<Ia5StringRef<'_>>()
            .ok()
            .map(|s| s.to_string()),
        Tag::TeletexString => value
            .decode_as::<TeletexStringRef<'_>>()
            .ok()
            .map(|s| s.to_string()),
        Tag::BmpString => value.decode_as::<BmpString>().ok().map(|s| s.to_string()),
        _ => None,
    }
}

//! The Greengrass core devices the cloud knows, as AWS IoT Greengrass V2 keeps them for cloud
//! discovery: per core thing, its connectivity information (where client devices reach its local
//! MQTT broker), the CA certificates it uploaded (what client devices trust to verify it), and
//! the client device things associated with it (`BatchAssociateClientDeviceWithCoreDevice`).
//!
//! Sans-IO: every change takes the time as an argument and a predicate saying which things exist
//! in the registry. Saved as one JSON document in the store's meta table (committed with the
//! engine turn that changed it) and loaded at broker start.
//!
//! Bounds (ours unless said; a request past one is refused, nothing is evicted):
//! [`MAX_CORE_DEVICES`] cores with a record, [`MAX_CONNECTIVITY_ENTRIES`] endpoints and
//! [`MAX_CERTIFICATE_AUTHORITIES`] CAs (each at most [`MAX_CA_PEM_BYTES`]) per core,
//! [`MAX_CLIENT_DEVICES_PER_CORE`] associations per core, [`MAX_CORES_PER_CLIENT_DEVICE`] cores
//! per client device (AWS's V1 discovery: a device is in at most 10 groups) and
//! [`MAX_BATCH_ENTRIES`] things per batch call (AWS's API). The whole document stays under a few
//! megabytes.
//!
//! ```
//! use iot_examples::store::discover_response::ConnectivityInfo;
//! use iot_examples::store::greengrass::CoreDevices;
//!
//! let exists = |thing: &str| ["core-1", "car-1"].contains(&thing);
//! let mut cores = CoreDevices::default();
//! let errors = cores.batch_associate("core-1", &["car-1".into(), "car-9".into()], exists, 1_700_000_000)?;
//! assert_eq!(errors.len(), 1); // car-9 is not a thing
//! let lan = ConnectivityInfo { id: "lan".into(), host_address: "10.0.0.2".into(), port_number: 8883, metadata: String::new() };
//! assert_eq!(cores.update_connectivity_info("core-1", vec![lan], exists)?, "1");
//! let answer = cores.discover("car-1", |core| format!("arn:aws:iot:us-east-1:123456789012:thing/{core}")).unwrap();
//! assert_eq!(answer.groups[0].group_id, "greengrassV2-coreDevice-core-1");
//! assert!(cores.discover("core-1", |c| c.to_owned()).is_none()); // associated with nothing
//! # Ok::<(), iot_examples::store::greengrass::CoreDeviceError>(())
//! ```

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use serde::{Deserialize, Serialize};

use super::discover_response::{
    ConnectivityInfo, DiscoverResponse, DiscoveredCore, DiscoveredGroup, group_id,
};
use super::{Store, StoreError};

/// The meta-table key the document is saved under.
const META_KEY: &str = "greengrass_core_devices";

/// Core devices with a record (connectivity, CAs or associations).
pub const MAX_CORE_DEVICES: usize = 100;
/// Endpoints per core.
pub const MAX_CONNECTIVITY_ENTRIES: usize = 10;
/// CA certificates per core.
pub const MAX_CERTIFICATE_AUTHORITIES: usize = 10;
/// Bytes of one CA certificate's PEM text.
pub const MAX_CA_PEM_BYTES: usize = 16 * 1024;
/// Client devices associated with one core.
pub const MAX_CLIENT_DEVICES_PER_CORE: usize = 1_000;
/// Cores one client device may be associated with (AWS V1: a device is in at most 10 groups).
pub const MAX_CORES_PER_CLIENT_DEVICE: usize = 10;
/// Things in one batch (dis)associate call (AWS: 1 to 100 entries).
pub const MAX_BATCH_ENTRIES: usize = 100;
/// Characters of a connectivity entry's id, host address and metadata.
pub const MAX_CONNECTIVITY_FIELD_CHARS: usize = 256;
/// Characters of a thing name (AWS IoT: 1 to 128).
const MAX_THING_NAME_CHARS: usize = 128;

/// The live core devices, shared by the HTTPS handlers (reads) and the engine thread (changes).
pub type SharedCoreDevices = Arc<RwLock<CoreDevices>>;

/// Why a Greengrass request was refused; each maps to an AWS error type.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CoreDeviceError {
    /// The core device's thing is not in the registry (`ResourceNotFoundException`).
    #[error("Thing {0} not found")]
    ThingNotFound(String),
    /// The request is malformed (`ValidationException`).
    #[error("{0}")]
    Validation(String),
    /// A bound was reached (`ServiceQuotaExceededException`).
    #[error("{0}")]
    QuotaExceeded(String),
}

/// One failed entry of a batch (dis)association, as AWS's `errorEntries` carry it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EntryError {
    /// The client device thing.
    pub thing_name: String,
    /// The error code (`ResourceNotFoundException`, `ValidationException`,
    /// `ServiceQuotaExceededException`).
    pub code: String,
    /// What was wrong.
    pub message: String,
}

impl EntryError {
    fn new(thing_name: &str, code: &str, message: String) -> Self {
        EntryError {
            thing_name: thing_name.to_owned(),
            code: code.to_owned(),
            message,
        }
    }
}

/// What the cloud holds for one core device.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CoreDevice {
    /// Its endpoints (empty until it or an operator reports some).
    #[serde(default)]
    pub connectivity_info: Vec<ConnectivityInfo>,
    /// Bumped by every connectivity update; sent as `Version`.
    #[serde(default)]
    pub connectivity_version: u64,
    /// The PEM CA certificates it uploaded.
    #[serde(default)]
    pub certificate_authorities: Vec<String>,
    /// Associated client device things → when they were associated (Unix seconds).
    #[serde(default)]
    pub client_devices: BTreeMap<String, u64>,
}

/// Every core device the cloud knows, by core thing name.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CoreDevices {
    #[serde(default)]
    core_devices: BTreeMap<String, CoreDevice>,
}

/// AWS IoT's thing-name rule: 1 to 128 of `A-Z a-z 0-9 : _ -`.
fn valid_thing_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_THING_NAME_CHARS
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b":_-".contains(&b))
}

/// Checks a batch's size and the core.
fn check_batch(
    core: &str,
    things: &[String],
    exists: &impl Fn(&str) -> bool,
) -> Result<(), CoreDeviceError> {
    if things.is_empty() || things.len() > MAX_BATCH_ENTRIES {
        return Err(CoreDeviceError::Validation(format!(
            "entries must hold 1 to {MAX_BATCH_ENTRIES} client devices"
        )));
    }
    if !exists(core) {
        return Err(CoreDeviceError::ThingNotFound(core.to_owned()));
    }
    Ok(())
}

/// Checks one connectivity entry's fields.
fn check_connectivity(info: &ConnectivityInfo) -> Result<(), CoreDeviceError> {
    let field = |name: &str, value: &str, required: bool| {
        if (required && value.is_empty()) || value.chars().count() > MAX_CONNECTIVITY_FIELD_CHARS {
            let need = if required { "1" } else { "0" };
            return Err(CoreDeviceError::Validation(format!(
                "{name} must have {need} to {MAX_CONNECTIVITY_FIELD_CHARS} characters"
            )));
        }
        Ok(())
    };
    field("Id", &info.id, true)?;
    field("HostAddress", &info.host_address, true)?;
    field("Metadata", &info.metadata, false)?;
    if info.host_address.chars().any(char::is_whitespace) {
        return Err(CoreDeviceError::Validation(
            "HostAddress must be an IP address or a DNS name".into(),
        ));
    }
    if info.port_number == 0 {
        return Err(CoreDeviceError::Validation(
            "PortNumber must be 1 to 65535".into(),
        ));
    }
    Ok(())
}

/// Checks that `pem` holds X.509 certificates in PEM and nothing else of use.
fn check_ca_pem(pem: &str) -> Result<(), CoreDeviceError> {
    if pem.len() > MAX_CA_PEM_BYTES {
        return Err(CoreDeviceError::Validation(format!(
            "a CA certificate is limited to {MAX_CA_PEM_BYTES} bytes of PEM"
        )));
    }
    let mut count = 0usize;
    for cert in CertificateDer::pem_slice_iter(pem.as_bytes()) {
        let cert = cert
            .map_err(|_| CoreDeviceError::Validation("a CA certificate is not valid PEM".into()))?;
        if cert.is_empty() {
            return Err(CoreDeviceError::Validation(
                "a CA certificate is empty".into(),
            ));
        }
        count += 1;
    }
    if count == 0 {
        return Err(CoreDeviceError::Validation(
            "a CA certificate must be a PEM CERTIFICATE block".into(),
        ));
    }
    Ok(())
}

impl CoreDevices {
    /// Loads the document from the store (empty on a new store).
    pub fn load(store: &Store) -> Result<CoreDevices, StoreError> {
        match store.meta_json(META_KEY)? {
            Some(value) => serde_json::from_value(value).map_err(|_| StoreError::Corrupt(META_KEY)),
            None => Ok(CoreDevices::default()),
        }
    }

    /// Records the document in the store (committed with its next commit).
    pub fn save(&self, store: &mut Store) {
        match serde_json::to_value(self) {
            Ok(value) => store.put_meta_json(META_KEY, &value),
            // Plain strings and numbers always serialize; nothing to record otherwise.
            Err(error) => tracing::error!(%error, "Greengrass core devices not saved"),
        }
    }

    /// The record of `core`, if it has one.
    pub fn core(&self, core: &str) -> Option<&CoreDevice> {
        self.core_devices.get(core)
    }

    /// Core thing names with a record, sorted.
    pub fn core_names(&self) -> impl Iterator<Item = &str> {
        self.core_devices.keys().map(String::as_str)
    }

    /// The record of `core`, made if it has none (within [`MAX_CORE_DEVICES`]).
    fn core_mut(&mut self, core: &str) -> Result<&mut CoreDevice, CoreDeviceError> {
        if !self.core_devices.contains_key(core) && self.core_devices.len() >= MAX_CORE_DEVICES {
            return Err(CoreDeviceError::QuotaExceeded(format!(
                "at most {MAX_CORE_DEVICES} core devices are kept"
            )));
        }
        Ok(self.core_devices.entry(core.to_owned()).or_default())
    }

    /// How many cores `thing` is associated with.
    fn cores_of(&self, thing: &str) -> usize {
        self.core_devices
            .values()
            .filter(|c| c.client_devices.contains_key(thing))
            .count()
    }

    /// `BatchAssociateClientDeviceWithCoreDevice`: associates each of `things` with `core`
    /// (associating again is a no-op keeping the first time). Returns the entries that failed
    /// (unknown thing, invalid name, a bound reached); the others are associated. Refused whole
    /// when the batch is empty or too large, or `core` is not a thing.
    pub fn batch_associate(
        &mut self,
        core: &str,
        things: &[String],
        exists: impl Fn(&str) -> bool,
        now_secs: u64,
    ) -> Result<Vec<EntryError>, CoreDeviceError> {
        check_batch(core, things, &exists)?;
        let mut errors = Vec::new();
        for thing in things {
            if !valid_thing_name(thing) {
                errors.push(EntryError::new(
                    thing,
                    "ValidationException",
                    format!("{thing:?} is not a valid thing name"),
                ));
                continue;
            }
            if !exists(thing) {
                errors.push(EntryError::new(
                    thing,
                    "ResourceNotFoundException",
                    format!("Thing {thing} not found"),
                ));
                continue;
            }
            let already = self
                .core_devices
                .get(core)
                .is_some_and(|c| c.client_devices.contains_key(thing));
            if already {
                continue;
            }
            if self.cores_of(thing) >= MAX_CORES_PER_CLIENT_DEVICE {
                errors.push(EntryError::new(
                    thing,
                    "ServiceQuotaExceededException",
                    format!(
                        "a client device is associated with at most {MAX_CORES_PER_CLIENT_DEVICE} core devices"
                    ),
                ));
                continue;
            }
            let record = match self.core_mut(core) {
                Ok(record) => record,
                Err(error) => {
                    errors.push(EntryError::new(
                        thing,
                        "ServiceQuotaExceededException",
                        error.to_string(),
                    ));
                    continue;
                }
            };
            if record.client_devices.len() >= MAX_CLIENT_DEVICES_PER_CORE {
                errors.push(EntryError::new(
                    thing,
                    "ServiceQuotaExceededException",
                    format!(
                        "a core device has at most {MAX_CLIENT_DEVICES_PER_CORE} client devices"
                    ),
                ));
                continue;
            }
            record.client_devices.insert(thing.clone(), now_secs);
        }
        Ok(errors)
    }

    /// `BatchDisassociateClientDeviceFromCoreDevice`: removes each of `things` from `core`
    /// (removing one not associated is a no-op). Returns the entries that failed (unknown
    /// thing). Refused whole as [`batch_associate`](Self::batch_associate) is.
    pub fn batch_disassociate(
        &mut self,
        core: &str,
        things: &[String],
        exists: impl Fn(&str) -> bool,
    ) -> Result<Vec<EntryError>, CoreDeviceError> {
        check_batch(core, things, &exists)?;
        let mut errors = Vec::new();
        for thing in things {
            let removed = self
                .core_devices
                .get_mut(core)
                .and_then(|c| c.client_devices.remove(thing))
                .is_some();
            if !removed && !exists(thing) {
                errors.push(EntryError::new(
                    thing,
                    "ResourceNotFoundException",
                    format!("Thing {thing} not found"),
                ));
            }
        }
        self.drop_if_empty(core);
        Ok(errors)
    }

    /// Forgets a core's record once nothing is left in it.
    fn drop_if_empty(&mut self, core: &str) {
        if self.core_devices.get(core) == Some(&CoreDevice::default()) {
            self.core_devices.remove(core);
        }
    }

    /// `ListClientDevicesAssociatedWithCoreDevice`: `(thing, associated at)` in name order.
    pub fn associated_client_devices(
        &self,
        core: &str,
        exists: impl Fn(&str) -> bool,
    ) -> Result<Vec<(String, u64)>, CoreDeviceError> {
        if !exists(core) {
            return Err(CoreDeviceError::ThingNotFound(core.to_owned()));
        }
        Ok(self
            .core_devices
            .get(core)
            .map(|c| {
                c.client_devices
                    .iter()
                    .map(|(t, at)| (t.clone(), *at))
                    .collect()
            })
            .unwrap_or_default())
    }

    /// `UpdateConnectivityInfo`: replaces `core`'s endpoints (an empty list clears them).
    /// Returns the new version. Entries are checked: 1 to [`MAX_CONNECTIVITY_FIELD_CHARS`]
    /// characters of id and host, a port 1–65535, ids unique, at most
    /// [`MAX_CONNECTIVITY_ENTRIES`].
    pub fn update_connectivity_info(
        &mut self,
        core: &str,
        entries: Vec<ConnectivityInfo>,
        exists: impl Fn(&str) -> bool,
    ) -> Result<String, CoreDeviceError> {
        if !exists(core) {
            return Err(CoreDeviceError::ThingNotFound(core.to_owned()));
        }
        if entries.len() > MAX_CONNECTIVITY_ENTRIES {
            return Err(CoreDeviceError::Validation(format!(
                "ConnectivityInfo holds at most {MAX_CONNECTIVITY_ENTRIES} entries"
            )));
        }
        for (i, entry) in entries.iter().enumerate() {
            check_connectivity(entry)?;
            if entries.iter().take(i).any(|e| e.id == entry.id) {
                return Err(CoreDeviceError::Validation(format!(
                    "Id {:?} appears twice",
                    entry.id
                )));
            }
        }
        let record = self.core_mut(core)?;
        record.connectivity_info = entries;
        record.connectivity_version = record.connectivity_version.saturating_add(1);
        Ok(record.connectivity_version.to_string())
    }

    /// `GetConnectivityInfo`: `core`'s endpoints (none when it reported none).
    pub fn connectivity_info(
        &self,
        core: &str,
        exists: impl Fn(&str) -> bool,
    ) -> Result<&[ConnectivityInfo], CoreDeviceError> {
        if !exists(core) {
            return Err(CoreDeviceError::ThingNotFound(core.to_owned()));
        }
        Ok(self
            .core_devices
            .get(core)
            .map(|c| c.connectivity_info.as_slice())
            .unwrap_or_default())
    }

    /// `PutCertificateAuthorities`: replaces the CA certificates `core` presents to client
    /// devices (1 to [`MAX_CERTIFICATE_AUTHORITIES`] PEM certificates).
    pub fn put_certificate_authorities(
        &mut self,
        core: &str,
        pems: Vec<String>,
        exists: impl Fn(&str) -> bool,
    ) -> Result<(), CoreDeviceError> {
        if !exists(core) {
            return Err(CoreDeviceError::ThingNotFound(core.to_owned()));
        }
        if pems.is_empty() || pems.len() > MAX_CERTIFICATE_AUTHORITIES {
            return Err(CoreDeviceError::Validation(format!(
                "coreDeviceCertificates must hold 1 to {MAX_CERTIFICATE_AUTHORITIES} certificates"
            )));
        }
        for pem in &pems {
            check_ca_pem(pem)?;
        }
        self.core_mut(core)?.certificate_authorities = pems;
        Ok(())
    }

    /// `Discover` for client device `thing`: one group per core it is associated with that has
    /// at least one endpoint, in core-name order; `None` when there is none (AWS answers 404
    /// "The thing provided for discovery was not found"). `thing_arn` names a core's thing ARN.
    pub fn discover(
        &self,
        thing: &str,
        thing_arn: impl Fn(&str) -> String,
    ) -> Option<DiscoverResponse> {
        let groups: Vec<DiscoveredGroup> = self
            .core_devices
            .iter()
            .filter(|(_, c)| {
                c.client_devices.contains_key(thing) && !c.connectivity_info.is_empty()
            })
            .map(|(name, c)| DiscoveredGroup {
                group_id: group_id(name),
                cores: vec![DiscoveredCore {
                    thing_arn: thing_arn(name),
                    connectivity: c.connectivity_info.clone(),
                }],
                cas: c.certificate_authorities.clone(),
            })
            .collect();
        (!groups.is_empty()).then_some(DiscoverResponse { groups })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;

    const NOW: u64 = 1_700_000_000;

    fn exists(thing: &str) -> bool {
        thing.starts_with("core") || thing.starts_with("car")
    }

    fn names(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| (*s).to_owned()).collect()
    }

    fn lan(id: &str, port: u16) -> ConnectivityInfo {
        ConnectivityInfo {
            id: id.into(),
            host_address: "192.168.1.5".into(),
            port_number: port,
            metadata: String::new(),
        }
    }

    fn arn(core: &str) -> String {
        format!("arn:aws:iot:us-east-1:123456789012:thing/{core}")
    }

    /// A real certificate (the development CA's kind), made by the provisioning code.
    fn ca_pem() -> String {
        iot_auth::provision::CertificateAuthority::generate("test CA", NOW as i64)
            .unwrap()
            .certificate_pem()
    }

    #[test]
    fn association_reports_unknown_and_invalid_things_and_keeps_the_others() {
        let mut cores = CoreDevices::default();
        let errors = cores
            .batch_associate(
                "core-1",
                &names(&["car-1", "ghost", "bad name"]),
                exists,
                NOW,
            )
            .unwrap();
        let codes: Vec<(&str, &str)> = errors
            .iter()
            .map(|e| (e.thing_name.as_str(), e.code.as_str()))
            .collect();
        assert_eq!(
            codes,
            [
                ("ghost", "ResourceNotFoundException"),
                ("bad name", "ValidationException")
            ]
        );
        assert_eq!(
            cores.associated_client_devices("core-1", exists).unwrap(),
            [("car-1".to_owned(), NOW)]
        );
        // Again: a no-op that keeps the first time.
        assert!(
            cores
                .batch_associate("core-1", &names(&["car-1"]), exists, NOW + 5)
                .unwrap()
                .is_empty()
        );
        assert_eq!(
            cores.associated_client_devices("core-1", exists).unwrap()[0].1,
            NOW
        );
    }

    #[test]
    fn batches_are_refused_whole_when_empty_too_large_or_the_core_is_unknown() {
        let mut cores = CoreDevices::default();
        assert!(matches!(
            cores.batch_associate("core-1", &[], exists, NOW),
            Err(CoreDeviceError::Validation(_))
        ));
        let many: Vec<String> = (0..=MAX_BATCH_ENTRIES)
            .map(|i| format!("car-{i}"))
            .collect();
        assert!(matches!(
            cores.batch_associate("core-1", &many, exists, NOW),
            Err(CoreDeviceError::Validation(_))
        ));
        assert_eq!(
            cores.batch_associate("nobody", &names(&["car-1"]), exists, NOW),
            Err(CoreDeviceError::ThingNotFound("nobody".into()))
        );
        assert_eq!(cores, CoreDevices::default());
    }

    #[test]
    fn a_client_device_joins_at_most_ten_cores() {
        let mut cores = CoreDevices::default();
        for i in 0..MAX_CORES_PER_CLIENT_DEVICE {
            let errors = cores
                .batch_associate(&format!("core-{i}"), &names(&["car-1"]), exists, NOW)
                .unwrap();
            assert!(errors.is_empty());
        }
        let errors = cores
            .batch_associate("core-x", &names(&["car-1"]), exists, NOW)
            .unwrap();
        assert_eq!(errors[0].code, "ServiceQuotaExceededException");
        assert!(cores.core("core-x").is_none());
    }

    #[test]
    fn a_core_holds_at_most_its_client_device_quota() {
        let mut cores = CoreDevices::default();
        let all: Vec<String> = (0..=MAX_CLIENT_DEVICES_PER_CORE)
            .map(|i| format!("car-{i}"))
            .collect();
        let mut errors = Vec::new();
        for batch in all.chunks(MAX_BATCH_ENTRIES) {
            errors.extend(cores.batch_associate("core-1", batch, exists, NOW).unwrap());
        }
        assert_eq!(errors.len(), 1);
        assert_eq!(
            errors[0].thing_name,
            format!("car-{MAX_CLIENT_DEVICES_PER_CORE}")
        );
        assert_eq!(
            cores.core("core-1").unwrap().client_devices.len(),
            MAX_CLIENT_DEVICES_PER_CORE
        );
    }

    #[test]
    fn disassociation_removes_and_forgets_empty_cores() {
        let mut cores = CoreDevices::default();
        cores
            .batch_associate("core-1", &names(&["car-1", "car-2"]), exists, NOW)
            .unwrap();
        let errors = cores
            .batch_disassociate("core-1", &names(&["car-1", "car-3", "ghost"]), exists)
            .unwrap();
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].thing_name, "ghost");
        assert!(cores.discover("car-1", arn).is_none());
        cores
            .batch_disassociate("core-1", &names(&["car-2"]), exists)
            .unwrap();
        assert_eq!(cores, CoreDevices::default(), "nothing left of core-1");
    }

    #[test]
    fn connectivity_updates_bump_the_version_and_are_checked() {
        let mut cores = CoreDevices::default();
        assert_eq!(
            cores
                .update_connectivity_info("core-1", vec![lan("a", 8883)], exists)
                .unwrap(),
            "1"
        );
        assert_eq!(
            cores
                .update_connectivity_info("core-1", vec![lan("b", 443)], exists)
                .unwrap(),
            "2"
        );
        assert_eq!(
            cores.connectivity_info("core-1", exists).unwrap(),
            [lan("b", 443)]
        );
        assert!(
            cores
                .connectivity_info("core-2", exists)
                .unwrap()
                .is_empty()
        );
        assert_eq!(
            cores.connectivity_info("ghost", exists),
            Err(CoreDeviceError::ThingNotFound("ghost".into()))
        );
        for bad in [
            vec![lan("a", 0)],
            vec![lan("", 1)],
            vec![lan("a", 1), lan("a", 2)],
            vec![ConnectivityInfo {
                host_address: "a b".into(),
                ..lan("x", 1)
            }],
            vec![ConnectivityInfo {
                metadata: "m".repeat(MAX_CONNECTIVITY_FIELD_CHARS + 1),
                ..lan("x", 1)
            }],
            (0..=MAX_CONNECTIVITY_ENTRIES)
                .map(|i| lan(&i.to_string(), 1))
                .collect(),
        ] {
            assert!(matches!(
                cores.update_connectivity_info("core-1", bad, exists),
                Err(CoreDeviceError::Validation(_))
            ));
        }
        assert_eq!(
            cores.core("core-1").unwrap().connectivity_version,
            2,
            "refusals change nothing"
        );
        assert!(matches!(
            cores.update_connectivity_info("ghost", vec![], exists),
            Err(CoreDeviceError::ThingNotFound(_))
        ));
    }

    #[test]
    fn core_records_are_bounded() {
        let mut cores = CoreDevices::default();
        for i in 0..MAX_CORE_DEVICES {
            cores
                .update_connectivity_info(&format!("core-{i}"), vec![], exists)
                .unwrap();
        }
        assert!(matches!(
            cores.update_connectivity_info("core-new", vec![], exists),
            Err(CoreDeviceError::QuotaExceeded(_))
        ));
        // An existing core still updates.
        assert!(
            cores
                .update_connectivity_info("core-0", vec![lan("a", 1)], exists)
                .is_ok()
        );
    }

    #[test]
    fn certificate_authorities_must_be_pem_certificates() {
        let mut cores = CoreDevices::default();
        let pem = ca_pem();
        cores
            .put_certificate_authorities("core-1", vec![pem.clone()], exists)
            .unwrap();
        assert_eq!(
            cores.core("core-1").unwrap().certificate_authorities,
            std::slice::from_ref(&pem)
        );
        for bad in [
            vec![],
            vec!["not a certificate".to_owned()],
            vec!["-----BEGIN CERTIFICATE-----\n!!\n-----END CERTIFICATE-----\n".to_owned()],
            vec![format!("{pem}{}", " ".repeat(MAX_CA_PEM_BYTES))],
            vec![pem.clone(); MAX_CERTIFICATE_AUTHORITIES + 1],
        ] {
            assert!(matches!(
                cores.put_certificate_authorities("core-1", bad, exists),
                Err(CoreDeviceError::Validation(_))
            ));
        }
        assert!(matches!(
            cores.put_certificate_authorities("ghost", vec![pem], exists),
            Err(CoreDeviceError::ThingNotFound(_))
        ));
    }

    #[test]
    fn discover_answers_one_group_per_core_with_an_endpoint() {
        let mut cores = CoreDevices::default();
        for core in ["core-2", "core-1", "core-3"] {
            cores
                .batch_associate(core, &names(&["car-1"]), exists, NOW)
                .unwrap();
        }
        cores
            .update_connectivity_info("core-1", vec![lan("a", 8883), lan("b", 443)], exists)
            .unwrap();
        cores
            .update_connectivity_info("core-2", vec![lan("c", 8883)], exists)
            .unwrap();
        cores
            .put_certificate_authorities("core-2", vec![ca_pem()], exists)
            .unwrap();
        // core-3 has no endpoint: left out.
        let answer = cores.discover("car-1", arn).unwrap();
        let ids: Vec<&str> = answer.groups.iter().map(|g| g.group_id.as_str()).collect();
        assert_eq!(
            ids,
            [
                "greengrassV2-coreDevice-core-1",
                "greengrassV2-coreDevice-core-2"
            ]
        );
        assert_eq!(answer.groups[0].cores[0].thing_arn, arn("core-1"));
        assert_eq!(answer.groups[0].cores[0].connectivity.len(), 2);
        assert!(answer.groups[0].cas.is_empty());
        assert_eq!(answer.groups[1].cas.len(), 1);
        assert!(cores.discover("car-2", arn).is_none());
    }

    #[test]
    fn the_document_round_trips_through_json() {
        let mut cores = CoreDevices::default();
        cores
            .batch_associate("core-1", &names(&["car-1"]), exists, NOW)
            .unwrap();
        cores
            .update_connectivity_info("core-1", vec![lan("a", 8883)], exists)
            .unwrap();
        let value = serde_json::to_value(&cores).unwrap();
        assert_eq!(
            value["coreDevices"]["core-1"]["connectivityInfo"][0]["hostAddress"],
            "192.168.1.5"
        );
        let back: CoreDevices = serde_json::from_value(value).unwrap();
        assert_eq!(back, cores);
    }
}

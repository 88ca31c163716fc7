//! Where shadows are kept: a trait with get / put-if-version / delete / list, and an in-memory
//! implementation. The broker program supplies a durable one.

use std::collections::BTreeMap;
use std::convert::Infallible;

use crate::document::StoredShadow;
use crate::topic::ShadowKey;

/// Storage for shadows. Implementations must make `put_if_version` atomic: the write happens only
/// if the stored version (a tombstone's included) is still `expected`.
pub trait ShadowStore {
    /// The store's failure.
    type Error: std::error::Error + Send + Sync + 'static;

    /// The shadow (or its tombstone) at `key`.
    fn get(&self, key: &ShadowKey) -> Result<Option<StoredShadow>, Self::Error>;

    /// Write `shadow` if the stored version is `expected` (`None`: nothing stored). Returns whether
    /// it was written.
    fn put_if_version(
        &mut self,
        key: &ShadowKey,
        expected: Option<u64>,
        shadow: StoredShadow,
    ) -> Result<bool, Self::Error>;

    /// Remove `key` entirely (tombstone included).
    fn delete(&mut self, key: &ShadowKey) -> Result<(), Self::Error>;

    /// The names of `thing`'s live (not deleted) named shadows, sorted.
    fn list_named(&self, thing: &str) -> Result<Vec<String>, Self::Error>;
}

/// Shadows in a `BTreeMap`, for tests and for programs that need no durability.
///
/// ```
/// use iot_shadow::{MemoryShadowStore, ShadowKey, ShadowStore, StoredShadow};
/// let mut store = MemoryShadowStore::default();
/// let key = ShadowKey::named("lamp", "color");
/// let shadow = StoredShadow { version: 1, ..Default::default() };
/// assert_eq!(store.put_if_version(&key, None, shadow.clone()), Ok(true));
/// assert_eq!(store.put_if_version(&key, None, shadow), Ok(false));
/// assert_eq!(store.list_named("lamp"), Ok(vec!["color".to_string()]));
/// ```
#[derive(Debug, Clone, Default)]
pub struct MemoryShadowStore {
    shadows: BTreeMap<ShadowKey, StoredShadow>,
}

impl ShadowStore for MemoryShadowStore {
    type Error = Infallible;

    fn get(&self, key: &ShadowKey) -> Result<Option<StoredShadow>, Infallible> {
        Ok(self.shadows.get(key).cloned())
    }

    fn put_if_version(
        &mut self,
        key: &ShadowKey,
        expected: Option<u64>,
        shadow: StoredShadow,
    ) -> Result<bool, Infallible> {
        let current = self.shadows.get(key).map(|s| s.version);
        if current != expected {
            return Ok(false);
        }
        self.shadows.insert(key.clone(), shadow);
        Ok(true)
    }

    fn delete(&mut self, key: &ShadowKey) -> Result<(), Infallible> {
        self.shadows.remove(key);
        Ok(())
    }

    fn list_named(&self, thing: &str) -> Result<Vec<String>, Infallible> {
        Ok(self
            .shadows
            .iter()
            .filter(|(k, s)| k.thing == thing && !s.is_deleted())
            .filter_map(|(k, _)| k.shadow.clone())
            .collect())
    }
}

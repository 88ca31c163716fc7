//! Where shadows are kept: a trait with get / put-if-version / delete / list and an in-place
//! edit, and an in-memory implementation. The broker program supplies a durable one.

use std::collections::BTreeMap;
use std::convert::Infallible;

use crate::document::StoredShadow;
use crate::entry::{ShadowEntry, ShadowSlot};
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

    /// Lend the entry at `key` to `edit`, and keep what it leaves if it changed the slot (an
    /// emptied slot deletes the key). This is how the service updates a shadow without copying it.
    ///
    /// `None` if the change could not be written because the stored version moved on meanwhile
    /// (only a store that cannot lend its entries in place, as a remote one, can see that).
    ///
    /// (`Self: Sized` keeps the trait usable as `dyn ShadowStore`, without this method.)
    ///
    /// The default works on a copy: [`get`](Self::get), `edit`, then
    /// [`put_if_version`](Self::put_if_version) against the version read (or
    /// [`delete`](Self::delete)). A store that holds its shadows in memory should lend its own
    /// entry instead, so that the service neither copies the shadow nor serializes it again.
    fn edit<R>(
        &mut self,
        key: &ShadowKey,
        edit: impl FnOnce(&mut ShadowSlot<'_>) -> R,
    ) -> Result<Option<R>, Self::Error>
    where
        Self: Sized,
    {
        let mut entry = self.get(key)?.map(ShadowEntry::new);
        let expected = entry.as_ref().map(ShadowEntry::version);
        let mut slot = ShadowSlot::new(&mut entry);
        let result = edit(&mut slot);
        if !slot.is_changed() {
            return Ok(Some(result));
        }
        match entry {
            Some(entry) => {
                let written = self.put_if_version(key, expected, entry.into_shadow())?;
                Ok(written.then_some(result))
            }
            None => {
                self.delete(key)?;
                Ok(Some(result))
            }
        }
    }
}

/// Shadows in a `BTreeMap`, for tests and for programs that need no durability. Each entry keeps
/// the snapshot the service last wrote, so memory per shadow is about twice its JSON.
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
    shadows: BTreeMap<ShadowKey, ShadowEntry>,
}

impl ShadowStore for MemoryShadowStore {
    type Error = Infallible;

    fn get(&self, key: &ShadowKey) -> Result<Option<StoredShadow>, Infallible> {
        Ok(self.shadows.get(key).map(|e| e.shadow().clone()))
    }

    fn put_if_version(
        &mut self,
        key: &ShadowKey,
        expected: Option<u64>,
        shadow: StoredShadow,
    ) -> Result<bool, Infallible> {
        let current = self.shadows.get(key).map(ShadowEntry::version);
        if current != expected {
            return Ok(false);
        }
        self.shadows.insert(key.clone(), ShadowEntry::new(shadow));
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
            .filter(|(k, e)| k.thing == thing && !e.shadow().is_deleted())
            .filter_map(|(k, _)| k.shadow.clone())
            .collect())
    }

    fn edit<R>(
        &mut self,
        key: &ShadowKey,
        edit: impl FnOnce(&mut ShadowSlot<'_>) -> R,
    ) -> Result<Option<R>, Infallible> {
        // Lend the entry itself; a changed one goes back under its old key (no key copy).
        let (stored_key, mut entry) = match self.shadows.remove_entry(key) {
            Some((k, e)) => (Some(k), Some(e)),
            None => (None, None),
        };
        let result = edit(&mut ShadowSlot::new(&mut entry));
        if let Some(entry) = entry {
            let key = stored_key.unwrap_or_else(|| key.clone());
            self.shadows.insert(key, entry);
        }
        Ok(Some(result))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A store with only the required methods, so `edit` is the default one.
    #[derive(Debug, Default)]
    struct Plain(MemoryShadowStore);

    impl ShadowStore for Plain {
        type Error = Infallible;
        fn get(&self, key: &ShadowKey) -> Result<Option<StoredShadow>, Infallible> {
            self.0.get(key)
        }
        fn put_if_version(
            &mut self,
            key: &ShadowKey,
            expected: Option<u64>,
            shadow: StoredShadow,
        ) -> Result<bool, Infallible> {
            self.0.put_if_version(key, expected, shadow)
        }
        fn delete(&mut self, key: &ShadowKey) -> Result<(), Infallible> {
            self.0.delete(key)
        }
        fn list_named(&self, thing: &str) -> Result<Vec<String>, Infallible> {
            self.0.list_named(thing)
        }
    }

    fn at(version: u64) -> StoredShadow {
        StoredShadow {
            version,
            ..StoredShadow::default()
        }
    }

    fn exercise(store: &mut impl ShadowStore<Error = Infallible>) {
        let key = ShadowKey::classic("lamp");
        // Nothing there: a read-only edit leaves nothing.
        assert_eq!(
            store.edit(&key, |slot| slot.get().is_none()),
            Ok(Some(true))
        );
        assert_eq!(store.get(&key), Ok(None));
        // Create, change in place, read back.
        let created = store.edit(&key, |slot| slot.set(Some(ShadowEntry::new(at(1)))));
        assert_eq!(created, Ok(Some(())));
        let bumped = store.edit(&key, |slot| {
            if let Some(entry) = slot.get_mut() {
                entry.open().0.version = 2;
            }
        });
        assert_eq!(bumped, Ok(Some(())));
        assert_eq!(store.get(&key), Ok(Some(at(2))));
        // An emptied slot deletes the key.
        assert_eq!(store.edit(&key, |slot| slot.set(None)), Ok(Some(())));
        assert_eq!(store.get(&key), Ok(None));
    }

    #[test]
    fn the_trait_stays_usable_as_an_object() {
        let store = MemoryShadowStore::default();
        let shared: &dyn ShadowStore<Error = Infallible> = &store;
        assert_eq!(shared.list_named("lamp"), Ok(Vec::new()));
    }

    #[test]
    fn memory_store_lends_its_entries() {
        exercise(&mut MemoryShadowStore::default());
    }

    #[test]
    fn default_edit_works_on_a_copy() {
        exercise(&mut Plain::default());
    }

    /// A store where another writer moves the version on right after every read.
    #[derive(Debug, Default)]
    struct Racy(std::cell::RefCell<MemoryShadowStore>);

    impl ShadowStore for Racy {
        type Error = Infallible;
        fn get(&self, key: &ShadowKey) -> Result<Option<StoredShadow>, Infallible> {
            let found = self.0.borrow().get(key)?;
            if let Some(shadow) = &found {
                let moved = at(shadow.version + 10);
                self.0
                    .borrow_mut()
                    .put_if_version(key, Some(shadow.version), moved)?;
            }
            Ok(found)
        }
        fn put_if_version(
            &mut self,
            key: &ShadowKey,
            expected: Option<u64>,
            shadow: StoredShadow,
        ) -> Result<bool, Infallible> {
            self.0.borrow_mut().put_if_version(key, expected, shadow)
        }
        fn delete(&mut self, key: &ShadowKey) -> Result<(), Infallible> {
            self.0.borrow_mut().delete(key)
        }
        fn list_named(&self, thing: &str) -> Result<Vec<String>, Infallible> {
            self.0.borrow().list_named(thing)
        }
    }

    #[test]
    fn default_edit_reports_a_lost_race() {
        let key = ShadowKey::classic("lamp");
        let mut store = Racy::default();
        assert_eq!(store.put_if_version(&key, None, at(1)), Ok(true));
        let lost = store.edit(&key, |slot| slot.set(Some(ShadowEntry::new(at(2)))));
        assert_eq!(lost, Ok(None));
        // A read-only edit has nothing to lose.
        let read = store.edit(&key, |slot| slot.get().map(ShadowEntry::version));
        assert_eq!(read, Ok(Some(Some(11))));
    }
}

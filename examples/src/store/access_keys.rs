//! IAM-style access keys for SigV4 clients (MQTT over WebSocket, HTTPS): what
//! `aws iam create-access-key` gives a developer. Each key belongs to a user whose ARN,
//! `arn:aws:iam::{account}:user/{name}`, is the principal AWS IoT policies attach to (with
//! `attach-policy --target`), as certificates are for TLS clients.
//!
//! The keys live in the store's meta table; the broker loads them at start.

use std::collections::BTreeMap;
use std::sync::{Arc, PoisonError, RwLock};

use iot_auth::sigv4::{Credential, CredentialStore};
use serde_json::{Value, json};

use crate::store::{Store, StoreError};

/// The meta-table key the access keys are saved under.
const META_KEY: &str = "access_keys";

/// One access key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessKey {
    /// `AKIA…`, 20 characters.
    pub access_key_id: String,
    /// The 40-character secret.
    pub secret_access_key: String,
    /// The user it belongs to.
    pub user_name: String,
    /// `Active` or `Inactive`.
    pub active: bool,
    /// When it was made (Unix seconds).
    pub created_at: u64,
}

/// Every access key of the account.
#[derive(Debug, Clone, Default)]
pub struct AccessKeys {
    account: String,
    keys: BTreeMap<String, AccessKey>,
}

/// The principal (policy target) of an IAM user.
///
/// ```
/// assert_eq!(iot_examples::store::access_keys::user_arn("123456789012", "dashboard"),
///            "arn:aws:iam::123456789012:user/dashboard");
/// ```
pub fn user_arn(account: &str, user_name: &str) -> String {
    format!("arn:aws:iam::{account}:user/{user_name}")
}

/// Why an access key could not be made or changed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AccessKeyError {
    /// IAM's user-name rule.
    #[error("invalid user name {0:?}: 1 to 64 of A-Z a-z 0-9 +=,.@_-")]
    InvalidUserName(String),
    /// No such key.
    #[error("no access key {0}")]
    UnknownKey(String),
    /// The operating system gave no randomness.
    #[error("no randomness: {0}")]
    Random(String),
}

/// Random characters from `alphabet` (the OS random source).
fn random_text(alphabet: &[u8], len: usize) -> Result<String, AccessKeyError> {
    let mut bytes = vec![0u8; len];
    getrandom::fill(&mut bytes).map_err(|e| AccessKeyError::Random(e.to_string()))?;
    Ok(bytes
        .iter()
        .map(|b| {
            let index = usize::from(*b) % alphabet.len();
            char::from(alphabet.get(index).copied().unwrap_or(b'A'))
        })
        .collect())
}

impl AccessKeys {
    /// Loads the keys of `account` from the store (none on a new store).
    pub fn load(store: &Store, account: &str) -> Result<AccessKeys, StoreError> {
        let mut keys = BTreeMap::new();
        if let Some(Value::Object(map)) = store.meta_json(META_KEY)? {
            for (id, v) in map {
                let text = |name: &str| v.get(name).and_then(Value::as_str).map(str::to_owned);
                let (Some(secret_access_key), Some(user_name)) =
                    (text("secretAccessKey"), text("userName"))
                else {
                    return Err(StoreError::Corrupt(META_KEY));
                };
                keys.insert(
                    id.clone(),
                    AccessKey {
                        access_key_id: id,
                        secret_access_key,
                        user_name,
                        active: text("status").as_deref() != Some("Inactive"),
                        created_at: v.get("createdAt").and_then(Value::as_u64).unwrap_or(0),
                    },
                );
            }
        }
        Ok(AccessKeys {
            account: account.to_owned(),
            keys,
        })
    }

    /// Records the keys in the store (committed with its next commit).
    pub fn save(&self, store: &mut Store) {
        let map: serde_json::Map<String, Value> = self
            .keys
            .values()
            .map(|k| {
                (
                    k.access_key_id.clone(),
                    json!({
                        "secretAccessKey": k.secret_access_key,
                        "userName": k.user_name,
                        "status": if k.active { "Active" } else { "Inactive" },
                        "createdAt": k.created_at,
                    }),
                )
            })
            .collect();
        store.put_meta_json(META_KEY, &Value::Object(map));
    }

    /// Makes a new active key for `user_name`.
    pub fn create(&mut self, user_name: &str, now_secs: u64) -> Result<AccessKey, AccessKeyError> {
        if user_name.is_empty()
            || user_name.len() > 64
            || !user_name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"+=,.@_-".contains(&b))
        {
            return Err(AccessKeyError::InvalidUserName(user_name.to_owned()));
        }
        let key = AccessKey {
            access_key_id: format!(
                "AKIA{}",
                random_text(b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", 16)?
            ),
            secret_access_key: random_text(
                b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/",
                40,
            )?,
            user_name: user_name.to_owned(),
            active: true,
            created_at: now_secs,
        };
        self.keys.insert(key.access_key_id.clone(), key.clone());
        Ok(key)
    }

    /// Activates or deactivates a key.
    pub fn set_active(&mut self, access_key_id: &str, active: bool) -> Result<(), AccessKeyError> {
        let key = self
            .keys
            .get_mut(access_key_id)
            .ok_or_else(|| AccessKeyError::UnknownKey(access_key_id.to_owned()))?;
        key.active = active;
        Ok(())
    }

    /// Every key.
    pub fn iter(&self) -> impl Iterator<Item = &AccessKey> {
        self.keys.values()
    }

    /// The principal a key's signatures stand for.
    pub fn principal(&self, key: &AccessKey) -> String {
        user_arn(&self.account, &key.user_name)
    }
}

/// The keys as the SigV4 verifier's credential store, shared with the listeners.
#[derive(Debug, Clone, Default)]
pub struct SharedAccessKeys(pub Arc<RwLock<AccessKeys>>);

impl CredentialStore for SharedAccessKeys {
    fn credential(&self, access_key_id: &str) -> Option<Credential> {
        let keys = self.0.read().unwrap_or_else(PoisonError::into_inner);
        let key = keys.keys.get(access_key_id).filter(|k| k.active)?;
        Some(Credential {
            secret_access_key: key.secret_access_key.clone(),
            session_token: None,
            principal: keys.principal(key),
        })
    }
}

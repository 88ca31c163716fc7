//! IAM-style access keys for SigV4 clients (MQTT over WebSocket, HTTPS): what
//! `aws iam create-access-key` gives a developer. Each key belongs to a user whose ARN,
//! `arn:aws:iam::{account}:user/{name}`, is the principal AWS IoT policies attach to (with
//! `attach-policy --target`), as certificates are for TLS clients.
//!
//! Users may also have a login profile (a password, `aws iam create-login-profile`): the
//! dashboard's login checks it and hands out temporary credentials (an access key id `ASIA…`, a
//! secret and a session token, valid for a limited time) that sign as the same user, as a Cognito
//! identity pool and STS do on AWS.
//!
//! The keys and login profiles live in the store's meta table; the broker loads them at start.
//! Temporary credentials live in memory only: a restarted broker forgets them (log in again).

use std::collections::BTreeMap;
use std::sync::{Arc, PoisonError, RwLock};

use iot_auth::sigv4::{Credential, CredentialStore};
use serde_json::{Value, json};

use crate::store::{Store, StoreError};

/// The meta-table key the access keys are saved under.
const META_KEY: &str = "access_keys";
/// The meta-table key the login profiles (password hashes) are saved under.
const LOGIN_META_KEY: &str = "login_profiles";
/// Temporary credentials held at most; when full, expired ones are dropped and, if none are,
/// a login is refused (throttled) until some expire.
pub const MAX_TEMPORARY_CREDENTIALS: usize = 10_000;
/// The shortest password a login profile takes.
pub const MIN_PASSWORD_LEN: usize = 8;

/// Temporary credentials: what a login returns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemporaryCredentials {
    /// `ASIA…`, 20 characters.
    pub access_key_id: String,
    /// The secret.
    pub secret_access_key: String,
    /// The session token every signed request must carry (`X-Amz-Security-Token`).
    pub session_token: String,
    /// The user they sign as.
    pub user_name: String,
    /// When they stop working (Unix seconds).
    pub expires_at: u64,
}

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

/// Every access key of the account, the users' login profiles and the temporary credentials
/// handed out.
#[derive(Debug, Clone, Default)]
pub struct AccessKeys {
    account: String,
    keys: BTreeMap<String, AccessKey>,
    /// User name → argon2id hash (PHC string).
    login_profiles: BTreeMap<String, String>,
    temporary: BTreeMap<String, TemporaryCredentials>,
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
    /// A password shorter than [`MIN_PASSWORD_LEN`].
    #[error("the password must be at least {MIN_PASSWORD_LEN} characters")]
    WeakPassword,
    /// The password could not be hashed.
    #[error("password hashing: {0}")]
    Hash(String),
    /// The operating system gave no randomness.
    #[error("no randomness: {0}")]
    Random(String),
}

/// The characters of secrets and session tokens.
const SECRET_ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// IAM's user-name rule: 1 to 64 of `A-Z a-z 0-9 +=,.@_-`.
fn check_user_name(user_name: &str) -> Result<(), AccessKeyError> {
    if user_name.is_empty()
        || user_name.len() > 64
        || !user_name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"+=,.@_-".contains(&b))
    {
        return Err(AccessKeyError::InvalidUserName(user_name.to_owned()));
    }
    Ok(())
}

/// Whether `password` matches the argon2 `hash` (slow on purpose; run it off the async threads).
pub fn check_password(hash: &str, password: &str) -> bool {
    argon2::password_hash::PasswordHash::new(hash).is_ok_and(|parsed| {
        argon2::PasswordVerifier::verify_password(
            &argon2::Argon2::default(),
            password.as_bytes(),
            &parsed,
        )
        .is_ok()
    })
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
        let mut login_profiles = BTreeMap::new();
        if let Some(Value::Object(map)) = store.meta_json(LOGIN_META_KEY)? {
            for (user, hash) in map {
                let Value::String(hash) = hash else {
                    return Err(StoreError::Corrupt(LOGIN_META_KEY));
                };
                login_profiles.insert(user, hash);
            }
        }
        Ok(AccessKeys {
            account: account.to_owned(),
            keys,
            login_profiles,
            temporary: BTreeMap::new(),
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
        let profiles: serde_json::Map<String, Value> = self
            .login_profiles
            .iter()
            .map(|(user, hash)| (user.clone(), Value::String(hash.clone())))
            .collect();
        store.put_meta_json(LOGIN_META_KEY, &Value::Object(profiles));
    }

    /// Gives `user_name` a password (replacing one it had), stored as a salted argon2id hash.
    pub fn set_login_profile(
        &mut self,
        user_name: &str,
        password: &str,
    ) -> Result<(), AccessKeyError> {
        check_user_name(user_name)?;
        if password.chars().count() < MIN_PASSWORD_LEN {
            return Err(AccessKeyError::WeakPassword);
        }
        let mut salt = [0u8; 16];
        getrandom::fill(&mut salt).map_err(|e| AccessKeyError::Random(e.to_string()))?;
        let salt = argon2::password_hash::SaltString::encode_b64(&salt)
            .map_err(|e| AccessKeyError::Hash(e.to_string()))?;
        let hash = argon2::PasswordHasher::hash_password(
            &argon2::Argon2::default(),
            password.as_bytes(),
            &salt,
        )
        .map_err(|e| AccessKeyError::Hash(e.to_string()))?;
        self.login_profiles
            .insert(user_name.to_owned(), hash.to_string());
        Ok(())
    }

    /// The stored hash of `user_name`'s password (checked with [`check_password`] outside any
    /// lock: it is slow on purpose).
    pub fn login_profile(&self, user_name: &str) -> Option<String> {
        self.login_profiles.get(user_name).cloned()
    }

    /// Users with a login profile.
    pub fn login_users(&self) -> impl Iterator<Item = &str> {
        self.login_profiles.keys().map(String::as_str)
    }

    /// New temporary credentials for `user_name`, valid `ttl_secs` from `now_secs`. `None` when
    /// [`MAX_TEMPORARY_CREDENTIALS`] unexpired ones are out.
    pub fn issue_temporary(
        &mut self,
        user_name: &str,
        now_secs: u64,
        ttl_secs: u64,
    ) -> Result<Option<TemporaryCredentials>, AccessKeyError> {
        if self.temporary.len() >= MAX_TEMPORARY_CREDENTIALS {
            self.temporary.retain(|_, t| t.expires_at > now_secs);
            if self.temporary.len() >= MAX_TEMPORARY_CREDENTIALS {
                return Ok(None);
            }
        }
        let credentials = TemporaryCredentials {
            access_key_id: format!(
                "ASIA{}",
                random_text(b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", 16)?
            ),
            secret_access_key: random_text(SECRET_ALPHABET, 40)?,
            session_token: random_text(SECRET_ALPHABET, 96)?,
            user_name: user_name.to_owned(),
            expires_at: now_secs.saturating_add(ttl_secs),
        };
        self.temporary
            .insert(credentials.access_key_id.clone(), credentials.clone());
        Ok(Some(credentials))
    }

    /// Makes a new active key for `user_name`.
    pub fn create(&mut self, user_name: &str, now_secs: u64) -> Result<AccessKey, AccessKeyError> {
        check_user_name(user_name)?;
        let key = AccessKey {
            access_key_id: format!(
                "AKIA{}",
                random_text(b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", 16)?
            ),
            secret_access_key: random_text(SECRET_ALPHABET, 40)?,
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
        if let Some(temporary) = keys.temporary.get(access_key_id) {
            return Some(Credential {
                secret_access_key: temporary.secret_access_key.clone(),
                session_token: Some(temporary.session_token.clone()),
                principal: user_arn(&keys.account, &temporary.user_name),
                expires_at: Some(temporary.expires_at),
            });
        }
        let key = keys.keys.get(access_key_id).filter(|k| k.active)?;
        Some(Credential {
            secret_access_key: key.secret_access_key.clone(),
            session_token: None,
            principal: keys.principal(key),
            expires_at: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn login_profiles_check_passwords_and_temporary_credentials_expire() {
        let mut keys = AccessKeys {
            account: "123456789012".into(),
            ..AccessKeys::default()
        };
        assert!(matches!(
            keys.set_login_profile("alice", "short"),
            Err(AccessKeyError::WeakPassword)
        ));
        keys.set_login_profile("alice", "correct horse").unwrap();
        let hash = keys.login_profile("alice").unwrap();
        assert!(hash.starts_with("$argon2id$"), "{hash}");
        assert!(check_password(&hash, "correct horse"));
        assert!(!check_password(&hash, "correct horsE"));
        assert!(!check_password("not a hash", "correct horse"));

        let issued = keys
            .issue_temporary("alice", 1_000, 3_600)
            .unwrap()
            .unwrap();
        assert!(issued.access_key_id.starts_with("ASIA") && issued.access_key_id.len() == 20);
        let shared = SharedAccessKeys(Arc::new(RwLock::new(keys)));
        let credential = shared.credential(&issued.access_key_id).unwrap();
        assert_eq!(credential.expires_at, Some(4_600));
        assert_eq!(
            credential.session_token.as_deref(),
            Some(issued.session_token.as_str())
        );
        assert_eq!(credential.principal, "arn:aws:iam::123456789012:user/alice");
    }

    #[test]
    fn temporary_credentials_are_bounded() {
        let mut keys = AccessKeys::default();
        for _ in 0..MAX_TEMPORARY_CREDENTIALS {
            keys.issue_temporary("bob", 0, 10).unwrap().unwrap();
        }
        // Full of unexpired credentials: refused.
        assert!(keys.issue_temporary("bob", 5, 10).unwrap().is_none());
        // Once they expired, room again.
        assert!(keys.issue_temporary("bob", 10, 10).unwrap().is_some());
    }
}

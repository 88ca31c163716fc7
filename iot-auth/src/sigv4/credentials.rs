//! Where secrets come from: access key id → secret, session token, and the principal it stands for.

use std::collections::HashMap;

/// One access key's secret and what it maps to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credential {
    /// The secret access key.
    pub secret_access_key: String,
    /// For temporary credentials: the token the request must carry.
    pub session_token: Option<String>,
    /// Who signs with it (for lifecycle events and policies), e.g. `{account}/{access key id}`.
    pub principal: String,
    /// For temporary credentials: when they stop working (Unix seconds).
    pub expires_at: Option<u64>,
}

/// Looks up credentials by access key id.
pub trait CredentialStore {
    /// The credential for `access_key_id`, if it is known and active.
    fn credential(&self, access_key_id: &str) -> Option<Credential>;
}

/// Credentials in a map.
///
/// ```
/// use iot_auth::sigv4::{Credential, CredentialStore, MemoryCredentials};
/// let mut store = MemoryCredentials::default();
/// store.insert("AKIDEXAMPLE", Credential {
///     secret_access_key: "secret".into(), session_token: None, principal: "123456789012/AKIDEXAMPLE".into(),
///     expires_at: None,
/// });
/// assert!(store.credential("AKIDEXAMPLE").is_some());
/// ```
#[derive(Debug, Clone, Default)]
pub struct MemoryCredentials {
    by_key: HashMap<String, Credential>,
}

impl MemoryCredentials {
    /// Add or replace a credential.
    pub fn insert(&mut self, access_key_id: impl Into<String>, credential: Credential) {
        self.by_key.insert(access_key_id.into(), credential);
    }

    /// Remove a credential.
    pub fn remove(&mut self, access_key_id: &str) -> Option<Credential> {
        self.by_key.remove(access_key_id)
    }
}

impl CredentialStore for MemoryCredentials {
    fn credential(&self, access_key_id: &str) -> Option<Credential> {
        self.by_key.get(access_key_id).cloned()
    }
}

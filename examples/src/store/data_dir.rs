//! The data directory: the store, the development CA and the server certificate, created on first
//! run. Private keys are written owner-only (mode 0600).
//!
//! ```text
//! {data_dir}/store.redb          registry, access keys, shadows, retained messages, sessions
//! {data_dir}/ca/ca.pem           development CA certificate (give it to clients as --cafile)
//! {data_dir}/ca/ca.key           its private key (0600)
//! {data_dir}/server/server.pem   server certificate for the endpoint names
//! {data_dir}/server/server.key   its private key (0600)
//! {data_dir}/certs/              what `create-keys-and-certificate` writes by default
//! {data_dir}/admin.sock          the running broker's admin socket (0600)
//! ```

use std::io::Write;
use std::path::{Path, PathBuf};

use iot_auth::provision::CertificateAuthority;
use iot_auth::registry::CertificateRegistry;

use crate::config::BrokerConfig;
use crate::store::{Store, StoreError};

/// Why the data directory could not be prepared.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    /// A file operation failed.
    #[error("{path}: {error}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// Why.
        error: std::io::Error,
    },
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Certificates could not be made or loaded.
    #[error("certificates: {0}")]
    Certificates(String),
    /// The store is in use by another process (a running broker).
    #[error("the store {0} is in use by another process (is the broker running? stop it first)")]
    Locked(PathBuf),
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> SetupError + '_ {
    move |error| SetupError::Io {
        path: path.to_owned(),
        error,
    }
}

/// Writes `contents` to `path`, owner-only when `private`.
pub fn write_file(path: &Path, contents: &str, private: bool) -> Result<(), SetupError> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(if private { 0o600 } else { 0o644 });
    }
    let mut file = options.open(path).map_err(io(path))?;
    file.write_all(contents.as_bytes()).map_err(io(path))?;
    file.sync_all().map_err(io(path))
}

/// The CA kept in `dir` (`ca.pem`, and `ca.key` owner-only), created with `common_name` on
/// first use.
pub fn load_or_create_ca(
    dir: &Path,
    common_name: &str,
    now_secs: i64,
) -> Result<CertificateAuthority, SetupError> {
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let pem_path = dir.join("ca.pem");
    let key_path = dir.join("ca.key");
    if pem_path.exists() {
        let cert = std::fs::read_to_string(&pem_path).map_err(io(&pem_path))?;
        let key = std::fs::read_to_string(&key_path).map_err(io(&key_path))?;
        return CertificateAuthority::from_pem(&cert, &key)
            .map_err(|e| SetupError::Certificates(e.to_string()));
    }
    let ca = CertificateAuthority::generate(common_name, now_secs)
        .map_err(|e| SetupError::Certificates(e.to_string()))?;
    write_file(&key_path, ca.private_key_pem(), true)?;
    write_file(&pem_path, &ca.certificate_pem(), false)?;
    tracing::info!(path = %pem_path.display(), "created the CA {common_name}");
    Ok(ca)
}

/// The files of one data directory.
#[derive(Debug, Clone)]
pub struct DataDir {
    root: PathBuf,
}

/// What a broker needs from its data directory.
#[derive(Debug)]
pub struct Opened {
    /// The store.
    pub store: Store,
    /// The registry as saved.
    pub registry: CertificateRegistry,
    /// The development CA.
    pub ca: CertificateAuthority,
    /// Server certificate chain PEM.
    pub server_cert_pem: String,
    /// Server private key PEM.
    pub server_key_pem: String,
}

impl DataDir {
    /// The directory at `root`.
    pub fn new(root: &Path) -> Self {
        DataDir {
            root: root.to_owned(),
        }
    }

    /// The root.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// `ca/ca.pem`.
    pub fn ca_cert(&self) -> PathBuf {
        self.root.join("ca").join("ca.pem")
    }

    /// `certs/`.
    pub fn certs(&self) -> PathBuf {
        self.root.join("certs")
    }

    /// `store.redb`.
    pub fn store(&self) -> PathBuf {
        self.root.join("store.redb")
    }

    /// Opens the directory, creating the CA, the server certificate and the store on first run.
    pub fn open(&self, config: &BrokerConfig, now_secs: i64) -> Result<Opened, SetupError> {
        for dir in [
            self.root.clone(),
            self.root.join("ca"),
            self.root.join("server"),
        ] {
            std::fs::create_dir_all(&dir).map_err(io(&dir))?;
        }
        let store_path = self.store();
        let mut store = Store::open(&store_path).map_err(|e| match e {
            StoreError::Redb(text) if text.contains("already open") || text.contains("lock") => {
                SetupError::Locked(store_path.clone())
            }
            other => SetupError::Store(other),
        })?;
        let ca = load_or_create_ca(&self.root.join("ca"), "aws-iot-rs Development CA", now_secs)?;
        let mut registry = match store.registry_json()? {
            Some(json) => CertificateRegistry::from_json(&json)
                .map_err(|e| SetupError::Certificates(e.to_string()))?,
            None => CertificateRegistry::new(),
        };
        if registry
            .ca(&iot_auth::x509::CertificateId::of_der(ca.certificate_der()))
            .is_none()
        {
            registry
                .register_ca_der(ca.certificate_der(), false)
                .map_err(|e| SetupError::Certificates(e.to_string()))?;
            store.put_registry_json(&registry.to_json());
            store.commit()?;
        }
        let server_pem_path = self.root.join("server").join("server.pem");
        let server_key_path = self.root.join("server").join("server.key");
        let names_path = self.root.join("server").join("names.txt");
        let names = config.endpoint_names.join("\n");
        let stale = std::fs::read_to_string(&names_path)
            .map(|n| n != names)
            .unwrap_or(true);
        if stale || !server_pem_path.exists() {
            let server = ca
                .issue_server(&config.endpoint_names, now_secs)
                .map_err(|e| SetupError::Certificates(e.to_string()))?;
            write_file(&server_key_path, &server.private_key_pem, true)?;
            write_file(&server_pem_path, &server.certificate_pem, false)?;
            write_file(&names_path, &names, false)?;
            tracing::info!(names = ?config.endpoint_names, "issued the server certificate");
        }
        let server_cert_pem =
            std::fs::read_to_string(&server_pem_path).map_err(io(&server_pem_path))?;
        let server_key_pem =
            std::fs::read_to_string(&server_key_path).map_err(io(&server_key_path))?;
        Ok(Opened {
            store,
            registry,
            ca,
            server_cert_pem,
            server_key_pem,
        })
    }
}

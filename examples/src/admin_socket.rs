//! The running broker's admin socket: a Unix socket `{data_dir}/admin.sock`, mode 0600, so only
//! the broker's user can use it. The CLI sends one [`AdminCommand`] as a JSON line; the engine
//! thread executes it against the live registry, access keys and store (committed before the
//! answer, like every acknowledgement) and the answer comes back as one JSON line:
//! `{"ok": …}` or `{"error": "…"}`.

use std::path::{Path, PathBuf};
use std::sync::{Arc, PoisonError, RwLock};

use iot_auth::provision::CertificateAuthority;
use iot_auth::registry::CertificateRegistry;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};

use crate::access_keys::AccessKeys;
use crate::admin::{Account, AdminCommand, execute};
use crate::config::BrokerConfig;
use crate::engine::EngineHandle;

/// Largest request line.
const MAX_REQUEST: usize = 1 << 20;

/// Where the admin socket of a data directory is.
pub fn socket_path(data_dir: &Path) -> PathBuf {
    data_dir.join("admin.sock")
}

/// What the engine needs to run admin commands.
#[derive(Clone)]
pub struct AdminTarget {
    /// The configuration.
    pub config: BrokerConfig,
    /// The live registry (the TLS verifier and the authorizer read it).
    pub registry: Arc<RwLock<CertificateRegistry>>,
    /// The live access keys (the SigV4 verifier reads them).
    pub access_keys: Arc<RwLock<AccessKeys>>,
    /// The development CA.
    pub ca: Arc<CertificateAuthority>,
}

impl std::fmt::Debug for AdminTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AdminTarget").finish_non_exhaustive()
    }
}

impl AdminTarget {
    /// Runs `command` on the engine thread; the answer comes after the store commit.
    pub async fn run(&self, engine: &EngineHandle, command: AdminCommand) -> Result<Value, String> {
        let target = self.clone();
        engine
            .query(move |state| {
                let mut registry = target
                    .registry
                    .write()
                    .unwrap_or_else(PoisonError::into_inner);
                let mut keys = target
                    .access_keys
                    .write()
                    .unwrap_or_else(PoisonError::into_inner);
                execute(
                    Account {
                        config: &target.config,
                        store: state.store(),
                        registry: &mut registry,
                        ca: &target.ca,
                        access_keys: &mut keys,
                    },
                    command,
                )
            })
            .await
            .unwrap_or_else(|| Err("the broker is stopping".to_owned()))
    }
}

/// Serves the admin socket until the task is dropped.
#[cfg(unix)]
pub async fn serve(listener: tokio::net::UnixListener, engine: EngineHandle, target: AdminTarget) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let engine = engine.clone();
        let target = target.clone();
        tokio::spawn(async move {
            let (read, mut write) = stream.into_split();
            let mut line = String::new();
            let mut reader = BufReader::new(read.take(MAX_REQUEST as u64));
            if reader.read_line(&mut line).await.is_err() {
                return;
            }
            let answer = match serde_json::from_str::<AdminCommand>(&line) {
                Ok(command) => {
                    tracing::info!(?command, "admin command");
                    match target.run(&engine, command).await {
                        Ok(value) => json!({ "ok": value }),
                        Err(error) => json!({ "error": error }),
                    }
                }
                Err(error) => json!({ "error": format!("not an admin command: {error}") }),
            };
            let _ = write.write_all(format!("{answer}\n").as_bytes()).await;
            let _ = write.shutdown().await;
        });
    }
}

/// Binds the admin socket (replacing a stale one: the store lock proved no broker owns it) with
/// mode 0600.
#[cfg(unix)]
pub fn bind(path: &Path) -> std::io::Result<tokio::net::UnixListener> {
    use std::os::unix::fs::PermissionsExt;
    let _ = std::fs::remove_file(path);
    let listener = tokio::net::UnixListener::bind(path)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    Ok(listener)
}

/// Sends `command` to the broker running on `data_dir` and returns its answer (blocking).
#[cfg(unix)]
pub fn request(data_dir: &Path, command: &AdminCommand) -> Result<Value, String> {
    use std::io::{BufRead, Write};
    let path = socket_path(data_dir);
    let mut stream = std::os::unix::net::UnixStream::connect(&path).map_err(|e| {
        format!(
            "the store is in use but the broker's admin socket {} does not answer: {e}",
            path.display()
        )
    })?;
    let text = serde_json::to_string(command).map_err(|e| e.to_string())?;
    stream
        .write_all(format!("{text}\n").as_bytes())
        .map_err(|e| e.to_string())?;
    let mut line = String::new();
    std::io::BufReader::new(stream)
        .read_line(&mut line)
        .map_err(|e| e.to_string())?;
    let mut answer: Value =
        serde_json::from_str(&line).map_err(|e| format!("bad answer from the broker: {e}"))?;
    if let Some(error) = answer.get("error").and_then(Value::as_str) {
        return Err(error.to_owned());
    }
    Ok(answer.get_mut("ok").map(Value::take).unwrap_or(Value::Null))
}

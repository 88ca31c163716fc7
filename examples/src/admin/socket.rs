//! The running broker's admin socket: a Unix socket `{data_dir}/admin.sock`, mode 0600, so only
//! the broker's user can use it. The CLI sends one [`AdminCommand`] as a JSON line; the engine
//! thread executes it against the live registry, access keys and store (committed before the
//! answer, like every acknowledgement) and the answer comes back as one JSON line:
//! `{"ok": …}` or `{"error": "…"}`.

use std::future::Future;
use std::path::{Path, PathBuf};

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};

use super::{AdminCommand, AdminError};

/// The longest command line read (a policy document is at most a few KiB).
const MAX_REQUEST: usize = 1 << 20;

/// The admin socket of the data directory `data_dir`.
pub fn socket_path(data_dir: &Path) -> PathBuf {
    data_dir.join("admin.sock")
}

/// Serves the admin socket until the task is dropped: each connection sends one command, `run`
/// executes it (on the program's engine) and the answer goes back as one JSON line.
#[cfg(unix)]
pub async fn serve<F, Fut>(listener: tokio::net::UnixListener, run: F)
where
    F: Fn(AdminCommand) -> Fut + Clone + Send + 'static,
    Fut: Future<Output = Result<Value, AdminError>> + Send + 'static,
{
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let run = run.clone();
        tokio::spawn(async move {
            let (read, mut write) = stream.into_split();
            let mut line = String::new();
            let mut reader = BufReader::new(read.take(MAX_REQUEST as u64));
            if reader.read_line(&mut line).await.is_err() {
                return;
            }
            let answer = match serde_json::from_str::<AdminCommand>(&line) {
                Ok(command) => {
                    tracing::info!(command = command.log_view(), "admin command");
                    match run(command).await {
                        Ok(value) => json!({ "ok": value }),
                        Err(error) => json!({ "error": error.to_string() }),
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
pub fn request(data_dir: &Path, command: &AdminCommand) -> Result<Value, AdminError> {
    use std::io::{BufRead, Write};
    let path = socket_path(data_dir);
    let socket_error = |reason: String| AdminError::Socket {
        path: path.clone(),
        reason,
    };
    let mut stream = std::os::unix::net::UnixStream::connect(&path).map_err(|e| {
        socket_error(format!(
            "the store is in use but the broker's admin socket does not answer: {e}"
        ))
    })?;
    let text = serde_json::to_string(command).map_err(|e| socket_error(e.to_string()))?;
    stream
        .write_all(format!("{text}\n").as_bytes())
        .map_err(|e| socket_error(e.to_string()))?;
    let mut line = String::new();
    std::io::BufReader::new(stream)
        .read_line(&mut line)
        .map_err(|e| socket_error(e.to_string()))?;
    let mut answer: Value = serde_json::from_str(&line)
        .map_err(|e| socket_error(format!("bad answer from the broker: {e}")))?;
    if let Some(error) = answer.get("error").and_then(Value::as_str) {
        return Err(AdminError::Remote(error.to_owned()));
    }
    Ok(answer.get_mut("ok").map(Value::take).unwrap_or(Value::Null))
}

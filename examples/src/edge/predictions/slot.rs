//! Where the running model lives, shared by the prediction handler (on the engine thread) and
//! the task that swaps in a new model file (tokio): a swap replaces the model between two
//! predictions; a file that cannot be used is refused with its error, counted, and the model in
//! use keeps running.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::{Duration, SystemTime};

use tokio::sync::watch;

use super::model::{ModelError, PredictionModel};

/// What the slot has done, for status and tests.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SlotStatus {
    /// The model in use: its id and where it came from.
    pub model_id: String,
    /// Its source.
    pub model_source: String,
    /// Models swapped in since start.
    pub swaps: u64,
    /// Files refused since start.
    pub refused: u64,
    /// The last refusal's error.
    pub last_error: Option<String>,
}

/// The running model, swappable.
#[derive(Debug)]
pub struct ModelSlot {
    model: RwLock<Arc<PredictionModel>>,
    swaps: AtomicU64,
    refused: AtomicU64,
    last_error: Mutex<Option<String>>,
}

impl ModelSlot {
    /// A slot holding `model`.
    pub fn new(model: PredictionModel) -> Arc<Self> {
        Arc::new(ModelSlot {
            model: RwLock::new(Arc::new(model)),
            swaps: AtomicU64::new(0),
            refused: AtomicU64::new(0),
            last_error: Mutex::new(None),
        })
    }

    /// The model in use now.
    pub fn current(&self) -> Arc<PredictionModel> {
        self.model
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Loads the file at `path` and, if it is a usable model, puts it in use; otherwise the
    /// error is kept, counted and returned, and the model in use stays.
    pub fn swap_from(&self, path: &Path) -> Result<String, ModelError> {
        match PredictionModel::from_path(path) {
            Ok(model) => {
                let id = model.id().to_owned();
                *self.model.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(model);
                self.swaps.fetch_add(1, Ordering::Relaxed);
                tracing::info!(model = id, path = %path.display(), "edge: prediction model swapped in");
                Ok(id)
            }
            Err(error) => {
                self.refused.fetch_add(1, Ordering::Relaxed);
                tracing::error!(%error, "edge: new prediction model refused; the current one keeps running");
                *self
                    .last_error
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner) = Some(error.to_string());
                Err(error)
            }
        }
    }

    /// What the slot has done.
    pub fn status(&self) -> SlotStatus {
        let model = self.current();
        SlotStatus {
            model_id: model.id().to_owned(),
            model_source: model.source().to_owned(),
            swaps: self.swaps.load(Ordering::Relaxed),
            refused: self.refused.load(Ordering::Relaxed),
            last_error: self
                .last_error
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .clone(),
        }
    }
}

fn modified(path: &Path) -> Option<(SystemTime, u64)> {
    let meta = std::fs::metadata(path).ok()?;
    Some((meta.modified().ok()?, meta.len()))
}

/// Watches the model file at `path` every `every` until `shutdown`: when its modification time
/// or size changes, the new file is loaded (off the async threads) and swapped in, or refused.
/// Replace the file by writing a new one beside it and renaming it over the old one, so a
/// half-written file is never read.
pub async fn watch_file(
    slot: Arc<ModelSlot>,
    path: PathBuf,
    every: Duration,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut seen = modified(&path);
    loop {
        tokio::select! {
            () = tokio::time::sleep(every) => {}
            _ = shutdown.changed() => return,
        }
        let now = modified(&path);
        if now.is_none() || now == seen {
            continue;
        }
        seen = now;
        let slot = slot.clone();
        let path = path.clone();
        let _ = tokio::task::spawn_blocking(move || slot.swap_from(&path)).await;
    }
}

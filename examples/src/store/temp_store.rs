//! A store file for tests: in the system temp dir, named by the test, removed when dropped.

/// A store file path in the system temp dir, unique per process and `name`, removed on drop.
#[derive(Debug)]
pub struct TempStore(pub std::path::PathBuf);

impl TempStore {
    /// A fresh path for `name` (any file left by an earlier run is removed).
    pub fn new(name: &str) -> TempStore {
        let path = std::env::temp_dir().join(format!(
            "iot-examples-store-{}-{name}.redb",
            std::process::id()
        ));
        let _ = std::fs::remove_file(&path);
        TempStore(path)
    }
}

impl Drop for TempStore {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

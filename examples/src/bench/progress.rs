//! The progress bar (indicatif, on stderr, only on a terminal): elapsed time of the run and a live
//! counter of what is being measured.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};

/// A running progress bar; dropped or [`finish`](Progress::finish)ed, it disappears.
#[derive(Debug)]
pub struct Progress {
    bar: ProgressBar,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Progress {
    /// Shows `what` for `total` with `counter` as the live count (e.g. messages received);
    /// nothing is drawn unless `enabled` and stderr is a terminal.
    pub fn start(enabled: bool, what: &str, total: Duration, counter: Arc<AtomicU64>) -> Progress {
        let show = enabled && std::io::IsTerminal::is_terminal(&std::io::stderr());
        let bar = if show {
            ProgressBar::new(u64::try_from(total.as_millis()).unwrap_or(u64::MAX).max(1))
        } else {
            ProgressBar::hidden()
        };
        if let Ok(style) =
            ProgressStyle::with_template("{prefix} [{elapsed_precise}] {wide_bar} {msg}")
        {
            bar.set_style(style);
        }
        bar.set_prefix(what.to_owned());
        let task = show.then(|| {
            let bar = bar.clone();
            tokio::spawn(async move {
                let started = tokio::time::Instant::now();
                let mut tick = tokio::time::interval(Duration::from_millis(200));
                let mut last = 0u64;
                loop {
                    tick.tick().await;
                    let now = counter.load(Ordering::Relaxed);
                    bar.set_position(u64::try_from(started.elapsed().as_millis()).unwrap_or(0));
                    bar.set_message(format!("{now} ({}/s)", (now.saturating_sub(last)) * 5));
                    last = now;
                }
            })
        });
        Progress { bar, task }
    }

    /// Removes the bar.
    pub fn finish(mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
        self.bar.finish_and_clear();
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.stop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_hidden_bar_starts_and_finishes() {
        let p = Progress::start(
            false,
            "x",
            Duration::from_secs(1),
            Arc::new(AtomicU64::new(0)),
        );
        assert!(p.task.is_none());
        p.finish();
    }
}

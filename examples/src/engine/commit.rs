//! Group commit: the engine hands each turn's store changes to a commit thread and goes on with
//! the next turn; the commit thread writes every batch waiting for it in one transaction (one
//! fsync), then reports the last sequence number it made durable. The engine holds each turn's
//! packets and answers until the commit that holds its changes is reported (see `Held` in the
//! engine), so an acknowledgement still never leaves before its data is on disk, while nothing
//! else waits for the disk.
//!
//! Bound: the engine submits at most one batch per turn and stops taking new events while
//! [`MAX_HELD_TURNS`] turns wait for their commit, so the commit queue holds at most that many
//! batches.

use std::collections::VecDeque;
use std::thread::JoinHandle;

use crossbeam_channel::{Receiver, Sender};

use crate::store::{Batch, Committer, StoreError};

/// Turns whose output may wait for a commit before the engine stops taking new events (and
/// waits for the commit thread instead).
pub const MAX_HELD_TURNS: usize = 256;

/// Batches written in one transaction at most.
const MAX_GROUP: usize = 1024;

/// The commit thread and what the engine knows of it.
#[derive(Debug)]
pub struct GroupCommit {
    batches: Option<Sender<(u64, Batch)>>,
    done: Receiver<Result<u64, StoreError>>,
    thread: Option<JoinHandle<()>>,
    /// The last sequence number submitted.
    submitted: u64,
    /// The last sequence number reported durable.
    durable: u64,
    /// Transactions committed.
    commits: u64,
}

impl GroupCommit {
    /// Starts the commit thread over `committer`.
    pub fn start(committer: Committer) -> Result<GroupCommit, StoreError> {
        // Bounded by the engine's own limit: it submits one batch per held turn and holds at most
        // MAX_HELD_TURNS, and each report answers at least one batch; so a send never waits.
        let (batches, batches_rx) = crossbeam_channel::bounded::<(u64, Batch)>(MAX_HELD_TURNS + 1);
        let (done_tx, done) = crossbeam_channel::bounded(MAX_HELD_TURNS + 1);
        let thread = std::thread::Builder::new()
            .name("store-commit".into())
            .spawn(move || commit_loop(&committer, &batches_rx, &done_tx))
            .map_err(StoreError::CommitThread)?;
        Ok(GroupCommit {
            batches: Some(batches),
            done,
            thread: Some(thread),
            submitted: 0,
            durable: 0,
            commits: 0,
        })
    }

    /// Hands `batch` to the commit thread; returns its sequence number.
    pub fn submit(&mut self, batch: Batch) -> u64 {
        self.submitted += 1;
        if let Some(batches) = &self.batches {
            // A send fails only when the thread has stopped after a failed commit, which the
            // engine learns from `done`.
            let _ = batches.send((self.submitted, batch));
        }
        self.submitted
    }

    /// The last sequence number submitted (the one a turn without changes of its own waits for).
    pub fn submitted(&self) -> u64 {
        self.submitted
    }

    /// The last sequence number known durable.
    pub fn durable(&self) -> u64 {
        self.durable
    }

    /// Transactions committed so far.
    pub fn commits(&self) -> u64 {
        self.commits
    }

    /// Whether a submitted batch is not yet known durable.
    pub fn waiting(&self) -> bool {
        self.durable < self.submitted
    }

    /// Where the commit thread reports (for the engine's `select!`).
    pub fn reports(&self) -> &Receiver<Result<u64, StoreError>> {
        &self.done
    }

    /// Takes in one report of the commit thread.
    pub fn on_report(&mut self, report: Result<u64, StoreError>) -> Result<u64, StoreError> {
        let seq = report?;
        self.durable = self.durable.max(seq);
        self.commits += 1;
        Ok(self.durable)
    }

    /// Blocks until everything submitted is durable.
    pub fn wait_all(&mut self) -> Result<(), StoreError> {
        while self.waiting() {
            match self.done.recv() {
                Ok(report) => {
                    self.on_report(report)?;
                }
                Err(_) => {
                    return Err(StoreError::CommitStopped);
                }
            }
        }
        Ok(())
    }

    /// Blocks until the next report.
    pub fn wait_one(&mut self) -> Result<(), StoreError> {
        match self.done.recv() {
            Ok(report) => self.on_report(report).map(|_| ()),
            Err(_) => Err(StoreError::CommitStopped),
        }
    }
}

impl Drop for GroupCommit {
    fn drop(&mut self) {
        self.batches = None;
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn commit_loop(
    committer: &Committer,
    batches: &Receiver<(u64, Batch)>,
    done: &Sender<Result<u64, StoreError>>,
) {
    let mut group = VecDeque::new();
    while let Ok(first) = batches.recv() {
        let mut last = first.0;
        group.push_back(first.1);
        while group.len() < MAX_GROUP {
            match batches.try_recv() {
                Ok((seq, batch)) => {
                    last = seq;
                    group.push_back(batch);
                }
                Err(_) => break,
            }
        }
        let result = committer.commit(group.drain(..).collect()).map(|()| last);
        let failed = result.is_err();
        if done.send(result).is_err() || failed {
            return;
        }
    }
}

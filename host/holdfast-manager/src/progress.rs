//! Live progress of running operations, for the CLI's progress bars.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    Create,
    Restore,
    Delete,
    /// Copying a volume into a snapshot (keyed by the snapshot's id).
    Snapshot,
}

impl Operation {
    pub fn as_str(self) -> &'static str {
        match self {
            Operation::Create => "create",
            Operation::Restore => "restore",
            Operation::Delete => "delete",
            Operation::Snapshot => "snapshot",
        }
    }
}

#[derive(Debug, Clone)]
pub struct Progress {
    pub operation: Operation,
    pub bytes_done: u64,
    pub bytes_total: u64,
    /// Data bytes actually read or written (holes and zero runs excluded).
    pub bytes_moved: u64,
}

struct Entry {
    operation: Operation,
    done: Arc<AtomicU64>,
    moved: Arc<AtomicU64>,
    cancel: Arc<AtomicBool>,
    total: u64,
    /// False while it waits for a `--max-operations` slot: cancellable, not yet shown.
    started: bool,
}

/// Handles of one running operation: its progress counter and its cancel flag.
pub(crate) struct Running {
    pub done: Arc<AtomicU64>,
    pub moved: Arc<AtomicU64>,
    pub cancel: Arc<AtomicBool>,
}

#[derive(Default)]
pub(crate) struct Tracker(Mutex<HashMap<String, Entry>>);

impl Tracker {
    /// Register an operation that runs now; returns the counter the driver host
    /// advances and the flag that cancels it.
    pub fn start(&self, backup_id: &str, operation: Operation, total: u64) -> Running {
        let running = self.queue(backup_id, operation, total);
        self.begin(backup_id);
        running
    }

    /// Register an operation that still waits for its turn: it can be cancelled, but
    /// shows no progress until [`Tracker::begin`].
    pub fn queue(&self, backup_id: &str, operation: Operation, total: u64) -> Running {
        let (done, moved, cancel) =
            (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)), Arc::new(AtomicBool::new(false)));
        let entry = Entry {
            operation,
            done: done.clone(),
            moved: moved.clone(),
            cancel: cancel.clone(),
            total,
            started: false,
        };
        self.0.lock().expect("progress lock").insert(backup_id.to_owned(), entry);
        Running { done, moved, cancel }
    }

    /// A queued operation got its slot and moves data from now on.
    pub fn begin(&self, backup_id: &str) {
        if let Some(e) = self.0.lock().expect("progress lock").get_mut(backup_id) {
            e.started = true;
        }
    }

    /// Ask the running operation on `backup_id` to stop; false if none runs.
    pub fn cancel(&self, backup_id: &str) -> bool {
        let map = self.0.lock().expect("progress lock");
        map.get(backup_id).map(|e| e.cancel.store(true, Ordering::Relaxed)).is_some()
    }

    /// The operation on `backup_id`, running or waiting for its turn.
    pub fn operation(&self, backup_id: &str) -> Option<Operation> {
        self.0.lock().expect("progress lock").get(backup_id).map(|e| e.operation)
    }

    pub fn finish(&self, backup_id: &str) {
        self.0.lock().expect("progress lock").remove(backup_id);
    }

    pub fn get(&self, backup_id: &str) -> Option<Progress> {
        let map = self.0.lock().expect("progress lock");
        map.get(backup_id).filter(|e| e.started).map(|e| Progress {
            operation: e.operation,
            bytes_done: e.done.load(Ordering::Relaxed).min(e.total),
            bytes_total: e.total,
            bytes_moved: e.moved.load(Ordering::Relaxed),
        })
    }
}

/// Resolves once `flag` is set: lets a queued operation stop waiting for its slot
/// the moment a force delete or reset cancels it.
pub(crate) async fn until_cancelled(flag: &AtomicBool) {
    while !flag.load(Ordering::Relaxed) {
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

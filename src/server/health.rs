//! Whether storage is keeping up, as `/api/health` and `/metrics` report it:
//! the journal's sync (a failure there stops all edits) and rooms whose
//! snapshots keep failing (they back off and retry; their edits are still
//! journaled, but loading them grows slower and the disk may be full).

use super::persist::UpdateWriter;
use std::sync::{
    atomic::{AtomicU64, AtomicUsize, Ordering},
    Arc,
};

#[derive(Default)]
pub struct StorageHealth {
    /// Rooms whose latest snapshot attempt failed.
    failing_snapshots: AtomicUsize,
    /// Storage operations that failed, all kinds together.
    errors: AtomicU64,
}

impl StorageHealth {
    /// Counts a failed storage operation.
    pub fn count_error(&self) {
        self.errors.fetch_add(1, Ordering::Relaxed);
    }

    pub fn errors(&self) -> u64 {
        self.errors.load(Ordering::Relaxed)
    }

    /// A room's snapshot started or stopped failing.
    pub fn snapshot_failing(&self, failing: bool) {
        if failing {
            self.failing_snapshots.fetch_add(1, Ordering::Relaxed);
        } else {
            self.failing_snapshots.fetch_sub(1, Ordering::Relaxed);
        }
    }

    /// Why storage is degraded, if it is.
    pub fn degraded_reason(&self, writer: &Arc<UpdateWriter>) -> Option<String> {
        if let Some(e) = writer.failure() {
            return Some(format!("the journal cannot be synced to disk: {e}"));
        }
        match self.failing_snapshots.load(Ordering::Relaxed) {
            0 => None,
            n => Some(format!("snapshots are failing in {n} session(s)")),
        }
    }
}

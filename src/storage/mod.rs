//! Persistence behind one trait: session metadata, each session's append-only
//! update log (with timestamps, for playback) and its latest compacted snapshot.
//!
//! The default backend is [`embedded::EmbeddedStorage`] (redb, one file in the data
//! dir, no server to run), with [`journaled`] appends in front of its update log
//! ([`journal`] is that file's format, written through [`mapped_file`] where that
//! is safe). [`redis::RedisStorage`] keeps the same
//! on a Redis server (cluster mode, issue 14); both pass the one suite in
//! `conformance`. Calls are blocking: async callers go through `spawn_blocking`, except
//! `append_updates`, which is made cheap enough to call inline (see
//! `server::persist`).

#[cfg(test)]
mod conformance;
pub mod embedded;
pub mod journal;
pub mod journaled;
mod log_rows;
mod mapped_file;
pub mod redis;
#[cfg(test)]
pub(crate) mod test_redis;

use crate::domain::{SessionId, SessionMeta};

pub use embedded::EmbeddedStorage;

/// A storage failure. The message is for logs, not for users.
#[derive(Debug, Clone, thiserror::Error)]
#[error("storage: {0}")]
pub struct StorageError(pub String);

pub type StorageResult<T> = Result<T, StorageError>;

/// One document update to append to a session's log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UpdateRecord {
    pub session: SessionId,
    /// When the server received it, ms since the Unix epoch.
    pub at_ms: u64,
    /// Who made it: the Yjs client id of the connection that sent it (see
    /// `rooms::state`), 0 for the server's own or unknown.
    pub author: u64,
    /// A yrs v1 update.
    pub update: Vec<u8>,
}

/// One entry of a session's update log, as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoggedUpdate {
    /// Position in the session's log, increasing from 1.
    pub seq: u64,
    pub at_ms: u64,
    /// As [`UpdateRecord::author`] (0 for updates stored before authors were).
    pub author: u64,
    pub update: Vec<u8>,
}

/// What it takes to rebuild a session's document: the latest snapshot and the
/// updates logged after it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StoredDocument {
    /// A yrs v1 update holding the whole document as of `snapshot_seq`.
    pub snapshot: Option<Vec<u8>>,
    /// The last log entry the snapshot includes (0 = none).
    pub snapshot_seq: u64,
    /// Updates logged after the snapshot, oldest first.
    pub updates: Vec<LoggedUpdate>,
    /// Update bytes the session has stored over its life.
    pub history_bytes: u64,
    /// For a log that several instances share (Redis): where this read of it
    /// stopped, so following it goes on from there with no gap. None for a
    /// backend with one writer.
    pub log_position: Option<String>,
}

impl StoredDocument {
    /// The snapshot (if any) then the later updates: the order to apply them in.
    pub fn updates_in_order(&self) -> impl Iterator<Item = &[u8]> {
        self.snapshot
            .iter()
            .map(Vec::as_slice)
            .chain(self.updates.iter().map(|logged| logged.update.as_slice()))
    }
}

/// The write side of the update log: what the sync hot path calls, apart so
/// that the writer (`server::persist`) can be tested against a stand-in.
pub trait UpdateSink: Send + Sync + 'static {
    /// Appends updates (in order, all or none). When it returns they survive a
    /// crash or kill of the process; they survive a power cut once
    /// [`UpdateSink::sync_updates`] has returned too. Updates of unknown sessions
    /// are not stored (a backend may report that at the sync). Called for every edit on the sync hot path, so it must be
    /// cheap. (The session's last activity moves to the updates' timestamps when
    /// they are folded into the log, not here.)
    fn append_updates(&self, batch: Vec<UpdateRecord>) -> StorageResult<()>;
    /// Puts every update appended so far on disk, safe from a power cut. A
    /// failure means earlier appends may not be on disk: treat it as fatal.
    fn sync_updates(&self) -> StorageResult<()>;
    /// Moves whatever is buffered for speed into its final place (called on
    /// graceful shutdown, so the next start has nothing to replay).
    fn flush(&self) -> StorageResult<()>;
    /// Whether an update is safe from a crash of pairpad once
    /// [`UpdateSink::append_updates`] returns (the embedded journal: a write to
    /// the page cache). A backend that only queues it there (Redis) says no:
    /// the server then relays an update only after `sync_updates`.
    fn durable_on_append(&self) -> bool {
        true
    }
    /// Whether a failed sync means the store cannot be trusted again (the
    /// journal: a failed `fdatasync` may have lost earlier writes), so nothing
    /// more is accepted until a restart. A backend whose failures pass (Redis
    /// unreachable for a while) says no: only the updates of the failed sync
    /// are refused, and their senders send them again when they reconnect.
    fn failures_are_final(&self) -> bool {
        true
    }
}

/// Everything pairpad persists.
pub trait Storage: UpdateSink {
    /// Records a new session. Fails if the id exists.
    fn insert_session(&self, meta: &SessionMeta) -> StorageResult<()>;
    /// The session's metadata, if it exists.
    fn session(&self, id: SessionId) -> StorageResult<Option<SessionMeta>>;
    /// Sets a session's language (kept in step with the document's meta map).
    fn set_language(&self, id: SessionId, language: crate::domain::Language) -> StorageResult<()>;
    /// Changes a session's record (the interviewer's settings: password,
    /// ended), durably. False if there is no such session.
    fn change_session(
        &self,
        id: SessionId,
        change: &mut dyn FnMut(&mut SessionMeta),
    ) -> StorageResult<bool>;
    /// Deletes a session with its log and snapshot. True if it existed.
    fn delete_session(&self, id: SessionId) -> StorageResult<bool>;
    /// Sessions whose last activity is before `cutoff_ms`.
    fn sessions_inactive_since(&self, cutoff_ms: u64) -> StorageResult<Vec<SessionId>>;
    /// How many sessions exist (notes documents are not sessions).
    fn session_count(&self) -> StorageResult<u64>;
    /// The snapshot and the updates logged after it.
    fn load_document(&self, id: SessionId) -> StorageResult<StoredDocument>;
    /// The whole update log of a session, oldest first (for playback and export).
    fn update_log(&self, id: SessionId) -> StorageResult<Vec<LoggedUpdate>>;
    /// Replaces the session's snapshot with `state`, which must include every update
    /// logged so far (the caller has no append in flight). Returns the last log
    /// entry it covers.
    fn store_snapshot(&self, id: SessionId, state: &[u8]) -> StorageResult<u64>;
    /// [`Storage::store_snapshot`] for a log several instances share: `state`
    /// includes the log up to `position` (a [`StoredDocument::log_position`]
    /// or a later one from following the log), not necessarily its end, and
    /// replaces the stored snapshot only if that covers less. A backend with
    /// one writer has no positions and never calls this for itself.
    fn store_snapshot_at(&self, id: SessionId, state: &[u8], position: &str) -> StorageResult<u64> {
        let _ = position;
        self.store_snapshot(id, state)
    }
}

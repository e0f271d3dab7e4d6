//! The update writer: stores the document updates rooms accept, and decides
//! when they are forced to disk.
//!
//! Every update is written to the journal before it is relayed, inline on the
//! room's own task: a write into the kernel's page cache, a few
//! microseconds. From then on a crash or `kill -9` of pairpad cannot lose it.
//! A syncer thread puts what was written on disk (`fdatasync`), by one of two
//! [`SyncPolicy`]s (`--fsync-interval-ms`):
//! - [`SyncPolicy::Periodic`] (the default, 100 ms): a sync at most that long
//!   after a write. Only a power cut or a kernel crash can lose the writes of
//!   the last interval, and clients that hold those edits send them again when
//!   they reconnect (Yjs sync exchanges what either side lacks).
//! - [`SyncPolicy::EveryUpdate`]: an update is on disk before it is relayed.
//!   Rooms wait for the syncer, which syncs everything written meanwhile in one
//!   go (group commit).
//!
//! Why periodic by default: on this project's 2-core benchmark machine a sync
//! per edit (hand-off to the syncer, `fdatasync`, wake-up) was about half of the
//! server's CPU at 1,000 edits/s; see the README's "Durability".

use crate::storage::{StorageError, StorageResult, UpdateRecord, UpdateSink};
use std::{
    sync::{Arc, Condvar, Mutex, MutexGuard},
    thread::JoinHandle,
    time::{Duration, Instant},
};
use tokio::sync::oneshot;

/// When written updates are forced to disk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SyncPolicy {
    /// Before the update is relayed (rooms wait for it).
    EveryUpdate,
    /// At most this long after it is written.
    Periodic(Duration),
}

impl SyncPolicy {
    /// The policy of `--fsync-interval-ms`: 0 means every update.
    pub fn from_interval_ms(ms: u64) -> Self {
        match ms {
            0 => Self::EveryUpdate,
            ms => Self::Periodic(Duration::from_millis(ms)),
        }
    }
}

pub struct UpdateWriter {
    sink: Arc<dyn UpdateSink>,
    policy: SyncPolicy,
    shared: Arc<Shared>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

/// What the rooms and the syncer thread share.
struct Shared {
    state: Mutex<SyncState>,
    /// Wakes the syncer: something to sync, or stop.
    work: Condvar,
}

#[derive(Default)]
struct SyncState {
    /// Appends written so far (each gets the next number).
    written: u64,
    /// Appends known to be on disk.
    synced: u64,
    /// The syncer was told about writes it has not synced yet.
    sync_due: bool,
    /// Rooms waiting for their append to be on disk (`EveryUpdate`).
    waiting: Vec<(u64, oneshot::Sender<StorageResult<()>>)>,
    /// A sync failed: earlier writes may be missing from disk, so nothing more
    /// is accepted (rooms close their connections; clients keep their edits).
    failed: Option<StorageError>,
    stopping: bool,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, SyncState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl UpdateWriter {
    /// Starts the syncer thread.
    pub fn start(sink: Arc<dyn UpdateSink>, policy: SyncPolicy) -> Self {
        // A sink that only queues on append (Redis) is durable after the sync:
        // rooms must wait for it before they relay.
        let policy = if sink.durable_on_append() {
            policy
        } else {
            SyncPolicy::EveryUpdate
        };
        let shared = Arc::new(Shared {
            state: Mutex::new(SyncState::default()),
            work: Condvar::new(),
        });
        let thread = {
            let (sink, shared) = (sink.clone(), shared.clone());
            std::thread::Builder::new()
                .name("pairpad-sync".into())
                .spawn(move || sync_loop(&*sink, &shared, policy))
                .expect("spawn the storage sync thread")
        };
        Self {
            sink,
            policy,
            shared,
            thread: Mutex::new(Some(thread)),
        }
    }

    /// Stores `records`. When it returns they survive a crash of pairpad, and
    /// with [`SyncPolicy::EveryUpdate`] a power cut too.
    pub async fn append(&self, records: Vec<UpdateRecord>) -> StorageResult<()> {
        if records.is_empty() {
            return Ok(());
        }
        self.accepting()?;
        self.sink.append_updates(records)?;
        let on_disk = {
            let mut state = self.shared.lock();
            state.written += 1;
            let number = state.written;
            // One wake-up per sync, not per write.
            if !state.sync_due {
                state.sync_due = true;
                self.shared.work.notify_one();
            }
            match self.policy {
                SyncPolicy::EveryUpdate => {
                    let (done, synced) = oneshot::channel();
                    state.waiting.push((number, done));
                    Some(synced)
                }
                SyncPolicy::Periodic(_) => None,
            }
        };
        match on_disk {
            Some(synced) => synced
                .await
                .map_err(|_| StorageError("the storage sync thread stopped".into()))?,
            None => Ok(()),
        }
    }

    /// Why the journal cannot be synced, if a sync has failed (edits are then
    /// refused: health reports it).
    pub fn failure(&self) -> Option<StorageError> {
        self.shared.lock().failed.clone()
    }

    /// Fails once a sync has failed or the writer has stopped.
    fn accepting(&self) -> StorageResult<()> {
        let state = self.shared.lock();
        if let Some(e) = &state.failed {
            return Err(e.clone());
        }
        if state.stopping {
            return Err(StorageError("the storage writer has stopped".into()));
        }
        Ok(())
    }

    /// Syncs what was written, folds it into its final place, then stops the
    /// thread. Idempotent.
    pub fn stop(&self) {
        self.shared.lock().stopping = true;
        self.shared.work.notify_one();
        let thread = self.thread.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(thread) = thread {
            let _ = thread.join();
        }
    }
}

fn sync_loop(sink: &dyn UpdateSink, shared: &Shared, policy: SyncPolicy) {
    loop {
        let mut state = shared.lock();
        while !state.sync_due && !state.stopping {
            state = shared.work.wait(state).unwrap_or_else(|p| p.into_inner());
        }
        if let SyncPolicy::Periodic(interval) = policy {
            // Let writes gather for one interval (a stop cuts it short).
            let deadline = Instant::now() + interval;
            while !state.stopping {
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    break;
                }
                state = shared
                    .work
                    .wait_timeout(state, left)
                    .unwrap_or_else(|p| p.into_inner())
                    .0;
            }
        }
        let stopping = state.stopping;
        let through = state.written;
        state.sync_due = false;
        let result = match &state.failed {
            // Never retried: see `UpdateSink::sync_updates`.
            Some(e) => Err(e.clone()),
            None if through > 0 => {
                drop(state);
                let result = sink.sync_updates();
                state = shared.lock();
                result
            }
            None => Ok(()),
        };
        match &result {
            Ok(()) => state.synced = state.synced.max(through),
            Err(e) if !sink.failures_are_final() => {
                // Only this sync's updates are refused; the next may succeed.
                tracing::error!(error = %e, "storing updates failed; their senders will send them again");
            }
            Err(e) if state.failed.is_none() => {
                tracing::error!(error = %e, "syncing stored updates to disk failed; no more updates are accepted");
                state.failed = Some(e.clone());
            }
            Err(_) => {}
        }
        let synced = state.synced;
        let waiting = std::mem::take(&mut state.waiting);
        // A final failure ends every wait; one that passes (Redis) only the
        // waits this sync covered (later appends get their own sync).
        let final_failure = result.is_err() && sink.failures_are_final();
        let (done, still_waiting): (Vec<_>, Vec<_>) = waiting
            .into_iter()
            .partition(|(number, _)| final_failure || *number <= through.max(synced));
        state.waiting = still_waiting;
        let finished = stopping && state.written == synced;
        drop(state);
        for (_, reply) in done {
            let _ = reply.send(result.clone());
        }
        if finished || result.is_err() && stopping {
            break;
        }
    }
    // Leave nothing for the next start to replay.
    if let Err(e) = sink.flush() {
        tracing::error!(error = %e, "flushing storage at shutdown failed");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        domain::{Language, SessionId, SessionMeta},
        storage::{EmbeddedStorage, Storage},
    };
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

    /// A stand-in sink: what was written, and what the last sync put on disk.
    #[derive(Default)]
    struct RecordingSink {
        written: Mutex<Vec<u64>>,
        on_disk: Mutex<Vec<u64>>,
        syncs: AtomicUsize,
        fail_syncs: AtomicBool,
        flushed: AtomicBool,
    }

    impl RecordingSink {
        fn written(&self) -> Vec<u64> {
            self.written.lock().unwrap().clone()
        }

        fn on_disk(&self) -> Vec<u64> {
            self.on_disk.lock().unwrap().clone()
        }
    }

    impl UpdateSink for RecordingSink {
        fn append_updates(&self, batch: Vec<UpdateRecord>) -> StorageResult<()> {
            let mut written = self.written.lock().unwrap();
            written.extend(batch.iter().map(|r| r.at_ms));
            Ok(())
        }

        fn sync_updates(&self) -> StorageResult<()> {
            self.syncs.fetch_add(1, Ordering::SeqCst);
            if self.fail_syncs.load(Ordering::SeqCst) {
                return Err(StorageError("EIO".into()));
            }
            *self.on_disk.lock().unwrap() = self.written();
            Ok(())
        }

        fn flush(&self) -> StorageResult<()> {
            self.flushed.store(true, Ordering::SeqCst);
            Ok(())
        }
    }

    fn record(n: u8) -> Vec<UpdateRecord> {
        vec![UpdateRecord {
            session: SessionId::from_u128(0xa0b1c2d3_e4f5_4a6b_8c7d_0123456789ab).unwrap(),
            at_ms: u64::from(n),
            author: 0,
            update: vec![n],
        }]
    }

    #[tokio::test]
    async fn every_update_policy_returns_only_once_the_update_is_on_disk() {
        let sink = Arc::new(RecordingSink::default());
        let writer = Arc::new(UpdateWriter::start(sink.clone(), SyncPolicy::EveryUpdate));
        let mut tasks = Vec::new();
        for i in 0..50u8 {
            let (writer, sink) = (writer.clone(), sink.clone());
            tasks.push(tokio::spawn(async move {
                writer.append(record(i)).await.unwrap();
                sink.on_disk().contains(&u64::from(i))
            }));
        }
        for task in tasks {
            assert!(task.await.unwrap(), "on disk when append returned");
        }
        let syncs = sink.syncs.load(Ordering::SeqCst);
        assert!(syncs <= 50, "at most one sync per append ({syncs})");
        writer.stop();
        assert!(sink.flushed.load(Ordering::SeqCst), "stop flushes");
    }

    #[tokio::test]
    async fn periodic_policy_returns_at_once_and_syncs_soon_after() {
        let sink = Arc::new(RecordingSink::default());
        let writer = UpdateWriter::start(
            sink.clone(),
            SyncPolicy::Periodic(Duration::from_millis(20)),
        );
        for i in 0..10 {
            writer.append(record(i)).await.unwrap();
        }
        assert_eq!(sink.written().len(), 10, "written when append returns");
        // The syncer gets to it without any further append.
        for _ in 0..500 {
            if sink.on_disk().len() == 10 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(sink.on_disk().len(), 10, "synced in the background");
        let syncs = sink.syncs.load(Ordering::SeqCst);
        assert!(
            syncs < 10,
            "writes share syncs ({syncs} syncs for 10 writes)"
        );
        writer.stop();
        writer.stop();
        assert!(writer.append(record(11)).await.is_err(), "stopped");
    }

    #[tokio::test]
    async fn a_failed_sync_fails_the_waiting_append_and_refuses_later_ones() {
        let sink = Arc::new(RecordingSink::default());
        sink.fail_syncs.store(true, Ordering::SeqCst);
        let writer = UpdateWriter::start(sink.clone(), SyncPolicy::EveryUpdate);
        assert!(writer.append(record(1)).await.is_err());
        assert!(writer.append(record(2)).await.is_err());
        assert_eq!(
            sink.written(),
            vec![1],
            "nothing is written after a failed sync"
        );
        assert_eq!(
            sink.syncs.load(Ordering::SeqCst),
            1,
            "a failed sync is not retried"
        );
        writer.stop();
    }

    #[tokio::test]
    async fn stop_syncs_what_a_periodic_writer_has_not_yet() {
        let sink = Arc::new(RecordingSink::default());
        let writer = UpdateWriter::start(
            sink.clone(),
            SyncPolicy::Periodic(Duration::from_secs(3600)),
        );
        writer.append(record(1)).await.unwrap();
        writer.stop();
        assert_eq!(sink.on_disk(), vec![1]);
        assert!(sink.flushed.load(Ordering::SeqCst));
    }

    #[tokio::test]
    async fn appended_updates_reach_the_real_log() {
        let dir = tempfile::tempdir().unwrap();
        let storage = Arc::new(EmbeddedStorage::open(dir.path()).unwrap());
        let meta = SessionMeta::new(SessionId::new_random(), Language::JavaScript, 1);
        storage.insert_session(&meta).unwrap();
        for policy in [
            SyncPolicy::EveryUpdate,
            SyncPolicy::Periodic(Duration::from_millis(5)),
        ] {
            let writer = UpdateWriter::start(storage.clone(), policy);
            for i in 0..5u8 {
                let mut records = record(i);
                records[0].session = meta.id;
                writer.append(records).await.unwrap();
            }
            writer.stop();
        }
        assert_eq!(storage.update_log(meta.id).unwrap().len(), 10);
    }
}

//! The embedded backend: one redb database file in the data dir, fronted by a
//! journal for the update log's hot path.
//!
//! Tables: `sessions` (id -> JSON metadata), `log` ((id, seq of the row's first
//! entry) -> timestamped updates, see [`super::log_rows`]: the append-only update
//! log), `snapshots` (id -> covered seq + state) and `journal` (the last journal
//! generation folded into `log`).
//!
//! Appended updates are stored once they are written to the journal (on disk
//! after the next [`UpdateSink::sync_updates`]), and are folded into `log` in
//! the background (see [`super::journaled`]); any read of a
//! session's log first folds what it has in the journal, and so does
//! [`UpdateSink::flush`]. Opening replays whatever a crash left unfolded. Other
//! changes are redb commits, durable (fsync) before `commit` returns.

use super::{
    journaled::JournaledUpdates, log_rows, LoggedUpdate, Storage, StorageError, StorageResult,
    StoredDocument, UpdateRecord, UpdateSink,
};
use crate::domain::{Language, SessionId, SessionMeta};
use redb::{
    Database, ReadableTable, ReadableTableMetadata, TableDefinition, TableHandle, WriteTransaction,
};
use std::{path::Path, sync::Arc};

const SESSIONS: TableDefinition<u128, &[u8]> = TableDefinition::new("sessions");
const LOG: TableDefinition<(u128, u64), &[u8]> = TableDefinition::new("log");
/// The log as earlier pairpad builds wrote it: one row per update, (id, seq) ->
/// timestamp (u64 LE) + update. Moved into `log` on open.
const LEGACY_UPDATES: TableDefinition<(u128, u64), &[u8]> = TableDefinition::new("updates");
const SNAPSHOTS: TableDefinition<u128, &[u8]> = TableDefinition::new("snapshots");
/// The ids among `SESSIONS` that are interviewers' notes documents, so that
/// counting sessions stays O(1) and does not count them.
const NOTES_DOCS: TableDefinition<u128, ()> = TableDefinition::new("notes_docs");
const JOURNAL_STATE: TableDefinition<&str, u64> = TableDefinition::new("journal");
const FOLDED_GENERATION: &str = "folded_generation";

/// File name of the database inside the data dir.
pub const DATABASE_FILE: &str = "pairpad.redb";

/// Storage in a redb file.
pub struct EmbeddedStorage {
    db: Arc<Database>,
    updates: Arc<JournaledUpdates>,
}

fn err(e: impl std::fmt::Display) -> StorageError {
    StorageError(e.to_string())
}

fn encode_meta(meta: &SessionMeta) -> StorageResult<Vec<u8>> {
    serde_json::to_vec(meta).map_err(err)
}

fn decode_meta(bytes: &[u8]) -> StorageResult<SessionMeta> {
    serde_json::from_slice(bytes).map_err(err)
}

/// Every key of a session's log rows.
fn session_rows(id: SessionId) -> std::ops::RangeInclusive<(u128, u64)> {
    let key = id.as_u128();
    (key, 0)..=(key, u64::MAX)
}

/// The sequence number of a session's newest log entry (0 if none).
fn last_seq(
    log: &impl ReadableTable<(u128, u64), &'static [u8]>,
    id: SessionId,
) -> StorageResult<u64> {
    let Some(last) = log
        .range(session_rows(id))
        .map_err(err)?
        .next_back()
        .transpose()
        .map_err(err)?
    else {
        return Ok(0);
    };
    let count = log_rows::entry_count(last.1.value()).map_err(StorageError)?;
    Ok((last.0.value().1 + count).saturating_sub(1))
}

/// A session's log entries numbered above `after_seq`, in order.
fn read_log(
    log: &impl ReadableTable<(u128, u64), &'static [u8]>,
    id: SessionId,
    after_seq: u64,
) -> StorageResult<Vec<LoggedUpdate>> {
    let key = id.as_u128();
    // Start at the row holding entry `after_seq + 1`: the last one starting at
    // or before it.
    let first_wanted = after_seq.saturating_add(1);
    let start = log
        .range((key, 0)..=(key, first_wanted))
        .map_err(err)?
        .next_back()
        .transpose()
        .map_err(err)?
        .map_or(first_wanted, |(row_key, _)| row_key.value().1);
    let mut entries = Vec::new();
    for row in log.range((key, start)..=(key, u64::MAX)).map_err(err)? {
        let (row_key, value) = row.map_err(err)?;
        log_rows::decode_after(row_key.value().1, value.value(), after_seq, &mut entries)
            .map_err(|e| StorageError(format!("log of {id}: {e}")))?;
    }
    Ok(entries)
}

/// Rewrites a log in the legacy layout (one row per update) into `log`, each
/// update a row of one entry, and drops the legacy table.
fn migrate_legacy_log(tx: &WriteTransaction) -> StorageResult<()> {
    let has_legacy = tx
        .list_tables()
        .map_err(err)?
        .any(|table| table.name() == LEGACY_UPDATES.name());
    if !has_legacy {
        return Ok(());
    }
    {
        let legacy = tx.open_table(LEGACY_UPDATES).map_err(err)?;
        let mut log = tx.open_table(LOG).map_err(err)?;
        for row in legacy.iter().map_err(err)? {
            let (key, value) = row.map_err(err)?;
            let (session, seq) = key.value();
            let value = value.value();
            if value.len() < 8 {
                return Err(StorageError(format!("legacy log entry {seq} is truncated")));
            }
            let (at_ms, update) = value.split_at(8);
            let at_ms = u64::from_le_bytes(at_ms.try_into().expect("8 bytes"));
            let row = log_rows::encode([(at_ms, 0, update)].into_iter());
            log.insert((session, seq), row.as_slice()).map_err(err)?;
        }
    }
    tx.delete_table(LEGACY_UPDATES).map_err(err)?;
    Ok(())
}

/// redb's page cache. Its default, 1 GiB, lets the process keep every page a
/// fold or a session load ever touched (2.7 MiB after loading 2,500 sessions,
/// measured with heaptrack, and growing with use). Reads are rare here (loading
/// a session, folding the journal every 10 s) and the operating system caches
/// the file anyway, so a small cache costs a few page reads now and then.
const CACHE_BYTES: usize = 1 << 20;

impl EmbeddedStorage {
    /// Opens (or creates) the database and journal in `data_dir`, creating the dir
    /// if needed, and folds in what the journal holds from an earlier run.
    pub fn open(data_dir: &Path) -> StorageResult<Self> {
        std::fs::create_dir_all(data_dir).map_err(err)?;
        let db = redb::Builder::new()
            .set_cache_size(CACHE_BYTES)
            .create(data_dir.join(DATABASE_FILE))
            .map_err(err)?;
        // Create the tables up front so that readers never meet a missing table.
        let tx = db.begin_write().map_err(err)?;
        let folded_generation;
        {
            tx.open_table(SESSIONS).map_err(err)?;
            tx.open_table(NOTES_DOCS).map_err(err)?;
            tx.open_table(LOG).map_err(err)?;
            migrate_legacy_log(&tx)?;
            tx.open_table(SNAPSHOTS).map_err(err)?;
            let state = tx.open_table(JOURNAL_STATE).map_err(err)?;
            folded_generation = state
                .get(FOLDED_GENERATION)
                .map_err(err)?
                .map(|v| v.value())
                .unwrap_or(0);
        }
        tx.commit().map_err(err)?;

        let db = Arc::new(db);
        let folding_db = db.clone();
        let updates = JournaledUpdates::open(
            data_dir,
            folded_generation,
            Box::new(move |records, generation| commit_fold(&folding_db, records, generation)),
        )?;
        Ok(Self { db, updates })
    }

    fn update_meta(
        &self,
        id: SessionId,
        change: impl FnOnce(&mut SessionMeta),
    ) -> StorageResult<()> {
        let tx = self.db.begin_write().map_err(err)?;
        change_meta(&mut tx.open_table(SESSIONS).map_err(err)?, id, change)?;
        tx.commit().map_err(err)
    }
}

/// Applies `change` to the stored metadata of `id`, writing it back only if it
/// changed. False if there is no such session.
fn change_meta(
    sessions: &mut redb::Table<u128, &'static [u8]>,
    id: SessionId,
    change: impl FnOnce(&mut SessionMeta),
) -> StorageResult<bool> {
    let Some(stored) = sessions.get(id.as_u128()).map_err(err)? else {
        return Ok(false);
    };
    let before = decode_meta(stored.value())?;
    drop(stored);
    let mut meta = before.clone();
    change(&mut meta);
    if meta != before {
        sessions
            .insert(id.as_u128(), encode_meta(&meta)?.as_slice())
            .map_err(err)?;
    }
    Ok(true)
}

impl UpdateSink for EmbeddedStorage {
    fn append_updates(&self, batch: Vec<UpdateRecord>) -> StorageResult<()> {
        self.updates.append(batch)
    }

    fn sync_updates(&self) -> StorageResult<()> {
        self.updates.sync()
    }

    fn flush(&self) -> StorageResult<()> {
        self.updates.fold_all()
    }
}

impl Storage for EmbeddedStorage {
    fn insert_session(&self, meta: &SessionMeta) -> StorageResult<()> {
        let tx = self.db.begin_write().map_err(err)?;
        {
            let mut sessions = tx.open_table(SESSIONS).map_err(err)?;
            if sessions.get(meta.id.as_u128()).map_err(err)?.is_some() {
                return Err(StorageError(format!("session {} exists", meta.id)));
            }
            sessions
                .insert(meta.id.as_u128(), encode_meta(meta)?.as_slice())
                .map_err(err)?;
            if meta.notes_of.is_some() {
                let mut notes = tx.open_table(NOTES_DOCS).map_err(err)?;
                notes.insert(meta.id.as_u128(), ()).map_err(err)?;
            }
        }
        tx.commit().map_err(err)
    }

    fn session(&self, id: SessionId) -> StorageResult<Option<SessionMeta>> {
        let tx = self.db.begin_read().map_err(err)?;
        let sessions = tx.open_table(SESSIONS).map_err(err)?;
        let value = sessions.get(id.as_u128()).map_err(err)?;
        value.map(|v| decode_meta(v.value())).transpose()
    }

    fn set_language(&self, id: SessionId, language: Language) -> StorageResult<()> {
        self.update_meta(id, |meta| meta.language = language)
    }

    fn change_session(
        &self,
        id: SessionId,
        change: &mut dyn FnMut(&mut SessionMeta),
    ) -> StorageResult<bool> {
        let tx = self.db.begin_write().map_err(err)?;
        let existed = change_meta(&mut tx.open_table(SESSIONS).map_err(err)?, id, change)?;
        tx.commit().map_err(err)?;
        Ok(existed)
    }

    fn delete_session(&self, id: SessionId) -> StorageResult<bool> {
        let tx = self.db.begin_write().map_err(err)?;
        let existed;
        {
            let mut sessions = tx.open_table(SESSIONS).map_err(err)?;
            existed = sessions.remove(id.as_u128()).map_err(err)?.is_some();
            let mut notes = tx.open_table(NOTES_DOCS).map_err(err)?;
            notes.remove(id.as_u128()).map_err(err)?;
            let mut snapshots = tx.open_table(SNAPSHOTS).map_err(err)?;
            snapshots.remove(id.as_u128()).map_err(err)?;
            let mut log = tx.open_table(LOG).map_err(err)?;
            log.retain_in(session_rows(id), |_, _| false).map_err(err)?;
        }
        tx.commit().map_err(err)?;
        Ok(existed)
    }

    fn sessions_inactive_since(&self, cutoff_ms: u64) -> StorageResult<Vec<SessionId>> {
        let tx = self.db.begin_read().map_err(err)?;
        let sessions = tx.open_table(SESSIONS).map_err(err)?;
        let mut inactive = Vec::new();
        for entry in sessions.iter().map_err(err)? {
            let (_, value) = entry.map_err(err)?;
            let meta = decode_meta(value.value())?;
            if meta.last_activity_ms < cutoff_ms {
                inactive.push(meta.id);
            }
        }
        Ok(inactive)
    }

    fn session_count(&self) -> StorageResult<u64> {
        let tx = self.db.begin_read().map_err(err)?;
        let sessions = tx.open_table(SESSIONS).map_err(err)?;
        let notes = tx.open_table(NOTES_DOCS).map_err(err)?;
        Ok(sessions.len().map_err(err)? - notes.len().map_err(err)?)
    }

    fn load_document(&self, id: SessionId) -> StorageResult<StoredDocument> {
        self.updates.fold_session(id)?;
        let tx = self.db.begin_read().map_err(err)?;
        let snapshots = tx.open_table(SNAPSHOTS).map_err(err)?;
        let (snapshot, snapshot_seq) = match snapshots.get(id.as_u128()).map_err(err)? {
            Some(value) => {
                let bytes = value.value();
                if bytes.len() < 8 {
                    return Err(StorageError(format!("snapshot of {id} is truncated")));
                }
                let (seq, state) = bytes.split_at(8);
                (
                    Some(state.to_vec()),
                    u64::from_le_bytes(seq.try_into().expect("8 bytes")),
                )
            }
            None => (None, 0),
        };
        let updates = read_log(&tx.open_table(LOG).map_err(err)?, id, snapshot_seq)?;
        let sessions = tx.open_table(SESSIONS).map_err(err)?;
        let history_bytes = match sessions.get(id.as_u128()).map_err(err)? {
            Some(value) => decode_meta(value.value())?.history_bytes,
            None => 0,
        };
        Ok(StoredDocument {
            snapshot,
            snapshot_seq,
            updates,
            history_bytes,
            log_position: None,
        })
    }

    fn update_log(&self, id: SessionId) -> StorageResult<Vec<LoggedUpdate>> {
        self.updates.fold_session(id)?;
        let tx = self.db.begin_read().map_err(err)?;
        read_log(&tx.open_table(LOG).map_err(err)?, id, 0)
    }

    fn store_snapshot(&self, id: SessionId, state: &[u8]) -> StorageResult<u64> {
        // The snapshot covers the log up to its last entry: that must include
        // everything still in the journal.
        self.updates.fold_session(id)?;
        let tx = self.db.begin_write().map_err(err)?;
        let through_seq;
        {
            let log = tx.open_table(LOG).map_err(err)?;
            through_seq = last_seq(&log, id)?;
            let mut snapshots = tx.open_table(SNAPSHOTS).map_err(err)?;
            let mut value = Vec::with_capacity(8 + state.len());
            value.extend_from_slice(&through_seq.to_le_bytes());
            value.extend_from_slice(state);
            snapshots
                .insert(id.as_u128(), value.as_slice())
                .map_err(err)?;
        }
        tx.commit().map_err(err)?;
        Ok(through_seq)
    }
}

/// Appends `batch` to the log in `tx`: one row per session, numbered on from
/// the session's last entry, and moves each session's last activity up to its
/// newest update (the one place activity is recorded: it is then exactly as
/// durable as the edits, and a journal replay after a crash restores it).
/// Updates of unknown (deleted) sessions are dropped.
fn insert_log(tx: &WriteTransaction, batch: &[UpdateRecord]) -> StorageResult<()> {
    let mut sessions = tx.open_table(SESSIONS).map_err(err)?;
    let mut log = tx.open_table(LOG).map_err(err)?;
    // Grouped by session; the sort is stable, so each keeps its order.
    let mut by_session: Vec<&UpdateRecord> = batch.iter().collect();
    by_session.sort_by_key(|record| record.session);
    for records in by_session.chunk_by(|a, b| a.session == b.session) {
        let session = records[0].session;
        let newest = records.iter().map(|record| record.at_ms).max().unwrap_or(0);
        let bytes: u64 = records
            .iter()
            .map(|record| record.update.len() as u64)
            .sum();
        let record = |meta: &mut SessionMeta| {
            meta.record_activity(newest);
            meta.history_bytes += bytes;
        };
        match change_meta(&mut sessions, session, record) {
            Ok(true) => {}
            Ok(false) => continue,
            // The log matters more than the activity: never fail a fold for it.
            Err(e) => {
                tracing::warn!(%session, error = %e, "session metadata unreadable; activity not recorded")
            }
        }
        let first_seq = last_seq(&log, session)? + 1;
        let row = log_rows::encode(
            records
                .iter()
                .map(|record| (record.at_ms, record.author, record.update.as_slice())),
        );
        log.insert((session.as_u128(), first_seq), row.as_slice())
            .map_err(err)?;
    }
    Ok(())
}

/// Puts journaled records into the log, with the journal generation they came
/// from, in one durable transaction.
fn commit_fold(db: &Database, records: &[UpdateRecord], generation: u64) -> StorageResult<()> {
    let tx = db.begin_write().map_err(err)?;
    insert_log(&tx, records)?;
    let mut state = tx.open_table(JOURNAL_STATE).map_err(err)?;
    state.insert(FOLDED_GENERATION, generation).map_err(err)?;
    drop(state);
    tx.commit().map_err(err)
}

#[cfg(test)]
impl EmbeddedStorage {
    /// Opens the storage in `dir`, as a restart does. A storage just dropped
    /// may still be held for a moment by its folder thread (which upgrades its
    /// weak reference to see when the next fold is due): a reopen in the same
    /// process then waits for it, as a new process never has to.
    pub(crate) fn reopen_for_test(dir: &std::path::Path) -> Self {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        loop {
            match Self::open(dir) {
                Ok(storage) => return storage,
                Err(e) if e.0.contains("already open") && std::time::Instant::now() < deadline => {
                    std::thread::sleep(std::time::Duration::from_millis(10));
                }
                Err(e) => panic!("opening the storage failed: {e}"),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reopen(dir: &std::path::Path) -> EmbeddedStorage {
        EmbeddedStorage::reopen_for_test(dir)
    }

    fn open() -> (tempfile::TempDir, EmbeddedStorage) {
        let dir = tempfile::tempdir().unwrap();
        let storage = reopen(dir.path());
        (dir, storage)
    }

    /// A session's whole log as (seq, timestamp, update).
    fn logged(storage: &EmbeddedStorage, id: SessionId) -> Vec<(u64, u64, Vec<u8>)> {
        let log = storage.update_log(id).unwrap();
        log.into_iter()
            .map(|u| (u.seq, u.at_ms, u.update))
            .collect()
    }

    fn meta(now: u64) -> SessionMeta {
        SessionMeta::new(SessionId::new_random(), Language::JavaScript, now)
    }

    #[test]
    fn logged_updates_move_activity_forward_even_after_a_crash() {
        let dir = tempfile::tempdir().unwrap();
        let a = meta(100);
        let record = |at_ms| UpdateRecord {
            session: a.id,
            at_ms,
            author: 0,
            update: vec![1],
        };
        {
            let storage = reopen(dir.path());
            storage.insert_session(&a).unwrap();
            storage
                .append_updates(vec![record(300), record(500)])
                .unwrap();
            storage.flush().unwrap();
            let activity = storage.session(a.id).unwrap().unwrap().last_activity_ms;
            assert_eq!(activity, 500);
            // Journaled only, then a "crash" before any fold.
            storage.append_updates(vec![record(900)]).unwrap();
        }
        let storage = reopen(dir.path());
        let activity = storage.session(a.id).unwrap().unwrap().last_activity_ms;
        assert_eq!(activity, 900);
        // An older update (clock skew between appends) never moves it back.
        storage.append_updates(vec![record(700)]).unwrap();
        storage.flush().unwrap();
        let activity = storage.session(a.id).unwrap().unwrap().last_activity_ms;
        assert_eq!(activity, 900);
    }

    #[test]
    fn authors_survive_the_journal_the_fold_and_a_crash() {
        let dir = tempfile::tempdir().unwrap();
        let a = meta(100);
        let record = |at_ms, author| UpdateRecord {
            session: a.id,
            at_ms,
            author,
            update: vec![1, 2],
        };
        {
            let storage = reopen(dir.path());
            storage.insert_session(&a).unwrap();
            storage
                .append_updates(vec![record(300, 11), record(400, 0)])
                .unwrap();
            storage.flush().unwrap();
            // Journaled only, then a "crash" before any fold.
            storage.append_updates(vec![record(500, 12)]).unwrap();
        }
        let storage = reopen(dir.path());
        let authors: Vec<(u64, u64)> = storage
            .update_log(a.id)
            .unwrap()
            .iter()
            .map(|u| (u.at_ms, u.author))
            .collect();
        assert_eq!(authors, [(300, 11), (400, 0), (500, 12)]);
    }

    #[test]
    fn update_log_appends_in_order_and_survives_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let a = meta(1);
        let b = meta(1);
        {
            let storage = reopen(dir.path());
            storage.insert_session(&a).unwrap();
            storage.insert_session(&b).unwrap();
            let record = |session, at_ms, byte| UpdateRecord {
                session,
                at_ms,
                author: 0,
                update: vec![byte],
            };
            storage
                .append_updates(vec![
                    record(a.id, 5, 1),
                    record(b.id, 6, 9),
                    record(a.id, 7, 2),
                ])
                .unwrap();
            storage.append_updates(vec![record(a.id, 8, 3)]).unwrap();
            // Updates of a session that does not exist are dropped.
            storage
                .append_updates(vec![record(SessionId::new_random(), 9, 4)])
                .unwrap();
        }
        let storage = reopen(dir.path());
        assert_eq!(
            logged(&storage, a.id),
            vec![(1, 5, vec![1]), (2, 7, vec![2]), (3, 8, vec![3])]
        );
        assert_eq!(storage.update_log(b.id).unwrap().len(), 1);
    }

    fn records(session: SessionId, count: u8) -> Vec<UpdateRecord> {
        (1..=count)
            .map(|i| UpdateRecord {
                session,
                at_ms: u64::from(i),
                author: 0,
                update: vec![i; 3],
            })
            .collect()
    }

    #[test]
    fn appended_updates_survive_a_crash_and_are_replayed_once() {
        let dir = tempfile::tempdir().unwrap();
        let a = meta(1);
        {
            let storage = reopen(dir.path());
            storage.insert_session(&a).unwrap();
            for record in records(a.id, 5) {
                storage.append_updates(vec![record]).unwrap();
            }
            // Dropped without flush: like a crash, the updates are only journaled.
        }
        for _ in 0..2 {
            let storage = reopen(dir.path());
            let log = storage.update_log(a.id).unwrap();
            let seqs: Vec<u64> = log.iter().map(|u| u.seq).collect();
            assert_eq!(seqs, vec![1, 2, 3, 4, 5], "every update once, in order");
            assert_eq!(log[4].update, vec![5; 3]);
        }
    }

    #[test]
    fn flushed_updates_are_not_replayed() {
        let dir = tempfile::tempdir().unwrap();
        let a = meta(1);
        {
            let storage = reopen(dir.path());
            storage.insert_session(&a).unwrap();
            storage.append_updates(records(a.id, 3)).unwrap();
            storage.flush().unwrap();
            storage.append_updates(records(a.id, 1)).unwrap();
        }
        let storage = reopen(dir.path());
        assert_eq!(storage.update_log(a.id).unwrap().len(), 4);
    }

    #[test]
    fn a_fold_interrupted_before_the_journal_restarts_is_not_replayed() {
        let dir = tempfile::tempdir().unwrap();
        let a = meta(1);
        {
            let storage = reopen(dir.path());
            storage.insert_session(&a).unwrap();
            storage.append_updates(records(a.id, 2)).unwrap();
            // Commit a fold into the database but "crash" before the journal
            // files swap: the journal still holds the same records.
            commit_fold(
                &storage.db,
                &records(a.id, 2),
                storage.updates.active_generation(),
            )
            .unwrap();
        }
        let storage = reopen(dir.path());
        assert_eq!(storage.update_log(a.id).unwrap().len(), 2);
        storage.append_updates(records(a.id, 1)).unwrap();
        assert_eq!(storage.update_log(a.id).unwrap().len(), 3);
    }

    #[test]
    fn a_log_of_several_rows_reads_back_from_any_point() {
        let (_dir, storage) = open();
        let (a, b) = (meta(1), meta(1));
        storage.insert_session(&a).unwrap();
        storage.insert_session(&b).unwrap();
        let tx = storage.db.begin_write().unwrap();
        // Two folds, each bringing several updates of both sessions, interleaved.
        for fold in 0..2u8 {
            let batch: Vec<UpdateRecord> = (0..6u8)
                .map(|i| UpdateRecord {
                    session: if i % 2 == 0 { a.id } else { b.id },
                    at_ms: u64::from(fold * 10 + i),
                    author: 0,
                    update: vec![fold, i],
                })
                .collect();
            insert_log(&tx, &batch).unwrap();
        }
        {
            let log = tx.open_table(LOG).unwrap();
            assert_eq!(log.len().unwrap(), 4, "one row per session per fold");
            assert_eq!(last_seq(&log, a.id).unwrap(), 6);
            let updates = |after| -> Vec<Vec<u8>> {
                let entries = read_log(&log, a.id, after).unwrap();
                let seqs: Vec<u64> = entries.iter().map(|e| e.seq).collect();
                assert_eq!(seqs, (after + 1..=6).collect::<Vec<_>>());
                entries.into_iter().map(|e| e.update).collect()
            };
            assert_eq!(updates(0), [[0, 0], [0, 2], [0, 4], [1, 0], [1, 2], [1, 4]]);
            // From the middle of the first row, from a row boundary, and past the end.
            assert_eq!(updates(2), [[0, 4], [1, 0], [1, 2], [1, 4]]);
            assert_eq!(updates(3), [[1, 0], [1, 2], [1, 4]]);
            assert!(updates(6).is_empty());
        }
        tx.commit().unwrap();
    }

    #[test]
    fn a_log_written_one_row_per_update_is_migrated_on_open() {
        let dir = tempfile::tempdir().unwrap();
        let a = meta(1);
        {
            // The layout earlier builds wrote: a session and two logged updates.
            let db = Database::create(dir.path().join(DATABASE_FILE)).unwrap();
            let tx = db.begin_write().unwrap();
            {
                let mut sessions = tx.open_table(SESSIONS).unwrap();
                let value = encode_meta(&a).unwrap();
                sessions.insert(a.id.as_u128(), value.as_slice()).unwrap();
                let mut legacy = tx.open_table(LEGACY_UPDATES).unwrap();
                for (seq, at_ms, update) in [(1u64, 50u64, b"one"), (2, 60, b"two")] {
                    let mut value = at_ms.to_le_bytes().to_vec();
                    value.extend_from_slice(update);
                    legacy
                        .insert((a.id.as_u128(), seq), value.as_slice())
                        .unwrap();
                }
            }
            tx.commit().unwrap();
        }
        for _ in 0..2 {
            let storage = reopen(dir.path());
            assert_eq!(
                logged(&storage, a.id),
                [(1, 50, b"one".to_vec()), (2, 60, b"two".to_vec())]
            );
            let tx = storage.db.begin_write().unwrap();
            let tables: Vec<String> = tx
                .list_tables()
                .unwrap()
                .map(|t| t.name().to_owned())
                .collect();
            assert!(!tables.contains(&"updates".to_owned()), "{tables:?}");
        }
        // New updates number on from the migrated ones.
        let storage = reopen(dir.path());
        storage.append_updates(records(a.id, 1)).unwrap();
        let seqs: Vec<u64> = storage
            .update_log(a.id)
            .unwrap()
            .iter()
            .map(|u| u.seq)
            .collect();
        assert_eq!(seqs, [1, 2, 3]);
    }

    #[test]
    fn big_bursts_fold_and_keep_going() {
        let (_dir, storage) = open();
        let a = meta(1);
        storage.insert_session(&a).unwrap();
        // Several times the journal's capacity, in 256 KiB updates.
        let update = vec![7u8; 256 << 10];
        let total = 3 * crate::storage::journaled::JOURNAL_CAPACITY as usize / update.len();
        for i in 0..total {
            let record = UpdateRecord {
                session: a.id,
                at_ms: i as u64,
                author: 0,
                update: update.clone(),
            };
            storage.append_updates(vec![record]).unwrap();
        }
        assert_eq!(storage.update_log(a.id).unwrap().len(), total);
    }
}

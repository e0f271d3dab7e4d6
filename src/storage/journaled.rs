//! The update log's fast front: appended updates go to a journal file (one write
//! each; [`JournaledUpdates::sync`] puts everything written so far on disk with
//! one fdatasync, see [`super::journal`]) and are *folded* into the database
//! later, in one transaction per fold.
//!
//! Two journal files take turns. A fold swaps them: appends go on into the
//! fresh one while the other's records are committed to the database, by a
//! background thread (every [`FOLD_INTERVAL`] or [`FOLD_BYTES`]) or by a reader
//! that needs a session's updates in the database now. The journal's lock is
//! held neither during a commit nor while the file just folded is prepared for
//! its next turn (a header write and a sync), so appends (the sync hot path, on
//! the server's event loop) never wait for disk I/O: a fold inside the append
//! path stalled every edit for 5 to 15 ms every 2 s.
//!
//! Exactly-once replay: each fold commits its records together with its journal
//! generation; on open, only files with a newer generation are replayed.

use super::{
    journal::{self, Journal, Recovered},
    StorageError, StorageResult, UpdateRecord,
};
use crate::domain::SessionId;
use std::{
    fs::File,
    path::Path,
    sync::{mpsc, Arc, Condvar, Mutex, MutexGuard, Weak},
    time::{Duration, Instant},
};

/// The two journal files, in the data dir.
pub const JOURNAL_FILES: [&str; 2] = ["pairpad.journal.0", "pairpad.journal.1"];
/// Each journal file's preallocated size: more than [`FOLD_BYTES`] plus a big batch.
pub const JOURNAL_CAPACITY: u64 = 16 << 20;
/// Unfolded journal bytes that trigger a fold.
pub const FOLD_BYTES: usize = 4 << 20;
/// Longest time updates stay only in the journal while appends go on. Each fold
/// is one database commit, so this bounds how many the update log costs.
pub const FOLD_INTERVAL: Duration = Duration::from_secs(10);

/// Puts records into the database together with their journal generation, in
/// one durable transaction.
pub type Commit = Box<dyn Fn(&[UpdateRecord], u64) -> StorageResult<()> + Send + Sync>;

/// Journaled records on their way into the database.
pub struct Fold {
    generation: u64,
    records: Vec<UpdateRecord>,
}

impl Fold {
    fn has(&self, id: SessionId) -> bool {
        self.records.iter().any(|r| r.session == id)
    }
}

struct State {
    /// Where appends go.
    active: Journal,
    /// The other file: its records are in the database, or being put there
    /// while `folding`.
    standby: Journal,
    /// `standby` already holds an empty generation after `active`'s, so that
    /// the next fold swaps without any I/O while appends wait on this lock.
    standby_ready: bool,
    /// Records in `active` not yet in the database, oldest first.
    unfolded: Vec<UpdateRecord>,
    unfolded_bytes: usize,
    last_fold: Instant,
    /// A fold is being committed (its records are in `standby`).
    folding: bool,
    /// A fold whose commit failed: committed again before any other, and its
    /// file is not reused until then.
    failed: Option<Fold>,
    /// Files written since the last [`JournaledUpdates::sync`] (at most both).
    unsynced: Vec<Arc<File>>,
}

impl State {
    /// Records wait for a fold (new ones, or a failed fold's).
    fn has_work(&self) -> bool {
        !self.unfolded.is_empty() || self.failed.is_some()
    }
}

pub struct JournaledUpdates {
    state: Mutex<State>,
    /// Signalled whenever a fold ends.
    fold_ended: Condvar,
    /// Held through a whole sync: a sync that found nothing left to do must not
    /// return while another one is still flushing the writes it relies on.
    sync_one_at_a_time: Mutex<()>,
    commit: Commit,
    /// Background folds go to the folder thread.
    folder: mpsc::Sender<Fold>,
}

impl JournaledUpdates {
    /// Opens the journal files in `dir`, commits what they hold beyond
    /// `folded_generation` (the last fold the database has), and starts the
    /// folder thread.
    pub fn open(dir: &Path, folded_generation: u64, commit: Commit) -> StorageResult<Arc<Self>> {
        let err = |e: std::io::Error| StorageError(format!("journal: {e}"));
        let (mut first, first_found) =
            Journal::open(&dir.join(JOURNAL_FILES[0]), JOURNAL_CAPACITY).map_err(err)?;
        let (mut second, second_found) =
            Journal::open(&dir.join(JOURNAL_FILES[1]), JOURNAL_CAPACITY).map_err(err)?;
        let newest = first_found
            .generation
            .max(second_found.generation)
            .max(folded_generation);
        let mut unfolded: Vec<Recovered> = [first_found, second_found]
            .into_iter()
            .filter(|found| found.generation > folded_generation && !found.records.is_empty())
            .collect();
        unfolded.sort_by_key(|found| found.generation);
        for found in unfolded {
            commit(&found.records, found.generation)?;
            tracing::info!(
                updates = found.records.len(),
                "replayed updates the last run had not folded"
            );
        }
        // Everything in both files is in the database now.
        first.restart(newest + 1).map_err(err)?;
        second.restart(newest + 2).map_err(err)?;
        Ok(Arc::new_cyclic(|this: &Weak<Self>| Self {
            state: Mutex::new(State {
                active: first,
                standby: second,
                standby_ready: true,
                unfolded: Vec::new(),
                unfolded_bytes: 0,
                last_fold: Instant::now(),
                folding: false,
                failed: None,
                unsynced: Vec::new(),
            }),
            fold_ended: Condvar::new(),
            sync_one_at_a_time: Mutex::new(()),
            commit,
            folder: spawn_folder(this.clone()),
        }))
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Appends `batch`: safe from a crash of the process when it returns, on
    /// disk after the next [`Self::sync`].
    pub fn append(&self, mut batch: Vec<UpdateRecord>) -> StorageResult<()> {
        if batch.is_empty() {
            return Ok(());
        }
        // Kept until folded: without spare capacity (yrs encodes its own updates
        // into 1 KiB buffers, which thousands of new sessions would keep).
        for record in &mut batch {
            record.update.shrink_to_fit();
        }
        let bytes = journal::encoded_len(&batch);
        // Rare: folds fell behind a flood, so make room before appending. (With
        // nothing unfolded, a batch bigger than the file grows it instead.)
        let no_room = |s: &State| !s.active.has_room_for(bytes) && !s.unfolded.is_empty();
        let mut state = self.lock();
        if no_room(&state) {
            state = self.fold_while(state, no_room)?;
        }
        state
            .active
            .append(&batch)
            .map_err(|e| StorageError(format!("journal: {e}")))?;
        // Stored from here on; a failed fold below is retried later.
        if !state
            .unsynced
            .iter()
            .any(|file| Arc::ptr_eq(file, state.active.file()))
        {
            let file = state.active.file().clone();
            state.unsynced.push(file);
        }
        state.unfolded.extend(batch);
        state.unfolded_bytes += bytes as usize;
        // Folds by time are the folder thread's; here only size presses.
        if state.unfolded_bytes >= FOLD_BYTES && !state.folding {
            match self.begin(&mut state) {
                Ok(Some(fold)) => {
                    if let Err(mpsc::SendError(fold)) = self.folder.send(fold) {
                        // No folder thread (cannot happen while `self` lives):
                        // keep the fold for the next attempt.
                        state.folding = false;
                        state.failed = Some(fold);
                    }
                }
                Ok(None) => {}
                Err(e) => tracing::error!(error = %e, "starting a journal fold failed"),
            }
        }
        Ok(())
    }

    /// Puts every update appended so far on disk (safe from power loss). The
    /// journal's lock is not held meanwhile: appends go on.
    pub fn sync(&self) -> StorageResult<()> {
        let _one_at_a_time = self
            .sync_one_at_a_time
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        let files = std::mem::take(&mut self.lock().unsynced);
        for file in files {
            // Not retried on failure: after a failed fdatasync the kernel may
            // have marked the pages clean, so a second try could "succeed"
            // without writing them. The caller treats this as fatal.
            file.sync_data()
                .map_err(|e| StorageError(format!("journal sync: {e}")))?;
        }
        Ok(())
    }

    /// How long until a fold is due by time: [`FOLD_INTERVAL`] after the last,
    /// or a whole interval from now when there is nothing to fold.
    fn until_fold_due(&self) -> Duration {
        let state = self.lock();
        if !state.has_work() {
            return FOLD_INTERVAL;
        }
        FOLD_INTERVAL.saturating_sub(state.last_fold.elapsed())
    }

    /// Folds what is unfolded, if no fold ran for [`FOLD_INTERVAL`].
    fn fold_if_due(&self) {
        let mut state = self.lock();
        let due = state.last_fold.elapsed() >= FOLD_INTERVAL;
        if !due || state.folding || !state.has_work() {
            return;
        }
        match self.begin(&mut state) {
            Ok(Some(fold)) => {
                drop(state);
                let _ = self.complete(fold);
            }
            Ok(None) => {}
            Err(e) => tracing::error!(error = %e, "starting a journal fold failed"),
        }
    }

    /// Returns once every update of `id` appended so far is in the database.
    pub fn fold_session(&self, id: SessionId) -> StorageResult<()> {
        let state = self.lock();
        self.fold_while(state, |s| {
            s.unfolded.iter().any(|r| r.session == id)
                || s.failed.as_ref().is_some_and(|f| f.has(id))
        })
        .map(drop)
    }

    /// Returns once every update appended so far is in the database.
    pub fn fold_all(&self) -> StorageResult<()> {
        let state = self.lock();
        self.fold_while(state, State::has_work).map(drop)
    }

    /// Waits out any fold in flight, then folds on this thread while `needed`.
    fn fold_while<'a>(
        &'a self,
        mut state: MutexGuard<'a, State>,
        needed: impl Fn(&State) -> bool,
    ) -> StorageResult<MutexGuard<'a, State>> {
        loop {
            while state.folding {
                state = self
                    .fold_ended
                    .wait(state)
                    .unwrap_or_else(|p| p.into_inner());
            }
            if !needed(&state) {
                return Ok(state);
            }
            let Some(fold) = self.begin(&mut state)? else {
                return Ok(state);
            };
            drop(state);
            self.complete(fold)?;
            state = self.lock();
        }
    }

    /// Starts a fold (the caller commits it with [`Self::complete`]): retries a
    /// failed one, else swaps the journal files and takes the unfolded records.
    fn begin(&self, state: &mut State) -> StorageResult<Option<Fold>> {
        debug_assert!(!state.folding);
        state.last_fold = Instant::now();
        if let Some(fold) = state.failed.take() {
            state.folding = true;
            return Ok(Some(fold));
        }
        if state.unfolded.is_empty() {
            return Ok(None);
        }
        let generation = state.active.generation();
        if !state.standby_ready {
            // Its preparation after the last fold failed: do it now.
            state
                .standby
                .restart(generation + 1)
                .map_err(|e| StorageError(format!("journal: {e}")))?;
        }
        let State {
            active, standby, ..
        } = state;
        std::mem::swap(active, standby);
        state.standby_ready = false;
        state.folding = true;
        state.unfolded_bytes = 0;
        let records = std::mem::take(&mut state.unfolded);
        Ok(Some(Fold {
            generation,
            records,
        }))
    }

    /// Commits a fold (without holding the lock) and ends it.
    fn complete(&self, fold: Fold) -> StorageResult<()> {
        let started = Instant::now();
        let result = (self.commit)(&fold.records, fold.generation);
        tracing::debug!(
            updates = fold.records.len(),
            ms = started.elapsed().as_secs_f64() * 1e3,
            ok = result.is_ok(),
            "journal fold committed"
        );
        if result.is_ok() {
            self.prepare_standby();
        }
        let mut state = self.lock();
        state.folding = false;
        if let Err(e) = &result {
            tracing::error!(error = %e, "folding the journal into the database failed; will retry");
            state.failed = Some(fold);
        }
        drop(state);
        self.fold_ended.notify_all();
        result
    }

    /// Starts the next generation in the file just folded, without holding the
    /// lock during its write and sync (the fold is still marked in flight, so
    /// nothing else touches that file meanwhile).
    fn prepare_standby(&self) {
        let (file, generation) = {
            let state = self.lock();
            (state.standby.file().clone(), state.active.generation() + 1)
        };
        match journal::start_generation(&file, generation) {
            Ok(()) => {
                let mut state = self.lock();
                state.standby.restarted(generation);
                state.standby_ready = true;
            }
            // The next fold tries again (under the lock).
            Err(e) => tracing::warn!(error = %e, "preparing the standby journal failed"),
        }
    }

    #[cfg(test)]
    pub fn active_generation(&self) -> u64 {
        self.lock().active.generation()
    }
}

/// The thread that folds in the background: every [`FOLD_INTERVAL`] on its
/// own, and whenever appends hand it a fold ([`FOLD_BYTES`] reached). It holds
/// only a weak reference, so dropping the storage ends it (anything unfolded is
/// in the journal files and replayed on the next open).
fn spawn_folder(journaled: Weak<JournaledUpdates>) -> mpsc::Sender<Fold> {
    let (folds, queue) = mpsc::channel::<Fold>();
    let spawned = std::thread::Builder::new()
        .name("pairpad-fold".into())
        .spawn(move || loop {
            let Some(wait) = journaled.upgrade().map(|j| j.until_fold_due()) else {
                return;
            };
            let next = queue.recv_timeout(wait);
            if let Err(mpsc::RecvTimeoutError::Disconnected) = next {
                return;
            }
            let Some(journaled) = journaled.upgrade() else {
                return;
            };
            match next {
                Ok(fold) => {
                    let _ = journaled.complete(fold);
                }
                Err(_) => journaled.fold_if_due(),
            }
        });
    if let Err(e) = spawned {
        // Appends then keep their folds for readers and flushes to commit.
        tracing::error!(error = %e, "cannot start the journal folder thread");
    }
    folds
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A database stand-in: what was committed, and the last generation.
    #[derive(Default)]
    struct FakeDb {
        log: Mutex<Vec<UpdateRecord>>,
        folded: Mutex<u64>,
    }

    fn open(dir: &Path, db: &Arc<FakeDb>) -> Arc<JournaledUpdates> {
        let folded = *db.folded.lock().unwrap();
        let target = db.clone();
        JournaledUpdates::open(
            dir,
            folded,
            Box::new(move |records, generation| {
                target.log.lock().unwrap().extend_from_slice(records);
                *target.folded.lock().unwrap() = generation;
                Ok(())
            }),
        )
        .unwrap()
    }

    fn record(n: u8) -> UpdateRecord {
        UpdateRecord {
            session: SessionId::from_u128(0xa0b1c2d3_e4f5_4a6b_8c7d_0123456789ab).unwrap(),
            at_ms: u64::from(n),
            author: 0,
            update: vec![n],
        }
    }

    fn logged(db: &FakeDb) -> Vec<u64> {
        db.log.lock().unwrap().iter().map(|r| r.at_ms).collect()
    }

    #[test]
    fn every_update_reaches_the_database_once_across_folds_and_crashes() {
        let dir = tempfile::tempdir().unwrap();
        let db = Arc::new(FakeDb::default());
        let journaled = open(dir.path(), &db);
        journaled.append(vec![record(1), record(2)]).unwrap();
        journaled.fold_all().unwrap();
        journaled.append(vec![record(3)]).unwrap();
        journaled.fold_all().unwrap();
        journaled.append(vec![record(4)]).unwrap();
        assert_eq!(logged(&db), vec![1, 2, 3], "4 is only in the journal");
        drop(journaled); // a crash: nothing more is folded
        let journaled = open(dir.path(), &db);
        assert_eq!(
            logged(&db),
            vec![1, 2, 3, 4],
            "the journal is replayed once"
        );
        journaled.append(vec![record(5)]).unwrap();
        journaled.fold_session(record(5).session).unwrap();
        drop(journaled);
        open(dir.path(), &db);
        assert_eq!(logged(&db), vec![1, 2, 3, 4, 5]);
    }

    #[test]
    fn a_crash_during_a_fold_replays_both_files_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let db = Arc::new(FakeDb::default());
        let journaled = open(dir.path(), &db);
        journaled.append(vec![record(1), record(2)]).unwrap();
        // Start a fold but never commit it, as if the process died meanwhile;
        // appends go on into the other file.
        let _never_committed = journaled.begin(&mut journaled.lock()).unwrap().unwrap();
        journaled.append(vec![record(3)]).unwrap();
        drop(journaled);
        open(dir.path(), &db);
        assert_eq!(logged(&db), vec![1, 2, 3]);
    }

    #[test]
    fn readers_wait_for_a_fold_in_flight() {
        let dir = tempfile::tempdir().unwrap();
        let db = Arc::new(FakeDb::default());
        let journaled = open(dir.path(), &db);
        journaled.append(vec![record(1)]).unwrap();
        let fold = journaled.begin(&mut journaled.lock()).unwrap().unwrap();
        let reader = {
            let journaled = journaled.clone();
            std::thread::spawn(move || journaled.fold_session(record(1).session))
        };
        std::thread::sleep(Duration::from_millis(50));
        assert!(!reader.is_finished(), "the reader waits for the fold");
        journaled.complete(fold).unwrap();
        reader.join().unwrap().unwrap();
        assert_eq!(logged(&db), vec![1]);
    }

    #[test]
    fn records_left_behind_by_appends_are_folded_once_appends_stop() {
        let dir = tempfile::tempdir().unwrap();
        let db = Arc::new(FakeDb::default());
        let journaled = open(dir.path(), &db);
        journaled.append(vec![record(1)]).unwrap();
        journaled.fold_if_due();
        assert!(logged(&db).is_empty(), "a fold ran just now (at open)");
        journaled.lock().last_fold = Instant::now() - FOLD_INTERVAL;
        journaled.fold_if_due();
        assert_eq!(logged(&db), vec![1]);
        assert!(
            journaled.lock().unfolded.is_empty(),
            "no longer held in memory"
        );
    }

    #[test]
    fn sync_covers_both_files_across_a_fold() {
        let dir = tempfile::tempdir().unwrap();
        let db = Arc::new(FakeDb::default());
        let journaled = open(dir.path(), &db);
        journaled.append(vec![record(1)]).unwrap();
        let _folding = journaled.begin(&mut journaled.lock()).unwrap().unwrap();
        journaled.append(vec![record(2)]).unwrap();
        assert_eq!(
            journaled.lock().unsynced.len(),
            2,
            "both files were written"
        );
        journaled.sync().unwrap();
        assert!(journaled.lock().unsynced.is_empty());
    }

    #[test]
    fn a_failed_fold_is_retried_before_its_file_is_reused() {
        let dir = tempfile::tempdir().unwrap();
        let fail = Arc::new(std::sync::atomic::AtomicBool::new(true));
        let log = Arc::new(Mutex::new(Vec::new()));
        let journaled = {
            let (fail, log) = (fail.clone(), log.clone());
            JournaledUpdates::open(
                dir.path(),
                0,
                Box::new(move |records: &[UpdateRecord], _generation| {
                    if fail.load(std::sync::atomic::Ordering::SeqCst) {
                        return Err(StorageError("disk full".into()));
                    }
                    log.lock().unwrap().extend(records.iter().map(|r| r.at_ms));
                    Ok(())
                }),
            )
            .unwrap()
        };
        journaled.append(vec![record(1)]).unwrap();
        assert!(journaled.fold_all().is_err());
        journaled.append(vec![record(2)]).unwrap();
        assert!(journaled.fold_all().is_err());
        fail.store(false, std::sync::atomic::Ordering::SeqCst);
        journaled.fold_all().unwrap();
        assert_eq!(*log.lock().unwrap(), vec![1, 2]);
    }
}

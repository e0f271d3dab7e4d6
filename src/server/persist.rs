//! The update writer: one thread that appends document updates to storage in
//! group commits (whatever queued while the previous commit ran goes into the
//! next). Rooms hand it updates and wait for the commit before applying and
//! relaying them, so nothing another client has seen is missing from disk.

use crate::storage::{Storage, StorageError, StorageResult, UpdateRecord};
use std::{
    sync::{mpsc, Arc, Mutex},
    thread::JoinHandle,
};
use tokio::sync::oneshot;

/// Jobs merged into one transaction at most (bounds commit latency under load).
const MAX_JOBS_PER_COMMIT: usize = 1024;

enum Job {
    Append(Vec<UpdateRecord>, oneshot::Sender<StorageResult<()>>),
    Stop,
}

pub struct UpdateWriter {
    jobs: mpsc::Sender<Job>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl UpdateWriter {
    /// Starts the writer thread.
    pub fn start(storage: Arc<dyn Storage>) -> Self {
        let (jobs, queue) = mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("pairpad-writer".into())
            .spawn(move || write_loop(storage, queue))
            .expect("spawn the storage writer thread");
        Self {
            jobs,
            thread: Mutex::new(Some(thread)),
        }
    }

    /// Appends `records` durably; returns once they are committed.
    pub async fn append(&self, records: Vec<UpdateRecord>) -> StorageResult<()> {
        if records.is_empty() {
            return Ok(());
        }
        let (done, committed) = oneshot::channel();
        self.jobs
            .send(Job::Append(records, done))
            .map_err(|_| StorageError("the storage writer has stopped".into()))?;
        committed
            .await
            .map_err(|_| StorageError("the storage writer dropped a job".into()))?
    }

    /// Commits what is queued, then stops the thread. Idempotent.
    pub fn stop(&self) {
        let _ = self.jobs.send(Job::Stop);
        let thread = self.thread.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(thread) = thread {
            let _ = thread.join();
        }
    }
}

fn write_loop(storage: Arc<dyn Storage>, queue: mpsc::Receiver<Job>) {
    let mut stopping = false;
    while !stopping {
        let Ok(first) = queue.recv() else { return };
        let mut batch = Vec::new();
        let mut waiting = Vec::new();
        let mut next = Some(first);
        // Take what is queued now (up to a bound) into one commit.
        while let Some(job) = next.take() {
            match job {
                Job::Append(records, done) => {
                    batch.extend(records);
                    waiting.push(done);
                }
                Job::Stop => stopping = true,
            }
            if waiting.len() < MAX_JOBS_PER_COMMIT {
                next = queue.try_recv().ok();
            }
        }
        let count = batch.len();
        let result = storage.append_updates(batch);
        if let Err(e) = &result {
            tracing::error!(error = %e, updates = count, "appending updates failed");
        }
        for done in waiting {
            let _ = done.send(result.clone());
        }
    }
    // Leave nothing for the next start to replay.
    if let Err(e) = storage.flush() {
        tracing::error!(error = %e, "flushing storage at shutdown failed");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        domain::{Language, SessionId, SessionMeta},
        storage::EmbeddedStorage,
    };

    #[tokio::test]
    async fn appends_are_durable_when_acknowledged() {
        let dir = tempfile::tempdir().unwrap();
        let storage: Arc<dyn Storage> = Arc::new(EmbeddedStorage::open(dir.path()).unwrap());
        let meta = SessionMeta::new(SessionId::new_random(), Language::JavaScript, 1);
        storage.insert_session(&meta).unwrap();
        let writer = Arc::new(UpdateWriter::start(storage.clone()));
        let mut tasks = Vec::new();
        for i in 0..50u8 {
            let writer = writer.clone();
            tasks.push(tokio::spawn(async move {
                writer
                    .append(vec![UpdateRecord {
                        session: meta.id,
                        at_ms: 10 + u64::from(i),
                        update: vec![i],
                    }])
                    .await
            }));
        }
        for task in tasks {
            task.await.unwrap().unwrap();
        }
        assert_eq!(storage.update_log(meta.id).unwrap().len(), 50);
        writer.stop();
        writer.stop();
        assert!(writer
            .append(vec![UpdateRecord {
                session: meta.id,
                at_ms: 1,
                update: vec![1]
            }])
            .await
            .is_err());
    }
}

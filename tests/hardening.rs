//! Hardening against a real server on 127.0.0.1:0: snapshots that keep
//! updates waiting for their dependencies, storage trouble reported by
//! `/api/health`, and a room whose task panics coming back from storage while
//! other sessions carry on. Faults come from a storage wrapper around the real
//! embedded database.

mod common;

use common::{client, create_session, metrics_text, yclient::Client, TestServer};
use pairpad::{
    domain::{SessionId, SessionMeta},
    storage::{
        EmbeddedStorage, LoggedUpdate, Storage, StorageError, StorageResult, StoredDocument,
        UpdateRecord, UpdateSink,
    },
    sync::SessionDoc,
};
use std::{
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    },
    time::Duration,
};

/// The embedded storage, with switches that make snapshots fail or appends panic.
struct FaultyStorage {
    inner: EmbeddedStorage,
    fail_snapshots: AtomicBool,
    panic_on_append: AtomicBool,
}

impl FaultyStorage {
    fn open(dir: &std::path::Path) -> Arc<Self> {
        Arc::new(Self {
            inner: EmbeddedStorage::open(dir).unwrap(),
            fail_snapshots: AtomicBool::new(false),
            panic_on_append: AtomicBool::new(false),
        })
    }
}

impl UpdateSink for FaultyStorage {
    fn append_updates(&self, batch: Vec<UpdateRecord>) -> StorageResult<()> {
        if self.panic_on_append.load(Ordering::Relaxed) {
            panic!("injected: append panicked");
        }
        self.inner.append_updates(batch)
    }
    fn sync_updates(&self) -> StorageResult<()> {
        self.inner.sync_updates()
    }
    fn flush(&self) -> StorageResult<()> {
        self.inner.flush()
    }
}

impl Storage for FaultyStorage {
    fn insert_session(&self, meta: &SessionMeta) -> StorageResult<()> {
        self.inner.insert_session(meta)
    }
    fn session(&self, id: SessionId) -> StorageResult<Option<SessionMeta>> {
        self.inner.session(id)
    }
    fn set_language(
        &self,
        id: SessionId,
        language: pairpad::domain::Language,
    ) -> StorageResult<()> {
        self.inner.set_language(id, language)
    }
    fn change_session(
        &self,
        id: SessionId,
        change: &mut dyn FnMut(&mut SessionMeta),
    ) -> StorageResult<bool> {
        self.inner.change_session(id, change)
    }
    fn delete_session(&self, id: SessionId) -> StorageResult<bool> {
        self.inner.delete_session(id)
    }
    fn sessions_inactive_since(&self, cutoff_ms: u64) -> StorageResult<Vec<SessionId>> {
        self.inner.sessions_inactive_since(cutoff_ms)
    }
    fn session_count(&self) -> StorageResult<u64> {
        self.inner.session_count()
    }
    fn load_document(&self, id: SessionId) -> StorageResult<StoredDocument> {
        self.inner.load_document(id)
    }
    fn update_log(&self, id: SessionId) -> StorageResult<Vec<LoggedUpdate>> {
        self.inner.update_log(id)
    }
    fn store_snapshot(&self, id: SessionId, state: &[u8]) -> StorageResult<u64> {
        if self.fail_snapshots.load(Ordering::Relaxed) {
            return Err(StorageError("injected: disk full".into()));
        }
        self.inner.store_snapshot(id, state)
    }
}

/// Enough text to make a snapshot due (64 KiB of updates since the last one).
fn big_text() -> String {
    "x".repeat(70 * 1024)
}

async fn health(server: &TestServer) -> (u16, serde_json::Value) {
    let response = client()
        .get(server.url("/api/health"))
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

/// Polls health until `wanted` answers, or fails after a bounded wait.
async fn wait_for_health(server: &TestServer, wanted: u16) -> serde_json::Value {
    for _ in 0..200 {
        let (status, body) = health(server).await;
        if status == wanted {
            return body;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("health never answered {wanted}: {:?}", health(server).await);
}

#[tokio::test]
async fn an_update_waiting_for_its_dependency_survives_a_snapshot_and_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = TestServer::start_in(dir.path().to_path_buf(), |_| {}).await;
    let id = create_session(&server, None).await;
    // The author's second edit reaches the server without the first.
    let author = SessionDoc::with_client_id(7);
    let first = author.insert_code(0, "hello");
    let second = author.insert_code(5, " world");
    let mut early = Client::connect(&server, &id).await;
    early.send_update(second).await;
    // Someone else writes enough to make the room take a snapshot.
    let mut bob = Client::connect(&server, &id).await;
    let text = big_text();
    bob.insert(0, &text).await;
    let mut watcher = Client::connect(&server, &id).await;
    watcher.wait_for_code(&text).await;
    server.shutdown().await.unwrap();

    let server = TestServer::start_in(dir.path().to_path_buf(), |_| {}).await;
    let mut late = Client::connect(&server, &id).await;
    late.send_update(first).await;
    // Asked after the missing edit arrived (frames of one connection are
    // handled in order), the server's answer holds both.
    late.request_sync().await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !late.doc.code().contains("hello world") {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the held-back edit was lost: the text has {} chars",
            late.doc.code().len()
        );
        late.read_one(Duration::from_secs(5)).await;
    }
    assert_eq!(late.doc.code().len(), text.len() + "hello world".len());
}

#[tokio::test]
async fn health_says_degraded_while_snapshots_fail_and_recovers_after() {
    let dir = tempfile::tempdir().unwrap();
    let storage = FaultyStorage::open(dir.path());
    let server = TestServer::start_with(dir.path().to_path_buf(), storage.clone(), |_| {}).await;
    assert_eq!(health(&server).await.0, 200);
    let id = create_session(&server, None).await;
    storage.fail_snapshots.store(true, Ordering::Relaxed);
    let mut alice = Client::connect(&server, &id).await;
    let text = big_text();
    alice.insert(0, &text).await;
    let body = wait_for_health(&server, 503).await;
    assert_eq!(body["status"], "degraded");
    assert!(
        body["reason"].as_str().unwrap().contains("snapshot"),
        "{body}"
    );
    let metrics = metrics_text(&server).await;
    assert!(
        !metrics.contains("pairpad_storage_errors_total 0\n"),
        "storage errors are counted"
    );
    // Edits still work meanwhile: they are journaled.
    let mut bob = Client::connect(&server, &id).await;
    bob.wait_for_code(&text).await;
    // The disk recovers; the room's retry (after a backoff) succeeds.
    storage.fail_snapshots.store(false, Ordering::Relaxed);
    let body = wait_for_health(&server, 200).await;
    assert_eq!(body["status"], "ok");
}

#[tokio::test]
async fn a_room_whose_task_panics_reloads_on_the_next_join_and_others_carry_on() {
    let dir = tempfile::tempdir().unwrap();
    let storage = FaultyStorage::open(dir.path());
    let server = TestServer::start_with(dir.path().to_path_buf(), storage.clone(), |_| {}).await;
    let doomed = create_session(&server, None).await;
    let other = create_session(&server, None).await;
    let mut alice = Client::connect(&server, &doomed).await;
    alice.insert(0, "kept").await;
    let mut check = Client::connect(&server, &doomed).await;
    check.wait_for_code("kept").await;
    let mut carol = Client::connect(&server, &other).await;
    let mut dave = Client::connect(&server, &other).await;
    carol.insert(0, "before").await;
    dave.wait_for_code("before").await;

    storage.panic_on_append.store(true, Ordering::Relaxed);
    alice.insert(4, " lost").await;
    let (code, reason) = alice.closed().await;
    assert_eq!(code, 1013, "{reason}");
    storage.panic_on_append.store(false, Ordering::Relaxed);

    // The other session never noticed.
    carol.insert(6, " and after").await;
    dave.wait_for_code("before and after").await;
    // The panicked session loads again from storage on the next join.
    let mut again = Client::connect(&server, &doomed).await;
    again.wait_for_code("kept").await;
    again.insert(4, "!").await;
    let mut reader = Client::connect(&server, &doomed).await;
    reader.wait_for_code("kept!").await;
}

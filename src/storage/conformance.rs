//! The one behaviour suite every [`Storage`] backend passes: the embedded
//! store and Redis run the same checks (`embedded::…` and `redis::…` tests).
//! Backend-specific matters (the journal's crash replay, redb's row layout)
//! stay in each backend's own tests.

use super::{
    embedded::EmbeddedStorage,
    redis::{RedisOptions, RedisStorage},
    test_redis::TestRedis,
    Storage, UpdateRecord,
};
use crate::domain::{Language, SessionId, SessionMeta};

/// Where a backend keeps its data, so a test can open it again (a restart).
trait Backend {
    fn open(&self) -> Box<dyn Storage>;
}

struct Embedded(tempfile::TempDir);

impl Backend for Embedded {
    fn open(&self) -> Box<dyn Storage> {
        Box::new(EmbeddedStorage::reopen_for_test(self.0.path()))
    }
}

struct Redis(TestRedis);

impl Backend for Redis {
    fn open(&self) -> Box<dyn Storage> {
        Box::new(
            RedisStorage::open(
                &self.0.url(),
                RedisOptions {
                    require_aof: true,
                    key_ttl: None,
                    compact_after: std::time::Duration::ZERO,
                },
            )
            .expect("connects to the test server"),
        )
    }
}

fn meta(now: u64) -> SessionMeta {
    SessionMeta::new(SessionId::new_random(), Language::JavaScript, now)
}

fn record(session: SessionId, at_ms: u64, author: u64, update: &[u8]) -> UpdateRecord {
    UpdateRecord {
        session,
        at_ms,
        author,
        update: update.to_vec(),
    }
}

/// A session's log as (seq, time, author, update).
fn log_of(storage: &dyn Storage, id: SessionId) -> Vec<(u64, u64, u64, Vec<u8>)> {
    storage
        .update_log(id)
        .unwrap()
        .into_iter()
        .map(|u| (u.seq, u.at_ms, u.author, u.update))
        .collect()
}

fn sessions_are_stored_found_changed_and_deleted(backend: &dyn Backend) {
    let storage = backend.open();
    let a = meta(10);
    storage.insert_session(&a).unwrap();
    assert!(
        storage.insert_session(&a).is_err(),
        "a duplicate id is refused"
    );
    assert_eq!(storage.session(a.id).unwrap(), Some(a.clone()));
    assert_eq!(storage.session(SessionId::new_random()).unwrap(), None);

    storage.set_language(a.id, Language::Python).unwrap();
    let changed = storage
        .change_session(a.id, &mut |meta| meta.ended = true)
        .unwrap();
    assert!(changed);
    let missing = storage
        .change_session(SessionId::new_random(), &mut |meta| meta.ended = true)
        .unwrap();
    assert!(!missing, "changing a missing session says so");
    drop(storage);

    let storage = backend.open();
    let stored = storage
        .session(a.id)
        .unwrap()
        .expect("kept across a restart");
    assert_eq!(stored.language, Language::Python);
    assert!(stored.ended);
    assert!(storage.delete_session(a.id).unwrap());
    assert!(!storage.delete_session(a.id).unwrap(), "deleted once only");
    assert_eq!(storage.session(a.id).unwrap(), None);
}

fn notes_documents_are_not_counted_as_sessions(backend: &dyn Backend) {
    let storage = backend.open();
    let session = meta(10);
    let mut notes = meta(10);
    notes.notes_of = Some(session.id);
    storage.insert_session(&session).unwrap();
    storage.insert_session(&notes).unwrap();
    assert_eq!(storage.session_count().unwrap(), 1);
    assert_eq!(storage.session(notes.id).unwrap(), Some(notes.clone()));
    storage.delete_session(notes.id).unwrap();
    storage.delete_session(session.id).unwrap();
    assert_eq!(storage.session_count().unwrap(), 0);
}

fn updates_are_logged_in_order_with_time_and_author_and_survive_a_restart(backend: &dyn Backend) {
    let storage = backend.open();
    let (a, b) = (meta(1), meta(1));
    storage.insert_session(&a).unwrap();
    storage.insert_session(&b).unwrap();
    storage
        .append_updates(vec![
            record(a.id, 100, 7, b"one"),
            record(b.id, 101, 8, b"other"),
            record(a.id, 102, 9, b"two"),
        ])
        .unwrap();
    storage
        .append_updates(vec![record(a.id, 103, 7, &[0, 255, 1])])
        .unwrap();
    storage.sync_updates().unwrap();
    let expected = vec![
        (1, 100, 7, b"one".to_vec()),
        (2, 102, 9, b"two".to_vec()),
        (3, 103, 7, vec![0, 255, 1]),
    ];
    assert_eq!(log_of(&*storage, a.id), expected);
    assert_eq!(
        log_of(&*storage, b.id),
        vec![(1, 101, 8, b"other".to_vec())]
    );
    storage.flush().unwrap();
    drop(storage);

    let storage = backend.open();
    assert_eq!(
        log_of(&*storage, a.id),
        expected,
        "the log survives a restart"
    );
    let document = storage.load_document(a.id).unwrap();
    assert_eq!(document.snapshot, None);
    assert_eq!(document.updates.len(), 3);
    assert_eq!(document.history_bytes, 3 + 3 + 3);
}

fn updates_of_unknown_sessions_are_not_stored(backend: &dyn Backend) {
    let storage = backend.open();
    let ghost = SessionId::new_random();
    let known = meta(1);
    storage.insert_session(&known).unwrap();
    storage
        .append_updates(vec![record(ghost, 5, 1, b"lost")])
        .unwrap();
    // Whether the sync reports it is the backend's choice: the embedded store
    // drops them quietly (only a deleted session has none); Redis says so,
    // since a session whose keys expired under an open room must not look
    // stored.
    let _ = storage.sync_updates();
    // Later updates of known sessions are stored either way.
    storage
        .append_updates(vec![record(known.id, 6, 1, b"kept")])
        .unwrap();
    storage.sync_updates().unwrap();
    storage.flush().unwrap();
    assert_eq!(
        log_of(&*storage, known.id),
        vec![(1, 6, 1, b"kept".to_vec())]
    );
    assert!(storage.update_log(ghost).unwrap().is_empty());
    assert_eq!(storage.session(ghost).unwrap(), None);
    assert_eq!(storage.session_count().unwrap(), 1);
}

fn activity_moves_forward_with_logged_updates_and_expiry_sees_it(backend: &dyn Backend) {
    let storage = backend.open();
    let (quiet, busy) = (meta(1_000), meta(1_000));
    storage.insert_session(&quiet).unwrap();
    storage.insert_session(&busy).unwrap();
    storage
        .append_updates(vec![record(busy.id, 5_000, 1, b"x")])
        .unwrap();
    // An update stamped earlier than the newest does not move it back.
    storage
        .append_updates(vec![record(busy.id, 4_000, 1, b"y")])
        .unwrap();
    storage.flush().unwrap();
    assert_eq!(
        storage.session(busy.id).unwrap().unwrap().last_activity_ms,
        5_000
    );
    assert_eq!(
        storage.session(quiet.id).unwrap().unwrap().last_activity_ms,
        1_000
    );

    let mut inactive = storage.sessions_inactive_since(3_000).unwrap();
    inactive.sort();
    assert_eq!(inactive, vec![quiet.id]);
    assert!(storage.sessions_inactive_since(1_000).unwrap().is_empty());
    let mut both = storage.sessions_inactive_since(5_001).unwrap();
    both.sort();
    let mut expected = vec![quiet.id, busy.id];
    expected.sort();
    assert_eq!(both, expected);
}

fn a_snapshot_hides_the_updates_it_includes_but_the_log_keeps_them(backend: &dyn Backend) {
    let storage = backend.open();
    let a = meta(1);
    storage.insert_session(&a).unwrap();
    storage
        .append_updates(vec![record(a.id, 10, 1, b"u1"), record(a.id, 11, 1, b"u2")])
        .unwrap();
    // Not synced on purpose: a snapshot covers what was appended before it.
    let through = storage.store_snapshot(a.id, b"state-after-2").unwrap();
    assert_eq!(through, 2);
    storage
        .append_updates(vec![record(a.id, 12, 2, b"u3")])
        .unwrap();
    storage.flush().unwrap();
    drop(storage);

    let storage = backend.open();
    let document = storage.load_document(a.id).unwrap();
    assert_eq!(document.snapshot.as_deref(), Some(&b"state-after-2"[..]));
    assert_eq!(document.snapshot_seq, 2);
    let after: Vec<_> = document
        .updates
        .iter()
        .map(|u| (u.seq, u.update.clone()))
        .collect();
    assert_eq!(after, vec![(3, b"u3".to_vec())]);
    assert_eq!(
        document.updates_in_order().collect::<Vec<_>>(),
        vec![&b"state-after-2"[..], &b"u3"[..]]
    );
    assert_eq!(
        log_of(&*storage, a.id).len(),
        3,
        "playback keeps the whole log"
    );
}

fn a_deleted_session_takes_its_log_and_snapshot_with_it(backend: &dyn Backend) {
    let storage = backend.open();
    let a = meta(1);
    storage.insert_session(&a).unwrap();
    storage
        .append_updates(vec![record(a.id, 10, 1, b"u1")])
        .unwrap();
    storage.store_snapshot(a.id, b"state").unwrap();
    assert!(storage.delete_session(a.id).unwrap());
    // The same id made again starts empty.
    storage.insert_session(&a).unwrap();
    let document = storage.load_document(a.id).unwrap();
    assert_eq!(document.snapshot, None);
    assert!(document.updates.is_empty());
    assert_eq!(document.history_bytes, 0);
    storage
        .append_updates(vec![record(a.id, 20, 1, b"fresh")])
        .unwrap();
    storage.sync_updates().unwrap();
    assert_eq!(log_of(&*storage, a.id), vec![(1, 20, 1, b"fresh".to_vec())]);
}

/// Each check above, once per backend.
macro_rules! for_each_backend {
    ($($check:ident),* $(,)?) => {
        mod embedded {
            $(
                #[test]
                fn $check() {
                    let backend = super::Embedded(tempfile::tempdir().unwrap());
                    super::$check(&backend);
                }
            )*
        }
        mod redis {
            $(
                #[test]
                fn $check() {
                    // Skipped (with a message) where redis-server is missing, outside CI.
                    if let Some(server) = super::TestRedis::start() {
                        super::$check(&super::Redis(server));
                    }
                }
            )*
        }
    };
}

for_each_backend!(
    sessions_are_stored_found_changed_and_deleted,
    notes_documents_are_not_counted_as_sessions,
    updates_are_logged_in_order_with_time_and_author_and_survive_a_restart,
    updates_of_unknown_sessions_are_not_stored,
    activity_moves_forward_with_logged_updates_and_expiry_sees_it,
    a_snapshot_hides_the_updates_it_includes_but_the_log_keeps_them,
    a_deleted_session_takes_its_log_and_snapshot_with_it,
);

//! Following session logs on Redis: how an edit one instance stored reaches
//! the other instances that have the session open (cluster mode).
//!
//! One thread per instance reads the logs of every session followed here with
//! one `XREAD BLOCK` on a connection of its own, each log from the position
//! its room has read up to, and hands new entries over in log order. A room
//! starts following from the position its load stopped at
//! ([`crate::storage::StoredDocument::log_position`]), so nothing falls in
//! between; entries may come twice (a room reloaded meanwhile), which yrs
//! takes as no change. Entries are only ever read after Redis acknowledged
//! them, so what is relayed from here is durable (given the AOF settings).
//!
//! Sessions start to be read at the next round: a round blocks at most
//! [`BLOCK`]. (One `XREAD` over many keys is one Redis slot only on Redis
//! Cluster: a cluster client would read per slot; not done yet.)

use super::{err, log_key, parse_number, Fields};
use crate::{domain::SessionId, storage::StorageResult};
use redis::Connection;
use std::{
    collections::HashMap,
    sync::{Arc, Condvar, Mutex, MutexGuard},
    thread::JoinHandle,
    time::Duration,
};

/// How long one read waits for new entries (and so how late a newly
/// followed session joins the reads).
const BLOCK: Duration = Duration::from_millis(200);
/// Entries read per log per round at most.
const ROUND_COUNT: usize = 512;
/// Pause after a failed read (Redis away) before trying again.
const RETRY_PAUSE: Duration = Duration::from_millis(500);
/// Pause before reading again entries a busy room could not take yet.
const BUSY_PAUSE: Duration = Duration::from_millis(20);

/// One entry of a session's log, as a follower sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TailEntry {
    /// Its stream id: where a follower that has it stands in the log.
    pub position: String,
    /// The instance that stored it (see `RedisStorage::instance`).
    pub origin: u64,
    /// A yrs v1 update.
    pub update: Vec<u8>,
}

/// Where each followed session's log is read from.
struct Follow {
    /// The log's key, made once (every round names it).
    key: Arc<str>,
    position: String,
    /// Which `follow` call this is: a room that unloads stops only its own.
    ticket: u64,
}

#[derive(Default)]
struct Follows {
    by_session: HashMap<SessionId, Follow>,
    next_ticket: u64,
    stopping: bool,
}

struct Shared {
    follows: Mutex<Follows>,
    /// A session is followed (the reader waits on this while none is).
    changed: Condvar,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Follows> {
        self.follows.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The reader thread, and the list of sessions it follows.
pub struct LogTail {
    shared: Arc<Shared>,
    reader: Mutex<Option<JoinHandle<()>>>,
}

impl LogTail {
    /// Starts the reader; `deliver` gets each session's new entries, oldest
    /// first, on the reader's thread, and says whether it took them: entries
    /// not taken (their room is busy) are read again, a little later, and
    /// meanwhile other sessions' go on.
    pub fn start(
        client: redis::Client,
        deliver: impl FnMut(SessionId, Vec<TailEntry>) -> bool + Send + 'static,
    ) -> StorageResult<Self> {
        let shared = Arc::new(Shared {
            follows: Mutex::new(Follows::default()),
            changed: Condvar::new(),
        });
        let reader_shared = shared.clone();
        let reader = std::thread::Builder::new()
            .name("redis-log-tail".into())
            .spawn(move || read_loop(client, &reader_shared, deliver))
            .map_err(err)?;
        Ok(Self {
            shared,
            reader: Mutex::new(Some(reader)),
        })
    }

    /// Follows session `id`'s log from stream id `position` on (exclusive);
    /// returns the ticket that stops it.
    pub fn follow(&self, id: SessionId, position: &str) -> u64 {
        let mut follows = self.shared.lock();
        follows.next_ticket += 1;
        let ticket = follows.next_ticket;
        follows.by_session.insert(
            id,
            Follow {
                key: log_key(id).into(),
                position: position.to_owned(),
                ticket,
            },
        );
        drop(follows);
        self.shared.changed.notify_all();
        ticket
    }

    /// Stops following `id`, if `ticket` is still the one following it.
    pub fn unfollow(&self, id: SessionId, ticket: u64) {
        let mut follows = self.shared.lock();
        if follows
            .by_session
            .get(&id)
            .is_some_and(|follow| follow.ticket == ticket)
        {
            follows.by_session.remove(&id);
        }
    }

    /// How many sessions are followed.
    pub fn followed(&self) -> usize {
        self.shared.lock().by_session.len()
    }
}

impl Drop for LogTail {
    fn drop(&mut self) {
        self.shared.lock().stopping = true;
        self.shared.changed.notify_all();
        if let Some(reader) = self.reader.lock().unwrap_or_else(|p| p.into_inner()).take() {
            let _ = reader.join();
        }
    }
}

/// A log's new entries as XREAD returns them: per key, (stream id, fields).
type ReadReply = Option<Vec<(String, Vec<(String, Fields)>)>>;

/// One followed log, as a round reads it.
struct Wanted {
    id: SessionId,
    key: Arc<str>,
    position: String,
    ticket: u64,
}

fn read_loop(
    client: redis::Client,
    shared: &Shared,
    mut deliver: impl FnMut(SessionId, Vec<TailEntry>) -> bool,
) {
    let mut connection: Option<Connection> = None;
    // Logged once per outage, not every retry.
    let mut failing = false;
    loop {
        // What to read this round (copied: following changes meanwhile).
        let wanted: Vec<Wanted> = {
            let mut follows = shared.lock();
            while follows.by_session.is_empty() && !follows.stopping {
                follows = shared
                    .changed
                    .wait(follows)
                    .unwrap_or_else(|p| p.into_inner());
            }
            if follows.stopping {
                return;
            }
            follows
                .by_session
                .iter()
                .map(|(id, follow)| Wanted {
                    id: *id,
                    key: follow.key.clone(),
                    position: follow.position.clone(),
                    ticket: follow.ticket,
                })
                .collect()
        };
        let read = read_round(&client, &mut connection, &wanted);
        let reply = match read {
            Ok(reply) => reply,
            Err(e) => {
                connection = None;
                if !failing {
                    failing = true;
                    tracing::warn!(error = %e, "redis: following session logs failed; trying again");
                }
                std::thread::sleep(RETRY_PAUSE);
                continue;
            }
        };
        if std::mem::take(&mut failing) {
            tracing::info!("redis: following session logs again");
        }
        let by_key: HashMap<&str, &Wanted> =
            wanted.iter().map(|wanted| (&*wanted.key, wanted)).collect();
        let mut refused = false;
        for (key, entries) in reply.unwrap_or_default() {
            let Some(&&Wanted { id, ticket, .. }) = by_key.get(key.as_str()) else {
                continue;
            };
            let Some((last, _)) = entries.last() else {
                continue;
            };
            let last = last.clone();
            let decoded: Vec<TailEntry> = entries
                .into_iter()
                .filter_map(|(position, fields)| match decode(&position, fields) {
                    Ok(entry) => Some(entry),
                    Err(e) => {
                        tracing::error!(session = %id, error = %e, "redis: unreadable log entry skipped");
                        None
                    }
                })
                .collect();
            if !decoded.is_empty() && !deliver(id, decoded) {
                // Not taken: read again from where this round started.
                refused = true;
                continue;
            }
            let mut follows = shared.lock();
            if let Some(follow) = follows.by_session.get_mut(&id) {
                if follow.ticket == ticket {
                    follow.position = last;
                }
            }
        }
        if refused {
            std::thread::sleep(BUSY_PAUSE);
        }
    }
}

/// One `XREAD BLOCK` over the wanted logs (made on a fresh connection after a
/// failure; its read timeout is longer than the block).
fn read_round(
    client: &redis::Client,
    connection: &mut Option<Connection>,
    wanted: &[Wanted],
) -> StorageResult<ReadReply> {
    if connection.is_none() {
        let made = client
            .get_connection_with_timeout(Duration::from_secs(2))
            .map_err(err)?;
        made.set_read_timeout(Some(BLOCK + Duration::from_secs(5)))
            .map_err(err)?;
        made.set_write_timeout(Some(Duration::from_secs(5)))
            .map_err(err)?;
        *connection = Some(made);
    }
    let connection = connection.as_mut().expect("just made");
    let mut command = redis::cmd("XREAD");
    command
        .arg("COUNT")
        .arg(ROUND_COUNT)
        .arg("BLOCK")
        .arg(BLOCK.as_millis() as u64)
        .arg("STREAMS");
    // Every key, then every position, in one order.
    for wanted in wanted {
        command.arg(&*wanted.key);
    }
    for wanted in wanted {
        command.arg(&wanted.position);
    }
    command.query(connection).map_err(err)
}

fn decode(position: &str, fields: Fields) -> StorageResult<TailEntry> {
    let (mut origin, mut update) = (0, None);
    for (field, value) in fields {
        match field.as_str() {
            "o" => origin = parse_number(&value, "entry origin")?,
            "u" => update = Some(value),
            _ => {}
        }
    }
    let update = update.ok_or_else(|| err(format!("log entry {position} has no update")))?;
    Ok(TailEntry {
        position: position.to_owned(),
        origin,
        update,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        domain::{Language, SessionMeta},
        storage::{
            redis::{RedisOptions, RedisStorage},
            test_redis::TestRedis,
            Storage, UpdateRecord, UpdateSink,
        },
    };
    use std::sync::mpsc;

    fn options() -> RedisOptions {
        RedisOptions {
            require_aof: true,
            key_ttl: None,
        }
    }

    fn append(storage: &RedisStorage, id: SessionId, update: &[u8]) {
        storage
            .append_updates(vec![UpdateRecord {
                session: id,
                at_ms: 1,
                author: 1,
                update: update.to_vec(),
            }])
            .unwrap();
        storage.sync_updates().unwrap();
    }

    #[test]
    fn a_follower_gets_what_another_instance_stores_after_its_load_in_order_with_its_origin() {
        let Some(server) = TestRedis::start() else {
            return;
        };
        let here = RedisStorage::open(&server.url(), options()).unwrap();
        let there = RedisStorage::open(&server.url(), options()).unwrap();
        let meta = SessionMeta::new(SessionId::new_random(), Language::Python, 1);
        here.insert_session(&meta).unwrap();
        append(&there, meta.id, b"before");
        let loaded = here.load_document(meta.id).unwrap();
        assert_eq!(loaded.updates.len(), 1);

        let (sent, received) = mpsc::channel();
        let tail = LogTail::start(here.client(), move |id, entries| {
            sent.send((id, entries)).unwrap();
            true
        })
        .unwrap();
        tail.follow(meta.id, loaded.log_position.as_deref().unwrap());
        append(&there, meta.id, b"one");
        append(&here, meta.id, b"two");
        let mut got = Vec::new();
        while got.len() < 2 {
            let (id, entries) = received.recv_timeout(Duration::from_secs(10)).unwrap();
            assert_eq!(id, meta.id);
            got.extend(entries);
        }
        let seen: Vec<(&[u8], u64)> = got
            .iter()
            .map(|entry| (entry.update.as_slice(), entry.origin))
            .collect();
        assert_eq!(
            seen,
            vec![
                (&b"one"[..], there.instance()),
                (&b"two"[..], here.instance())
            ],
            "not everything stored after the load, in order, with who stored it"
        );
    }
}

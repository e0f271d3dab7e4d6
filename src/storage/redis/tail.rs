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
//! Entries that a snapshot covers leave the log for the compact history
//! after a while (see `super::history`). A follower that was caught up less
//! than half that while ago cannot have missed any; one that may have (just
//! followed, behind for a while, or cut off from Redis) compares its position
//! with the last compacted id after its read, and takes what it missed from
//! the history (whole chunks: a few entries may come twice).
//!
//! Sessions start to be read at the next round: a round blocks at most
//! [`BLOCK`]. (One `XREAD` over many keys is one Redis slot only on Redis
//! Cluster: a cluster client would read per slot; not done yet.)

use super::{err, hist_key, history, log_key, parse_number, snap_key, Fields, StreamId};
use crate::{domain::SessionId, storage::StorageResult};
use redis::Connection;
use std::{
    collections::HashMap,
    sync::{Arc, Condvar, Mutex, MutexGuard},
    thread::JoinHandle,
    time::{Duration, Instant},
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
    /// The instance that stored it (see `RedisStorage::instance`); 0 for
    /// an entry taken from the compact history (who stored it is not kept).
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
    /// When a round last read this log to its end (None: not yet).
    caught_up_at: Option<Instant>,
}

#[derive(Default)]
struct Follows {
    by_session: HashMap<SessionId, Follow>,
    next_ticket: u64,
    stopping: bool,
}

struct Shared {
    follows: Mutex<Follows>,
    /// How long a follower may go without reaching the end of its log before
    /// it checks whether entries it had not read were compacted.
    lag_allowed: Duration,
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
    /// meanwhile other sessions' go on. `compact_after` is the storage's
    /// (`RedisStorage::compact_after`).
    pub fn start(
        client: redis::Client,
        compact_after: Duration,
        deliver: impl FnMut(SessionId, Vec<TailEntry>) -> bool + Send + 'static,
    ) -> StorageResult<Self> {
        let shared = Arc::new(Shared {
            follows: Mutex::new(Follows::default()),
            lag_allowed: compact_after / 2,
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
                caught_up_at: None,
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
    /// Whether it may have missed entries to compaction (checked after the read).
    may_lag: bool,
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
        let (round_start, wanted) = {
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
            let round_start = Instant::now();
            let wanted: Vec<Wanted> = follows
                .by_session
                .iter()
                .map(|(id, follow)| Wanted {
                    id: *id,
                    key: follow.key.clone(),
                    position: follow.position.clone(),
                    ticket: follow.ticket,
                    may_lag: follow.caught_up_at.is_none_or(|at| {
                        round_start.saturating_duration_since(at) > shared.lag_allowed
                    }),
                })
                .collect();
            (round_start, wanted)
        };
        // The read, then (for followers that may lag) what was compacted
        // before they read it.
        let read = read_round(&client, &mut connection, &wanted).and_then(|reply| {
            let connection = connection.as_mut().expect("made by the read");
            Ok((reply, missed_entries(connection, &wanted)?))
        });
        let (reply, mut missed) = match read {
            Ok(read) => read,
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
        let mut read_by_key: HashMap<String, Vec<(String, Fields)>> =
            reply.unwrap_or_default().into_iter().collect();
        let mut refused = false;
        for wanted in &wanted {
            let mut entries = missed.remove(&wanted.id).unwrap_or_default();
            let recovered_to = entries.last().map(|entry| entry.position.clone());
            let read = read_by_key.remove(&*wanted.key).unwrap_or_default();
            let read_to_end = read.len() < ROUND_COUNT;
            let read_to = read.last().map(|(position, _)| position.clone());
            entries.extend(read.into_iter().filter_map(|(position, fields)| {
                match decode(&position, fields) {
                    Ok(entry) => Some(entry),
                    Err(e) => {
                        tracing::error!(session = %wanted.id, error = %e, "redis: unreadable log entry skipped");
                        None
                    }
                }
            }));
            if !entries.is_empty() && !deliver(wanted.id, entries) {
                // Not taken: read again from where this round started.
                refused = true;
                continue;
            }
            let mut follows = shared.lock();
            let Some(follow) = follows
                .by_session
                .get_mut(&wanted.id)
                .filter(|follow| follow.ticket == wanted.ticket)
            else {
                continue;
            };
            if let Some(to) = [recovered_to, read_to]
                .into_iter()
                .flatten()
                .max_by_key(|position| StreamId::parse(position))
            {
                follow.position = to;
            }
            if read_to_end {
                follow.caught_up_at = Some(round_start);
            }
        }
        if refused {
            std::thread::sleep(BUSY_PAUSE);
        }
    }
}

/// For each wanted log that may lag: if entries after its position were
/// compacted, the history chunks that hold them, as entries (oldest first;
/// each carries its chunk's last id as position).
fn missed_entries(
    connection: &mut Connection,
    wanted: &[Wanted],
) -> StorageResult<HashMap<SessionId, Vec<TailEntry>>> {
    let lagging: Vec<&Wanted> = wanted.iter().filter(|wanted| wanted.may_lag).collect();
    let mut missed = HashMap::new();
    if lagging.is_empty() {
        return Ok(missed);
    }
    let mut pipe = redis::pipe();
    for wanted in &lagging {
        pipe.hget(snap_key(wanted.id), "cid");
    }
    let compacted: Vec<Option<String>> = pipe.query(connection).map_err(err)?;
    for (wanted, compacted) in lagging.into_iter().zip(compacted) {
        let position = StreamId::parse(&wanted.position).unwrap_or_default();
        let Some(compacted) = compacted.as_deref().and_then(StreamId::parse) else {
            continue;
        };
        if compacted <= position {
            continue;
        }
        let mut entries = Vec::new();
        for chunk in chunks_after(connection, wanted.id, position)? {
            let at = chunk.last_id.to_string();
            entries.extend(chunk.entries.into_iter().map(|entry| TailEntry {
                position: at.clone(),
                origin: 0,
                update: entry.update,
            }));
        }
        tracing::info!(session = %wanted.id, entries = entries.len(), "redis: a follower caught up on compacted log entries");
        missed.insert(wanted.id, entries);
    }
    Ok(missed)
}

/// History chunks read from the end at a time.
const HISTORY_PAGE: isize = 4;

/// The history chunks of session `id` that end after `position`, oldest
/// first. They are the last ones of the list: it is read from its end, a few
/// at a time, until a chunk ends at or before `position` (a chunk appended
/// meanwhile shifts the pages, which can only bring a chunk twice).
fn chunks_after(
    connection: &mut Connection,
    id: SessionId,
    position: StreamId,
) -> StorageResult<Vec<history::Chunk>> {
    let key = hist_key(id);
    let mut chunks = Vec::new();
    let mut end: isize = -1;
    loop {
        let page: Vec<Vec<u8>> = redis::cmd("LRANGE")
            .arg(&key)
            .arg(end - HISTORY_PAGE + 1)
            .arg(end)
            .query(connection)
            .map_err(err)?;
        for bytes in page.iter().rev() {
            let chunk = history::decode(bytes).map_err(err)?;
            if chunk.last_id <= position {
                chunks.reverse();
                return Ok(chunks);
            }
            chunks.push(chunk);
        }
        if page.len() < HISTORY_PAGE as usize {
            chunks.reverse();
            return Ok(chunks);
        }
        end -= HISTORY_PAGE;
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
            compact_after: std::time::Duration::ZERO,
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

    /// Two instances' storage on `server`, and a session created on the first.
    fn two_instances_and_a_session(
        server: &TestRedis,
    ) -> (RedisStorage, RedisStorage, SessionMeta) {
        let here = RedisStorage::open(&server.url(), options()).unwrap();
        let there = RedisStorage::open(&server.url(), options()).unwrap();
        let meta = SessionMeta::new(SessionId::new_random(), Language::Python, 1);
        here.insert_session(&meta).unwrap();
        (here, there, meta)
    }

    #[test]
    fn a_follower_gets_what_another_instance_stores_after_its_load_in_order_with_its_origin() {
        let Some(server) = TestRedis::start() else {
            return;
        };
        let (here, there, meta) = two_instances_and_a_session(&server);
        append(&there, meta.id, b"before");
        let loaded = here.load_document(meta.id).unwrap();
        assert_eq!(loaded.updates.len(), 1);

        let (sent, received) = mpsc::channel();
        let tail = LogTail::start(here.client(), here.compact_after(), move |id, entries| {
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

    #[test]
    fn a_follower_behind_a_compaction_gets_what_it_missed_from_the_history() {
        let Some(server) = TestRedis::start() else {
            return;
        };
        let (here, there, meta) = two_instances_and_a_session(&server);
        let loaded = here.load_document(meta.id).unwrap();
        // While this instance was not reading, another one stored six
        // updates, snapshotting after each: six chunks of compact history
        // (more than one page of them), nothing left in the log.
        let missed = [&b"one"[..], b"two", b"three", b"four", b"five", b"six"];
        for update in missed {
            append(&there, meta.id, update);
            there.store_snapshot(meta.id, update).unwrap();
        }
        assert!(there.load_document(meta.id).unwrap().updates.is_empty());

        let (sent, received) = mpsc::channel();
        let tail = LogTail::start(here.client(), here.compact_after(), move |_, entries| {
            sent.send(entries).unwrap();
            true
        })
        .unwrap();
        tail.follow(meta.id, loaded.log_position.as_deref().unwrap());
        append(&there, meta.id, b"seven");
        let mut got: Vec<Vec<u8>> = Vec::new();
        while got.len() < 7 {
            let entries = received.recv_timeout(Duration::from_secs(10)).unwrap();
            got.extend(entries.into_iter().map(|entry| entry.update));
        }
        let mut expected: Vec<Vec<u8>> = missed.map(<[u8]>::to_vec).to_vec();
        expected.push(b"seven".to_vec());
        assert_eq!(
            got, expected,
            "the follower missed what was compacted before it read it"
        );
    }
}

//! Redis storage: the [`Storage`] trait on a Redis server, which any number
//! of pairpad instances may share (cluster mode, see `server::cluster`).
//!
//! Keys (a session's keys share the hash tag `{<id>}`, so Redis Cluster keeps
//! them on one node and the Lua scripts below may touch them together):
//! - `pp:{<id>}:meta`: HASH. `json` is the [`SessionMeta`] as JSON; `activity`
//!   and `history` (its last activity and stored update bytes) live in their
//!   own fields, so appends move them without parsing the JSON.
//! - `pp:{<id>}:log`: STREAM, the session's update log; each entry holds `s`
//!   (its sequence number, from 1), `t` (ms timestamp), `a` (author), `o` (the
//!   instance that stored it, see [`RedisStorage::instance`]) and `u` (the yrs
//!   v1 update). Instances follow the logs of the sessions they have open
//!   ([`tail`]): that is how an edit stored by one reaches the others. Entries
//!   a snapshot covers leave it for `hist` once they are a while old.
//! - `pp:{<id>}:hist`: LIST, the session's compact history: the entries
//!   compacted out of the log, in chunks (see [`history`]), for playback.
//! - `pp:{<id>}:seq`: the last sequence number handed out.
//! - `pp:{<id>}:snap`: HASH. `doc` holds the whole document as of entry `seq`
//!   (stream id `id`); a snapshot only ever replaces an older one. `cid` is
//!   the last stream id compacted into `hist` (never after `id`).
//! - `pp:docs`: ZSET of every session and notes document by last activity
//!   (expiry reads it); `pp:notes`: SET of the notes documents among them;
//!   `pp:instances`: how many instances have started (each one's number marks
//!   its log entries). These are global keys, so they are only ever written in
//!   commands of their own, never in a script with a session's keys.
//! - Cluster mode adds `pp:{<id>}:users`, `pp:alive` and the channels
//!   `pp:presence` and `pp:changes` (see `server::cluster`).
//!
//! Appends are queued to a writer thread that sends whatever is queued as one
//! pipeline (one script call and one `pp:docs` update per session, so one AOF
//! fsync for all of it), and counts what Redis acknowledged;
//! [`UpdateSink::sync_updates`] waits for that acknowledgement. So with Redis
//! an update is durable once `sync_updates` returns (given the server's AOF
//! settings), not when `append_updates` does: [`UpdateSink::durable_on_append`]
//! says so, and the server then relays only after the sync.

mod history;
pub mod tail;

use super::{
    LoggedUpdate, Storage, StorageError, StorageResult, StoredDocument, UpdateRecord, UpdateSink,
};
use crate::domain::{Language, SessionId, SessionMeta};
use redis::{Commands, Connection, Script};
use std::{
    collections::VecDeque,
    sync::{Arc, Condvar, Mutex, MutexGuard},
    thread::JoinHandle,
    time::Duration,
};

/// Every session and notes document, by last activity.
const DOCS_KEY: &str = "pp:docs";
/// The notes documents among them (not counted as sessions).
const NOTES_KEY: &str = "pp:notes";
/// Counts the instances ever started on this Redis (each takes the next
/// number as its mark on the log entries it stores).
const INSTANCES_KEY: &str = "pp:instances";
/// How long a command may take before the connection is given up (and made
/// again for the next one).
const COMMAND_TIMEOUT: Duration = Duration::from_secs(5);
/// Log entries read per XRANGE call.
const READ_PAGE: usize = 4_096;
/// How many times a read that pages through a log starts again when the log
/// was compacted under it, before it gives up (compactions are minutes apart).
const CONSISTENT_READ_TRIES: usize = 5;

/// Appends one session's records, if the session exists; numbers each entry,
/// moves the activity forward and counts the bytes. Returns 1 if appended.
/// With a key lifetime, the session's keys live that long after this edit
/// (not a record created without one: a notes document goes with its session).
/// KEYS: meta, log, seq, snap, hist. ARGV: newest ms, total bytes, lifetime ms (0:
/// forever), the storing instance, then (t, a, u) triples.
const APPEND_SCRIPT: &str = r"
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
for i = 5, #ARGV, 3 do
  local s = redis.call('INCR', KEYS[3])
  redis.call('XADD', KEYS[2], '*', 's', s, 't', ARGV[i], 'a', ARGV[i + 1], 'o', ARGV[4], 'u', ARGV[i + 2])
end
local activity = tonumber(redis.call('HGET', KEYS[1], 'activity') or '0')
if tonumber(ARGV[1]) > activity then redis.call('HSET', KEYS[1], 'activity', ARGV[1]) end
redis.call('HINCRBY', KEYS[1], 'history', ARGV[2])
if tonumber(ARGV[3]) > 0 and redis.call('PTTL', KEYS[1]) ~= -1 then
  for _, key in ipairs(KEYS) do redis.call('PEXPIRE', key, ARGV[3]) end
end
return 1
";

/// Stores a snapshot covering the log up to stream id ARGV[2] (what the
/// storing room has read of it), unless the stored one covers more: with
/// several instances, each snapshots what it has, and an older view must
/// never replace a newer one. Returns the last entry number covered (0 if
/// nothing was written: the session's record is gone, or the stored snapshot
/// is newer). KEYS: log, snap, meta. ARGV: the document, the stream id.
const SNAPSHOT_SCRIPT: &str = r"
if redis.call('EXISTS', KEYS[3]) == 0 then return 0 end
local function parse(id)
  local ms, n = string.match(id, '^(%d+)-(%d+)$')
  return tonumber(ms), tonumber(n)
end
local new_ms, new_n = parse(ARGV[2])
if new_ms == nil then return redis.error_reply('bad stream id') end
local old = redis.call('HGET', KEYS[2], 'id')
if old then
  local old_ms, old_n = parse(old)
  if old_ms ~= nil and (old_ms > new_ms or (old_ms == new_ms and old_n > new_n)) then return 0 end
end
local seq = 0
local entry = redis.call('XRANGE', KEYS[1], ARGV[2], ARGV[2])
if #entry > 0 then
  local fields = entry[1][2]
  for i = 1, #fields, 2 do
    if fields[i] == 's' then seq = tonumber(fields[i + 1]) end
  end
elseif old == ARGV[2] then
  -- The same position again, its entry compacted meanwhile.
  seq = tonumber(redis.call('HGET', KEYS[2], 'seq') or '0')
end
redis.call('HSET', KEYS[2], 'seq', seq, 'id', ARGV[2], 'doc', ARGV[1])
local ttl = redis.call('PTTL', KEYS[3])
if ttl > 0 then redis.call('PEXPIRE', KEYS[2], ttl) end
return seq
";

/// Creates a session's record unless the id exists. Returns 1 if created.
/// KEYS: meta. ARGV: json, activity, lifetime ms (0: forever).
const INSERT_SCRIPT: &str = r"
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], 'json', ARGV[1], 'activity', ARGV[2], 'history', 0)
if tonumber(ARGV[3]) > 0 then redis.call('PEXPIRE', KEYS[1], ARGV[3]) end
return 1
";

/// Gives a session's keys their lifetime again, if its record has one.
/// KEYS: meta, log, seq, snap, hist. ARGV: lifetime ms.
const REFRESH_SCRIPT: &str = r"
if redis.call('PTTL', KEYS[1]) < 0 then return 0 end
for _, key in ipairs(KEYS) do redis.call('PEXPIRE', key, ARGV[1]) end
return 1
";

/// How a [`RedisStorage`] is opened.
#[derive(Clone, Copy, Debug)]
pub struct RedisOptions {
    /// Refuse a server whose append-only file is off (or cannot be asked):
    /// without it a restart of Redis loses every acknowledged edit since its
    /// last RDB save.
    pub require_aof: bool,
    /// How long a session's keys outlive its last edit or load: Redis deletes
    /// them by itself, even with no pairpad running. A backstop behind
    /// pairpad's own expiry (which also spares sessions someone has open), so
    /// longer than the session TTL. None: kept until deleted (tests).
    pub key_ttl: Option<Duration>,
    /// How old log entries a snapshot covers must be before they move into
    /// the compact history. Followers that fell further behind than half of
    /// this check for what they missed (see [`tail`]), so it is a cost, not a
    /// correctness, trade: shorter keeps the stream smaller.
    pub compact_after: Duration,
}

/// A hash's or a stream entry's fields, as Redis returns them.
type Fields = Vec<(String, Vec<u8>)>;

fn err(e: impl std::fmt::Display) -> StorageError {
    StorageError(format!("redis: {e}"))
}

fn meta_key(id: SessionId) -> String {
    format!("pp:{{{id}}}:meta")
}
fn log_key(id: SessionId) -> String {
    format!("pp:{{{id}}}:log")
}
fn seq_key(id: SessionId) -> String {
    format!("pp:{{{id}}}:seq")
}
fn snap_key(id: SessionId) -> String {
    format!("pp:{{{id}}}:snap")
}
fn hist_key(id: SessionId) -> String {
    format!("pp:{{{id}}}:hist")
}
/// Every key of a session, in the order the append and refresh scripts take
/// them: meta, log, seq, snap, hist.
fn session_keys(id: SessionId) -> [String; 5] {
    [
        meta_key(id),
        log_key(id),
        seq_key(id),
        snap_key(id),
        hist_key(id),
    ]
}

/// A stream entry's id, `<ms>-<seq>`, ordered as Redis orders them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct StreamId {
    pub ms: u64,
    pub seq: u64,
}

impl StreamId {
    /// `text` as a stream id, if it is one ("0-0" is the very start).
    pub fn parse(text: &str) -> Option<Self> {
        let (ms, seq) = text.split_once('-')?;
        Some(Self {
            ms: ms.parse().ok()?,
            seq: seq.parse().ok()?,
        })
    }
}

impl std::fmt::Display for StreamId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}-{}", self.ms, self.seq)
    }
}

/// A Redis connection made on first use and again after a failure (cluster
/// mode's other connections use it too).
pub(crate) struct Link {
    client: redis::Client,
    connection: Option<Connection>,
    /// When connecting last failed: for [`RECONNECT_PAUSE`] after it calls
    /// fail at once instead of each waiting out a connect timeout.
    failed_at: Option<std::time::Instant>,
}

/// How long after a failed connect calls fail without trying again: with
/// Redis unreachable, requests (health checks, page loads) must not queue up
/// behind one connect timeout after another.
const RECONNECT_PAUSE: Duration = Duration::from_secs(1);

impl Link {
    pub(crate) fn new(client: redis::Client) -> Self {
        Self {
            client,
            connection: None,
            failed_at: None,
        }
    }

    fn get(&mut self) -> StorageResult<&mut Connection> {
        if self.connection.is_none() {
            if let Some(at) = self.failed_at {
                if at.elapsed() < RECONNECT_PAUSE {
                    return Err(err("unreachable (trying again within a second)"));
                }
            }
            let connection = match self.client.get_connection_with_timeout(COMMAND_TIMEOUT) {
                Ok(connection) => connection,
                Err(e) => {
                    self.failed_at = Some(std::time::Instant::now());
                    return Err(err(e));
                }
            };
            self.failed_at = None;
            connection
                .set_read_timeout(Some(COMMAND_TIMEOUT))
                .map_err(err)?;
            connection
                .set_write_timeout(Some(COMMAND_TIMEOUT))
                .map_err(err)?;
            self.connection = Some(connection);
        }
        Ok(self.connection.as_mut().expect("just made"))
    }

    /// Runs `work` on the connection; a failure drops the connection, since
    /// a reply may still be on its way (the next call reconnects). A
    /// connection kept from before that turns out dead (Redis restarted since)
    /// is made again and `work` tried once more: for idempotent commands
    /// (appends use [`Link::run_once`]).
    pub(crate) fn run<T>(
        &mut self,
        mut work: impl FnMut(&mut Connection) -> redis::RedisResult<T>,
    ) -> StorageResult<T> {
        let reused = self.connection.is_some();
        let connection = self.get()?;
        match work(connection) {
            Ok(value) => Ok(value),
            Err(e) => {
                self.connection = None;
                // Dropped, not timed out: a timed-out command may have run.
                if reused && e.is_connection_dropped() {
                    let connection = self.get()?;
                    let again = work(connection).map_err(err);
                    if again.is_err() {
                        self.connection = None;
                    }
                    return again;
                }
                Err(err(e))
            }
        }
    }

    /// Runs `work` once; a failure drops the connection. For appends: sent
    /// again after a dropped connection, part of them may have been stored
    /// twice (harmless to the document, but counted twice against the
    /// session's history); failed, their senders send them again.
    fn run_once<T>(
        &mut self,
        work: impl FnOnce(&mut Connection) -> redis::RedisResult<T>,
    ) -> StorageResult<T> {
        let connection = self.get()?;
        let result = work(connection);
        if result.is_err() {
            self.connection = None;
        }
        result.map_err(err)
    }
}

/// What `append_updates`, `sync_updates` and the writer thread share.
#[derive(Default)]
struct Queue {
    pending: VecDeque<(u64, Vec<UpdateRecord>)>,
    /// Batches queued so far (each gets the next number).
    queued: u64,
    /// Batches the writer has finished with (acknowledged or failed).
    done: u64,
    /// Batches that failed and no `sync_updates` has reported yet, by number:
    /// the first sync whose target covers one fails (its rooms drop those
    /// updates; their senders send them again when they reconnect). Later
    /// batches are tried again, on a new connection.
    unreported_failures: Vec<(u64, StorageError)>,
    stopping: bool,
}

struct Shared {
    queue: Mutex<Queue>,
    /// The writer has work (or should stop).
    work: Condvar,
    /// The writer acknowledged a batch (or failed).
    acked: Condvar,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Storage on a Redis server (see the module docs for the layout).
pub struct RedisStorage {
    /// This instance's mark on the log entries it stores (from 1).
    instance: u64,
    /// Lifetime of a session's keys after its last edit, in ms (0: forever).
    ttl_ms: u64,
    compact_after: Duration,
    link: Mutex<Link>,
    shared: Arc<Shared>,
    writer: Mutex<Option<JoinHandle<()>>>,
}

impl RedisStorage {
    /// Connects to `url` (`redis://host:port/db`, `redis+unix:///path`) and
    /// checks that the server answers (and, if asked, keeps an append-only file).
    pub fn open(url: &str, options: RedisOptions) -> StorageResult<Self> {
        let RedisOptions {
            require_aof,
            key_ttl,
            compact_after,
        } = options;
        let ttl_ms = key_ttl.map_or(0, |ttl| ttl.as_millis().max(1) as u64);
        let client = redis::Client::open(url).map_err(err)?;
        let mut link = Link::new(client.clone());
        link.run(|connection| redis::cmd("PING").query::<String>(connection))?;
        if require_aof {
            let aof = link.run(|connection| {
                redis::cmd("CONFIG")
                    .arg("GET")
                    .arg("appendonly")
                    .query::<Vec<String>>(connection)
            });
            match aof.as_deref() {
                Ok([_, value]) if value == "yes" => {}
                Ok(_) => {
                    return Err(err(
                        "the server's append-only file is off (appendonly no): acknowledged edits \
                         would not survive a Redis restart. Set `appendonly yes` (see the README), \
                         or accept the loss explicitly",
                    ))
                }
                Err(e) => {
                    return Err(err(format!(
                        "could not check that the append-only file is on ({e}); \
                         accept that explicitly if CONFIG is disabled on this server"
                    )))
                }
            }
        }
        let shared = Arc::new(Shared {
            queue: Mutex::new(Queue::default()),
            work: Condvar::new(),
            acked: Condvar::new(),
        });
        // Small numbers, unique for the life of this Redis: each log entry
        // carries one, and a small integer is what a stream stores smallest.
        let instance: u64 = link.run(|connection| connection.incr(INSTANCES_KEY, 1))?;
        let writer_shared = shared.clone();
        let writer = std::thread::Builder::new()
            .name("redis-writer".into())
            .spawn(move || write_loop(client, &writer_shared, ttl_ms, instance))
            .map_err(err)?;
        Ok(Self {
            instance,
            ttl_ms,
            compact_after,
            link: Mutex::new(link),
            shared,
            writer: Mutex::new(Some(writer)),
        })
    }

    /// The mark this instance puts on the log entries it stores (`o`), so
    /// that it can tell them from other instances' when it follows a log.
    pub fn instance(&self) -> u64 {
        self.instance
    }

    /// How old covered log entries get before they are compacted (followers
    /// that lag half as long check for a gap).
    pub fn compact_after(&self) -> Duration {
        self.compact_after
    }

    /// The client this storage connects with (others connect the same way).
    pub fn client(&self) -> redis::Client {
        self.link
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .client
            .clone()
    }

    fn run<T>(
        &self,
        work: impl FnMut(&mut Connection) -> redis::RedisResult<T>,
    ) -> StorageResult<T> {
        self.link
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .run(work)
    }

    /// Log entries of `id` after stream id `after` (exclusive; "-" for all),
    /// and the stream id of the last one (`after` itself if there is none).
    fn read_log(&self, id: SessionId, after: &str) -> StorageResult<(Vec<LoggedUpdate>, String)> {
        let key = log_key(id);
        let mut updates = Vec::new();
        let mut start = if after == "-" {
            "-".to_string()
        } else {
            format!("({after}")
        };
        let mut last = after.to_string();
        loop {
            let page: Vec<(String, Fields)> = self.run(|connection| {
                redis::cmd("XRANGE")
                    .arg(&key)
                    .arg(&start)
                    .arg("+")
                    .arg("COUNT")
                    .arg(READ_PAGE)
                    .query(connection)
            })?;
            let Some((last_id, _)) = page.last() else {
                break;
            };
            last = last_id.clone();
            start = format!("({last_id}");
            let full = page.len() == READ_PAGE;
            for (entry_id, fields) in page {
                updates.push(decode_entry(&entry_id, fields)?);
            }
            if !full {
                break;
            }
        }
        Ok((updates, last))
    }

    /// The last stream id compacted out of `id`'s log (None: none yet). A
    /// reader that pages through the log reads it before and after: if it
    /// moved, entries left the log meanwhile, and the read is done again.
    fn compacted_to(&self, id: SessionId) -> StorageResult<Option<String>> {
        self.run(|connection| connection.hget(snap_key(id), "cid"))
    }

    /// Every entry compacted out of `id`'s log, oldest first.
    fn read_history(&self, id: SessionId) -> StorageResult<Vec<LoggedUpdate>> {
        let chunks: Vec<Vec<u8>> = self.run(|connection| connection.lrange(hist_key(id), 0, -1))?;
        let mut entries = Vec::new();
        for chunk in chunks {
            entries.extend(history::decode(&chunk).map_err(err)?.entries);
        }
        Ok(entries)
    }

    /// Moves the log entries the stored snapshot covers into the compact
    /// history once they are `compact_after` old (by Redis's clock, which
    /// also made their ids), a chunk at a time. Returns how many moved.
    fn compact(&self, id: SessionId) -> StorageResult<u64> {
        let compact_after_ms = self.compact_after.as_millis() as u64;
        let mut moved = 0;
        loop {
            let ((seconds, micros), covered): ((u64, u64), Option<String>) =
                self.run(|connection| {
                    redis::pipe()
                        .cmd("TIME")
                        .hget(snap_key(id), "id")
                        .query(connection)
                })?;
            let Some(covered) = covered.as_deref().and_then(StreamId::parse) else {
                return Ok(moved);
            };
            let now_ms = seconds * 1_000 + micros / 1_000;
            let Some(old_ms) = now_ms.checked_sub(compact_after_ms) else {
                return Ok(moved);
            };
            let bound = covered.min(StreamId {
                ms: old_ms,
                seq: u64::MAX,
            });
            let run: Vec<(String, Fields)> = self.run(|connection| {
                redis::cmd("XRANGE")
                    .arg(log_key(id))
                    .arg("-")
                    .arg(bound.to_string())
                    .arg("COUNT")
                    .arg(history::CHUNK_ENTRIES)
                    .query(connection)
            })?;
            let (Some((first, _)), Some((last, _))) = (run.first(), run.last()) else {
                return Ok(moved);
            };
            let (first, last) = (first.clone(), last.clone());
            let last_id = StreamId::parse(&last)
                .ok_or_else(|| err(format!("log entry id {last:?} is not a stream id")))?;
            let full = run.len() == history::CHUNK_ENTRIES;
            let entries = run
                .into_iter()
                .map(|(entry_id, fields)| decode_entry(&entry_id, fields))
                .collect::<StorageResult<Vec<_>>>()?;
            let chunk = history::encode(last_id, &entries);
            let removed: u64 = self.run(|connection| {
                Script::new(history::COMPACT_SCRIPT)
                    .key(log_key(id))
                    .key(hist_key(id))
                    .key(snap_key(id))
                    .key(meta_key(id))
                    .arg(&first)
                    .arg(&last)
                    .arg(&chunk)
                    .arg(
                        StreamId {
                            seq: last_id.seq.saturating_add(1),
                            ..last_id
                        }
                        .to_string(),
                    )
                    .invoke(connection)
            })?;
            // None moved: another instance is compacting this log (or the
            // session went); it carries on.
            if removed == 0 || !full {
                return Ok(moved + removed);
            }
            moved += removed;
        }
    }

    /// Waits until the writer has finished (stored or failed) every batch
    /// queued before the call; returns the queue and that last batch's number.
    fn wait_for_queued(&self) -> (MutexGuard<'_, Queue>, u64) {
        let mut queue = self.shared.lock();
        let target = queue.queued;
        while queue.done < target {
            queue = self
                .shared
                .acked
                .wait(queue)
                .unwrap_or_else(|p| p.into_inner());
        }
        (queue, target)
    }

    fn meta_of(&self, id: SessionId) -> StorageResult<Option<SessionMeta>> {
        let fields: Fields = self.run(|connection| connection.hgetall(meta_key(id)))?;
        decode_meta(id, fields)
    }
}

impl Drop for RedisStorage {
    fn drop(&mut self) {
        self.shared.lock().stopping = true;
        self.shared.work.notify_all();
        if let Some(writer) = self.writer.lock().unwrap_or_else(|p| p.into_inner()).take() {
            let _ = writer.join();
        }
    }
}

/// Batches written together at most (one pipeline, so one AOF fsync under
/// `appendfsync always`).
const WRITE_MERGE: usize = 256;

/// The writer thread: sends whatever batches are queued as one pipeline, in
/// order, and counts them done (a failure of the pipeline fails them all; a
/// session found gone fails only the batches that held it).
fn write_loop(client: redis::Client, shared: &Shared, ttl_ms: u64, instance: u64) {
    let mut link = Link::new(client);
    let script = Script::new(APPEND_SCRIPT);
    loop {
        let batches: Vec<(u64, Vec<UpdateRecord>)> = {
            let mut queue = shared.lock();
            while queue.pending.is_empty() {
                if queue.stopping {
                    return;
                }
                queue = shared.work.wait(queue).unwrap_or_else(|p| p.into_inner());
            }
            let take = queue.pending.len().min(WRITE_MERGE);
            queue.pending.drain(..take).collect()
        };
        let records: Vec<&UpdateRecord> = batches.iter().flat_map(|(_, b)| b.iter()).collect();
        let result = write_records(&mut link, &script, &records, ttl_ms, instance);
        let mut queue = shared.lock();
        queue.done = batches.last().map_or(queue.done, |(number, _)| *number);
        match result {
            Ok(missing) => {
                for (number, batch) in &batches {
                    if let Some(gone) = batch.iter().find(|r| missing.contains(&r.session)) {
                        // Deleted, or expired by its key lifetime while a room
                        // still had it open: say so rather than drop the edits
                        // as if stored.
                        let e = err(format!(
                            "session {} has no record any more (deleted or expired); its updates were not stored",
                            gone.session
                        ));
                        tracing::error!(error = %e, "redis: updates could not be stored");
                        queue.unreported_failures.push((*number, e));
                    }
                }
            }
            Err(e) => {
                tracing::error!(error = %e, "redis: updates could not be stored");
                for (number, _) in &batches {
                    queue.unreported_failures.push((*number, e.clone()));
                }
            }
        }
        drop(queue);
        shared.acked.notify_all();
    }
}

/// Appends records in one pipeline: one script call per session, each
/// followed by that session's place in `pp:docs` (a global key, so a command
/// of its own; `XX`: only for a session still listed, so a session deleted
/// meanwhile is not listed again). Returns the sessions found gone.
fn write_records(
    link: &mut Link,
    script: &Script,
    records: &[&UpdateRecord],
    ttl_ms: u64,
    instance: u64,
) -> StorageResult<Vec<SessionId>> {
    let mut by_session: Vec<&UpdateRecord> = records.to_vec();
    // Stable: a session's records keep their order.
    by_session.sort_by_key(|record| record.session);
    let groups: Vec<&[&UpdateRecord]> =
        by_session.chunk_by(|a, b| a.session == b.session).collect();
    let mut pipe = redis::pipe();
    for records in &groups {
        let session = records[0].session;
        let newest = records.iter().map(|r| r.at_ms).max().unwrap_or(0);
        let bytes: u64 = records.iter().map(|r| r.update.len() as u64).sum();
        let keys = session_keys(session);
        let call = pipe
            .cmd("EVALSHA")
            .arg(script.get_hash())
            .arg(keys.len())
            .arg(&keys[..])
            .arg(newest)
            .arg(bytes)
            .arg(ttl_ms)
            .arg(instance);
        for record in records.iter() {
            call.arg(record.at_ms)
                .arg(record.author)
                .arg(record.update.as_slice());
        }
        pipe.cmd("ZADD")
            .arg(DOCS_KEY)
            .arg("XX")
            .arg("GT")
            .arg(newest)
            .arg(session.to_string())
            .ignore();
    }
    // EVALSHA: the script is sent only when the server does not know it
    // (NOSCRIPT: the first time, and after a Redis restart; the places set
    // meanwhile are set again, which changes nothing).
    let appended: Vec<i64> = link.run_once(|connection| match pipe.query(connection) {
        Err(e) if e.kind() == redis::ErrorKind::Server(redis::ServerErrorKind::NoScript) => {
            script.load(connection)?;
            pipe.query(connection)
        }
        other => other,
    })?;
    Ok(groups
        .iter()
        .zip(&appended)
        .filter(|(_, appended)| **appended == 0)
        .map(|(records, _)| records[0].session)
        .collect())
}

impl UpdateSink for RedisStorage {
    fn append_updates(&self, batch: Vec<UpdateRecord>) -> StorageResult<()> {
        let mut queue = self.shared.lock();
        queue.queued += 1;
        let number = queue.queued;
        queue.pending.push_back((number, batch));
        drop(queue);
        self.shared.work.notify_one();
        Ok(())
    }

    /// Fails if a batch queued before the call failed and was not reported
    /// yet. (Called by the update writer's one sync thread; `store_snapshot`
    /// only waits, see [`RedisStorage::wait_for_queued`].)
    fn sync_updates(&self) -> StorageResult<()> {
        let (mut queue, target) = self.wait_for_queued();
        let (covered, later): (Vec<_>, Vec<_>) = std::mem::take(&mut queue.unreported_failures)
            .into_iter()
            .partition(|(number, _)| *number <= target);
        queue.unreported_failures = later;
        match covered.into_iter().next() {
            Some((_, e)) => Err(e),
            None => Ok(()),
        }
    }

    fn flush(&self) -> StorageResult<()> {
        self.sync_updates()
    }

    fn durable_on_append(&self) -> bool {
        false
    }

    fn failures_are_final(&self) -> bool {
        false
    }
}

impl Storage for RedisStorage {
    fn insert_session(&self, meta: &SessionMeta) -> StorageResult<()> {
        let json = serde_json::to_string(meta).map_err(err)?;
        let created: i64 = self.run(|connection| {
            Script::new(INSERT_SCRIPT)
                .key(meta_key(meta.id))
                .arg(&json)
                .arg(meta.last_activity_ms)
                // A notes document has no lifetime of its own: it goes with its session.
                .arg(if meta.notes_of.is_some() {
                    0
                } else {
                    self.ttl_ms
                })
                .invoke(connection)
        })?;
        if created == 0 {
            return Err(StorageError(format!("session {} exists", meta.id)));
        }
        let id = meta.id.to_string();
        self.run(|connection| {
            let mut pipe = redis::pipe();
            pipe.zadd(DOCS_KEY, &id, meta.last_activity_ms).ignore();
            if meta.notes_of.is_some() {
                pipe.sadd(NOTES_KEY, &id).ignore();
            }
            pipe.exec(connection)
        })
    }

    fn session(&self, id: SessionId) -> StorageResult<Option<SessionMeta>> {
        self.meta_of(id)
    }

    fn set_language(&self, id: SessionId, language: Language) -> StorageResult<()> {
        self.change_session(id, &mut |meta| meta.language = language)
            .map(|_| ())
    }

    fn change_session(
        &self,
        id: SessionId,
        change: &mut dyn FnMut(&mut SessionMeta),
    ) -> StorageResult<bool> {
        let key = meta_key(id);
        let mut failure = None;
        // WATCH / MULTI: another instance changing the record meanwhile makes
        // this one read and change it again.
        let existed = self.run(|connection| {
            redis::transaction(connection, &[&key], |connection, pipe| {
                let fields: Fields = connection.hgetall(&key)?;
                let before = match decode_meta(id, fields) {
                    Ok(Some(meta)) => meta,
                    Ok(None) => return Ok(Some(false)),
                    Err(e) => {
                        failure = Some(e);
                        return Ok(Some(false));
                    }
                };
                let mut meta = before.clone();
                change(&mut meta);
                if meta == before {
                    return Ok(Some(true));
                }
                let json = match serde_json::to_string(&meta) {
                    Ok(json) => json,
                    Err(e) => {
                        failure = Some(err(e));
                        return Ok(Some(false));
                    }
                };
                pipe.hset_multiple(
                    &key,
                    &[
                        ("json", json),
                        ("activity", meta.last_activity_ms.to_string()),
                        ("history", meta.history_bytes.to_string()),
                    ],
                )
                .ignore()
                .query::<Option<()>>(connection)
                .map(|done| done.map(|_| true))
            })
        })?;
        match failure {
            Some(e) => Err(e),
            None => Ok(existed),
        }
    }

    fn delete_session(&self, id: SessionId) -> StorageResult<bool> {
        let member = id.to_string();
        let deleted: i64 = self.run(|connection| connection.del(&session_keys(id)[..]))?;
        self.run(|connection| {
            redis::pipe()
                .zrem(DOCS_KEY, &member)
                .ignore()
                .srem(NOTES_KEY, &member)
                .ignore()
                .exec(connection)
        })?;
        Ok(deleted > 0)
    }

    fn sessions_inactive_since(&self, cutoff_ms: u64) -> StorageResult<Vec<SessionId>> {
        let ids: Vec<String> = self.run(|connection| {
            redis::cmd("ZRANGE")
                .arg(DOCS_KEY)
                .arg("-inf")
                .arg(format!("({cutoff_ms}"))
                .arg("BYSCORE")
                .query(connection)
        })?;
        ids.iter()
            .map(|id| {
                id.parse()
                    .map_err(|e| err(format!("bad id {id:?} in {DOCS_KEY}: {e}")))
            })
            .collect()
    }

    fn session_count(&self) -> StorageResult<u64> {
        let (all, notes): (u64, u64) = self.run(|connection| {
            redis::pipe()
                .zcard(DOCS_KEY)
                .scard(NOTES_KEY)
                .query(connection)
        })?;
        Ok(all.saturating_sub(notes))
    }

    fn load_document(&self, id: SessionId) -> StorageResult<StoredDocument> {
        if self.ttl_ms > 0 {
            // A session being opened is in use: its keys live on from now.
            self.run(|connection| {
                Script::new(REFRESH_SCRIPT)
                    .key(&session_keys(id)[..])
                    .arg(self.ttl_ms)
                    .invoke::<i64>(connection)
            })?;
        }
        // The snapshot, then the log after it: if entries were compacted
        // out of the log in between (a newer snapshot covers them), the
        // log no longer starts where this snapshot ends: read again.
        for _ in 0..CONSISTENT_READ_TRIES {
            let fields: Fields = self.run(|connection| connection.hgetall(snap_key(id)))?;
            let mut snapshot = None;
            let mut snapshot_seq = 0;
            let mut after = "-".to_string();
            let mut compacted = None;
            for (field, value) in fields {
                match field.as_str() {
                    "doc" => snapshot = Some(value),
                    "seq" => snapshot_seq = parse_number(&value, "snapshot seq")?,
                    "id" => after = String::from_utf8(value).map_err(err)?,
                    "cid" => compacted = Some(String::from_utf8(value).map_err(err)?),
                    _ => {}
                }
            }
            if snapshot.is_none() {
                after = "-".into();
                snapshot_seq = 0;
            }
            let (updates, last) = self.read_log(id, &after)?;
            if self.compacted_to(id)? != compacted {
                continue;
            }
            let history_bytes = self.meta_of(id)?.map_or(0, |meta| meta.history_bytes);
            return Ok(StoredDocument {
                snapshot,
                snapshot_seq,
                updates,
                history_bytes,
                // Where following the log goes on from ("0-0": the very start).
                log_position: Some(if last == "-" { "0-0".into() } else { last }),
            });
        }
        Err(err(format!(
            "session {id}'s log kept being compacted while it was read"
        )))
    }

    /// The compact history, then the log: compacting moves entries from the
    /// one to the other, so if it did meanwhile, read both again.
    fn update_log(&self, id: SessionId) -> StorageResult<Vec<LoggedUpdate>> {
        for _ in 0..CONSISTENT_READ_TRIES {
            let compacted = self.compacted_to(id)?;
            let mut log = self.read_history(id)?;
            let (updates, _) = self.read_log(id, "-")?;
            if self.compacted_to(id)? == compacted {
                log.extend(updates);
                return Ok(log);
            }
        }
        Err(err(format!(
            "session {id}'s log kept being compacted while it was read"
        )))
    }

    /// Other instances may have stored entries after `position` that `state`
    /// lacks: the snapshot says what it covers, and loading reads on from
    /// there.
    /// A stored snapshot lets the log entries it covers go to the compact
    /// history (done here, by whichever instance stored it).
    fn store_snapshot_at(&self, id: SessionId, state: &[u8], position: &str) -> StorageResult<u64> {
        let seq = self.run(|connection| {
            Script::new(SNAPSHOT_SCRIPT)
                .key(log_key(id))
                .key(snap_key(id))
                .key(meta_key(id))
                .arg(state)
                .arg(position)
                .invoke(connection)
        })?;
        if seq > 0 {
            // The snapshot is stored whatever happens here: a failed
            // compaction leaves the entries in the log for the next one.
            if let Err(e) = self.compact(id) {
                tracing::warn!(session = %id, error = %e, "compacting a session's log failed");
            }
        }
        Ok(seq)
    }

    fn store_snapshot(&self, id: SessionId, state: &[u8]) -> StorageResult<u64> {
        // The snapshot covers the log's last entry: everything queued must be
        // in the log first (or have failed: failed updates are not in the
        // room's document either, and the sync thread reports them).
        drop(self.wait_for_queued());
        let last: Vec<(String, Fields)> = self.run(|connection| {
            redis::cmd("XREVRANGE")
                .arg(log_key(id))
                .arg("+")
                .arg("-")
                .arg("COUNT")
                .arg(1)
                .query(connection)
        })?;
        let position = last.first().map_or("0-0", |(entry, _)| entry.as_str());
        self.store_snapshot_at(id, state, position)
    }
}

fn parse_number(bytes: &[u8], what: &str) -> StorageResult<u64> {
    std::str::from_utf8(bytes)
        .ok()
        .and_then(|text| text.parse().ok())
        .ok_or_else(|| err(format!("{what} is not a number")))
}

/// A session's record from its `meta` hash (none if the hash is empty).
fn decode_meta(
    id: SessionId,
    fields: Vec<(String, Vec<u8>)>,
) -> StorageResult<Option<SessionMeta>> {
    if fields.is_empty() {
        return Ok(None);
    }
    let mut meta: Option<SessionMeta> = None;
    let (mut activity, mut history) = (None, None);
    for (field, value) in fields {
        match field.as_str() {
            "json" => meta = Some(serde_json::from_slice(&value).map_err(err)?),
            "activity" => activity = Some(parse_number(&value, "activity")?),
            "history" => history = Some(parse_number(&value, "history")?),
            _ => {}
        }
    }
    let mut meta = meta.ok_or_else(|| err(format!("session {id} has no record")))?;
    if let Some(activity) = activity {
        meta.record_activity(activity);
    }
    if let Some(history) = history {
        meta.history_bytes = history;
    }
    Ok(Some(meta))
}

/// One log entry from its stream fields.
fn decode_entry(entry_id: &str, fields: Fields) -> StorageResult<LoggedUpdate> {
    let (mut seq, mut at_ms, mut author, mut update) = (None, None, 0, None);
    for (field, value) in fields {
        match field.as_str() {
            "s" => seq = Some(parse_number(&value, "entry seq")?),
            "t" => at_ms = Some(parse_number(&value, "entry time")?),
            "a" => author = parse_number(&value, "entry author")?,
            "u" => update = Some(value),
            _ => {}
        }
    }
    match (seq, at_ms, update) {
        (Some(seq), Some(at_ms), Some(update)) => Ok(LoggedUpdate {
            seq,
            at_ms,
            author,
            update,
        }),
        _ => Err(err(format!("log entry {entry_id} is incomplete"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::test_redis::TestRedis;

    fn session(storage: &RedisStorage) -> SessionId {
        let meta = SessionMeta::new(SessionId::new_random(), Language::Python, 1);
        storage.insert_session(&meta).unwrap();
        meta.id
    }

    /// Compacting as soon as a snapshot allows, so every test here runs
    /// over a log that was compacted.
    fn options() -> RedisOptions {
        RedisOptions {
            require_aof: true,
            key_ttl: None,
            compact_after: Duration::ZERO,
        }
    }

    #[test]
    fn a_sessions_keys_expire_by_themselves_a_lifetime_after_its_last_edit() {
        let Some(server) = TestRedis::start() else {
            return;
        };
        let ttl = Duration::from_millis(600);
        let storage = RedisStorage::open(
            &server.url(),
            RedisOptions {
                key_ttl: Some(ttl),
                ..options()
            },
        )
        .unwrap();
        let quiet = session(&storage);
        let busy = session(&storage);
        storage.store_snapshot(busy, b"state").unwrap();
        std::thread::sleep(ttl / 2);
        // An edit re-arms the busy session's keys, snapshot included.
        storage.append_updates(vec![record(busy, b"late")]).unwrap();
        storage.sync_updates().unwrap();
        std::thread::sleep(ttl * 3 / 4);
        assert_eq!(
            storage.session(quiet).unwrap(),
            None,
            "the quiet session outlived its lifetime"
        );
        assert!(
            storage.session(busy).unwrap().is_some(),
            "an edit did not extend the session's life"
        );
        assert_eq!(
            storage.load_document(busy).unwrap().snapshot.as_deref(),
            Some(&b"state"[..])
        );
        // Loading re-armed the keys (a session being opened is in use): they
        // go a lifetime after that, not after the edit. Half a lifetime more,
        // so the check does not race the expiry to the millisecond.
        std::thread::sleep(ttl + ttl / 2);
        assert_eq!(storage.session(busy).unwrap(), None);
        let document = storage.load_document(busy).unwrap();
        assert!(document.updates.is_empty(), "the log outlived its session");
        assert_eq!(document.snapshot, None, "the snapshot outlived its session");
    }

    fn updates_of(storage: &RedisStorage, id: SessionId) -> Vec<Vec<u8>> {
        let log = storage.update_log(id).unwrap();
        log.into_iter().map(|u| u.update).collect()
    }

    fn record(session: SessionId, update: &[u8]) -> UpdateRecord {
        UpdateRecord {
            session,
            at_ms: 5,
            author: 1,
            update: update.to_vec(),
        }
    }

    #[test]
    fn synced_updates_survive_redis_being_killed_and_restarted() {
        let Some(mut server) = TestRedis::start() else {
            return;
        };
        let storage = RedisStorage::open(&server.url(), options()).unwrap();
        let id = session(&storage);
        storage
            .append_updates(vec![record(id, b"a"), record(id, b"b")])
            .unwrap();
        storage.sync_updates().unwrap();
        drop(storage);

        server.kill_and_restart();
        let storage = RedisStorage::open(&server.url(), options()).unwrap();
        assert_eq!(updates_of(&storage, id), vec![b"a".to_vec(), b"b".to_vec()]);
    }

    #[test]
    fn with_redis_gone_a_sync_fails_and_once_it_is_back_writes_go_on() {
        let Some(mut server) = TestRedis::start() else {
            return;
        };
        let storage = RedisStorage::open(&server.url(), options()).unwrap();
        let id = session(&storage);
        storage.append_updates(vec![record(id, b"a")]).unwrap();
        storage.sync_updates().unwrap();
        server.kill();
        storage.append_updates(vec![record(id, b"b")]).unwrap();
        let synced = storage.sync_updates();
        assert!(
            synced.is_err(),
            "an update Redis never acknowledged was reported stored"
        );

        // Redis is back (its AOF kept "a"): once the pause after a failed
        // connect is over, later updates are stored again.
        server.restart();
        std::thread::sleep(RECONNECT_PAUSE);
        storage.append_updates(vec![record(id, b"c")]).unwrap();
        storage.sync_updates().unwrap();
        assert_eq!(updates_of(&storage, id), vec![b"a".to_vec(), b"c".to_vec()]);
    }

    #[test]
    fn a_snapshot_covers_up_to_its_position_and_never_replaces_a_newer_one() {
        let Some(server) = TestRedis::start() else {
            return;
        };
        let storage = RedisStorage::open(&server.url(), options()).unwrap();
        let id = session(&storage);
        storage
            .append_updates(vec![record(id, b"a"), record(id, b"b")])
            .unwrap();
        storage.sync_updates().unwrap();
        let first = storage.load_document(id).unwrap();
        let after_b = first.log_position.clone().unwrap();
        // Another instance appends "c" after this one read up to "b".
        storage.append_updates(vec![record(id, b"c")]).unwrap();
        storage.sync_updates().unwrap();
        assert_eq!(storage.store_snapshot_at(id, b"ab", &after_b).unwrap(), 2);
        let loaded = storage.load_document(id).unwrap();
        assert_eq!(loaded.snapshot.as_deref(), Some(&b"ab"[..]));
        let after: Vec<&[u8]> = loaded.updates.iter().map(|u| u.update.as_slice()).collect();
        assert_eq!(
            after,
            vec![&b"c"[..]],
            "an entry the snapshot lacks was not read after it"
        );
        // A newer snapshot wins; an older view arriving late is dropped.
        let after_c = loaded.log_position.unwrap();
        assert_eq!(storage.store_snapshot_at(id, b"abc", &after_c).unwrap(), 3);
        assert_eq!(storage.store_snapshot_at(id, b"ab", &after_b).unwrap(), 0);
        let loaded = storage.load_document(id).unwrap();
        assert_eq!(loaded.snapshot.as_deref(), Some(&b"abc"[..]));
        assert!(loaded.updates.is_empty());
    }

    #[test]
    fn a_server_without_an_append_only_file_is_refused_unless_accepted() {
        let Some(server) = TestRedis::start() else {
            return;
        };
        let client = redis::Client::open(server.url()).unwrap();
        let mut connection = client.get_connection().unwrap();
        redis::cmd("CONFIG")
            .arg("SET")
            .arg("appendonly")
            .arg("no")
            .exec(&mut connection)
            .unwrap();
        let refused = RedisStorage::open(&server.url(), options())
            .err()
            .expect("refused");
        assert!(refused.0.contains("appendonly"), "{refused}");
        assert!(RedisStorage::open(
            &server.url(),
            RedisOptions {
                require_aof: false,
                ..options()
            }
        )
        .is_ok());
    }

    /// `(stream length, history chunks)` of a session, as Redis holds them.
    fn log_and_history_lengths(server: &TestRedis, id: SessionId) -> (u64, u64) {
        let client = redis::Client::open(server.url()).unwrap();
        let mut connection = client.get_connection().unwrap();
        redis::pipe()
            .cmd("XLEN")
            .arg(log_key(id))
            .llen(hist_key(id))
            .query(&mut connection)
            .unwrap()
    }

    fn numbered_records(id: SessionId, range: std::ops::Range<u64>) -> Vec<UpdateRecord> {
        range
            .map(|n| UpdateRecord {
                session: id,
                at_ms: 1_000 + n * 7,
                author: 10 + n % 3,
                update: format!("update {n}").into_bytes(),
            })
            .collect()
    }

    #[test]
    fn entries_a_snapshot_covers_move_to_the_compact_history_and_readers_still_see_them_all() {
        let Some(server) = TestRedis::start() else {
            return;
        };
        let storage = RedisStorage::open(&server.url(), options()).unwrap();
        let id = session(&storage);
        storage.append_updates(numbered_records(id, 0..10)).unwrap();
        storage.sync_updates().unwrap();
        let before = storage.update_log(id).unwrap();
        assert_eq!(before.len(), 10);
        storage.store_snapshot(id, b"state of 10").unwrap();
        assert_eq!(
            log_and_history_lengths(&server, id),
            (0, 1),
            "covered entries stayed in the stream"
        );
        assert_eq!(
            storage.update_log(id).unwrap(),
            before,
            "playback lost or changed entries that were compacted"
        );
        storage
            .append_updates(numbered_records(id, 10..12))
            .unwrap();
        storage.sync_updates().unwrap();
        let loaded = storage.load_document(id).unwrap();
        assert_eq!(loaded.snapshot.as_deref(), Some(&b"state of 10"[..]));
        assert_eq!(loaded.snapshot_seq, 10);
        let after: Vec<u64> = loaded.updates.iter().map(|u| u.seq).collect();
        assert_eq!(after, vec![11, 12]);
        let whole: Vec<u64> = storage
            .update_log(id)
            .unwrap()
            .iter()
            .map(|u| u.seq)
            .collect();
        assert_eq!(whole, (1..=12).collect::<Vec<_>>());
        // The same position snapshotted again keeps what it covers, though
        // its entry left the stream.
        let position = loaded.log_position.unwrap();
        storage
            .store_snapshot_at(id, b"state of 12", &position)
            .unwrap();
        assert_eq!(
            storage
                .store_snapshot_at(id, b"state of 12", &position)
                .unwrap(),
            12
        );
        assert_eq!(log_and_history_lengths(&server, id), (0, 2));
        assert!(storage.delete_session(id).unwrap());
        assert_eq!(log_and_history_lengths(&server, id), (0, 0));
    }

    #[test]
    fn entries_younger_than_the_compaction_age_stay_in_the_stream() {
        let Some(server) = TestRedis::start() else {
            return;
        };
        let storage = RedisStorage::open(
            &server.url(),
            RedisOptions {
                compact_after: Duration::from_secs(3_600),
                ..options()
            },
        )
        .unwrap();
        let id = session(&storage);
        storage.append_updates(numbered_records(id, 0..5)).unwrap();
        storage.sync_updates().unwrap();
        storage.store_snapshot(id, b"state").unwrap();
        assert_eq!(log_and_history_lengths(&server, id), (5, 0));
    }

    #[test]
    fn two_instances_compacting_one_log_at_once_fold_each_entry_once() {
        let Some(server) = TestRedis::start() else {
            return;
        };
        let one = RedisStorage::open(&server.url(), options()).unwrap();
        let two = RedisStorage::open(&server.url(), options()).unwrap();
        let id = session(&one);
        // More than one chunk's worth, so each compaction takes several steps.
        let total = history::CHUNK_ENTRIES as u64 * 3 + 17;
        for start in (0..total).step_by(1_000) {
            one.append_updates(numbered_records(id, start..(start + 1_000).min(total)))
                .unwrap();
        }
        one.sync_updates().unwrap();
        std::thread::scope(|scope| {
            for storage in [&one, &two] {
                scope.spawn(move || storage.store_snapshot(id, b"everything").unwrap());
            }
        });
        let seqs: Vec<u64> = two.update_log(id).unwrap().iter().map(|u| u.seq).collect();
        assert_eq!(
            seqs,
            (1..=total).collect::<Vec<_>>(),
            "an entry was lost or folded twice"
        );
        assert_eq!(log_and_history_lengths(&server, id).0, 0);
    }
}

//! Redis storage: the [`Storage`] trait on a Redis server, the first part of
//! cluster mode (issue 14).
//!
//! Keys (a session's keys share the hash tag `{<id>}`, so Redis Cluster keeps
//! them on one node and the Lua scripts below may touch them together):
//! - `pp:{<id>}:meta`: HASH. `json` is the [`SessionMeta`] as JSON; `activity`
//!   and `history` (its last activity and stored update bytes) live in their
//!   own fields, so appends move them without parsing the JSON.
//! - `pp:{<id>}:log`: STREAM, the session's update log; each entry holds `s`
//!   (its sequence number, from 1), `t` (ms timestamp), `a` (author) and `u`
//!   (the yrs v1 update). Never trimmed while the session lives (playback).
//! - `pp:{<id>}:seq`: the last sequence number handed out.
//! - `pp:{<id>}:snap`: HASH. `doc` holds the whole document as of entry `seq`
//!   (stream id `id`).
//! - `pp:docs`: ZSET of every session and notes document by last activity
//!   (expiry reads it); `pp:notes`: SET of the notes documents among them.
//!   These two are global keys, so they are only ever written in commands of
//!   their own, never in a script with a session's keys.
//!
//! Appends are queued to a writer thread that sends each batch as a pipeline
//! of one script call per session, then one of `pp:docs` updates, and counts
//! what Redis acknowledged; [`UpdateSink::sync_updates`] waits for that
//! acknowledgement. So with Redis an update is durable once
//! `sync_updates` returns (given the server's AOF settings), not when
//! `append_updates` does: [`UpdateSink::durable_on_append`] says so, and the
//! server then relays only after the sync.

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
/// How long a command may take before the connection is given up (and made
/// again for the next one).
const COMMAND_TIMEOUT: Duration = Duration::from_secs(5);
/// Log entries read per XRANGE call.
const READ_PAGE: usize = 4_096;

/// Appends one session's records, if the session exists; numbers each entry,
/// moves the activity forward and counts the bytes. Returns 1 if appended.
/// With a key lifetime, the session's keys live that long after this edit
/// (not a record created without one: a notes document goes with its session).
/// KEYS: meta, log, seq, snap. ARGV: newest ms, total bytes, lifetime ms (0:
/// forever), then (t, a, u) triples.
const APPEND_SCRIPT: &str = r"
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
for i = 4, #ARGV, 3 do
  local s = redis.call('INCR', KEYS[3])
  redis.call('XADD', KEYS[2], '*', 's', s, 't', ARGV[i], 'a', ARGV[i + 1], 'u', ARGV[i + 2])
end
local activity = tonumber(redis.call('HGET', KEYS[1], 'activity') or '0')
if tonumber(ARGV[1]) > activity then redis.call('HSET', KEYS[1], 'activity', ARGV[1]) end
redis.call('HINCRBY', KEYS[1], 'history', ARGV[2])
if tonumber(ARGV[3]) > 0 and redis.call('PTTL', KEYS[1]) ~= -1 then
  for _, key in ipairs(KEYS) do redis.call('PEXPIRE', key, ARGV[3]) end
end
return 1
";

/// Stores a snapshot covering the log's last entry; returns that entry's number
/// (nothing, and 0, if the session's record is gone: deleted or expired).
/// The snapshot lives as long as the session's record has left.
/// KEYS: log, snap, meta. ARGV: the document.
const SNAPSHOT_SCRIPT: &str = r"
if redis.call('EXISTS', KEYS[3]) == 0 then return 0 end
local last = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', 1)
local id, seq = '0-0', 0
if #last > 0 then
  id = last[1][1]
  local fields = last[1][2]
  for i = 1, #fields, 2 do
    if fields[i] == 's' then seq = tonumber(fields[i + 1]) end
  end
end
redis.call('HSET', KEYS[2], 'seq', seq, 'id', id, 'doc', ARGV[1])
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
/// KEYS: meta, log, seq, snap. ARGV: lifetime ms.
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

/// A Redis connection made on first use and again after a failure.
struct Link {
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
    fn new(client: redis::Client) -> Self {
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
    /// is made again and `work` tried once more: the commands here are
    /// idempotent or, for appends, harmless to repeat (a yrs update applied
    /// twice changes nothing; the log then holds it twice).
    fn run<T>(
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
    /// Lifetime of a session's keys after its last edit, in ms (0: forever).
    ttl_ms: u64,
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
        let writer_shared = shared.clone();
        let writer = std::thread::Builder::new()
            .name("redis-writer".into())
            .spawn(move || write_loop(client, &writer_shared, ttl_ms))
            .map_err(err)?;
        Ok(Self {
            ttl_ms,
            link: Mutex::new(link),
            shared,
            writer: Mutex::new(Some(writer)),
        })
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

    /// Log entries of `id` after stream id `after` (exclusive; "-" for all).
    fn read_log(&self, id: SessionId, after: &str) -> StorageResult<Vec<LoggedUpdate>> {
        let key = log_key(id);
        let mut updates = Vec::new();
        let mut start = if after == "-" {
            "-".to_string()
        } else {
            format!("({after}")
        };
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
            start = format!("({last_id}");
            let full = page.len() == READ_PAGE;
            for (entry_id, fields) in page {
                updates.push(decode_entry(&entry_id, fields)?);
            }
            if !full {
                break;
            }
        }
        Ok(updates)
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

/// The key naming the one pairpad instance using this Redis.
const INSTANCE_KEY: &str = "pp:instance";
/// How long an instance's claim lasts without renewal (a killed instance's
/// successor waits at most this long).
pub const INSTANCE_CLAIM: Duration = Duration::from_secs(10);
/// How often the claim is renewed.
const INSTANCE_RENEW_EVERY: Duration = Duration::from_secs(3);

/// Renews the claim if it is still ours. KEYS: the key. ARGV: token, ms.
const RENEW_SCRIPT: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
";

/// Gives the claim up if it is still ours. KEYS: the key. ARGV: token.
const RELEASE_SCRIPT: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
";

/// This instance's claim to be the only pairpad on its Redis, renewed in the
/// background until dropped. Until instances relay edits to each other
/// (issue 14), two on one Redis would each miss the other's edits, so the
/// second one must not start.
pub struct SoleInstanceClaim {
    stop: Arc<(Mutex<bool>, Condvar)>,
    renewer: Option<JoinHandle<()>>,
}

impl RedisStorage {
    /// Claims this Redis for this instance, waiting up to `patience` for
    /// another's claim to end (an instance restarted after a crash waits for
    /// its former self's); an error names why not.
    pub fn claim_sole_instance(&self, patience: Duration) -> StorageResult<SoleInstanceClaim> {
        let token = format!("{}-{:016x}", std::process::id(), rand::random::<u64>());
        let deadline = std::time::Instant::now() + patience;
        let mut warned = false;
        let claimed = loop {
            let claimed: Option<String> =
                self.run(|connection| claim_command(&token).query(connection))?;
            if claimed.is_some() || std::time::Instant::now() >= deadline {
                break claimed;
            }
            if !warned {
                warned = true;
                tracing::warn!("redis: another instance's claim is live; waiting for it to end");
            }
            std::thread::sleep(Duration::from_millis(250));
        };
        if claimed.is_none() {
            return Err(StorageError(format!(
                "another pairpad instance uses this Redis, and instances do not relay edits \
                 to each other yet (cluster mode, issue 14): one instance per Redis. If that \
                 instance is gone, its claim ends within {} s",
                INSTANCE_CLAIM.as_secs()
            )));
        }
        let client = self
            .link
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .client
            .clone();
        let stop = Arc::new((Mutex::new(false), Condvar::new()));
        let renewer = {
            let stop = stop.clone();
            std::thread::Builder::new()
                .name("redis-instance-claim".into())
                .spawn(move || renew_claim(client, &token, &stop))
                .map_err(err)?
        };
        Ok(SoleInstanceClaim {
            stop,
            renewer: Some(renewer),
        })
    }
}

/// Takes the claim for `token` if nobody holds it (nil reply: someone does).
fn claim_command(token: &str) -> redis::Cmd {
    let mut command = redis::cmd("SET");
    command
        .arg(INSTANCE_KEY)
        .arg(token)
        .arg("NX")
        .arg("PX")
        .arg(INSTANCE_CLAIM.as_millis() as u64);
    command
}

/// Renews the claim every few seconds until told to stop, then releases it.
fn renew_claim(client: redis::Client, token: &str, stop: &(Mutex<bool>, Condvar)) {
    let mut link = Link::new(client);
    let (stopped, wake) = stop;
    let mut guard = stopped.lock().unwrap_or_else(|p| p.into_inner());
    while !*guard {
        guard = wake
            .wait_timeout(guard, INSTANCE_RENEW_EVERY)
            .unwrap_or_else(|p| p.into_inner())
            .0;
        if *guard {
            break;
        }
        let renewed = link.run(|connection| {
            Script::new(RENEW_SCRIPT)
                .key(INSTANCE_KEY)
                .arg(token)
                .arg(INSTANCE_CLAIM.as_millis() as u64)
                .invoke::<i64>(connection)
        });
        match renewed {
            Ok(1) => {}
            Ok(_) => {
                // It lapsed (Redis away for longer than the claim): take it
                // back if nobody else has; if another instance has, two would
                // serve one Redis without seeing each other's edits, so stop.
                let taken =
                    link.run(|connection| claim_command(token).query::<Option<String>>(connection));
                match taken {
                    Ok(Some(_)) => {
                        tracing::warn!("redis: this instance's claim lapsed and was taken back")
                    }
                    Ok(None) => {
                        tracing::error!(
                            "redis: another pairpad instance now uses this Redis; stopping, since \
                             instances do not relay edits to each other yet"
                        );
                        // Everything acknowledged is in Redis: nothing is lost.
                        std::process::exit(1);
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "redis: the instance claim could not be taken back")
                    }
                }
            }
            Err(e) => tracing::warn!(error = %e, "redis: the instance claim could not be renewed"),
        }
    }
    drop(guard);
    let _ = link.run(|connection| {
        Script::new(RELEASE_SCRIPT)
            .key(INSTANCE_KEY)
            .arg(token)
            .invoke::<i64>(connection)
    });
}

impl Drop for SoleInstanceClaim {
    fn drop(&mut self) {
        let (stopped, wake) = &*self.stop;
        *stopped.lock().unwrap_or_else(|p| p.into_inner()) = true;
        wake.notify_all();
        if let Some(renewer) = self.renewer.take() {
            let _ = renewer.join();
        }
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

/// The writer thread: sends queued batches in order, one round trip each.
fn write_loop(client: redis::Client, shared: &Shared, ttl_ms: u64) {
    let mut link = Link::new(client);
    let script = Script::new(APPEND_SCRIPT);
    loop {
        let (number, batch) = {
            let mut queue = shared.lock();
            loop {
                if let Some(next) = queue.pending.pop_front() {
                    break next;
                }
                if queue.stopping {
                    return;
                }
                queue = shared.work.wait(queue).unwrap_or_else(|p| p.into_inner());
            }
        };
        let result = write_batch(&mut link, &script, &batch, ttl_ms);
        let mut queue = shared.lock();
        queue.done = number;
        if let Err(e) = result {
            tracing::error!(error = %e, "redis: updates could not be stored");
            queue.unreported_failures.push((number, e));
        }
        drop(queue);
        shared.acked.notify_all();
    }
}

/// Appends a batch: one script call per session, pipelined, then each
/// appended session's place in `pp:docs` (a global key: its own command).
fn write_batch(
    link: &mut Link,
    script: &Script,
    batch: &[UpdateRecord],
    ttl_ms: u64,
) -> StorageResult<()> {
    let mut by_session: Vec<&UpdateRecord> = batch.iter().collect();
    by_session.sort_by_key(|record| record.session);
    let groups: Vec<&[&UpdateRecord]> =
        by_session.chunk_by(|a, b| a.session == b.session).collect();
    let mut appends = redis::pipe();
    let mut newest_by_group = Vec::with_capacity(groups.len());
    for records in &groups {
        let session = records[0].session;
        let newest = records.iter().map(|r| r.at_ms).max().unwrap_or(0);
        newest_by_group.push(newest);
        let bytes: u64 = records.iter().map(|r| r.update.len() as u64).sum();
        let call = appends
            .cmd("EVALSHA")
            .arg(script.get_hash())
            .arg(4)
            .arg(meta_key(session))
            .arg(log_key(session))
            .arg(seq_key(session))
            .arg(snap_key(session))
            .arg(newest)
            .arg(bytes)
            .arg(ttl_ms);
        for record in records.iter() {
            call.arg(record.at_ms)
                .arg(record.author)
                .arg(record.update.as_slice());
        }
    }
    // EVALSHA: the script is sent only when the server does not know it
    // (NOSCRIPT: the first time, and after a Redis restart).
    let appended: Vec<i64> = link.run(|connection| match appends.query(connection) {
        Err(e) if e.kind() == redis::ErrorKind::Server(redis::ServerErrorKind::NoScript) => {
            script.load(connection)?;
            appends.query(connection)
        }
        other => other,
    })?;
    // Then each appended session's place in `pp:docs`: a global key, so a
    // command of its own, and only for sessions that exist (no member is
    // re-added for a session deleted meanwhile).
    let mut places = redis::pipe();
    let mut missing = None;
    for ((records, newest), appended) in groups.iter().zip(&newest_by_group).zip(&appended) {
        let session = records[0].session;
        if *appended == 0 {
            missing.get_or_insert(session);
            continue;
        }
        places
            .cmd("ZADD")
            .arg(DOCS_KEY)
            .arg("GT")
            .arg(*newest)
            .arg(session.to_string())
            .ignore();
    }
    if !places.is_empty() {
        link.run(|connection| places.exec(connection))?;
    }
    match missing {
        // Deleted, or expired by its key lifetime while a room still had it
        // open: say so rather than drop the edits as if stored.
        Some(session) => Err(err(format!(
            "session {session} has no record any more (deleted or expired); its updates were not stored"
        ))),
        None => Ok(()),
    }
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
        let deleted: i64 = self.run(|connection| {
            connection.del(&[meta_key(id), log_key(id), seq_key(id), snap_key(id)])
        })?;
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
                    .key(meta_key(id))
                    .key(log_key(id))
                    .key(seq_key(id))
                    .key(snap_key(id))
                    .arg(self.ttl_ms)
                    .invoke::<i64>(connection)
            })?;
        }
        let fields: Fields = self.run(|connection| connection.hgetall(snap_key(id)))?;
        let mut snapshot = None;
        let mut snapshot_seq = 0;
        let mut after = "-".to_string();
        for (field, value) in fields {
            match field.as_str() {
                "doc" => snapshot = Some(value),
                "seq" => snapshot_seq = parse_number(&value, "snapshot seq")?,
                "id" => after = String::from_utf8(value).map_err(err)?,
                _ => {}
            }
        }
        if snapshot.is_none() {
            after = "-".into();
            snapshot_seq = 0;
        }
        let updates = self.read_log(id, &after)?;
        let history_bytes = self.meta_of(id)?.map_or(0, |meta| meta.history_bytes);
        Ok(StoredDocument {
            snapshot,
            snapshot_seq,
            updates,
            history_bytes,
        })
    }

    fn update_log(&self, id: SessionId) -> StorageResult<Vec<LoggedUpdate>> {
        self.read_log(id, "-")
    }

    fn store_snapshot(&self, id: SessionId, state: &[u8]) -> StorageResult<u64> {
        // The snapshot covers the log's last entry: everything queued must be
        // in the log first (or have failed: failed updates are not in the
        // room's document either, and the sync thread reports them).
        drop(self.wait_for_queued());
        self.run(|connection| {
            Script::new(SNAPSHOT_SCRIPT)
                .key(log_key(id))
                .key(snap_key(id))
                .key(meta_key(id))
                .arg(state)
                .invoke(connection)
        })
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

    fn options() -> RedisOptions {
        RedisOptions {
            require_aof: true,
            key_ttl: None,
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
        std::thread::sleep(ttl);
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
    fn a_second_instance_is_refused_until_the_first_lets_go() {
        let Some(server) = TestRedis::start() else {
            return;
        };
        let first = RedisStorage::open(&server.url(), options()).unwrap();
        let second = RedisStorage::open(&server.url(), options()).unwrap();
        let claim = first.claim_sole_instance(Duration::ZERO).unwrap();
        let refused = second
            .claim_sole_instance(Duration::from_millis(600))
            .err()
            .expect("refused");
        assert!(refused.0.contains("one instance per Redis"), "{refused}");
        drop(claim);
        assert!(
            second.claim_sole_instance(Duration::ZERO).is_ok(),
            "a released claim can be taken"
        );
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
}

//! How many connections each instance has to each session, kept in Redis so
//! that any instance can count everyone (REST's `users`, and expiry sparing a
//! session someone is connected to anywhere).
//!
//! - `pp:{<id>}:users`: HASH, instance number -> its connections to session
//!   `id` (no field when none), living a day after its last change (a
//!   backstop: see the next point).
//! - `pp:alive`: ZSET, instance number -> when it last said it is alive (by
//!   Redis's clock, so instances' clocks may disagree). An instance says so
//!   every [`HEARTBEAT`]; one not heard from for [`ALIVE_FOR`] (killed) no
//!   longer counts, whatever its fields say.
//!
//! Counts are written by one thread from what rooms last reported; a write
//! that fails is tried again with the next heartbeat, so Redis ends up with
//! this instance's current counts after any outage.

use crate::{
    domain::SessionId,
    storage::{redis::Link, StorageError, StorageResult},
};
use redis::Script;
use std::{
    collections::{HashMap, HashSet},
    sync::{Arc, Condvar, Mutex, MutexGuard},
    time::Duration,
};

/// How often an instance says it is alive (and retries failed writes).
const HEARTBEAT: Duration = Duration::from_secs(3);
/// An instance not heard from for this long is taken for dead.
pub const ALIVE_FOR: Duration = Duration::from_secs(10);
const ALIVE_KEY: &str = "pp:alive";
/// How long a session's counts outlive their last change.
const USERS_TTL_MS: u64 = 24 * 3600 * 1000;
/// Heartbeats older than this are dropped from `pp:alive`.
const FORGET_AFTER_MS: u64 = 3600 * 1000;

/// Says an instance is alive now (Redis's clock), and forgets instances
/// silent for long. KEYS: pp:alive. ARGV: instance, forget after (ms).
const HEARTBEAT_SCRIPT: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZADD', KEYS[1], now, ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - tonumber(ARGV[2]))
return now
";

/// The instances heard from within ARGV[1] ms (Redis's clock). KEYS: pp:alive.
const ALIVE_SCRIPT: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
return redis.call('ZRANGE', KEYS[1], now - tonumber(ARGV[1]), '+inf', 'BYSCORE')
";

fn users_key(id: SessionId) -> String {
    format!("pp:{{{id}}}:users")
}

#[derive(Default)]
struct Pending {
    /// The latest count of every session with connections here.
    counts: HashMap<SessionId, usize>,
    /// Sessions whose count Redis may not have yet.
    dirty: HashSet<SessionId>,
}

pub struct Counts {
    instance: u64,
    pending: Mutex<Pending>,
    changed: Condvar,
    /// For reading the others' counts (REST requests, expiry).
    queries: Mutex<Link>,
}

impl Counts {
    /// Starts the thread that writes this instance's counts and heartbeat.
    pub fn start(client: redis::Client, instance: u64) -> Result<Arc<Self>, StorageError> {
        let counts = Arc::new(Self {
            instance,
            pending: Mutex::new(Pending::default()),
            changed: Condvar::new(),
            queries: Mutex::new(Link::new(client.clone())),
        });
        let writer = counts.clone();
        std::thread::Builder::new()
            .name("redis-counts".into())
            .spawn(move || writer.write_loop(client))
            .map_err(|e| StorageError(format!("redis: {e}")))?;
        Ok(counts)
    }

    fn lock(&self) -> MutexGuard<'_, Pending> {
        self.pending.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// This instance now has `count` connections to session `id`.
    pub fn set(&self, id: SessionId, count: usize) {
        let mut pending = self.lock();
        if count == 0 {
            pending.counts.remove(&id);
        } else {
            pending.counts.insert(id, count);
        }
        pending.dirty.insert(id);
        drop(pending);
        self.changed.notify_one();
    }

    /// Connections the other live instances have to session `id`. Blocking.
    pub fn elsewhere(&self, id: SessionId) -> StorageResult<usize> {
        let mut link = self.queries.lock().unwrap_or_else(|p| p.into_inner());
        let counts: Vec<(u64, usize)> =
            link.run(|connection| redis::cmd("HGETALL").arg(users_key(id)).query(connection))?;
        let others: Vec<(u64, usize)> = counts
            .into_iter()
            .filter(|(instance, count)| *instance != self.instance && *count > 0)
            .collect();
        if others.is_empty() {
            return Ok(0);
        }
        let alive: Vec<u64> = link.run(|connection| {
            Script::new(ALIVE_SCRIPT)
                .key(ALIVE_KEY)
                .arg(ALIVE_FOR.as_millis() as u64)
                .invoke(connection)
        })?;
        Ok(others
            .iter()
            .filter(|(instance, _)| alive.contains(instance))
            .map(|(_, count)| count)
            .sum())
    }

    /// Writes changed counts as they come, and the heartbeat (with whatever
    /// failed before) every [`HEARTBEAT`].
    fn write_loop(&self, client: redis::Client) {
        let mut link = Link::new(client);
        let mut next_heartbeat = std::time::Instant::now();
        // Logged once per outage.
        let mut failing = false;
        loop {
            let (dirty, counts) = {
                let mut pending = self.lock();
                while pending.dirty.is_empty() && std::time::Instant::now() < next_heartbeat {
                    let wait = next_heartbeat.saturating_duration_since(std::time::Instant::now());
                    pending = self
                        .changed
                        .wait_timeout(pending, wait)
                        .unwrap_or_else(|p| p.into_inner())
                        .0;
                }
                let dirty: Vec<SessionId> = pending.dirty.drain().collect();
                let counts: Vec<usize> = dirty
                    .iter()
                    .map(|id| pending.counts.get(id).copied().unwrap_or(0))
                    .collect();
                (dirty, counts)
            };
            let mut pipe = redis::pipe();
            let heartbeat = std::time::Instant::now() >= next_heartbeat;
            if heartbeat {
                pipe.cmd("EVAL")
                    .arg(HEARTBEAT_SCRIPT)
                    .arg(1)
                    .arg(ALIVE_KEY)
                    .arg(self.instance)
                    .arg(FORGET_AFTER_MS)
                    .ignore();
            }
            for (id, count) in dirty.iter().zip(&counts) {
                let key = users_key(*id);
                if *count == 0 {
                    pipe.cmd("HDEL").arg(&key).arg(self.instance).ignore();
                } else {
                    pipe.cmd("HSET")
                        .arg(&key)
                        .arg(self.instance)
                        .arg(count)
                        .ignore();
                    pipe.cmd("PEXPIRE").arg(&key).arg(USERS_TTL_MS).ignore();
                }
            }
            match link.run(|connection| pipe.exec(connection)) {
                Ok(()) => {
                    failing = false;
                    if heartbeat {
                        next_heartbeat = std::time::Instant::now() + HEARTBEAT;
                    }
                }
                Err(e) => {
                    if !std::mem::replace(&mut failing, true) {
                        tracing::warn!(error = %e, "redis: connection counts not stored; trying again");
                    }
                    // Tried again with the next heartbeat, with whatever
                    // changed meanwhile.
                    self.lock().dirty.extend(dirty);
                    next_heartbeat = std::time::Instant::now() + HEARTBEAT;
                    std::thread::sleep(HEARTBEAT.min(Duration::from_secs(1)));
                }
            }
        }
    }
}

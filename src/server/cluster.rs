//! Cluster mode: any number of pairpad instances on one Redis serve the same
//! sessions. This module is how an instance hears the others (the `Peers`
//! rooms use), all through Redis:
//!
//! - edits: each instance follows the logs of the sessions it has open
//!   (`storage::redis::tail`), so an edit reaches the others only after Redis
//!   acknowledged it (durable before relay, on every instance);
//! - presence: rooms publish their connections' presence frames on the
//!   `pp:presence` channel and take the others' (lossy, like presence itself:
//!   clients renew their state every 15 s, and a state nobody renews goes);
//! - session record changes (ended, reopened, deleted) on `pp:changes`; a
//!   room that misses one still acts on the ended flag when the peer's edit
//!   writing it arrives (see `RoomState::logged`);
//! - how many connections each instance has to a session, in the HASH
//!   `pp:{<id>}:users` (field: instance number), counted only for instances
//!   alive by `pp:alive` (ZSET of instance numbers by last heartbeat): REST's
//!   `users` and expiry see people on every instance, and the counts of an
//!   instance that died stop counting within [`ALIVE_FOR`].
//!
//! Every instance hears every session's presence and changes (one channel
//! each, filtered by the sessions it has open): fine for a handful of
//! instances; many would want a channel per session (sharded pub/sub).

use super::rooms::{hub::Hub, LoggedEntry, Peers, RecordChange, RoomCommand};
use crate::{
    domain::SessionId,
    storage::{
        redis::{
            tail::{LogTail, TailEntry},
            RedisStorage,
        },
        StorageError,
    },
};
use bytes::Bytes;
use std::{
    sync::{
        atomic::{AtomicBool, Ordering},
        mpsc, Arc,
    },
    time::Duration,
};
use tokio::sync::mpsc as async_mpsc;

const PRESENCE_CHANNEL: &str = "pp:presence";
const CHANGES_CHANNEL: &str = "pp:changes";
/// Messages waiting to be published before presence is dropped (record
/// changes wait instead).
const OUTBOX_CAPACITY: usize = 4096;
/// What the dispatcher may have queued from Redis before readers wait.
const INBOX_CAPACITY: usize = 1024;
/// How long the subscriber waits for a message before checking for shutdown.
const LISTEN_TIMEOUT: Duration = Duration::from_millis(500);
/// Pause before connecting again after Redis went away.
const RETRY_PAUSE: Duration = Duration::from_millis(500);
/// How often an instance says it is alive.
const HEARTBEAT: Duration = Duration::from_secs(3);
/// An instance not heard from for this long is taken for dead (its
/// connection counts no longer count).
pub const ALIVE_FOR: Duration = Duration::from_secs(10);
const ALIVE_KEY: &str = "pp:alive";
/// How long a session's connection counts outlive their last change (a
/// backstop: dead instances' counts are ignored by heartbeat anyway).
const USERS_TTL_MS: u64 = 24 * 3600 * 1000;

fn users_key(id: SessionId) -> String {
    format!("pp:{{{id}}}:users")
}

/// Header of every published message: the instance (8 bytes), the session
/// (16 bytes).
const HEADER_LEN: usize = 24;

/// What the other instances did, on its way to this instance's rooms.
#[derive(Debug)]
pub enum Heard {
    Logged(SessionId, Vec<LoggedEntry>),
    Presence(SessionId, Bytes),
    Change(SessionId, RecordChange),
}

enum Outgoing {
    Publish {
        channel: &'static str,
        payload: Vec<u8>,
    },
    /// This instance's connections to a session.
    Connections { id: SessionId, count: usize },
}

/// This instance's side of the cluster.
pub struct Cluster {
    instance: u64,
    tail: LogTail,
    outbox: mpsc::SyncSender<Outgoing>,
    stopping: Arc<AtomicBool>,
    /// For reading other instances' connection counts.
    client: redis::Client,
    queries: std::sync::Mutex<Option<redis::Connection>>,
}

impl Cluster {
    /// Starts following, publishing and listening on `storage`'s Redis;
    /// what is heard comes out of the returned receiver (see [`dispatch`]).
    pub fn start(
        storage: &RedisStorage,
    ) -> Result<(Arc<Self>, async_mpsc::Receiver<Heard>), StorageError> {
        let instance = storage.instance();
        let client = storage.client();
        let (inbox, heard) = async_mpsc::channel(INBOX_CAPACITY);
        let logged = inbox.clone();
        let tail = LogTail::start(client.clone(), move |id, entries: Vec<TailEntry>| {
            let entries = entries
                .into_iter()
                .map(|entry| LoggedEntry {
                    position: entry.position,
                    from_peer: entry.origin != instance,
                    update: entry.update,
                })
                .collect();
            // Waits while rooms are busy: the log is read on when they are.
            let _ = logged.blocking_send(Heard::Logged(id, entries));
        })?;
        let stopping = Arc::new(AtomicBool::new(false));
        let (outbox, outgoing) = mpsc::sync_channel(OUTBOX_CAPACITY);
        spawn("redis-publish", {
            let client = client.clone();
            move || publish_loop(client, instance, outgoing)
        })?;
        spawn("redis-listen", {
            let stopping = stopping.clone();
            let client = client.clone();
            move || listen_loop(client, instance, inbox, &stopping)
        })?;
        let cluster = Arc::new(Self {
            instance,
            tail,
            outbox,
            stopping,
            client,
            queries: std::sync::Mutex::new(None),
        });
        Ok((cluster, heard))
    }

    fn publish(&self, channel: &'static str, id: SessionId, body: &[u8]) -> bool {
        let mut payload = Vec::with_capacity(HEADER_LEN + body.len());
        payload.extend_from_slice(&self.instance.to_be_bytes());
        payload.extend_from_slice(&id.as_u128().to_be_bytes());
        payload.extend_from_slice(body);
        self.outbox
            .try_send(Outgoing::Publish { channel, payload })
            .is_ok()
    }

    /// Connections other live instances have to session `id` (None: Redis
    /// could not be asked).
    fn count_elsewhere(&self, id: SessionId) -> redis::RedisResult<usize> {
        let mut held = self.queries.lock().unwrap_or_else(|p| p.into_inner());
        if held.is_none() {
            let made = self
                .client
                .get_connection_with_timeout(Duration::from_secs(2))?;
            made.set_read_timeout(Some(Duration::from_secs(2)))?;
            *held = Some(made);
        }
        let connection = held.as_mut().expect("just made");
        let counted = (|| {
            let counts: Vec<(u64, usize)> =
                redis::cmd("HGETALL").arg(users_key(id)).query(connection)?;
            let others: Vec<(u64, usize)> = counts
                .into_iter()
                .filter(|(instance, count)| *instance != self.instance && *count > 0)
                .collect();
            if others.is_empty() {
                return Ok(0);
            }
            let mut heard = redis::cmd("ZMSCORE");
            heard.arg(ALIVE_KEY);
            for (instance, _) in &others {
                heard.arg(instance);
            }
            let heard: Vec<Option<f64>> = heard.query(connection)?;
            let alive_since =
                crate::domain::time::now_ms().saturating_sub(ALIVE_FOR.as_millis() as u64);
            Ok(others
                .iter()
                .zip(heard)
                .filter(|(_, at)| at.is_some_and(|at| at >= alive_since as f64))
                .map(|((_, count), _)| count)
                .sum())
        })();
        if counted.is_err() {
            *held = None;
        }
        counted
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.stopping.store(true, Ordering::Relaxed);
    }
}

impl Peers for Cluster {
    fn follow(&self, id: SessionId, position: &str) -> u64 {
        self.tail.follow(id, position)
    }

    fn unfollow(&self, id: SessionId, ticket: u64) {
        self.tail.unfollow(id, ticket);
    }

    fn publish_presence(&self, id: SessionId, frame: &[u8]) {
        // Dropped when Redis cannot keep up: clients renew their presence.
        self.publish(PRESENCE_CHANNEL, id, frame);
    }

    fn publish_connections(&self, id: SessionId, count: usize) {
        if self
            .outbox
            .try_send(Outgoing::Connections { id, count })
            .is_err()
        {
            tracing::warn!(session = %id, "redis: a connection count could not be stored");
        }
    }

    fn connections_elsewhere(&self, id: SessionId) -> usize {
        self.count_elsewhere(id).unwrap_or_else(|e| {
            tracing::warn!(session = %id, error = %e, "redis: other instances' connections unknown");
            0
        })
    }

    fn publish_change(&self, id: SessionId, change: RecordChange) {
        let kind = match change {
            RecordChange::Ended => b'e',
            RecordChange::Reopened => b'r',
            RecordChange::Deleted => b'd',
        };
        if !self.publish(CHANGES_CHANNEL, id, &[kind]) {
            tracing::warn!(session = %id, ?change, "redis: a record change could not be told to other instances");
        }
    }
}

fn spawn(name: &str, work: impl FnOnce() + Send + 'static) -> Result<(), StorageError> {
    std::thread::Builder::new()
        .name(name.into())
        .spawn(work)
        .map(|_| ())
        .map_err(|e| StorageError(format!("redis: {e}")))
}

/// Publishes what rooms hand over, a pipeline of whatever is waiting at
/// once, and says every [`HEARTBEAT`] that this instance is alive.
fn publish_loop(client: redis::Client, instance: u64, outgoing: mpsc::Receiver<Outgoing>) {
    let mut connection: Option<redis::Connection> = None;
    // Logged once per outage, not for every message dropped meanwhile.
    let mut failing = false;
    let mut next_heartbeat = std::time::Instant::now();
    loop {
        let first = match outgoing
            .recv_timeout(next_heartbeat.saturating_duration_since(std::time::Instant::now()))
        {
            Ok(first) => Some(first),
            Err(mpsc::RecvTimeoutError::Timeout) => None,
            Err(mpsc::RecvTimeoutError::Disconnected) => return,
        };
        let mut pipe = redis::pipe();
        if std::time::Instant::now() >= next_heartbeat {
            next_heartbeat = std::time::Instant::now() + HEARTBEAT;
            pipe.cmd("ZADD")
                .arg(ALIVE_KEY)
                .arg(crate::domain::time::now_ms())
                .arg(instance)
                .ignore();
        }
        for message in first.into_iter().chain(outgoing.try_iter().take(255)) {
            match message {
                Outgoing::Publish { channel, payload } => {
                    pipe.cmd("PUBLISH").arg(channel).arg(payload).ignore();
                }
                Outgoing::Connections { id, count: 0 } => {
                    pipe.cmd("HDEL").arg(users_key(id)).arg(instance).ignore();
                }
                Outgoing::Connections { id, count } => {
                    let key = users_key(id);
                    pipe.cmd("HSET").arg(&key).arg(instance).arg(count).ignore();
                    pipe.cmd("PEXPIRE").arg(&key).arg(USERS_TTL_MS).ignore();
                }
            }
        }
        if connection.is_none() {
            match client.get_connection_with_timeout(Duration::from_secs(2)) {
                Ok(made) => connection = Some(made),
                Err(e) => {
                    if !std::mem::replace(&mut failing, true) {
                        tracing::warn!(error = %e, "redis: cannot publish to other instances");
                    }
                    std::thread::sleep(RETRY_PAUSE);
                    continue;
                }
            }
        }
        if let Some(live) = connection.as_mut() {
            match pipe.exec(live) {
                Ok(()) => failing = false,
                Err(e) => {
                    if !std::mem::replace(&mut failing, true) {
                        tracing::warn!(error = %e, "redis: publishing to other instances failed");
                    }
                    connection = None;
                }
            }
        }
    }
}

/// Listens to the other instances until the cluster is dropped.
fn listen_loop(
    client: redis::Client,
    instance: u64,
    inbox: async_mpsc::Sender<Heard>,
    stopping: &AtomicBool,
) {
    let mut failing = false;
    while !stopping.load(Ordering::Relaxed) {
        if let Err(e) = listen(&client, instance, &inbox, stopping, &mut failing) {
            if !std::mem::replace(&mut failing, true) {
                tracing::warn!(error = %e, "redis: listening to other instances failed; trying again");
            }
            std::thread::sleep(RETRY_PAUSE);
        }
    }
}

fn listen(
    client: &redis::Client,
    instance: u64,
    inbox: &async_mpsc::Sender<Heard>,
    stopping: &AtomicBool,
    failing: &mut bool,
) -> redis::RedisResult<()> {
    let mut connection = client.get_connection_with_timeout(Duration::from_secs(2))?;
    let mut pubsub = connection.as_pubsub();
    pubsub.subscribe(&[PRESENCE_CHANNEL, CHANGES_CHANNEL])?;
    pubsub.set_read_timeout(Some(LISTEN_TIMEOUT))?;
    if std::mem::take(failing) {
        tracing::info!("redis: listening to other instances again");
    }
    while !stopping.load(Ordering::Relaxed) {
        let message = match pubsub.get_message() {
            Ok(message) => message,
            Err(e) if e.is_timeout() => continue,
            Err(e) => return Err(e),
        };
        let Some(heard) = decode(
            message.get_channel_name(),
            message.get_payload_bytes(),
            instance,
        ) else {
            continue;
        };
        match heard {
            // Lossy: a room too busy to take it misses one presence frame.
            Heard::Presence(..) => {
                let _ = inbox.try_send(heard);
            }
            _ => {
                let _ = inbox.blocking_send(heard);
            }
        }
    }
    Ok(())
}

/// A published message, unless it is this instance's own or malformed.
fn decode(channel: &str, payload: &[u8], instance: u64) -> Option<Heard> {
    if payload.len() < HEADER_LEN {
        return None;
    }
    let (origin, rest) = payload.split_at(8);
    let (session, body) = rest.split_at(16);
    if u64::from_be_bytes(origin.try_into().ok()?) == instance {
        return None;
    }
    let id = SessionId::from_u128(u128::from_be_bytes(session.try_into().ok()?))?;
    match channel {
        PRESENCE_CHANNEL => Some(Heard::Presence(id, Bytes::copy_from_slice(body))),
        CHANGES_CHANNEL => {
            let change = match body {
                [b'e'] => RecordChange::Ended,
                [b'r'] => RecordChange::Reopened,
                [b'd'] => RecordChange::Deleted,
                _ => return None,
            };
            Some(Heard::Change(id, change))
        }
        _ => None,
    }
}

/// Hands what the other instances did to this instance's rooms (only those
/// loaded here: the others read it all from Redis when they load).
pub async fn dispatch(mut heard: async_mpsc::Receiver<Heard>, hub: Arc<Hub>) {
    while let Some(heard) = heard.recv().await {
        match heard {
            Heard::Logged(id, entries) => hub.tell_loaded(id, RoomCommand::Logged(entries)).await,
            Heard::Presence(id, frame) => hub.try_tell_loaded(id, RoomCommand::PeerPresence(frame)),
            Heard::Change(id, change) => {
                let command = match change {
                    RecordChange::Ended => RoomCommand::SetEnded(true),
                    RecordChange::Reopened => RoomCommand::SetEnded(false),
                    RecordChange::Deleted => RoomCommand::Delete,
                };
                hub.tell_loaded(id, command).await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_published_message_reads_back_on_other_instances_only() {
        let id = SessionId::new_random();
        let mut payload = 7u64.to_be_bytes().to_vec();
        payload.extend_from_slice(&id.as_u128().to_be_bytes());
        payload.push(b'd');
        assert!(matches!(
            decode(CHANGES_CHANNEL, &payload, 9),
            Some(Heard::Change(heard, RecordChange::Deleted)) if heard == id
        ));
        assert!(decode(CHANGES_CHANNEL, &payload, 7).is_none(), "own echo");
        assert!(decode(CHANGES_CHANNEL, &payload[..10], 9).is_none());
    }
}

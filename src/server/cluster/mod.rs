//! Cluster mode: any number of pairpad instances on one Redis serve the same
//! sessions. This module is how an instance hears the others, all through
//! Redis, and the [`Peers`] rooms and the session service use:
//!
//! - edits: each instance follows the logs of the sessions it has open
//!   (`storage::redis::tail`), so an edit reaches the others only after Redis
//!   acknowledged it (durable before relay, on every instance). A room too
//!   busy to take new entries gets them later, in order; the others go on.
//! - presence and record changes (ended, reopened, deleted): [`bus`]. A room
//!   that misses a change still acts on the ended flag when the peer's edit
//!   writing it arrives (see `RoomState::logged`).
//! - how many people are connected where: [`counts`].
//!
//! Nothing here blocks a room: what is heard is offered to the room's queue
//! ([`Hub::offer`]); only record changes, which are rare, wait for a full
//! queue (on a task of their own).

pub mod bus;
pub mod counts;

use super::rooms::{hub::Hub, LoggedEntry, Peers, RecordChange, RoomCommand};
use crate::{
    domain::SessionId,
    storage::{
        redis::{
            tail::{LogTail, TailEntry},
            RedisStorage,
        },
        StorageError, StorageResult,
    },
};
use bus::{Heard, Publisher};
use counts::Counts;
use std::sync::{atomic::AtomicBool, Arc, OnceLock, Weak};

/// This instance's side of the cluster.
pub struct Cluster {
    tail: LogTail,
    publisher: Publisher,
    counts: Arc<Counts>,
    /// Where what is heard goes: set once the hub exists ([`Cluster::attach`]).
    hub: Arc<OnceLock<Weak<Hub>>>,
}

impl Cluster {
    /// Starts following, publishing and listening on `storage`'s Redis. What
    /// is heard before [`Cluster::attach`] goes nowhere (no room is loaded).
    pub fn start(storage: &RedisStorage) -> Result<Arc<Self>, StorageError> {
        let instance = storage.instance();
        let client = storage.client();
        let hub: Arc<OnceLock<Weak<Hub>>> = Arc::new(OnceLock::new());
        let tail = LogTail::start(client.clone(), storage.compact_after(), {
            let hub = hub.clone();
            move |id, entries: Vec<TailEntry>| {
                let Some(hub) = hub.get().and_then(Weak::upgrade) else {
                    return true;
                };
                let entries = entries
                    .into_iter()
                    .map(|entry| LoggedEntry {
                        position: entry.position,
                        from_peer: entry.origin != instance,
                        update: entry.update,
                    })
                    .collect();
                // Not taken while the room's queue is full: read again later.
                hub.offer(id, RoomCommand::Logged(entries)).is_ok()
            }
        })?;
        let runtime = tokio::runtime::Handle::current();
        std::thread::Builder::new()
            .name("redis-listen".into())
            .spawn({
                let client = client.clone();
                let hub = hub.clone();
                // Runs as long as the process: instances never stop listening.
                let stopping = AtomicBool::new(false);
                move || {
                    bus::listen_loop(
                        client,
                        instance,
                        |heard| deliver(&hub, &runtime, heard),
                        &stopping,
                    )
                }
            })
            .map_err(|e| StorageError(format!("redis: {e}")))?;
        Ok(Arc::new(Self {
            tail,
            publisher: Publisher::start(client.clone(), instance)?,
            counts: Counts::start(client, instance)?,
            hub,
        }))
    }

    /// Hands what is heard to `hub`'s rooms from now on.
    pub fn attach(&self, hub: &Arc<Hub>) {
        let _ = self.hub.set(Arc::downgrade(hub));
    }
}

/// Hands a message from another instance to the session's room, if loaded
/// here. Presence is dropped when the room is busy (clients renew it); a
/// record change waits for room in the queue, on a task of its own.
fn deliver(hub: &OnceLock<Weak<Hub>>, runtime: &tokio::runtime::Handle, heard: Heard) {
    let Some(hub) = hub.get().and_then(Weak::upgrade) else {
        return;
    };
    match heard {
        Heard::Presence(id, frame) => {
            let _ = hub.offer(id, RoomCommand::PeerPresence(frame));
        }
        Heard::Change(id, change) => {
            if let Err(command) = hub.offer(id, change.command()) {
                runtime.spawn(async move { hub.tell_loaded(id, command).await });
            }
        }
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
        self.publisher.presence(id, frame);
    }

    fn publish_change(&self, id: SessionId, change: RecordChange) -> StorageResult<()> {
        self.publisher.change(id, change)
    }

    fn publish_connections(&self, id: SessionId, count: usize) {
        self.counts.set(id, count);
    }

    fn connections_elsewhere(&self, id: SessionId) -> StorageResult<usize> {
        self.counts.elsewhere(id)
    }
}

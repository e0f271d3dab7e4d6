//! The hub: which sessions are loaded (one room task each), joining them, counting
//! connections per session and per client IP, and shutting every room down.

use super::{
    task, ConnId, JoinRefused, Outbound, Role, RoomCommand, RoomContext, RoomHandle, RoomRegistry,
    RoomStats,
};
use crate::domain::{Language, Limits, SessionId, SessionMeta};
use crate::server::{
    blocking::blocking,
    metrics::Metrics,
    queue::{QueueReceiver, TrySendError},
};
use std::{
    collections::HashMap,
    net::IpAddr,
    sync::{
        atomic::{AtomicBool, AtomicU64, Ordering},
        Arc, Mutex,
    },
};
use tokio::sync::oneshot;

pub struct Hub {
    rooms: Mutex<HashMap<SessionId, RoomHandle>>,
    per_ip: Mutex<HashMap<IpAddr, usize>>,
    next_conn: AtomicU64,
    /// WebSocket tasks still running (including ones closing their socket).
    live_tasks: std::sync::atomic::AtomicUsize,
    shutting_down: AtomicBool,
    cx: RoomContext,
}

/// A connection's claim on one of its IP's slots; released on drop.
pub struct IpSlot {
    hub: Arc<Hub>,
    ip: IpAddr,
}

impl IpSlot {
    /// The address (limit key) the slot counts against.
    pub fn ip(&self) -> IpAddr {
        self.ip
    }
}

impl Drop for IpSlot {
    fn drop(&mut self) {
        let mut per_ip = lock(&self.hub.per_ip);
        if let Some(count) = per_ip.get_mut(&self.ip) {
            *count -= 1;
            if *count == 0 {
                per_ip.remove(&self.ip);
            }
        }
    }
}

/// Marks a running WebSocket task; see [`Hub::track_task`].
pub struct TaskGuard {
    hub: Arc<Hub>,
}

impl Drop for TaskGuard {
    fn drop(&mut self) {
        self.hub.live_tasks.fetch_sub(1, Ordering::Relaxed);
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}

impl Hub {
    pub fn new(cx: RoomContext) -> Self {
        Self {
            rooms: Mutex::new(HashMap::new()),
            per_ip: Mutex::new(HashMap::new()),
            next_conn: AtomicU64::new(1),
            live_tasks: Default::default(),
            shutting_down: AtomicBool::new(false),
            cx,
        }
    }

    /// The server's limits (rooms and connections share them).
    pub fn limits(&self) -> &Limits {
        &self.cx.limits
    }

    pub fn metrics(&self) -> &Metrics {
        &self.cx.metrics
    }

    fn stats_of(&self, id: SessionId) -> Option<Arc<RoomStats>> {
        lock(&self.rooms).get(&id).map(|room| room.stats.clone())
    }

    /// Open connections to one session.
    pub fn connection_count_of(&self, id: SessionId) -> usize {
        self.stats_of(id)
            .map_or(0, |stats| stats.connections.load(Ordering::Relaxed))
    }

    /// The language of a loaded session (the document is the source of truth).
    pub fn language_of(&self, id: SessionId) -> Option<Language> {
        self.stats_of(id).and_then(|stats| stats.language())
    }

    /// Last activity of a loaded session, ms since the epoch.
    pub fn last_activity_of(&self, id: SessionId) -> Option<u64> {
        self.stats_of(id)
            .map(|stats| stats.last_activity_ms.load(Ordering::Relaxed))
    }

    pub fn is_loaded(&self, id: SessionId) -> bool {
        lock(&self.rooms).contains_key(&id)
    }

    /// Sessions loaded in memory.
    pub fn loaded_count(&self) -> usize {
        lock(&self.rooms).len()
    }

    /// Open WebSocket connections, all sessions together.
    pub fn connection_count(&self) -> usize {
        lock(&self.rooms)
            .values()
            .map(|room| room.stats.connections.load(Ordering::Relaxed))
            .sum()
    }

    pub fn is_shutting_down(&self) -> bool {
        self.shutting_down.load(Ordering::Relaxed)
    }

    /// A new connection id.
    pub fn next_conn_id(&self) -> ConnId {
        self.next_conn.fetch_add(1, Ordering::Relaxed)
    }

    /// Counts a WebSocket task until the returned guard drops.
    pub fn track_task(self: &Arc<Self>) -> TaskGuard {
        self.live_tasks.fetch_add(1, Ordering::Relaxed);
        TaskGuard { hub: self.clone() }
    }

    /// Waits (at most `limit`) for every WebSocket task to finish its close handshake.
    pub async fn wait_for_tasks(&self, limit: std::time::Duration) {
        let deadline = tokio::time::Instant::now() + limit;
        while self.live_tasks.load(Ordering::Relaxed) > 0 && tokio::time::Instant::now() < deadline
        {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }

    /// Claims a connection slot for `ip`, or `None` if it has `limit` already
    /// (0 = no limit).
    pub fn claim_ip_slot(self: &Arc<Self>, ip: IpAddr, limit: usize) -> Option<IpSlot> {
        let mut per_ip = lock(&self.per_ip);
        let count = per_ip.entry(ip).or_insert(0);
        if limit != 0 && *count >= limit {
            return None;
        }
        *count += 1;
        Some(IpSlot {
            hub: self.clone(),
            ip,
        })
    }

    /// Joins `conn` to the session's room, loading the session if needed. On
    /// success the room has already queued its SyncStep1 to `outbound`.
    pub async fn join(
        self: &Arc<Self>,
        meta: &SessionMeta,
        conn: ConnId,
        ip: IpAddr,
        role: Role,
        outbound: Outbound,
    ) -> Result<RoomHandle, JoinRefused> {
        // A room that is unloading refuses with `retry`; the next attempt loads a
        // fresh one. Three attempts cover any realistic race.
        let mut last_refusal = None;
        for _ in 0..3 {
            if self.is_shutting_down() {
                break;
            }
            let room = {
                let mut rooms = lock(&self.rooms);
                rooms
                    .entry(meta.id)
                    .or_insert_with(|| {
                        task::spawn(meta.clone(), self.cx.clone(), self.clone(), false)
                    })
                    .clone()
            };
            let (reply, answer) = oneshot::channel();
            let sent = room
                .commands
                .send(RoomCommand::Join {
                    conn,
                    ip,
                    role,
                    outbound: outbound.clone(),
                    reply,
                })
                .await;
            if sent.is_err() {
                // Its task is gone (it panicked): forget it, load afresh.
                self.forget(meta.id, &room.stats);
                continue;
            }
            match answer.await {
                Ok(Ok(())) => return Ok(room),
                Ok(Err(refused)) if refused.retry => last_refusal = Some(refused),
                Ok(Err(refused)) => return Err(refused),
                Err(_) => continue,
            }
        }
        Err(last_refusal.unwrap_or(JoinRefused {
            code: super::close::GOING_AWAY,
            reason: "server shutting down".into(),
            retry: false,
        }))
    }

    /// The other instances on the same storage (cluster mode), if any.
    pub fn peers(&self) -> Option<&Arc<dyn super::Peers>> {
        self.cx.peers.as_ref()
    }

    /// Hands `command` to the session's room without waiting: taken (or
    /// nobody to take it: the session is not loaded here), or given back
    /// because the room's queue is full.
    pub fn offer(&self, id: SessionId, command: RoomCommand) -> Result<(), RoomCommand> {
        let room = lock(&self.rooms).get(&id).cloned();
        match room.map(|room| room.commands.try_send(command)) {
            Some(Err(TrySendError::Full(command))) => Err(command),
            _ => Ok(()),
        }
    }

    /// Sends `command` to the session's room if it is loaded (a room that is
    /// not reads the session's record when it loads).
    pub async fn tell_loaded(&self, id: SessionId, command: RoomCommand) {
        let room = lock(&self.rooms).get(&id).cloned();
        if let Some(room) = room {
            let _ = room.commands.send(command).await;
        }
    }

    /// Sends `command` to the session's room, loading the session if needed.
    pub async fn tell(self: &Arc<Self>, meta: &SessionMeta, command: RoomCommand) {
        let room = lock(&self.rooms)
            .entry(meta.id)
            .or_insert_with(|| task::spawn(meta.clone(), self.cx.clone(), self.clone(), true))
            .clone();
        let _ = room.commands.send(command).await;
    }

    /// Closes every connection with 1001 after storing every room's snapshot;
    /// refuses new joins from now on.
    pub async fn shutdown(&self) {
        self.shutting_down.store(true, Ordering::Relaxed);
        let rooms: Vec<RoomHandle> = lock(&self.rooms).drain().map(|(_, room)| room).collect();
        let mut waiting = Vec::with_capacity(rooms.len());
        for room in rooms {
            let (done, finished) = oneshot::channel();
            if room
                .commands
                .send(RoomCommand::Shutdown { done })
                .await
                .is_ok()
            {
                waiting.push(finished);
            }
        }
        for finished in waiting {
            let _ = finished.await;
        }
        self.cx.writer.stop();
    }
}

impl RoomRegistry for Hub {
    fn remove_if_idle(
        &self,
        id: SessionId,
        stats: &Arc<RoomStats>,
        queue: &QueueReceiver<RoomCommand>,
    ) -> bool {
        let mut rooms = lock(&self.rooms);
        let is_this_room = rooms
            .get(&id)
            .is_some_and(|room| Arc::ptr_eq(&room.stats, stats));
        if is_this_room && queue.is_empty() {
            rooms.remove(&id);
            true
        } else {
            false
        }
    }

    fn record(self: Arc<Self>, id: SessionId, events: Vec<yrs::Any>) {
        let storage = self.cx.storage.clone();
        tokio::spawn(async move {
            let notes = blocking(move || {
                let Some(notes_id) = storage.session(id)?.and_then(|meta| meta.notes_id) else {
                    return Ok(None);
                };
                storage.session(notes_id)
            })
            .await;
            match notes {
                Ok(Some(notes)) => self.tell(&notes, RoomCommand::Record(events)).await,
                Ok(None) => {}
                Err(e) => tracing::warn!(session = %id, error = %e, "event not recorded"),
            }
        });
    }

    fn forget(&self, id: SessionId, stats: &Arc<RoomStats>) {
        let mut rooms = lock(&self.rooms);
        if rooms
            .get(&id)
            .is_some_and(|room| Arc::ptr_eq(&room.stats, stats))
        {
            rooms.remove(&id);
        }
    }
}

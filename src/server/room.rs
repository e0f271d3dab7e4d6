//! A room: the live, in-memory side of one session. One task per loaded session
//! owns its document and presence and handles, one at a time, everything its
//! connections send; so every client sees one order of events and a reply to a
//! SyncStep1 never contains an update that is not yet stored.
//!
//! Update path: size and history checks -> append to the journal (see
//! `persist`) -> relay to the other connections -> apply to the document.
//! Accepted updates are applied in batches (one yrs transaction each, about
//! half the CPU of one per update): before the document is read (a join, a
//! SyncStep1, a snapshot, an exact size measure) and at most `APPLY_DELAY`
//! after they arrived.
//!
//! Bounds a room enforces: connections per session and per address, the
//! document's whole encoded size (4413, checked before anything is stored),
//! the session's history (4507), presence (see `presence`), and what may queue
//! up for a connection that does not read (closed as too slow, its backlog
//! freed at once). It also pings every connection; the connection task closes
//! one that does not answer.

use super::{
    blocking::blocking,
    health::StorageHealth,
    metrics::Metrics,
    persist::UpdateWriter,
    presence::{Presence, PresenceError, PresenceLimits},
    queue::{self, QueueReceiver, QueueSender, TrySendError},
    room_rules::{self, Accounts},
};
use crate::{
    domain::{time::now_ms, Language, Limits, SessionMeta},
    storage::{Storage, UpdateRecord},
    sync::{
        protocol::{self, AwarenessMessage, ClientMessage, ReceivedUpdate},
        SessionDoc,
    },
};
use bytes::Bytes;
use std::{
    net::IpAddr,
    sync::{
        atomic::{AtomicU64, AtomicU8, AtomicUsize, Ordering},
        Arc,
    },
    time::Duration,
};
use tokio::{sync::oneshot, time::Instant};

/// Commands queued to a room before senders wait.
const ROOM_QUEUE_CAPACITY: usize = 1024;
/// How often stale presence is looked for.
const AWARENESS_SWEEP: Duration = Duration::from_secs(5);
/// First wait after a failed snapshot; it doubles up to [`SNAPSHOT_MAX_BACKOFF`].
const SNAPSHOT_FIRST_BACKOFF: Duration = Duration::from_secs(1);
const SNAPSHOT_MAX_BACKOFF: Duration = Duration::from_secs(300);

/// How long an accepted update may wait to be applied to the room's document
/// (so how late the REST API may see a language change made by a client).
const APPLY_DELAY: Duration = Duration::from_millis(500);

/// WebSocket close codes (shared with the browser).
pub use crate::domain::close_codes as close;

/// Identifies one WebSocket connection.
pub type ConnId = u64;

/// What a room sends to a connection.
#[derive(Debug, Clone)]
pub enum OutFrame {
    Binary(Bytes),
    /// Time to ping the client (the connection task tracks the answer).
    Ping,
    Close(u16, String),
}

impl OutFrame {
    /// Bytes it holds while queued.
    pub fn weight(&self) -> usize {
        match self {
            OutFrame::Binary(bytes) => bytes.len(),
            OutFrame::Ping | OutFrame::Close(..) => 0,
        }
    }
}

pub type Outbound = QueueSender<OutFrame>;

/// Frames queued to one connection before it counts as too slow (besides the
/// byte bound, `--max-outbound-bytes`); it is closed and reconnects and
/// resyncs, so nothing is lost.
pub const OUTBOUND_CAPACITY: usize = 512;

/// A connection's outgoing queue, bounded in frames and in bytes.
pub fn outbound_queue(max_bytes: usize) -> (Outbound, QueueReceiver<OutFrame>) {
    queue::bounded_by_weight(OUTBOUND_CAPACITY, max_bytes, OutFrame::weight)
}

/// Why a connection could not join.
#[derive(Debug, Clone)]
pub struct JoinRefused {
    pub code: u16,
    pub reason: String,
    /// The room was unloading: joining again starts a fresh one.
    pub retry: bool,
}

pub enum RoomCommand {
    Join {
        conn: ConnId,
        /// The key per-address limits count against.
        ip: IpAddr,
        outbound: Outbound,
        reply: oneshot::Sender<Result<(), JoinRefused>>,
    },
    Frame {
        conn: ConnId,
        messages: Vec<ClientMessage>,
    },
    Leave {
        conn: ConnId,
    },
    Shutdown {
        done: oneshot::Sender<()>,
    },
}

/// Figures about a room that others read without asking it.
#[derive(Default)]
pub struct RoomStats {
    pub connections: AtomicUsize,
    /// 0 = unknown, else 1 + index in `Language::ALL`.
    language: AtomicU8,
    pub last_activity_ms: AtomicU64,
}

impl RoomStats {
    pub fn language(&self) -> Option<Language> {
        match self.language.load(Ordering::Relaxed) {
            0 => None,
            n => Language::ALL.get(usize::from(n) - 1).copied(),
        }
    }

    fn set_language(&self, language: Language) {
        let index = Language::ALL
            .iter()
            .position(|l| *l == language)
            .unwrap_or(0);
        self.language.store(index as u8 + 1, Ordering::Relaxed);
    }
}

/// A cheap handle to a running room.
#[derive(Clone)]
pub struct RoomHandle {
    pub commands: QueueSender<RoomCommand>,
    pub stats: Arc<RoomStats>,
}

/// What a room needs from the rest of the server.
#[derive(Clone)]
pub struct RoomContext {
    pub storage: Arc<dyn Storage>,
    pub writer: Arc<UpdateWriter>,
    /// Shared: every room keeps a context, and thousands may be loaded.
    pub limits: Arc<Limits>,
    pub metrics: Arc<Metrics>,
    pub health: Arc<StorageHealth>,
}

struct Connection {
    outbound: Outbound,
    ip: IpAddr,
}

/// A room's connections: at most a few dozen, so a Vec searched linearly is
/// both faster and much smaller than a hash map (thousands of rooms stay loaded).
#[derive(Default)]
struct Connections(Vec<(ConnId, Connection)>);

impl Connections {
    fn get(&self, conn: ConnId) -> Option<&Connection> {
        self.0.iter().find(|(id, _)| *id == conn).map(|(_, c)| c)
    }

    fn insert(&mut self, conn: ConnId, connection: Connection) {
        self.0.push((conn, connection));
    }

    fn remove(&mut self, conn: ConnId) -> Option<Connection> {
        let index = self.0.iter().position(|(id, _)| *id == conn)?;
        Some(self.0.swap_remove(index).1)
    }

    fn iter(&self) -> impl ExactSizeIterator<Item = &(ConnId, Connection)> {
        self.0.iter()
    }

    fn drain(&mut self) -> impl Iterator<Item = Connection> + '_ {
        self.0.drain(..).map(|(_, c)| c)
    }

    fn len(&self) -> usize {
        self.0.len()
    }

    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

pub struct Room {
    meta: SessionMeta,
    cx: RoomContext,
    registry: Arc<dyn RoomRegistry>,
    stats: Arc<RoomStats>,
    doc: SessionDoc,
    /// Updates stored and relayed but not yet applied to `doc` (see the module doc).
    unapplied: Vec<yrs::Update>,
    /// When `unapplied` is applied at the latest.
    apply_due: Option<Instant>,
    /// Size, history and snapshot accounting (see `room_rules`).
    accounts: Accounts,
    presence: Presence,
    connections: Connections,
    /// After a failed snapshot: when to try again, and the wait after that.
    snapshot_retry: Option<(Instant, Duration)>,
    empty_since: Option<Instant>,
}

/// Where rooms are registered (the hub), as a room sees it: so it can take
/// itself off the list when it unloads or its task ends.
pub trait RoomRegistry: Send + Sync {
    /// Unregisters the room if it is still the registered one and nothing is
    /// queued to it (atomically, so no join slips in between); true if it did.
    fn remove_if_idle(
        &self,
        id: crate::domain::SessionId,
        stats: &Arc<RoomStats>,
        queue: &QueueReceiver<RoomCommand>,
    ) -> bool;
    /// Unregisters the room if it is still the registered one.
    fn forget(&self, id: crate::domain::SessionId, stats: &Arc<RoomStats>);
}

/// Forgets the room in the registry when its task ends however it ends, a
/// panic included: the next join then loads the session afresh from storage.
struct Registration {
    registry: Arc<dyn RoomRegistry>,
    id: crate::domain::SessionId,
    stats: Arc<RoomStats>,
}

impl Drop for Registration {
    fn drop(&mut self) {
        if std::thread::panicking() {
            tracing::error!(session = %self.id, "room task panicked; the session reloads on the next join");
        }
        self.registry.forget(self.id, &self.stats);
    }
}

impl Room {
    /// Starts the room's task; the document is loaded before any command runs.
    pub fn spawn(
        meta: SessionMeta,
        cx: RoomContext,
        registry: Arc<dyn RoomRegistry>,
    ) -> RoomHandle {
        let (commands, queue) = queue::bounded(ROOM_QUEUE_CAPACITY);
        let stats = Arc::new(RoomStats::default());
        stats.set_language(meta.language);
        stats
            .last_activity_ms
            .store(meta.last_activity_ms, Ordering::Relaxed);
        let handle = RoomHandle {
            commands,
            stats: stats.clone(),
        };
        let handle_stats = stats.clone();
        let room_registry = registry.clone();
        let id = meta.id;
        // Boxed, and built outside the task: the task's own future then holds a
        // pointer, not the start-up arguments, for as long as the room lives.
        let registration = Registration {
            registry: registry.clone(),
            id,
            stats: stats.clone(),
        };
        let load = Box::pin(Room::load(meta, cx, registry, stats));
        tokio::spawn(async move {
            let _registration = registration;
            match load.await {
                Ok(room) => room.run(queue).await,
                Err(e) => {
                    tracing::error!(session = %id, error = %e, "loading the session failed");
                    room_registry.remove_if_idle(id, &handle_stats, &queue);
                    Box::pin(refuse_all(
                        queue,
                        close::INTERNAL_ERROR,
                        "the session could not be loaded",
                        false,
                    ))
                    .await;
                }
            }
        });
        handle
    }

    async fn load(
        meta: SessionMeta,
        cx: RoomContext,
        registry: Arc<dyn RoomRegistry>,
        stats: Arc<RoomStats>,
    ) -> Result<Box<Self>, crate::storage::StorageError> {
        let storage = cx.storage.clone();
        let id = meta.id;
        let stored = blocking(move || storage.load_document(id)).await?;
        let (doc, skipped) = SessionDoc::from_updates(stored.updates_in_order());
        if skipped > 0 {
            tracing::warn!(session = %id, skipped, "stored updates that did not apply were skipped");
        }
        let bytes_since_snapshot = stored.updates.iter().map(|u| u.update.len()).sum();
        let size = doc.encoded_len();
        let snapshot_len = stored.snapshot.as_ref().map_or(0, Vec::len);
        let mut room = Box::new(Room {
            accounts: Accounts::new(
                size,
                stored.history_bytes,
                bytes_since_snapshot,
                snapshot_len,
            ),
            doc,
            unapplied: Vec::new(),
            apply_due: None,
            meta,
            cx,
            registry,
            stats,
            presence: Presence::default(),
            connections: Connections::default(),
            snapshot_retry: None,
            empty_since: Some(Instant::now()),
        });
        match room.doc.language() {
            Some(language) => room.stats.set_language(language),
            None => {
                // A new session: its language (chosen at creation) goes into the
                // document, where it syncs and persists like any edit.
                let update = room.doc.set_language(room.meta.language);
                room.persist(vec![update]).await?;
            }
        }
        tracing::debug!(session = %id, size, "session loaded");
        Ok(room)
    }

    /// Rare work (snapshots, unloading) is awaited boxed: an
    /// idle room's task then holds only what its hot path needs, and thousands
    /// of idle rooms are the server's biggest memory cost after sockets.
    async fn run(mut self: Box<Self>, mut queue: QueueReceiver<RoomCommand>) {
        // One timer for all housekeeping (applying updates, presence sweep,
        // unloading when empty): tokio's intervals would each keep a boxed
        // timer per room. (Last activity needs none: storage records it from
        // the update log's timestamps.)
        let mut next_sweep = Instant::now() + AWARENESS_SWEEP;
        let mut next_ping = Instant::now() + self.cx.limits.ping_interval;
        // One timer for the room's life, moved only when the next deadline
        // changes: a fresh one per command costs a timer-wheel insert and removal
        // for every edit.
        let timer = tokio::time::sleep_until(next_sweep);
        tokio::pin!(timer);
        loop {
            let unload_at = self
                .empty_since
                .map(|since| since + self.cx.limits.room_unload_grace);
            let retry_at = self.snapshot_retry.map(|(at, _)| at);
            let wake_at = [unload_at, self.apply_due, retry_at, Some(next_ping)]
                .into_iter()
                .flatten()
                .fold(next_sweep, Instant::min);
            if timer.deadline() != wake_at {
                timer.as_mut().reset(wake_at);
            }
            tokio::select! {
                command = queue.recv() => match command {
                    Some(RoomCommand::Shutdown { done }) => {
                        self.close_all(close::GOING_AWAY, "server shutting down");
                        Box::pin(self.snapshot_if_due()).await;
                        let _ = done.send(());
                        return;
                    }
                    Some(command) => self.handle(command).await,
                    None => return,
                },
                () = &mut timer => {
                    let now = Instant::now();
                    if self.apply_due.is_some_and(|at| now >= at) {
                        self.apply_unapplied();
                    }
                    if now >= next_sweep {
                        self.expire_stale_presence();
                        next_sweep = now + AWARENESS_SWEEP;
                    }
                    if now >= next_ping {
                        self.ping_all();
                        next_ping = now + self.cx.limits.ping_interval;
                    }
                    if retry_at.is_some_and(|at| now >= at) {
                        Box::pin(self.snapshot()).await;
                    }
                    if unload_at.is_some_and(|at| now >= at) {
                        if self.connections.is_empty() {
                            Box::pin(self.snapshot_if_due()).await;
                            if self.registry.remove_if_idle(self.meta.id, &self.stats, &queue) {
                                tracing::debug!(session = %self.meta.id, "idle session unloaded");
                                Box::pin(refuse_all(queue, close::TRY_AGAIN_LATER, "session reloading", true)).await;
                                return;
                            }
                        }
                        // Commands arrived meanwhile: a join clears this, else try again later.
                        self.empty_since = self.connections.is_empty().then(Instant::now);
                    }
                }
            }
        }
    }

    async fn handle(&mut self, command: RoomCommand) {
        match command {
            RoomCommand::Join {
                conn,
                ip,
                outbound,
                reply,
            } => {
                let present = self.connections.iter().map(|(_, c)| c.ip);
                if let Err(refused) = room_rules::admit(present, ip, &self.cx.limits) {
                    let _ = reply.send(Err(JoinRefused {
                        code: refused.code,
                        reason: refused.reason,
                        retry: false,
                    }));
                    return;
                }
                // Our state vector first, then everyone's presence, one message a frame.
                self.apply_unapplied();
                let step1 = protocol::encode_sync_step1(&self.doc.state_vector());
                let _ = outbound.try_send(OutFrame::Binary(step1.into()));
                if let Some(states) = self.presence.current_frame() {
                    let _ = outbound.try_send(OutFrame::Binary(states.into()));
                }
                self.connections.insert(conn, Connection { outbound, ip });
                self.empty_since = None;
                self.publish_connection_count();
                let _ = reply.send(Ok(()));
            }
            RoomCommand::Frame { conn, messages } => self.handle_frame(conn, messages).await,
            RoomCommand::Leave { conn } => self.remove_connection(conn),
            RoomCommand::Shutdown { .. } => unreachable!("handled by run"),
        }
    }

    async fn handle_frame(&mut self, conn: ConnId, messages: Vec<ClientMessage>) {
        if self.connections.get(conn).is_none() {
            return;
        }
        let mut updates = Vec::new();
        for message in messages {
            match message {
                ClientMessage::SyncStep1(remote) => {
                    self.apply_unapplied();
                    let step2 = protocol::encode_sync_step2(&self.doc.diff(&remote));
                    self.send_to(conn, step2.into());
                }
                ClientMessage::SyncStep2(update) | ClientMessage::Update(update) => {
                    // Empty updates (every client's first SyncStep2 on a fresh
                    // document) change nothing: not stored, not relayed.
                    if !update.is_empty() {
                        updates.push(update)
                    }
                }
                ClientMessage::Awareness(message) => {
                    if !self.apply_presence(conn, message) {
                        return;
                    }
                }
                ClientMessage::AwarenessQuery => {
                    if let Some(states) = self.presence.current_frame() {
                        self.send_to(conn, states.into());
                    }
                }
                ClientMessage::Ignored(kind) => {
                    tracing::debug!(session = %self.meta.id, conn, kind, "ignored message type");
                }
            }
        }
        if !updates.is_empty() {
            // Boxed: an update is in flight only briefly; kept inline, its state
            // would make every idle room's task hundreds of bytes bigger.
            Box::pin(self.accept_updates(conn, updates)).await;
        }
    }

    /// Size and history checks, stored append, relay; applied later (see the
    /// module doc).
    async fn accept_updates(&mut self, conn: ConnId, updates: Vec<ReceivedUpdate>) {
        let incoming: usize = updates.iter().map(|update| update.len()).sum();
        // Taken out for the check: measuring needs the whole room.
        let mut accounts = std::mem::take(&mut self.accounts);
        // Only the limits: this runs for every edit.
        let limits = Arc::clone(&self.cx.limits);
        let checked = accounts.check(incoming, updates.len(), &limits, || {
            self.apply_unapplied();
            self.doc.encoded_len()
        });
        self.accounts = accounts;
        if let Err(refused) = checked {
            tracing::warn!(session = %self.meta.id, conn, incoming, reason = %refused.reason, "update refused");
            self.close_connection(conn, refused.code, &refused.reason);
            return;
        }
        // The bytes move into storage; the relay frames are built first, and
        // sent only once the updates are stored.
        let count = updates.len();
        let applied_before = self.unapplied.len();
        let mut frames: Vec<Bytes> = Vec::with_capacity(count);
        let mut stored = Vec::with_capacity(count);
        for ReceivedUpdate { bytes, decoded } in updates {
            frames.push(protocol::encode_update(&bytes).into());
            stored.push(bytes);
            self.unapplied.push(decoded);
        }
        if let Err(e) = self.persist(stored).await {
            self.unapplied.truncate(applied_before);
            self.cx.health.count_error();
            tracing::error!(session = %self.meta.id, error = %e, "update not stored; connection closed");
            self.close_connection(conn, close::INTERNAL_ERROR, "storage failure; reconnect");
            return;
        }
        self.cx
            .metrics
            .ws_updates_applied
            .fetch_add(count as u64, Ordering::Relaxed);
        for frame in &frames {
            self.broadcast_except(conn, frame);
        }
        if self.apply_due.is_none() {
            self.apply_due = Some(Instant::now() + APPLY_DELAY);
        }
        // Checked here, boxed only when due: this runs for every edit.
        if self.snapshot_retry.is_none() && self.accounts.snapshot_due() {
            Box::pin(self.snapshot()).await;
        }
    }

    /// Applies the accepted updates not yet in the document, and publishes what
    /// they changed: the code's exact length and the language.
    fn apply_unapplied(&mut self) {
        self.apply_due = None;
        if self.unapplied.is_empty() {
            return;
        }
        // Taken, not drained: an idle room then keeps no buffer.
        let updates = std::mem::take(&mut self.unapplied);
        let refused = self.doc.apply_all(updates, None);
        if let Some(first) = refused.first() {
            // Stored and relayed already: a reload skips them the same way.
            tracing::warn!(session = %self.meta.id, count = refused.len(), error = %first, "stored updates did not apply");
        }
        if let Some(language) = self
            .doc
            .language()
            .filter(|l| Some(*l) != self.stats.language())
        {
            self.publish_language(language);
        }
    }

    /// A client changed the language: REST and storage follow the document.
    fn publish_language(&mut self, language: Language) {
        self.stats.set_language(language);
        let storage = self.cx.storage.clone();
        let id = self.meta.id;
        tokio::spawn(async move {
            if let Err(e) = blocking(move || storage.set_language(id, language)).await {
                tracing::error!(session = %id, error = %e, "storing the language failed");
            }
        });
    }

    async fn persist(&mut self, updates: Vec<Vec<u8>>) -> Result<(), crate::storage::StorageError> {
        let at_ms = now_ms();
        let records: Vec<UpdateRecord> = updates
            .into_iter()
            .map(|update| UpdateRecord {
                session: self.meta.id,
                at_ms,
                update,
            })
            .collect();
        let count = records.len();
        let bytes = records.iter().map(|r: &UpdateRecord| r.update.len()).sum();
        self.cx.writer.append(records).await?;
        self.accounts.stored(count, bytes);
        self.stats.last_activity_ms.store(at_ms, Ordering::Relaxed);
        Ok(())
    }

    /// Takes a snapshot if enough has changed since the last one (see
    /// `room_rules::Accounts::snapshot_due`).
    async fn snapshot_if_due(&mut self) {
        if self.accounts.snapshot_due() {
            self.snapshot().await;
        }
    }

    /// Stores the whole document as the session's snapshot (compaction for fast
    /// loading; the update log itself is kept for playback). A failure is
    /// retried after a growing wait, and reported by `/api/health` meanwhile.
    async fn snapshot(&mut self) {
        self.apply_unapplied();
        let storage = self.cx.storage.clone();
        let id = self.meta.id;
        let state = self.doc.snapshot();
        let len = state.len();
        let result = blocking(move || storage.store_snapshot(id, &state)).await;
        let was_failing = self.snapshot_retry.is_some();
        match result {
            Ok(_) => {
                self.accounts.snapshot_taken(len);
                self.snapshot_retry = None;
                if was_failing {
                    self.cx.health.snapshot_failing(false);
                }
            }
            Err(e) => {
                self.cx.health.count_error();
                let wait = match self.snapshot_retry {
                    Some((_, wait)) => (wait * 2).min(SNAPSHOT_MAX_BACKOFF),
                    None => SNAPSHOT_FIRST_BACKOFF,
                };
                self.snapshot_retry = Some((Instant::now() + wait, wait));
                if !was_failing {
                    self.cx.health.snapshot_failing(true);
                }
                tracing::error!(session = %id, error = %e, retry_in = ?wait, "storing a snapshot failed");
            }
        }
    }

    /// Applies a connection's presence; false if it broke a limit and was closed.
    fn apply_presence(&mut self, conn: ConnId, message: AwarenessMessage) -> bool {
        let limits = PresenceLimits {
            max_clients: self.cx.limits.max_awareness_clients,
            max_state_bytes: self.cx.limits.max_awareness_state_bytes,
        };
        match self.presence.apply(conn, message, now_ms(), limits) {
            Ok(Some(frame)) => {
                // To everyone, the sender included: y-websocket clients treat
                // their own echoed presence as a sign the connection is alive.
                self.broadcast_except(ConnId::MAX, &frame.into());
                true
            }
            Ok(None) => true,
            Err(PresenceError::StateTooLarge(limit)) => {
                tracing::warn!(session = %self.meta.id, conn, limit, "closed: awareness state too large");
                let reason = PresenceError::StateTooLarge(limit).to_string();
                self.close_connection(conn, close::POLICY_VIOLATION, &reason);
                false
            }
        }
    }

    fn expire_stale_presence(&mut self) {
        if let Some(frame) = self.presence.expire_stale(now_ms()) {
            self.broadcast_except(ConnId::MAX, &frame.into());
        }
    }

    /// Asks every connection to ping its client.
    fn ping_all(&mut self) {
        for (_, connection) in self.connections.iter() {
            let _ = connection.outbound.try_send(OutFrame::Ping);
        }
    }

    fn send_to(&mut self, conn: ConnId, frame: Bytes) {
        let failed = match self.connections.get(conn) {
            Some(connection) => connection.outbound.try_send(OutFrame::Binary(frame)).err(),
            None => None,
        };
        if let Some(error) = failed {
            self.drop_unreachable(conn, is_full(&error));
        }
    }

    fn broadcast_except(&mut self, except: ConnId, frame: &Bytes) {
        let failed: Vec<(ConnId, bool)> = self
            .connections
            .iter()
            .filter(|(id, _)| *id != except)
            .filter_map(|(id, c)| {
                c.outbound
                    .try_send(OutFrame::Binary(frame.clone()))
                    .err()
                    .map(|e| (*id, is_full(&e)))
            })
            .collect();
        for (conn, too_slow) in failed {
            self.drop_unreachable(conn, too_slow);
        }
    }

    /// A connection whose queue is full is too slow: its backlog is dropped at
    /// once and it is closed (the client reconnects and resyncs). One whose task
    /// already ended (its Leave is on the way) is simply forgotten.
    fn drop_unreachable(&mut self, conn: ConnId, too_slow: bool) {
        if too_slow {
            if let Some(connection) = self.connections.get(conn) {
                let limit = self.cx.limits.max_outbound_bytes;
                tracing::warn!(session = %self.meta.id, conn, "connection too slow; closed");
                connection.outbound.close_with(OutFrame::Close(
                    close::TRY_AGAIN_LATER,
                    format!("connection too slow: over {limit} bytes or {OUTBOUND_CAPACITY} frames unread"),
                ));
            }
        }
        self.remove_connection(conn);
    }

    fn close_connection(&mut self, conn: ConnId, code: u16, reason: &str) {
        if let Some(connection) = self.connections.get(conn) {
            let _ = connection
                .outbound
                .try_send(OutFrame::Close(code, reason.to_owned()));
        }
        self.remove_connection(conn);
    }

    fn close_all(&mut self, code: u16, reason: &str) {
        for connection in self.connections.drain() {
            let _ = connection
                .outbound
                .try_send(OutFrame::Close(code, reason.to_owned()));
        }
        self.publish_connection_count();
    }

    fn remove_connection(&mut self, conn: ConnId) {
        if self.connections.remove(conn).is_some() {
            if let Some(frame) = self.presence.remove_connection(conn) {
                self.broadcast_except(ConnId::MAX, &frame.into());
            }
            self.publish_connection_count();
            if self.connections.is_empty() {
                self.empty_since = Some(Instant::now());
            }
        }
    }

    fn publish_connection_count(&self) {
        self.stats
            .connections
            .store(self.connections.len(), Ordering::Relaxed);
    }
}

impl Drop for Room {
    fn drop(&mut self) {
        // A room that goes away no longer counts as failing to snapshot.
        if self.snapshot_retry.is_some() {
            self.cx.health.snapshot_failing(false);
        }
    }
}

fn is_full<T>(error: &TrySendError<T>) -> bool {
    matches!(error, TrySendError::Full(_))
}

/// Answers every queued join with a refusal (the room is going away).
async fn refuse_all(mut queue: QueueReceiver<RoomCommand>, code: u16, reason: &str, retry: bool) {
    queue.close();
    while let Some(command) = queue.recv().await {
        match command {
            RoomCommand::Join { reply, .. } => {
                let _ = reply.send(Err(JoinRefused {
                    code,
                    reason: reason.to_owned(),
                    retry,
                }));
            }
            RoomCommand::Shutdown { done } => {
                let _ = done.send(());
            }
            _ => {}
        }
    }
}

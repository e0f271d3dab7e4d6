//! A room: the live, in-memory side of one session. One task per loaded session
//! owns its document and awareness and handles, one at a time, everything its
//! connections send; so every client sees one order of events and a reply to a
//! SyncStep1 never contains an update that is not yet stored.
//!
//! Update path: validate -> size check -> append to the journal (see `persist`) ->
//! relay to the other connections -> apply to the document. Accepted updates are
//! applied in batches (one yrs transaction each, about half the CPU of one per
//! update): before the document is read (a join, a SyncStep1, a snapshot, a size
//! check near the limit) and at most `APPLY_DELAY` after they arrived.

use super::{
    hub::Hub,
    metrics::Metrics,
    persist::UpdateWriter,
    queue::{self, QueueReceiver, QueueSender, TrySendError},
    sessions::blocking,
};
use crate::{
    domain::{time::now_ms, Language, Limits, SessionMeta},
    storage::{Storage, UpdateRecord},
    sync::{
        protocol::{self, ClientMessage, ReceivedUpdate},
        SessionDoc,
    },
};
use bytes::Bytes;
use std::{
    sync::{
        atomic::{AtomicU64, AtomicU8, AtomicUsize, Ordering},
        Arc,
    },
    time::Duration,
};
use tokio::{sync::oneshot, time::Instant};
use yrs::{block::ClientID, sync::Awareness};

/// Commands queued to a room before senders wait.
const ROOM_QUEUE_CAPACITY: usize = 1024;
/// Presence not renewed for this long is removed (y-protocols' outdatedTimeout).
const AWARENESS_TIMEOUT: Duration = Duration::from_secs(30);
/// How often stale presence is looked for.
const AWARENESS_SWEEP: Duration = Duration::from_secs(5);
/// Updates logged since the last snapshot that trigger a new one.
const SNAPSHOT_EVERY: usize = 500;
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
    Close(u16, String),
}

pub type Outbound = QueueSender<OutFrame>;

/// Frames queued to one connection before it counts as too slow and is dropped
/// (it reconnects and resyncs, so nothing is lost).
pub const OUTBOUND_CAPACITY: usize = 512;

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
}

struct Connection {
    outbound: Outbound,
    /// Awareness client ids this connection has announced (removed when it
    /// leaves). Usually one: a Vec is smaller than a set.
    clients: Vec<ClientID>,
}

impl Connection {
    fn announce(&mut self, client: ClientID) {
        if !self.clients.contains(&client) {
            self.clients.push(client);
        }
    }

    fn forget(&mut self, client: ClientID) {
        self.clients.retain(|c| *c != client);
    }
}

/// A room's connections: at most a few dozen, so a Vec searched linearly is
/// both faster and much smaller than a hash map (thousands of rooms stay loaded).
#[derive(Default)]
struct Connections(Vec<(ConnId, Connection)>);

impl Connections {
    fn get(&self, conn: ConnId) -> Option<&Connection> {
        self.0.iter().find(|(id, _)| *id == conn).map(|(_, c)| c)
    }

    fn get_mut(&mut self, conn: ConnId) -> Option<&mut Connection> {
        self.0
            .iter_mut()
            .find(|(id, _)| *id == conn)
            .map(|(_, c)| c)
    }

    fn insert(&mut self, conn: ConnId, connection: Connection) {
        self.0.push((conn, connection));
    }

    fn remove(&mut self, conn: ConnId) -> Option<Connection> {
        let index = self.0.iter().position(|(id, _)| *id == conn)?;
        Some(self.0.swap_remove(index).1)
    }

    fn iter(&self) -> impl Iterator<Item = &(ConnId, Connection)> {
        self.0.iter()
    }

    fn iter_mut(&mut self) -> impl Iterator<Item = &mut Connection> {
        self.0.iter_mut().map(|(_, c)| c)
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
    hub: Arc<Hub>,
    stats: Arc<RoomStats>,
    doc: SessionDoc,
    /// Updates stored and relayed but not yet applied to `doc` (see the module doc).
    unapplied: Vec<yrs::Update>,
    /// When `unapplied` is applied at the latest.
    apply_due: Option<Instant>,
    /// At least the code's length in UTF-16 units: exact when `unapplied` was
    /// last applied, plus the size of each update accepted since (an update
    /// cannot add more text than its own size).
    code_len_bound: usize,
    awareness: Awareness,
    connections: Connections,
    updates_since_snapshot: usize,
    empty_since: Option<Instant>,
}

impl Room {
    /// Starts the room's task; the document is loaded before any command runs.
    pub fn spawn(meta: SessionMeta, cx: RoomContext, hub: Arc<Hub>) -> RoomHandle {
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
        let room_hub = hub.clone();
        let id = meta.id;
        // Boxed, and built outside the task: the task's own future then holds a
        // pointer, not the start-up arguments, for as long as the room lives.
        let load = Box::pin(Room::load(meta, cx, hub, stats));
        tokio::spawn(async move {
            match load.await {
                Ok(room) => room.run(queue).await,
                Err(e) => {
                    tracing::error!(session = %id, error = %e, "loading the session failed");
                    room_hub.remove_room(id, &handle_stats, &queue);
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
        hub: Arc<Hub>,
        stats: Arc<RoomStats>,
    ) -> Result<Box<Self>, crate::storage::StorageError> {
        let storage = cx.storage.clone();
        let id = meta.id;
        let stored = blocking(move || storage.load_document(id)).await?;
        let (doc, skipped) = SessionDoc::from_updates(stored.updates_in_order());
        if skipped > 0 {
            tracing::warn!(session = %id, skipped, "stored updates that did not apply were skipped");
        }
        let updates_since_snapshot = stored.updates.len();
        let mut room = Box::new(Room {
            awareness: Awareness::new(doc.doc().clone()),
            code_len_bound: doc.code_len_utf16() as usize,
            doc,
            unapplied: Vec::new(),
            apply_due: None,
            meta,
            cx,
            hub,
            stats,
            connections: Connections::default(),
            updates_since_snapshot,
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
        tracing::debug!(session = %id, updates = room.updates_since_snapshot, "session loaded");
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
        // One timer for the room's life, moved only when the next deadline
        // changes: a fresh one per command costs a timer-wheel insert and removal
        // for every edit.
        let timer = tokio::time::sleep_until(next_sweep);
        tokio::pin!(timer);
        loop {
            let unload_at = self
                .empty_since
                .map(|since| since + self.cx.limits.room_unload_grace);
            let wake_at = [unload_at, self.apply_due]
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
                        Box::pin(self.snapshot()).await;
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
                    if unload_at.is_some_and(|at| now >= at) {
                        if self.connections.is_empty() {
                            Box::pin(self.snapshot()).await;
                            if self.hub.remove_room(self.meta.id, &self.stats, &queue) {
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
                outbound,
                reply,
            } => {
                let limit = self.cx.limits.max_connections_per_session;
                if self.connections.len() >= limit {
                    let _ = reply.send(Err(JoinRefused {
                        code: close::TRY_AGAIN_LATER,
                        reason: format!("session is full ({limit} connections)"),
                        retry: false,
                    }));
                    return;
                }
                // Our state vector first, then everyone's presence, one message a frame.
                self.apply_unapplied();
                let step1 = protocol::encode_sync_step1(&self.doc.state_vector());
                let _ = outbound.try_send(OutFrame::Binary(step1.into()));
                if let Some(states) = self.presence_frame() {
                    let _ = outbound.try_send(OutFrame::Binary(states));
                }
                self.connections.insert(
                    conn,
                    Connection {
                        outbound,
                        clients: Vec::new(),
                    },
                );
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
                ClientMessage::Awareness(update, raw) => self.apply_presence(conn, update, raw),
                ClientMessage::AwarenessQuery => {
                    if let Some(states) = self.presence_frame() {
                        self.send_to(conn, states);
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

    /// Size check, stored append, relay; applied later (see the module doc).
    async fn accept_updates(&mut self, conn: ConnId, updates: Vec<ReceivedUpdate>) {
        let incoming: usize = updates.iter().map(|update| update.len()).sum();
        let limit = self.cx.limits.max_document_bytes;
        // An update cannot add more text than its own size, so this bound is safe
        // without applying it first (yrs cannot roll an applied update back).
        // Only near the limit is the exact length needed.
        if self.code_len_bound + incoming > limit {
            self.apply_unapplied();
            if self.code_len_bound + incoming > limit {
                tracing::warn!(session = %self.meta.id, conn, incoming, "update rejected: document too large");
                self.close_connection(
                    conn,
                    close::DOCUMENT_TOO_LARGE,
                    &format!("document size limit exceeded ({limit} bytes)"),
                );
                return;
            }
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
            tracing::error!(session = %self.meta.id, error = %e, "update not stored; connection closed");
            self.close_connection(conn, close::INTERNAL_ERROR, "storage failure; reconnect");
            return;
        }
        self.code_len_bound += incoming;
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
        if self.updates_since_snapshot >= SNAPSHOT_EVERY {
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
        let (code_len, language) = self.doc.code_len_and_language();
        self.code_len_bound = code_len as usize;
        if let Some(language) = language.filter(|l| Some(*l) != self.stats.language()) {
            self.stats.set_language(language);
            let storage = self.cx.storage.clone();
            let id = self.meta.id;
            tokio::spawn(async move {
                if let Err(e) = blocking(move || storage.set_language(id, language)).await {
                    tracing::error!(session = %id, error = %e, "storing the language failed");
                }
            });
        }
    }

    async fn persist(&mut self, updates: Vec<Vec<u8>>) -> Result<(), crate::storage::StorageError> {
        let at_ms = now_ms();
        let count = updates.len();
        let records = updates
            .into_iter()
            .map(|update| UpdateRecord {
                session: self.meta.id,
                at_ms,
                update,
            })
            .collect();
        self.cx.writer.append(records).await?;
        self.updates_since_snapshot += count;
        self.stats.last_activity_ms.store(at_ms, Ordering::Relaxed);
        Ok(())
    }

    /// Stores the whole document as the session's snapshot (compaction for fast
    /// loading; the update log itself is kept for playback).
    async fn snapshot(&mut self) {
        self.apply_unapplied();
        if self.updates_since_snapshot == 0 {
            return;
        }
        let storage = self.cx.storage.clone();
        let id = self.meta.id;
        let state = self.doc.snapshot();
        match blocking(move || storage.store_snapshot(id, &state)).await {
            Ok(_) => self.updates_since_snapshot = 0,
            Err(e) => tracing::error!(session = %id, error = %e, "storing a snapshot failed"),
        }
    }

    fn apply_presence(
        &mut self,
        conn: ConnId,
        update: yrs::sync::awareness::AwarenessUpdate,
        raw: Vec<u8>,
    ) {
        let announced: Vec<ClientID> = update.clients.keys().copied().collect();
        match self.awareness.apply_update_summary(update) {
            Ok(Some(summary)) => {
                if let Some(connection) = self.connections.get_mut(conn) {
                    for client in announced {
                        if summary.removed.contains(&client) {
                            connection.forget(client);
                        } else {
                            connection.announce(client);
                        }
                    }
                }
                // To everyone, the sender included: y-websocket clients treat
                // their own echoed presence as a sign the connection is alive.
                let frame: Bytes = protocol::encode_awareness_bytes(&raw).into();
                self.broadcast_except(ConnId::MAX, &frame);
            }
            Ok(None) => {}
            Err(e) => tracing::debug!(session = %self.meta.id, conn, error = %e, "bad presence"),
        }
    }

    /// Everyone's current presence as one frame, if anyone has some.
    fn presence_frame(&self) -> Option<Bytes> {
        let update = self.awareness.update().ok()?;
        (!update.clients.is_empty()).then(|| protocol::encode_awareness(&update).into())
    }

    fn remove_presence(&mut self, clients: Vec<ClientID>) {
        if clients.is_empty() {
            return;
        }
        for client in &clients {
            self.awareness.remove_state(*client);
        }
        if let Ok(update) = self.awareness.update_with_clients(clients) {
            let frame: Bytes = protocol::encode_awareness(&update).into();
            self.broadcast_except(ConnId::MAX, &frame);
        }
    }

    fn expire_stale_presence(&mut self) {
        let now = now_ms();
        let stale: Vec<ClientID> = self
            .awareness
            .iter()
            .filter(|(_, state)| state.data.is_some())
            .filter(|(_, state)| {
                now.saturating_sub(state.last_updated) > AWARENESS_TIMEOUT.as_millis() as u64
            })
            .map(|(client, _)| client)
            .collect();
        for connection in self.connections.iter_mut() {
            for client in &stale {
                connection.forget(*client);
            }
        }
        self.remove_presence(stale);
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

    /// A connection whose queue is full is too slow: dropping its sender ends its
    /// task, and the client reconnects and resyncs. One whose task already ended
    /// (its Leave is on the way) is simply forgotten.
    fn drop_unreachable(&mut self, conn: ConnId, too_slow: bool) {
        if too_slow {
            tracing::warn!(session = %self.meta.id, conn, "connection too slow; dropped");
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
        if let Some(connection) = self.connections.remove(conn) {
            self.remove_presence(connection.clients);
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

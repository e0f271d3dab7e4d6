//! A room's task: the thin async shell around its [`RoomState`]. One task per
//! loaded session takes the room's commands one at a time (so every client sees
//! one order of events), feeds them to the state, and carries out the effects:
//! queueing frames to connections, storing updates and snapshots, publishing
//! figures, unloading. Every decision is the state's; this module only does IO.

use super::{
    close,
    state::{AuthoredUpdate, Effect, Effects, Lifecycle, Loaded, RoomState, StoreOutcome},
    JoinRefused, OutFrame, Outbound, Peers, RoomCommand, RoomHandle, RoomRegistry, RoomStats,
};
use crate::{
    domain::{time::now_ms, Limits, SessionId, SessionMeta},
    server::{
        blocking::blocking,
        health::StorageHealth,
        metrics::Metrics,
        persist::UpdateWriter,
        queue::{self, QueueReceiver, TrySendError},
    },
    storage::{Storage, StorageError, StoredDocument, UpdateRecord},
    sync::schema::DocumentKind,
};
use std::sync::{atomic::Ordering, Arc};
use tokio::time::Instant;

/// Commands queued to a room before senders wait.
const ROOM_QUEUE_CAPACITY: usize = 1024;

/// Rooms' timers fire on one shared grid of this step (see [`on_timer_grid`]).
const TIMER_GRID: std::time::Duration = std::time::Duration::from_millis(50);

/// `deadline`, rounded up to the next point of a grid every room shares.
///
/// Why: each room's timer (applying edits half a second after they arrive,
/// presence sweeps, pings) would otherwise fire at its own moment, and every
/// firing that finds the server asleep costs a wake-up, which on the 2-core
/// benchmark machine costs more than the work it does. On the grid, the rooms
/// due in the same 50 ms are served in one wake-up. Nothing a room times needs
/// to be sharper than that, and a deadline is never met early.
fn on_timer_grid(deadline: std::time::Instant) -> Instant {
    static ORIGIN: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
    let origin = *ORIGIN.get_or_init(std::time::Instant::now);
    let step = TIMER_GRID.as_nanos();
    let steps = deadline
        .saturating_duration_since(origin)
        .as_nanos()
        .div_ceil(step);
    let on_grid = u64::try_from(steps * step)
        .ok()
        .and_then(|nanos| origin.checked_add(std::time::Duration::from_nanos(nanos)))
        .unwrap_or(deadline);
    Instant::from_std(on_grid)
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
    /// The other instances on the same storage (cluster mode); None with
    /// embedded storage.
    pub peers: Option<Arc<dyn Peers>>,
}

/// Forgets the room in the registry when its task ends however it ends, a
/// panic included: the next join then loads the session afresh from storage.
struct Registration {
    registry: Arc<dyn RoomRegistry>,
    id: SessionId,
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

/// What the task does with a room's effects.
struct Room {
    state: RoomState,
    cx: RoomContext,
    registry: Arc<dyn RoomRegistry>,
    stats: Arc<RoomStats>,
    /// Each connection's outgoing queue, in the state's connection order or not.
    outlets: Vec<(super::ConnId, Outbound)>,
    /// Reused for every input.
    effects: Effects,
    /// The ticket of following the session's shared log (cluster mode).
    following: Option<u64>,
}

/// Whether the room's task goes on after its effects were carried out.
enum Next {
    Continue,
    Unloaded,
}

/// Starts a room's task; the document is loaded before any command runs.
///
/// `to_record`: the room is loaded only to record events in a notes document;
/// it then reads the stored document only when someone joins.
pub fn spawn(
    meta: SessionMeta,
    cx: RoomContext,
    registry: Arc<dyn RoomRegistry>,
    to_record: bool,
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
    let id = meta.id;
    let registration = Registration {
        registry: registry.clone(),
        id,
        stats: stats.clone(),
    };
    // Boxed, and built outside the task: the task's own future then holds a
    // pointer, not the start-up arguments, for as long as the room lives.
    let load = Box::pin(Room::load(
        meta,
        cx,
        registry.clone(),
        stats.clone(),
        to_record,
    ));
    tokio::spawn(async move {
        let _registration = registration;
        match load.await {
            Ok(room) => room.run(queue).await,
            Err(e) => {
                tracing::error!(session = %id, error = %e, "loading the session failed");
                registry.remove_if_idle(id, &stats, &queue);
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

impl Room {
    async fn load(
        meta: SessionMeta,
        cx: RoomContext,
        registry: Arc<dyn RoomRegistry>,
        stats: Arc<RoomStats>,
        to_record: bool,
    ) -> Result<Box<Self>, StorageError> {
        let storage = cx.storage.clone();
        let id = meta.id;
        // The record as stored now: it may have changed (ended, deleted) since
        // the caller read it.
        let (meta, stored) = blocking(move || {
            let meta = storage
                .session(id)?
                .ok_or_else(|| StorageError(format!("session {id} no longer exists")))?;
            let unread = to_record && meta.notes_of.is_some();
            let stored = if unread {
                StoredDocument {
                    snapshot: None,
                    snapshot_seq: 0,
                    updates: Vec::new(),
                    history_bytes: meta.history_bytes,
                    log_position: None,
                }
            } else {
                storage.load_document(id)?
            };
            Ok::<_, StorageError>((meta, stored))
        })
        .await?;
        let mut effects = Effects::new();
        let kind = if meta.notes_of.is_some() {
            DocumentKind::Notes
        } else {
            DocumentKind::Session
        };
        let record = Loaded {
            id,
            kind,
            language: meta.language,
            ended: meta.ended,
            unread: to_record && kind == DocumentKind::Notes,
        };
        let state = RoomState::load(
            record,
            stored,
            cx.limits.clone(),
            std::time::Instant::now(),
            &mut effects,
        );
        if let Some(language) = state.language() {
            stats.set_language(language);
        }
        let mut room = Box::new(Room {
            state,
            cx,
            registry,
            stats,
            outlets: Vec::new(),
            effects: Effects::new(),
            following: None,
        });
        // A new session's first update (its language) must be stored before
        // anyone can join: a failure here is a failure to load.
        for effect in effects {
            if let Effect::Store(updates) = effect {
                let stored = room.persist(updates).await;
                let outcome = room.outcome(&stored);
                room.state
                    .stored(outcome, std::time::Instant::now(), &mut room.effects);
                stored?;
            }
        }
        // Nobody is connected yet: what storing relayed goes to nobody.
        room.effects.clear();
        room.follow_log();
        tracing::debug!(session = %id, "session loaded");
        Ok(room)
    }

    /// Rare work (snapshots, unloading) is awaited boxed: an idle room's task
    /// then holds only what its hot path needs, and thousands of idle rooms
    /// are the server's biggest memory cost after sockets.
    async fn run(mut self: Box<Self>, mut queue: QueueReceiver<RoomCommand>) {
        // One timer for the room's life, moved only when the next deadline
        // changes: a fresh one per command costs a timer-wheel insert and
        // removal for every edit.
        let timer = tokio::time::sleep_until(on_timer_grid(self.state.next_deadline()));
        tokio::pin!(timer);
        loop {
            let wake_at = on_timer_grid(self.state.next_deadline());
            if timer.deadline() != wake_at {
                timer.as_mut().reset(wake_at);
            }
            let next = tokio::select! {
                command = queue.recv() => match command {
                    Some(RoomCommand::Shutdown { done }) => {
                        self.state.shutdown(&mut self.effects);
                        Box::pin(self.carry_out(&queue)).await;
                        let _ = done.send(());
                        return;
                    }
                    Some(command) => {
                        if matches!(command, RoomCommand::Join { .. }) && self.state.needs_document() {
                            Box::pin(self.read_document()).await;
                        }
                        self.handle(command);
                        self.carry_out(&queue).await
                    }
                    None => return,
                },
                () = &mut timer => {
                    self.state.tick(std::time::Instant::now(), now_ms(), &mut self.effects);
                    let next = Box::pin(self.carry_out(&queue)).await;
                    // Drained: a room gives its buffer back on its timer (at
                    // least every presence sweep), not per command, so an idle
                    // room keeps none (thousands of them, 256 bytes each) and a
                    // busy one does not allocate one per frame.
                    self.effects = Effects::new();
                    next
                },
            };
            if let Next::Unloaded = next {
                if self.state.lifecycle() == Lifecycle::Deleted {
                    tracing::debug!(session = %self.state.id(), "deleted session unloaded");
                    let reason = "the session was deleted";
                    Box::pin(refuse_all(queue, close::SESSION_NOT_FOUND, reason, false)).await;
                    return;
                }
                tracing::debug!(session = %self.state.id(), "idle session unloaded");
                Box::pin(refuse_all(
                    queue,
                    close::TRY_AGAIN_LATER,
                    "session reloading",
                    true,
                ))
                .await;
                return;
            }
        }
    }

    /// Reads the stored document for a room loaded only to record (see
    /// `spawn`); on failure the room stays partial and the join is refused by
    /// closing with 1011 once it has joined.
    async fn read_document(&mut self) {
        let storage = self.cx.storage.clone();
        let id = self.state.id();
        match blocking(move || storage.load_document(id)).await {
            Ok(stored) => {
                self.state.read_document(stored);
                self.follow_log();
            }
            Err(e) => {
                self.cx.health.count_error();
                tracing::error!(session = %id, error = %e, "reading the notes failed");
            }
        }
    }

    /// With a log shared with other instances, follows it from where the
    /// room's document stands, so their edits reach this room.
    fn follow_log(&mut self) {
        if let (Some(peers), Some(position)) = (&self.cx.peers, self.state.log_position()) {
            let ticket = peers.follow(self.state.id(), position);
            if let Some(old) = self.following.replace(ticket) {
                peers.unfollow(self.state.id(), old);
            }
        }
    }

    /// Feeds a command to the state (its effects are carried out next).
    fn handle(&mut self, command: RoomCommand) {
        let now = std::time::Instant::now();
        match command {
            RoomCommand::Join {
                conn,
                ip,
                role,
                outbound,
                reply,
            } => match self.state.join(conn, ip, role, now_ms(), &mut self.effects) {
                Ok(()) => {
                    self.outlets.push((conn, outbound));
                    let _ = reply.send(Ok(()));
                }
                Err(refused) => {
                    let _ = reply.send(Err(JoinRefused {
                        code: refused.code,
                        reason: refused.reason,
                        retry: false,
                    }));
                }
            },
            RoomCommand::Frame { conn, messages } => {
                self.state
                    .frame(conn, messages, now, now_ms(), &mut self.effects)
            }
            RoomCommand::Leave { conn } => self.state.leave(conn, now, &mut self.effects),
            RoomCommand::SetEnded(ended) => self.state.set_ended(ended, &mut self.effects),
            RoomCommand::Delete => self.state.delete(&mut self.effects),
            RoomCommand::Record(events) => self.state.record_events(events, now, &mut self.effects),
            RoomCommand::Logged(entries) => self.state.logged(entries, now, &mut self.effects),
            RoomCommand::PeerPresence(frame) => {
                self.state
                    .peer_presence(&frame, now_ms(), &mut self.effects)
            }
            RoomCommand::Shutdown { .. } => unreachable!("handled by run"),
        }
    }

    /// Carries out the pending effects in order, feeding their outcomes
    /// (stored, unreachable connections) back to the state.
    async fn carry_out(&mut self, queue: &QueueReceiver<RoomCommand>) -> Next {
        let mut next = Next::Continue;
        while let Some(effect) = self.effects.pop_front() {
            match effect {
                Effect::Send { to, frame } => {
                    if let Some(error) = self
                        .outlet(to)
                        .and_then(|out| out.try_send(OutFrame::Binary(frame)).err())
                    {
                        self.unreachable(to, &error);
                    }
                }
                Effect::Broadcast { except, frame } => self.broadcast(except, frame),
                Effect::Close {
                    conn,
                    code,
                    reason,
                    discard_backlog,
                } => {
                    if let Some(out) = self.take_outlet(conn) {
                        let last = OutFrame::Close(code, reason);
                        if discard_backlog {
                            out.close_with(last);
                        } else {
                            let _ = out.try_send(last);
                        }
                    }
                }
                Effect::Forget(conn) => {
                    self.take_outlet(conn);
                }
                Effect::Store(updates) => {
                    // Boxed: an update is in flight only briefly; kept inline,
                    // its state would make every idle room's task bigger.
                    let stored = Box::pin(self.persist(updates)).await;
                    if let Err(e) = &stored {
                        self.cx.health.count_error();
                        tracing::error!(session = %self.state.id(), error = %e, "update not stored");
                    }
                    let now = std::time::Instant::now();
                    let outcome = self.outcome(&stored);
                    self.state.stored(outcome, now, &mut self.effects);
                }
                Effect::Snapshot { state, covers } => {
                    Box::pin(self.store_snapshot(state, covers)).await
                }
                Effect::Publish(frame) => {
                    if let Some(peers) = &self.cx.peers {
                        peers.publish_presence(self.state.id(), &frame);
                    }
                }
                Effect::CheckRecord => Box::pin(self.check_record()).await,
                Effect::PingAll => {
                    for (_, out) in &self.outlets {
                        let _ = out.try_send(OutFrame::Ping);
                    }
                }
                Effect::Language(language) => self.publish_language(language),
                Effect::Record(events) => self.registry.clone().record(self.state.id(), events),
                Effect::Connections(count) => {
                    self.stats.connections.store(count, Ordering::Relaxed);
                    if let Some(peers) = &self.cx.peers {
                        peers.publish_connections(self.state.id(), count);
                    }
                }
                Effect::Unload if self.state.lifecycle() == Lifecycle::Deleted => {
                    // Nothing to keep: storage is gone already.
                    self.registry.forget(self.state.id(), &self.stats);
                    next = Next::Unloaded;
                }
                Effect::Unload => {
                    if self
                        .registry
                        .remove_if_idle(self.state.id(), &self.stats, queue)
                    {
                        next = Next::Unloaded;
                    } else {
                        self.state.unload_refused(std::time::Instant::now());
                    }
                }
            }
        }
        next
    }

    fn outlet(&self, conn: super::ConnId) -> Option<&Outbound> {
        self.outlets
            .iter()
            .find(|(id, _)| *id == conn)
            .map(|(_, out)| out)
    }

    fn take_outlet(&mut self, conn: super::ConnId) -> Option<Outbound> {
        let index = self.outlets.iter().position(|(id, _)| *id == conn)?;
        Some(self.outlets.swap_remove(index).1)
    }

    fn broadcast(&mut self, except: Option<super::ConnId>, frame: bytes::Bytes) {
        let failed: Vec<(super::ConnId, bool)> = self
            .outlets
            .iter()
            .filter(|(id, _)| Some(*id) != except)
            .filter_map(|(id, out)| {
                out.try_send(OutFrame::Binary(frame.clone()))
                    .err()
                    .map(|e| (*id, matches!(e, TrySendError::Full(_))))
            })
            .collect();
        let now = std::time::Instant::now();
        for (conn, too_slow) in failed {
            self.state
                .unreachable(conn, too_slow, now, &mut self.effects);
        }
    }

    fn unreachable(&mut self, conn: super::ConnId, error: &TrySendError<OutFrame>) {
        let too_slow = matches!(error, TrySendError::Full(_));
        self.state
            .unreachable(conn, too_slow, std::time::Instant::now(), &mut self.effects);
    }

    /// What a store's result means for the sender: a failure of a storage
    /// whose failures pass (Redis) is "try again later".
    fn outcome(&self, stored: &Result<(), StorageError>) -> StoreOutcome {
        match stored {
            Ok(()) => StoreOutcome::Stored,
            Err(_) if !self.cx.storage.failures_are_final() => StoreOutcome::Unavailable,
            Err(_) => StoreOutcome::Failed,
        }
    }

    async fn persist(&mut self, updates: Vec<AuthoredUpdate>) -> Result<(), StorageError> {
        let at_ms = now_ms();
        let session = self.state.id();
        let count = updates.len();
        let records: Vec<UpdateRecord> = updates
            .into_iter()
            .map(|AuthoredUpdate { author, bytes }| UpdateRecord {
                session,
                at_ms,
                author,
                update: bytes,
            })
            .collect();
        self.cx.writer.append(records).await?;
        self.cx
            .metrics
            .ws_updates_applied
            .fetch_add(count as u64, Ordering::Relaxed);
        self.stats.last_activity_ms.store(at_ms, Ordering::Relaxed);
        Ok(())
    }

    /// Stores a snapshot (compaction for fast loading; the update log itself is
    /// kept for playback); `/api/health` reports failures while they last.
    async fn store_snapshot(&mut self, snapshot: Vec<u8>, covers: Option<String>) {
        let storage = self.cx.storage.clone();
        let id = self.state.id();
        let result = blocking(move || match covers {
            Some(position) => storage.store_snapshot_at(id, &snapshot, &position),
            None => storage.store_snapshot(id, &snapshot),
        })
        .await;
        let was_failing = self.state.snapshot_failing();
        if let Err(e) = &result {
            self.cx.health.count_error();
            tracing::error!(session = %id, error = %e, "storing a snapshot failed");
        }
        self.state
            .snapshot_stored(result.is_ok(), std::time::Instant::now());
        if was_failing != self.state.snapshot_failing() {
            self.cx.health.snapshot_failing(!was_failing);
        }
    }

    /// A peer's edit changed the ended flag: the session's record decides
    /// (read now; a failed read leaves things as they are until the next).
    async fn check_record(&mut self) {
        let storage = self.cx.storage.clone();
        let id = self.state.id();
        match blocking(move || storage.session(id)).await {
            Ok(Some(meta)) => self.state.set_ended(meta.ended, &mut self.effects),
            Ok(None) => self.state.delete(&mut self.effects),
            Err(e) => {
                self.cx.health.count_error();
                tracing::error!(session = %id, error = %e, "reading the session's record failed");
            }
        }
    }

    /// A client changed the language: REST and storage follow the document.
    fn publish_language(&self, language: crate::domain::Language) {
        self.stats.set_language(language);
        let storage = self.cx.storage.clone();
        let id = self.state.id();
        tokio::spawn(async move {
            if let Err(e) = blocking(move || storage.set_language(id, language)).await {
                tracing::error!(session = %id, error = %e, "storing the language failed");
            }
        });
    }
}

impl Drop for Room {
    fn drop(&mut self) {
        if let (Some(peers), Some(ticket)) = (&self.cx.peers, self.following) {
            peers.unfollow(self.state.id(), ticket);
        }
        // A room that goes away no longer counts as failing to snapshot.
        if self.state.snapshot_failing() {
            self.cx.health.snapshot_failing(false);
        }
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant as StdInstant};

    #[test]
    fn deadlines_move_to_a_shared_grid_never_earlier_and_at_most_one_step_later() {
        let now = StdInstant::now();
        for offset_ms in [0, 1, 49, 50, 51, 499, 500, 5_000, 3_600_000] {
            let deadline = now + Duration::from_millis(offset_ms);
            let at = on_timer_grid(deadline).into_std();
            assert!(at >= deadline, "{offset_ms} ms: fires early");
            assert!(
                at - deadline <= TIMER_GRID,
                "{offset_ms} ms: fires more than a step late"
            );
        }
        // Two rooms due within one step wake together.
        let first = on_timer_grid(now + Duration::from_millis(500)).into_std();
        let step_start = first - TIMER_GRID + Duration::from_millis(1);
        assert_eq!(on_timer_grid(step_start).into_std(), first);
        assert_eq!(
            on_timer_grid(first).into_std(),
            first,
            "a grid point stays put"
        );
    }
}

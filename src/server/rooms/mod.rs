//! Rooms: the live, in-memory side of loaded sessions, and what the rest of the
//! server uses to talk to them.
//!
//! - [`hub`]: which sessions are loaded, joining them, per-address counts.
//! - [`state`]: one room's decisions, sans IO ([`state::RoomState`]: input in,
//!   effects out), unit-tested for every bound a room enforces.
//! - [`task`]: the thin async task around a room's state: its command queue,
//!   timers, the connections' outgoing queues (and sockets) and storage.
//! - [`presence`] and [`rules`]: the presence table and the size, history,
//!   admission and snapshot rules the state consults.
//! - [`room_doc`]: the room's document, packed into its encoding while quiet.
//!
//! This module itself holds the vocabulary shared by the hub, the room task and
//! the WebSocket endpoint: connection ids, outgoing frames, commands, stats.

pub mod hub;
pub mod presence;
pub mod room_doc;
pub mod rules;
pub mod state;
pub mod task;

use super::{
    queue::{self, QueueReceiver, QueueSender, TrySendError},
    shared_socket::{SharedSocket, Written},
};
use crate::domain::{Language, SessionId};
use bytes::Bytes;
use std::{
    net::IpAddr,
    sync::{
        atomic::{AtomicU64, AtomicU8, AtomicUsize, Ordering},
        Arc,
    },
};
use tokio::sync::oneshot;

/// WebSocket close codes (shared with the browser).
pub use crate::domain::close_codes as close;
pub use crate::server::access::Role;
pub use task::RoomContext;

/// Identifies one WebSocket connection.
pub type ConnId = u64;

/// What a room sends to a connection.
#[derive(Debug, Clone)]
pub enum OutFrame {
    Binary(Bytes),
    /// Time to ping the client (the connection task tracks the answer).
    Ping,
    Close(u16, String),
    /// The room wrote a frame straight into the socket and not all of it went
    /// out: the connection task finishes the write.
    Flush,
}

impl OutFrame {
    /// Bytes it holds while queued.
    pub fn weight(&self) -> usize {
        match self {
            OutFrame::Binary(bytes) => bytes.len(),
            OutFrame::Ping | OutFrame::Close(..) | OutFrame::Flush => 0,
        }
    }
}

/// A room's way to one connection: its outgoing queue, and its socket, which
/// the room writes relayed frames into directly when nothing waits before them
/// (see [`SharedSocket`]).
#[derive(Clone)]
pub struct Outbound {
    queue: QueueSender<OutFrame>,
    socket: Option<Arc<SharedSocket>>,
}

impl Outbound {
    /// Sends `frame` straight into the socket if it can go now, else queues
    /// it; gives it back if the queue is full or closed.
    pub fn try_send(&self, frame: OutFrame) -> Result<(), TrySendError<OutFrame>> {
        if let (OutFrame::Binary(bytes), Some(socket)) = (&frame, &self.socket) {
            match socket.try_write(bytes, || self.queue.is_empty()) {
                Written::Sent => return Ok(()),
                // The queue was empty, and a flush weighs nothing: it fits.
                Written::Partly => return self.queue.try_send(OutFrame::Flush),
                Written::NotNow => {}
            }
        }
        self.queue.try_send(frame)
    }

    /// Drops what is queued, queues `last` and closes the queue.
    pub fn close_with(&self, last: OutFrame) {
        self.queue.close_with(last)
    }
}

/// Frames queued to one connection before it counts as too slow (besides the
/// byte bound, `--max-outbound-bytes`); it is closed and reconnects and
/// resyncs, so nothing is lost.
pub const OUTBOUND_CAPACITY: usize = 512;

/// A connection's outgoing queue, bounded in frames and in bytes, and the
/// room's end of it (which may write into `socket` directly).
pub fn outbound_queue(
    max_bytes: usize,
    socket: Option<Arc<SharedSocket>>,
) -> (Outbound, QueueReceiver<OutFrame>) {
    let (queue, receiver) =
        queue::bounded_by_weight(OUTBOUND_CAPACITY, max_bytes, OutFrame::weight);
    (Outbound { queue, socket }, receiver)
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
        role: Role,
        outbound: Outbound,
        reply: oneshot::Sender<Result<(), JoinRefused>>,
    },
    Frame {
        conn: ConnId,
        messages: Vec<crate::sync::protocol::ClientMessage>,
    },
    Leave {
        conn: ConnId,
    },
    /// The interview was ended (`true`) or reopened (already stored in the
    /// session's record).
    SetEnded(bool),
    /// The session was deleted from storage: close everyone, unload.
    Delete,
    /// Record server events (JSON objects) in a notes document.
    Record(Vec<yrs::Any>),
    /// Entries of the session's log read back from shared storage (cluster
    /// mode): other instances' edits, and this one's own.
    Logged(Vec<LoggedEntry>),
    /// A presence frame another instance relayed to its connections.
    PeerPresence(Bytes),
    Shutdown {
        done: oneshot::Sender<()>,
    },
}

/// An entry of a session's log shared by several instances, as a room gets it.
#[derive(Debug, Clone, PartialEq)]
pub struct LoggedEntry {
    /// Where the log stands once this entry is in (see `Peers::follow`).
    pub position: String,
    /// Stored by another instance (new here), not by this one.
    pub from_peer: bool,
    /// A yrs v1 update.
    pub update: Vec<u8>,
}

/// A change to a session's record that instances with the session open must
/// act on (the instance that made it tells its own room directly).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordChange {
    Ended,
    Reopened,
    Deleted,
}

impl RecordChange {
    /// What a room that has the session open is told.
    pub fn command(self) -> RoomCommand {
        match self {
            RecordChange::Ended => RoomCommand::SetEnded(true),
            RecordChange::Reopened => RoomCommand::SetEnded(false),
            RecordChange::Deleted => RoomCommand::Delete,
        }
    }
}

/// The other instances sharing this one's storage (cluster mode), as rooms
/// and the session service use them. Not there with embedded storage.
pub trait Peers: Send + Sync {
    /// Follows a session's log from `position` on: its new entries come to
    /// the loaded room as [`RoomCommand::Logged`]. Returns the ticket that
    /// stops following.
    fn follow(&self, id: SessionId, position: &str) -> u64;
    fn unfollow(&self, id: SessionId, ticket: u64);
    /// Relays a presence frame (a room's own connections') to the instances
    /// with the session open. Lossy: clients renew their presence.
    fn publish_presence(&self, id: SessionId, frame: &[u8]);
    /// Tells the other instances a session's record changed. Blocking: it
    /// waits for Redis.
    fn publish_change(
        &self,
        id: SessionId,
        change: RecordChange,
    ) -> crate::storage::StorageResult<()>;
    /// Tells the others how many connections this instance has to a session.
    fn publish_connections(&self, id: SessionId, count: usize);
    /// How many connections the other live instances have to a session.
    /// Blocking: it asks Redis.
    fn connections_elsewhere(&self, id: SessionId) -> crate::storage::StorageResult<usize>;
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

/// Where rooms are registered (the hub), as a room sees it: so it can take
/// itself off the list when it unloads or its task ends.
pub trait RoomRegistry: Send + Sync {
    /// Unregisters the room if it is still the registered one and nothing is
    /// queued to it (atomically, so no join slips in between); true if it did.
    fn remove_if_idle(
        &self,
        id: SessionId,
        stats: &Arc<RoomStats>,
        queue: &QueueReceiver<RoomCommand>,
    ) -> bool;
    /// Unregisters the room if it is still the registered one.
    fn forget(&self, id: SessionId, stats: &Arc<RoomStats>);
    /// Records `events` in the notes document of session `id` (in the
    /// background: the caller does not wait for the notes room).
    fn record(self: Arc<Self>, id: SessionId, events: Vec<yrs::Any>);
}

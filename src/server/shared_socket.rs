//! A connection's WebSocket, shared by the connection's task and its room.
//!
//! The task reads the socket and sends what the room queues for it; the room
//! may also write a frame straight into the socket ([`SharedSocket::try_write`])
//! when nothing is queued or half-sent before it. Why: relaying an edit to
//! three peers through their queues woke three connection tasks, each to make
//! one `send`; on this project's 2-core benchmark machine those wake-ups and
//! polls were several percent of the server's CPU under load. The queue stays
//! for everything else: a frame that cannot go out at once, pings and closes,
//! and the per-connection bounds on what a slow reader may leave waiting.
//!
//! Order is kept by one rule: the room writes directly only while the socket is
//! *idle* (no frame of the task's is waiting to go out, nothing is left
//! half-written) and the connection's queue is empty, so every earlier frame is
//! already in the kernel. A direct write that cannot finish leaves the socket
//! sending and queues [`OutFrame::Flush`](super::rooms::OutFrame::Flush): the task
//! finishes it under its usual write deadline, and later frames queue up behind.
//!
//! Direct writes happen only on the single-threaded runtime (the default,
//! `--worker-threads 1`): there the task cannot be between taking a frame from
//! its queue and handing it to the socket while the room runs. With more
//! threads it could, and a direct write could overtake that frame, so rooms
//! queue everything.

use axum::extract::ws::{Message, WebSocket};
use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use std::{
    future::poll_fn,
    sync::{Mutex, MutexGuard},
    task::{Context, Poll, Waker},
};

pub struct SharedSocket {
    slot: Mutex<Slot>,
    /// Whether rooms may write directly (see the module docs).
    direct: bool,
}

struct Slot {
    socket: WebSocket,
    /// A frame is waiting to go out, or is half-written: the room must queue.
    sending: bool,
    /// The task stopped relaying (the connection is closing): the room must
    /// queue (and what it queues is never sent).
    retired: bool,
}

/// What [`SharedSocket::try_write`] did with a frame.
#[derive(Debug, PartialEq, Eq)]
pub enum Written {
    /// Into the kernel: on its way to the client.
    Sent,
    /// Handed to the socket but not all of it went out: the task must finish
    /// the write (queue [`OutFrame::Flush`](super::rooms::OutFrame::Flush)).
    Partly,
    /// Not taken: queue it.
    NotNow,
}

impl SharedSocket {
    pub fn new(socket: WebSocket) -> Self {
        let direct = tokio::runtime::Handle::try_current().is_ok_and(|runtime| {
            runtime.runtime_flavor() == tokio::runtime::RuntimeFlavor::CurrentThread
        });
        Self {
            slot: Mutex::new(Slot {
                socket,
                sending: false,
                retired: false,
            }),
            direct,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Slot> {
        self.slot.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The room's direct write of `frame`, if the socket is idle and
    /// `nothing_queued` says so of the connection's queue (asked only once
    /// the socket is known idle).
    pub fn try_write(&self, frame: &Bytes, nothing_queued: impl FnOnce() -> bool) -> Written {
        if !self.direct {
            return Written::NotNow;
        }
        let Ok(mut slot) = self.slot.try_lock() else {
            return Written::NotNow;
        };
        if slot.sending || slot.retired || !nothing_queued() {
            return Written::NotNow;
        }
        // Nobody is to be woken by this write: if it cannot finish, the task
        // is told to (with its own waker).
        let mut cx = Context::from_waker(Waker::noop());
        match slot.socket.poll_ready_unpin(&mut cx) {
            Poll::Ready(Ok(())) => {}
            Poll::Ready(Err(_)) | Poll::Pending => return Written::NotNow,
        }
        if slot
            .socket
            .start_send_unpin(Message::Binary(frame.clone()))
            .is_err()
        {
            // The connection is failing: its task finds out on its next read
            // or write and ends it; this frame is lost with it.
            slot.retired = true;
            return Written::Sent;
        }
        match slot.socket.poll_flush_unpin(&mut cx) {
            Poll::Ready(_) => Written::Sent,
            Poll::Pending => {
                slot.sending = true;
                Written::Partly
            }
        }
    }

    /// The task's next message from the client (`None`: the client went away).
    pub async fn recv(&self) -> Option<Result<Message, axum::Error>> {
        poll_fn(|cx| self.lock().socket.poll_next_unpin(cx)).await
    }

    /// Drives the task's own write: hands `unsent` (if any) to the socket once
    /// it is ready, then flushes, finishing a write the room left half done.
    /// The room queues until this is ready.
    pub fn poll_send(
        &self,
        unsent: &mut Option<Message>,
        cx: &mut Context<'_>,
    ) -> Poll<Result<(), axum::Error>> {
        let mut slot = self.lock();
        let polled = poll_send(&mut slot.socket, unsent, cx);
        slot.sending = polled.is_pending();
        polled
    }

    /// The task stops relaying (it is closing or gone): rooms queue from now
    /// on, and what they queue is never sent.
    pub fn retire(&self) {
        self.lock().retired = true;
    }
}

/// Hands `unsent` to the socket once it is ready, then flushes. Written
/// against `Sink` directly rather than with `socket.send(..)`, whose future
/// keeps the message twice across its awaits: that made every idle
/// connection's task over 100 bytes bigger.
fn poll_send(
    socket: &mut WebSocket,
    unsent: &mut Option<Message>,
    cx: &mut Context<'_>,
) -> Poll<Result<(), axum::Error>> {
    if let Some(message) = unsent.take() {
        match socket.poll_ready_unpin(cx) {
            Poll::Pending => {
                *unsent = Some(message);
                return Poll::Pending;
            }
            Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
            Poll::Ready(Ok(())) => socket.start_send_unpin(message)?,
        }
    }
    socket.poll_flush_unpin(cx)
}

//! A connection's outbox: the frames its room has queued for its socket.
//!
//! Bounded like a channel, but it allocates nothing while empty. A tokio mpsc
//! channel allocates its first 32-slot block up front (about 1.8 KiB per
//! connection with its header); with 10,000 idle connections that alone was
//! 17 MiB. The room pushes with [`OutboxSender::try_push`] and never waits: a
//! full outbox means the client is too slow, and the room drops it (it
//! reconnects and resyncs, losing nothing).

use super::room::OutFrame;
use std::{
    collections::VecDeque,
    future::poll_fn,
    sync::{Arc, Mutex, MutexGuard},
    task::{Poll, Waker},
};

/// Frames queued to one connection before it counts as too slow.
pub const OUTBOX_CAPACITY: usize = 512;
/// An outbox emptied after a burst gives its memory back if it grew past this.
const KEEP_CAPACITY: usize = 16;

#[derive(Default)]
struct Shared {
    frames: VecDeque<OutFrame>,
    /// The receiving task, waiting for a frame.
    waiting: Option<Waker>,
    senders: usize,
    receiver_gone: bool,
}

struct Outbox(Mutex<Shared>);

impl Outbox {
    fn lock(&self) -> MutexGuard<'_, Shared> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Why a frame was not queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PushError {
    /// The connection has [`OUTBOX_CAPACITY`] frames queued already.
    Full,
    /// The connection's task has ended.
    Closed,
}

/// The room's end. Cloning adds a sender; the receiver sees the outbox end when
/// every sender is gone.
pub struct OutboxSender(Arc<Outbox>);

/// The connection task's end.
pub struct OutboxReceiver(Arc<Outbox>);

/// A new, empty outbox.
pub fn outbox() -> (OutboxSender, OutboxReceiver) {
    let shared = Arc::new(Outbox(Mutex::new(Shared {
        senders: 1,
        ..Shared::default()
    })));
    (OutboxSender(shared.clone()), OutboxReceiver(shared))
}

impl OutboxSender {
    pub fn try_push(&self, frame: OutFrame) -> Result<(), PushError> {
        let waiting = {
            let mut shared = self.0.lock();
            if shared.receiver_gone {
                return Err(PushError::Closed);
            }
            if shared.frames.len() >= OUTBOX_CAPACITY {
                return Err(PushError::Full);
            }
            shared.frames.push_back(frame);
            shared.waiting.take()
        };
        // Woken outside the lock, so the receiver never finds it held.
        if let Some(waker) = waiting {
            waker.wake();
        }
        Ok(())
    }
}

impl Clone for OutboxSender {
    fn clone(&self) -> Self {
        self.0.lock().senders += 1;
        Self(self.0.clone())
    }
}

impl Drop for OutboxSender {
    fn drop(&mut self) {
        let waiting = {
            let mut shared = self.0.lock();
            shared.senders -= 1;
            if shared.senders > 0 {
                return;
            }
            shared.waiting.take()
        };
        if let Some(waker) = waiting {
            waker.wake();
        }
    }
}

impl OutboxReceiver {
    /// The next frame; `None` once the outbox is empty and every sender is gone.
    pub async fn recv(&mut self) -> Option<OutFrame> {
        poll_fn(|cx| {
            let mut shared = self.0.lock();
            if let Some(frame) = shared.frames.pop_front() {
                if shared.frames.is_empty() && shared.frames.capacity() > KEEP_CAPACITY {
                    shared.frames = VecDeque::new();
                }
                return Poll::Ready(Some(frame));
            }
            if shared.senders == 0 {
                return Poll::Ready(None);
            }
            match &mut shared.waiting {
                Some(waker) => waker.clone_from(cx.waker()),
                slot => *slot = Some(cx.waker().clone()),
            }
            Poll::Pending
        })
        .await
    }
}

impl Drop for OutboxReceiver {
    fn drop(&mut self) {
        let mut shared = self.0.lock();
        shared.receiver_gone = true;
        // Frames nobody will send: free them now, not when the room lets go.
        shared.frames = VecDeque::new();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(byte: u8) -> OutFrame {
        OutFrame::Binary(vec![byte].into())
    }

    fn bytes(frame: Option<OutFrame>) -> Option<Vec<u8>> {
        match frame {
            Some(OutFrame::Binary(b)) => Some(b.to_vec()),
            Some(OutFrame::Close(..)) => panic!("unexpected close"),
            None => None,
        }
    }

    #[tokio::test]
    async fn frames_arrive_in_order_then_none_when_senders_are_gone() {
        let (tx, mut rx) = outbox();
        let tx2 = tx.clone();
        tx.try_push(frame(1)).unwrap();
        tx2.try_push(frame(2)).unwrap();
        drop(tx);
        assert_eq!(bytes(rx.recv().await), Some(vec![1]));
        assert_eq!(bytes(rx.recv().await), Some(vec![2]));
        drop(tx2);
        assert_eq!(bytes(rx.recv().await), None);
    }

    #[tokio::test]
    async fn a_waiting_receiver_is_woken_by_a_push() {
        let (tx, mut rx) = outbox();
        let waiter = tokio::spawn(async move { bytes(rx.recv().await) });
        tokio::task::yield_now().await;
        tx.try_push(frame(7)).unwrap();
        assert_eq!(waiter.await.unwrap(), Some(vec![7]));
    }

    #[tokio::test]
    async fn a_waiting_receiver_is_woken_when_the_last_sender_drops() {
        let (tx, mut rx) = outbox();
        let waiter = tokio::spawn(async move { bytes(rx.recv().await) });
        tokio::task::yield_now().await;
        drop(tx);
        assert_eq!(waiter.await.unwrap(), None);
    }

    #[test]
    fn pushes_fail_when_full_or_when_the_receiver_is_gone() {
        let (tx, rx) = outbox();
        for i in 0..OUTBOX_CAPACITY {
            tx.try_push(frame(i as u8)).unwrap();
        }
        assert_eq!(tx.try_push(frame(0)), Err(PushError::Full));
        drop(rx);
        assert_eq!(tx.try_push(frame(0)), Err(PushError::Closed));
    }
}

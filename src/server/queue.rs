//! A bounded multi-producer, single-consumer queue that allocates nothing while
//! empty. Rooms receive their commands through one, connections their outgoing
//! frames through another, bounded in bytes as well as in items (a client that
//! does not read must not make the server hold more than that for it).
//!
//! Why not tokio's mpsc: it allocates its first 32-slot block up front, about
//! 1.5 to 1.8 KiB per channel. With 10,000 idle connections and 2,500 idle
//! sessions that was 21 MiB, a third of the server's memory. This queue costs
//! about 130 bytes until something is queued, and gives its buffer back when it
//! drains.

use std::{
    collections::VecDeque,
    future::{poll_fn, Future},
    sync::{Arc, Mutex, MutexGuard},
    task::{Poll, Waker},
};

struct Shared<T> {
    items: VecDeque<T>,
    capacity: usize,
    /// What the queued items weigh (bytes, for frames), and the most allowed.
    weight: usize,
    max_weight: usize,
    weigh: fn(&T) -> usize,
    /// The receiver, waiting for an item.
    receiver_waiting: Option<Waker>,
    /// Senders waiting for room.
    senders_waiting: Vec<Waker>,
    senders: usize,
    closed: bool,
}

struct Queue<T>(Mutex<Shared<T>>);

impl<T> Queue<T> {
    fn lock(&self) -> MutexGuard<'_, Shared<T>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Why [`QueueSender::try_send`] gave the item back.
#[derive(Debug, PartialEq, Eq)]
pub enum TrySendError<T> {
    /// The queue holds its capacity already.
    Full(T),
    /// The receiver has closed the queue or is gone.
    Closed(T),
}

/// A producer's end. Cloning adds a sender; the receiver sees the end of the
/// queue once it is empty and every sender is gone.
pub struct QueueSender<T>(Arc<Queue<T>>);

/// The consumer's end. Dropping it closes the queue.
pub struct QueueReceiver<T>(Arc<Queue<T>>);

/// A new, empty queue holding at most `capacity` items.
pub fn bounded<T>(capacity: usize) -> (QueueSender<T>, QueueReceiver<T>) {
    bounded_by_weight(capacity, usize::MAX, |_| 0)
}

/// A new, empty queue holding at most `capacity` items that weigh at most
/// `max_weight` together (by `weigh`). One item heavier than that still fits an
/// empty queue, so nothing is refused forever.
pub fn bounded_by_weight<T>(
    capacity: usize,
    max_weight: usize,
    weigh: fn(&T) -> usize,
) -> (QueueSender<T>, QueueReceiver<T>) {
    let queue = Arc::new(Queue(Mutex::new(Shared {
        items: VecDeque::new(),
        capacity: capacity.max(1),
        weight: 0,
        max_weight,
        weigh,
        receiver_waiting: None,
        senders_waiting: Vec::new(),
        senders: 1,
        closed: false,
    })));
    (QueueSender(queue.clone()), QueueReceiver(queue))
}

fn register(slot: &mut Option<Waker>, waker: &Waker) {
    match slot {
        Some(current) => current.clone_from(waker),
        None => *slot = Some(waker.clone()),
    }
}

impl<T> QueueSender<T> {
    /// Queues `item` if there is room, without waiting.
    pub fn try_send(&self, item: T) -> Result<(), TrySendError<T>> {
        let waiting = {
            let mut shared = self.0.lock();
            if shared.closed {
                return Err(TrySendError::Closed(item));
            }
            let weight = (shared.weigh)(&item);
            let too_heavy = !shared.items.is_empty()
                && shared.weight.saturating_add(weight) > shared.max_weight;
            if shared.items.len() >= shared.capacity || too_heavy {
                return Err(TrySendError::Full(item));
            }
            shared.weight += weight;
            shared.items.push_back(item);
            shared.receiver_waiting.take()
        };
        // Woken outside the lock, so the receiver never finds it held.
        if let Some(waker) = waiting {
            waker.wake();
        }
        Ok(())
    }

    /// Whether nothing is queued.
    pub fn is_empty(&self) -> bool {
        self.0.lock().items.is_empty()
    }

    /// Queues `item`, waiting for room if the queue is full. Gives it back if
    /// the queue is closed.
    ///
    /// Tried at once, when called: the common case then leaves the returned
    /// future nothing to hold. Waiting for room (rare), or handing the item back
    /// from a closed queue, is boxed; inline, the item would enlarge every
    /// future that awaits a send, such as each idle connection's task.
    pub fn send(&self, item: T) -> impl Future<Output = Result<(), T>> + '_ {
        let unsent = match self.try_send(item) {
            Ok(()) => None,
            Err(TrySendError::Full(item) | TrySendError::Closed(item)) => {
                Some(Box::pin(self.wait_to_send(item)))
            }
        };
        async move {
            match unsent {
                None => Ok(()),
                Some(waiting) => waiting.await,
            }
        }
    }

    /// Drops everything queued, queues `last` (whatever its weight) and closes
    /// the queue: the receiver gets `last`, then the end. For a consumer that
    /// fell too far behind: its backlog is freed at once.
    pub fn close_with(&self, last: T) {
        let (dropped, waiting) = {
            let mut shared = self.0.lock();
            let dropped = std::mem::take(&mut shared.items);
            shared.weight = 0;
            if !shared.closed {
                shared.items.push_back(last);
                shared.closed = true;
            }
            (dropped, shared.receiver_waiting.take())
        };
        // Freed outside the lock.
        drop(dropped);
        if let Some(waker) = waiting {
            waker.wake();
        }
    }

    /// Queues `item` once there is room.
    async fn wait_to_send(&self, item: T) -> Result<(), T> {
        let mut item = Some(item);
        poll_fn(|cx| {
            let next = item.take().expect("polled after completion");
            match self.try_send(next) {
                Ok(()) => Poll::Ready(Ok(())),
                Err(TrySendError::Closed(back)) => Poll::Ready(Err(back)),
                Err(TrySendError::Full(back)) => {
                    let mut shared = self.0.lock();
                    if shared.items.len() < shared.capacity || shared.closed {
                        // Room (or closing) arrived meanwhile: poll again.
                        cx.waker().wake_by_ref();
                    } else {
                        shared.senders_waiting.push(cx.waker().clone());
                    }
                    item = Some(back);
                    Poll::Pending
                }
            }
        })
        .await
    }
}

impl<T> Clone for QueueSender<T> {
    fn clone(&self) -> Self {
        self.0.lock().senders += 1;
        Self(self.0.clone())
    }
}

impl<T> Drop for QueueSender<T> {
    fn drop(&mut self) {
        let waiting = {
            let mut shared = self.0.lock();
            shared.senders -= 1;
            if shared.senders > 0 {
                return;
            }
            shared.receiver_waiting.take()
        };
        if let Some(waker) = waiting {
            waker.wake();
        }
    }
}

impl<T> QueueReceiver<T> {
    /// The next item; `None` once the queue is empty and every sender is gone
    /// (or it was closed).
    pub async fn recv(&mut self) -> Option<T> {
        poll_fn(|cx| {
            let (item, senders_waiting) = {
                let mut shared = self.0.lock();
                match shared.items.pop_front() {
                    Some(item) => {
                        shared.weight -= (shared.weigh)(&item);
                        if shared.items.is_empty() {
                            // Idle is the common case: hold no buffer.
                            shared.items = VecDeque::new();
                        }
                        (item, std::mem::take(&mut shared.senders_waiting))
                    }
                    None if shared.senders == 0 || shared.closed => return Poll::Ready(None),
                    None => {
                        register(&mut shared.receiver_waiting, cx.waker());
                        return Poll::Pending;
                    }
                }
            };
            for waker in senders_waiting {
                waker.wake();
            }
            Poll::Ready(Some(item))
        })
        .await
    }

    /// Refuses new items; those already queued can still be received.
    pub fn close(&mut self) {
        let senders_waiting = {
            let mut shared = self.0.lock();
            shared.closed = true;
            std::mem::take(&mut shared.senders_waiting)
        };
        for waker in senders_waiting {
            waker.wake();
        }
    }

    pub fn is_empty(&self) -> bool {
        self.0.lock().items.is_empty()
    }
}

impl<T> Drop for QueueReceiver<T> {
    fn drop(&mut self) {
        self.close();
        // Items nobody will receive: free them now, not when the last sender goes.
        let mut shared = self.0.lock();
        shared.items = VecDeque::new();
        shared.weight = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn items_arrive_in_order_then_none_when_senders_are_gone() {
        let (tx, mut rx) = bounded(8);
        let tx2 = tx.clone();
        tx.try_send(1).unwrap();
        tx2.send(2).await.unwrap();
        drop(tx);
        assert_eq!(rx.recv().await, Some(1));
        assert_eq!(rx.recv().await, Some(2));
        drop(tx2);
        assert_eq!(rx.recv().await, None);
    }

    #[tokio::test]
    async fn a_waiting_receiver_is_woken_by_a_send_and_by_the_last_sender_leaving() {
        let (tx, mut rx) = bounded(8);
        let waiter = tokio::spawn(async move { (rx.recv().await, rx.recv().await) });
        tokio::task::yield_now().await;
        tx.try_send(7).unwrap();
        tokio::task::yield_now().await;
        drop(tx);
        assert_eq!(waiter.await.unwrap(), (Some(7), None));
    }

    #[test]
    fn try_send_fails_when_full_or_closed() {
        let (tx, mut rx) = bounded(2);
        tx.try_send(1).unwrap();
        tx.try_send(2).unwrap();
        assert_eq!(tx.try_send(3), Err(TrySendError::Full(3)));
        rx.close();
        assert_eq!(tx.try_send(4), Err(TrySendError::Closed(4)));
        assert!(!rx.is_empty(), "closing keeps what was queued");
        drop(rx);
        assert_eq!(tx.try_send(5), Err(TrySendError::Closed(5)));
    }

    #[tokio::test]
    async fn a_full_queue_makes_send_wait_until_an_item_is_received() {
        let (tx, mut rx) = bounded(1);
        tx.try_send(1).unwrap();
        let sender = tokio::spawn(async move { tx.send(2).await });
        tokio::task::yield_now().await;
        assert!(!sender.is_finished(), "waits while the queue is full");
        assert_eq!(rx.recv().await, Some(1));
        assert_eq!(sender.await.unwrap(), Ok(()));
        assert_eq!(rx.recv().await, Some(2));
    }

    #[tokio::test]
    async fn weight_bounds_the_queue_and_close_with_frees_the_backlog() {
        let (tx, mut rx) = bounded_by_weight(100, 10, |item: &Vec<u8>| item.len());
        tx.try_send(vec![0; 11]).unwrap(); // alone, an item may exceed the bound
        assert!(matches!(
            tx.try_send(vec![0; 1]),
            Err(TrySendError::Full(_))
        ));
        assert_eq!(rx.recv().await.map(|v| v.len()), Some(11));
        tx.try_send(vec![0; 6]).unwrap();
        assert!(matches!(
            tx.try_send(vec![0; 5]),
            Err(TrySendError::Full(_))
        ));
        tx.try_send(vec![0; 4]).unwrap();
        tx.close_with(vec![7]);
        assert!(matches!(tx.try_send(vec![1]), Err(TrySendError::Closed(_))));
        assert_eq!(rx.recv().await, Some(vec![7]));
        assert_eq!(rx.recv().await, None);
    }

    #[tokio::test]
    async fn closing_releases_waiting_senders_with_their_item() {
        let (tx, mut rx) = bounded(1);
        tx.try_send(1).unwrap();
        let sender = tokio::spawn(async move { tx.send(2).await });
        tokio::task::yield_now().await;
        rx.close();
        assert_eq!(sender.await.unwrap(), Err(2));
        assert_eq!(rx.recv().await, Some(1));
        assert_eq!(rx.recv().await, None);
    }
}

//! The pub/sub side of cluster mode: presence frames (`pp:presence`, lossy:
//! clients renew their presence) and session record changes (`pp:changes`)
//! between instances. Every instance hears every session's messages and keeps
//! those of the sessions it has open: fine for a handful of instances; many
//! would want a channel per session (sharded pub/sub).
//!
//! A message is the sending instance's number (8 bytes), the session id (16
//! bytes), then the body: a presence frame, or one byte for a change.

use crate::{
    domain::SessionId,
    server::rooms::RecordChange,
    storage::{redis::Link, StorageError},
};
use bytes::Bytes;
use std::{
    sync::{
        atomic::{AtomicBool, Ordering},
        mpsc, Mutex,
    },
    time::Duration,
};

const PRESENCE_CHANNEL: &str = "pp:presence";
const CHANGES_CHANNEL: &str = "pp:changes";
/// Presence frames waiting to be published before more are dropped.
const OUTBOX_CAPACITY: usize = 4096;
/// How long the listener waits for a message before checking for shutdown.
const LISTEN_TIMEOUT: Duration = Duration::from_millis(500);
/// Pause before connecting again after Redis went away.
const RETRY_PAUSE: Duration = Duration::from_millis(500);
const HEADER_LEN: usize = 24;

/// What another instance said about a session.
#[derive(Debug)]
pub enum Heard {
    Presence(SessionId, Bytes),
    Change(SessionId, RecordChange),
}

/// Publishing to the other instances.
pub struct Publisher {
    instance: u64,
    outbox: mpsc::SyncSender<Vec<u8>>,
    /// Record changes are published at once, on a connection of their own.
    changes: Mutex<Link>,
}

impl Publisher {
    /// Starts the thread that publishes presence.
    pub fn start(client: redis::Client, instance: u64) -> Result<Self, StorageError> {
        let (outbox, outgoing) = mpsc::sync_channel(OUTBOX_CAPACITY);
        let presence_client = client.clone();
        std::thread::Builder::new()
            .name("redis-publish".into())
            .spawn(move || publish_presence_loop(presence_client, outgoing))
            .map_err(|e| StorageError(format!("redis: {e}")))?;
        Ok(Self {
            instance,
            outbox,
            changes: Mutex::new(Link::new(client)),
        })
    }

    fn message(&self, id: SessionId, body: &[u8]) -> Vec<u8> {
        let mut payload = Vec::with_capacity(HEADER_LEN + body.len());
        payload.extend_from_slice(&self.instance.to_be_bytes());
        payload.extend_from_slice(&id.as_u128().to_be_bytes());
        payload.extend_from_slice(body);
        payload
    }

    /// Queues a presence frame; dropped when Redis cannot keep up (clients
    /// renew their presence).
    pub fn presence(&self, id: SessionId, frame: &[u8]) {
        let _ = self.outbox.try_send(self.message(id, frame));
    }

    /// Publishes a record change now. Blocking: it waits for Redis.
    pub fn change(&self, id: SessionId, change: RecordChange) -> Result<(), StorageError> {
        let kind = match change {
            RecordChange::Ended => b'e',
            RecordChange::Reopened => b'r',
            RecordChange::Deleted => b'd',
        };
        let payload = self.message(id, &[kind]);
        self.changes
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .run(|connection| {
                redis::cmd("PUBLISH")
                    .arg(CHANGES_CHANNEL)
                    .arg(&payload)
                    .exec(connection)
            })
    }
}

/// Publishes queued presence, a pipeline of whatever is waiting at once.
fn publish_presence_loop(client: redis::Client, outgoing: mpsc::Receiver<Vec<u8>>) {
    let mut link = Link::new(client);
    // Logged once per outage, not for every frame dropped meanwhile.
    let mut failing = false;
    while let Ok(first) = outgoing.recv() {
        let mut pipe = redis::pipe();
        for payload in std::iter::once(first).chain(outgoing.try_iter().take(255)) {
            pipe.cmd("PUBLISH")
                .arg(PRESENCE_CHANNEL)
                .arg(payload)
                .ignore();
        }
        match link.run(|connection| pipe.exec(connection)) {
            Ok(()) => failing = false,
            Err(e) => {
                if !std::mem::replace(&mut failing, true) {
                    tracing::warn!(error = %e, "redis: presence could not be sent to other instances");
                }
                std::thread::sleep(RETRY_PAUSE);
            }
        }
    }
}

/// Listens to the other instances until `stopping`, handing each message to
/// `heard` (on the listener's thread; it must not block for long).
pub fn listen_loop(
    client: redis::Client,
    instance: u64,
    mut heard: impl FnMut(Heard),
    stopping: &AtomicBool,
) {
    let mut failing = false;
    while !stopping.load(Ordering::Relaxed) {
        if let Err(e) = listen(&client, instance, &mut heard, stopping, &mut failing) {
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
    heard: &mut impl FnMut(Heard),
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
        if let Some(message) = decode(
            message.get_channel_name(),
            message.get_payload_bytes(),
            instance,
        ) {
            heard(message);
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
        assert!(decode(
            CHANGES_CHANNEL,
            &[payload[..24].to_vec(), b"zz".to_vec()].concat(),
            9
        )
        .is_none());
    }
}

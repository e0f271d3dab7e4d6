//! One room's decisions, sans IO: [`RoomState`] takes what happened (a join, a
//! client frame, a leave, a store finished, a timer fired) and answers with
//! [`Effect`]s for its task to carry out, in order. No socket, clock, database
//! or task lives here, so every rule is unit-tested below with plain calls.
//!
//! Update path: size and history checks -> [`Effect::Store`] -> (the task
//! stores, then calls [`RoomState::stored`]) -> relay to the other
//! connections -> apply to the document. Nothing is relayed before it is
//! stored, and the task feeds no other input while a store is out, so a reply
//! to a SyncStep1 never holds an update that is not yet durable.
//!
//! Accepted updates are applied in batches (one yrs transaction each, about
//! half the CPU of one per update): before the document is read (a join, a
//! SyncStep1, a snapshot, an exact size measure) and at most [`APPLY_DELAY`]
//! after they arrived.
//!
//! Bounds enforced here: connections per session and per address, the
//! document's whole encoded size (4413, checked before anything is stored),
//! the session's history (4507), presence (see `presence`), and connections
//! that cannot keep up (closed as too slow, their backlog dropped).
//!
//! Cluster mode (a log shared with other instances, see `Peers`): the
//! session's log comes back to the room as [`RoomState::logged`] entries;
//! other instances' edits are relayed to this room's connections and applied,
//! this one's own only applied (they were relayed when stored). A snapshot
//! says up to where in the log it covers. Presence is relayed both ways
//! ([`Effect::Publish`], [`RoomState::peer_presence`]).
//!
//! Interviews: every connection has a role (the server's word, stamped into
//! its presence); an ended session takes no update from anyone (4409) and its
//! `meta.ended` flag is the server's to write (a client's overwrite is put
//! back); a deleted session closes everyone with 4404. A notes document (see
//! [`DocumentKind::Notes`]) also takes the events the server records in it.

use super::{
    close,
    presence::{Announced, Applied, Presence, PresenceError, PresenceLimits},
    room_doc::RoomDoc,
    rules::{self, Accounts, Refusal},
    ConnId, Role, OUTBOUND_CAPACITY,
};
use crate::{
    domain::{Language, Limits, SessionId},
    storage::{redis::StreamId, StoredDocument},
    sync::{
        protocol::{self, AwarenessMessage, ClientMessage, ReceivedUpdate},
        schema::DocumentKind,
        SessionDoc,
    },
};
use bytes::Bytes;
use std::{
    collections::{HashMap, VecDeque},
    net::IpAddr,
    sync::Arc,
    time::{Duration, Instant},
};

/// How often stale presence is looked for.
pub const AWARENESS_SWEEP: Duration = Duration::from_secs(5);
/// First wait after a failed snapshot; it doubles up to [`SNAPSHOT_MAX_BACKOFF`].
pub const SNAPSHOT_FIRST_BACKOFF: Duration = Duration::from_secs(1);
pub const SNAPSHOT_MAX_BACKOFF: Duration = Duration::from_secs(300);
/// How long an empty notes document stays loaded (see `unload_grace`).
pub const NOTES_UNLOAD_GRACE: Duration = Duration::from_secs(1);
/// How long join and leave events wait to be handed to the notes document
/// together (they reach an interviewer's notes this much later, stamped with
/// when they happened).
pub const EVENT_BATCH_DELAY: Duration = Duration::from_secs(5);
/// Join and leave events kept at most before they are handed over at once:
/// someone connecting and leaving in a loop cannot grow a room's batch.
pub const EVENT_BATCH_MAX: usize = 64;
/// What an event's update adds to its value's size, at most: the item's
/// header, the array's name and the transaction's client and clock.
const EVENT_UPDATE_OVERHEAD: usize = 64;
/// How long an accepted update may wait to be applied to the room's document
/// (so how late the REST API may see a language change made by a client).
pub const APPLY_DELAY: Duration = Duration::from_millis(500);

/// The author of the room's own updates (and of updates nobody can be
/// credited with) in the stored log.
pub const SERVER_AUTHOR: u64 = 0;

/// An update to store, with who made it (a Yjs client id; see playback).
#[derive(Debug, PartialEq)]
pub struct AuthoredUpdate {
    pub author: u64,
    pub bytes: Vec<u8>,
}

/// How an [`Effect::Store`] ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StoreOutcome {
    Stored,
    /// Not stored, and storage may work again soon (Redis unreachable).
    Unavailable,
    /// Not stored, and storage will not work again until a restart.
    Failed,
}

/// Something the room's task must do. Effects are carried out in the order
/// they were pushed.
#[derive(Debug, PartialEq)]
pub enum Effect {
    /// Queue a frame to one connection.
    Send { to: ConnId, frame: Bytes },
    /// Queue a frame to every connection but `except`.
    Broadcast {
        except: Option<ConnId>,
        frame: Bytes,
    },
    /// Queue a close frame to a connection and forget it (the state already
    /// has). With `discard_backlog`, what is still queued to it is dropped
    /// first: it could not keep up.
    Close {
        conn: ConnId,
        code: u16,
        reason: String,
        discard_backlog: bool,
    },
    /// Forget a connection whose own task has ended.
    Forget(ConnId),
    /// Append these updates to the session's log, durably; then call
    /// [`RoomState::stored`] before feeding anything else.
    Store(Vec<AuthoredUpdate>),
    /// Store this encoding of the whole document as the session's snapshot;
    /// then call [`RoomState::snapshot_stored`]. With a shared log, `covers`
    /// is the position in it the document includes everything up to.
    Snapshot {
        state: Vec<u8>,
        covers: Option<String>,
    },
    /// Relay this presence frame to the other instances (cluster mode).
    Publish(Bytes),
    /// A peer's edit changed the document's ended flag: read the session's
    /// record and call [`RoomState::set_ended`] (or [`RoomState::delete`])
    /// with what it says.
    CheckRecord,
    /// Ask every connection to ping its client.
    PingAll,
    /// The document's language changed (REST and storage follow it).
    Language(Language),
    /// The number of connections changed.
    Connections(usize),
    /// Record these events (JSON objects) in the session's notes document:
    /// participants joined or left, for the interview record. Handed over in
    /// batches (see [`EVENT_BATCH_DELAY`]).
    Record(Vec<yrs::Any>),
    /// The room has been empty for the grace period: unregister it unless a
    /// command is waiting, else call [`RoomState::unload_refused`].
    Unload,
}

/// The effects of one input, in order. Reused by the task, so the hot path
/// does not allocate a list per edit.
pub type Effects = VecDeque<Effect>;

/// A batch of updates out to storage: what to do once it is stored.
struct Storing {
    /// The connection that sent them (`None`: the room's own update, relayed
    /// to everyone).
    from: Option<ConnId>,
    /// The relay frames, one per update.
    frames: Vec<Bytes>,
    count: usize,
    bytes: usize,
    /// `unapplied`'s length before the batch, to take it back on failure.
    unapplied_before: usize,
}

/// What a room needs to know of its session's record when it loads.
#[derive(Clone, Copy, Debug)]
pub struct Loaded {
    pub id: SessionId,
    pub kind: DocumentKind,
    /// The language chosen at creation (written into a new document).
    pub language: Language,
    /// The session's word on whether the interview has ended.
    pub ended: bool,
    /// The stored document was not read (a notes document loaded only to
    /// record events): the room appends to it, and reads it when someone
    /// joins (see [`RoomState::needs_document`]).
    pub unread: bool,
}

/// Whether the room takes edits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lifecycle {
    Open,
    /// The interview has ended: read-only for everyone.
    Ended,
    /// The session was deleted: everyone is gone, nobody may join.
    Deleted,
}

/// A connection in the room.
struct Member {
    conn: ConnId,
    ip: IpAddr,
    role: Role,
    joined_ms: u64,
    /// The display name its presence announced (once it has).
    name: Option<String>,
    /// The awareness client id that announced it (0 until then).
    client: u64,
}

pub struct RoomState {
    id: SessionId,
    kind: DocumentKind,
    lifecycle: Lifecycle,
    /// Shared: every room keeps them, and thousands may be loaded.
    limits: Arc<Limits>,
    /// Packed while the room does not use it (see `room_doc`).
    doc: RoomDoc,
    /// The language last published (see [`Effect::Language`]).
    language: Option<Language>,
    /// Updates stored and relayed but not yet applied to `doc` (module doc).
    unapplied: Vec<yrs::Update>,
    /// Whether `unapplied` holds a connection's updates, and whether it holds
    /// peers' (see `apply_unapplied`: who may have changed the ended flag).
    unapplied_from_here: bool,
    unapplied_from_peers: bool,
    /// With a log shared with other instances: the position in it up to
    /// which the document holds every entry. None: the log is this room's.
    log_position: Option<String>,
    /// A store of this room's was reported failed: it may have reached the
    /// log all the same, so this room's own logged entries are applied too
    /// (else they are in the document already, and skipped).
    own_store_in_doubt: bool,
    /// When `unapplied` is applied at the latest.
    apply_due: Option<Instant>,
    /// Size, history and snapshot accounting (see `rules`).
    accounts: Accounts,
    presence: Presence,
    /// At most a few dozen, so a Vec searched linearly is both faster and much
    /// smaller than a hash map (thousands of rooms stay loaded).
    connections: Vec<Member>,
    /// The wall clock as of the latest input (ms), for the events recorded.
    clock_ms: u64,
    /// Batches out to storage, oldest first (the task answers in order).
    storing: VecDeque<Storing>,
    /// The stored document has not been read (see [`Loaded::unread`]): `doc`
    /// holds only what this room appended, so it is never snapshotted.
    unread: bool,
    /// The size of the snapshot out to storage.
    snapshotting: Option<usize>,
    /// After a failed snapshot: when to try again, and the wait after that.
    snapshot_retry: Option<(Instant, Duration)>,
    empty_since: Option<Instant>,
    next_sweep: Instant,
    next_ping: Instant,
    /// Join and leave events not handed to the notes document yet, and when
    /// they are due to be.
    participant_events: Vec<yrs::Any>,
    events_due: Option<Instant>,
}

impl RoomState {
    /// A room for the session `id` as stored. A session never loaded before
    /// gets `language` written into its document first, and a document whose
    /// ended flag disagrees with `ended` (the session's record, the truth) is
    /// corrected: such updates are pushed as [`Effect::Store`]s.
    pub fn load(
        record: Loaded,
        stored: StoredDocument,
        limits: Arc<Limits>,
        now: Instant,
        effects: &mut Effects,
    ) -> Self {
        let Loaded {
            id,
            kind,
            language,
            ended,
            unread,
        } = record;
        let (doc, skipped) = SessionDoc::from_updates(stored.updates_in_order());
        if skipped > 0 {
            tracing::warn!(session = %id, skipped, "stored updates that did not apply were skipped");
        }
        let bytes_since_snapshot = stored.updates.iter().map(|u| u.update.len()).sum();
        let snapshot_len = stored.snapshot.as_ref().map_or(0, Vec::len);
        let accounts = Accounts::new(
            if unread {
                // Not read, so not measured: no larger than all it merged.
                usize::try_from(stored.history_bytes).unwrap_or(usize::MAX)
            } else {
                doc.encoded_len()
            },
            stored.history_bytes,
            bytes_since_snapshot,
            snapshot_len,
        );
        let mut state = Self {
            id,
            kind,
            unapplied_from_here: false,
            unapplied_from_peers: false,
            log_position: stored.log_position.clone(),
            own_store_in_doubt: false,
            lifecycle: if ended {
                Lifecycle::Ended
            } else {
                Lifecycle::Open
            },
            next_ping: now + limits.ping_interval,
            limits,
            language: doc.language(),
            doc: RoomDoc::new(doc),
            unapplied: Vec::new(),
            apply_due: None,
            accounts,
            presence: Presence::default(),
            connections: Vec::new(),
            clock_ms: 0,
            storing: VecDeque::new(),
            unread,
            snapshotting: None,
            snapshot_retry: None,
            empty_since: Some(now),
            next_sweep: now + AWARENESS_SWEEP,
            participant_events: Vec::new(),
            events_due: None,
        };
        if kind == DocumentKind::Session {
            if state.language.is_none() {
                // A new session: its language (chosen at creation) goes into
                // the document, where it syncs and persists like any edit.
                let update = state.doc.get().set_language(language);
                state.language = Some(language);
                state.store_own(update, effects);
            }
            state.keep_ended_flag(effects);
        }
        state
    }

    /// Stores an update the room made itself; once stored it goes to everyone.
    fn store_own(&mut self, update: Vec<u8>, effects: &mut Effects) {
        self.storing.push_back(Storing {
            from: None,
            frames: vec![protocol::encode_update(&update).into()],
            count: 1,
            bytes: update.len(),
            unapplied_before: self.unapplied.len(),
        });
        effects.push_back(Effect::Store(vec![AuthoredUpdate {
            author: SERVER_AUTHOR,
            bytes: update,
        }]));
    }

    /// Puts the document's ended flag back to the session's word, if a client
    /// changed it (or the room has not written it yet).
    fn keep_ended_flag(&mut self, effects: &mut Effects) {
        let ended = self.lifecycle == Lifecycle::Ended;
        if self.kind == DocumentKind::Session && self.doc.get().ended() != ended {
            let update = self.doc.get().set_ended(ended);
            self.store_own(update, effects);
        }
    }

    /// The interview was ended (`true`) or reopened: the flag goes into the
    /// document for everyone, and edits are refused or taken again.
    pub fn set_ended(&mut self, ended: bool, effects: &mut Effects) {
        if self.lifecycle == Lifecycle::Deleted {
            return;
        }
        self.apply_unapplied(effects);
        self.lifecycle = if ended {
            Lifecycle::Ended
        } else {
            Lifecycle::Open
        };
        self.keep_ended_flag(effects);
    }

    /// The session was deleted: everyone is closed with 4404 and nobody joins
    /// again; the task unloads the room.
    pub fn delete(&mut self, effects: &mut Effects) {
        self.lifecycle = Lifecycle::Deleted;
        self.participant_events.clear();
        self.events_due = None;
        for Member { conn, .. } in self.connections.drain(..) {
            effects.push_back(Effect::Close {
                conn,
                code: close::SESSION_NOT_FOUND,
                reason: "the session was deleted".to_owned(),
                discard_backlog: true,
            });
        }
        effects.push_back(Effect::Connections(0));
        effects.push_back(Effect::Unload);
    }

    /// Records server events (a focus change, a large paste, people joining) in a notes
    /// document, where interviewers see it live and the export finds it.
    ///
    /// Events count against the notes document's size and history limits like
    /// anyone's edits: past them an event is dropped (and logged), so reports
    /// cannot grow a session's storage without bound. A room that has not
    /// read its stored document cannot measure it; it bounds the size by the
    /// history (a document encodes to no more than the updates it merged).
    pub fn record_events(&mut self, events: Vec<yrs::Any>, now: Instant, effects: &mut Effects) {
        if self.kind != DocumentKind::Notes
            || self.lifecycle == Lifecycle::Deleted
            || events.is_empty()
        {
            return;
        }
        // An event's update is its value in lib0 encoding (never longer than
        // its JSON text) plus the item's header.
        let incoming = events
            .iter()
            .map(|event| event.to_string().len() + EVENT_UPDATE_OVERHEAD)
            .sum();
        let mut accounts = std::mem::take(&mut self.accounts);
        let limits = Arc::clone(&self.limits);
        let unmeasurable = self.unread.then(|| accounts.history_bound());
        let checked = accounts.check(
            incoming,
            1,
            &limits,
            || now,
            || {
                unmeasurable.unwrap_or_else(|| {
                    self.apply_unapplied(effects);
                    self.doc.encoded_len()
                })
            },
        );
        self.accounts = accounts;
        if let Err(refused) = checked {
            tracing::warn!(session = %self.id, count = events.len(), reason = %refused.reason, "events not recorded");
            return;
        }
        self.apply_unapplied(effects);
        let update = self.doc.get().record_events(events);
        self.store_own(update, effects);
    }

    /// Whether the stored document must be read before a connection joins.
    pub fn needs_document(&self) -> bool {
        self.unread
    }

    /// The stored document, read for a first connection. It holds everything
    /// this room appended (each store finished before the join was taken),
    /// so it replaces the room's partial copy.
    pub fn read_document(&mut self, stored: StoredDocument) {
        debug_assert!(self.storing.is_empty());
        let (doc, _skipped) = SessionDoc::from_updates(stored.updates_in_order());
        let bytes_since_snapshot = stored.updates.iter().map(|u| u.update.len()).sum();
        let snapshot_len = stored.snapshot.as_ref().map_or(0, Vec::len);
        self.accounts = Accounts::new(
            doc.encoded_len(),
            stored.history_bytes,
            bytes_since_snapshot,
            snapshot_len,
        );
        self.doc = RoomDoc::new(doc);
        self.log_position = stored.log_position;
        self.unread = false;
    }

    /// Where in a shared log the document stands (see [`Effect::Snapshot`]);
    /// None when the log is this room's alone.
    pub fn log_position(&self) -> Option<&str> {
        self.log_position.as_deref()
    }

    /// Entries of the session's log read back from shared storage, oldest
    /// first. Other instances' edits are relayed to every connection here and
    /// applied; this instance's own are in the document already, unless a
    /// store reported failed reached the log after all: after a failure they
    /// are applied too (not relayed: their senders send them again). Either
    /// way the document then holds the log up to the last entry's position.
    pub fn logged(
        &mut self,
        entries: Vec<super::LoggedEntry>,
        now: Instant,
        effects: &mut Effects,
    ) {
        if self.lifecycle == Lifecycle::Deleted || self.log_position.is_none() {
            return;
        }
        let mut relayed = false;
        for entry in entries {
            // Forward only: an entry may come twice (a room reloaded meanwhile).
            if self
                .log_position
                .as_deref()
                .is_none_or(|at| stream_id_order(at) < stream_id_order(&entry.position))
            {
                self.log_position = Some(entry.position);
            }
            if !entry.from_peer && !self.own_store_in_doubt {
                continue;
            }
            let decoded = match protocol::decode_update(&entry.update) {
                Ok(decoded) => decoded,
                Err(error) => {
                    tracing::warn!(session = %self.id, %error, "a logged update did not decode; skipped");
                    continue;
                }
            };
            if entry.from_peer {
                self.unapplied_from_peers = true;
                self.accounts.stored(1, entry.update.len());
                effects.push_back(Effect::Broadcast {
                    except: None,
                    frame: protocol::encode_update(&entry.update).into(),
                });
                relayed = true;
            }
            self.unapplied.push(decoded);
        }
        if !self.unapplied.is_empty() && self.apply_due.is_none() {
            self.apply_due = Some(now + APPLY_DELAY);
        }
        if relayed && self.snapshot_retry.is_none() && self.accounts.snapshot_due() {
            self.start_snapshot(effects);
        }
    }

    /// A presence frame another instance relayed to its connections: it goes
    /// to every connection here, and joiners here are sent it too.
    pub fn peer_presence(&mut self, frame: &[u8], wall_ms: u64, effects: &mut Effects) {
        if self.lifecycle == Lifecycle::Deleted {
            return;
        }
        let Ok(messages) = protocol::decode_frame(frame) else {
            tracing::warn!(session = %self.id, "a peer's presence frame did not decode");
            return;
        };
        for message in messages {
            if let ClientMessage::Awareness(message) = message {
                if let Some(relay) = self.presence.apply_peer(message, wall_ms) {
                    effects.push_back(Effect::Broadcast {
                        except: None,
                        frame: relay.into(),
                    });
                }
            }
        }
    }

    /// Relays a presence frame of this room's connections to the other
    /// instances, if there are any.
    fn publish_presence(&self, frame: &Bytes, effects: &mut Effects) {
        if self.log_position.is_some() {
            effects.push_back(Effect::Publish(frame.clone()));
        }
    }

    pub fn lifecycle(&self) -> Lifecycle {
        self.lifecycle
    }

    pub fn id(&self) -> SessionId {
        self.id
    }

    /// The document's language, as last published.
    pub fn language(&self) -> Option<Language> {
        self.language
    }

    pub fn connection_count(&self) -> usize {
        self.connections.len()
    }

    /// Whether snapshots are failing (and being retried).
    pub fn snapshot_failing(&self) -> bool {
        self.snapshot_retry.is_some()
    }

    /// The document (tests and diagnostics read it; clients never see it
    /// except through sync).
    pub fn document(&mut self) -> &SessionDoc {
        self.apply_unapplied(&mut Effects::new());
        self.doc.get()
    }

    /// When [`Self::tick`] next has something to do.
    pub fn next_deadline(&self) -> Instant {
        let unload_at = self.empty_since.map(|since| since + self.unload_grace());
        let retry_at = self.snapshot_retry.map(|(at, _)| at);
        [
            unload_at,
            self.apply_due,
            retry_at,
            self.events_due,
            Some(self.next_ping),
        ]
        .into_iter()
        .flatten()
        .fold(self.next_sweep, Instant::min)
    }

    /// A connection asks to join. Admitted, it is sent the document's state
    /// vector and everyone's presence, one message a frame.
    pub fn join(
        &mut self,
        conn: ConnId,
        ip: IpAddr,
        role: Role,
        wall_ms: u64,
        effects: &mut Effects,
    ) -> Result<(), Refusal> {
        self.clock_ms = wall_ms;
        if self.lifecycle == Lifecycle::Deleted {
            return Err(Refusal {
                code: close::SESSION_NOT_FOUND,
                reason: "the session was deleted".to_owned(),
            });
        }
        let present = self.connections.iter().map(|member| member.ip);
        rules::admit(present, ip, &self.limits)?;
        self.apply_unapplied(effects);
        self.connections.push(Member {
            conn,
            ip,
            role,
            joined_ms: wall_ms,
            name: None,
            client: 0,
        });
        let step1 = protocol::encode_sync_step1(&self.doc.get().state_vector());
        effects.push_back(Effect::Send {
            to: conn,
            frame: step1.into(),
        });
        if let Some(states) = self.presence.current_frame() {
            effects.push_back(Effect::Send {
                to: conn,
                frame: states.into(),
            });
        }
        self.empty_since = None;
        effects.push_back(Effect::Connections(self.connections.len()));
        Ok(())
    }

    /// A connection sent a frame of messages (already decoded and budgeted).
    /// `wall_ms` is the wall clock, which presence staleness is kept in.
    pub fn frame(
        &mut self,
        conn: ConnId,
        messages: Vec<ClientMessage>,
        now: Instant,
        wall_ms: u64,
        effects: &mut Effects,
    ) {
        let Some(role) = self.role_of(conn) else {
            return;
        };
        self.clock_ms = wall_ms;
        let mut updates = Vec::new();
        for message in messages {
            match message {
                ClientMessage::SyncStep1(remote) => {
                    self.apply_unapplied(effects);
                    let step2 = protocol::encode_sync_step2(&self.doc.get().diff(&remote));
                    effects.push_back(Effect::Send {
                        to: conn,
                        frame: step2.into(),
                    });
                }
                ClientMessage::SyncStep2(update) | ClientMessage::Update(update) => {
                    // Empty updates (every client's first SyncStep2 on a fresh
                    // document) change nothing: not stored, not relayed.
                    if !update.is_empty() {
                        updates.push(update)
                    }
                }
                ClientMessage::Awareness(message) => {
                    if !self.apply_presence(conn, role, message, now, wall_ms, effects) {
                        return;
                    }
                }
                ClientMessage::AwarenessQuery => {
                    if let Some(states) = self.presence.current_frame() {
                        effects.push_back(Effect::Send {
                            to: conn,
                            frame: states.into(),
                        });
                    }
                }
                ClientMessage::Ignored(kind) => {
                    tracing::debug!(session = %self.id, conn, kind, "ignored message type");
                }
            }
        }
        if updates.is_empty() {
            return;
        }
        if self.lifecycle == Lifecycle::Ended && self.kind == DocumentKind::Session {
            if self.reopened_elsewhere(effects) {
                let reason = "the interview is being reopened: reconnect".to_owned();
                self.close(conn, close::TRY_AGAIN_LATER, reason, now, effects);
                return;
            }
            let reason = "the interview has ended: the session is read-only".to_owned();
            self.close(conn, close::INTERVIEW_ENDED, reason, now, effects);
            return;
        }
        self.accept_updates(conn, updates, now, effects);
    }

    /// Whether another instance's room has written the session reopened into
    /// the shared log while this room still holds it ended: the record change
    /// is on its way (or being read), so an edit is refused for now (1013, the
    /// client reconnects and sends it again), not for good (4409). Applies
    /// what the log brought first.
    fn reopened_elsewhere(&mut self, effects: &mut Effects) -> bool {
        if self.log_position.is_none() {
            // One instance: only this room writes the flag.
            return false;
        }
        self.apply_unapplied(effects);
        !self.doc.get().ended()
    }

    /// Size and history checks, then out to storage (see the module doc).
    fn accept_updates(
        &mut self,
        conn: ConnId,
        updates: Vec<ReceivedUpdate>,
        now: Instant,
        effects: &mut Effects,
    ) {
        let incoming: usize = updates.iter().map(|update| update.len()).sum();
        // Taken out for the check: measuring needs the whole room.
        let mut accounts = std::mem::take(&mut self.accounts);
        // Only the limits: this runs for every edit.
        let limits = Arc::clone(&self.limits);
        let checked = accounts.check(
            incoming,
            updates.len(),
            &limits,
            || now,
            || {
                self.apply_unapplied(effects);
                self.doc.encoded_len()
            },
        );
        self.accounts = accounts;
        if let Err(refused) = checked {
            tracing::warn!(session = %self.id, conn, incoming, reason = %refused.reason, "update refused");
            self.close(conn, refused.code, refused.reason, now, effects);
            return;
        }
        // The bytes move into storage; the relay frames are built now and
        // sent once the updates are stored.
        let count = updates.len();
        let unapplied_before = self.unapplied.len();
        let mut frames = Vec::with_capacity(count);
        let mut stored = Vec::with_capacity(count);
        let sender = self.presence.client_of(conn);
        for ReceivedUpdate { bytes, decoded } in updates {
            frames.push(protocol::encode_update(&bytes).into());
            // Inserts name their client; deletions name nobody, so they are
            // the sender's (its awareness id is its document's client id).
            let author = protocol::first_struct_client(&bytes)
                .or(sender)
                .unwrap_or(SERVER_AUTHOR);
            stored.push(AuthoredUpdate { author, bytes });
            self.unapplied.push(decoded);
        }
        self.unapplied_from_here = true;
        self.storing.push_back(Storing {
            from: Some(conn),
            frames,
            count,
            bytes: incoming,
            unapplied_before,
        });
        effects.push_back(Effect::Store(stored));
    }

    /// The oldest [`Effect::Store`] finished. Stored, its updates are relayed;
    /// not stored, they are dropped and their sender is closed (it reconnects
    /// and sends them again): with 1013 when storage is only unavailable for
    /// now (Redis down), 1011 when it failed for good.
    pub fn stored(&mut self, outcome: StoreOutcome, now: Instant, effects: &mut Effects) {
        let Some(batch) = self.storing.pop_front() else {
            debug_assert!(false, "stored() without a store");
            return;
        };
        let refusal = match outcome {
            StoreOutcome::Stored => None,
            StoreOutcome::Unavailable => {
                Some((close::TRY_AGAIN_LATER, "storage unavailable; reconnect"))
            }
            StoreOutcome::Failed => Some((close::INTERNAL_ERROR, "storage failure; reconnect")),
        };
        if let Some((code, reason)) = refusal {
            self.own_store_in_doubt = true;
            if outcome == StoreOutcome::Unavailable && self.log_position.is_some() {
                // Perhaps the session is gone (deleted on another instance,
                // and that word lost): its record says.
                effects.push_back(Effect::CheckRecord);
            }
            // (The room's own updates are in its document already: a reload,
            // or the next correction, writes them again.)
            self.unapplied.truncate(batch.unapplied_before);
            if let Some(conn) = batch.from {
                self.close(conn, code, reason.to_owned(), now, effects);
            }
            return;
        }
        self.accounts.stored(batch.count, batch.bytes);
        for frame in batch.frames {
            effects.push_back(Effect::Broadcast {
                except: batch.from,
                frame,
            });
        }
        if batch.from.is_some() && self.apply_due.is_none() {
            self.apply_due = Some(now + APPLY_DELAY);
        }
        if self.snapshot_retry.is_none() && self.accounts.snapshot_due() {
            self.start_snapshot(effects);
        }
    }

    /// The last [`Effect::Snapshot`] finished. A failure is retried after a
    /// growing wait.
    pub fn snapshot_stored(&mut self, ok: bool, now: Instant) {
        let Some(len) = self.snapshotting.take() else {
            debug_assert!(false, "snapshot_stored() without a snapshot");
            return;
        };
        if ok {
            self.accounts.snapshot_taken(len);
            self.snapshot_retry = None;
        } else {
            let wait = match self.snapshot_retry {
                Some((_, wait)) => (wait * 2).min(SNAPSHOT_MAX_BACKOFF),
                None => SNAPSHOT_FIRST_BACKOFF,
            };
            tracing::error!(session = %self.id, retry_in = ?wait, "storing a snapshot failed");
            self.snapshot_retry = Some((now + wait, wait));
        }
    }

    /// A connection left (its task ended).
    pub fn leave(&mut self, conn: ConnId, now: Instant, effects: &mut Effects) {
        if self.remove_connection(conn, now, effects) {
            effects.push_back(Effect::Forget(conn));
        }
    }

    /// A frame could not be queued to `conn`: its queue is full (`too_slow`:
    /// it is closed, its backlog dropped; the client reconnects and resyncs),
    /// or its task already ended (its Leave is on the way).
    pub fn unreachable(
        &mut self,
        conn: ConnId,
        too_slow: bool,
        now: Instant,
        effects: &mut Effects,
    ) {
        if !self.remove_connection(conn, now, effects) {
            return;
        }
        if too_slow {
            tracing::warn!(session = %self.id, conn, "connection too slow; closed");
            let limit = self.limits.max_outbound_bytes;
            effects.push_back(Effect::Close {
                conn,
                code: close::TRY_AGAIN_LATER,
                reason: format!(
                    "connection too slow: over {limit} bytes or {OUTBOUND_CAPACITY} frames unread"
                ),
                discard_backlog: true,
            });
        } else {
            effects.push_back(Effect::Forget(conn));
        }
    }

    /// Time passed: apply what is due, sweep presence, ping, retry a failed
    /// snapshot, and offer to unload an empty room.
    pub fn tick(&mut self, now: Instant, wall_ms: u64, effects: &mut Effects) {
        self.clock_ms = wall_ms;
        if self.apply_due.is_some_and(|at| now >= at) {
            self.apply_unapplied(effects);
        }
        if now >= self.next_sweep {
            if let Some(frame) = self.presence.expire_stale(wall_ms) {
                let frame = Bytes::from(frame);
                self.publish_presence(&frame, effects);
                effects.push_back(Effect::Broadcast {
                    except: None,
                    frame,
                });
            }
            self.next_sweep = now + AWARENESS_SWEEP;
            // On the sweep's timer: idle rooms get no extra wake-up for these,
            // and busy ones no allocation per store.
            self.pack_document_if_quiet();
            if self.storing.is_empty() {
                self.storing = VecDeque::new();
            }
        }
        if now >= self.next_ping {
            effects.push_back(Effect::PingAll);
            self.next_ping = now + self.limits.ping_interval;
        }
        let retry_due = self.snapshot_retry.is_some_and(|(at, _)| now >= at);
        let unload_due = self
            .empty_since
            .is_some_and(|since| now >= since + self.unload_grace());
        if retry_due || (unload_due && self.accounts.snapshot_due()) {
            self.start_snapshot(effects);
        }
        if unload_due || self.events_due.is_some_and(|at| now >= at) {
            self.hand_over_events(effects);
        }
        if unload_due {
            // Not asked again until the task answers (`unload_refused`).
            self.empty_since = None;
            effects.push_back(Effect::Unload);
        }
    }

    /// Packs the session's document if the room has not used it since the
    /// last sweep (see `room_doc`). Not a notes document (it unloads within a
    /// second of its last event anyway), one not read yet, or one with
    /// accepted updates still to apply or a snapshot out.
    fn pack_document_if_quiet(&mut self) {
        if self.kind == DocumentKind::Session
            && !self.unread
            && self.unapplied.is_empty()
            && self.snapshotting.is_none()
        {
            self.doc.pack_if_unused();
        }
    }

    /// The room could not unload (a command was waiting): it stays, and tries
    /// again after another grace period if it is still empty.
    pub fn unload_refused(&mut self, now: Instant) {
        self.empty_since = self.connections.is_empty().then_some(now);
    }

    /// The server is shutting down: everyone is told, and a due snapshot taken.
    pub fn shutdown(&mut self, effects: &mut Effects) {
        for Member { conn, .. } in self.connections.drain(..) {
            effects.push_back(Effect::Close {
                conn,
                code: close::GOING_AWAY,
                reason: "server shutting down".to_owned(),
                discard_backlog: false,
            });
        }
        effects.push_back(Effect::Connections(0));
        self.hand_over_events(effects);
        if self.accounts.snapshot_due() {
            self.start_snapshot(effects);
        }
    }

    /// How long the room stays loaded once empty. A notes document nobody has
    /// open is loaded only to record an event (someone joined, a candidate's
    /// tab lost focus): it goes again at once, so a session costs one room.
    fn unload_grace(&self) -> Duration {
        match self.kind {
            DocumentKind::Session => self.limits.room_unload_grace,
            DocumentKind::Notes => NOTES_UNLOAD_GRACE.min(self.limits.room_unload_grace),
        }
    }

    fn role_of(&self, conn: ConnId) -> Option<Role> {
        self.connections
            .iter()
            .find(|member| member.conn == conn)
            .map(|member| member.role)
    }

    /// Records that a participant joined, once their presence names them.
    fn learned_name(
        &mut self,
        conn: ConnId,
        announced: Announced,
        now: Instant,
        effects: &mut Effects,
    ) {
        let Some(member) = self.connections.iter_mut().find(|m| m.conn == conn) else {
            return;
        };
        let mut event = participant_event("join", &announced.name, member.role, member.joined_ms);
        event.insert("client".to_owned(), yrs::Any::from(announced.client as f64));
        if let Some(color) = announced.color {
            event.insert("color".to_owned(), color);
        }
        member.name = Some(announced.name);
        member.client = announced.client;
        self.queue_event(event, now, effects);
    }

    /// Keeps a join or leave event for the next hand-over: one notes-document
    /// load per batch, not per event (thousands of people join at once when
    /// a server restarts, and each load costs memory and a journal write).
    fn queue_event(
        &mut self,
        event: HashMap<String, yrs::Any>,
        now: Instant,
        effects: &mut Effects,
    ) {
        self.participant_events.push(yrs::Any::from(event));
        self.events_due.get_or_insert(now + EVENT_BATCH_DELAY);
        if self.participant_events.len() >= EVENT_BATCH_MAX {
            self.hand_over_events(effects);
        }
    }

    /// Hands the events kept so far to the notes document.
    fn hand_over_events(&mut self, effects: &mut Effects) {
        self.events_due = None;
        if !self.participant_events.is_empty() {
            effects.push_back(Effect::Record(std::mem::take(&mut self.participant_events)));
        }
    }

    /// Whether the room still wants to learn `conn`'s display name (to record
    /// the join in the session's notes).
    fn wants_name(&self, conn: ConnId) -> bool {
        self.kind == DocumentKind::Session
            && self
                .connections
                .iter()
                .any(|member| member.conn == conn && member.name.is_none())
    }

    fn start_snapshot(&mut self, effects: &mut Effects) {
        if self.snapshotting.is_some() || self.unread {
            return;
        }
        self.apply_unapplied(effects);
        let state = self.doc.snapshot();
        self.snapshotting = Some(state.len());
        effects.push_back(Effect::Snapshot {
            state,
            covers: self.log_position.clone(),
        });
    }

    /// Applies the accepted updates not yet in the document, and publishes a
    /// language change they made.
    fn apply_unapplied(&mut self, effects: &mut Effects) {
        self.apply_due = None;
        if self.unapplied.is_empty() {
            return;
        }
        // Taken, not drained: an idle room then keeps no buffer.
        let updates = std::mem::take(&mut self.unapplied);
        let from_here = std::mem::take(&mut self.unapplied_from_here);
        let from_peers = std::mem::take(&mut self.unapplied_from_peers);
        let refused = self.doc.get().apply_all(updates, None);
        if let Some(first) = refused.first() {
            // Stored and relayed already: a reload skips them the same way.
            tracing::warn!(session = %self.id, count = refused.len(), error = %first, "stored updates did not apply");
        }
        if let Some(language) = self
            .doc
            .get()
            .language()
            .filter(|l| Some(*l) != self.language)
        {
            self.language = Some(language);
            effects.push_back(Effect::Language(language));
        }
        if from_peers
            && self.kind == DocumentKind::Session
            && self.doc.get().ended() != (self.lifecycle == Lifecycle::Ended)
        {
            // A peer's room may have written the flag: it acts on the
            // session's record, which may have changed since this room read
            // it (the peer's word on that may also have been lost on the
            // way). The record decides, whoever else wrote the flag.
            effects.push_back(Effect::CheckRecord);
        } else if from_here {
            self.keep_ended_flag(effects);
        }
    }

    /// Applies a connection's presence; false if it broke a limit and was closed.
    fn apply_presence(
        &mut self,
        conn: ConnId,
        role: Role,
        message: AwarenessMessage,
        now: Instant,
        wall_ms: u64,
        effects: &mut Effects,
    ) -> bool {
        let limits = PresenceLimits {
            max_clients: self.limits.max_awareness_clients,
            max_state_bytes: self.limits.max_awareness_state_bytes,
        };
        let learn_name = self.wants_name(conn);
        match self
            .presence
            .apply(conn, role, message, wall_ms, limits, learn_name)
        {
            Ok(Applied { frame, announced }) => {
                if let Some(announced) = announced {
                    self.learned_name(conn, announced, now, effects);
                }
                let Some(frame) = frame else {
                    return true;
                };
                // To everyone, the sender included: y-websocket clients treat
                // their own echoed presence as a sign the connection is alive.
                let frame = Bytes::from(frame);
                self.publish_presence(&frame, effects);
                effects.push_back(Effect::Broadcast {
                    except: None,
                    frame,
                });
                true
            }
            Err(error @ PresenceError::StateTooLarge(_)) => {
                tracing::warn!(session = %self.id, conn, %error, "closed: awareness state too large");
                self.close(
                    conn,
                    close::POLICY_VIOLATION,
                    error.to_string(),
                    now,
                    effects,
                );
                false
            }
        }
    }

    fn close(
        &mut self,
        conn: ConnId,
        code: u16,
        reason: String,
        now: Instant,
        effects: &mut Effects,
    ) {
        if self.remove_connection(conn, now, effects) {
            effects.push_back(Effect::Close {
                conn,
                code,
                reason,
                discard_backlog: false,
            });
        }
    }

    /// Forgets a connection and its presence; false if it was not here.
    fn remove_connection(&mut self, conn: ConnId, now: Instant, effects: &mut Effects) -> bool {
        let Some(index) = self.connections.iter().position(|m| m.conn == conn) else {
            return false;
        };
        let member = self.connections.swap_remove(index);
        if let Some(name) = &member.name {
            let mut event = participant_event("leave", name, member.role, self.clock_ms);
            event.insert("client".to_owned(), yrs::Any::from(member.client as f64));
            self.queue_event(event, now, effects);
        }
        if let Some(frame) = self.presence.remove_connection(conn) {
            let frame = Bytes::from(frame);
            self.publish_presence(&frame, effects);
            effects.push_back(Effect::Broadcast {
                except: Some(conn),
                frame,
            });
        }
        effects.push_back(Effect::Connections(self.connections.len()));
        if self.connections.is_empty() {
            self.empty_since = Some(now);
        }
        true
    }
}

/// A shared log's position as something to compare (unparsable: first).
fn stream_id_order(id: &str) -> StreamId {
    StreamId::parse(id).unwrap_or_default()
}

/// A participant joined or left, as recorded for the interview record.
fn participant_event(kind: &str, name: &str, role: Role, at_ms: u64) -> HashMap<String, yrs::Any> {
    HashMap::from([
        ("kind".to_owned(), yrs::Any::from(kind)),
        ("name".to_owned(), yrs::Any::from(name)),
        ("role".to_owned(), yrs::Any::from(role.as_str())),
        ("at".to_owned(), yrs::Any::from(at_ms as f64)),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sync::protocol::decode_frame;
    use yrs::{updates::decoder::Decode, Map, Text, Transact, Update};

    const ALICE: ConnId = 1;
    const BOB: ConnId = 2;

    fn ip(last: u8) -> IpAddr {
        IpAddr::from([10, 0, 0, last])
    }

    fn empty_store() -> StoredDocument {
        StoredDocument {
            snapshot: None,
            snapshot_seq: 0,
            updates: Vec::new(),
            history_bytes: 0,
            log_position: None,
        }
    }

    /// A loaded room (its first store done) with Alice and Bob connected.
    fn room_with(limits: Limits, now: Instant) -> RoomState {
        room_from(empty_store(), limits, now)
    }

    /// A room loaded from `stored` (its first store done), with Alice and
    /// Bob connected.
    fn room_from(stored: StoredDocument, limits: Limits, now: Instant) -> RoomState {
        let mut fx = Effects::new();
        let mut room = RoomState::load(
            Loaded {
                id: SessionId::new_random(),
                kind: DocumentKind::Session,
                language: Language::Python,
                ended: false,
                unread: false,
            },
            stored,
            Arc::new(limits),
            now,
            &mut fx,
        );
        // The language is written first.
        assert!(matches!(fx.front(), Some(Effect::Store(_))));
        while let Some(effect) = fx.pop_front() {
            if let Effect::Store(_) = effect {
                room.stored(StoreOutcome::Stored, now, &mut fx);
            }
        }
        room.join(ALICE, ip(1), Role::Candidate, 0, &mut fx)
            .unwrap();
        room.join(BOB, ip(2), Role::Candidate, 0, &mut fx).unwrap();
        room
    }

    fn take(fx: &mut Effects) -> Vec<Effect> {
        fx.drain(..).collect()
    }

    /// A client's edit inserting `text` at the start of the code.
    fn edit(client_id: u64, text: &str) -> Vec<u8> {
        let doc = yrs::Doc::with_client_id(client_id);
        let code = doc.get_or_insert_text(crate::sync::document::CODE);
        let mut txn = doc.transact_mut();
        code.insert(&mut txn, 0, text);
        txn.encode_update_v1()
    }

    fn frame_of(bytes: &[u8]) -> Vec<ClientMessage> {
        decode_frame(bytes).unwrap()
    }

    fn closes(effects: &[Effect]) -> Vec<(ConnId, u16)> {
        effects
            .iter()
            .filter_map(|e| match e {
                Effect::Close { conn, code, .. } => Some((*conn, *code)),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn a_new_session_stores_its_language_before_anyone_joins() {
        let mut fx = Effects::new();
        let room = RoomState::load(
            Loaded {
                id: SessionId::new_random(),
                kind: DocumentKind::Session,
                language: Language::Python,
                ended: false,
                unread: false,
            },
            empty_store(),
            Arc::new(Limits::default()),
            Instant::now(),
            &mut fx,
        );
        assert_eq!(room.language(), Some(Language::Python));
        let effects = take(&mut fx);
        let stored: Vec<&[u8]> = effects
            .iter()
            .map(|effect| match effect {
                Effect::Store(updates) => updates[0].bytes.as_slice(),
                other => panic!("expected only stores, got {other:?}"),
            })
            .collect();
        let (doc, _) = SessionDoc::from_updates(stored);
        assert_eq!(doc.language(), Some(Language::Python));
        assert!(!doc.ended());
    }

    #[test]
    fn a_deletion_is_credited_to_the_connection_that_sent_it() {
        let now = Instant::now();
        let mut room = room_with(Limits::default(), now);
        let mut fx = Effects::new();
        let doc = yrs::Doc::with_client_id(7);
        let code = doc.get_or_insert_text(crate::sync::document::CODE);
        let (insert, delete) = {
            let mut txn = doc.transact_mut();
            code.insert(&mut txn, 0, "abc");
            let insert = txn.encode_update_v1();
            drop(txn);
            let mut txn = doc.transact_mut();
            code.remove_range(&mut txn, 0, 1);
            (insert, txn.encode_update_v1())
        };
        let authors = |room: &mut RoomState, fx: &mut Effects, update: &[u8]| -> Vec<u64> {
            room.frame(
                ALICE,
                frame_of(&protocol::encode_update(update)),
                now,
                0,
                fx,
            );
            let authors = take(fx)
                .into_iter()
                .flat_map(|e| match e {
                    Effect::Store(updates) => updates.into_iter().map(|u| u.author).collect(),
                    _ => Vec::new(),
                })
                .collect();
            room.stored(StoreOutcome::Stored, now, fx);
            take(fx);
            authors
        };
        assert_eq!(authors(&mut room, &mut fx, &insert), [7]);
        // Before its presence, a deletion names nobody.
        assert_eq!(authors(&mut room, &mut fx, &delete), [SERVER_AUTHOR]);
        let presence = protocol::encode_awareness_entries([(7, 1, "{}")].into_iter());
        room.frame(ALICE, frame_of(&presence), now, 0, &mut fx);
        take(&mut fx);
        assert_eq!(authors(&mut room, &mut fx, &delete), [7]);
    }

    #[test]
    fn an_edit_is_relayed_only_once_stored_and_never_to_its_sender() {
        let now = Instant::now();
        let mut room = room_with(Limits::default(), now);
        let mut fx = Effects::new();
        let update = edit(7, "print(1)");
        room.frame(
            ALICE,
            frame_of(&protocol::encode_update(&update)),
            now,
            0,
            &mut fx,
        );
        let effects = take(&mut fx);
        assert_eq!(
            effects,
            vec![Effect::Store(vec![AuthoredUpdate {
                author: 7,
                bytes: update.clone()
            }])]
        );
        room.stored(StoreOutcome::Stored, now, &mut fx);
        let effects = take(&mut fx);
        assert_eq!(
            effects,
            vec![Effect::Broadcast {
                except: Some(ALICE),
                frame: protocol::encode_update(&update).into(),
            }]
        );
        assert_eq!(room.document().code(), "print(1)");
    }

    #[test]
    fn an_edit_that_cannot_be_stored_is_dropped_and_its_sender_closed() {
        for (outcome, code) in [
            (StoreOutcome::Failed, close::INTERNAL_ERROR),
            (StoreOutcome::Unavailable, close::TRY_AGAIN_LATER),
        ] {
            a_refused_store_drops_the_edit_and_closes_its_sender(outcome, code);
        }
    }

    fn a_refused_store_drops_the_edit_and_closes_its_sender(outcome: StoreOutcome, code: u16) {
        let now = Instant::now();
        let mut room = room_with(Limits::default(), now);
        let mut fx = Effects::new();
        let update = edit(7, "lost");
        room.frame(
            ALICE,
            frame_of(&protocol::encode_update(&update)),
            now,
            0,
            &mut fx,
        );
        take(&mut fx);
        room.stored(outcome, now, &mut fx);
        let effects = take(&mut fx);
        assert_eq!(closes(&effects), vec![(ALICE, code)]);
        assert!(!effects.iter().any(|e| matches!(
            e,
            Effect::Broadcast {
                except: Some(ALICE),
                ..
            }
        )));
        assert_eq!(room.document().code(), "");
        assert_eq!(room.connection_count(), 1);
    }

    #[test]
    fn a_sync_request_is_answered_with_the_stored_document() {
        let now = Instant::now();
        let mut room = room_with(Limits::default(), now);
        store_edit_from_alice(&mut room, &edit(7, "x = 1"), now);
        assert_eq!(synced_by_bob(&mut room, now), "x = 1");
    }

    /// Alice sends `update`, and it is stored.
    fn store_edit_from_alice(room: &mut RoomState, update: &[u8], now: Instant) {
        let mut fx = Effects::new();
        room.frame(
            ALICE,
            frame_of(&protocol::encode_update(update)),
            now,
            0,
            &mut fx,
        );
        room.stored(StoreOutcome::Stored, now, &mut fx);
    }

    /// Bob's view of the room after asking for everything (SyncStep1).
    fn synced_by_bob(room: &mut RoomState, now: Instant) -> String {
        let mut fx = Effects::new();
        let request = protocol::encode_sync_step1(&yrs::StateVector::default());
        room.frame(BOB, frame_of(&request), now, 0, &mut fx);
        let effects = take(&mut fx);
        let [Effect::Send { to: BOB, frame }] = effects.as_slice() else {
            panic!("expected one answer to Bob, got {effects:?}")
        };
        let Some(ClientMessage::SyncStep2(answer)) = decode_frame(frame).unwrap().pop() else {
            panic!("not a SyncStep2")
        };
        let replica = SessionDoc::new();
        replica.apply(&answer.bytes).unwrap();
        replica.code()
    }

    #[test]
    fn a_quiet_room_packs_its_document_and_still_serves_and_takes_edits() {
        let now = Instant::now();
        let mut room = room_with(Limits::default(), now);
        let mut fx = Effects::new();
        store_edit_from_alice(&mut room, &edit(7, "x = 1"), now);
        let mut at = now;
        for _ in 0..3 {
            at += AWARENESS_SWEEP;
            room.tick(at, 0, &mut fx);
        }
        take(&mut fx);
        assert!(room.doc.is_packed(), "nothing used it for a whole check");
        assert_eq!(synced_by_bob(&mut room, at), "x = 1");
        assert!(!room.doc.is_packed(), "decoded to answer Bob");

        room.tick(at + AWARENESS_SWEEP, 0, &mut fx);
        room.tick(at + AWARENESS_SWEEP * 2, 0, &mut fx);
        take(&mut fx);
        assert!(room.doc.is_packed());
        store_edit_from_alice(&mut room, &edit(8, "y = 2\n"), at);
        let code = room.document().code();
        assert!(code.contains("x = 1") && code.contains("y = 2"), "{code:?}");
        assert_eq!(synced_by_bob(&mut room, at), code);
    }

    #[test]
    fn an_edit_past_the_document_limit_is_refused_before_it_is_stored() {
        let now = Instant::now();
        let limits = Limits {
            max_document_bytes: 2_000,
            ..Limits::default()
        };
        let mut room = room_with(limits, now);
        let mut fx = Effects::new();
        let big = edit(7, &"a".repeat(3_000));
        room.frame(
            ALICE,
            frame_of(&protocol::encode_update(&big)),
            now,
            0,
            &mut fx,
        );
        let effects = take(&mut fx);
        assert_eq!(closes(&effects), vec![(ALICE, close::DOCUMENT_TOO_LARGE)]);
        assert!(!effects.iter().any(|e| matches!(e, Effect::Store(_))));
    }

    #[test]
    fn a_full_history_makes_the_session_read_only() {
        let now = Instant::now();
        let limits = Limits {
            max_history_bytes: 400,
            ..Limits::default()
        };
        let mut room = room_with(limits, now);
        let mut fx = Effects::new();
        room.frame(
            ALICE,
            frame_of(&protocol::encode_update(&edit(7, &"a".repeat(300)))),
            now,
            0,
            &mut fx,
        );
        room.stored(StoreOutcome::Stored, now, &mut fx);
        take(&mut fx);
        room.frame(
            BOB,
            frame_of(&protocol::encode_update(&edit(8, &"b".repeat(300)))),
            now,
            0,
            &mut fx,
        );
        assert_eq!(closes(&take(&mut fx)), vec![(BOB, close::HISTORY_FULL)]);
    }

    #[test]
    fn one_address_cannot_fill_a_session() {
        let now = Instant::now();
        let limits = Limits {
            max_connections_per_session_per_ip: 2,
            ..Limits::default()
        };
        let mut room = room_with(limits, now);
        let mut fx = Effects::new();
        room.join(3, ip(1), Role::Candidate, 0, &mut fx).unwrap();
        let refused = room
            .join(4, ip(1), Role::Candidate, 0, &mut fx)
            .unwrap_err();
        assert_eq!(refused.code, close::TRY_AGAIN_LATER);
        assert_eq!(room.connection_count(), 3);
    }

    #[test]
    fn an_oversized_presence_state_closes_its_sender_and_nobody_sees_it() {
        let now = Instant::now();
        let mut room = room_with(Limits::default(), now);
        let mut fx = Effects::new();
        let huge = format!(r#"{{"user":{{"name":"{}"}}}}"#, "x".repeat(5_000));
        let frame = protocol::encode_awareness_entries([(99, 1, huge.as_str())].into_iter());
        room.frame(ALICE, frame_of(&frame), now, 0, &mut fx);
        let effects = take(&mut fx);
        assert_eq!(closes(&effects), vec![(ALICE, close::POLICY_VIOLATION)]);
        assert!(!effects
            .iter()
            .any(|e| matches!(e, Effect::Broadcast { .. })));
    }

    #[test]
    fn a_connection_that_cannot_keep_up_is_closed_with_its_backlog_dropped() {
        let now = Instant::now();
        let mut room = room_with(Limits::default(), now);
        let mut fx = Effects::new();
        room.unreachable(BOB, true, now, &mut fx);
        let effects = take(&mut fx);
        assert!(effects.contains(&Effect::Connections(1)), "{effects:?}");
        assert!(effects.iter().any(|e| matches!(
            e,
            Effect::Close {
                conn: BOB,
                code: close::TRY_AGAIN_LATER,
                discard_backlog: true,
                ..
            }
        )));
        // Its Leave, arriving later, changes nothing.
        room.leave(BOB, now, &mut fx);
        assert!(fx.is_empty());
    }

    #[test]
    fn an_empty_room_offers_to_unload_after_the_grace_period_and_again_if_refused() {
        let start = Instant::now();
        let limits = Limits::default();
        let grace = limits.room_unload_grace;
        let mut room = room_with(limits, start);
        let mut fx = Effects::new();
        room.leave(ALICE, start, &mut fx);
        room.leave(BOB, start, &mut fx);
        take(&mut fx);
        room.tick(start + grace / 2, 0, &mut fx);
        assert!(!take(&mut fx).contains(&Effect::Unload));
        room.tick(start + grace, 0, &mut fx);
        assert!(take(&mut fx).contains(&Effect::Unload));
        room.unload_refused(start + grace);
        room.tick(start + grace + grace / 2, 0, &mut fx);
        assert!(!take(&mut fx).contains(&Effect::Unload));
        room.tick(start + grace * 2, 0, &mut fx);
        assert!(take(&mut fx).contains(&Effect::Unload));
    }

    #[test]
    fn a_failed_snapshot_is_retried_after_a_growing_wait() {
        let now = Instant::now();
        let mut room = room_with(Limits::default(), now);
        let mut fx = Effects::new();
        // 64 KiB of edits make a snapshot due.
        room.frame(
            ALICE,
            frame_of(&protocol::encode_update(&edit(7, &"a".repeat(70_000)))),
            now,
            0,
            &mut fx,
        );
        room.stored(StoreOutcome::Stored, now, &mut fx);
        assert!(take(&mut fx)
            .iter()
            .any(|e| matches!(e, Effect::Snapshot { .. })));
        room.snapshot_stored(false, now);
        assert!(room.snapshot_failing());
        room.tick(now + SNAPSHOT_FIRST_BACKOFF / 2, 0, &mut fx);
        assert!(!take(&mut fx)
            .iter()
            .any(|e| matches!(e, Effect::Snapshot { .. })));
        let first_retry = now + SNAPSHOT_FIRST_BACKOFF;
        room.tick(first_retry, 0, &mut fx);
        assert!(take(&mut fx)
            .iter()
            .any(|e| matches!(e, Effect::Snapshot { .. })));
        room.snapshot_stored(false, first_retry);
        room.tick(first_retry + SNAPSHOT_FIRST_BACKOFF, 0, &mut fx);
        assert!(
            !take(&mut fx)
                .iter()
                .any(|e| matches!(e, Effect::Snapshot { .. })),
            "the second wait is twice the first"
        );
        let second_retry = first_retry + SNAPSHOT_FIRST_BACKOFF * 2;
        room.tick(second_retry, 0, &mut fx);
        assert!(take(&mut fx)
            .iter()
            .any(|e| matches!(e, Effect::Snapshot { .. })));
        room.snapshot_stored(true, second_retry);
        assert!(!room.snapshot_failing());
    }

    #[test]
    fn a_language_change_is_published_once_applied() {
        let now = Instant::now();
        let mut room = room_with(Limits::default(), now);
        let mut fx = Effects::new();
        // A client that has synced the document changes the language.
        let client = yrs::Doc::with_client_id(7);
        let meta = client.get_or_insert_map(crate::sync::document::META);
        let synced = Update::decode_v1(&room.document().snapshot()).unwrap();
        client.transact_mut().apply_update(synced).unwrap();
        let update = {
            let mut txn = client.transact_mut();
            meta.insert(&mut txn, crate::sync::document::META_LANGUAGE, "javascript");
            txn.encode_update_v1()
        };
        room.frame(
            ALICE,
            frame_of(&protocol::encode_update(&update)),
            now,
            0,
            &mut fx,
        );
        room.stored(StoreOutcome::Stored, now, &mut fx);
        take(&mut fx);
        room.tick(now + APPLY_DELAY, 0, &mut fx);
        assert!(take(&mut fx).contains(&Effect::Language(Language::JavaScript)));
        assert_eq!(room.language(), Some(Language::JavaScript));
    }

    #[test]
    fn every_connection_is_pinged_each_interval() {
        let now = Instant::now();
        let limits = Limits::default();
        let interval = limits.ping_interval;
        let mut room = room_with(limits, now);
        let mut fx = Effects::new();
        room.tick(now + interval, 0, &mut fx);
        assert!(take(&mut fx).contains(&Effect::PingAll));
        room.tick(now + interval + interval / 2, 0, &mut fx);
        assert!(!take(&mut fx).contains(&Effect::PingAll));
    }

    #[test]
    fn shutdown_tells_everyone_and_takes_a_due_snapshot() {
        let now = Instant::now();
        let mut room = room_with(Limits::default(), now);
        let mut fx = Effects::new();
        room.shutdown(&mut fx);
        let effects = take(&mut fx);
        let mut closed = closes(&effects);
        closed.sort();
        assert_eq!(
            closed,
            vec![(ALICE, close::GOING_AWAY), (BOB, close::GOING_AWAY)]
        );
        assert_eq!(room.connection_count(), 0);
    }

    #[test]
    fn an_ended_interview_takes_no_edit_from_anyone_until_reopened() {
        let now = Instant::now();
        let mut room = room_with(Limits::default(), now);
        room.join(3, ip(3), Role::Interviewer, 0, &mut Effects::new())
            .unwrap();
        let mut fx = Effects::new();
        room.set_ended(true, &mut fx);
        // The flag goes into the document, stored, then to everyone.
        let effects = take(&mut fx);
        assert!(
            matches!(effects.as_slice(), [Effect::Store(_)]),
            "{effects:?}"
        );
        room.stored(StoreOutcome::Stored, now, &mut fx);
        assert!(matches!(
            take(&mut fx).as_slice(),
            [Effect::Broadcast { except: None, .. }]
        ));
        assert!(room.document().ended());
        for conn in [ALICE, 3] {
            room.frame(
                conn,
                frame_of(&protocol::encode_update(&edit(conn, "late"))),
                now,
                0,
                &mut fx,
            );
            let effects = take(&mut fx);
            assert_eq!(closes(&effects), vec![(conn, close::INTERVIEW_ENDED)]);
            assert!(!effects.iter().any(|e| matches!(e, Effect::Store(_))));
        }
        // Reading still works.
        let request = protocol::encode_sync_step1(&yrs::StateVector::default());
        room.frame(BOB, frame_of(&request), now, 0, &mut fx);
        assert!(matches!(
            take(&mut fx).as_slice(),
            [Effect::Send { to: BOB, .. }]
        ));
        room.set_ended(false, &mut fx);
        room.stored(StoreOutcome::Stored, now, &mut fx);
        take(&mut fx);
        room.frame(
            BOB,
            frame_of(&protocol::encode_update(&edit(9, "again"))),
            now,
            0,
            &mut fx,
        );
        assert!(matches!(take(&mut fx).as_slice(), [Effect::Store(_)]));
    }

    #[test]
    fn a_client_that_overwrites_the_ended_flag_is_put_back() {
        let now = Instant::now();
        let mut room = room_with(Limits::default(), now);
        let mut fx = Effects::new();
        // A client that has synced (so its write overwrites the server's flag,
        // which the schema cannot see) sets ended = true.
        let client = yrs::Doc::with_client_id(7);
        let synced = Update::decode_v1(&room.document().snapshot()).unwrap();
        client.transact_mut().apply_update(synced).unwrap();
        let meta = client.get_or_insert_map(crate::sync::document::META);
        let forged = {
            let mut txn = client.transact_mut();
            meta.insert(&mut txn, crate::sync::document::META_ENDED, true);
            txn.encode_update_v1()
        };
        room.frame(
            ALICE,
            frame_of(&protocol::encode_update(&forged)),
            now,
            0,
            &mut fx,
        );
        room.stored(StoreOutcome::Stored, now, &mut fx);
        take(&mut fx);
        room.tick(now + APPLY_DELAY, 0, &mut fx);
        let effects = take(&mut fx);
        assert!(
            matches!(effects.as_slice(), [Effect::Store(_)]),
            "{effects:?}"
        );
        room.stored(StoreOutcome::Stored, now, &mut fx);
        assert!(!room.document().ended());
        assert_eq!(room.lifecycle(), Lifecycle::Open);
    }

    #[test]
    fn a_deleted_session_closes_everyone_with_4404_and_takes_nobody() {
        let now = Instant::now();
        let mut room = room_with(Limits::default(), now);
        let mut fx = Effects::new();
        room.delete(&mut fx);
        let effects = take(&mut fx);
        let mut closed = closes(&effects);
        closed.sort();
        assert_eq!(
            closed,
            vec![
                (ALICE, close::SESSION_NOT_FOUND),
                (BOB, close::SESSION_NOT_FOUND)
            ]
        );
        assert!(effects.contains(&Effect::Unload));
        let refused = room
            .join(5, ip(5), Role::Interviewer, 0, &mut fx)
            .unwrap_err();
        assert_eq!(refused.code, close::SESSION_NOT_FOUND);
    }

    #[test]
    fn presence_carries_the_role_the_server_gave_the_connection() {
        let now = Instant::now();
        let mut room = room_with(Limits::default(), now);
        room.join(3, ip(3), Role::Interviewer, 0, &mut Effects::new())
            .unwrap();
        let mut fx = Effects::new();
        let claim = r#"{"user":{"name":"Eve"},"role":"interviewer"}"#;
        let frame = protocol::encode_awareness_entries([(70, 1, claim)].into_iter());
        room.frame(ALICE, frame_of(&frame), now, 0, &mut fx);
        let role_in = |effects: Vec<Effect>| -> String {
            let Some(Effect::Broadcast { frame, .. }) = effects
                .iter()
                .find(|e| matches!(e, Effect::Broadcast { .. }))
            else {
                panic!("expected a relay, got {effects:?}")
            };
            let Some(ClientMessage::Awareness(message)) = decode_frame(frame).unwrap().pop() else {
                panic!("not awareness")
            };
            let state: serde_json::Value = serde_json::from_str(&message.entries[0].json).unwrap();
            state["role"].as_str().unwrap().to_owned()
        };
        assert_eq!(role_in(take(&mut fx)), "candidate");
        let frame =
            protocol::encode_awareness_entries([(71, 1, r#"{"user":{"name":"Ian"}}"#)].into_iter());
        room.frame(3, frame_of(&frame), now, 0, &mut fx);
        assert_eq!(role_in(take(&mut fx)), "interviewer");
    }

    #[test]
    fn a_notes_document_records_events_and_writes_no_session_fields() {
        let now = Instant::now();
        let mut fx = Effects::new();
        let mut notes = RoomState::load(
            Loaded {
                id: SessionId::new_random(),
                kind: DocumentKind::Notes,
                language: Language::Python,
                ended: true,
                unread: false,
            },
            empty_store(),
            Arc::new(Limits::default()),
            now,
            &mut fx,
        );
        assert!(fx.is_empty(), "no language and no ended flag in notes");
        notes
            .join(ALICE, ip(1), Role::Interviewer, 0, &mut fx)
            .unwrap();
        take(&mut fx);
        let event = yrs::Any::from(std::collections::HashMap::from([(
            "kind".to_owned(),
            yrs::Any::from("blur"),
        )]));
        notes.record_events(vec![event.clone()], now, &mut fx);
        assert!(matches!(take(&mut fx).as_slice(), [Effect::Store(_)]));
        notes.stored(StoreOutcome::Stored, now, &mut fx);
        assert!(matches!(
            take(&mut fx).as_slice(),
            [Effect::Broadcast { except: None, .. }]
        ));
        assert_eq!(notes.document().events(), vec![event]);
        // Notes stay writable when the interview has ended.
        let note = {
            let doc = yrs::Doc::with_client_id(7);
            let text = doc.get_or_insert_text(crate::sync::document::NOTES);
            let mut txn = doc.transact_mut();
            text.insert(&mut txn, 0, "good");
            txn.encode_update_v1()
        };
        notes.frame(
            ALICE,
            frame_of(&protocol::encode_update(&note)),
            now,
            0,
            &mut fx,
        );
        assert!(matches!(take(&mut fx).as_slice(), [Effect::Store(_)]));
    }

    #[test]
    fn participants_are_recorded_when_named_and_when_leaving_in_batches() {
        let now = Instant::now();
        let mut room = room_with(Limits::default(), now);
        let mut fx = Effects::new();
        let state = r##"{"user":{"name":"Cara","color":"#30bced"}}"##;
        let frame = protocol::encode_awareness_entries([(80, 1, state)].into_iter());
        room.frame(ALICE, frame_of(&frame), now, 1_000, &mut fx);
        let recorded = |effects: Vec<Effect>| -> Vec<Vec<yrs::Any>> {
            effects
                .into_iter()
                .filter_map(|e| match e {
                    Effect::Record(events) => Some(events),
                    _ => None,
                })
                .collect()
        };
        // Kept for the batch, not handed over at once.
        assert!(recorded(take(&mut fx)).is_empty());
        assert!(room.next_deadline() <= now + EVENT_BATCH_DELAY);
        // Presence again: no second join.
        let frame = protocol::encode_awareness_entries([(80, 2, state)].into_iter());
        room.frame(ALICE, frame_of(&frame), now, 2_000, &mut fx);
        room.leave(ALICE, now, &mut fx);
        // Bob never named himself: nothing recorded for him.
        room.leave(BOB, now, &mut fx);
        room.tick(now + EVENT_BATCH_DELAY, 3_000, &mut fx);
        let mut join = participant_event("join", "Cara", Role::Candidate, 0);
        join.insert("client".into(), yrs::Any::from(80.0));
        join.insert("color".into(), yrs::Any::from("#30bced"));
        let mut leave = participant_event("leave", "Cara", Role::Candidate, 2_000);
        leave.insert("client".into(), yrs::Any::from(80.0));
        assert_eq!(
            recorded(take(&mut fx)),
            vec![vec![yrs::Any::from(join), yrs::Any::from(leave)]],
            "one batch with both"
        );
        room.tick(now + EVENT_BATCH_DELAY * 2, 4_000, &mut fx);
        assert!(recorded(take(&mut fx)).is_empty(), "handed over twice");
    }

    #[test]
    fn a_full_batch_of_events_is_handed_over_at_once() {
        let now = Instant::now();
        let mut room = room_with(Limits::default(), now);
        let mut fx = Effects::new();
        let state = r#"{"user":{"name":"Loop"}}"#;
        let mut batches = Vec::new();
        // Someone joining and leaving in a loop, faster than the batch delay.
        for i in 0..EVENT_BATCH_MAX as u64 {
            let conn = 100 + i;
            room.join(conn, ip(3), Role::Candidate, 0, &mut fx).unwrap();
            let frame = protocol::encode_awareness_entries([(1_000 + i, 1, state)].into_iter());
            room.frame(conn, frame_of(&frame), now, 0, &mut fx);
            room.leave(conn, now, &mut fx);
            batches.extend(take(&mut fx).into_iter().filter_map(|e| match e {
                Effect::Record(events) => Some(events.len()),
                _ => None,
            }));
        }
        assert_eq!(batches, [EVENT_BATCH_MAX, EVENT_BATCH_MAX]);
    }

    #[test]
    fn events_kept_for_a_batch_are_handed_over_before_unloading_and_at_shutdown() {
        let now = Instant::now();
        let state = r#"{"user":{"name":"Dan"}}"#;
        let frame = protocol::encode_awareness_entries([(81, 1, state)].into_iter());
        let mut fx = Effects::new();
        let mut room = room_with(Limits::default(), now);
        room.frame(ALICE, frame_of(&frame), now, 1_000, &mut fx);
        room.shutdown(&mut fx);
        assert!(take(&mut fx)
            .iter()
            .any(|e| matches!(e, Effect::Record(events) if events.len() == 1)));

        let limits = Limits {
            room_unload_grace: Duration::from_secs(1),
            ..Limits::default()
        };
        let mut room = room_with(limits, now);
        room.frame(ALICE, frame_of(&frame), now, 1_000, &mut fx);
        room.leave(ALICE, now, &mut fx);
        room.leave(BOB, now, &mut fx);
        take(&mut fx);
        room.tick(now + Duration::from_secs(1), 2_000, &mut fx);
        let effects = take(&mut fx);
        let record = effects
            .iter()
            .position(|e| matches!(e, Effect::Record(events) if events.len() == 2));
        let unload = effects.iter().position(|e| *e == Effect::Unload);
        assert!(
            record.is_some() && record < unload,
            "join and leave before unloading: {effects:?}"
        );
    }

    #[test]
    fn an_empty_notes_document_unloads_soon_after_recording() {
        let now = Instant::now();
        let mut fx = Effects::new();
        let mut notes = RoomState::load(
            Loaded {
                id: SessionId::new_random(),
                kind: DocumentKind::Notes,
                language: Language::Python,
                ended: false,
                unread: false,
            },
            empty_store(),
            Arc::new(Limits::default()),
            now,
            &mut fx,
        );
        notes.record_events(vec![yrs::Any::from("join")], now, &mut fx);
        notes.stored(StoreOutcome::Stored, now, &mut fx);
        take(&mut fx);
        notes.tick(now + NOTES_UNLOAD_GRACE, 0, &mut fx);
        assert!(take(&mut fx).contains(&Effect::Unload));
    }

    #[test]
    fn an_unread_notes_document_appends_events_and_reads_storage_before_a_join() {
        let now = Instant::now();
        let mut fx = Effects::new();
        let mut notes = RoomState::load(
            Loaded {
                id: SessionId::new_random(),
                kind: DocumentKind::Notes,
                language: Language::Python,
                ended: false,
                unread: true,
            },
            empty_store(),
            Arc::new(Limits::default()),
            now,
            &mut fx,
        );
        // What storage already holds: a note.
        let earlier = SessionDoc::new();
        let note = earlier.edit_notes("earlier note").unwrap();
        notes.record_events(vec![yrs::Any::from("blur")], now, &mut fx);
        let Some(Effect::Store(appended)) = fx.pop_front() else {
            panic!("expected a store")
        };
        notes.stored(StoreOutcome::Stored, now, &mut fx);
        fx.clear();
        // Never snapshotted while unread: its copy is partial.
        notes.shutdown(&mut fx);
        assert!(!fx.iter().any(|e| matches!(e, Effect::Snapshot { .. })));
        assert!(notes.needs_document());
        let mut stored = empty_store();
        stored.updates = [note, appended[0].bytes.clone()]
            .into_iter()
            .enumerate()
            .map(|(i, update)| crate::storage::LoggedUpdate {
                seq: i as u64 + 1,
                at_ms: 0,
                author: 0,
                update,
            })
            .collect();
        notes.read_document(stored);
        assert!(!notes.needs_document());
        assert_eq!(notes.document().notes(), "earlier note");
        assert_eq!(notes.document().events(), vec![yrs::Any::from("blur")]);
    }

    #[test]
    fn events_stop_being_recorded_at_the_notes_size_and_history_limits() {
        let now = Instant::now();
        let record_until_refused = |limits: Limits, unread: bool, history: u64| -> usize {
            let mut fx = Effects::new();
            let mut stored = empty_store();
            stored.history_bytes = history;
            let mut notes = RoomState::load(
                Loaded {
                    id: SessionId::new_random(),
                    kind: DocumentKind::Notes,
                    language: Language::Python,
                    ended: false,
                    unread,
                },
                stored,
                Arc::new(limits),
                now,
                &mut fx,
            );
            let event = yrs::Any::from("x".repeat(100));
            let mut recorded = 0;
            for i in 0..1_000u64 {
                // Apart enough that each check may measure.
                let at = now + rules::MIN_MEASURE_INTERVAL * (i as u32 + 1);
                notes.record_events(vec![event.clone()], at, &mut fx);
                let stores = take(&mut fx)
                    .into_iter()
                    .filter(|e| matches!(e, Effect::Store(_)))
                    .count();
                if stores == 0 {
                    return recorded;
                }
                recorded += 1;
                notes.stored(StoreOutcome::Stored, at, &mut fx);
                take(&mut fx);
            }
            recorded
        };
        let small_document = Limits {
            max_document_bytes: 5_000,
            ..Limits::default()
        };
        let read = record_until_refused(small_document.clone(), false, 0);
        assert!((20..50).contains(&read), "recorded {read} events");
        // Not read: bounded by its history, which already fills the limit.
        assert_eq!(record_until_refused(small_document, true, 5_000), 0);
        let short_history = Limits {
            max_history_bytes: 2_000,
            ..Limits::default()
        };
        let by_history = record_until_refused(short_history, false, 0);
        assert!(
            (5..20).contains(&by_history),
            "recorded {by_history} events"
        );
    }

    /// A room on a log shared with other instances (cluster mode), with
    /// Alice and Bob connected.
    fn shared_room(now: Instant) -> RoomState {
        let stored = StoredDocument {
            log_position: Some("5-0".into()),
            ..empty_store()
        };
        room_from(stored, Limits::default(), now)
    }

    fn logged(position: &str, from_peer: bool, update: Vec<u8>) -> super::super::LoggedEntry {
        super::super::LoggedEntry {
            position: position.into(),
            from_peer,
            update,
        }
    }

    #[test]
    fn a_peers_logged_edits_reach_everyone_here_and_own_ones_are_not_sent_twice() {
        let now = Instant::now();
        let mut room = shared_room(now);
        let mut fx = Effects::new();
        room.logged(
            vec![
                logged("6-0", true, edit(77, "peer ")),
                logged("7-0", false, edit(78, "own ")),
            ],
            now,
            &mut fx,
        );
        let broadcasts: Vec<_> = take(&mut fx)
            .into_iter()
            .filter_map(|e| match e {
                Effect::Broadcast {
                    except: None,
                    frame,
                } => Some(frame),
                _ => None,
            })
            .collect();
        assert_eq!(
            broadcasts,
            vec![Bytes::from(protocol::encode_update(&edit(77, "peer ")))],
            "the peer's edit is relayed to everyone here, this instance's own is not"
        );
        // The room's own entries are in its document already (stored from it).
        assert_eq!(room.document().code(), "peer ");
        assert_eq!(room.log_position(), Some("7-0"));
    }

    #[test]
    fn after_a_store_reported_failed_the_rooms_own_logged_entries_are_applied() {
        let now = Instant::now();
        let mut room = shared_room(now);
        let mut fx = Effects::new();
        let lost = edit(5, "maybe stored ");
        room.frame(
            ALICE,
            frame_of(&protocol::encode_update(&lost)),
            now,
            0,
            &mut fx,
        );
        assert!(take(&mut fx).iter().any(|e| matches!(e, Effect::Store(_))));
        room.stored(StoreOutcome::Unavailable, now, &mut fx);
        assert_eq!(
            closes(&take(&mut fx)),
            vec![(ALICE, close::TRY_AGAIN_LATER)]
        );
        assert_eq!(room.document().code(), "");
        // It reached the log after all: the room now holds it, so a snapshot
        // covering its position does not lose it.
        room.logged(vec![logged("8-0", false, lost)], now, &mut fx);
        assert!(
            !take(&mut fx)
                .iter()
                .any(|e| matches!(e, Effect::Broadcast { .. })),
            "an own entry was relayed"
        );
        assert_eq!(room.document().code(), "maybe stored ");
    }

    #[test]
    fn a_snapshot_says_up_to_where_in_the_shared_log_it_covers() {
        let now = Instant::now();
        let mut room = shared_room(now);
        let mut fx = Effects::new();
        room.logged(vec![logged("9-3", true, edit(77, "x"))], now, &mut fx);
        room.start_snapshot(&mut fx);
        let covers = take(&mut fx).into_iter().find_map(|e| match e {
            Effect::Snapshot { covers, .. } => Some(covers),
            _ => None,
        });
        assert_eq!(covers, Some(Some("9-3".to_owned())));
    }

    #[test]
    fn presence_is_published_to_peers_and_theirs_reaches_everyone_here() {
        let now = Instant::now();
        let mut room = shared_room(now);
        let mut fx = Effects::new();
        let own = protocol::encode_awareness_entries(
            [(11u64, 1u32, r#"{"role":"candidate"}"#)].into_iter(),
        );
        room.frame(ALICE, frame_of(&own), now, 0, &mut fx);
        assert!(
            take(&mut fx)
                .iter()
                .any(|e| matches!(e, Effect::Publish(_))),
            "Alice's presence was not published to the other instances"
        );
        let theirs = protocol::encode_awareness_entries(
            [(99u64, 1u32, r#"{"role":"interviewer"}"#)].into_iter(),
        );
        room.peer_presence(&theirs, 0, &mut fx);
        let effects = take(&mut fx);
        assert!(effects
            .iter()
            .any(|e| matches!(e, Effect::Broadcast { except: None, .. })));
        assert!(
            !effects.iter().any(|e| matches!(e, Effect::Publish(_))),
            "a peer's presence was published back"
        );
    }

    #[test]
    fn an_edit_while_another_instance_reopens_the_session_is_refused_for_now_not_for_good() {
        let now = Instant::now();
        let mut room = shared_room(now);
        let mut fx = Effects::new();
        room.set_ended(true, &mut fx);
        room.stored(StoreOutcome::Stored, now, &mut fx);
        take(&mut fx);
        // The other instance's room reopened it; its flag comes through the log
        // before the word of the record change reaches this room.
        let peer = SessionDoc::from_updates([room.document().snapshot().as_slice()]).0;
        room.logged(
            vec![logged("6-0", true, peer.set_ended(false))],
            now,
            &mut fx,
        );
        take(&mut fx);
        let update = protocol::encode_update(&edit(7, "x"));
        room.frame(ALICE, frame_of(&update), now, 0, &mut fx);
        let effects = take(&mut fx);
        assert_eq!(closes(&effects), vec![(ALICE, close::TRY_AGAIN_LATER)]);
        assert!(effects.contains(&Effect::CheckRecord), "{effects:?}");

        // The record says reopened: Bob's edit is taken.
        room.set_ended(false, &mut fx);
        take(&mut fx);
        room.frame(BOB, frame_of(&update), now, 0, &mut fx);
        assert!(
            take(&mut fx).iter().any(|e| matches!(e, Effect::Store(_))),
            "the edit was not taken once reopened"
        );

        // Ended here and in the log: refused for good.
        room.set_ended(true, &mut fx);
        room.stored(StoreOutcome::Stored, now, &mut fx);
        take(&mut fx);
        room.frame(
            BOB,
            frame_of(&protocol::encode_update(&edit(8, "y"))),
            now,
            0,
            &mut fx,
        );
        assert_eq!(closes(&take(&mut fx)), vec![(BOB, close::INTERVIEW_ENDED)]);
    }

    #[test]
    fn a_peers_edit_of_the_ended_flag_has_the_room_read_the_sessions_record() {
        let now = Instant::now();
        let mut room = shared_room(now);
        let mut fx = Effects::new();
        let peer = SessionDoc::from_updates([]).0;
        let flag = peer.set_ended(true);
        room.logged(vec![logged("6-0", true, flag)], now, &mut fx);
        room.tick(now + APPLY_DELAY, 0, &mut fx);
        let effects = take(&mut fx);
        assert!(effects.contains(&Effect::CheckRecord), "{effects:?}");
        assert!(
            !effects.iter().any(|e| matches!(e, Effect::Store(_))),
            "the room put a peer's ended flag back on its own word"
        );
        room.set_ended(true, &mut fx);
        assert!(
            take(&mut fx).is_empty(),
            "the record agreed: nothing to write"
        );
    }
}

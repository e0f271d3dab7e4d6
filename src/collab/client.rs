//! One participant's replica of a session: document, presence and undo history.
//! Every input (a frame from the server, an editor change, a cursor move, undo)
//! returns [`Effects`]: frames to send and changes to show.
//!
//! Transactions carry an origin: editor edits are `LOCAL` (already in the editor,
//! so not echoed back to it; tracked by undo), frames from the server are
//! `REMOTE` (shown in the editor, never sent back). Anything else (undo, redo)
//! is both shown and sent.

use super::{
    presence::{color_for, parse_state, CursorState, Peer, PresenceState, UserInfo},
    text_ops::{ops_from_delta, utf16_len, EditorChange, TextOp},
};
use crate::{
    domain::{
        run::{LiveRun, RunRecord},
        Language,
    },
    sync::{
        protocol::{self, decode_frame, ClientMessage, FrameError},
        SessionDoc,
    },
};
use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
};
use yrs::{
    block::ClientID,
    sync::{
        awareness::{AwarenessUpdate, AwarenessUpdateEntry},
        Awareness,
    },
    undo::{Options as UndoOptions, UndoManager},
    updates::{decoder::Decode, encoder::Encode},
    Assoc, IndexedSequence, Observable, Origin, StickyIndex, Text, Transact,
};

/// Origin of transactions made from editor changes.
pub const LOCAL: &str = "pairpad:local";
/// Origin of transactions applying server frames.
pub const REMOTE: &str = "pairpad:remote";
/// Key our observers are registered under.
const OBSERVER: &str = "pairpad:collab";
/// Inserts larger than this (UTF-16 units) are split into several updates, so a
/// huge paste never makes a frame larger than the server accepts.
pub const MAX_INSERT_PER_UPDATE: usize = 256 * 1024;
/// Consecutive edits within this window undo together.
const UNDO_CAPTURE_MS: u64 = 500;

/// What the UI must do after an input.
#[derive(Debug, Default)]
pub struct Effects {
    /// Frames to send to the server, in order.
    pub send: Vec<Vec<u8>>,
    /// Deltas to apply to the editor, in order (each starts at offset 0).
    pub text_deltas: Vec<Vec<TextOp>>,
    /// The language changed to this.
    pub language: Option<Language>,
    /// The interview was ended (`true`) or reopened.
    pub ended: Option<bool>,
    /// Someone's presence changed: re-read `peers()`.
    pub presence_changed: bool,
    /// The first full sync with the server just completed.
    pub synced: bool,
    /// The editor no longer matches the document: reload it from `code()`.
    pub reload_editor: bool,
    /// The list of runs changed (someone ran code): re-read `latest_run()`.
    pub runs_changed: bool,
    /// An editor change was not applied: the document would have passed this
    /// size limit (bytes). The editor is reloaded from the document.
    pub refused_over: Option<usize>,
}

type Sink<T> = Arc<Mutex<Vec<T>>>;

fn take<T>(sink: &Sink<T>) -> Vec<T> {
    std::mem::take(&mut *sink.lock().unwrap_or_else(|p| p.into_inner()))
}

pub struct CollabClient {
    doc: SessionDoc,
    awareness: Awareness,
    undo: UndoManager<()>,
    editor_deltas: Sink<Vec<TextOp>>,
    outgoing: Sink<Vec<u8>>,
    runs_changed: Arc<std::sync::atomic::AtomicBool>,
    presence: PresenceState,
    language: Option<Language>,
    ended: bool,
    synced: bool,
    /// The server's document size limit, if known (see [`Self::set_size_limit`]).
    size_limit: Option<usize>,
    /// At least the document's encoded size: exact when last measured, plus an
    /// allowance for every change since.
    size_bound: usize,
    /// Live updates received per author (client id), so a peer's cursor key
    /// changes when they type even though their sticky caret does not move.
    edits_by_author: HashMap<u64, u32>,
}

/// How much a change of `len` bytes may grow the document's encoding, at most
/// (the server's rule, `server::rooms::rules::growth_bound`).
fn growth_bound(len: usize) -> usize {
    2 * len + 64
}

/// [`Peer::cursor_key`]: where the caret was put, and how often its owner has
/// typed (typing at the caret leaves its sticky place as it is).
fn cursor_key(cursor: &CursorState, typed: u32) -> u32 {
    (cursor.key() ^ typed.wrapping_mul(0x9e37_79b9)).max(1)
}

/// What the server adds to an update's own size when it checks the limit is
/// the update's length; an update carries a few dozen bytes besides its text.
const UPDATE_OVERHEAD: usize = 64;
/// Most bytes of our awareness state (JSON): below the server's default cap
/// on a state (`domain::limits::DEFAULT_MAX_AWARENESS_STATE_BYTES`), with room
/// for a cursor, so a run's output in it never gets the state refused.
const PRESENCE_STATE_BUDGET: usize = 3 * 1024;

/// At least what a run record adds to the document: its JSON, which is never
/// shorter than the binary encoding the document stores (field names and
/// strings the same, plus quotes and escapes; numbers as text), and a margin
/// for the array entry around it.
fn record_bytes(run: &RunRecord) -> usize {
    serde_json::to_string(run).map_or(usize::MAX / 4, |json| json.len()) + 64
}

impl CollabClient {
    /// A replica with a fresh client id, the user's name, and a millisecond clock.
    pub fn new(client_id: u64, name: &str, clock: fn() -> u64) -> Self {
        let doc = SessionDoc::with_client_id(client_id);
        let editor_deltas: Sink<Vec<TextOp>> = Arc::default();
        let outgoing: Sink<Vec<u8>> = Arc::default();
        let runs_changed: Arc<std::sync::atomic::AtomicBool> = Arc::default();
        {
            let flag = runs_changed.clone();
            doc.runs_ref().observe(OBSERVER, move |_txn, _event| {
                flag.store(true, std::sync::atomic::Ordering::Relaxed);
            });
            let sink = editor_deltas.clone();
            doc.code_ref().observe(OBSERVER, move |txn, event| {
                if txn.origin() != Some(&Origin::from(LOCAL)) {
                    let ops = ops_from_delta(event.delta(txn));
                    sink.lock().unwrap_or_else(|p| p.into_inner()).push(ops);
                }
            });
            let sink = outgoing.clone();
            doc.doc()
                .observe_update_v1(OBSERVER, move |txn, event| {
                    if txn.origin() != Some(&Origin::from(REMOTE)) {
                        sink.lock()
                            .unwrap_or_else(|p| p.into_inner())
                            .push(event.update.clone());
                    }
                })
                .expect("no transaction is open while the client is built");
        }
        let mut undo = UndoManager::with_options(UndoOptions {
            capture_timeout_millis: UNDO_CAPTURE_MS,
            tracked_origins: Default::default(),
            capture_transaction: None,
            timestamp: Arc::new(clock),
            init_undo_stack: Vec::new(),
            init_redo_stack: Vec::new(),
        });
        undo.expand_scope(doc.doc(), doc.code_ref());
        undo.include_origin(LOCAL);
        let awareness = Awareness::with_clock(doc.doc().clone(), clock);
        let presence = PresenceState {
            user: UserInfo {
                name: super::presence::clean_name(name),
                color: color_for(client_id),
            },
            cursor: None,
            role: None,
            run: None,
        };
        let mut client = Self {
            doc,
            awareness,
            undo,
            editor_deltas,
            outgoing,
            runs_changed,
            presence,
            language: None,
            ended: false,
            synced: false,
            size_limit: None,
            size_bound: 0,
            edits_by_author: HashMap::new(),
        };
        client.publish_presence();
        client
    }

    pub fn client_id(&self) -> u64 {
        self.doc.doc().client_id().get()
    }

    /// The code as the document has it.
    pub fn code(&self) -> String {
        self.doc.code()
    }

    /// Length of the code in UTF-16 code units (cheap; no string is built).
    pub fn code_len_utf16(&self) -> u32 {
        self.doc.code_len_utf16()
    }

    /// The replica's state vector: what it has of each client's edits.
    pub fn state_vector(&self) -> yrs::StateVector {
        self.doc.state_vector()
    }

    /// Whether the interview has ended (the document says so).
    pub fn ended(&self) -> bool {
        self.ended
    }

    /// Announces our role (as the server will stamp it) in our presence.
    pub fn set_role(&mut self, role: &str) -> Effects {
        self.presence.role = Some(role.to_owned());
        self.publish_presence();
        let mut effects = self.drain();
        effects.send.extend(self.local_presence_frame());
        effects.presence_changed = true;
        effects
    }

    /// The session's language, once known.
    pub fn language(&self) -> Option<Language> {
        self.language
    }

    /// True once the first sync with the server has completed.
    pub fn is_synced(&self) -> bool {
        self.synced
    }

    /// The connection opened: ask for what we lack and announce ourselves.
    pub fn on_open(&mut self) -> Effects {
        let mut effects = self.drain();
        effects
            .send
            .push(protocol::encode_sync_step1(&self.doc.state_vector()));
        // A newer clock: others forgot us at the clock they last saw, and
        // take only a newer state.
        self.publish_presence();
        if let Some(frame) = self.local_presence_frame() {
            effects.send.push(frame);
        }
        effects
    }

    /// The connection closed: forget others' presence (they will be re-sent),
    /// keep the document and any edits made meanwhile.
    pub fn on_close(&mut self) -> Effects {
        self.synced = false;
        let me = self.doc.doc().client_id();
        let others: Vec<ClientID> = self
            .awareness
            .iter()
            .map(|(id, _)| id)
            .filter(|id| *id != me)
            .collect();
        let presence_changed = !others.is_empty();
        for id in others {
            self.forget_presence(id);
        }
        // Frames queued meanwhile cannot be sent; the next sync carries them.
        take(&self.outgoing);
        Effects {
            presence_changed,
            ..Effects::default()
        }
    }

    /// A binary frame from the server.
    pub fn on_frame(&mut self, frame: &[u8]) -> Result<Effects, FrameError> {
        self.size_bound += growth_bound(frame.len());
        let mut replies = Vec::new();
        let mut presence_changed = false;
        let mut synced = false;
        let mut reload_editor = false;
        for message in decode_frame(frame)? {
            match message {
                ClientMessage::SyncStep1(remote) => {
                    replies.push(protocol::encode_sync_step2(&self.doc.diff(&remote)));
                }
                ClientMessage::SyncStep2(update) => {
                    if !update.is_empty() {
                        reload_editor |= self
                            .doc
                            .apply_decoded(update.decoded, Some(REMOTE))
                            .is_err();
                    }
                    if !self.synced {
                        self.synced = true;
                        synced = true;
                    }
                }
                ClientMessage::Update(update) if !update.is_empty() => {
                    // Who typed (inserted) in it: their labels show (see `peers`).
                    // Only people present are counted, so the map stays as small
                    // as the (server-bounded) people list.
                    for (author, _) in update.decoded.state_vector_lower().iter() {
                        if self.awareness.meta(*author).is_some() {
                            let count = self.edits_by_author.entry(author.get()).or_insert(0);
                            *count = count.wrapping_add(1);
                        }
                    }
                    reload_editor |= self
                        .doc
                        .apply_decoded(update.decoded, Some(REMOTE))
                        .is_err();
                }
                ClientMessage::Update(_) => {}
                ClientMessage::Awareness(message) => {
                    if let Ok(summary) = self.awareness.apply_update_summary(message.into_update())
                    {
                        presence_changed = true;
                        for gone in summary.iter().flat_map(|summary| &summary.removed) {
                            self.edits_by_author.remove(&gone.get());
                        }
                    }
                }
                ClientMessage::AwarenessQuery => replies.extend(self.local_presence_frame()),
                ClientMessage::Ignored(_) => {}
            }
        }
        let mut effects = self.drain();
        effects.send.splice(0..0, replies);
        effects.presence_changed |= presence_changed;
        effects.synced = synced;
        effects.reload_editor |= reload_editor;
        Ok(effects)
    }

    /// Sets the server's document size limit (bytes of the whole encoded
    /// document): changes that would pass it are refused here, before they
    /// are applied or sent, so the server never has to refuse honest work.
    pub fn set_size_limit(&mut self, limit: usize) {
        self.size_limit = Some(limit);
    }

    /// The document size limit set with [`Self::set_size_limit`].
    pub fn size_limit(&self) -> Option<usize> {
        self.size_limit
    }

    /// Whether adding `bytes` of text keeps the document within the limit.
    /// Measures exactly (an encode of the whole document) only when the
    /// running bound says the limit may be near.
    fn fits(&mut self, bytes: usize) -> bool {
        let Some(limit) = self.size_limit else {
            return true;
        };
        if self.size_bound + growth_bound(bytes) <= limit {
            return true;
        }
        self.size_bound = self.doc.encoded_len();
        self.size_bound + bytes + UPDATE_OVERHEAD <= limit
    }

    /// Changes the user made in the editor (one Monaco content-change event).
    pub fn on_editor_changes(&mut self, mut changes: Vec<EditorChange>) -> Effects {
        let inserted: usize = changes.iter().map(|change| change.text.len()).sum();
        if inserted > 0 && !self.fits(inserted) {
            return Effects {
                reload_editor: true,
                refused_over: self.size_limit,
                ..Effects::default()
            };
        }
        self.size_bound += growth_bound(inserted);
        // Monaco's offsets all refer to the text before the event: apply from the
        // end so earlier offsets stay valid.
        changes.sort_by_key(|change| std::cmp::Reverse(change.offset));
        let text = self.doc.code_ref().clone();
        let mut reload_editor = false;
        for change in changes {
            let length = self.doc.code_len_utf16();
            if change.offset.saturating_add(change.length) > length {
                // The editor and the document disagree: never guess, resync.
                reload_editor = true;
                continue;
            }
            let mut chunks = split_utf16(&change.text, MAX_INSERT_PER_UPDATE).into_iter();
            let mut at = change.offset;
            {
                let mut txn = self.doc.doc().transact_mut_with(LOCAL);
                if change.length > 0 {
                    text.remove_range(&mut txn, change.offset, change.length);
                }
                if let Some(first) = chunks.next() {
                    text.insert(&mut txn, at, first);
                    at += utf16_len(first);
                }
            }
            for chunk in chunks {
                let mut txn = self.doc.doc().transact_mut_with(LOCAL);
                text.insert(&mut txn, at, chunk);
                at += utf16_len(chunk);
            }
        }
        let mut effects = self.drain();
        effects.reload_editor |= reload_editor;
        effects
    }

    /// The local caret or selection moved (UTF-16 offsets).
    pub fn on_selection(&mut self, anchor: u32, head: u32) -> Effects {
        let cursor = {
            let txn = self.doc.doc().transact();
            // Attached to the character after the caret, so typing at the caret
            // leaves it as it is; at the very end there is none, so to the end
            // of the text itself (as Yjs encodes it: the text, no item), which
            // stays the end as the text grows.
            let code = self.doc.code_ref();
            let end = code.len(&txn);
            let encode = |index: u32| {
                code.sticky_index(&txn, index, Assoc::After)
                    .or_else(|| {
                        (index == end).then(|| StickyIndex::from_type(&txn, code, Assoc::After))
                    })
                    .map(|s| s.encode_v1())
            };
            match (encode(anchor), encode(head)) {
                (Some(anchor), Some(head)) => Some(CursorState { anchor, head }),
                _ => None,
            }
        };
        // Typing moves the caret but not its sticky place: nothing to announce
        // (half the messages while someone types).
        if cursor == self.presence.cursor {
            return self.drain();
        }
        self.presence.cursor = cursor;
        self.publish_presence();
        let mut effects = self.drain();
        effects.send.extend(self.local_presence_frame());
        effects
    }

    /// The user changed their display name.
    pub fn set_name(&mut self, name: &str) -> Effects {
        self.presence.user.name = super::presence::clean_name(name);
        self.publish_presence();
        let mut effects = self.drain();
        effects.send.extend(self.local_presence_frame());
        effects.presence_changed = true;
        effects
    }

    /// Announces the run we have going (with the end of its output so far),
    /// or that it ended (`None`).
    pub fn set_live_run(&mut self, run: Option<LiveRun>) -> Effects {
        if run == self.presence.run {
            return Effects::default();
        }
        self.presence.run = run;
        self.publish_presence();
        Effects {
            send: self.local_presence_frame().into_iter().collect(),
            ..Effects::default()
        }
    }

    /// Picks a colour nobody else present uses, if ours is taken (colours come
    /// from random ids, so two people can start with the same one).
    pub fn ensure_distinct_color(&mut self) -> Effects {
        let me = self.doc.doc().client_id();
        let taken: std::collections::HashSet<u8> = self
            .awareness
            .iter()
            .filter(|(id, _)| *id != me)
            .filter_map(|(_, state)| parse_state(state.data.as_deref()?))
            .map(|state| state.user.color)
            .collect();
        if !taken.contains(&self.presence.user.color) {
            return Effects::default();
        }
        let Some(free) = (0..super::presence::PALETTE_SIZE).find(|c| !taken.contains(c)) else {
            return Effects::default();
        };
        self.presence.user.color = free;
        self.publish_presence();
        let mut effects = self.drain();
        effects.send.extend(self.local_presence_frame());
        effects.presence_changed = true;
        effects
    }

    /// Re-announces our presence (others drop states not renewed in 30 s),
    /// with a newer clock as stock Yjs clients do: a state at a clock someone
    /// already has is ignored, so only a newer one brings us back to a peer
    /// that forgot us.
    pub fn renew_presence(&mut self) -> Effects {
        self.publish_presence();
        Effects {
            send: self.local_presence_frame().into_iter().collect(),
            ..Effects::default()
        }
    }

    /// Drops others' presence not renewed within `timeout_ms` (they vanished
    /// without a goodbye).
    pub fn expire_presence(&mut self, now_ms: u64, timeout_ms: u64) -> Effects {
        let me = self.doc.doc().client_id();
        let stale: Vec<ClientID> = self
            .awareness
            .iter()
            .filter(|(id, state)| *id != me && state.data.is_some())
            .filter(|(_, state)| now_ms.saturating_sub(state.last_updated) > timeout_ms)
            .map(|(id, _)| id)
            .collect();
        let presence_changed = !stale.is_empty();
        for id in stale {
            self.forget_presence(id);
        }
        Effects {
            presence_changed,
            ..Effects::default()
        }
    }

    /// Changes the session's language for everyone.
    pub fn set_language(&mut self, language: Language) -> Effects {
        self.doc.set_language_with_origin(language, Some(LOCAL));
        self.drain()
    }

    /// Undoes this participant's last edit (never anyone else's).
    pub fn undo(&mut self) -> Effects {
        self.undo.undo_blocking();
        self.drain()
    }

    /// Redoes what `undo` undid.
    pub fn redo(&mut self) -> Effects {
        self.undo.redo_blocking();
        self.drain()
    }

    /// Records a finished (or starting) run for everyone to see. The record
    /// counts against the document size limit as typing does: its output is
    /// cut to what fits (marked truncated), so the server never has to refuse
    /// it; if not even the bare record fits, it is not recorded and the page
    /// says so.
    pub fn record_run(&mut self, run: &RunRecord) -> Effects {
        let mut run = run.clone();
        if !self.fits(record_bytes(&run)) {
            // `fits` has just measured the document exactly: cut the output
            // until the record fits in what is left, or give up.
            let limit = self.size_limit.unwrap_or(usize::MAX);
            let left = limit.saturating_sub(self.size_bound + UPDATE_OVERHEAD);
            let bare = RunRecord {
                id: run.id.clone(),
                by: run.by.clone(),
                language: run.language,
                started_at: run.started_at,
                duration_ms: run.duration_ms,
                status: run.status,
                output: Vec::new(),
                truncated: run.truncated,
            };
            // First guess: all the room the bare record leaves; escapes can
            // make the record longer than its text, so halve until it fits.
            let mut budget = left.saturating_sub(record_bytes(&bare));
            loop {
                run.cap_output(budget);
                if record_bytes(&run) <= left {
                    break;
                }
                if budget == 0 {
                    return Effects {
                        refused_over: self.size_limit,
                        ..Effects::default()
                    };
                }
                budget /= 2;
            }
        }
        self.size_bound += growth_bound(record_bytes(&run));
        self.doc.record_run(&run, Some(LOCAL));
        self.drain()
    }

    /// The most recent run recorded in the session.
    pub fn latest_run(&self) -> Option<RunRecord> {
        self.doc.latest_run()
    }

    /// Our display name as others see it.
    pub fn name(&self) -> &str {
        &self.presence.user.name
    }

    /// Everyone present, ourselves first, with their selections in the current text.
    pub fn peers(&self) -> Vec<Peer> {
        let me = self.doc.doc().client_id();
        let txn = self.doc.doc().transact();
        let resolve = |bytes: &[u8]| {
            StickyIndex::decode_v1(bytes)
                .ok()
                .and_then(|sticky| sticky.get_offset(&txn))
                .map(|offset| offset.index)
        };
        let mut peers: Vec<Peer> =
            self.awareness
                .iter()
                .filter_map(|(id, state)| {
                    let presence = parse_state(state.data.as_deref()?)?;
                    let selection = presence.cursor.as_ref().and_then(|cursor| {
                        Some((resolve(&cursor.anchor)?, resolve(&cursor.head)?))
                    });
                    Some(Peer {
                        client_id: id.get(),
                        name: presence.user.name,
                        color: presence.user.color,
                        selection,
                        cursor_key: presence.cursor.as_ref().map_or(0, |cursor| {
                            let typed = self.edits_by_author.get(&id.get()).copied();
                            cursor_key(cursor, typed.unwrap_or(0))
                        }),
                        is_local: id == me,
                        interviewer: presence.role.as_deref() == Some("interviewer"),
                        run: presence.run,
                    })
                })
                .collect();
        peers.sort_by_key(|peer| (!peer.is_local, peer.client_id));
        peers
    }

    /// Sets our awareness state from `presence`. The server refuses states
    /// over a few KiB: a run's output in it is cut until the state fits.
    fn publish_presence(&mut self) {
        loop {
            let Ok(json) = serde_json::to_string(&self.presence) else {
                return;
            };
            if json.len() <= PRESENCE_STATE_BUDGET {
                self.awareness.set_local_state_raw(json);
                return;
            }
            let Some(run) = self.presence.run.take() else {
                return;
            };
            let bytes: usize = run.output.iter().map(|chunk| chunk.text.len()).sum();
            if bytes > 0 {
                let mut smaller = LiveRun::new(&run.id, run.language, &run.output, bytes / 2);
                smaller.truncated = true;
                self.presence.run = Some(smaller);
            }
        }
    }

    /// Drops another participant's state at the clock we last saw from them.
    /// (yrs's `remove_state` would count the removal as a newer clock, and
    /// the state they announce again after a reconnect, at their current
    /// clock, would then look old and be ignored until they changed it.)
    fn forget_presence(&mut self, id: ClientID) {
        let Some((clock, _)) = self.awareness.meta(id) else {
            return;
        };
        let gone = AwarenessUpdateEntry {
            clock,
            json: "null".into(),
        };
        let update = AwarenessUpdate {
            clients: HashMap::from([(id, gone)]),
        };
        // Only fails on a malformed update; this one is well formed.
        let _ = self.awareness.apply_update(update);
        self.edits_by_author.remove(&id.get());
    }

    fn local_presence_frame(&self) -> Option<Vec<u8>> {
        let update = self
            .awareness
            .update_with_clients([self.doc.doc().client_id()])
            .ok()?;
        Some(protocol::encode_awareness(&update))
    }

    /// Collects what observers gathered since the last input.
    fn drain(&mut self) -> Effects {
        let send = take(&self.outgoing)
            .iter()
            .map(|update| protocol::encode_update(update))
            .collect();
        let text_deltas = take(&self.editor_deltas);
        let current = self.doc.language();
        let language = (current != self.language).then_some(current).flatten();
        self.language = current.or(self.language);
        let now_ended = self.doc.ended();
        let ended = (now_ended != self.ended).then_some(now_ended);
        self.ended = now_ended;
        let runs_changed = self
            .runs_changed
            .swap(false, std::sync::atomic::Ordering::Relaxed);
        Effects {
            send,
            text_deltas,
            language,
            ended,
            runs_changed,
            ..Effects::default()
        }
    }
}

/// Splits text into pieces of at most `max_units` UTF-16 units, never inside a
/// character.
fn split_utf16(text: &str, max_units: usize) -> Vec<&str> {
    if text.is_empty() {
        return Vec::new();
    }
    let mut pieces = Vec::new();
    let mut start = 0;
    let mut units = 0;
    for (index, ch) in text.char_indices() {
        if units + ch.len_utf16() > max_units {
            pieces.push(&text[start..index]);
            start = index;
            units = 0;
        }
        units += ch.len_utf16();
    }
    pieces.push(&text[start..]);
    pieces
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collab::text_ops::apply_ops;

    fn clock() -> u64 {
        1_000
    }

    /// Two replicas wired through a perfect network (the server just relays).
    fn exchange(from: &mut CollabClient, to: &mut CollabClient, effects: Effects) -> Vec<Effects> {
        let _ = from;
        effects
            .send
            .iter()
            .map(|frame| to.on_frame(frame).unwrap())
            .collect()
    }

    fn change(offset: u32, length: u32, text: &str) -> EditorChange {
        EditorChange {
            offset,
            length,
            text: text.into(),
        }
    }

    #[test]
    fn a_change_that_would_pass_the_size_limit_is_refused_before_it_is_sent() {
        let mut alice = CollabClient::new(1, "Alice", clock);
        alice.set_size_limit(2_000);
        let typed = alice.on_editor_changes(vec![change(0, 0, "two lines\nof code\n")]);
        assert!(!typed.send.is_empty());
        let paste = "x".repeat(3_000);
        let refused = alice.on_editor_changes(vec![change(5, 0, &paste)]);
        assert!(refused.send.is_empty(), "nothing of it is sent");
        assert!(
            refused.reload_editor,
            "the editor goes back to the document"
        );
        assert_eq!(refused.refused_over, Some(2_000));
        assert_eq!(
            alice.code(),
            "two lines\nof code\n",
            "earlier edits are kept"
        );
        // Later edits go through.
        let later = alice.on_editor_changes(vec![change(0, 0, "// ")]);
        assert!(!later.send.is_empty());
        assert_eq!(alice.code(), "// two lines\nof code\n");
    }

    #[test]
    fn local_edits_become_updates_and_remote_ones_become_editor_deltas() {
        let mut alice = CollabClient::new(1, "Alice", clock);
        let mut bob = CollabClient::new(2, "Bob", clock);
        let effects = alice.on_editor_changes(vec![change(0, 0, "hello")]);
        assert!(effects.text_deltas.is_empty(), "own edits are not echoed");
        assert_eq!(effects.send.len(), 1);
        let received = exchange(&mut alice, &mut bob, effects);
        assert_eq!(bob.code(), "hello");
        let mut editor = String::new();
        for delta in &received[0].text_deltas {
            editor = apply_ops(&editor, delta);
        }
        assert_eq!(editor, "hello");
        assert!(
            received[0].send.is_empty(),
            "remote updates are not sent back"
        );
    }

    #[test]
    fn multi_cursor_events_apply_from_the_end() {
        let mut alice = CollabClient::new(1, "Alice", clock);
        alice.on_editor_changes(vec![change(0, 0, "abcdef")]);
        // Two changes of one event, both against "abcdef".
        alice.on_editor_changes(vec![change(1, 1, "X"), change(4, 1, "Y")]);
        assert_eq!(alice.code(), "aXcdYf");
    }

    #[test]
    fn undo_only_touches_your_own_edits() {
        let mut alice = CollabClient::new(1, "Alice", clock);
        let mut bob = CollabClient::new(2, "Bob", clock);
        let a = alice.on_editor_changes(vec![change(0, 0, "alice ")]);
        exchange(&mut alice, &mut bob, a);
        let b = bob.on_editor_changes(vec![change(6, 0, "bob")]);
        exchange(&mut bob, &mut alice, b);
        assert_eq!(alice.code(), "alice bob");
        let undone = alice.undo();
        assert_eq!(alice.code(), "bob");
        assert_eq!(undone.text_deltas.len(), 1, "undo shows in the editor");
        exchange(&mut alice, &mut bob, undone);
        assert_eq!(bob.code(), "bob");
        let redone = alice.redo();
        exchange(&mut alice, &mut bob, redone);
        assert_eq!(bob.code(), "alice bob");
    }

    #[test]
    fn huge_pastes_are_split_into_frames_the_server_accepts() {
        let mut alice = CollabClient::new(1, "Alice", clock);
        let paste = "x".repeat(1_000_000);
        let effects = alice.on_editor_changes(vec![change(0, 0, &paste)]);
        assert!(effects.send.len() >= 4);
        assert!(effects.send.iter().all(|f| f.len() < 1024 * 1024));
        let mut bob = CollabClient::new(2, "Bob", clock);
        exchange(&mut alice, &mut bob, effects);
        assert_eq!(bob.code().len(), 1_000_000);
    }

    #[test]
    fn an_editor_out_of_step_asks_for_a_reload_instead_of_guessing() {
        let mut alice = CollabClient::new(1, "Alice", clock);
        let effects = alice.on_editor_changes(vec![change(5, 3, "zzz")]);
        assert!(effects.reload_editor);
        assert_eq!(alice.code(), "");
    }

    #[test]
    fn presence_carries_names_and_cursors_that_follow_the_text() {
        let mut alice = CollabClient::new(1, "Alice", clock);
        let mut bob = CollabClient::new(2, "Bob", clock);
        let a = alice.on_editor_changes(vec![change(0, 0, "let x = 1;")]);
        exchange(&mut alice, &mut bob, a);
        let moved = alice.on_selection(4, 5);
        let received = exchange(&mut alice, &mut bob, moved);
        assert!(received.iter().any(|e| e.presence_changed));
        let peers = bob.peers();
        let alice_seen = peers.iter().find(|p| p.name == "Alice").unwrap();
        assert_eq!(alice_seen.selection, Some((4, 5)));
        assert_ne!(alice_seen.cursor_key, 0);
        let key_before = alice_seen.cursor_key;
        assert!(peers[0].is_local && peers[0].name == "Bob");
        // Bob types before Alice's cursor: her cursor moves with the text, but
        // she did not move it (her name label must not pop up for Bob's typing).
        let b = bob.on_editor_changes(vec![change(0, 0, "// ")]);
        drop(b);
        let alice_seen = bob.peers().into_iter().find(|p| p.name == "Alice").unwrap();
        assert_eq!(alice_seen.selection, Some((7, 8)));
        assert_eq!(alice_seen.cursor_key, key_before);
        // A caret at the very end of the text is shared too; moving it is seen.
        let end = alice.on_selection(10, 10);
        exchange(&mut alice, &mut bob, end);
        let alice_seen = bob.peers().into_iter().find(|p| p.name == "Alice").unwrap();
        assert_eq!(alice_seen.selection, Some((13, 13)));
        assert_ne!(alice_seen.cursor_key, key_before);
        // Alice types at her caret: it stays where she put it (the end), so
        // she announces nothing, yet Bob sees that she typed.
        let key_at_end = alice_seen.cursor_key;
        let typed = alice.on_editor_changes(vec![change(10, 0, "!")]);
        let moved = alice.on_selection(11, 11);
        assert!(
            moved.send.is_empty(),
            "the same caret is not announced again"
        );
        exchange(&mut alice, &mut bob, typed);
        let alice_seen = bob.peers().into_iter().find(|p| p.name == "Alice").unwrap();
        assert_eq!(alice_seen.selection, Some((14, 14)));
        assert_ne!(alice_seen.cursor_key, key_at_end);
        // A closed connection forgets everyone else.
        let closed = bob.on_close();
        assert!(closed.presence_changed);
        assert_eq!(bob.peers().len(), 1);
    }

    #[test]
    fn after_a_reconnect_everyone_is_listed_again_without_moving() {
        let mut alice = CollabClient::new(1, "Alice", clock);
        let mut bob = CollabClient::new(2, "Bob", clock);
        let hello = alice.renew_presence();
        exchange(&mut alice, &mut bob, hello);
        let hello = bob.renew_presence();
        exchange(&mut bob, &mut alice, hello);
        assert_eq!(alice.peers().len(), 2);
        // The server restarts: both connections close, then open again; nobody
        // types or moves. Each announcement on open brings its sender back.
        alice.on_close();
        bob.on_close();
        assert_eq!(alice.peers().len(), 1);
        assert_eq!(bob.peers().len(), 1);
        let opened = alice.on_open();
        exchange(&mut alice, &mut bob, opened);
        let opened = bob.on_open();
        exchange(&mut bob, &mut alice, opened);
        assert_eq!(alice.peers().len(), 2, "Alice lists Bob again");
        assert_eq!(bob.peers().len(), 2, "Bob lists Alice again");
        // Someone dropped for silence comes back with their next renewal.
        bob.expire_presence(u64::MAX, 30_000);
        assert_eq!(bob.peers().len(), 1);
        let renewed = alice.renew_presence();
        exchange(&mut alice, &mut bob, renewed);
        assert_eq!(bob.peers().len(), 2, "a renewal brings Alice back");
    }

    #[test]
    fn a_taken_colour_is_swapped_for_a_free_one() {
        let mut alice = CollabClient::new(1, "Alice", clock);
        let mut bob = CollabClient::new(1 + 12 * 1000, "Bob", clock);
        // Force a clash whatever the hash gives.
        bob.presence.user.color = alice.presence.user.color;
        bob.publish_presence();
        let hello = alice.renew_presence();
        exchange(&mut alice, &mut bob, hello);
        let fixed = bob.ensure_distinct_color();
        assert!(fixed.presence_changed && !fixed.send.is_empty());
        assert_ne!(bob.presence.user.color, alice.presence.user.color);
        assert!(
            bob.ensure_distinct_color().send.is_empty(),
            "nothing to do twice"
        );
    }

    #[test]
    fn language_changes_are_reported_once() {
        let mut alice = CollabClient::new(1, "Alice", clock);
        let mut bob = CollabClient::new(2, "Bob", clock);
        let set = alice.set_language(Language::Python);
        assert_eq!(set.language, Some(Language::Python));
        let received = exchange(&mut alice, &mut bob, set);
        assert_eq!(received[0].language, Some(Language::Python));
        assert_eq!(bob.language(), Some(Language::Python));
        let again = bob.on_editor_changes(vec![change(0, 0, "x")]);
        assert_eq!(again.language, None);
    }

    #[test]
    fn sync_with_a_server_replica_merges_offline_edits() {
        // The "server" is a plain document answering the sync handshake.
        let server = SessionDoc::new();
        server.insert_code(0, "server text");
        let mut alice = CollabClient::new(1, "Alice", clock);
        alice.on_editor_changes(vec![change(0, 0, "offline ")]);
        let opened = alice.on_open();
        // Alice's SyncStep1 -> server answers with SyncStep2.
        let step1 = match &decode_frame(&opened.send[0]).unwrap()[0] {
            ClientMessage::SyncStep1(sv) => server.diff(sv),
            other => panic!("expected SyncStep1, got {other:?}"),
        };
        let answered = alice
            .on_frame(&protocol::encode_sync_step2(&step1))
            .unwrap();
        assert!(answered.synced);
        // Server's SyncStep1 -> Alice answers with what the server lacks.
        let server_step1 = protocol::encode_sync_step1(&server.state_vector());
        let reply = alice.on_frame(&server_step1).unwrap();
        match &decode_frame(&reply.send[0]).unwrap()[0] {
            ClientMessage::SyncStep2(update) => server.apply(update).unwrap(),
            other => panic!("expected SyncStep2, got {other:?}"),
        }
        assert_eq!(server.code(), alice.code());
        assert!(server.code().contains("offline ") && server.code().contains("server text"));
    }

    /// A finished Python run by `by` that printed `text`.
    fn run_printing(by: &str, text: &str) -> RunRecord {
        use crate::domain::run::{OutputChunk, RunStatus, Stream};
        RunRecord {
            id: "1-1".into(),
            by: by.to_owned(),
            language: Language::Python,
            started_at: 5,
            duration_ms: 12,
            status: RunStatus::Ok,
            output: vec![OutputChunk {
                stream: Stream::Stdout,
                text: text.into(),
            }],
            truncated: false,
        }
    }

    #[test]
    fn runs_reach_everyone() {
        let mut alice = CollabClient::new(1, "Alice", clock);
        let mut bob = CollabClient::new(2, "Bob", clock);
        let run = run_printing(alice.name(), "42\n");
        let recorded = alice.record_run(&run);
        assert!(recorded.runs_changed);
        let received = exchange(&mut alice, &mut bob, recorded);
        assert!(received.iter().any(|e| e.runs_changed));
        assert_eq!(bob.latest_run(), Some(run));
    }

    #[test]
    fn a_run_in_progress_streams_to_everyone_through_presence_within_its_budget() {
        use crate::domain::run::{OutputChunk, Stream};
        let mut alice = CollabClient::new(1, "Alice", clock);
        let mut bob = CollabClient::new(2, "Bob", clock);
        let lines: String = (0..2_000).map(|n| format!("line {n}\u{1}\n")).collect();
        let output = vec![OutputChunk {
            stream: Stream::Stdout,
            text: lines,
        }];
        let live = LiveRun::new("1-1", Language::Python, &output, usize::MAX);
        let announced = alice.set_live_run(Some(live));
        exchange(&mut alice, &mut bob, announced);
        let seen = bob
            .peers()
            .into_iter()
            .find(|peer| peer.name == "Alice")
            .and_then(|peer| peer.run)
            .expect("Bob sees Alice's run going");
        assert_eq!(seen.id, "1-1");
        assert!(seen.truncated);
        assert!(
            seen.output[0].text.ends_with("line 1999\u{1}\n"),
            "not the end of the output"
        );
        let state = serde_json::to_string(&alice.presence).unwrap();
        assert!(
            state.len() <= PRESENCE_STATE_BUDGET,
            "{} bytes",
            state.len()
        );

        let ended = alice.set_live_run(None);
        exchange(&mut alice, &mut bob, ended);
        assert!(bob.peers().iter().all(|peer| peer.run.is_none()));
    }

    #[test]
    fn a_run_record_is_cut_to_fit_the_size_limit_and_refused_only_when_nothing_fits() {
        let mut alice = CollabClient::new(1, "Alice", clock);
        alice.set_size_limit(8_000);
        alice.on_editor_changes(vec![change(0, 0, &"x = 1\n".repeat(300))]);
        let run = run_printing(alice.name(), &"é".repeat(10_000));
        let recorded = alice.record_run(&run);
        assert!(recorded.runs_changed, "the run is recorded");
        assert_eq!(recorded.refused_over, None);
        let kept = alice.latest_run().expect("a run");
        assert!(kept.truncated, "the cut output is marked truncated");
        assert!(!kept.output.is_empty() && kept.output_bytes() < run.output_bytes());
        assert!(
            alice.doc.encoded_len() <= 8_000,
            "the document passed the limit: {} bytes",
            alice.doc.encoded_len()
        );

        // Many short chunks full of escapes (the JSON is far longer than the
        // text): still cut to fit.
        alice.set_size_limit(alice.doc.encoded_len() + 3_000);
        let mut chatty = run_printing(alice.name(), "");
        chatty.output = (0..400)
            .map(|i| crate::domain::run::OutputChunk {
                stream: if i % 2 == 0 {
                    crate::domain::run::Stream::Stdout
                } else {
                    crate::domain::run::Stream::Stderr
                },
                text: "\"\\\n\t\u{1}".repeat(3),
            })
            .collect();
        let recorded = alice.record_run(&chatty);
        assert!(recorded.runs_changed && recorded.refused_over.is_none());
        assert!(alice.latest_run().unwrap().truncated);
        assert!(
            alice.doc.encoded_len() <= alice.size_limit().unwrap(),
            "the chatty run passed the limit: {} bytes",
            alice.doc.encoded_len()
        );

        // The document is full: the next record is refused here, not by the server.
        alice.set_size_limit(alice.doc.encoded_len());
        let refused = alice.record_run(&run);
        assert!(refused.send.is_empty(), "nothing is sent");
        assert_eq!(refused.refused_over, alice.size_limit());
    }

    #[test]
    fn splitting_respects_characters() {
        assert_eq!(split_utf16("ab😀c", 2), vec!["ab", "😀", "c"]);
        assert!(split_utf16("", 4).is_empty());
    }
}

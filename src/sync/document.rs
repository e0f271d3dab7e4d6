//! A session's shared document: one yrs `Doc` with a `Y.Text` named `code` and a
//! `Y.Map` named `meta` (language, ended, ...). Offsets are UTF-16 code units,
//! Monaco's and JavaScript Yjs's unit, so positions agree across clients. The
//! interviewers' notes document is the same type holding a `Y.Text` named
//! `notes` and a `Y.Array` named `events` (what the server recorded).

use crate::domain::{
    run::{RunRecord, MAX_RECORDED_RUNS},
    text::{splice_between, Splice},
    Language,
};
use yrs::{
    updates::decoder::Decode, Any, Array, ArrayRef, Doc, GetString, Map, MapRef, OffsetKind,
    Options, Out, ReadTxn, StateVector, Text, TextRef, Transact, Update,
};

/// Name of the shared text holding the code.
pub const CODE: &str = "code";
/// Name of the shared map holding metadata.
pub const META: &str = "meta";
/// Key of the language in the meta map.
pub const META_LANGUAGE: &str = "language";
/// The notes document's text (interviewers only).
pub const NOTES: &str = "notes";
/// The notes document's array of server-recorded events (focus, pastes).
pub const EVENTS: &str = "events";
/// The meta key saying the interview has ended (written by the server only).
pub const META_ENDED: &str = "ended";
/// Name of the shared array of recent runs.
pub const RUNS: &str = "runs";

/// An update that could not be applied.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApplyError {
    #[error("update does not decode")]
    Undecodable,
    #[error("update was rejected by the document: {0}")]
    Rejected(String),
}

pub struct SessionDoc {
    doc: Doc,
    code: TextRef,
    meta: MapRef,
}

impl Default for SessionDoc {
    fn default() -> Self {
        Self::new()
    }
}

impl SessionDoc {
    /// An empty document.
    pub fn new() -> Self {
        let doc = Doc::with_options(Options {
            offset_kind: OffsetKind::Utf16,
            ..Options::default()
        });
        Self::wrap(doc)
    }

    /// An empty document with a fixed client id (browsers pick a random one each).
    pub fn with_client_id(client_id: u64) -> Self {
        let doc = Doc::with_options(Options {
            offset_kind: OffsetKind::Utf16,
            client_id: yrs::block::ClientID::new(client_id),
            ..Options::default()
        });
        Self::wrap(doc)
    }

    /// The runs array is not created here: the server never reads it, and each
    /// shared type costs a few hundred bytes in every loaded session (it comes
    /// into being when an update that uses it arrives).
    fn wrap(doc: Doc) -> Self {
        let code = doc.get_or_insert_text(CODE);
        let meta = doc.get_or_insert_map(META);
        Self { doc, code, meta }
    }

    /// Rebuilds a document from stored updates, oldest first. Updates that do
    /// not apply are skipped (and counted) rather than failing the whole load.
    pub fn from_updates<'a>(updates: impl IntoIterator<Item = &'a [u8]>) -> (Self, usize) {
        let doc = Self::new();
        let skipped = updates
            .into_iter()
            .filter(|update| doc.apply(update).is_err())
            .count();
        (doc, skipped)
    }

    /// The underlying yrs document.
    pub fn doc(&self) -> &Doc {
        &self.doc
    }

    /// The shared code text.
    pub fn code_ref(&self) -> &TextRef {
        &self.code
    }

    /// The shared meta map (language, ended flag).
    pub fn meta_ref(&self) -> &MapRef {
        &self.meta
    }

    /// Applies a v1 update. Never panics: a panic inside yrs on hostile input is
    /// caught and reported as a rejection.
    pub fn apply(&self, update: &[u8]) -> Result<(), ApplyError> {
        let update = Update::decode_v1(update).map_err(|_| ApplyError::Undecodable)?;
        self.apply_decoded(update, None)
    }

    /// Applies an update decoded already (see `protocol::ReceivedUpdate`) in a
    /// transaction tagged with `origin` (so observers can tell remote changes
    /// from local ones). Never panics, like [`Self::apply`].
    pub fn apply_decoded(&self, update: Update, origin: Option<&str>) -> Result<(), ApplyError> {
        match self.apply_all([update], origin).pop() {
            Some(refused) => Err(refused),
            None => Ok(()),
        }
    }

    /// Applies `updates` in one transaction (tagged with `origin`): yrs then
    /// commits, merges blocks and cleans up once for all of them, which costs
    /// about half as much CPU as a transaction each. Returns why each update
    /// that did not apply was refused (the others are applied all the same).
    /// Never panics: a panic inside yrs on hostile input is caught and reported.
    pub fn apply_all(
        &self,
        updates: impl IntoIterator<Item = Update>,
        origin: Option<&str>,
    ) -> Vec<ApplyError> {
        let mut refused = Vec::new();
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let mut txn = match origin {
                Some(origin) => self.doc.transact_mut_with(origin),
                None => self.doc.transact_mut(),
            };
            for update in updates {
                if let Err(e) = txn.apply_update(update) {
                    refused.push(ApplyError::Rejected(e.to_string()));
                }
            }
        }));
        if result.is_err() {
            refused.push(ApplyError::Rejected("yrs panicked".into()));
        }
        refused
    }

    /// The document's state vector.
    pub fn state_vector(&self) -> StateVector {
        self.doc.transact().state_vector()
    }

    /// Everything a peer with state vector `remote` lacks, as a v1 update.
    pub fn diff(&self, remote: &StateVector) -> Vec<u8> {
        self.doc.transact().encode_diff_v1(remote)
    }

    /// The whole document as one v1 update, including updates yrs holds back
    /// until what they depend on arrives (a snapshot that dropped them would
    /// lose them for good once the log before it is no longer read).
    pub fn snapshot(&self) -> Vec<u8> {
        self.doc
            .transact()
            .encode_state_as_update_v1(&StateVector::default())
    }

    /// The document's size as the size limit counts it: the length of its
    /// whole encoding ([`Self::snapshot`]). Costs an encode: call it rarely.
    pub fn encoded_len(&self) -> usize {
        self.snapshot().len()
    }

    /// The code as a string.
    pub fn code(&self) -> String {
        self.code.get_string(&self.doc.transact())
    }

    /// Length of the code in UTF-16 code units.
    pub fn code_len_utf16(&self) -> u32 {
        self.code.len(&self.doc.transact())
    }

    /// The language in the meta map, if set to a known language.
    pub fn language(&self) -> Option<Language> {
        self.language_in(&self.doc.transact())
    }

    /// The code's length in UTF-16 code units and the language, read in one
    /// transaction (the update path needs both for every edit).
    pub fn code_len_and_language(&self) -> (u32, Option<Language>) {
        let txn = self.doc.transact();
        (self.code.len(&txn), self.language_in(&txn))
    }

    fn language_in(&self, txn: &impl ReadTxn) -> Option<Language> {
        match self.meta.get(txn, META_LANGUAGE) {
            Some(Out::Any(Any::String(name))) => name.parse().ok(),
            _ => None,
        }
    }

    /// Whether the meta map says the interview has ended.
    pub fn ended(&self) -> bool {
        matches!(
            self.meta.get(&self.doc.transact(), META_ENDED),
            Some(Out::Any(Any::Bool(true)))
        )
    }

    /// Sets the ended flag; returns the update that did it.
    pub fn set_ended(&self, ended: bool) -> Vec<u8> {
        let mut txn = self.doc.transact_mut();
        self.meta.insert(&mut txn, META_ENDED, ended);
        txn.encode_update_v1()
    }

    /// Appends events to the `events` array (notes documents); returns the
    /// update that did it (one for all of them).
    pub fn record_events(&self, new: Vec<Any>) -> Vec<u8> {
        let events = self.doc.get_or_insert_array(EVENTS);
        let mut txn = self.doc.transact_mut();
        for event in new {
            events.push_back(&mut txn, event);
        }
        txn.encode_update_v1()
    }

    /// The events recorded so far, oldest first.
    pub fn events(&self) -> Vec<Any> {
        let events = self.doc.get_or_insert_array(EVENTS);
        let txn = self.doc.transact();
        events
            .iter(&txn)
            .filter_map(|value| match value {
                Out::Any(any) => Some(any),
                _ => None,
            })
            .collect()
    }

    /// The notes text (notes documents).
    pub fn notes(&self) -> String {
        let notes = self.doc.get_or_insert_text(NOTES);
        notes.get_string(&self.doc.transact())
    }

    /// Makes the notes text equal `text` with one change (the differing
    /// middle replaced); returns the update, or `None` if nothing changed.
    pub fn edit_notes(&self, text: &str) -> Option<Vec<u8>> {
        let notes = self.doc.get_or_insert_text(NOTES);
        let mut txn = self.doc.transact_mut();
        let current = notes.get_string(&txn);
        let Splice {
            at,
            removed,
            inserted,
        } = splice_between(&current, text)?;
        if removed > 0 {
            notes.remove_range(&mut txn, at as u32, removed as u32);
        }
        if !inserted.is_empty() {
            notes.insert(&mut txn, at as u32, &inserted);
        }
        Some(txn.encode_update_v1())
    }

    /// Sets the language; returns the update that did it.
    pub fn set_language(&self, language: Language) -> Vec<u8> {
        self.set_language_with_origin(language, None)
    }

    /// Sets the language in a transaction tagged with `origin`.
    pub fn set_language_with_origin(&self, language: Language, origin: Option<&str>) -> Vec<u8> {
        let mut txn = match origin {
            Some(origin) => self.doc.transact_mut_with(origin),
            None => self.doc.transact_mut(),
        };
        self.meta.insert(&mut txn, META_LANGUAGE, language.as_str());
        txn.encode_update_v1()
    }

    /// The shared array of runs, created if missing. Takes a write transaction:
    /// never call it while one is open.
    pub fn runs_ref(&self) -> ArrayRef {
        self.doc.get_or_insert_array(RUNS)
    }

    /// Records a run (dropping the oldest past [`MAX_RECORDED_RUNS`]) in a
    /// transaction tagged with `origin`.
    pub fn record_run(&self, run: &RunRecord, origin: Option<&str>) {
        let Ok(json) = serde_json::to_string(run) else {
            return;
        };
        let Ok(value) = Any::from_json(&json) else {
            return;
        };
        let runs = self.runs_ref();
        let mut txn = match origin {
            Some(origin) => self.doc.transact_mut_with(origin),
            None => self.doc.transact_mut(),
        };
        runs.push_back(&mut txn, value);
        let len = runs.len(&txn);
        if len > MAX_RECORDED_RUNS {
            runs.remove_range(&mut txn, 0, len - MAX_RECORDED_RUNS);
        }
    }

    /// The most recent run, if any (entries that do not parse are skipped).
    pub fn latest_run(&self) -> Option<RunRecord> {
        let txn = self.doc.transact();
        // Read without creating: no write transaction while `txn` is open.
        let runs = txn.get_array(RUNS)?;
        let len = runs.len(&txn);
        (0..len)
            .rev()
            .find_map(|i| runs.get_as::<_, RunRecord>(&txn, i).ok())
    }

    /// Every run recorded (the newest [`MAX_RECORDED_RUNS`]), oldest first.
    pub fn runs(&self) -> Vec<RunRecord> {
        let txn = self.doc.transact();
        let Some(runs) = txn.get_array(RUNS) else {
            return Vec::new();
        };
        (0..runs.len(&txn))
            .filter_map(|i| runs.get_as::<_, RunRecord>(&txn, i).ok())
            .collect()
    }

    /// Inserts text at a UTF-16 offset; returns the update that did it.
    pub fn insert_code(&self, utf16_index: u32, text: &str) -> Vec<u8> {
        let mut txn = self.doc.transact_mut();
        self.code.insert(&mut txn, utf16_index, text);
        txn.encode_update_v1()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batch_applies_like_its_updates_one_by_one_in_any_order() {
        let alice = SessionDoc::with_client_id(1);
        let bob = SessionDoc::with_client_id(2);
        let first = alice.insert_code(0, "héllo 🦀");
        // Depends on `first`: typed after it, in the middle of it.
        let second = alice.insert_code(3, "世界");
        let third = bob.insert_code(0, "bob ");
        let decode = |bytes: &[u8]| Update::decode_v1(bytes).unwrap();

        let one_by_one = SessionDoc::new();
        for update in [&first, &second, &third] {
            one_by_one.apply(update).unwrap();
        }
        let batched = SessionDoc::new();
        // `second` before what it depends on: yrs keeps it pending until `first`.
        let refused = batched.apply_all([decode(&second), decode(&third), decode(&first)], None);
        assert!(refused.is_empty(), "{refused:?}");
        assert_eq!(batched.code(), one_by_one.code());
        assert_eq!(batched.state_vector(), one_by_one.state_vector());
        assert_eq!(batched.code_len_utf16(), one_by_one.code_len_utf16());
    }

    #[test]
    fn two_documents_converge_through_diffs() {
        let a = SessionDoc::new();
        let b = SessionDoc::new();
        a.insert_code(0, "hello");
        b.insert_code(0, "world ");
        let to_b = a.diff(&b.state_vector());
        let to_a = b.diff(&a.state_vector());
        b.apply(&to_b).unwrap();
        a.apply(&to_a).unwrap();
        assert_eq!(a.code(), b.code());
        assert_eq!(a.code().len(), "hello".len() + "world ".len());
    }

    #[test]
    fn offsets_count_utf16_code_units() {
        let doc = SessionDoc::new();
        doc.insert_code(0, "a😀b");
        // The emoji is two UTF-16 code units, so "b" starts at 3.
        assert_eq!(doc.code_len_utf16(), 4);
        doc.insert_code(3, "漢");
        assert_eq!(doc.code(), "a😀漢b");
    }

    #[test]
    fn language_lives_in_the_meta_map_and_syncs() {
        let a = SessionDoc::new();
        assert_eq!(a.language(), None);
        let update = a.set_language(Language::Python);
        let b = SessionDoc::new();
        b.apply(&update).unwrap();
        assert_eq!(b.language(), Some(Language::Python));
    }

    #[test]
    fn runs_are_recorded_bounded_and_synced() {
        use crate::domain::run::{RunStatus, MAX_RECORDED_RUNS};
        let fresh = SessionDoc::new();
        assert_eq!(fresh.latest_run(), None, "no runs array yet, no run");
        let a = SessionDoc::new();
        for i in 0..(MAX_RECORDED_RUNS + 3) {
            a.record_run(
                &RunRecord {
                    id: format!("1-{i}"),
                    by: "Ada".into(),
                    language: Language::JavaScript,
                    started_at: u64::from(i),
                    duration_ms: 5,
                    status: RunStatus::Ok,
                    output: Vec::new(),
                    truncated: false,
                },
                None,
            );
        }
        assert_eq!(a.runs_ref().len(&a.doc().transact()), MAX_RECORDED_RUNS);
        let b = SessionDoc::new();
        b.apply(&a.snapshot()).unwrap();
        let latest = b.latest_run().unwrap();
        assert_eq!(latest.id, format!("1-{}", MAX_RECORDED_RUNS + 2));
        assert_eq!(latest.by, "Ada");
    }

    #[test]
    fn garbage_updates_are_rejected_not_applied() {
        let doc = SessionDoc::new();
        doc.insert_code(0, "keep me");
        assert!(doc.apply(&[0xff, 0xff, 0xff]).is_err());
        assert_eq!(doc.code(), "keep me");
    }

    #[test]
    fn a_snapshot_keeps_updates_waiting_for_what_they_depend_on() {
        let author = SessionDoc::with_client_id(1);
        let first = author.insert_code(0, "hello");
        let second = author.insert_code(5, " world");
        let server = SessionDoc::new();
        // `second` arrives first: yrs holds it back.
        server.apply(&second).unwrap();
        assert_eq!(server.code(), "");
        let restored = SessionDoc::new();
        restored.apply(&server.snapshot()).unwrap();
        restored.apply(&first).unwrap();
        assert_eq!(restored.code(), "hello world");
        assert!(server.encoded_len() > second.len() / 2);
    }

    #[test]
    fn a_snapshot_rebuilds_the_document() {
        let doc = SessionDoc::new();
        doc.insert_code(0, "print('hi')");
        doc.set_language(Language::Python);
        let copy = SessionDoc::new();
        copy.apply(&doc.snapshot()).unwrap();
        assert_eq!(copy.code(), "print('hi')");
        assert_eq!(copy.language(), Some(Language::Python));
    }

    #[test]
    fn notes_edits_keep_emoji_whole() {
        let doc = SessionDoc::new();
        doc.edit_notes("a👋").unwrap();
        // 👋 and 😀 share their first UTF-16 unit: the edit replaces the pair.
        let update = doc.edit_notes("a😀").unwrap();
        assert_eq!(doc.notes(), "a😀");
        assert!(doc.edit_notes("a😀").is_none());
        let (replica, skipped) = SessionDoc::from_updates([doc.snapshot().as_slice()]);
        assert_eq!((replica.notes(), skipped), ("a😀".to_owned(), 0));
        assert!(!update.is_empty());
    }
}

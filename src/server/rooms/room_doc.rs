//! A room's document: decoded (a yrs document) while the room uses it, packed
//! into its own encoding while the room is quiet.
//!
//! Why: a decoded yrs document costs about 2 KiB even when it holds a few
//! lines (its stores, root types and items), its encoding a few hundred bytes,
//! and most loaded sessions are idle most of the time (a tab left open, a
//! candidate reading the task). With thousands of sessions loaded that is
//! megabytes. So a room packs a document it has not used since the last
//! [`RoomDoc::pack_if_unused`] (called at every presence sweep, 5 s apart) and
//! decodes it again at the next edit or sync. Only documents up to [`PACK_AT_MOST`] are
//! packed: decoding one takes well under a millisecond, while decoding a large
//! one would delay the keystroke that wakes it.
//!
//! Packing keeps everything: the encoding includes updates yrs holds back
//! until what they depend on arrives (see [`SessionDoc::snapshot`]), and the
//! decoded copy keeps the room's own client id, so the room's later writes
//! continue its own clock.

use crate::sync::document::SessionDoc;

/// The largest encoding packed, in bytes.
pub const PACK_AT_MOST: usize = 64 * 1024;

pub struct RoomDoc {
    state: State,
    /// The room's own client id (what its writes are stamped with).
    client_id: u64,
    /// Used since the last check.
    used: bool,
}

enum State {
    Decoded(SessionDoc),
    Packed(Box<[u8]>),
}

impl RoomDoc {
    pub fn new(doc: SessionDoc) -> Self {
        Self {
            client_id: doc.doc().client_id().get(),
            state: State::Decoded(doc),
            used: true,
        }
    }

    /// The decoded document (decoded now if it was packed).
    pub fn get(&mut self) -> &SessionDoc {
        self.used = true;
        if let State::Packed(bytes) = &self.state {
            self.state = State::Decoded(unpack(self.client_id, bytes));
        }
        match &self.state {
            State::Decoded(doc) => doc,
            State::Packed(_) => unreachable!("decoded just above"),
        }
    }

    /// The whole document as one v1 update ([`SessionDoc::snapshot`]), without
    /// decoding a packed document.
    pub fn snapshot(&mut self) -> Vec<u8> {
        match &self.state {
            State::Packed(bytes) => bytes.to_vec(),
            State::Decoded(_) => self.get().snapshot(),
        }
    }

    /// The length of [`Self::snapshot`], without decoding a packed document.
    pub fn encoded_len(&mut self) -> usize {
        match &self.state {
            State::Packed(bytes) => bytes.len(),
            State::Decoded(_) => self.get().encoded_len(),
        }
    }

    /// Packs the document if it was not used since the last call and is small
    /// enough; returns whether it is packed now.
    pub fn pack_if_unused(&mut self) -> bool {
        let used = std::mem::replace(&mut self.used, false);
        if let State::Decoded(doc) = &self.state {
            if used {
                return false;
            }
            let bytes = doc.snapshot();
            if bytes.len() > PACK_AT_MOST {
                // Checked again only after it is used: unchanged, it stays too big.
                return false;
            }
            self.state = State::Packed(bytes.into_boxed_slice());
        }
        true
    }

    pub fn is_packed(&self) -> bool {
        matches!(self.state, State::Packed(_))
    }
}

/// Decodes a packed document. It is the document's own encoding, so it
/// applies; if yrs refused it all the same, the room would serve what did
/// apply, so the refusal is logged loudly.
fn unpack(client_id: u64, bytes: &[u8]) -> SessionDoc {
    let doc = SessionDoc::with_client_id(client_id);
    if let Err(e) = doc.apply(bytes) {
        tracing::error!(error = %e, "a packed document did not decode");
    }
    doc
}

#[cfg(test)]
mod tests {
    use super::*;
    use yrs::{GetString, Text, Transact};

    fn doc_with(text: &str) -> SessionDoc {
        let doc = SessionDoc::new();
        doc.insert_code(0, text);
        doc
    }

    #[test]
    fn a_document_unused_since_the_last_check_is_packed_and_decodes_to_the_same_document() {
        let original = doc_with("print('hello')\n");
        let before = original.snapshot();
        let client = original.doc().client_id();
        let mut room_doc = RoomDoc::new(original);
        assert!(!room_doc.pack_if_unused(), "used since it was made");
        assert!(room_doc.pack_if_unused());
        assert!(room_doc.is_packed());
        assert_eq!(room_doc.snapshot(), before, "read without decoding");
        assert_eq!(room_doc.encoded_len(), before.len());
        assert!(room_doc.is_packed());

        let decoded = room_doc.get();
        assert_eq!(decoded.code(), "print('hello')\n");
        assert_eq!(
            decoded.doc().client_id(),
            client,
            "the room keeps its client id"
        );
        assert!(!room_doc.is_packed());
        assert!(!room_doc.pack_if_unused(), "used since the last check");
    }

    #[test]
    fn the_room_s_writes_after_decoding_continue_its_own_clock() {
        let mut room_doc = RoomDoc::new(doc_with("a"));
        let client = room_doc.get().doc().client_id();
        let before = room_doc.snapshot();
        room_doc.pack_if_unused();
        assert!(room_doc.pack_if_unused());
        let update = room_doc.get().insert_code(1, "b");
        // A peer that had the document before it was packed takes the write
        // as the same client's next one.
        let peer = SessionDoc::new();
        peer.apply(&before).unwrap();
        peer.apply(&update).unwrap();
        assert_eq!(peer.code(), "ab");
        let clocks = peer.state_vector();
        assert_eq!(clocks.get(&client), 2);
        assert_eq!(clocks.iter().count(), 1, "no other client wrote");
    }

    #[test]
    fn updates_held_back_for_a_missing_dependency_survive_packing() {
        // Two edits by a browser; the room gets the second one first.
        let browser = yrs::Doc::new();
        let text = browser.get_or_insert_text(crate::sync::document::CODE);
        let first = {
            let mut txn = browser.transact_mut();
            text.insert(&mut txn, 0, "held ");
            txn.encode_update_v1()
        };
        let second = {
            let mut txn = browser.transact_mut();
            text.insert(&mut txn, 5, "back");
            txn.encode_update_v1()
        };
        let room = SessionDoc::new();
        room.apply(&second).unwrap();
        assert_eq!(room.code(), "", "waits for the first edit");
        let mut room_doc = RoomDoc::new(room);
        room_doc.pack_if_unused();
        assert!(room_doc.pack_if_unused());
        room_doc.get().apply(&first).unwrap();
        assert_eq!(room_doc.get().code(), "held back");
        assert_eq!(text.get_string(&browser.transact()), "held back");
    }

    #[test]
    fn a_large_document_stays_decoded() {
        let mut room_doc = RoomDoc::new(doc_with(&"x".repeat(PACK_AT_MOST + 1)));
        room_doc.pack_if_unused();
        assert!(!room_doc.pack_if_unused());
        assert!(!room_doc.is_packed());
    }
}

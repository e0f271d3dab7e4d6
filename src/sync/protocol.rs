//! The y-websocket wire protocol, sans IO: splitting a binary frame into
//! messages and encoding the messages the server sends.
//!
//! A frame holds one or more messages, each `varuint type` followed by its body:
//! sync (0) = `varuint step` + `varbuf payload` (SyncStep1 = state vector,
//! SyncStep2 and Update = yrs v1 update), awareness (1) = `varbuf update`,
//! auth (2), awareness query (3). Framing is parsed here, strictly, so that a
//! truncated or overlong message is an error rather than silently ignored; the
//! payloads are then decoded with yrs.

use super::schema::{self, DocumentKind, SchemaError};
use yrs::{
    block::ClientID,
    sync::{
        awareness::{AwarenessUpdate, AwarenessUpdateEntry},
        protocol::MSG_AWARENESS,
    },
    updates::{decoder::Decode, encoder::Encode},
    StateVector, Update,
};

pub const MSG_SYNC: u64 = 0;
pub const MSG_AUTH: u64 = 2;
pub const MSG_QUERY_AWARENESS: u64 = 3;
pub const SYNC_STEP_1: u64 = 0;
pub const SYNC_STEP_2: u64 = 1;
pub const SYNC_UPDATE: u64 = 2;

/// One decoded client message.
#[derive(Debug)]
pub enum ClientMessage {
    /// The client's state vector: answer with what it lacks.
    SyncStep1(StateVector),
    /// What the peer has that we lacked (answer to our SyncStep1). Empty when
    /// the update holds no change (so nothing needs storing or relaying).
    SyncStep2(ReceivedUpdate),
    /// A live edit (empty when it holds no change).
    Update(ReceivedUpdate),
    /// Presence: one entry per client the message speaks for.
    Awareness(AwarenessMessage),
    /// The client asks for everyone's presence.
    AwarenessQuery,
    /// A message type pairpad does not use (auth, custom): ignored.
    Ignored(u64),
}

impl ClientMessage {
    /// What the message counts against a connection's message budget: one,
    /// or one per client entry for presence (one message may speak for many).
    pub fn weight(&self) -> usize {
        match self {
            ClientMessage::Awareness(message) => message.entries.len().max(1),
            _ => 1,
        }
    }
}

/// One client's presence in an awareness message: its clock and its state as
/// JSON (`null` when the client is gone).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AwarenessEntry {
    pub client: u64,
    pub clock: u32,
    pub json: String,
}

impl AwarenessEntry {
    /// The client left (y-protocols sends the JSON text `null`).
    pub fn is_removal(&self) -> bool {
        self.json == "null"
    }
}

/// An awareness message as received: its entries, and its payload as it came
/// (relayed unchanged when every entry is accepted).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AwarenessMessage {
    pub entries: Vec<AwarenessEntry>,
    pub raw: Vec<u8>,
}

impl AwarenessMessage {
    /// The entries as yrs's awareness type takes them.
    pub fn into_update(self) -> AwarenessUpdate {
        let clients = self
            .entries
            .into_iter()
            .map(|entry| {
                let update = AwarenessUpdateEntry {
                    clock: entry.clock,
                    json: entry.json.into(),
                };
                (ClientID::new(entry.client), update)
            })
            .collect();
        AwarenessUpdate { clients }
    }
}

/// An update as received: its bytes (stored and relayed as they came; they
/// deref to `[u8]`) and its decoded form, which the server applies without
/// decoding the bytes a second time.
#[derive(Debug)]
pub struct ReceivedUpdate {
    pub bytes: Vec<u8>,
    pub decoded: Update,
}

impl std::ops::Deref for ReceivedUpdate {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        &self.bytes
    }
}

impl PartialEq<Vec<u8>> for ReceivedUpdate {
    fn eq(&self, other: &Vec<u8>) -> bool {
        self.bytes == *other
    }
}

/// Why a frame is not a valid protocol frame.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    #[error("empty frame")]
    Empty,
    #[error("bad varint at byte {0}")]
    BadVarint(usize),
    #[error("message truncated at byte {0}")]
    Truncated(usize),
    #[error("unknown sync step {0}")]
    UnknownSyncStep(u64),
    #[error("undecodable state vector")]
    BadStateVector,
    #[error("undecodable document update")]
    BadUpdate,
    #[error("undecodable awareness update")]
    BadAwareness,
    #[error("frame holds more than {0} messages")]
    TooManyMessages(usize),
    #[error("unsupported document content: {0}")]
    Unsupported(SchemaError),
}

/// A bounds-checked reader over a frame.
struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn is_done(&self) -> bool {
        self.pos >= self.buf.len()
    }

    /// lib0 varuint: 7 bits a byte, least significant first; at most 53 bits
    /// (JavaScript's safe integers), so at most 8 bytes.
    fn varuint(&mut self) -> Result<u64, FrameError> {
        let start = self.pos;
        let mut value: u64 = 0;
        for shift in (0..56).step_by(7) {
            let Some(&byte) = self.buf.get(self.pos) else {
                return Err(FrameError::Truncated(start));
            };
            self.pos += 1;
            value |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return if value < (1 << 53) {
                    Ok(value)
                } else {
                    Err(FrameError::BadVarint(start))
                };
            }
        }
        Err(FrameError::BadVarint(start))
    }

    fn varbuf(&mut self) -> Result<&'a [u8], FrameError> {
        let start = self.pos;
        let len = self.varuint()?;
        let len = usize::try_from(len).map_err(|_| FrameError::Truncated(start))?;
        let end = self
            .pos
            .checked_add(len)
            .filter(|&end| end <= self.buf.len())
            .ok_or(FrameError::Truncated(start))?;
        let bytes = &self.buf[self.pos..end];
        self.pos = end;
        Ok(bytes)
    }

    fn varstring(&mut self) -> Result<&'a str, FrameError> {
        let start = self.pos;
        std::str::from_utf8(self.varbuf()?).map_err(|_| FrameError::Truncated(start))
    }
}

/// Splits a binary frame into client messages, decoding and validating payloads.
/// Any framing or payload error rejects the whole frame. For frames from the
/// server, which are trusted; clients' frames go through [`decode_frame_bounded`].
pub fn decode_frame(frame: &[u8]) -> Result<Vec<ClientMessage>, FrameError> {
    decode(frame, usize::MAX, None)
}

/// [`decode_frame`] for a frame from an untrusted client: refuses a frame
/// whose messages weigh more than `budget` (see [`ClientMessage::weight`]),
/// counted before each payload is decoded, so a hostile frame costs at most
/// `budget` messages' work; and refuses updates that write what a session
/// document does not hold (see [`schema`]) before yrs decodes them.
pub fn decode_client_frame(
    frame: &[u8],
    budget: usize,
    kind: DocumentKind,
) -> Result<Vec<ClientMessage>, FrameError> {
    decode(frame, budget, Some(kind))
}

/// `untrusted`: the document kind a client's updates are checked against.
fn decode(
    frame: &[u8],
    budget: usize,
    untrusted: Option<DocumentKind>,
) -> Result<Vec<ClientMessage>, FrameError> {
    if frame.is_empty() {
        return Err(FrameError::Empty);
    }
    let mut reader = Reader { buf: frame, pos: 0 };
    let mut messages = Vec::with_capacity(1);
    let mut spent = 0usize;
    while !reader.is_done() {
        spent += 1;
        if spent > budget {
            return Err(FrameError::TooManyMessages(budget));
        }
        let message = match reader.varuint()? {
            MSG_SYNC => {
                let step = reader.varuint()?;
                let payload = reader.varbuf()?;
                match step {
                    SYNC_STEP_1 => ClientMessage::SyncStep1(decode_state_vector(payload)?),
                    SYNC_STEP_2 | SYNC_UPDATE => {
                        if let Some(kind) = untrusted {
                            schema::check_update(payload, kind).map_err(|e| match e {
                                // Not an update at all: malformed, like any bad payload.
                                SchemaError::Malformed => FrameError::BadUpdate,
                                unsupported => FrameError::Unsupported(unsupported),
                            })?;
                        }
                        let decoded = decode_update(payload)?;
                        let bytes = if decoded.is_empty() {
                            Vec::new()
                        } else {
                            payload.to_vec()
                        };
                        let update = ReceivedUpdate { bytes, decoded };
                        if step == SYNC_STEP_2 {
                            ClientMessage::SyncStep2(update)
                        } else {
                            ClientMessage::Update(update)
                        }
                    }
                    other => return Err(FrameError::UnknownSyncStep(other)),
                }
            }
            tag if tag == u64::from(MSG_AWARENESS) => {
                let payload = reader.varbuf()?;
                let message = decode_awareness(payload, budget - spent + 1)?;
                spent += message.entries.len().saturating_sub(1);
                ClientMessage::Awareness(message)
            }
            MSG_QUERY_AWARENESS => ClientMessage::AwarenessQuery,
            MSG_AUTH => {
                // Permission flag and optional reason; pairpad does not use auth.
                let _flag = reader.varuint()?;
                if !reader.is_done() {
                    let _reason = reader.varbuf()?;
                }
                ClientMessage::Ignored(MSG_AUTH)
            }
            other => {
                // Unknown types carry a varbuf by convention (y-protocols custom
                // messages); skip it so later messages in the frame still count.
                let _ = reader.varbuf()?;
                ClientMessage::Ignored(other)
            }
        };
        messages.push(message);
    }
    Ok(messages)
}

/// A state vector: `varuint count`, then per client `varuint id`, `varuint
/// clock`. The count is checked against the payload (two bytes at least per
/// entry) before yrs reserves room for it: a few bytes must not declare
/// billions of entries, whatever the allocator makes of the reservation.
fn decode_state_vector(payload: &[u8]) -> Result<StateVector, FrameError> {
    let mut reader = Reader {
        buf: payload,
        pos: 0,
    };
    let count = reader.varuint().map_err(|_| FrameError::BadStateVector)?;
    let room = (payload.len() - reader.pos) / 2;
    if count > room as u64 {
        return Err(FrameError::BadStateVector);
    }
    StateVector::decode_v1(payload).map_err(|_| FrameError::BadStateVector)
}

/// An awareness payload: `varuint count`, then per client `varuint id`,
/// `varuint clock`, `varstring json`. Read here rather than by yrs so that the
/// count is checked against `budget` before anything is allocated for it.
fn decode_awareness(payload: &[u8], budget: usize) -> Result<AwarenessMessage, FrameError> {
    let mut reader = Reader {
        buf: payload,
        pos: 0,
    };
    let bad = |_| FrameError::BadAwareness;
    let count = reader.varuint().map_err(bad)?;
    // Each entry takes at least three bytes: a count that cannot fit is a
    // malformed message (and is never used to reserve memory).
    if count > ((payload.len() - reader.pos) / 3) as u64 {
        return Err(FrameError::BadAwareness);
    }
    if count > budget as u64 {
        return Err(FrameError::TooManyMessages(budget));
    }
    let mut entries = Vec::with_capacity(count as usize);
    for _ in 0..count {
        let client = reader.varuint().map_err(bad)?;
        let clock =
            u32::try_from(reader.varuint().map_err(bad)?).map_err(|_| FrameError::BadAwareness)?;
        let json = reader.varstring().map_err(bad)?;
        // Peers parse states as JSON: garbage relayed from one client would
        // break every other client.
        if serde_json::from_str::<serde::de::IgnoredAny>(json).is_err() {
            return Err(FrameError::BadAwareness);
        }
        entries.push(AwarenessEntry {
            client,
            clock,
            json: json.to_owned(),
        });
    }
    if !reader.is_done() {
        return Err(FrameError::BadAwareness);
    }
    Ok(AwarenessMessage {
        entries,
        raw: payload.to_vec(),
    })
}

/// Decodes a yrs v1 update, never panicking on garbage.
pub fn decode_update(payload: &[u8]) -> Result<Update, FrameError> {
    match std::panic::catch_unwind(|| Update::decode_v1(payload)) {
        Ok(Ok(update)) => Ok(update),
        _ => Err(FrameError::BadUpdate),
    }
}

/// The first client whose structs a v1 update carries: the author of an
/// update a Yjs client made (its transactions insert only its own structs).
/// `None` for an update that only deletes (it names no author) or that does
/// not parse.
pub fn first_struct_client(update: &[u8]) -> Option<u64> {
    let mut reader = Reader {
        buf: update,
        pos: 0,
    };
    if reader.varuint().ok()? == 0 {
        return None;
    }
    let _structs = reader.varuint().ok()?;
    reader.varuint().ok()
}

/// Appends `value` as a lib0 varuint.
pub fn write_varuint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push((value as u8 & 0x7f) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

fn sync_frame(step: u64, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(payload.len() + 12);
    write_varuint(&mut out, MSG_SYNC);
    write_varuint(&mut out, step);
    write_varuint(&mut out, payload.len() as u64);
    out.extend_from_slice(payload);
    out
}

/// Server SyncStep1: our state vector.
pub fn encode_sync_step1(state_vector: &StateVector) -> Vec<u8> {
    sync_frame(SYNC_STEP_1, &state_vector.encode_v1())
}

/// Server SyncStep2: what the client lacks.
pub fn encode_sync_step2(update: &[u8]) -> Vec<u8> {
    sync_frame(SYNC_STEP_2, update)
}

/// A live update relayed to clients.
pub fn encode_update(update: &[u8]) -> Vec<u8> {
    sync_frame(SYNC_UPDATE, update)
}

/// An awareness message from an already encoded awareness update.
pub fn encode_awareness_bytes(update: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(update.len() + 6);
    write_varuint(&mut out, u64::from(MSG_AWARENESS));
    write_varuint(&mut out, update.len() as u64);
    out.extend_from_slice(update);
    out
}

/// An awareness message.
pub fn encode_awareness(update: &AwarenessUpdate) -> Vec<u8> {
    encode_awareness_bytes(&update.encode_v1())
}

/// An awareness message holding `entries` (client, clock, JSON state).
pub fn encode_awareness_entries<'a>(
    entries: impl ExactSizeIterator<Item = (u64, u32, &'a str)>,
) -> Vec<u8> {
    let mut payload = Vec::new();
    write_varuint(&mut payload, entries.len() as u64);
    for (client, clock, json) in entries {
        write_varuint(&mut payload, client);
        write_varuint(&mut payload, u64::from(clock));
        write_varuint(&mut payload, json.len() as u64);
        payload.extend_from_slice(json.as_bytes());
    }
    encode_awareness_bytes(&payload)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sync::SessionDoc;
    use yrs::{Doc, ReadTxn, Text, Transact};

    fn sample_update() -> Vec<u8> {
        let doc = Doc::new();
        let text = doc.get_or_insert_text("code");
        let mut txn = doc.transact_mut();
        text.insert(&mut txn, 0, "hello");
        txn.encode_update_v1()
    }

    #[test]
    fn a_state_vector_declaring_more_entries_than_it_holds_is_refused() {
        // 2^32 - 1 entries in five bytes: refused before anything is reserved.
        let frame = [0x00, 0x00, 0x05, 0xff, 0xff, 0xff, 0xff, 0x0f];
        assert!(matches!(
            decode_frame(&frame),
            Err(FrameError::BadStateVector)
        ));
        // A real one (two entries) still decodes.
        let doc = Doc::new();
        doc.get_or_insert_text("code")
            .insert(&mut doc.transact_mut(), 0, "a");
        let other = Doc::new();
        other
            .get_or_insert_text("code")
            .insert(&mut other.transact_mut(), 0, "b");
        let diff = other
            .transact()
            .encode_state_as_update_v1(&StateVector::default());
        doc.transact_mut()
            .apply_update(yrs::Update::decode_v1(&diff).unwrap())
            .unwrap();
        let sv = doc.transact().state_vector();
        let frame = encode_sync_step1(&sv);
        assert!(matches!(
            decode_frame(&frame).unwrap()[..],
            [ClientMessage::SyncStep1(ref decoded)] if *decoded == sv
        ));
    }

    #[test]
    fn round_trips_every_server_message() {
        let update = sample_update();
        let sv = StateVector::default();
        let mut frame = encode_sync_step1(&sv);
        frame.extend(encode_sync_step2(&update));
        frame.extend(encode_update(&update));
        let messages = decode_frame(&frame).unwrap();
        assert!(matches!(messages[0], ClientMessage::SyncStep1(ref v) if *v == sv));
        assert!(matches!(messages[1], ClientMessage::SyncStep2(ref u) if *u == update));
        assert!(matches!(messages[2], ClientMessage::Update(ref u) if *u == update));
    }

    #[test]
    fn a_received_update_applies_in_its_decoded_form() {
        let update = sample_update();
        let mut messages = decode_frame(&encode_update(&update)).unwrap();
        let Some(ClientMessage::Update(received)) = messages.pop() else {
            panic!("expected an update");
        };
        assert_eq!(received.bytes, update, "bytes kept as received");
        let doc = SessionDoc::new();
        doc.apply_decoded(received.decoded, None).unwrap();
        assert_eq!(doc.code(), "hello");
    }

    #[test]
    fn empty_updates_decode_to_empty_payloads() {
        let empty = SessionDoc::new().snapshot();
        let messages = decode_frame(&encode_sync_step2(&empty)).unwrap();
        assert!(matches!(messages[0], ClientMessage::SyncStep2(ref u) if u.is_empty()));
    }

    #[test]
    fn accepts_awareness_queries_and_ignores_unknown_types() {
        let frame = [3u8, 7, 2, 0xAB, 0xCD];
        let messages = decode_frame(&frame).unwrap();
        assert!(matches!(messages[0], ClientMessage::AwarenessQuery));
        assert!(matches!(messages[1], ClientMessage::Ignored(7)));
    }

    #[test]
    fn rejects_truncated_and_garbage_frames() {
        let update = encode_update(&sample_update());
        assert_eq!(decode_frame(&[]).unwrap_err(), FrameError::Empty);
        assert!(matches!(
            decode_frame(&update[..update.len() - 1]),
            Err(FrameError::Truncated(_))
        ));
        assert!(matches!(
            decode_frame(&[0x80]),
            Err(FrameError::Truncated(0))
        ));
        assert!(matches!(
            decode_frame(&[0xff; 12]),
            Err(FrameError::BadVarint(0))
        ));
        assert_eq!(
            decode_frame(&[0, 9, 0]).unwrap_err(),
            FrameError::UnknownSyncStep(9)
        );
        assert_eq!(
            decode_frame(&[0, 2, 3, 0xff, 0xff, 0xff]).unwrap_err(),
            FrameError::BadUpdate
        );
        assert_eq!(
            decode_frame(&[1, 2, 0xff, 0xff]).unwrap_err(),
            FrameError::BadAwareness
        );
        // Client 7 whose state is the text `{not json`.
        let bad_json = [
            1u8, 13, 1, 7, 1, 9, b'{', b'n', b'o', b't', b' ', b'j', b's', b'o', b'n',
        ];
        assert_eq!(
            decode_frame(&bad_json).unwrap_err(),
            FrameError::BadAwareness
        );
        // A length that points far past the end of the frame.
        assert!(matches!(
            decode_frame(&[0, 2, 0xff, 0xff, 0xff, 0x7f]),
            Err(FrameError::Truncated(_))
        ));
    }

    #[test]
    fn client_frames_are_bounded_and_checked_before_decoding() {
        let mut crowded = Vec::new();
        for _ in 0..5 {
            crowded.push(MSG_QUERY_AWARENESS as u8);
        }
        assert_eq!(
            decode_client_frame(&crowded, 4, DocumentKind::Session).unwrap_err(),
            FrameError::TooManyMessages(4)
        );
        assert_eq!(
            decode_client_frame(&crowded, 5, DocumentKind::Session)
                .unwrap()
                .len(),
            5
        );
        // One awareness message speaking for five clients weighs five.
        let entries: Vec<(u64, u32, &str)> = (0..5).map(|id| (id, 1, "null")).collect();
        let frame = encode_awareness_entries(entries.into_iter());
        assert_eq!(
            decode_client_frame(&frame, 4, DocumentKind::Session).unwrap_err(),
            FrameError::TooManyMessages(4)
        );
        // Garbage is malformed (1007); a well-formed write to an unknown type is
        // unsupported content (4422).
        assert_eq!(
            decode_client_frame(
                &encode_update(&[0xff, 0xff, 0xff]),
                8,
                DocumentKind::Session
            )
            .unwrap_err(),
            FrameError::BadUpdate
        );
        let junk = {
            let doc = yrs::Doc::new();
            let map = doc.get_or_insert_map("junk");
            let mut txn = doc.transact_mut();
            yrs::Map::insert(&map, &mut txn, "k", "v");
            txn.encode_update_v1()
        };
        assert!(matches!(
            decode_client_frame(&encode_update(&junk), 8, DocumentKind::Session),
            Err(FrameError::Unsupported(_))
        ));
    }

    #[test]
    fn encodes_what_yjs_expects_for_a_state_vector() {
        let doc = Doc::new();
        let frame = encode_sync_step1(&doc.transact().state_vector());
        // type 0, step 0, then a one-byte buffer holding an empty state vector.
        assert_eq!(frame, vec![0, 0, 1, 0]);
    }

    mod fuzz {
        use super::super::*;
        use crate::sync::SessionDoc;
        use proptest::prelude::*;

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(2000))]

            /// Arbitrary bytes never panic the decoder.
            #[test]
            fn decoding_arbitrary_bytes_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
                let _ = decode_frame(&bytes);
            }

            /// Arbitrary update payloads inside a well-formed frame never panic
            /// the decoder or the document, and never change its text when refused.
            #[test]
            fn garbage_updates_never_panic_or_corrupt(payload in proptest::collection::vec(any::<u8>(), 0..256)) {
                let doc = SessionDoc::new();
                doc.insert_code(0, "stable text");
                let frame = encode_update(&payload);
                if let Ok(messages) = decode_frame(&frame) {
                    for message in messages {
                        if let ClientMessage::Update(update) = message {
                            if doc.apply(&update).is_err() {
                                prop_assert_eq!(doc.code(), "stable text");
                            }
                        }
                    }
                }
            }

            /// Real updates, cut at any point, are refused whole (never half applied).
            #[test]
            fn truncated_real_frames_are_rejected(cut in 1usize..40) {
                let doc = SessionDoc::new();
                let frame = encode_update(&doc.insert_code(0, "hello world, hello yrs"));
                let cut = cut.min(frame.len() - 1);
                prop_assert!(decode_frame(&frame[..cut]).is_err());
            }
        }
    }

    #[test]
    fn an_updates_author_is_its_first_struct_client_and_deletions_name_none() {
        let doc = Doc::with_client_id(4_000_000_001);
        let text = doc.get_or_insert_text("code");
        let insert = {
            let mut txn = doc.transact_mut();
            text.insert(&mut txn, 0, "hello");
            txn.encode_update_v1()
        };
        assert_eq!(first_struct_client(&insert), Some(4_000_000_001));
        let delete = {
            let mut txn = doc.transact_mut();
            text.remove_range(&mut txn, 0, 2);
            txn.encode_update_v1()
        };
        assert_eq!(first_struct_client(&delete), None);
        assert_eq!(first_struct_client(&[]), None);
        assert_eq!(first_struct_client(&[1, 0xff]), None);
    }
}

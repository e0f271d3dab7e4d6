//! What a session document may hold, checked on every update a client sends
//! before yrs decodes it: the three shared types pairpad uses (`code`, a
//! Y.Text of strings; `meta`, a Y.Map and `runs`, a Y.Array, both of plain
//! values) and nothing else. Anything a client invents (another root type,
//! nested types, subdocuments, binary, embeds, formatting) is refused outright,
//! so it can neither grow the document behind the size limit's back nor reach
//! code paths the pad never exercises.
//!
//! The check walks the struct section of a lib0 v1 update (the format yrs and
//! Yjs share) without building anything. It also caps how deeply plain values
//! nest, which yrs's own decoder does not: a value nested a few hundred
//! thousand levels deep would overflow the stack while being decoded or dropped.

/// Which document an update is for: each holds its own shared types.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DocumentKind {
    /// The session's document: the code, its meta map and the runs.
    Session,
    /// The interviewers' private notes.
    Notes,
}

impl DocumentKind {
    /// The shared types the document holds, and how each is used.
    fn roots(self) -> &'static [(&'static str, RootKind)] {
        match self {
            DocumentKind::Session => &[
                (super::document::CODE, RootKind::Text),
                (super::document::META, RootKind::Map),
                (super::document::RUNS, RootKind::Array),
            ],
            DocumentKind::Notes => &[(super::document::NOTES, RootKind::Text)],
        }
    }
}

/// Keys of maps that only the server writes: (map, key).
const SERVER_ONLY_KEYS: [(&str, &str); 1] = [(super::document::META, super::document::META_ENDED)];

/// Deepest nesting of arrays and maps inside one plain value (a run record is
/// three levels deep).
pub const MAX_VALUE_DEPTH: usize = 16;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum RootKind {
    Text,
    Map,
    Array,
}

// Struct kinds in the v1 encoding (the low bits of a struct's info byte).
const GC: u8 = 0;
const DELETED: u8 = 1;
const JSON: u8 = 2;
const BINARY: u8 = 3;
const STRING: u8 = 4;
const EMBED: u8 = 5;
const FORMAT: u8 = 6;
const TYPE: u8 = 7;
const ANY: u8 = 8;
const DOC: u8 = 9;
const SKIP: u8 = 10;
const HAS_ORIGIN: u8 = 0b1000_0000;
const HAS_RIGHT_ORIGIN: u8 = 0b0100_0000;
const HAS_PARENT_SUB: u8 = 0b0010_0000;

/// Why an update is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SchemaError {
    #[error("unknown shared type {0:?} (a session holds only code, meta and runs)")]
    UnknownRoot(String),
    #[error("shared type {0:?} written as a different kind of type")]
    WrongKind(String),
    #[error("nested shared types are not supported")]
    Nested,
    #[error("{0} content is not supported")]
    Content(&'static str),
    #[error("values nested deeper than {MAX_VALUE_DEPTH} levels")]
    TooDeep,
    #[error("{0}.{1} is written by the server only")]
    ServerOnly(&'static str, &'static str),
    #[error("undecodable update")]
    Malformed,
}

/// Checks that `update` (lib0 v1) only writes what a `kind` document holds.
///
/// A key written for the first time names itself, so a client's attempt at a
/// server-only key is caught here. An overwrite refers to the earlier value
/// instead; the room puts such a flag back (see `rooms::state`).
pub fn check_update(update: &[u8], kind: DocumentKind) -> Result<(), SchemaError> {
    let mut reader = Reader {
        buf: update,
        pos: 0,
    };
    let clients = reader.varuint()?;
    for _ in 0..clients {
        let structs = reader.varuint()?;
        let _client = reader.varuint()?;
        let _clock = reader.varuint()?;
        for _ in 0..structs {
            check_struct(&mut reader, kind)?;
        }
    }
    // The delete set: walked too, so that a count declared in a few bytes
    // ends at the end of the data here instead of sizing a reservation in yrs.
    let clients = reader.varuint()?;
    for _ in 0..clients {
        let _client = reader.varuint()?;
        let ranges = reader.varuint()?;
        for _ in 0..ranges {
            let _clock = reader.varuint()?;
            let _len = reader.varuint()?;
        }
    }
    Ok(())
}

fn check_struct(reader: &mut Reader, document: DocumentKind) -> Result<(), SchemaError> {
    let info = reader.byte()?;
    if info == SKIP || info == GC {
        let _len = reader.varuint()?;
        return Ok(());
    }
    let has_origin = info & (HAS_ORIGIN | HAS_RIGHT_ORIGIN) != 0;
    if info & HAS_ORIGIN != 0 {
        reader.id()?;
    }
    if info & HAS_RIGHT_ORIGIN != 0 {
        reader.id()?;
    }
    // An item next to an existing one inherits its parent (checked when that
    // one arrived); only an item with no neighbour names its parent.
    let root = if has_origin {
        None
    } else {
        let named = reader.varuint()? == 1;
        if !named {
            return Err(SchemaError::Nested);
        }
        let name = reader.string()?;
        let kind = document
            .roots()
            .iter()
            .find(|(root, _)| *root == name)
            .map(|(_, kind)| *kind)
            .ok_or_else(|| SchemaError::UnknownRoot(name.chars().take(64).collect()))?;
        let keyed = info & HAS_PARENT_SUB != 0;
        if keyed {
            let key = reader.string()?;
            if let Some((map, key)) = SERVER_ONLY_KEYS
                .iter()
                .find(|(map, server_key)| *map == name && *server_key == key)
            {
                return Err(SchemaError::ServerOnly(map, key));
            }
        }
        if keyed != (kind == RootKind::Map) {
            return Err(SchemaError::WrongKind(name.to_owned()));
        }
        Some((name, kind))
    };
    let content = info & 0b1111;
    let fits = |kinds: &[RootKind]| root.is_none_or(|(_, kind)| kinds.contains(&kind));
    match content {
        DELETED => {
            let _len = reader.varuint()?;
        }
        STRING if fits(&[RootKind::Text]) => {
            let _text = reader.string()?;
        }
        ANY if fits(&[RootKind::Map, RootKind::Array]) => {
            let count = reader.varuint()?;
            for _ in 0..count {
                reader.skip_value(0)?;
            }
        }
        STRING | ANY => {
            let name = root.map_or("", |(name, _)| name);
            return Err(SchemaError::WrongKind(name.to_owned()));
        }
        JSON => return Err(SchemaError::Content("JSON")),
        BINARY => return Err(SchemaError::Content("binary")),
        EMBED => return Err(SchemaError::Content("embedded")),
        FORMAT => return Err(SchemaError::Content("formatting")),
        TYPE => return Err(SchemaError::Nested),
        DOC => return Err(SchemaError::Content("subdocument")),
        _ => return Err(SchemaError::Malformed),
    }
    Ok(())
}

/// A bounds-checked reader of lib0 v1 primitives.
struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn byte(&mut self) -> Result<u8, SchemaError> {
        let byte = *self.buf.get(self.pos).ok_or(SchemaError::Malformed)?;
        self.pos += 1;
        Ok(byte)
    }

    fn skip(&mut self, len: usize) -> Result<(), SchemaError> {
        let end = self
            .pos
            .checked_add(len)
            .filter(|end| *end <= self.buf.len())
            .ok_or(SchemaError::Malformed)?;
        self.pos = end;
        Ok(())
    }

    /// An unsigned varint (7 bits a byte), at most 64 bits.
    fn varuint(&mut self) -> Result<u64, SchemaError> {
        let mut value = 0u64;
        for shift in (0..64).step_by(7) {
            let byte = self.byte()?;
            value |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(SchemaError::Malformed)
    }

    /// A signed varint: read to its last byte.
    fn skip_varint(&mut self) -> Result<(), SchemaError> {
        for _ in 0..10 {
            if self.byte()? & 0x80 == 0 {
                return Ok(());
            }
        }
        Err(SchemaError::Malformed)
    }

    fn id(&mut self) -> Result<(), SchemaError> {
        self.varuint()?;
        self.varuint()?;
        Ok(())
    }

    fn bytes(&mut self) -> Result<&'a [u8], SchemaError> {
        let len = usize::try_from(self.varuint()?).map_err(|_| SchemaError::Malformed)?;
        let start = self.pos;
        self.skip(len)?;
        Ok(&self.buf[start..self.pos])
    }

    fn string(&mut self) -> Result<&'a str, SchemaError> {
        std::str::from_utf8(self.bytes()?).map_err(|_| SchemaError::Malformed)
    }

    /// Skips one lib0 `Any` value, refusing nesting deeper than [`MAX_VALUE_DEPTH`].
    fn skip_value(&mut self, depth: usize) -> Result<(), SchemaError> {
        if depth > MAX_VALUE_DEPTH {
            return Err(SchemaError::TooDeep);
        }
        match self.byte()? {
            // undefined, null, false, true
            127 | 126 | 121 | 120 => Ok(()),
            125 => self.skip_varint(),
            124 => self.skip(4),
            123 | 122 => self.skip(8),
            119 | 116 => self.bytes().map(drop),
            118 => {
                let len = self.varuint()?;
                for _ in 0..len {
                    self.bytes()?;
                    self.skip_value(depth + 1)?;
                }
                Ok(())
            }
            117 => {
                let len = self.varuint()?;
                for _ in 0..len {
                    self.skip_value(depth + 1)?;
                }
                Ok(())
            }
            _ => Err(SchemaError::Malformed),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(update: &[u8]) -> Result<(), SchemaError> {
        check_update(update, DocumentKind::Session)
    }

    #[test]
    fn a_delete_set_declaring_more_than_it_holds_is_malformed() {
        // No structs, then a delete set of 2^32 - 1 clients in five bytes.
        assert_eq!(
            check(&[0x00, 0xff, 0xff, 0xff, 0xff, 0x0f]),
            Err(SchemaError::Malformed)
        );
        // One client with 2^32 - 1 ranges.
        assert_eq!(
            check(&[0x00, 0x01, 0x07, 0xff, 0xff, 0xff, 0xff, 0x0f, 0x00]),
            Err(SchemaError::Malformed)
        );
        // A real delete (its struct and its delete set) passes.
        let doc = yrs::Doc::new();
        let text = doc.get_or_insert_text(crate::sync::document::CODE);
        let update = {
            use yrs::{Text, Transact};
            let mut txn = doc.transact_mut();
            text.insert(&mut txn, 0, "abc");
            text.remove_range(&mut txn, 1, 1);
            txn.encode_update_v1()
        };
        assert_eq!(check(&update), Ok(()));
    }

    #[test]
    fn clients_cannot_write_the_ended_flag_and_notes_hold_only_text() {
        let doc = yrs::Doc::new();
        let meta = doc.get_or_insert_map(crate::sync::document::META);
        let ended = {
            use yrs::{Map, Transact};
            let mut txn = doc.transact_mut();
            meta.insert(&mut txn, crate::sync::document::META_ENDED, true);
            txn.encode_update_v1()
        };
        assert_eq!(check(&ended), Err(SchemaError::ServerOnly("meta", "ended")));
        let notes_doc = yrs::Doc::new();
        let notes = notes_doc.get_or_insert_text(crate::sync::document::NOTES);
        let note = {
            use yrs::{Text, Transact};
            let mut txn = notes_doc.transact_mut();
            notes.insert(&mut txn, 0, "strong on recursion");
            txn.encode_update_v1()
        };
        assert_eq!(check_update(&note, DocumentKind::Notes), Ok(()));
        assert!(matches!(check(&note), Err(SchemaError::UnknownRoot(_))));
        assert!(matches!(
            check_update(&ended, DocumentKind::Notes),
            Err(SchemaError::UnknownRoot(_))
        ));
    }
    use crate::{
        domain::{
            run::{RunRecord, RunStatus},
            Language,
        },
        sync::SessionDoc,
    };
    use yrs::{Any, Array, Doc, Map, MapPrelim, Text, Transact};

    /// The update a change makes to a fresh document. `change` gets the
    /// document to take its root types from (before any transaction: yrs
    /// would wait forever for one already open) and returns the edit.
    fn update_of<R>(
        root: impl FnOnce(&Doc) -> R,
        edit: impl FnOnce(&R, &mut yrs::TransactionMut),
    ) -> Vec<u8> {
        let doc = Doc::new();
        let root = root(&doc);
        let mut txn = doc.transact_mut();
        edit(&root, &mut txn);
        txn.encode_update_v1()
    }

    #[test]
    fn what_the_pad_writes_passes() {
        let doc = SessionDoc::new();
        assert_eq!(check(&doc.insert_code(0, "héllo 🦀")), Ok(()));
        // Typing next to existing text (the item has an origin).
        assert_eq!(check(&doc.insert_code(3, "x")), Ok(()));
        assert_eq!(check(&doc.set_language(Language::Python)), Ok(()));
        let before = doc.state_vector();
        doc.record_run(
            &RunRecord {
                id: "1-1".into(),
                by: "Ada".into(),
                language: Language::JavaScript,
                started_at: 1,
                duration_ms: 2,
                status: RunStatus::Ok,
                output: vec![],
                truncated: false,
            },
            None,
        );
        assert_eq!(check(&doc.diff(&before)), Ok(()));
        // The whole document, deletions included.
        let deleting = update_of(
            |doc| doc.get_or_insert_text("code"),
            |code, txn| {
                code.insert(txn, 0, "abc");
                code.remove_range(txn, 1, 1);
            },
        );
        assert_eq!(check(&deleting), Ok(()));
        assert_eq!(check(&doc.snapshot()), Ok(()));
        assert_eq!(check(yrs::Update::EMPTY_V1), Ok(()));
    }

    #[test]
    fn unknown_roots_nested_types_and_odd_content_are_refused() {
        let junk = update_of(
            |doc| doc.get_or_insert_map("junk"),
            |junk, txn| {
                junk.insert(txn, "k", "v");
            },
        );
        assert_eq!(check(&junk), Err(SchemaError::UnknownRoot("junk".into())));
        let nested = update_of(
            |doc| doc.get_or_insert_map("meta"),
            |meta, txn| {
                meta.insert(txn, "k", MapPrelim::default());
            },
        );
        assert_eq!(check(&nested), Err(SchemaError::Nested));
        let map_in_text = update_of(
            |doc| doc.get_or_insert_map("code"),
            |code, txn| {
                code.insert(txn, "k", "v");
            },
        );
        assert!(matches!(
            check(&map_in_text),
            Err(SchemaError::WrongKind(_))
        ));
        let text_in_runs = update_of(
            |doc| doc.get_or_insert_text("runs"),
            |runs, txn| runs.insert(txn, 0, "x"),
        );
        assert!(matches!(
            check(&text_in_runs),
            Err(SchemaError::WrongKind(_))
        ));
        let values_in_code = update_of(
            |doc| doc.get_or_insert_array("code"),
            |code, txn| {
                code.push_back(txn, 1);
            },
        );
        assert!(matches!(
            check(&values_in_code),
            Err(SchemaError::WrongKind(_))
        ));
        let embed = update_of(
            |doc| doc.get_or_insert_text("code"),
            |code, txn| {
                code.insert_embed(txn, 0, Any::Null);
            },
        );
        assert_eq!(check(&embed), Err(SchemaError::Content("embedded")));
        assert_eq!(check(&[1, 1]), Err(SchemaError::Malformed));
    }

    #[test]
    fn deeply_nested_values_are_refused_without_recursing_into_them() {
        // meta.k = [[[[...]]]] a million levels deep, hand-encoded: it would
        // overflow the stack of a recursive decoder.
        let mut update = vec![1, 1, 1, 0, ANY | HAS_PARENT_SUB, 1, 4];
        update.extend_from_slice(b"meta");
        update.extend_from_slice(&[1, b'k', 1]);
        update.extend(std::iter::repeat_n([117u8, 1], 1_000_000).flatten());
        update.push(126);
        update.extend_from_slice(&[0]);
        assert_eq!(check(&update), Err(SchemaError::TooDeep));
        // Sixteen levels are fine.
        let mut shallow = update[..14].to_vec();
        shallow.extend(std::iter::repeat_n([117u8, 1], MAX_VALUE_DEPTH).flatten());
        shallow.extend_from_slice(&[126, 0]);
        assert_eq!(check(&shallow), Ok(()));
    }
}

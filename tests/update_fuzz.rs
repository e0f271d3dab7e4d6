//! Structured fuzzing of document updates: real updates (typing, deleting,
//! language and run changes from several clients) with mutated bytes (wrong
//! parents, dangling origins, odd lengths and content kinds), fed through
//! what the server does with a client's frame (the schema check, decoding,
//! applying) and through the browser's replica (natively). Nothing may panic,
//! and whatever the server accepts, the server's document and the replica must
//! agree on.

use pairpad::{
    collab::CollabClient,
    domain::{
        run::{RunRecord, RunStatus},
        Language,
    },
    sync::{
        protocol::{decode_client_frame, encode_update, ClientMessage},
        schema::DocumentKind,
        SessionDoc,
    },
};
use proptest::prelude::*;
use yrs::{Text, Transact};

/// One edit a well-behaved client could make.
#[derive(Clone, Debug)]
enum Edit {
    Insert { client: u8, at: u16, text: String },
    Delete { client: u8, at: u16, len: u8 },
    Language(bool),
    Run(u8),
}

fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        (0u8..3, any::<u16>(), "[a-z😀漢 \n]{1,8}").prop_map(|(client, at, text)| Edit::Insert {
            client,
            at,
            text
        }),
        (0u8..3, any::<u16>(), 1u8..6).prop_map(|(client, at, len)| Edit::Delete {
            client,
            at,
            len
        }),
        any::<bool>().prop_map(Edit::Language),
        any::<u8>().prop_map(Edit::Run),
    ]
}

/// The updates a sequence of edits produces, from three authors who see each
/// other's edits.
fn updates_of(edits: &[Edit]) -> Vec<Vec<u8>> {
    let authors: Vec<SessionDoc> = (1..=3).map(SessionDoc::with_client_id).collect();
    let mut updates = Vec::new();
    for edit in edits {
        let update = match edit {
            Edit::Insert { client, at, text } => {
                let doc = &authors[*client as usize];
                let at = u32::from(*at) % (doc.code_len_utf16() + 1);
                // Whole characters only: UTF-16 offsets inside a surrogate pair.
                let code = doc.code();
                let safe = code
                    .char_indices()
                    .map(|(i, _)| code[..i].encode_utf16().count() as u32)
                    .chain([doc.code_len_utf16()])
                    .rfind(|offset| *offset <= at)
                    .unwrap_or(0);
                doc.insert_code(safe, text)
            }
            Edit::Delete { client, at, len } => {
                let doc = &authors[*client as usize];
                let length = doc.code_len_utf16();
                if length == 0 {
                    continue;
                }
                let at = u32::from(*at) % length;
                let len = u32::from(*len).min(length - at);
                let code = doc.code_ref().clone();
                let mut txn = doc.doc().transact_mut();
                code.remove_range(&mut txn, at, len);
                txn.encode_update_v1()
            }
            Edit::Language(python) => authors[0].set_language(if *python {
                Language::Python
            } else {
                Language::JavaScript
            }),
            Edit::Run(n) => {
                let doc = &authors[1];
                let before = doc.state_vector();
                doc.record_run(
                    &RunRecord {
                        id: format!("2-{n}"),
                        by: "Fuzz".into(),
                        language: Language::Python,
                        started_at: u64::from(*n),
                        duration_ms: 1,
                        status: RunStatus::Ok,
                        output: vec![],
                        truncated: false,
                    },
                    None,
                );
                doc.diff(&before)
            }
        };
        for other in &authors {
            let _ = other.apply(&update);
        }
        updates.push(update);
    }
    updates
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn mutated_updates_never_panic_or_make_server_and_replica_disagree(
        edits in proptest::collection::vec(edit(), 1..25),
        mutations in proptest::collection::vec((any::<u16>(), any::<u8>()), 0..4),
        cut in proptest::option::of(any::<u16>()),
    ) {
        let updates = updates_of(&edits);
        let server = SessionDoc::new();
        let mut replica = CollabClient::new(99, "Fuzz", || 0);
        for (i, update) in updates.iter().enumerate() {
            let mut bytes = update.clone();
            // Mutate one update in the middle of the sequence.
            if i == updates.len() / 2 {
                for (at, value) in &mutations {
                    let at = usize::from(*at) % bytes.len();
                    bytes[at] = *value;
                }
                if let Some(cut) = cut {
                    bytes.truncate(1 + usize::from(cut) % bytes.len());
                }
            }
            let frame = encode_update(&bytes);
            // The server takes only what passes the checks a client's frame gets.
            let Ok(messages) = decode_client_frame(&frame, 64, DocumentKind::Session) else {
                continue;
            };
            for message in messages {
                if let ClientMessage::Update(update) = message {
                    if !update.is_empty() {
                        let _ = server.apply_all([update.decoded], None);
                    }
                }
            }
            // The server relays exactly those bytes; the replica applies them.
            replica.on_frame(&frame).expect("a relayed frame decodes");
        }
        prop_assert_eq!(server.code(), replica.code());
        prop_assert_eq!(server.state_vector(), replica.state_vector());
    }
}

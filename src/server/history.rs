//! A session's history for playback (`GET /api/sessions/:id/history`): every
//! stored update with its time and author, packed compactly; who the authors
//! are (from the join events the session recorded); and the events. Built
//! from what storage holds, sans IO; the browser replays it with yrs.
//!
//! The packed updates are records back to back, each
//! `varuint atDelta | varuint author | varuint length | update (Yjs v1)`, in
//! lib0's varuint; `at` is the previous record's plus `atDelta` (the first
//! record's is absolute, ms since the epoch). The README documents it too.

use crate::{
    domain::SessionMeta,
    storage::LoggedUpdate,
    sync::{protocol::write_varuint, SessionDoc},
};
use base64::{engine::general_purpose::STANDARD, Engine};
use serde_json::{json, Value};

/// Names the packing, so a client can tell if it ever changes.
pub const FORMAT: &str = "pairpad-history-1";

/// The history of session `meta`: its update log and its notes document's
/// events.
pub fn history(meta: &SessionMeta, log: &[LoggedUpdate], notes: Option<&SessionDoc>) -> Value {
    let events = super::export::events_in_time_order(notes);
    json!({
        "id": meta.id,
        "format": FORMAT,
        "createdAt": meta.created_at_ms,
        "count": log.len(),
        "updates": STANDARD.encode(pack(log)),
        "authors": authors(&events),
        "events": events,
    })
}

/// The log as packed records (see the module docs).
pub fn pack(log: &[LoggedUpdate]) -> Vec<u8> {
    let bytes: usize = log.iter().map(|entry| entry.update.len() + 12).sum();
    let mut packed = Vec::with_capacity(bytes);
    let mut previous_at = 0;
    for entry in log {
        // Timestamps never go back in a log, but a clock might: never wrap.
        write_varuint(&mut packed, entry.at_ms.saturating_sub(previous_at));
        previous_at = previous_at.max(entry.at_ms);
        write_varuint(&mut packed, entry.author);
        write_varuint(&mut packed, entry.update.len() as u64);
        packed.extend_from_slice(&entry.update);
    }
    packed
}

/// Everyone who joined, once per client id, as first announced.
fn authors(events: &[Value]) -> Vec<Value> {
    let mut authors: Vec<Value> = Vec::new();
    for event in events.iter().filter(|event| event["kind"] == "join") {
        let Some(client) = event["client"].as_f64().filter(|c| *c > 0.0) else {
            continue;
        };
        if authors.iter().any(|author| author["client"] == client) {
            continue;
        }
        authors.push(json!({
            "client": client as u64,
            "name": event["name"],
            "role": event["role"],
            "color": event.get("color").cloned().unwrap_or(Value::Null),
        }));
    }
    authors
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Language, SessionId};

    fn read_varuint(bytes: &mut &[u8]) -> u64 {
        let mut value = 0;
        for shift in (0..).step_by(7) {
            let (byte, rest) = bytes.split_first().unwrap();
            *bytes = rest;
            value |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return value;
            }
        }
        unreachable!()
    }

    #[test]
    fn records_unpack_to_the_log_with_absolute_times() {
        let log: Vec<LoggedUpdate> = [
            (1_700_000_000_000u64, 0u64, vec![1u8, 2]),
            (1_700_000_000_250, 4_000_000_001, vec![]),
            (1_700_000_000_250, 9, vec![7; 300]),
        ]
        .into_iter()
        .enumerate()
        .map(|(i, (at_ms, author, update))| LoggedUpdate {
            seq: i as u64 + 1,
            at_ms,
            author,
            update,
        })
        .collect();
        let packed = pack(&log);
        let mut rest = packed.as_slice();
        let mut at = 0;
        for entry in &log {
            at += read_varuint(&mut rest);
            assert_eq!(at, entry.at_ms);
            assert_eq!(read_varuint(&mut rest), entry.author);
            let len = read_varuint(&mut rest) as usize;
            assert_eq!(&rest[..len], entry.update.as_slice());
            rest = &rest[len..];
        }
        assert!(rest.is_empty());
    }

    #[test]
    fn authors_come_from_join_events_once_per_client() {
        let meta = SessionMeta::new(SessionId::new_random(), Language::Python, 5);
        let notes = SessionDoc::new();
        let event = |kind: &str, name: &str, client: f64, at: f64| {
            yrs::Any::from(std::collections::HashMap::from([
                ("kind".to_owned(), yrs::Any::from(kind)),
                ("name".to_owned(), yrs::Any::from(name)),
                ("role".to_owned(), yrs::Any::from("candidate")),
                ("client".to_owned(), yrs::Any::from(client)),
                ("at".to_owned(), yrs::Any::from(at)),
            ]))
        };
        notes.record_events(vec![
            event("join", "Ann", 11.0, 30.0),
            event("join", "Bo", 12.0, 10.0),
            event("leave", "Ann", 11.0, 40.0),
            event("join", "Ann again", 11.0, 50.0),
        ]);
        let history = history(&meta, &[], Some(&notes));
        assert_eq!(history["format"], FORMAT);
        assert_eq!(history["count"], 0);
        assert_eq!(history["updates"], "");
        let authors: Vec<(u64, &str)> = history["authors"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| (a["client"].as_u64().unwrap(), a["name"].as_str().unwrap()))
            .collect();
        assert_eq!(authors, [(12, "Bo"), (11, "Ann")]);
        let times: Vec<f64> = history["events"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["at"].as_f64().unwrap())
            .collect();
        assert_eq!(times, [10.0, 30.0, 40.0, 50.0]);
    }
}

//! The interview record an interviewer exports: the code, language,
//! participants with their join and leave times, runs, notes, and the focus
//! and paste events, as JSON (`GET /api/sessions/:id/export`) or as a readable
//! HTML page (`?format=html`). Built from what storage holds, sans IO.

use crate::{
    domain::{events::describe, time::format_rfc3339_ms, SessionMeta},
    sync::SessionDoc,
};
use serde_json::{json, Map, Value};

/// The events a notes document recorded, oldest first, as JSON.
pub fn events_in_time_order(notes: Option<&SessionDoc>) -> Vec<Value> {
    let mut events: Vec<Value> = notes
        .map(|notes| {
            notes
                .events()
                .into_iter()
                .filter_map(|event| serde_json::to_value(&event).ok())
                .collect()
        })
        .unwrap_or_default();
    // Events recorded while nobody had the notes open are appended without
    // the rest of the array at hand, so the array's order is not time order.
    events.sort_by(|a, b| {
        a["at"]
            .as_f64()
            .partial_cmp(&b["at"].as_f64())
            .unwrap_or(std::cmp::Ordering::Equal)
    });
    events
}

/// The record of session `meta` from its document and its notes document;
/// `playback_url` is where an interviewer replays it.
pub fn record(
    meta: &SessionMeta,
    doc: &SessionDoc,
    notes: Option<&SessionDoc>,
    playback_url: &str,
) -> Value {
    let events = events_in_time_order(notes);
    let language = doc.language().unwrap_or(meta.language);
    json!({
        "id": meta.id,
        "language": language,
        "createdAt": format_rfc3339_ms(meta.created_at_ms),
        "ended": meta.ended,
        "playbackUrl": playback_url,
        "code": doc.code(),
        "participants": participants(&events),
        "runs": doc.runs(),
        "notes": notes.map(SessionDoc::notes).unwrap_or_default(),
        // Focus and paste events; joins and leaves are in `participants`.
        "events": events
            .iter()
            .filter(|event| !matches!(kind(event), "join" | "leave"))
            .map(with_readable_time)
            .collect::<Vec<_>>(),
    })
}

fn kind(event: &Value) -> &str {
    event["kind"].as_str().unwrap_or_default()
}

/// An event with its time (`at`, ms) also as RFC 3339.
fn with_readable_time(event: &Value) -> Value {
    let mut event = event.clone();
    if let Some(at) = event["at"].as_f64() {
        event["time"] = Value::String(format_rfc3339_ms(at as u64));
    }
    event
}

/// Each stay of a participant: from a join to the matching leave (or `null`
/// while they are still there).
fn participants(events: &[Value]) -> Vec<Value> {
    let mut stays: Vec<Map<String, Value>> = Vec::new();
    for event in events {
        let (name, role) = (&event["name"], &event["role"]);
        let at = event["at"].as_f64().map(|at| format_rfc3339_ms(at as u64));
        match kind(event) {
            "join" => {
                let mut stay = Map::new();
                stay.insert("name".into(), name.clone());
                stay.insert("role".into(), role.clone());
                stay.insert("joinedAt".into(), at.into());
                stay.insert("leftAt".into(), Value::Null);
                stays.push(stay);
            }
            "leave" => {
                if let Some(stay) = stays.iter_mut().find(|stay| {
                    &stay["name"] == name && &stay["role"] == role && stay["leftAt"].is_null()
                }) {
                    stay.insert("leftAt".into(), at.into());
                }
            }
            _ => {}
        }
    }
    stays.into_iter().map(Value::Object).collect()
}

/// The record as a self-contained HTML page (everything escaped; no script).
pub fn html(record: &Value) -> String {
    let text = |value: &Value| escape(value.as_str().unwrap_or_default());
    let id = text(&record["id"]);
    let mut page = format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <title>Interview {short}</title>\
         <style>body{{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem}}\
         pre{{background:#f4f4f4;padding:1rem;overflow:auto;white-space:pre-wrap}}\
         table{{border-collapse:collapse}}td,th{{border:1px solid #ccc;padding:.25rem .5rem;text-align:left}}</style>\
         </head><body>\n<h1>Interview {id}</h1>\n<p>Language: {language}. Created {created}.{ended}</p>\n",
        short = id.get(..8).unwrap_or_default(),
        language = text(&record["language"]),
        created = text(&record["createdAt"]),
        ended = if record["ended"].as_bool() == Some(true) {
            " The interview has ended."
        } else {
            ""
        },
    );
    page.push_str(&format!(
        "<p><a href=\"{playback}\">Watch the playback</a> (interviewers only).</p>\n",
        playback = text(&record["playbackUrl"])
    ));
    page.push_str(&format!(
        "<h2>Code</h2>\n<pre>{}</pre>\n",
        text(&record["code"])
    ));
    page.push_str("<h2>Participants</h2>\n<table><tr><th>Name</th><th>Role</th><th>Joined</th><th>Left</th></tr>\n");
    for stay in record["participants"].as_array().into_iter().flatten() {
        page.push_str(&format!(
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>\n",
            text(&stay["name"]),
            text(&stay["role"]),
            text(&stay["joinedAt"]),
            text(&stay["leftAt"]),
        ));
    }
    page.push_str("</table>\n<h2>Runs</h2>\n");
    for run in record["runs"].as_array().into_iter().flatten() {
        let output: String = run["output"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|chunk| chunk["text"].as_str().unwrap_or_default())
            .collect();
        page.push_str(&format!(
            "<h3>{} ran {} at {}: {} ({} ms)</h3>\n<pre>{}</pre>\n",
            text(&run["by"]),
            text(&run["language"]),
            escape(&format_rfc3339_ms(
                run["startedAt"].as_u64().unwrap_or_default()
            )),
            text(&run["status"]),
            run["durationMs"].as_u64().unwrap_or_default(),
            escape(&output),
        ));
    }
    page.push_str(&format!(
        "<h2>Notes</h2>\n<pre>{}</pre>\n",
        text(&record["notes"])
    ));
    page.push_str("<h2>Focus and paste events</h2>\n<ul>\n");
    for event in record["events"].as_array().into_iter().flatten() {
        page.push_str(&format!(
            "<li>{} {}</li>\n",
            text(&event["time"]),
            escape(&describe(event))
        ));
    }
    page.push_str("</ul>\n</body></html>\n");
    page
}

fn escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '"' => escaped.push_str("&quot;"),
            '\'' => escaped.push_str("&#39;"),
            c => escaped.push(c),
        }
    }
    escaped
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Language, SessionId};

    fn event(kind: &str, name: &str, at: f64) -> yrs::Any {
        yrs::Any::from(std::collections::HashMap::from([
            ("kind".to_owned(), yrs::Any::from(kind)),
            ("name".to_owned(), yrs::Any::from(name)),
            ("role".to_owned(), yrs::Any::from("candidate")),
            ("at".to_owned(), yrs::Any::from(at)),
            ("chars".to_owned(), yrs::Any::from(300.0)),
        ]))
    }

    #[test]
    fn the_record_pairs_joins_with_leaves_and_escapes_its_html() {
        let meta = SessionMeta::new(SessionId::new_random(), Language::Python, 0);
        let doc = SessionDoc::new();
        doc.insert_code(0, "print('<b>hi</b>')");
        let notes = SessionDoc::new();
        notes.record_events(vec![event("join", "Cam", 1_000.0)]);
        notes.record_events(vec![event("blur", "Cam", 2_000.0)]);
        notes.record_events(vec![event("paste", "Cam", 2_500.0)]);
        notes.record_events(vec![event("leave", "Cam", 3_000.0)]);
        notes.record_events(vec![event("join", "Cam", 4_000.0)]);
        let record = record(
            &meta,
            &doc,
            Some(&notes),
            "https://pad.example/s/x/playback?<b>",
        );
        assert_eq!(record["code"], "print('<b>hi</b>')");
        let stays = record["participants"].as_array().unwrap();
        assert_eq!(stays.len(), 2);
        assert_eq!(stays[0]["leftAt"], format_rfc3339_ms(3_000));
        assert!(stays[1]["leftAt"].is_null());
        let events = record["events"].as_array().unwrap();
        assert_eq!(
            events.len(),
            2,
            "joins and leaves are not repeated as events"
        );
        assert_eq!(describe(&events[1]), "Cam pasted 300 characters");
        let page = html(&record);
        assert!(
            page.contains("print(&#39;&lt;b&gt;hi&lt;/b&gt;&#39;)"),
            "{page}"
        );
        assert!(!page.contains("<b>hi"));
        assert!(page.contains("Cam left the tab"));
        assert!(
            page.contains(r#"<a href="https://pad.example/s/x/playback?&lt;b&gt;">"#),
            "{page}"
        );
    }
}

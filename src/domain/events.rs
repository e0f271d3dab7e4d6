//! The events the server records for interviewers (a candidate's tab losing
//! or regaining focus, a large paste, people joining and leaving), as people
//! read them: shared by the page's notices, the exported record and playback.

use serde_json::Value;

/// An event as a sentence ("Ann left the tab").
pub fn describe(event: &Value) -> String {
    let name = event["name"].as_str().unwrap_or("Someone");
    match event["kind"].as_str().unwrap_or_default() {
        "blur" => format!("{name} left the tab"),
        "focus" => format!("{name} came back"),
        "join" => format!("{name} joined"),
        "leave" => format!("{name} left"),
        "paste" => format!(
            "{name} pasted {} characters",
            event["chars"].as_f64().unwrap_or_default() as u64
        ),
        other => format!("{name}: {other}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_read_as_sentences() {
        let paste = serde_json::json!({ "kind": "paste", "name": "Cam", "chars": 320.0 });
        assert_eq!(describe(&paste), "Cam pasted 320 characters");
        let blur = serde_json::json!({ "kind": "blur", "name": "Cam" });
        assert_eq!(describe(&blur), "Cam left the tab");
        let join = serde_json::json!({ "kind": "join", "name": "Cam" });
        assert_eq!(describe(&join), "Cam joined");
        assert_eq!(
            describe(&serde_json::json!({ "kind": "focus" })),
            "Someone came back"
        );
    }
}

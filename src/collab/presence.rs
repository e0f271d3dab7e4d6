//! Presence: what each participant announces through awareness (name, colour,
//! cursor as document-anchored positions, the run they have going) and how we
//! read others' states, which are untrusted input.

use crate::domain::run::LiveRun;
use serde::{Deserialize, Deserializer, Serialize};

/// Number of participant colours (CSS classes `pp-peer-0` .. `pp-peer-11`).
pub const PALETTE_SIZE: u8 = 12;
pub use crate::domain::names::MAX_NAME_CHARS;

/// A cursor as encoded yrs sticky indexes (anchor = where the selection started,
/// head = where the caret is), so it stays attached to the text it was in.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CursorState {
    pub anchor: Vec<u8>,
    pub head: Vec<u8>,
}

/// The awareness state a participant publishes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PresenceState {
    pub user: UserInfo,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cursor: Option<CursorState>,
    /// "interviewer" or "candidate": the server's word on others' states (it
    /// overwrites what a client writes); ours repeats what the server told us.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    /// The run this participant has going, with the end of its output so far.
    /// One that does not parse is taken as none (the rest of the state holds).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "lenient_run"
    )]
    pub run: Option<LiveRun>,
}

fn lenient_run<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<LiveRun>, D::Error> {
    let value = serde_json::Value::deserialize(deserializer)?;
    Ok(serde_json::from_value(value).ok())
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserInfo {
    pub name: String,
    /// Index into the palette.
    pub color: u8,
}

/// Another participant as the UI shows them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Peer {
    pub client_id: u64,
    pub name: String,
    pub color: u8,
    /// Selection in UTF-16 offsets of the current document: (anchor, head).
    pub selection: Option<(u32, u32)>,
    /// Changes when the participant moves their selection (its published
    /// sticky positions) or types (their edits received), not when someone
    /// else's edit shifts their offsets. 0 without a selection.
    pub cursor_key: u32,
    pub is_local: bool,
    /// The server says this participant holds the interviewer key.
    pub interviewer: bool,
    /// Their run in progress, if they have one going.
    pub run: Option<LiveRun>,
}

impl CursorState {
    /// A fingerprint of the published positions (FNV-1a), part of [`Peer::cursor_key`].
    pub fn key(&self) -> u32 {
        let mut hash: u32 = 0x811c_9dc5;
        for byte in self
            .anchor
            .iter()
            .chain(std::iter::once(&0xff_u8))
            .chain(&self.head)
        {
            hash = (hash ^ u32::from(*byte)).wrapping_mul(0x0100_0193);
        }
        hash.max(1)
    }
}

/// A display name made safe to show (the rule is [`crate::domain::names`]).
pub fn clean_name(name: &str) -> String {
    crate::domain::names::clean_display_name(name)
}

/// A colour for a client: spread over the palette by id.
pub fn color_for(client_id: u64) -> u8 {
    // Fibonacci hashing: neighbouring ids land on different colours.
    ((client_id.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 32) % u64::from(PALETTE_SIZE)) as u8
}

/// Parses another participant's state; `None` if it is not a pairpad presence.
pub fn parse_state(json: &str) -> Option<PresenceState> {
    let mut state: PresenceState = serde_json::from_str(json).ok()?;
    state.user.name = clean_name(&state.user.name);
    state.user.color %= PALETTE_SIZE;
    state.run = state.run.map(LiveRun::tamed);
    Some(state)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_cleaned() {
        assert_eq!(clean_name("  Ada\u{7}  "), "Ada");
        assert_eq!(clean_name(""), "Anonymous");
        assert_eq!(clean_name(&"x".repeat(100)).chars().count(), MAX_NAME_CHARS);
    }

    #[test]
    fn hostile_states_are_tamed_or_ignored() {
        assert_eq!(parse_state("not json"), None);
        assert_eq!(parse_state(r#"{"cursor":null}"#), None);
        let state = parse_state(r#"{"user":{"name":"\u0000Eve","color":200}}"#).unwrap();
        assert_eq!(state.user.name, "Eve");
        assert!(state.user.color < PALETTE_SIZE);
        let state = parse_state(r#"{"user":{"name":"Eve","color":1},"run":{"id":7}}"#).unwrap();
        assert_eq!(state.user.name, "Eve", "a bad run hid the participant");
        assert_eq!(state.run, None);
    }

    #[test]
    fn colours_spread_over_the_palette() {
        let colours: std::collections::HashSet<u8> = (1..=24u64).map(color_for).collect();
        assert!(colours.len() >= 8, "{colours:?}");
    }
}

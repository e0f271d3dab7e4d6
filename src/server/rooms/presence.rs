//! A room's presence (y-protocols awareness) as the server keeps it, sans IO:
//! which connection owns which awareness client id, each client's clock and
//! state, and what to relay.
//!
//! The rules that keep one participant from flooding or faking presence:
//! - a connection owns the client ids it announced first, at most
//!   `max_clients` of them (a stock client uses one); entries for further ids,
//!   and for ids another connection owns, are ignored, so nobody can change or
//!   remove someone else's presence (stock clients echo others' states: that is
//!   normal, not an error);
//! - a state is at most `max_state_bytes` of JSON, and display names in it lose
//!   control and hidden formatting characters before anyone sees them;
//! - a state's top-level `role` is the server's word: the role of the
//!   connection that owns it (a client's own claim is overwritten);
//! - every lookup of an entry's id is a hash-map access, so the work is O(1)
//!   per entry (who owns how many ids is counted once per message);
//! - states not renewed for [`STALE_AFTER_MS`] are removed, and a connection's
//!   ids go with it, so memory follows the people actually there.
//!
//! In cluster mode, states of other instances' connections arrive already
//! checked by their instance ([`Presence::apply_peer`]); they belong to no
//! connection here, so nobody here can change or remove them (a clock is no
//! proof of who sends it), and are forgotten once removed or stale. A client
//! that moves here from another instance is announced again once that
//! instance has removed its state (at once when it saw the client go, within
//! [`STALE_AFTER_MS`] when it died).

use super::{ConnId, Role};
use crate::{
    domain::names,
    sync::protocol::{self, AwarenessEntry, AwarenessMessage},
};
use std::collections::HashMap;

/// Presence not renewed for this long is removed (y-protocols' outdatedTimeout;
/// clients renew every 15 s).
pub const STALE_AFTER_MS: u64 = 30_000;

/// The JSON state of a client that has left.
const REMOVED: &str = "null";

/// The owner of states relayed by other instances (no connection here has
/// this id: connection ids count up from 1).
const PEER: ConnId = ConnId::MAX;

#[derive(Clone, Copy, Debug)]
pub struct PresenceLimits {
    /// Client ids one connection may own.
    pub max_clients: usize,
    /// Largest state, in bytes of JSON.
    pub max_state_bytes: usize,
}

/// Why a connection's presence message is refused outright.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PresenceError {
    #[error("awareness state larger than {0} bytes")]
    StateTooLarge(usize),
}

struct Client {
    owner: ConnId,
    clock: u32,
    /// `None` once removed (the owner keeps the id and may announce again).
    state: Option<Box<str>>,
    renewed_ms: u64,
}

#[derive(Default)]
pub struct Presence {
    clients: HashMap<u64, Client>,
    /// Which connection owns which ids, in the order they were announced: a
    /// handful per connection, so a list is much smaller than a map of lists
    /// (thousands of rooms stay loaded), and it is only scanned once per
    /// message or departure.
    owned: Vec<(ConnId, u64)>,
}

impl Presence {
    /// Applies a connection's awareness message: returns the frame to relay to
    /// everyone (the sender included: y-websocket clients take their own echo
    /// as a sign the connection is alive), if anything changed, and, when
    /// `learn_name`, the display name the first state it may set announces.
    pub fn apply(
        &mut self,
        conn: ConnId,
        role: Role,
        message: AwarenessMessage,
        now_ms: u64,
        limits: PresenceLimits,
        learn_name: bool,
    ) -> Result<Applied, PresenceError> {
        // Only entries it may set count: stock clients echo others' states,
        // which the server has stamped with a role (a little longer than sent).
        let mut owned_by_sender = self.owned_by(conn);
        if message.entries.iter().any(|entry| {
            entry.json.len() > limits.max_state_bytes
                && self.admits(conn, owned_by_sender, entry, limits)
        }) {
            return Err(PresenceError::StateTooLarge(limits.max_state_bytes));
        }
        let total = message.entries.len();
        let mut accepted: Vec<AwarenessEntry> = Vec::with_capacity(total);
        let mut rewritten = false;
        let mut announced: Option<Announced> = None;
        for mut entry in message.entries {
            if !self.admits(conn, owned_by_sender, &entry, limits) {
                continue;
            }
            if !self.clients.contains_key(&entry.client) {
                owned_by_sender += 1;
            }
            if !entry.is_removal() {
                let seen = examine(&entry.json, role, learn_name && announced.is_none());
                if let (None, Some(name)) = (&announced, seen.name) {
                    announced = Some(Announced {
                        client: entry.client,
                        name,
                        color: seen.color,
                    });
                }
                if let Some(stamped) = seen.stamped {
                    entry.json = stamped;
                    rewritten = true;
                }
            }
            self.store(conn, &entry, now_ms);
            accepted.push(entry);
        }
        let frame = if accepted.is_empty() {
            None
        } else if accepted.len() == total && !rewritten {
            Some(protocol::encode_awareness_bytes(&message.raw))
        } else {
            Some(protocol::encode_awareness_entries(accepted.iter().map(
                |entry| (entry.client, entry.clock, entry.json.as_str()),
            )))
        };
        Ok(Applied { frame, announced })
    }

    /// Whether `conn` may set this entry: its own id (or a new one within its
    /// allowance), and newer than what is known (y-protocols' clock rule).
    fn admits(
        &self,
        conn: ConnId,
        owned_by_conn: usize,
        entry: &AwarenessEntry,
        limits: PresenceLimits,
    ) -> bool {
        match self.clients.get(&entry.client) {
            Some(client) => {
                client.owner == conn
                    && (entry.clock > client.clock
                        || (entry.clock == client.clock
                            && entry.is_removal()
                            && client.state.is_some()))
            }
            None => !entry.is_removal() && owned_by_conn < limits.max_clients,
        }
    }

    fn store(&mut self, conn: ConnId, entry: &AwarenessEntry, now_ms: u64) {
        let state = (!entry.is_removal()).then(|| entry.json.as_str().into());
        match self.clients.get_mut(&entry.client) {
            Some(client) => {
                client.clock = entry.clock;
                client.state = state;
                client.renewed_ms = now_ms;
            }
            None => {
                self.clients.insert(
                    entry.client,
                    Client {
                        owner: conn,
                        clock: entry.clock,
                        state,
                        renewed_ms: now_ms,
                    },
                );
                if conn != PEER {
                    self.owned.push((conn, entry.client));
                }
            }
        }
    }

    /// Forgets a connection's ids; returns the removal frame to relay for
    /// those that still had a state.
    pub fn remove_connection(&mut self, conn: ConnId) -> Option<Vec<u8>> {
        let mut ids = Vec::new();
        self.owned.retain(|&(owner, id)| {
            let mine = owner == conn;
            if mine {
                ids.push(id);
            }
            !mine
        });
        if ids.is_empty() {
            return None;
        }
        let removed: Vec<(u64, u32)> = ids
            .into_iter()
            .filter_map(|id| self.clients.remove(&id).map(|client| (id, client)))
            .filter(|(_, client)| client.state.is_some())
            .map(|(id, client)| (id, client.clock))
            .collect();
        removal_frame(&removed)
    }

    /// Applies presence another instance relayed (its connections' states,
    /// already checked there): entries newer than what is known, except for
    /// ids a connection here owns. Returns the frame to relay here.
    pub fn apply_peer(&mut self, message: AwarenessMessage, now_ms: u64) -> Option<Vec<u8>> {
        let mut accepted: Vec<AwarenessEntry> = Vec::new();
        for entry in message.entries {
            let newer = match self.clients.get(&entry.client) {
                Some(client) if client.owner != PEER => false,
                Some(client) => {
                    entry.clock > client.clock
                        || (entry.clock == client.clock
                            && entry.is_removal()
                            && client.state.is_some())
                }
                None => !entry.is_removal(),
            };
            if !newer {
                continue;
            }
            if entry.is_removal() {
                // Nothing of a peer's client is kept once it has gone.
                self.clients.remove(&entry.client);
            } else {
                self.store(PEER, &entry, now_ms);
            }
            accepted.push(entry);
        }
        (!accepted.is_empty()).then(|| {
            protocol::encode_awareness_entries(
                accepted
                    .iter()
                    .map(|entry| (entry.client, entry.clock, entry.json.as_str())),
            )
        })
    }

    /// Removes states not renewed for [`STALE_AFTER_MS`]; returns the removal
    /// frame to relay, if any. A peer's stale client is forgotten entirely
    /// (its instance may be gone, and with it the removal).
    pub fn expire_stale(&mut self, now_ms: u64) -> Option<Vec<u8>> {
        let mut removed = Vec::new();
        for (id, client) in &mut self.clients {
            if client.state.is_some() && now_ms.saturating_sub(client.renewed_ms) > STALE_AFTER_MS {
                client.state = None;
                removed.push((*id, client.clock));
            }
        }
        self.clients
            .retain(|_, client| client.owner != PEER || client.state.is_some());
        removal_frame(&removed)
    }

    /// Everyone's current presence as one frame, for a joining connection.
    pub fn current_frame(&self) -> Option<Vec<u8>> {
        let states: Vec<(u64, u32, &str)> = self
            .clients
            .iter()
            .filter_map(|(id, client)| Some((*id, client.clock, client.state.as_deref()?)))
            .collect();
        (!states.is_empty()).then(|| protocol::encode_awareness_entries(states.into_iter()))
    }

    /// The first awareness client id `conn` announced: for a stock client, its
    /// document's client id.
    pub fn client_of(&self, conn: ConnId) -> Option<u64> {
        self.owned
            .iter()
            .find(|(owner, _)| *owner == conn)
            .map(|&(_, id)| id)
    }

    /// How many ids `conn` owns.
    fn owned_by(&self, conn: ConnId) -> usize {
        self.owned
            .iter()
            .filter(|(owner, _)| *owner == conn)
            .count()
    }

    /// Client ids known (with or without a state).
    pub fn len(&self) -> usize {
        self.clients.len()
    }

    pub fn is_empty(&self) -> bool {
        self.clients.is_empty()
    }
}

fn removal_frame(removed: &[(u64, u32)]) -> Option<Vec<u8>> {
    (!removed.is_empty()).then(|| {
        protocol::encode_awareness_entries(removed.iter().map(|(id, clock)| (*id, *clock, REMOVED)))
    })
}

/// What one state says, read at most once.
#[derive(Debug, Default, PartialEq)]
struct Examined {
    /// The state as others see it, if that differs from what the client sent:
    /// its top-level `role` set to the owner's, and its display name cleaned.
    stamped: Option<String>,
    /// The display name it announces (cleaned), when asked for.
    name: Option<String>,
    /// The colour it announces with the name (`user.color`), if a plausible one.
    color: Option<yrs::Any>,
}

/// Stamps a state with its owner's role and, if `want_name`, reads the name it
/// announces, with one parse at most.
///
/// Most states are ASCII without escapes and already carry the right role
/// (pairpad's own client writes what the server told it): unless a name is
/// wanted, those are not parsed at all.
fn examine(json: &str, role: Role, want_name: bool) -> Examined {
    let claim = match role {
        Role::Interviewer => r#""role":"interviewer""#,
        Role::Candidate => r#""role":"candidate""#,
    };
    let plain = json.is_ascii() && !json.contains("\\u");
    let role_right = plain && json.matches(r#""role""#).count() == 1 && json.contains(claim);
    if role_right && !want_name {
        return Examined::default();
    }
    let Ok(serde_json::Value::Object(mut state)) = serde_json::from_str(json) else {
        // Not an object (y-protocols states are): nothing to stamp or read.
        return Examined::default();
    };
    let announced = state
        .get_mut("user")
        .and_then(|user| user.get_mut("name"))
        .filter(|name| name.is_string());
    let mut name = None;
    let mut color = None;
    let mut renamed = false;
    if let Some(announced) = announced {
        let text = announced.as_str().unwrap_or_default();
        if names::has_hidden_characters(text) {
            *announced = serde_json::Value::String(names::clean_display_name(text));
            renamed = true;
        }
        if want_name {
            name = Some(names::clean_display_name(
                announced.as_str().unwrap_or_default(),
            ));
        }
    }
    if want_name {
        color = state
            .get("user")
            .and_then(|user| user.get("color"))
            .and_then(plausible_color);
    }
    let stamped = if role_right && !renamed {
        None
    } else {
        state.insert("role".into(), role.as_str().into());
        serde_json::to_string(&state).ok()
    };
    Examined {
        stamped,
        name,
        color,
    }
}

/// A colour as a client may announce it: a small number (a palette index) or
/// a short CSS colour made of safe characters; anything else is dropped.
fn plausible_color(value: &serde_json::Value) -> Option<yrs::Any> {
    match value {
        serde_json::Value::Number(n) => n
            .as_u64()
            .filter(|n| *n < 1 << 16)
            .map(|n| yrs::Any::from(n as f64)),
        serde_json::Value::String(text)
            if text.len() <= 32
                && text
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "#(),.% ".contains(c)) =>
        {
            Some(yrs::Any::from(text.as_str()))
        }
        _ => None,
    }
}

/// What applying a connection's presence did.
#[derive(Debug, Default, PartialEq)]
pub struct Applied {
    /// The frame to relay to everyone, if anything changed.
    pub frame: Option<Vec<u8>>,
    /// Who the connection said it is (only when asked to learn it).
    pub announced: Option<Announced>,
}

/// A connection's first presence that named it.
#[derive(Debug, PartialEq)]
pub struct Announced {
    /// The awareness client id (the stock client's document client id).
    pub client: u64,
    pub name: String,
    pub color: Option<yrs::Any>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sync::protocol::{decode_frame, ClientMessage};

    /// Applies a message the way a room does for a named connection.
    fn relay(
        presence: &mut Presence,
        conn: ConnId,
        role: Role,
        message: AwarenessMessage,
        now_ms: u64,
        limits: PresenceLimits,
    ) -> Result<Option<Vec<u8>>, PresenceError> {
        presence
            .apply(conn, role, message, now_ms, limits, false)
            .map(|applied| applied.frame)
    }

    /// The state as relayed, if it differs from what was sent.
    fn stamped(json: &str, role: Role) -> Option<String> {
        examine(json, role, false).stamped
    }

    const LIMITS: PresenceLimits = PresenceLimits {
        max_clients: 2,
        max_state_bytes: 64,
    };

    /// The smallest state as relayed: just the role the server stamps.
    const ROLE_ONLY: &str = r#"{"role":"candidate"}"#;

    fn message(entries: &[(u64, u32, &str)]) -> AwarenessMessage {
        let frame = protocol::encode_awareness_entries(entries.iter().copied());
        match decode_frame(&frame).unwrap().pop() {
            Some(ClientMessage::Awareness(message)) => message,
            other => panic!("not awareness: {other:?}"),
        }
    }

    /// The entries of a relayed frame: (client, clock, json).
    fn relayed(frame: Option<Vec<u8>>) -> Vec<(u64, u32, String)> {
        let Some(frame) = frame else {
            return Vec::new();
        };
        let mut entries: Vec<_> = match decode_frame(&frame).unwrap().pop() {
            Some(ClientMessage::Awareness(message)) => message
                .entries
                .into_iter()
                .map(|e| (e.client, e.clock, e.json))
                .collect(),
            other => panic!("not awareness: {other:?}"),
        };
        entries.sort();
        entries
    }

    #[test]
    fn a_connection_sets_and_removes_only_its_own_ids() {
        let mut presence = Presence::default();
        let alice = r#"{"user":{"name":"Alice"},"role":"candidate"}"#;
        let first = relay(
            &mut presence,
            1,
            Role::Candidate,
            message(&[(10, 1, alice)]),
            0,
            LIMITS,
        );
        assert_eq!(relayed(first.unwrap()), vec![(10, 1, alice.to_owned())]);
        // Connection 2 tries to replace and then remove Alice: both ignored.
        let spoof = relay(
            &mut presence,
            2,
            Role::Candidate,
            message(&[(10, 5, r#"{"user":{"name":"Mallory"}}"#)]),
            0,
            LIMITS,
        );
        assert_eq!(spoof, Ok(None));
        assert_eq!(
            relay(
                &mut presence,
                2,
                Role::Candidate,
                message(&[(10, 6, "null")]),
                0,
                LIMITS
            ),
            Ok(None)
        );
        assert_eq!(
            relayed(presence.current_frame()),
            vec![(10, 1, alice.to_owned())]
        );
        // Alice's own older clock is stale; her removal goes through.
        assert_eq!(
            relay(
                &mut presence,
                1,
                Role::Candidate,
                message(&[(10, 0, ROLE_ONLY)]),
                0,
                LIMITS
            ),
            Ok(None)
        );
        let gone = relay(
            &mut presence,
            1,
            Role::Candidate,
            message(&[(10, 1, "null")]),
            0,
            LIMITS,
        );
        assert_eq!(relayed(gone.unwrap()), vec![(10, 1, "null".to_owned())]);
        assert_eq!(presence.current_frame(), None);
    }

    #[test]
    fn a_connection_owns_at_most_its_allowance_of_ids() {
        let mut presence = Presence::default();
        let frame = relay(
            &mut presence,
            1,
            Role::Candidate,
            message(&[(1, 1, ROLE_ONLY), (2, 1, ROLE_ONLY), (3, 1, ROLE_ONLY)]),
            0,
            LIMITS,
        );
        // Only the first two are relayed; the echo of another's state is skipped.
        assert_eq!(relayed(frame.unwrap()).len(), 2);
        assert_eq!(
            relay(
                &mut presence,
                1,
                Role::Candidate,
                message(&[(4, 1, ROLE_ONLY)]),
                0,
                LIMITS
            ),
            Ok(None)
        );
        assert_eq!(presence.len(), 2);
        // Leaving frees them, and relays their removal.
        let gone = relayed(presence.remove_connection(1));
        assert_eq!(gone, vec![(1, 1, "null".into()), (2, 1, "null".into())]);
        assert!(presence.is_empty());
        assert_eq!(presence.remove_connection(1), None);
    }

    #[test]
    fn oversized_states_are_refused_and_nulls_for_unknown_ids_cost_nothing() {
        let mut presence = Presence::default();
        let big = format!(r#"{{"x":"{}"}}"#, "a".repeat(100));
        assert_eq!(
            relay(
                &mut presence,
                1,
                Role::Candidate,
                message(&[(1, 1, &big)]),
                0,
                LIMITS
            ),
            Err(PresenceError::StateTooLarge(64))
        );
        let nulls: Vec<(u64, u32, &str)> = (0..1000).map(|id| (id, 9, "null")).collect();
        assert_eq!(
            relay(
                &mut presence,
                1,
                Role::Candidate,
                message(&nulls),
                0,
                LIMITS
            ),
            Ok(None)
        );
        assert!(
            presence.is_empty(),
            "removals of unknown ids are not stored"
        );
    }

    #[test]
    fn stale_states_expire_and_their_owner_may_announce_again() {
        let mut presence = Presence::default();
        relay(
            &mut presence,
            1,
            Role::Candidate,
            message(&[(7, 3, ROLE_ONLY)]),
            1_000,
            LIMITS,
        )
        .unwrap();
        assert_eq!(presence.expire_stale(1_000 + STALE_AFTER_MS), None);
        let expired = presence.expire_stale(1_001 + STALE_AFTER_MS);
        assert_eq!(relayed(expired), vec![(7, 3, "null".into())]);
        assert_eq!(presence.current_frame(), None);
        let back = relay(
            &mut presence,
            1,
            Role::Candidate,
            message(&[(7, 4, ROLE_ONLY)]),
            40_000,
            LIMITS,
        );
        assert_eq!(relayed(back.unwrap()), vec![(7, 4, ROLE_ONLY.into())]);
    }

    #[test]
    fn display_names_lose_hidden_characters_before_they_are_relayed() {
        let mut presence = Presence::default();
        let sneaky = r#"{"user":{"name":"\u202eevE\u200b","color":3}}"#;
        let frame = relay(
            &mut presence,
            1,
            Role::Candidate,
            message(&[(5, 1, sneaky)]),
            0,
            LIMITS,
        );
        let entries = relayed(frame.unwrap());
        let state: serde_json::Value = serde_json::from_str(&entries[0].2).unwrap();
        assert_eq!(state["user"]["name"], "evE");
        assert_eq!(state["user"]["color"], 3);
        assert!(relayed(presence.current_frame())[0].2.contains("evE"));
    }

    #[test]
    fn the_role_relayed_is_the_owners_whatever_the_client_claims() {
        let read = |json: &str| serde_json::from_str::<serde_json::Value>(json).unwrap();
        let claimed = r#"{"user":{"name":"Eve"},"role":"interviewer"}"#;
        let as_candidate = stamped(claimed, Role::Candidate).expect("rewritten");
        assert_eq!(read(&as_candidate)["role"], "candidate");
        assert_eq!(read(&as_candidate)["user"]["name"], "Eve");
        let silent = stamped(r#"{"user":{"name":"Ann"}}"#, Role::Interviewer).unwrap();
        assert_eq!(read(&silent)["role"], "interviewer");
        // A nested "role" is not the top-level one.
        let nested = stamped(r#"{"user":{"role":"interviewer"}}"#, Role::Candidate).unwrap();
        assert_eq!(read(&nested)["role"], "candidate");
        // Already right: relayed as sent, without a parse.
        assert_eq!(
            stamped(r#"{"role":"candidate","x":1}"#, Role::Candidate),
            None
        );
        assert_eq!(stamped("3", Role::Candidate), None);
    }

    #[test]
    fn a_name_is_read_with_the_same_parse_and_only_from_states_the_sender_may_set() {
        let plain = r#"{"user":{"name":"Ann"},"role":"candidate"}"#;
        assert_eq!(
            examine(plain, Role::Candidate, true),
            Examined {
                stamped: None,
                name: Some("Ann".into()),
                color: None,
            }
        );
        let sneaky = examine(r#"{"user":{"name":"\u202eEve"}}"#, Role::Candidate, true);
        assert_eq!(sneaky.name.as_deref(), Some("Eve"));
        assert!(sneaky.stamped.unwrap().contains(r#""name":"Eve""#));
        assert_eq!(
            examine(r#"{"user":{"name":" "}}"#, Role::Candidate, true).name,
            Some("Anonymous".into())
        );
        assert_eq!(examine(r#"{"user":{}}"#, Role::Candidate, true).name, None);
        // Another's state echoed: not the sender's to set, so not its name.
        let mut presence = Presence::default();
        relay(
            &mut presence,
            1,
            Role::Candidate,
            message(&[(9, 1, plain)]),
            0,
            LIMITS,
        )
        .unwrap();
        let echoed = presence
            .apply(
                2,
                Role::Candidate,
                message(&[(9, 1, plain)]),
                0,
                LIMITS,
                true,
            )
            .unwrap();
        assert_eq!(echoed, Applied::default());
        let own = presence
            .apply(
                2,
                Role::Candidate,
                message(&[(9, 1, plain), (10, 1, plain)]),
                0,
                LIMITS,
                true,
            )
            .unwrap();
        let announced = own.announced.unwrap();
        assert_eq!((announced.client, announced.name.as_str()), (10, "Ann"));
        let colored = examine(
            r##"{"user":{"name":"C","color":"#30bced"}}"##,
            Role::Candidate,
            true,
        );
        assert_eq!(colored.color, Some(yrs::Any::from("#30bced")));
        let hostile = examine(
            r#"{"user":{"name":"C","color":"red;background:url(x)"}}"#,
            Role::Candidate,
            true,
        );
        assert_eq!(hostile.color, None);
    }

    #[test]
    fn a_state_of_exactly_the_limit_is_relayed_and_its_stamped_echo_ignored() {
        let pad = "x".repeat(4096 - r#"{"n":1,"pad":""}"#.len());
        let state = format!(r#"{{"n":1,"pad":"{pad}"}}"#);
        assert_eq!(state.len(), 4096);
        let frame = protocol::encode_awareness_entries([(700, 1, state.as_str())].into_iter());
        let Some(ClientMessage::Awareness(message)) = decode_frame(&frame).unwrap().pop() else {
            panic!()
        };
        let mut presence = Presence::default();
        let limits = PresenceLimits {
            max_clients: 4,
            max_state_bytes: 4096,
        };
        let relayed = relay(&mut presence, 1, Role::Candidate, message, 0, limits)
            .unwrap()
            .unwrap();
        let Some(ClientMessage::Awareness(out)) = decode_frame(&relayed).unwrap().pop() else {
            panic!()
        };
        assert_eq!(out.entries.len(), 1);
        let v: serde_json::Value = serde_json::from_str(&out.entries[0].json).unwrap();
        assert_eq!(v["n"], 1);
        // Another connection echoes the stamped (longer) state: ignored, not punished.
        let echo = protocol::encode_awareness_entries(
            [(700, 1, out.entries[0].json.as_str())].into_iter(),
        );
        let Some(ClientMessage::Awareness(echo)) = decode_frame(&echo).unwrap().pop() else {
            panic!()
        };
        assert_eq!(
            relay(&mut presence, 2, Role::Candidate, echo, 0, limits),
            Ok(None)
        );
    }

    #[test]
    fn a_peers_states_are_relayed_joiners_get_them_and_they_go_when_removed_or_stale() {
        let mut presence = Presence::default();
        let ada = r#"{"role":"candidate","user":{"name":"Ada"}}"#;
        let frame = presence.apply_peer(message(&[(50, 1, ada)]), 0);
        assert_eq!(relayed(frame), vec![(50, 1, ada.to_owned())]);
        assert_eq!(
            relayed(presence.current_frame()),
            vec![(50, 1, ada.to_owned())]
        );
        // The same state again (another instance's echo) changes nothing.
        assert_eq!(presence.apply_peer(message(&[(50, 1, ada)]), 0), None);
        // Removed by its instance: nothing of it is kept.
        let removal = presence.apply_peer(message(&[(50, 1, REMOVED)]), 0);
        assert_eq!(relayed(removal), vec![(50, 1, REMOVED.to_owned())]);
        assert!(presence.is_empty(), "a removed peer client was kept");
        // Not renewed (its instance died): removed for everyone here, forgotten.
        presence.apply_peer(message(&[(51, 1, ada)]), 0);
        let stale = presence.expire_stale(STALE_AFTER_MS + 1);
        assert_eq!(relayed(stale), vec![(51, 1, REMOVED.to_owned())]);
        assert!(presence.is_empty(), "a stale peer client was kept");
    }

    #[test]
    fn nobody_here_can_change_or_remove_a_peers_state_until_its_instance_removes_it() {
        let mut presence = Presence::default();
        presence.apply_peer(message(&[(50, 3, ROLE_ONLY)]), 0);
        // A stock client here echoes the state it was sent; a hostile one
        // claims the id with a newer clock or removes it: all ignored.
        for attempt in [(50, 3, ROLE_ONLY), (50, 9, ROLE_ONLY), (50, 9, REMOVED)] {
            let sent = relay(
                &mut presence,
                1,
                Role::Candidate,
                message(&[attempt]),
                0,
                LIMITS,
            );
            assert_eq!(sent, Ok(None), "{attempt:?} was taken from a peer's client");
        }
        let next = r#"{"role":"candidate","cursor":1}"#;
        assert_eq!(
            relayed(presence.apply_peer(message(&[(50, 4, next)]), 0)),
            vec![(50, 4, next.to_owned())]
        );
        // Its instance removes it (the client moved here): now the client
        // announces itself here like anyone new.
        presence.apply_peer(message(&[(50, 4, REMOVED)]), 0);
        let moved = relay(
            &mut presence,
            2,
            Role::Candidate,
            message(&[(50, 5, ROLE_ONLY)]),
            0,
            LIMITS,
        );
        assert_eq!(relayed(moved.unwrap()), vec![(50, 5, ROLE_ONLY.to_owned())]);
        assert_eq!(presence.client_of(2), Some(50));
        assert_eq!(presence.apply_peer(message(&[(50, 6, REMOVED)]), 0), None);
    }
}

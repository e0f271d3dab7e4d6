//! Session identity (a validated UUID v4), the languages a pad can be in, and the
//! metadata every session carries.

use serde::{Deserialize, Serialize};
use std::{fmt, str::FromStr};
use uuid::Uuid;

/// The id of a session: always a UUID version 4, shown in lower-case hyphenated form.
///
/// Parsing is strict on purpose: a session link is either exactly an id pairpad could
/// have issued or it is malformed (400), never "close enough".
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SessionId(Uuid);

/// Why a string is not a [`SessionId`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SessionIdError {
    #[error("session id is not a UUID")]
    NotAUuid,
    #[error("session id is not a version 4 UUID")]
    WrongVersion,
}

impl SessionId {
    /// A fresh random id.
    pub fn new_random() -> Self {
        Self(Uuid::new_v4())
    }

    /// The id as a 128-bit integer (the storage key).
    pub fn as_u128(&self) -> u128 {
        self.0.as_u128()
    }

    /// Rebuilds an id read back from storage; `None` if it is not a v4 UUID.
    pub fn from_u128(value: u128) -> Option<Self> {
        let uuid = Uuid::from_u128(value);
        (uuid.get_version_num() == 4).then_some(Self(uuid))
    }
}

impl FromStr for SessionId {
    type Err = SessionIdError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        // Only the canonical 36-character hyphenated form: the same id must not have
        // several spellings (braces, urn: prefix, no hyphens) in links and logs.
        if s.len() != 36 {
            return Err(SessionIdError::NotAUuid);
        }
        let uuid = Uuid::try_parse(s).map_err(|_| SessionIdError::NotAUuid)?;
        if uuid.get_version_num() != 4 {
            return Err(SessionIdError::WrongVersion);
        }
        Ok(Self(uuid))
    }
}

impl fmt::Display for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.hyphenated().fmt(f)
    }
}

impl Serialize for SessionId {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for SessionId {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// A language a pad can be edited and run in.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Language {
    #[default]
    JavaScript,
    Python,
}

/// A language name pairpad does not support.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown language {0:?}: expected \"javascript\" or \"python\"")]
pub struct UnknownLanguage(pub String);

impl Language {
    pub const ALL: [Language; 2] = [Language::JavaScript, Language::Python];

    /// The wire and storage name (also Monaco's language id).
    pub fn as_str(&self) -> &'static str {
        match self {
            Language::JavaScript => "javascript",
            Language::Python => "python",
        }
    }

    /// The name people read.
    pub fn label(&self) -> &'static str {
        match self {
            Language::JavaScript => "JavaScript",
            Language::Python => "Python",
        }
    }
}

impl FromStr for Language {
    type Err = UnknownLanguage;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "javascript" => Ok(Language::JavaScript),
            "python" => Ok(Language::Python),
            other => Err(UnknownLanguage(other.to_owned())),
        }
    }
}

impl fmt::Display for Language {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What pairpad remembers about a session besides its document.
/// Times are milliseconds since the Unix epoch.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionMeta {
    pub id: SessionId,
    pub language: Language,
    pub created_at_ms: u64,
    pub last_activity_ms: u64,
    /// Update bytes stored for the session so far (its history), counted when
    /// they are folded into the log. Absent in data written before it existed.
    #[serde(default)]
    pub history_bytes: u64,
    /// SHA-256 (hex) of the interviewer key; the key itself is never stored.
    /// Absent in sessions created before keys existed (nobody is interviewer).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interviewer_key_hash: Option<String>,
    /// The password as an argon2id PHC string, when one is set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_hash: Option<String>,
    /// What the unlock cookie carries; replaced whenever the password is set,
    /// so a new password shuts out every browser unlocked with the old one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unlock_token: Option<String>,
    /// The interview has ended: the session is read-only for everyone.
    #[serde(default)]
    pub ended: bool,
    /// The interviewers' notes document, stored as a session of its own
    /// under this id (which only the server knows).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notes_id: Option<SessionId>,
    /// Set on a notes document: the session it belongs to. Such a "session"
    /// is reachable only through its parent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notes_of: Option<SessionId>,
}

impl SessionMeta {
    /// A session created now.
    pub fn new(id: SessionId, language: Language, now_ms: u64) -> Self {
        Self {
            id,
            language,
            created_at_ms: now_ms,
            last_activity_ms: now_ms,
            history_bytes: 0,
            interviewer_key_hash: None,
            password_hash: None,
            unlock_token: None,
            ended: false,
            notes_id: None,
            notes_of: None,
        }
    }

    /// Whether a password protects the session.
    pub fn password_required(&self) -> bool {
        self.password_hash.is_some()
    }

    /// Records activity at `at_ms`: moves the last activity forward, never back
    /// (updates may reach storage out of clock order).
    pub fn record_activity(&mut self, at_ms: u64) {
        self.last_activity_ms = self.last_activity_ms.max(at_ms);
    }

    /// A session expires once it has seen no activity for `ttl_ms`.
    pub fn is_expired(&self, now_ms: u64, ttl_ms: u64) -> bool {
        now_ms.saturating_sub(self.last_activity_ms) >= ttl_ms
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_ids_round_trip_through_text() {
        let id = SessionId::new_random();
        let text = id.to_string();
        assert_eq!(text.len(), 36);
        assert_eq!(text.parse::<SessionId>(), Ok(id));
        assert_eq!(SessionId::from_u128(id.as_u128()), Some(id));
    }

    #[test]
    fn rejects_malformed_and_non_v4_ids() {
        assert_eq!("".parse::<SessionId>(), Err(SessionIdError::NotAUuid));
        assert_eq!(
            "not-a-uuid".parse::<SessionId>(),
            Err(SessionIdError::NotAUuid)
        );
        assert_eq!(
            "zzzzzzzz-zzzz-4zzz-8zzz-zzzzzzzzzzzz".parse::<SessionId>(),
            Err(SessionIdError::NotAUuid)
        );
        // Version 1 UUID.
        assert_eq!(
            "6ba7b810-9dad-11d1-80b4-00c04fd430c8".parse::<SessionId>(),
            Err(SessionIdError::WrongVersion)
        );
        // Same id without hyphens or in braces: one spelling only.
        let id = SessionId::new_random().to_string();
        assert!(id.replace('-', "").parse::<SessionId>().is_err());
        assert!(format!("{{{id}}}").parse::<SessionId>().is_err());
        assert!(SessionId::from_u128(0).is_none());
    }

    #[test]
    fn upper_case_ids_are_accepted_and_shown_lower_case() {
        let id = SessionId::new_random();
        let upper = id.to_string().to_uppercase();
        assert_eq!(
            upper.parse::<SessionId>().unwrap().to_string(),
            id.to_string()
        );
    }

    #[test]
    fn languages_parse_and_serialise_by_their_wire_names() {
        for language in Language::ALL {
            assert_eq!(language.as_str().parse::<Language>(), Ok(language));
            assert_eq!(
                serde_json::to_string(&language).unwrap(),
                format!("\"{}\"", language.as_str())
            );
        }
        assert!("ruby".parse::<Language>().is_err());
        assert!("JavaScript".parse::<Language>().is_err());
        assert_eq!(Language::default(), Language::JavaScript);
    }

    #[test]
    fn sessions_expire_after_ttl_without_activity() {
        let mut meta = SessionMeta::new(SessionId::new_random(), Language::Python, 1_000);
        assert!(!meta.is_expired(1_000 + 499, 500));
        assert!(meta.is_expired(1_000 + 500, 500));
        meta.last_activity_ms = 2_000;
        assert!(!meta.is_expired(2_400, 500));
        // A clock that went backwards never expires anything.
        assert!(!meta.is_expired(0, 500));
    }
}

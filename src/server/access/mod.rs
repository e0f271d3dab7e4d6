//! Who may do what in a session. The interviewer key (in the interviewer
//! link's fragment, presented as `Authorization: Bearer`, a `key` query
//! parameter or a cookie) makes its holder an interviewer; with a password
//! set, everyone else needs the unlock cookie that `POST .../unlock` hands out
//! for the right password. The rules are here, sans IO; the API and the
//! WebSocket endpoint only gather the credentials and apply the answer.

pub mod guesses;
pub mod secrets;

use crate::domain::{SessionId, SessionMeta};
use http::{header, HeaderMap};

/// A participant's role, as the server decides it (never as a client claims).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    Interviewer,
    Candidate,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Interviewer => "interviewer",
            Role::Candidate => "candidate",
        }
    }
}

/// The credentials a request carries for one session.
#[derive(Debug, Default, Clone)]
pub struct Credentials {
    /// An interviewer key (Bearer, `key` parameter or key cookie).
    pub key: Option<String>,
    /// The unlock cookie's token.
    pub unlock: Option<String>,
}

/// Why access is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Denied {
    /// A password is set and no unlock cookie or key came with the request.
    PasswordRequired,
    /// A key came, and it is not this session's.
    WrongKey,
}

/// The name of the cookie that carries a session's unlock token.
pub fn unlock_cookie_name(id: SessionId) -> String {
    format!("pairpad_unlock_{id}")
}

/// The name of the cookie that may carry a session's interviewer key.
pub fn key_cookie_name(id: SessionId) -> String {
    format!("pairpad_key_{id}")
}

impl Credentials {
    /// Gathers what `headers` (cookies, Authorization) and the query string
    /// carry for session `id`.
    pub fn from_request(id: SessionId, headers: &HeaderMap, query: Option<&str>) -> Self {
        let key_cookie = key_cookie_name(id);
        let unlock_cookie = unlock_cookie_name(id);
        let mut credentials = Credentials::default();
        for (name, value) in cookies(headers) {
            if name == key_cookie {
                credentials.key = Some(value.to_owned());
            } else if name == unlock_cookie {
                credentials.unlock = Some(value.to_owned());
            }
        }
        if let Some(key) = query.and_then(|q| query_param(q, "key")) {
            credentials.key = Some(key.to_owned());
        }
        if let Ok(Some(key)) = bearer(headers) {
            credentials.key = Some(key.to_owned());
        }
        credentials
    }

    /// The role these credentials give in the session `meta` describes.
    pub fn role_in(&self, meta: &SessionMeta) -> Result<Role, Denied> {
        if let Some(key) = &self.key {
            return match &meta.interviewer_key_hash {
                Some(stored) if secrets::key_matches(key, stored) => Ok(Role::Interviewer),
                _ => Err(Denied::WrongKey),
            };
        }
        match (&meta.password_hash, &meta.unlock_token, &self.unlock) {
            (None, ..) => Ok(Role::Candidate),
            (Some(_), Some(token), Some(presented)) if secrets::token_matches(presented, token) => {
                Ok(Role::Candidate)
            }
            (Some(_), ..) => Err(Denied::PasswordRequired),
        }
    }
}

/// Why an `Authorization` header is not a usable bearer key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MalformedAuthorization;

/// The bearer token of an `Authorization` header: `Ok(None)` without one.
pub fn bearer(headers: &HeaderMap) -> Result<Option<&str>, MalformedAuthorization> {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Ok(None);
    };
    let text = value.to_str().map_err(|_| MalformedAuthorization)?;
    let (scheme, token) = text.split_once(' ').ok_or(MalformedAuthorization)?;
    let token = token.trim();
    if !scheme.eq_ignore_ascii_case("bearer") || token.is_empty() {
        return Err(MalformedAuthorization);
    }
    Ok(Some(token))
}

/// Every `name=value` pair of the request's Cookie headers.
fn cookies(headers: &HeaderMap) -> impl Iterator<Item = (&str, &str)> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|line| line.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .map(|(name, value)| (name.trim(), value.trim()))
}

/// One parameter of a query string (keys and tokens are base64url: nothing in
/// them is percent-encoded).
fn query_param<'a>(query: &'a str, name: &str) -> Option<&'a str> {
    query
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Language;
    use http::HeaderValue;

    fn meta_with(key: &str, password: bool) -> SessionMeta {
        let mut meta = SessionMeta::new(SessionId::new_random(), Language::Python, 0);
        meta.interviewer_key_hash = Some(secrets::key_hash(key));
        if password {
            meta.password_hash = Some("$argon2id$stand-in".into());
            meta.unlock_token = Some("token".into());
        }
        meta
    }

    #[test]
    fn the_key_makes_an_interviewer_and_a_wrong_key_is_refused() {
        let key = secrets::new_secret();
        let meta = meta_with(&key, true);
        let with = |key: &str| Credentials {
            key: Some(key.into()),
            unlock: None,
        };
        assert_eq!(with(&key).role_in(&meta), Ok(Role::Interviewer));
        assert_eq!(
            with(&secrets::new_secret()).role_in(&meta),
            Err(Denied::WrongKey)
        );
    }

    #[test]
    fn a_password_needs_the_unlock_token() {
        let meta = meta_with(&secrets::new_secret(), true);
        let unlock = |token: Option<&str>| Credentials {
            key: None,
            unlock: token.map(Into::into),
        };
        assert_eq!(unlock(None).role_in(&meta), Err(Denied::PasswordRequired));
        assert_eq!(
            unlock(Some("forged")).role_in(&meta),
            Err(Denied::PasswordRequired)
        );
        assert_eq!(unlock(Some("token")).role_in(&meta), Ok(Role::Candidate));
        let open = meta_with(&secrets::new_secret(), false);
        assert_eq!(unlock(None).role_in(&open), Ok(Role::Candidate));
    }

    #[test]
    fn credentials_come_from_cookies_the_query_and_bearer() {
        let id = SessionId::new_random();
        let mut headers = HeaderMap::new();
        headers.insert(
            header::COOKIE,
            HeaderValue::from_str(&format!(
                "a=b; pairpad_unlock_{id}=tok; pairpad_key_{id}=k1"
            ))
            .unwrap(),
        );
        let found = Credentials::from_request(id, &headers, None);
        assert_eq!(found.unlock.as_deref(), Some("tok"));
        assert_eq!(found.key.as_deref(), Some("k1"));
        assert_eq!(
            Credentials::from_request(id, &headers, Some("x=1&key=k2"))
                .key
                .as_deref(),
            Some("k2")
        );
        // Another session's cookies are not this one's.
        assert!(
            Credentials::from_request(SessionId::new_random(), &headers, None)
                .unlock
                .is_none()
        );
        headers.insert(header::AUTHORIZATION, HeaderValue::from_static("Bearer k3"));
        assert_eq!(
            Credentials::from_request(id, &headers, None).key.as_deref(),
            Some("k3")
        );
        headers.insert(header::AUTHORIZATION, HeaderValue::from_static("Basic abc"));
        assert_eq!(bearer(&headers), Err(MalformedAuthorization));
    }
}

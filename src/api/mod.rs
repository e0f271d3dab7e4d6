//! Thin Leptos server functions: what the pages ask the server for. They call the
//! same session service as the REST API, so both follow one set of rules.

use crate::domain::Language;
use leptos::prelude::*;
use serde::{Deserialize, Serialize};

/// A session as its page shows it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SessionView {
    pub id: String,
    pub language: Language,
    /// The full link to share, e.g. `http://host/s/<id>`.
    pub share_url: String,
    /// Connections open now.
    pub users: usize,
    /// The code as stored, shown before the live editor has loaded.
    pub code: String,
    /// Longest a run may take, in milliseconds.
    pub run_time_limit_ms: u64,
    /// Most output a run keeps.
    pub max_output_bytes: usize,
    pub max_output_lines: usize,
    /// Largest document (bytes of its whole encoding); the page refuses a
    /// change that would pass it before sending it.
    pub max_document_bytes: usize,
    /// A password protects the session.
    pub password_required: bool,
    /// This browser has not unlocked it (nor shown the key): `code` is empty
    /// and the page asks for the password, unless it holds the interviewer key.
    pub locked: bool,
    /// The interview has ended: read-only.
    pub ended: bool,
}

/// The answer to "show me session X".
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum SessionLookup {
    Found(SessionView),
    /// Unknown or expired.
    NotFound,
    /// Not a session id at all.
    Malformed,
}

/// Looks a session up for its page.
#[server(prefix = "/_sfn", endpoint = "load_session")]
pub async fn load_session(id: String) -> Result<SessionLookup, ServerFnError> {
    use crate::{domain::SessionId, server::state::AppState};
    let state = expect_context::<AppState>();
    let Ok(id) = id.parse::<SessionId>() else {
        return Ok(SessionLookup::Malformed);
    };
    let headers: http::HeaderMap = leptos_axum::extract().await?;
    let axum::Extension(client): axum::Extension<crate::server::client_addr::ClientAddr> =
        leptos_axum::extract().await?;
    let host = headers
        .get(http::header::HOST)
        .and_then(|h| h.to_str().ok());
    match state.sessions.lookup(id).await {
        Ok(Some(info)) => {
            let credentials = crate::server::access::Credentials::from_request(id, &headers, None);
            let locked = credentials.role_in(&info.meta).is_err();
            Ok(SessionLookup::Found(SessionView {
                id: id.to_string(),
                language: info.meta.language,
                share_url: state.share_url(host, client.https, id),
                users: info.users,
                code: if locked {
                    String::new()
                } else {
                    state.sessions.stored_code(id).await.unwrap_or_default()
                },
                password_required: info.meta.password_required(),
                locked,
                ended: info.meta.ended,
                run_time_limit_ms: state.limits.run_time_limit.as_millis() as u64,
                max_output_bytes: state.limits.max_output_bytes,
                max_output_lines: state.limits.max_output_lines,
                max_document_bytes: state.limits.max_document_bytes,
            }))
        }
        Ok(None) => Ok(SessionLookup::NotFound),
        Err(e) => {
            tracing::error!(error = %e, "session lookup failed");
            Err(ServerFnError::new(
                "the session could not be loaded; try again",
            ))
        }
    }
}

/// Creates a session and sends the browser to its page, as its interviewer:
/// the key rides in the link's fragment, which the page keeps (never sent to
/// a server, so never in a request line, a log or a Referer).
#[server(prefix = "/_sfn", endpoint = "create_session")]
pub async fn create_session(
    language: String,
    password: Option<String>,
) -> Result<(), ServerFnError> {
    use crate::server::{
        client_addr::ClientAddr, error::retry_after_secs, same_origin::is_cross_site,
        sessions::CreateError, state::AppState,
    };
    let state = expect_context::<AppState>();
    let language: Language = language.parse().map_err(ServerFnError::new)?;
    let headers: http::HeaderMap = leptos_axum::extract().await?;
    if is_cross_site(&headers, state.config.public_url.as_deref()) {
        let response = expect_context::<leptos_axum::ResponseOptions>();
        response.set_status(http::StatusCode::FORBIDDEN);
        return Err(ServerFnError::new(
            "cross-site requests may not create sessions",
        ));
    }
    let axum::Extension(client): axum::Extension<ClientAddr> = leptos_axum::extract().await?;
    match state
        .sessions
        .create(client.key(), language, password)
        .await
    {
        Ok(created) => {
            let id = created.meta.id;
            leptos_axum::redirect(&format!("/s/{id}#key={}", created.interviewer_key));
            Ok(())
        }
        Err(CreateError::Password(e)) => {
            let response = expect_context::<leptos_axum::ResponseOptions>();
            response.set_status(http::StatusCode::BAD_REQUEST);
            Err(ServerFnError::new(e.to_string()))
        }
        Err(CreateError::RateLimited(wait)) => {
            let secs = retry_after_secs(wait);
            let response = expect_context::<leptos_axum::ResponseOptions>();
            response.set_status(http::StatusCode::TOO_MANY_REQUESTS);
            response.insert_header(http::header::RETRY_AFTER, http::HeaderValue::from(secs));
            Err(ServerFnError::new(format!(
                "Too many sessions created from your address. Try again in {secs} s."
            )))
        }
        Err(CreateError::Storage(e)) => {
            tracing::error!(error = %e, "creating a session failed");
            Err(ServerFnError::new(
                "the session could not be created; try again",
            ))
        }
    }
}

/// Marks the page being rendered on the server as "404 Not Found" (no-op in the
/// browser, where the status is long sent).
pub fn mark_not_found() {
    #[cfg(feature = "ssr")]
    if let Some(response) = use_context::<leptos_axum::ResponseOptions>() {
        response.set_status(http::StatusCode::NOT_FOUND);
    }
}

/// Sets the page's Content-Security-Policy with this response's script nonce
/// (server only; called by the shell).
pub fn set_page_csp() {
    #[cfg(feature = "ssr")]
    if let (Some(response), Some(nonce)) = (
        use_context::<leptos_axum::ResponseOptions>(),
        leptos::nonce::use_nonce(),
    ) {
        let policy = crate::server::headers::page_csp(&nonce);
        if let Ok(value) = http::HeaderValue::from_str(&policy) {
            response.insert_header(http::header::CONTENT_SECURITY_POLICY, value);
        }
    }
}

//! The REST API: create a session, look one up, health and Prometheus metrics
//! (as the seed names them), and the interviewer's requests on a session
//! (password, unlock, end and reopen, delete, events, export). Requests that
//! need the interviewer key carry it as `Authorization: Bearer <key>`.

use super::{
    access::{self, secrets, Credentials, Denied},
    client_addr::ClientAddr,
    error::ApiError,
    metrics::Gauges,
    same_origin::is_cross_site,
    sessions::{CreateError, UnlockError},
    state::AppState,
};
use crate::domain::{time::format_rfc3339_ms, Language, SessionId, SessionMeta};
use axum::{
    body::Body,
    extract::{Path, RawQuery, State},
    http::{header, HeaderMap, StatusCode},
    response::{IntoResponse, Response},
    Extension, Json,
};
use serde::{de::DeserializeOwned, Deserialize};
use serde_json::{json, Value};

/// Largest request body the API reads.
pub const MAX_API_BODY_BYTES: usize = 16 * 1024;

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct CreateRequest {
    language: Option<String>,
    /// Empty or absent: no password.
    password: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PasswordRequest {
    password: String,
}

/// Reads a JSON body of at most [`MAX_API_BODY_BYTES`]; `None` when it is empty.
async fn read_json<T: DeserializeOwned>(body: Body) -> Result<Option<T>, ApiError> {
    let bytes = axum::body::to_bytes(body, MAX_API_BODY_BYTES)
        .await
        .map_err(|_| ApiError::PayloadTooLarge(MAX_API_BODY_BYTES))?;
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    serde_json::from_slice(&bytes)
        .map(Some)
        .map_err(|e| ApiError::BadRequest(format!("malformed JSON body: {e}")))
}

fn parse_id(raw_id: &str) -> Result<SessionId, ApiError> {
    raw_id
        .parse()
        .map_err(|e| ApiError::BadRequest(format!("{e}: {raw_id:?}")))
}

fn not_found(id: SessionId) -> ApiError {
    ApiError::NotFound(format!("session {id} not found or expired"))
}

/// The session `raw_id` names, for a request that must carry its interviewer
/// key: 401 without a usable `Authorization: Bearer`, 404 for no such
/// session, 403 for another key.
async fn as_interviewer(
    state: &AppState,
    raw_id: &str,
    headers: &HeaderMap,
) -> Result<SessionMeta, ApiError> {
    let id = parse_id(raw_id)?;
    let key = match access::bearer(headers) {
        Ok(Some(key)) => key,
        Ok(None) => {
            return Err(ApiError::Unauthorized(
                "this request needs the interviewer key: Authorization: Bearer <key>".into(),
            ))
        }
        Err(_) => {
            return Err(ApiError::Unauthorized(
                "malformed Authorization header: expected Bearer <interviewer key>".into(),
            ))
        }
    };
    let info = state
        .sessions
        .lookup(id)
        .await?
        .ok_or_else(|| not_found(id))?;
    match &info.meta.interviewer_key_hash {
        Some(stored) if secrets::key_matches(key, stored) => Ok(info.meta),
        _ => Err(ApiError::Forbidden("wrong interviewer key".into())),
    }
}

fn host(headers: &HeaderMap) -> Option<&str> {
    headers.get(header::HOST).and_then(|h| h.to_str().ok())
}

/// `POST /api/sessions/create` with an optional `{"language": ...}` body.
pub async fn create_session(
    State(state): State<AppState>,
    Extension(client): Extension<ClientAddr>,
    headers: HeaderMap,
    body: Body,
) -> Result<impl IntoResponse, ApiError> {
    if is_cross_site(&headers, state.config.public_url.as_deref()) {
        tracing::warn!(ip = %client.ip, "cross-site session creation refused");
        return Err(ApiError::Forbidden(
            "cross-site requests may not create sessions".into(),
        ));
    }
    let request: CreateRequest = read_json(body).await?.unwrap_or_default();
    let language = match request.language {
        None => Language::default(),
        Some(name) => name
            .parse::<Language>()
            .map_err(|e| ApiError::BadRequest(e.to_string()))?,
    };
    let created = state
        .sessions
        .create(client.key(), language, request.password)
        .await
        .inspect_err(|e| {
            if matches!(e, CreateError::RateLimited(_)) {
                tracing::warn!(ip = %client.ip, "session creation rate limited");
            }
        })?;
    let meta = &created.meta;
    let url = state.share_url(host(&headers), client.https, meta.id);
    let body = json!({
        "id": meta.id,
        "interviewerUrl": format!("{url}#key={}", created.interviewer_key),
        "url": url,
        "interviewerKey": created.interviewer_key,
        "language": meta.language,
        "passwordRequired": meta.password_required(),
        "createdAt": format_rfc3339_ms(meta.created_at_ms),
    });
    Ok((StatusCode::CREATED, Json(body)))
}

/// `GET /api/sessions/:id`. With a password set, a caller without the key
/// or the unlock cookie learns only that the session exists.
pub async fn get_session(
    State(state): State<AppState>,
    Path(raw_id): Path<String>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    let id = parse_id(&raw_id)?;
    let info = state
        .sessions
        .lookup(id)
        .await?
        .ok_or_else(|| not_found(id))?;
    match Credentials::from_request(id, &headers, None).role_in(&info.meta) {
        Ok(_) => {}
        Err(Denied::PasswordRequired) => {
            return Ok(Json(json!({ "id": id, "passwordRequired": true })));
        }
        Err(Denied::WrongKey) => return Err(ApiError::Forbidden("wrong interviewer key".into())),
    }
    Ok(Json(json!({
        "id": info.meta.id,
        "language": info.meta.language,
        "users": info.users,
        "createdAt": format_rfc3339_ms(info.meta.created_at_ms),
        "lastActivity": format_rfc3339_ms(info.meta.last_activity_ms),
        "passwordRequired": info.meta.password_required(),
        "ended": info.meta.ended,
    })))
}

/// `PUT /api/sessions/:id/password` (key) with `{"password": "..."}`: sets or
/// changes the password; browsers unlocked before must unlock again.
pub async fn set_password(
    State(state): State<AppState>,
    Path(raw_id): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<StatusCode, ApiError> {
    let meta = as_interviewer(&state, &raw_id, &headers).await?;
    let request: PasswordRequest = read_json(body)
        .await?
        .ok_or_else(|| ApiError::BadRequest("expected {\"password\": \"...\"}".into()))?;
    secrets::validate_password(&request.password)?;
    let changed = state
        .sessions
        .set_password(meta.id, Some(request.password))
        .await?;
    if !changed {
        return Err(not_found(meta.id));
    }
    Ok(StatusCode::NO_CONTENT)
}

/// `DELETE /api/sessions/:id/password` (key): anyone with the link may enter.
pub async fn clear_password(
    State(state): State<AppState>,
    Path(raw_id): Path<String>,
    headers: HeaderMap,
) -> Result<StatusCode, ApiError> {
    let meta = as_interviewer(&state, &raw_id, &headers).await?;
    state.sessions.set_password(meta.id, None).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /api/sessions/:id/unlock` with `{"password": "..."}`: 204 and the
/// unlock cookie (HttpOnly, SameSite=Strict) for the right password.
pub async fn unlock(
    State(state): State<AppState>,
    Path(raw_id): Path<String>,
    Extension(client): Extension<ClientAddr>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    if is_cross_site(&headers, state.config.public_url.as_deref()) {
        return Err(ApiError::Forbidden(
            "cross-site requests may not unlock sessions".into(),
        ));
    }
    let id = parse_id(&raw_id)?;
    let request: PasswordRequest = read_json(body)
        .await?
        .ok_or_else(|| ApiError::BadRequest("expected {\"password\": \"...\"}".into()))?;
    let info = state
        .sessions
        .lookup(id)
        .await?
        .ok_or_else(|| not_found(id))?;
    let token = state
        .sessions
        .unlock(&info.meta, client.key(), request.password)
        .await
        .map_err(|e| match e {
            UnlockError::RateLimited(wait) => ApiError::TooManyRequests(wait),
            UnlockError::WrongPassword => ApiError::Forbidden("wrong password".into()),
            UnlockError::Storage(e) => e.into(),
        })?;
    let mut response = StatusCode::NO_CONTENT.into_response();
    if let Some(token) = token {
        let secure = if client.https { "; Secure" } else { "" };
        let cookie = format!(
            "{}={token}; Path=/; HttpOnly; SameSite=Strict{secure}",
            access::unlock_cookie_name(id)
        );
        if let Ok(value) = header::HeaderValue::from_str(&cookie) {
            response.headers_mut().insert(header::SET_COOKIE, value);
        }
    }
    Ok(response)
}

/// `POST /api/sessions/:id/end` (key): the session becomes read-only.
pub async fn end_session(
    State(state): State<AppState>,
    Path(raw_id): Path<String>,
    headers: HeaderMap,
) -> Result<StatusCode, ApiError> {
    mark_ended(&state, &raw_id, &headers, true).await
}

/// `POST /api/sessions/:id/reopen` (key): editing works again.
pub async fn reopen_session(
    State(state): State<AppState>,
    Path(raw_id): Path<String>,
    headers: HeaderMap,
) -> Result<StatusCode, ApiError> {
    mark_ended(&state, &raw_id, &headers, false).await
}

/// Ends (`true`) or reopens the session, for its interviewer only.
async fn mark_ended(
    state: &AppState,
    raw_id: &str,
    headers: &HeaderMap,
    ended: bool,
) -> Result<StatusCode, ApiError> {
    let meta = as_interviewer(state, raw_id, headers).await?;
    state.sessions.set_ended(meta.id, ended).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `DELETE /api/sessions/:id` (key): the session and its notes are gone now.
pub async fn delete_session(
    State(state): State<AppState>,
    Path(raw_id): Path<String>,
    headers: HeaderMap,
) -> Result<StatusCode, ApiError> {
    let meta = as_interviewer(&state, &raw_id, &headers).await?;
    state.sessions.delete(&meta).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EventRequest {
    kind: String,
    name: Option<String>,
    chars: Option<u64>,
}

/// `POST /api/sessions/:id/events` with `{"kind": "blur"|"focus"|"paste",
/// "name": ..., "chars": ...}`: a participant's page reports its tab losing or
/// regaining focus, or a large paste; interviewers see it (candidates never).
pub async fn record_event(
    State(state): State<AppState>,
    Path(raw_id): Path<String>,
    Extension(client): Extension<ClientAddr>,
    headers: HeaderMap,
    body: Body,
) -> Result<StatusCode, ApiError> {
    if is_cross_site(&headers, state.config.public_url.as_deref()) {
        return Err(ApiError::Forbidden(
            "cross-site requests may not report events".into(),
        ));
    }
    let id = parse_id(&raw_id)?;
    let request: EventRequest = read_json(body)
        .await?
        .ok_or_else(|| ApiError::BadRequest("expected {\"kind\": ...}".into()))?;
    if !matches!(request.kind.as_str(), "blur" | "focus" | "paste") {
        return Err(ApiError::BadRequest(format!(
            "unknown event kind {:?}: expected \"blur\", \"focus\" or \"paste\"",
            request.kind
        )));
    }
    let info = state
        .sessions
        .lookup(id)
        .await?
        .ok_or_else(|| not_found(id))?;
    let role = Credentials::from_request(id, &headers, None)
        .role_in(&info.meta)
        .map_err(|denied| match denied {
            Denied::PasswordRequired => {
                ApiError::Unauthorized("this session is protected by a password".into())
            }
            Denied::WrongKey => ApiError::Forbidden("wrong interviewer key".into()),
        })?;
    state
        .sessions
        .admit_event(client.key(), id)
        .map_err(ApiError::TooManyRequests)?;
    let name = crate::domain::names::clean_display_name(request.name.as_deref().unwrap_or(""));
    let name: String = name.chars().take(64).collect();
    let mut fields = std::collections::HashMap::from([
        ("kind".to_owned(), yrs::Any::from(request.kind)),
        (
            "name".to_owned(),
            yrs::Any::from(if name.is_empty() {
                "Someone".to_owned()
            } else {
                name
            }),
        ),
        ("role".to_owned(), yrs::Any::from(role.as_str())),
        (
            "at".to_owned(),
            yrs::Any::from(crate::domain::time::now_ms() as f64),
        ),
    ]);
    if let Some(chars) = request.chars {
        fields.insert(
            "chars".to_owned(),
            yrs::Any::from(chars.min(1 << 40) as f64),
        );
    }
    state
        .sessions
        .record_event(&info.meta, yrs::Any::from(fields))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// What the export is rendered as.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ExportFormat {
    Json,
    Html,
}

/// The export's query: `format=json` (the default) or `format=html`; other
/// parameters are ignored. Parsed here, not by axum's `Query`, so a malformed
/// query gets our JSON 400 like every other bad request.
fn export_format(query: Option<&str>) -> Result<ExportFormat, ApiError> {
    let mut formats = query
        .unwrap_or_default()
        .split('&')
        .filter_map(|pair| pair.strip_prefix("format="));
    let format = match (formats.next(), formats.next()) {
        (None, _) => return Ok(ExportFormat::Json),
        (Some(format), None) => format,
        (Some(_), Some(_)) => {
            return Err(ApiError::BadRequest(
                "format given more than once: expected one of json or html".into(),
            ))
        }
    };
    match format {
        "json" => Ok(ExportFormat::Json),
        "html" => Ok(ExportFormat::Html),
        other => Err(ApiError::BadRequest(format!(
            "unknown export format {:?}: expected json or html",
            other.chars().take(40).collect::<String>()
        ))),
    }
}

/// `GET /api/sessions/:id/export[?format=html]` (key): the interview record.
pub async fn export(
    State(state): State<AppState>,
    Path(raw_id): Path<String>,
    RawQuery(query): RawQuery,
    Extension(client): Extension<ClientAddr>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let meta = as_interviewer(&state, &raw_id, &headers).await?;
    let format = export_format(query.as_deref())?;
    let doc = state.sessions.stored_document(meta.id).await?;
    let notes = match meta.notes_id {
        Some(notes) => Some(state.sessions.stored_document(notes).await?),
        None => None,
    };
    let playback_url = format!(
        "{}/playback",
        state.share_url(host(&headers), client.https, meta.id)
    );
    let record = super::export::record(&meta, &doc, notes.as_ref(), &playback_url);
    Ok(match format {
        ExportFormat::Json => Json(record).into_response(),
        ExportFormat::Html => (
            [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
            super::export::html(&record),
        )
            .into_response(),
    })
}

/// `GET /api/sessions/:id/history` (key): every stored update with its time
/// and author, the authors and the events, for playback (format in
/// `server::history` and the README). Reading it changes nothing.
pub async fn history(
    State(state): State<AppState>,
    Path(raw_id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let meta = as_interviewer(&state, &raw_id, &headers).await?;
    let log = state.sessions.update_log(meta.id).await?;
    let notes = match meta.notes_id {
        Some(notes) => Some(state.sessions.stored_document(notes).await?),
        None => None,
    };
    let history = super::history::history(&meta, &log, notes.as_ref());
    Ok(Json(history).into_response())
}

/// `GET /api/health`: 200 `"ok"`, or 503 `"degraded"` with the reason while
/// storage is in trouble (the journal cannot sync, snapshots keep failing).
pub async fn health(State(state): State<AppState>) -> Result<Response, ApiError> {
    let sessions = state.sessions.stored_count().await;
    let degraded = state.health.degraded_reason(&state.writer).or_else(|| {
        sessions
            .as_ref()
            .err()
            .map(|e| format!("storage cannot be read: {e}"))
    });
    let mut body = json!({
        "status": if degraded.is_some() { "degraded" } else { "ok" },
        "version": env!("CARGO_PKG_VERSION"),
        "uptimeSeconds": state.started.elapsed().as_secs(),
        "sessions": sessions.ok(),
        "activeSessions": state.hub.loaded_count(),
        "connections": state.hub.connection_count(),
    });
    let status = match degraded {
        Some(reason) => {
            body["reason"] = Value::String(reason);
            StatusCode::SERVICE_UNAVAILABLE
        }
        None => StatusCode::OK,
    };
    Ok((status, Json(body)).into_response())
}

/// `GET /metrics` in the Prometheus text format.
pub async fn metrics(State(state): State<AppState>) -> Result<impl IntoResponse, ApiError> {
    let gauges = Gauges {
        active_sessions: state.hub.loaded_count(),
        connections: state.hub.connection_count(),
        stored_sessions: state.sessions.stored_count().await?,
        storage_errors: state.health.errors(),
    };
    Ok((
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        state.metrics.render(&gauges),
    ))
}

/// Any other path under `/api/`.
pub async fn unknown_endpoint() -> ApiError {
    ApiError::NotFound("no such API endpoint".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_export_format_comes_from_the_query_and_bad_ones_are_refused() {
        assert_eq!(export_format(None).unwrap(), ExportFormat::Json);
        assert_eq!(export_format(Some("")).unwrap(), ExportFormat::Json);
        assert_eq!(
            export_format(Some("x=1&format=html")).unwrap(),
            ExportFormat::Html
        );
        assert_eq!(
            export_format(Some("format=json")).unwrap(),
            ExportFormat::Json
        );
        for bad in [
            "format=pdf",
            "format=%ZZ",
            "format=html&format=json",
            "format=",
        ] {
            assert!(
                matches!(export_format(Some(bad)), Err(ApiError::BadRequest(_))),
                "{bad}"
            );
        }
    }
}

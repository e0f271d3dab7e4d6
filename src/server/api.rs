//! The REST API, as the seed names it: create a session, look one up, health,
//! and Prometheus metrics.

use super::{
    client_addr::ClientAddr, error::ApiError, metrics::Gauges, same_origin::is_cross_site,
    sessions::CreateError, state::AppState,
};
use crate::domain::{time::format_rfc3339_ms, Language, SessionId};
use axum::{
    body::Body,
    extract::{Path, State},
    http::{header, HeaderMap, StatusCode},
    response::{IntoResponse, Response},
    Extension, Json,
};
use serde::Deserialize;
use serde_json::{json, Value};

/// Largest request body the API reads.
pub const MAX_API_BODY_BYTES: usize = 16 * 1024;

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct CreateRequest {
    language: Option<String>,
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
    let bytes = axum::body::to_bytes(body, MAX_API_BODY_BYTES)
        .await
        .map_err(|_| ApiError::PayloadTooLarge(MAX_API_BODY_BYTES))?;
    let request: CreateRequest = if bytes.iter().all(u8::is_ascii_whitespace) {
        CreateRequest::default()
    } else {
        serde_json::from_slice(&bytes)
            .map_err(|e| ApiError::BadRequest(format!("malformed JSON body: {e}")))?
    };
    let language = match request.language {
        None => Language::default(),
        Some(name) => name
            .parse::<Language>()
            .map_err(|e| ApiError::BadRequest(e.to_string()))?,
    };
    let meta = state
        .sessions
        .create(client.key(), language)
        .await
        .map_err(|e| match e {
            CreateError::RateLimited(wait) => {
                tracing::warn!(ip = %client.ip, "session creation rate limited");
                ApiError::TooManyRequests(wait)
            }
            CreateError::Storage(e) => e.into(),
        })?;
    let body = json!({
        "id": meta.id,
        "url": state.share_url(host(&headers), client.https, meta.id),
        "language": meta.language,
        "createdAt": format_rfc3339_ms(meta.created_at_ms),
    });
    Ok((StatusCode::CREATED, Json(body)))
}

/// `GET /api/sessions/:id`.
pub async fn get_session(
    State(state): State<AppState>,
    Path(raw_id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let id: SessionId = raw_id
        .parse()
        .map_err(|e| ApiError::BadRequest(format!("{e}: {raw_id:?}")))?;
    let info = state
        .sessions
        .lookup(id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("session {id} not found or expired")))?;
    Ok(Json(json!({
        "id": info.meta.id,
        "language": info.meta.language,
        "users": info.users,
        "createdAt": format_rfc3339_ms(info.meta.created_at_ms),
        "lastActivity": format_rfc3339_ms(info.meta.last_activity_ms),
    })))
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

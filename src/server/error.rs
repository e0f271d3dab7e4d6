//! The REST API's error type: every failure becomes an HTTP status with a JSON
//! `{"error": "..."}` body (and `Retry-After` for rate limits).

use axum::{
    http::{header, HeaderValue, StatusCode},
    response::{IntoResponse, Response},
    Json,
};
use serde_json::json;
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    BadRequest(String),
    /// The request lacks usable credentials (answered with `WWW-Authenticate`).
    #[error("{0}")]
    Unauthorized(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    #[error("request body is larger than {0} bytes")]
    PayloadTooLarge(usize),
    #[error("too many requests: try again in {} s", retry_after_secs(*.0))]
    TooManyRequests(Duration),
    /// Storage cannot be reached or written (a Redis down, a full disk):
    /// worth retrying, unlike a bug. The detail is logged, not answered.
    #[error("storage is unavailable: try again shortly")]
    Unavailable(String),
    #[error("internal error")]
    Internal(String),
}

/// Whole seconds to wait, at least one (Retry-After has one-second resolution).
pub fn retry_after_secs(wait: Duration) -> u64 {
    wait.as_secs() + u64::from(wait.subsec_nanos() > 0)
}

impl ApiError {
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::TooManyRequests(_) => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl From<crate::storage::StorageError> for ApiError {
    fn from(e: crate::storage::StorageError) -> Self {
        ApiError::Unavailable(e.to_string())
    }
}

impl From<crate::server::access::secrets::PasswordError> for ApiError {
    fn from(e: crate::server::access::secrets::PasswordError) -> Self {
        use crate::server::access::secrets::PasswordError;
        match e {
            PasswordError::Hashing => ApiError::Internal(e.to_string()),
            invalid => ApiError::BadRequest(invalid.to_string()),
        }
    }
}

impl From<crate::server::sessions::CreateError> for ApiError {
    fn from(e: crate::server::sessions::CreateError) -> Self {
        use crate::server::sessions::CreateError;
        match e {
            CreateError::RateLimited(wait) => ApiError::TooManyRequests(wait),
            CreateError::Password(e) => e.into(),
            CreateError::Storage(e) => e.into(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        match &self {
            // The detail goes to the log, never to the client.
            ApiError::Internal(detail) => tracing::error!(%detail, "internal error"),
            ApiError::Unavailable(detail) => tracing::error!(%detail, "storage unavailable"),
            _ => {}
        }
        let status = self.status();
        let mut response = (status, Json(json!({ "error": self.to_string() }))).into_response();
        if let ApiError::Unauthorized(_) = self {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        if let ApiError::TooManyRequests(wait) = self {
            response.headers_mut().insert(
                header::RETRY_AFTER,
                HeaderValue::from(retry_after_secs(wait)),
            );
        }
        response
    }
}

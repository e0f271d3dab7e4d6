//! The background task that deletes sessions past their TTL.

use super::sessions::SessionService;
use std::{sync::Arc, time::Duration};
use tokio::sync::watch;

/// Every `interval`, deletes expired sessions; returns when `stop` turns true.
pub async fn run(sessions: Arc<SessionService>, interval: Duration, stop: watch::Receiver<bool>) {
    let interval = interval.max(Duration::from_millis(100));
    super::periodic::every(interval, stop, || async {
        match sessions.expire_inactive().await {
            Ok(0) => {}
            Ok(n) => tracing::info!(deleted = n, "expired sessions removed"),
            Err(e) => tracing::error!(error = %e, "session expiry failed"),
        }
    })
    .await;
}

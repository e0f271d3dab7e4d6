//! The session service: creating, looking up and expiring sessions. Both the REST
//! API and the home page's server function go through it, so the rules (rate
//! limit, default language, expiry) live in one place.

use super::{blocking::blocking, rooms::hub::Hub};
use super::{metrics::Metrics, rate_limit::IpRateLimiter};
use crate::{
    domain::{time::now_ms, Language, Limits, SessionId, SessionMeta},
    storage::{Storage, StorageError},
};
use std::{
    net::IpAddr,
    sync::{atomic::Ordering, Arc},
    time::{Duration, Instant},
};

/// Why a session could not be created.
#[derive(Debug, thiserror::Error)]
pub enum CreateError {
    #[error("too many sessions created from this address")]
    RateLimited(Duration),
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// A session as the API shows it.
#[derive(Clone, Debug)]
pub struct SessionInfo {
    pub meta: SessionMeta,
    /// Connections open to the session now.
    pub users: usize,
}

pub struct SessionService {
    storage: Arc<dyn Storage>,
    hub: Arc<Hub>,
    limits: Limits,
    create_limiter: IpRateLimiter,
    metrics: Arc<Metrics>,
}

impl SessionService {
    pub fn new(
        storage: Arc<dyn Storage>,
        hub: Arc<Hub>,
        limits: Limits,
        metrics: Arc<Metrics>,
    ) -> Self {
        Self {
            create_limiter: IpRateLimiter::per_minute(limits.sessions_per_ip_per_minute),
            storage,
            hub,
            limits,
            metrics,
        }
    }

    /// Creates a session for a client at `ip`, subject to the per-IP rate limit.
    pub async fn create(&self, ip: IpAddr, language: Language) -> Result<SessionMeta, CreateError> {
        self.create_limiter
            .check(ip, Instant::now())
            .map_err(CreateError::RateLimited)?;
        let meta = SessionMeta::new(SessionId::new_random(), language, now_ms());
        let storage = self.storage.clone();
        let stored = meta.clone();
        blocking(move || storage.insert_session(&stored)).await?;
        self.metrics
            .sessions_created
            .fetch_add(1, Ordering::Relaxed);
        tracing::info!(session = %meta.id, language = %meta.language, %ip, "session created");
        Ok(meta)
    }

    /// The session if it exists and has not expired.
    pub async fn lookup(&self, id: SessionId) -> Result<Option<SessionInfo>, StorageError> {
        let storage = self.storage.clone();
        let Some(mut meta) = blocking(move || storage.session(id)).await? else {
            return Ok(None);
        };
        let users = self.hub.connection_count_of(id);
        // A session someone is connected to is alive whatever its stored activity says.
        if users == 0 && meta.is_expired(now_ms(), self.ttl_ms()) {
            return Ok(None);
        }
        if let Some(language) = self.hub.language_of(id) {
            meta.language = language;
        }
        if let Some(last) = self.hub.last_activity_of(id) {
            meta.record_activity(last);
        }
        Ok(Some(SessionInfo { meta, users }))
    }

    /// Deletes every session inactive for longer than the TTL that nobody is
    /// connected to. Returns how many were deleted.
    pub async fn expire_inactive(&self) -> Result<usize, StorageError> {
        let cutoff = now_ms().saturating_sub(self.ttl_ms());
        let storage = self.storage.clone();
        let candidates = blocking(move || storage.sessions_inactive_since(cutoff)).await?;
        let mut deleted = 0;
        for id in candidates {
            if self.hub.is_loaded(id) {
                continue;
            }
            let storage = self.storage.clone();
            if blocking(move || storage.delete_session(id)).await? {
                deleted += 1;
                self.metrics
                    .sessions_expired
                    .fetch_add(1, Ordering::Relaxed);
                tracing::info!(session = %id, "session expired and deleted");
            }
        }
        Ok(deleted)
    }

    /// The session's code as stored (everything any client has seen is stored).
    pub async fn stored_code(&self, id: SessionId) -> Result<String, StorageError> {
        let storage = self.storage.clone();
        let stored = blocking(move || storage.load_document(id)).await?;
        let (doc, _skipped) = crate::sync::SessionDoc::from_updates(stored.updates_in_order());
        Ok(doc.code())
    }

    /// Sessions in storage.
    pub async fn stored_count(&self) -> Result<u64, StorageError> {
        let storage = self.storage.clone();
        blocking(move || storage.session_count()).await
    }

    fn ttl_ms(&self) -> u64 {
        self.limits.session_ttl.as_millis() as u64
    }
}

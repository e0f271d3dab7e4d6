//! The state every handler shares: configuration, storage, the hub of live
//! sessions, the session service and metrics.

use super::{
    client_addr::TrustedProxies,
    config::Config,
    health::StorageHealth,
    metrics::Metrics,
    persist::{SyncPolicy, UpdateWriter},
    rooms::hub::Hub,
    rooms::{Peers, RoomContext},
    sessions::SessionService,
};
use crate::{domain::Limits, storage::Storage};
use axum::extract::FromRef;
use leptos::config::LeptosOptions;
use std::{sync::Arc, time::Instant};

#[derive(Clone, FromRef)]
pub struct AppState {
    pub leptos_options: LeptosOptions,
    pub config: Arc<Config>,
    pub limits: Limits,
    pub storage: Arc<dyn Storage>,
    pub hub: Arc<Hub>,
    pub sessions: Arc<SessionService>,
    pub metrics: Arc<Metrics>,
    pub health: Arc<StorageHealth>,
    pub writer: Arc<UpdateWriter>,
    pub trusted_proxies: TrustedProxies,
    pub started: Instant,
}

impl AppState {
    /// `peers`: the other instances on the same storage (cluster mode).
    pub fn new(
        config: Config,
        storage: Arc<dyn Storage>,
        peers: Option<Arc<dyn Peers>>,
        leptos_options: LeptosOptions,
    ) -> Self {
        let limits = config.limits();
        let metrics = Arc::new(Metrics::default());
        let writer = Arc::new(UpdateWriter::start(
            storage.clone(),
            SyncPolicy::from_interval_ms(config.fsync_interval_ms),
        ));
        let health = Arc::new(StorageHealth::default());
        let hub = Arc::new(Hub::new(RoomContext {
            storage: storage.clone(),
            writer: writer.clone(),
            limits: Arc::new(limits.clone()),
            metrics: metrics.clone(),
            health: health.clone(),
            peers,
        }));
        let sessions = Arc::new(SessionService::new(
            storage.clone(),
            hub.clone(),
            limits.clone(),
            metrics.clone(),
        ));
        Self {
            leptos_options,
            trusted_proxies: TrustedProxies::new(&config.trusted_proxies),
            config: Arc::new(config),
            limits,
            storage,
            hub,
            sessions,
            metrics,
            health,
            writer,
            started: Instant::now(),
        }
    }

    /// The origin share links start with: the configured public URL, else the
    /// Host the request came to, over https if a trusted proxy says the
    /// client used it.
    pub fn public_origin(&self, host: Option<&str>, https: bool) -> String {
        if let Some(url) = &self.config.public_url {
            return url.trim_end_matches('/').to_owned();
        }
        let scheme = if https { "https" } else { "http" };
        format!("{scheme}://{}", host.unwrap_or("127.0.0.1"))
    }

    /// The full shareable link of a session.
    pub fn share_url(
        &self,
        host: Option<&str>,
        https: bool,
        id: crate::domain::SessionId,
    ) -> String {
        format!("{}/s/{id}", self.public_origin(host, https))
    }
}

//! The state every handler shares: configuration, storage, the hub of live
//! sessions, the session service and metrics.

use super::{
    config::Config,
    hub::Hub,
    metrics::Metrics,
    persist::{SyncPolicy, UpdateWriter},
    room::RoomContext,
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
    pub started: Instant,
}

impl AppState {
    pub fn new(config: Config, storage: Arc<dyn Storage>, leptos_options: LeptosOptions) -> Self {
        let limits = config.limits();
        let metrics = Arc::new(Metrics::default());
        let writer = Arc::new(UpdateWriter::start(
            storage.clone(),
            SyncPolicy::from_interval_ms(config.fsync_interval_ms),
        ));
        let hub = Arc::new(Hub::new(RoomContext {
            storage: storage.clone(),
            writer,
            limits: Arc::new(limits.clone()),
            metrics: metrics.clone(),
        }));
        let sessions = Arc::new(SessionService::new(
            storage.clone(),
            hub.clone(),
            limits.clone(),
            metrics.clone(),
        ));
        Self {
            leptos_options,
            config: Arc::new(config),
            limits,
            storage,
            hub,
            sessions,
            metrics,
            started: Instant::now(),
        }
    }

    /// The origin share links start with: the configured public URL, else the
    /// Host the request came to.
    pub fn public_origin(&self, host: Option<&str>) -> String {
        if let Some(url) = &self.config.public_url {
            return url.trim_end_matches('/').to_owned();
        }
        format!("http://{}", host.unwrap_or("127.0.0.1"))
    }

    /// The full shareable link of a session.
    pub fn share_url(&self, host: Option<&str>, id: crate::domain::SessionId) -> String {
        format!("{}/s/{id}", self.public_origin(host))
    }
}

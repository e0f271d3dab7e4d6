//! The HTTP server (ssr only): configuration, routes, middleware, the REST API,
//! the WebSocket sync endpoint with its rooms, and graceful shutdown.

pub mod access;
pub mod api;
pub mod blocking;
pub mod budget;
pub mod client_addr;
pub mod cluster;
pub mod config;
pub mod error;
pub mod expiry;
pub mod export;
pub mod headers;
pub mod health;
pub mod history;
pub mod listener;
pub mod memory;
pub mod metrics;
pub mod periodic;
pub mod persist;
pub mod queue;
pub mod rate_limit;
pub mod rooms;
pub mod same_origin;
pub mod sessions;
pub mod shared_socket;
pub mod state;
pub mod static_files;
pub mod ws;

use crate::{
    app::{shell, App},
    storage::{
        redis::{RedisOptions, RedisStorage},
        EmbeddedStorage,
    },
};
use axum::{
    routing::{any, get, post, put},
    Router,
};
use config::Config;
use leptos::prelude::provide_context;
use leptos_axum::{generate_route_list, LeptosRoutes};
use state::AppState;
use static_files::{serve_bundle, serve_dir};
use std::{future::Future, net::SocketAddr, sync::Arc, time::Duration};
use tokio::net::TcpListener;
use tower_http::compression::{CompressionLayer, CompressionLevel};

/// Builds the whole application router on `state`.
pub fn router(state: AppState) -> Router {
    let routes = generate_route_list(App);
    let options = state.leptos_options.clone();
    let site_root = &state.config.site_root;
    let page_context = {
        let state = state.clone();
        move || {
            provide_context(state.clone());
            leptos::nonce::provide_nonce();
        }
    };
    let http = Router::new()
        .route("/api/sessions/create", post(api::create_session))
        .route(
            "/api/sessions/{id}",
            get(api::get_session).delete(api::delete_session),
        )
        .route(
            "/api/sessions/{id}/password",
            put(api::set_password).delete(api::clear_password),
        )
        .route("/api/sessions/{id}/unlock", post(api::unlock))
        .route("/api/sessions/{id}/end", post(api::end_session))
        .route("/api/sessions/{id}/reopen", post(api::reopen_session))
        .route("/api/sessions/{id}/events", post(api::record_event))
        .route("/api/sessions/{id}/export", get(api::export))
        .route("/api/sessions/{id}/history", get(api::history))
        .route("/api/health", get(api::health))
        .route("/api/{*rest}", any(api::unknown_endpoint))
        .route("/metrics", get(api::metrics))
        .leptos_routes_with_context(&state, routes, page_context.clone(), move || {
            shell(options.clone())
        })
        // Static files: served directly so conditional requests get 304 (the
        // Leptos fallback handler forwards only Accept-Encoding).
        .nest_service("/pkg", serve_bundle(site_root, "pkg"))
        .nest_service("/vendor", serve_dir(site_root, "vendor"))
        .nest_service("/runner", serve_dir(site_root, "runner"))
        .nest_service("/js", serve_dir(site_root, "js"))
        // Other files at the site root (the favicon), else the 404 page.
        .fallback(leptos_axum::file_and_error_handler_with_context::<
            AppState,
            _,
        >(page_context, shell))
        // Level 4 keeps on-the-fly brotli cheap; the static directories' files
        // are precompressed at build time (static_files).
        .layer(CompressionLayer::new().quality(CompressionLevel::Precise(4)));
    // The WebSocket route stays outside the compression layer.
    Router::new()
        .route("/ws/{id}", get(ws::upgrade))
        .route("/ws/{id}/notes", get(ws::upgrade_notes))
        .merge(http)
        .layer(axum::middleware::from_fn(headers::apply))
        .layer(axum::middleware::from_fn_with_state(
            state.trusted_proxies.clone(),
            client_addr::resolve,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.metrics.clone(),
            metrics::count_responses,
        ))
        .with_state(state)
}

/// The Leptos options for a site built into `site_root`.
pub fn leptos_options(config: &Config) -> leptos::config::LeptosOptions {
    leptos::config::LeptosOptions::builder()
        .output_name("pairpad")
        .site_root(config.site_root.to_string_lossy().into_owned())
        .site_pkg_dir("pkg")
        .site_addr(config.addr)
        .build()
}

/// Pending connections the kernel queues for us: a reconnect storm after a
/// restart (thousands of clients at once) must not overflow it.
const LISTEN_BACKLOG: u32 = 4096;

/// Binds the listening socket with a deep accept queue.
pub fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(LISTEN_BACKLOG)
}

/// Opens storage, serves on `listener` until `shutdown` resolves, then closes
/// every WebSocket with 1001 after flushing storage.
pub async fn serve(
    config: Config,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let Some(url) = config.redis_url.clone() else {
        let storage = EmbeddedStorage::open(&config.data_dir).map_err(std::io::Error::other)?;
        return serve_with(config, Arc::new(storage), listener, shutdown).await;
    };
    let options = RedisOptions {
        require_aof: !config.redis_accept_no_aof,
        // A backstop behind pairpad's own expiry: a session's keys go twice
        // its lifetime after its last edit or load, even with no pairpad
        // running (an open room with no edits is not expired by pairpad).
        key_ttl: Some(Duration::from_secs(
            config.session_ttl_secs.max(1).saturating_mul(2),
        )),
        compact_after: Duration::from_secs(config.redis_compact_after_secs),
    };
    let (storage, cluster) = tokio::task::spawn_blocking(move || {
        let storage = RedisStorage::open(&url, options)?;
        let cluster = cluster::Cluster::start(&storage)?;
        Ok::<_, crate::storage::StorageError>((storage, cluster))
    })
    .await
    .map_err(std::io::Error::other)?
    .map_err(std::io::Error::other)?;
    tracing::info!("sessions are stored in Redis, shared with any other instance on it");
    serve_on(config, Arc::new(storage), Some(cluster), listener, shutdown).await
}

/// [`serve`] on storage opened by the caller (tests use it to inject faults).
pub async fn serve_with(
    config: Config,
    storage: Arc<dyn crate::storage::Storage>,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    serve_on(config, storage, None, listener, shutdown).await
}

/// Serves on `storage`, shared with the other instances of `cluster` in
/// cluster mode.
async fn serve_on(
    config: Config,
    storage: Arc<dyn crate::storage::Storage>,
    cluster: Option<Arc<cluster::Cluster>>,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let options = leptos_options(&config);
    let expiry_interval = Duration::from_secs(config.expiry_interval_secs.max(1));
    let peers = cluster
        .clone()
        .map(|cluster| cluster as Arc<dyn rooms::Peers>);
    let state = AppState::new(config, storage, peers, options);
    if let Some(cluster) = &cluster {
        cluster.attach(&state.hub);
    }
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let expiry = tokio::spawn(expiry::run(
        state.sessions.clone(),
        expiry_interval,
        stop_rx,
    ));
    // The address actually bound (--addr, PAIRPAD_ADDR, or port 0 resolved),
    // as a link: `./x run` leaves announcing it to the binary.
    let addr = listener.local_addr()?;
    tracing::info!(%addr, "pairpad listening on http://{addr}");
    let limits = listener::HttpLimits {
        header_timeout: Duration::from_secs(state.config.header_timeout_secs.max(1)),
        max_header_bytes: crate::domain::limits::MAX_HEADER_BYTES,
    };
    listener::serve(listener, router(state.clone()), limits, shutdown).await;
    tracing::info!("shutting down: closing sessions and flushing storage");
    let _ = stop_tx.send(true);
    let _ = expiry.await;
    state.hub.shutdown().await;
    // Let sockets finish their close handshake so clients read 1001, not a reset.
    state.hub.wait_for_tasks(Duration::from_secs(2)).await;
    tracing::info!("shutdown complete");
    Ok(())
}

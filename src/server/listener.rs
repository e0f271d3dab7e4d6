//! Accepting connections and speaking HTTP/1.1 on them (WebSocket upgrades
//! included), with the bounds a public server needs that `axum::serve` does not
//! expose: a deadline for each request's head (a slowloris client that trickles
//! headers, or sends none, is dropped) and a cap on its size (431 past it).
//! Graceful shutdown stops accepting, then lets requests in flight finish.

use axum::{extract::ConnectInfo, Router};
use hyper::server::conn::http1;
use hyper_util::{
    rt::{TokioIo, TokioTimer},
    service::TowerToHyperService,
};
use std::{future::Future, pin::pin, time::Duration};
use tokio::{
    net::TcpListener,
    sync::{mpsc, watch},
};
use tower::ServiceExt;

/// How long requests in flight may take to finish after a shutdown signal.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

/// Bounds on each HTTP connection.
#[derive(Clone, Copy, Debug)]
pub struct HttpLimits {
    /// How long a client may take to send a request's head.
    pub header_timeout: Duration,
    /// Largest request head, in bytes (at least 8 KiB).
    pub max_header_bytes: usize,
}

/// Serves `app` on `listener` until `shutdown` resolves, then waits (at most
/// [`DRAIN_TIMEOUT`]) for requests in flight. Upgraded WebSockets are not
/// waited for: their rooms close them.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: HttpLimits,
    shutdown: impl Future<Output = ()>,
) {
    // Connections watch `stopping`; each holds a clone of `alive`, so once
    // every clone is gone `all_done` ends.
    let (stopping, stop_signal) = watch::channel(false);
    let (alive, mut all_done) = mpsc::channel::<()>(1);
    let mut shutdown = pin!(shutdown);
    let mut http = http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .max_buf_size(limits.max_header_bytes.max(8192));
    loop {
        let (tcp, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of file descriptors, usually: wait rather than spin.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        // No Nagle: relay frames are small and must leave at once (with Nagle
        // and delayed ACKs, back-to-back frames wait up to 40 ms).
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::warn!(error = %e, "cannot disable Nagle on a connection");
        }
        let service = app
            .clone()
            .map_request(move |mut request: axum::extract::Request<_>| {
                request.extensions_mut().insert(ConnectInfo(peer));
                request
            });
        let connection = http
            .serve_connection(TokioIo::new(tcp), TowerToHyperService::new(service))
            .with_upgrades();
        let stop_signal = stop_signal.clone();
        let alive = alive.clone();
        tokio::spawn(async move {
            let _alive = alive;
            let mut connection = pin!(connection);
            // Errors here are the client's (reset, timeout, bad request).
            tokio::select! {
                _ = connection.as_mut() => {}
                () = stopped(stop_signal) => {
                    connection.as_mut().graceful_shutdown();
                    let _ = connection.await;
                }
            }
        });
    }
    drop(listener);
    let _ = stopping.send(true);
    drop(alive);
    if tokio::time::timeout(DRAIN_TIMEOUT, all_done.recv())
        .await
        .is_err()
    {
        tracing::warn!("requests still running after the drain timeout; closing them");
    }
}

/// Resolves once `signal` says stop (the guard `wait_for` returns is not
/// `Send`, so it must not live in the connection task's state).
async fn stopped(mut signal: watch::Receiver<bool>) {
    let _ = signal.wait_for(|stopping| *stopping).await;
}

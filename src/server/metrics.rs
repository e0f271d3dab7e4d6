//! Process-wide counters and gauges, rendered in the Prometheus text format at
//! `/metrics`, and the middleware that counts HTTP responses by status.

use axum::{extract::State, http::Request, middleware::Next, response::Response};
use std::{
    collections::BTreeMap,
    fmt::Write,
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc, Mutex,
    },
};

#[derive(Default)]
pub struct Metrics {
    pub sessions_created: AtomicU64,
    pub sessions_expired: AtomicU64,
    pub ws_connections_opened: AtomicU64,
    pub ws_connections_rejected: AtomicU64,
    pub ws_messages_received: AtomicU64,
    pub ws_updates_applied: AtomicU64,
    pub ws_protocol_errors: AtomicU64,
    responses_by_status: Mutex<BTreeMap<u16, u64>>,
}

/// Values read from elsewhere at scrape time (gauges the metrics do not own).
pub struct Gauges {
    pub active_sessions: usize,
    pub connections: usize,
    pub stored_sessions: u64,
    /// Failed storage operations (a counter kept by `health`).
    pub storage_errors: u64,
}

impl Metrics {
    pub fn count_response(&self, status: u16) {
        let mut map = self
            .responses_by_status
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        *map.entry(status).or_default() += 1;
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self, gauges: &Gauges) -> String {
        let mut out = String::new();
        let mut counter = |name: &str, help: &str, value: u64| {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} counter\n{name} {value}"
            );
        };
        let load = |c: &AtomicU64| c.load(Ordering::Relaxed);
        counter(
            "pairpad_sessions_created_total",
            "Sessions created.",
            load(&self.sessions_created),
        );
        counter(
            "pairpad_sessions_expired_total",
            "Sessions deleted after their TTL.",
            load(&self.sessions_expired),
        );
        counter(
            "pairpad_ws_connections_opened_total",
            "WebSocket connections accepted.",
            load(&self.ws_connections_opened),
        );
        counter(
            "pairpad_ws_connections_rejected_total",
            "WebSocket connections refused or closed for breaking a limit.",
            load(&self.ws_connections_rejected),
        );
        counter(
            "pairpad_ws_messages_received_total",
            "Protocol messages received.",
            load(&self.ws_messages_received),
        );
        counter(
            "pairpad_ws_updates_applied_total",
            "Document updates accepted: stored, relayed and applied.",
            load(&self.ws_updates_applied),
        );
        counter(
            "pairpad_ws_protocol_errors_total",
            "Connections closed for malformed frames.",
            load(&self.ws_protocol_errors),
        );
        counter(
            "pairpad_storage_errors_total",
            "Storage operations that failed (appends, syncs, snapshots).",
            gauges.storage_errors,
        );
        let mut gauge = |name: &str, help: &str, value: u64| {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {value}"
            );
        };
        gauge(
            "pairpad_active_sessions",
            "Sessions loaded in memory.",
            gauges.active_sessions as u64,
        );
        gauge(
            "pairpad_connections",
            "Open WebSocket connections.",
            gauges.connections as u64,
        );
        gauge(
            "pairpad_stored_sessions",
            "Sessions in storage.",
            gauges.stored_sessions,
        );
        let _ = writeln!(
            out,
            "# HELP pairpad_http_responses_total HTTP responses by status.\n# TYPE pairpad_http_responses_total counter"
        );
        let map = self
            .responses_by_status
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        for (status, count) in map.iter() {
            let _ = writeln!(
                out,
                "pairpad_http_responses_total{{status=\"{status}\"}} {count}"
            );
        }
        out
    }
}

/// Counts every response by its status code.
pub async fn count_responses(
    State(metrics): State<Arc<Metrics>>,
    request: Request<axum::body::Body>,
    next: Next,
) -> Response {
    let response = next.run(request).await;
    metrics.count_response(response.status().as_u16());
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_gauges_and_statuses() {
        let metrics = Metrics::default();
        metrics.sessions_created.fetch_add(3, Ordering::Relaxed);
        metrics.count_response(201);
        metrics.count_response(201);
        metrics.count_response(404);
        let text = metrics.render(&Gauges {
            active_sessions: 2,
            connections: 5,
            stored_sessions: 7,
            storage_errors: 2,
        });
        assert!(text.contains("pairpad_storage_errors_total 2\n"));
        assert!(text.contains("pairpad_sessions_created_total 3\n"));
        assert!(text.contains("pairpad_connections 5\n"));
        assert!(text.contains("pairpad_http_responses_total{status=\"201\"} 2\n"));
        assert!(text.contains("pairpad_http_responses_total{status=\"404\"} 1\n"));
        assert!(text.contains("# TYPE pairpad_active_sessions gauge"));
    }
}

//! Command-line flags and their `PAIRPAD_*` environment equivalents.

use crate::domain::{limits, Limits};
use clap::Parser;
use std::{net::SocketAddr, path::PathBuf, time::Duration};

/// pairpad: a self-hostable, real-time collaborative coding-interview pad.
#[derive(Parser, Clone, Debug)]
#[command(name = "pairpad", version, about)]
pub struct Config {
    /// Address to listen on.
    #[arg(long, env = "PAIRPAD_ADDR", default_value = "127.0.0.1:3000")]
    pub addr: SocketAddr,

    /// Directory of the embedded database (created if missing).
    #[arg(long, env = "PAIRPAD_DATA_DIR", default_value = "./data")]
    pub data_dir: PathBuf,

    /// Directory of the built site (cargo-leptos output: pkg/, vendor/, ...).
    #[arg(long, env = "PAIRPAD_SITE_ROOT", default_value = "target/site")]
    pub site_root: PathBuf,

    /// Origin used in share links (e.g. https://pad.example.com); by default the
    /// request's Host header over http.
    #[arg(long, env = "PAIRPAD_PUBLIC_URL")]
    pub public_url: Option<String>,

    /// Log as JSON lines instead of human-readable text.
    #[arg(long, env = "PAIRPAD_LOG_JSON")]
    pub log_json: bool,

    /// Log filter (tracing env-filter syntax).
    #[arg(long, env = "PAIRPAD_LOG", default_value = "info")]
    pub log: String,

    /// Delete a session after this many seconds without activity.
    #[arg(long, env = "PAIRPAD_SESSION_TTL_SECS", default_value_t = limits::DEFAULT_SESSION_TTL.as_secs())]
    pub session_ttl_secs: u64,

    /// How often the expiry task looks for inactive sessions, in seconds.
    #[arg(long, env = "PAIRPAD_EXPIRY_INTERVAL_SECS", default_value_t = 60)]
    pub expiry_interval_secs: u64,

    /// Sessions one IP may create per minute (0 = no limit).
    #[arg(long, env = "PAIRPAD_CREATE_LIMIT", default_value_t = limits::DEFAULT_SESSIONS_PER_IP_PER_MINUTE)]
    pub create_limit: u32,

    /// Simultaneous WebSocket connections from one IP (0 = no limit).
    #[arg(long, env = "PAIRPAD_IP_CONNECTION_LIMIT", default_value_t = limits::DEFAULT_MAX_CONNECTIONS_PER_IP)]
    pub ip_connection_limit: usize,

    /// Simultaneous connections to one session.
    #[arg(long, env = "PAIRPAD_SESSION_CONNECTION_LIMIT", default_value_t = limits::DEFAULT_MAX_CONNECTIONS_PER_SESSION)]
    pub session_connection_limit: usize,

    /// Largest WebSocket frame, in bytes.
    #[arg(long, env = "PAIRPAD_MAX_FRAME_BYTES", default_value_t = limits::DEFAULT_MAX_FRAME_BYTES)]
    pub max_frame_bytes: usize,

    /// Largest document text, in bytes.
    #[arg(long, env = "PAIRPAD_MAX_DOCUMENT_BYTES", default_value_t = limits::DEFAULT_MAX_DOCUMENT_BYTES)]
    pub max_document_bytes: usize,

    /// Sustained WebSocket messages per second per connection.
    #[arg(long, env = "PAIRPAD_MESSAGES_PER_SECOND", default_value_t = limits::DEFAULT_MESSAGES_PER_SECOND)]
    pub messages_per_second: u32,

    /// WebSocket messages a connection may send in a burst.
    #[arg(long, env = "PAIRPAD_MESSAGE_BURST", default_value_t = limits::DEFAULT_MESSAGE_BURST)]
    pub message_burst: u32,

    /// Seconds an empty session stays in memory before it is unloaded.
    #[arg(long, env = "PAIRPAD_ROOM_UNLOAD_GRACE_SECS", default_value_t = limits::DEFAULT_ROOM_UNLOAD_GRACE.as_secs())]
    pub room_unload_grace_secs: u64,

    /// Longest a run may take in the browser, in seconds.
    #[arg(long, env = "PAIRPAD_RUN_TIME_LIMIT_SECS", default_value_t = limits::DEFAULT_RUN_TIME_LIMIT.as_secs())]
    pub run_time_limit_secs: u64,

    /// Most output a run keeps, in bytes.
    #[arg(long, env = "PAIRPAD_MAX_OUTPUT_BYTES", default_value_t = limits::DEFAULT_MAX_OUTPUT_BYTES)]
    pub max_output_bytes: usize,

    /// Most output a run keeps, in lines.
    #[arg(long, env = "PAIRPAD_MAX_OUTPUT_LINES", default_value_t = limits::DEFAULT_MAX_OUTPUT_LINES)]
    pub max_output_lines: usize,

    /// How often, at most, edits are forced to disk (fdatasync), in ms. Every
    /// edit is written to the journal before it is relayed, so a crash or kill
    /// of pairpad loses nothing; this bounds what a power cut or kernel crash
    /// can lose. 0 forces every edit to disk before relaying it (more CPU and
    /// latency per edit).
    #[arg(long, env = "PAIRPAD_FSYNC_INTERVAL_MS", default_value_t = 100)]
    pub fsync_interval_ms: u64,

    /// Threads serving requests and sessions. 1 runs everything on one thread
    /// (the least CPU per edit: no hand-offs between threads); more spread page
    /// rendering over cores. Syncing storage to disk has its own thread.
    #[arg(long, env = "PAIRPAD_WORKER_THREADS", default_value_t = 1)]
    pub worker_threads: usize,
}

impl Config {
    /// Defaults for everything, as if no flag were given (tests start from this).
    pub fn defaults() -> Self {
        Self::parse_from(["pairpad"])
    }

    /// The limits these flags configure.
    pub fn limits(&self) -> Limits {
        Limits {
            max_frame_bytes: self.max_frame_bytes,
            max_document_bytes: self.max_document_bytes,
            messages_per_second: self.messages_per_second.max(1),
            message_burst: self.message_burst.max(1),
            max_connections_per_session: self.session_connection_limit.max(1),
            max_connections_per_ip: self.ip_connection_limit,
            sessions_per_ip_per_minute: self.create_limit,
            session_ttl: Duration::from_secs(self.session_ttl_secs),
            room_unload_grace: Duration::from_secs(self.room_unload_grace_secs),
            run_time_limit: Duration::from_secs(self.run_time_limit_secs.max(1)),
            max_output_bytes: self.max_output_bytes,
            max_output_lines: self.max_output_lines,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_match_the_documented_limits() {
        let config = Config::defaults();
        assert_eq!(config.addr.to_string(), "127.0.0.1:3000");
        assert_eq!(config.data_dir, PathBuf::from("./data"));
        assert_eq!(config.limits(), Limits::default());
    }

    #[test]
    fn flags_override_defaults() {
        let config = Config::parse_from([
            "pairpad",
            "--addr",
            "0.0.0.0:8080",
            "--create-limit",
            "0",
            "--session-ttl-secs",
            "2",
        ]);
        assert_eq!(config.addr.port(), 8080);
        assert_eq!(config.limits().sessions_per_ip_per_minute, 0);
        assert_eq!(config.limits().session_ttl, Duration::from_secs(2));
    }
}

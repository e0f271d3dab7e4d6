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

    /// Store sessions in Redis instead of the embedded database, e.g.
    /// `redis://127.0.0.1:6379/0` or `redis+unix:///run/redis.sock`. The
    /// server must have its append-only file on (see the README). Any number
    /// of instances may share one Redis (cluster mode).
    #[arg(long, env = "PAIRPAD_REDIS_URL")]
    pub redis_url: Option<String>,

    /// Accept a Redis whose append-only file is off (a Redis restart then
    /// loses the edits since its last snapshot).
    #[arg(long, env = "PAIRPAD_REDIS_ACCEPT_NO_AOF")]
    pub redis_accept_no_aof: bool,

    /// With Redis: seconds after which log entries a snapshot covers move
    /// from the session's stream into its compact history (playback keeps
    /// them). An instance that falls behind half this long checks what it
    /// missed, so shorter only costs those checks.
    #[arg(long, env = "PAIRPAD_REDIS_COMPACT_AFTER_SECS", default_value_t = 60)]
    pub redis_compact_after_secs: u64,

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

    /// Simultaneous connections to one session from one address (0 = no limit).
    #[arg(long, env = "PAIRPAD_SESSION_IP_CONNECTION_LIMIT", default_value_t = limits::DEFAULT_MAX_CONNECTIONS_PER_SESSION_PER_IP)]
    pub session_ip_connection_limit: usize,

    /// Largest WebSocket frame, in bytes.
    #[arg(long, env = "PAIRPAD_MAX_FRAME_BYTES", default_value_t = limits::DEFAULT_MAX_FRAME_BYTES)]
    pub max_frame_bytes: usize,

    /// Protocol messages one WebSocket frame may carry.
    #[arg(long, env = "PAIRPAD_MAX_MESSAGES_PER_FRAME", default_value_t = limits::DEFAULT_MAX_MESSAGES_PER_FRAME)]
    pub max_messages_per_frame: usize,

    /// Largest document (its whole encoding: code, metadata, runs), in bytes.
    #[arg(long, env = "PAIRPAD_MAX_DOCUMENT_BYTES", default_value_t = limits::DEFAULT_MAX_DOCUMENT_BYTES)]
    pub max_document_bytes: usize,

    /// Update bytes a session may store over its life; past it the session is read-only.
    #[arg(long, env = "PAIRPAD_MAX_HISTORY_BYTES", default_value_t = limits::DEFAULT_MAX_HISTORY_BYTES)]
    pub max_history_bytes: u64,

    /// SyncStep1 requests (answered with up to the whole document) per connection per minute.
    #[arg(long, env = "PAIRPAD_SYNC_REQUESTS_PER_MINUTE", default_value_t = limits::DEFAULT_SYNC_REQUESTS_PER_MINUTE)]
    pub sync_requests_per_minute: u32,

    /// Sustained bytes per second one connection may send (burst: two frames).
    #[arg(long, env = "PAIRPAD_BYTES_PER_SECOND", default_value_t = limits::DEFAULT_BYTES_PER_SECOND)]
    pub bytes_per_second: usize,

    /// Awareness client ids one connection may own.
    #[arg(long, env = "PAIRPAD_MAX_AWARENESS_CLIENTS", default_value_t = limits::DEFAULT_MAX_AWARENESS_CLIENTS)]
    pub max_awareness_clients: usize,

    /// Largest awareness state of one client (JSON bytes).
    #[arg(long, env = "PAIRPAD_MAX_AWARENESS_STATE_BYTES", default_value_t = limits::DEFAULT_MAX_AWARENESS_STATE_BYTES)]
    pub max_awareness_state_bytes: usize,

    /// Bytes queued to a connection before it counts as too slow and is closed.
    #[arg(long, env = "PAIRPAD_MAX_OUTBOUND_BYTES", default_value_t = limits::DEFAULT_MAX_OUTBOUND_BYTES)]
    pub max_outbound_bytes: usize,

    /// Seconds between WebSocket pings.
    #[arg(long, env = "PAIRPAD_PING_INTERVAL_SECS", default_value_t = limits::DEFAULT_PING_INTERVAL.as_secs())]
    pub ping_interval_secs: u64,

    /// Seconds a client may stay silent after a ping before it is closed (4408).
    #[arg(long, env = "PAIRPAD_PONG_TIMEOUT_SECS", default_value_t = limits::DEFAULT_PONG_TIMEOUT.as_secs())]
    pub pong_timeout_secs: u64,

    /// Seconds a client may take to send a request's headers.
    #[arg(long, env = "PAIRPAD_HEADER_TIMEOUT_SECS", default_value_t = limits::DEFAULT_HEADER_TIMEOUT.as_secs())]
    pub header_timeout_secs: u64,

    /// A reverse proxy (CIDR, e.g. 10.0.0.0/8 or ::1/128) whose X-Forwarded-For,
    /// Forwarded and X-Forwarded-Proto headers are believed. Repeatable; the
    /// environment form is comma-separated.
    #[arg(long = "trusted-proxy", env = "PAIRPAD_TRUSTED_PROXY", value_delimiter = ',', value_parser = parse_network)]
    pub trusted_proxies: Vec<ipnet::IpNet>,

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

/// A network in CIDR form, or a single address (a /32 or /128).
fn parse_network(text: &str) -> Result<ipnet::IpNet, String> {
    let text = text.trim();
    text.parse::<ipnet::IpNet>()
        .or_else(|_| text.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
        .map_err(|_| format!("{text:?} is neither an address nor a CIDR network"))
}

impl Config {
    /// Defaults for everything, as if no flag were given (tests start from this).
    pub fn defaults() -> Self {
        Self::parse_from(["pairpad"])
    }

    /// The largest byte limit configured: one allocation may need a few times it.
    pub fn largest_byte_limit(&self) -> u64 {
        [
            self.max_frame_bytes,
            self.max_document_bytes,
            self.max_outbound_bytes,
            self.max_output_bytes,
        ]
        .into_iter()
        .map(|bytes| bytes as u64)
        .chain([self.max_history_bytes])
        .max()
        .unwrap_or(0)
    }

    /// The limits these flags configure.
    pub fn limits(&self) -> Limits {
        Limits {
            max_frame_bytes: self.max_frame_bytes,
            max_messages_per_frame: self.max_messages_per_frame.max(1),
            max_document_bytes: self.max_document_bytes,
            max_history_bytes: self.max_history_bytes,
            messages_per_second: self.messages_per_second.max(1),
            message_burst: self.message_burst.max(1),
            sync_requests_per_minute: self.sync_requests_per_minute.max(1),
            bytes_per_second: self.bytes_per_second.max(1),
            max_awareness_clients: self.max_awareness_clients.max(1),
            max_awareness_state_bytes: self.max_awareness_state_bytes,
            max_outbound_bytes: self.max_outbound_bytes.max(64 * 1024),
            max_connections_per_session: self.session_connection_limit.max(1),
            max_connections_per_session_per_ip: self.session_ip_connection_limit,
            ping_interval: Duration::from_secs(self.ping_interval_secs.max(1)),
            pong_timeout: Duration::from_secs(self.pong_timeout_secs.max(1)),
            max_connections_per_ip: self.ip_connection_limit,
            sessions_per_ip_per_minute: self.create_limit,
            session_ttl: Duration::from_secs(self.session_ttl_secs),
            room_unload_grace: Duration::from_secs(self.room_unload_grace_secs),
            run_time_limit: Duration::from_secs(self.run_time_limit_secs.max(1)),
            // A run with no room for output at all would only ever show the
            // truncation notice: the smallest cap is one byte and one line.
            max_output_bytes: self.max_output_bytes.max(1),
            max_output_lines: self.max_output_lines.max(1),
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

    #[test]
    fn output_caps_of_zero_become_the_smallest_usable_ones() {
        let config = Config::parse_from([
            "pairpad",
            "--max-output-bytes",
            "0",
            "--max-output-lines",
            "0",
        ]);
        assert_eq!(config.limits().max_output_bytes, 1);
        assert_eq!(config.limits().max_output_lines, 1);
    }
}

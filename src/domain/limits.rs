//! Every limit pairpad enforces, as named constants with their defaults and one
//! struct that carries the configured values to where they are enforced. The
//! README's "Limits and abuse" section lists each with its flag and answer.

use std::time::Duration;

/// Largest WebSocket frame accepted (close 1009 past it).
pub const DEFAULT_MAX_FRAME_BYTES: usize = 1024 * 1024;
/// Protocol messages one frame may carry (close 1008 past it). Stock clients
/// send one; a frame is parsed no further than this, so one frame is bounded work.
pub const DEFAULT_MAX_MESSAGES_PER_FRAME: usize = 64;
/// Largest document: the length of its whole encoding (code, metadata, runs and
/// their history of deletions), so nothing a client writes escapes it.
pub const DEFAULT_MAX_DOCUMENT_BYTES: usize = 4 * 1024 * 1024;
/// Update bytes one session may store over its life (its history, kept for
/// playback); past it the session is read-only (close 4507).
pub const DEFAULT_MAX_HISTORY_BYTES: u64 = 64 * 1024 * 1024;
/// Sustained protocol messages per second per connection (each sync message and
/// each awareness entry counts one). A keystroke costs two (the edit and the
/// cursor), so this allows 100 keys a second held.
pub const DEFAULT_MESSAGES_PER_SECOND: u32 = 200;
/// Messages a connection may send at once above the sustained rate.
pub const DEFAULT_MESSAGE_BURST: u32 = 800;
/// SyncStep1 requests (each answered with a diff that may be the whole
/// document) per connection per minute; stock clients send one per connect.
pub const DEFAULT_SYNC_REQUESTS_PER_MINUTE: u32 = 10;
/// Sustained bytes per second a connection may send (its burst is two frames).
pub const DEFAULT_BYTES_PER_SECOND: usize = 1024 * 1024;
/// Awareness client ids one connection may own (a stock client uses one).
pub const DEFAULT_MAX_AWARENESS_CLIENTS: usize = 4;
/// Largest awareness state of one client (its JSON, in bytes).
pub const DEFAULT_MAX_AWARENESS_STATE_BYTES: usize = 4096;
/// Bytes queued to one connection before it counts as too slow and is closed.
pub const DEFAULT_MAX_OUTBOUND_BYTES: usize = 4 * 1024 * 1024;
/// Simultaneous connections to one session.
pub const DEFAULT_MAX_CONNECTIONS_PER_SESSION: usize = 32;
/// Simultaneous connections to one session from one client address: below the
/// session cap, so one address cannot fill a session.
pub const DEFAULT_MAX_CONNECTIONS_PER_SESSION_PER_IP: usize = 8;
/// Simultaneous WebSocket connections from one IP address (0 = no limit).
pub const DEFAULT_MAX_CONNECTIONS_PER_IP: usize = 64;
/// Sessions one IP address may create per minute (0 = no limit).
pub const DEFAULT_SESSIONS_PER_IP_PER_MINUTE: u32 = 30;
/// How often the server pings each WebSocket.
pub const DEFAULT_PING_INTERVAL: Duration = Duration::from_secs(15);
/// How long after a ping a client may stay silent before it is closed.
pub const DEFAULT_PONG_TIMEOUT: Duration = Duration::from_secs(15);
/// How long a client may take to send a request's headers (slowloris).
pub const DEFAULT_HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// Largest request head (request line and headers) the server reads.
pub const MAX_HEADER_BYTES: usize = 16 * 1024;
/// A session with no activity for this long is deleted.
pub const DEFAULT_SESSION_TTL: Duration = Duration::from_secs(7 * 24 * 3600);
/// A room with no connection stays in memory this long before it is unloaded.
pub const DEFAULT_ROOM_UNLOAD_GRACE: Duration = Duration::from_secs(30);
/// Longest a user's code may run in the browser before it is stopped.
pub const DEFAULT_RUN_TIME_LIMIT: Duration = Duration::from_secs(10);
/// Most output one run keeps (bytes).
pub const DEFAULT_MAX_OUTPUT_BYTES: usize = 1024 * 1024;
/// Most output one run keeps (lines).
pub const DEFAULT_MAX_OUTPUT_LINES: usize = 10_000;

/// The configured limits, shared by everything that enforces one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Limits {
    pub max_frame_bytes: usize,
    pub max_messages_per_frame: usize,
    pub max_document_bytes: usize,
    pub max_history_bytes: u64,
    pub messages_per_second: u32,
    pub message_burst: u32,
    pub sync_requests_per_minute: u32,
    pub bytes_per_second: usize,
    pub max_awareness_clients: usize,
    pub max_awareness_state_bytes: usize,
    pub max_outbound_bytes: usize,
    pub max_connections_per_session: usize,
    /// 0 = no limit.
    pub max_connections_per_session_per_ip: usize,
    /// 0 = no limit.
    pub max_connections_per_ip: usize,
    /// 0 = no limit.
    pub sessions_per_ip_per_minute: u32,
    pub ping_interval: Duration,
    pub pong_timeout: Duration,
    pub session_ttl: Duration,
    pub room_unload_grace: Duration,
    pub run_time_limit: Duration,
    pub max_output_bytes: usize,
    pub max_output_lines: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_frame_bytes: DEFAULT_MAX_FRAME_BYTES,
            max_messages_per_frame: DEFAULT_MAX_MESSAGES_PER_FRAME,
            max_document_bytes: DEFAULT_MAX_DOCUMENT_BYTES,
            max_history_bytes: DEFAULT_MAX_HISTORY_BYTES,
            messages_per_second: DEFAULT_MESSAGES_PER_SECOND,
            message_burst: DEFAULT_MESSAGE_BURST,
            sync_requests_per_minute: DEFAULT_SYNC_REQUESTS_PER_MINUTE,
            bytes_per_second: DEFAULT_BYTES_PER_SECOND,
            max_awareness_clients: DEFAULT_MAX_AWARENESS_CLIENTS,
            max_awareness_state_bytes: DEFAULT_MAX_AWARENESS_STATE_BYTES,
            max_outbound_bytes: DEFAULT_MAX_OUTBOUND_BYTES,
            max_connections_per_session: DEFAULT_MAX_CONNECTIONS_PER_SESSION,
            max_connections_per_session_per_ip: DEFAULT_MAX_CONNECTIONS_PER_SESSION_PER_IP,
            max_connections_per_ip: DEFAULT_MAX_CONNECTIONS_PER_IP,
            sessions_per_ip_per_minute: DEFAULT_SESSIONS_PER_IP_PER_MINUTE,
            ping_interval: DEFAULT_PING_INTERVAL,
            pong_timeout: DEFAULT_PONG_TIMEOUT,
            session_ttl: DEFAULT_SESSION_TTL,
            room_unload_grace: DEFAULT_ROOM_UNLOAD_GRACE,
            run_time_limit: DEFAULT_RUN_TIME_LIMIT,
            max_output_bytes: DEFAULT_MAX_OUTPUT_BYTES,
            max_output_lines: DEFAULT_MAX_OUTPUT_LINES,
        }
    }
}

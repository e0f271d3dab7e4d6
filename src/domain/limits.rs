//! Every limit pairpad enforces, as named constants with their defaults and one
//! struct that carries the configured values to where they are enforced.

use std::time::Duration;

/// Largest WebSocket frame accepted (close 1009 past it).
pub const DEFAULT_MAX_FRAME_BYTES: usize = 1024 * 1024;
/// Largest document text (UTF-8 bytes); a bigger update is rejected.
pub const DEFAULT_MAX_DOCUMENT_BYTES: usize = 2 * 1024 * 1024;
/// Sustained WebSocket messages per second per connection. A keystroke costs
/// two (the edit and the cursor), so this allows 100 keys a second held.
pub const DEFAULT_MESSAGES_PER_SECOND: u32 = 200;
/// Messages a connection may send at once above the sustained rate.
pub const DEFAULT_MESSAGE_BURST: u32 = 800;
/// Simultaneous connections to one session.
pub const DEFAULT_MAX_CONNECTIONS_PER_SESSION: usize = 32;
/// Simultaneous WebSocket connections from one IP address (0 = no limit).
pub const DEFAULT_MAX_CONNECTIONS_PER_IP: usize = 64;
/// Sessions one IP address may create per minute (0 = no limit).
pub const DEFAULT_SESSIONS_PER_IP_PER_MINUTE: u32 = 30;
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
    pub max_document_bytes: usize,
    pub messages_per_second: u32,
    pub message_burst: u32,
    pub max_connections_per_session: usize,
    /// 0 = no limit.
    pub max_connections_per_ip: usize,
    /// 0 = no limit.
    pub sessions_per_ip_per_minute: u32,
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
            max_document_bytes: DEFAULT_MAX_DOCUMENT_BYTES,
            messages_per_second: DEFAULT_MESSAGES_PER_SECOND,
            message_burst: DEFAULT_MESSAGE_BURST,
            max_connections_per_session: DEFAULT_MAX_CONNECTIONS_PER_SESSION,
            max_connections_per_ip: DEFAULT_MAX_CONNECTIONS_PER_IP,
            sessions_per_ip_per_minute: DEFAULT_SESSIONS_PER_IP_PER_MINUTE,
            session_ttl: DEFAULT_SESSION_TTL,
            room_unload_grace: DEFAULT_ROOM_UNLOAD_GRACE,
            run_time_limit: DEFAULT_RUN_TIME_LIMIT,
            max_output_bytes: DEFAULT_MAX_OUTPUT_BYTES,
            max_output_lines: DEFAULT_MAX_OUTPUT_LINES,
        }
    }
}

//! WebSocket close codes pairpad uses, shared by the server that sends them and
//! the browser that reacts to them.

pub const GOING_AWAY: u16 = 1001;
pub const UNSUPPORTED_DATA: u16 = 1003;
pub const INVALID_PAYLOAD: u16 = 1007;
pub const POLICY_VIOLATION: u16 = 1008;
pub const MESSAGE_TOO_BIG: u16 = 1009;
pub const INTERNAL_ERROR: u16 = 1011;
pub const TRY_AGAIN_LATER: u16 = 1013;
pub const MALFORMED_SESSION_ID: u16 = 4400;
pub const SESSION_NOT_FOUND: u16 = 4404;
pub const DOCUMENT_TOO_LARGE: u16 = 4413;

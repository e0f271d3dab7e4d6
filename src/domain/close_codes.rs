//! WebSocket close codes pairpad uses, shared by the server that sends them and
//! the browser that reacts to them.

pub const GOING_AWAY: u16 = 1001;
pub const UNSUPPORTED_DATA: u16 = 1003;
pub const INVALID_PAYLOAD: u16 = 1007;
/// A rate or per-message limit was broken (messages, bytes, sync requests,
/// messages per frame, awareness state size).
pub const POLICY_VIOLATION: u16 = 1008;
pub const MESSAGE_TOO_BIG: u16 = 1009;
pub const INTERNAL_ERROR: u16 = 1011;
/// Try again later: session full, too many connections from one address, or a
/// connection too slow to read what it is sent.
pub const TRY_AGAIN_LATER: u16 = 1013;
pub const MALFORMED_SESSION_ID: u16 = 4400;
/// The session has a password: unlock it first (or bring the interviewer key).
pub const PASSWORD_REQUIRED: u16 = 4401;
/// Interviewers only (the notes document), or a wrong interviewer key.
pub const INTERVIEWER_ONLY: u16 = 4403;
pub const SESSION_NOT_FOUND: u16 = 4404;
/// No pong arrived in time after a ping.
pub const TIMED_OUT: u16 = 4408;
/// The interview has ended: the session is read-only (an edit was sent).
pub const INTERVIEW_ENDED: u16 = 4409;
pub const DOCUMENT_TOO_LARGE: u16 = 4413;
/// The update writes something the session document does not hold (an
/// unknown shared type, a nested type, a subdocument, binary content).
pub const UNSUPPORTED_CONTENT: u16 = 4422;
/// The session's stored history reached its bound: the session is read-only.
pub const HISTORY_FULL: u16 = 4507;

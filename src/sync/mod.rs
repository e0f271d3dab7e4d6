//! The session document and the y-websocket protocol, sans IO. Builds for both
//! the server (which hosts each session's document) and the browser.

pub mod document;
pub mod protocol;
pub mod schema;

pub use document::{ApplyError, SessionDoc};

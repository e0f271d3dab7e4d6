//! Pure types and rules of pairpad: session identity and metadata, limits, rate
//! buckets, time formatting and text splices. No IO, no async, no framework types: this module
//! builds for both the server and the browser.

pub mod close_codes;
pub mod events;
pub mod limits;
pub mod names;
pub mod rate;
pub mod run;
pub mod session;
pub mod text;
pub mod time;

pub use limits::Limits;
pub use session::{Language, SessionId, SessionIdError, SessionMeta, UnknownLanguage};

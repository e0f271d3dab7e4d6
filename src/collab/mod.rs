//! The browser's side of a session, sans IO: the local replica of the document
//! and of everyone's presence. It turns editor changes, protocol frames and timer
//! ticks into frames to send and changes to show; the UI wires it to the
//! WebSocket and to Monaco through `interop`. Pure Rust, so it is unit-tested
//! natively.

pub mod backoff;
pub mod client;
pub mod notes;
pub mod playback;
pub mod presence;
pub mod text_ops;

pub use client::{CollabClient, Effects};

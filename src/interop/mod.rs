//! Bridges to browser APIs and JavaScript modules. Each bridge keeps its raw
//! bindings private, exposes a safe Rust API, and has a no-op twin on the server
//! so components compile on both sides. Components never call JS directly.

pub mod browser;
pub mod clipboard;
pub mod editor;
pub mod interview;
pub mod runner;
pub mod socket;

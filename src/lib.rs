//! pairpad: a self-hostable, real-time collaborative coding-interview pad.
//!
//! One crate, two sides: with the `ssr` feature it is the server (pages, REST API,
//! WebSocket sync, storage); with `hydrate` it is the WebAssembly that hydrates
//! the pages in the browser.
//!
//! # Layout
//!
//! - [`app`]: the HTML shell, root component and routes (both sides).
//! - [`domain`]: pure types and rules: session ids, languages, limits, rate buckets.
//! - [`sync`]: the session document (yrs) and the y-websocket protocol, sans IO.
//! - [`collab`]: the browser's replica of a session (document, presence, undo), sans IO.
//! - [`api`]: Leptos server functions the pages call.
//! - [`ui`]: components and pages.
//! - [`interop`]: bridges to browser APIs and JS modules (safe wrappers, server twins).
//! - `storage` (ssr): persistence behind one trait; embedded redb by default, with
//!   a journal in front of its update log.
//! - `server` (ssr): axum routes, REST API, WebSocket rooms, headers, limits, shutdown.
//!
//! - The `pairpad-runner-protocol` crate (`runner/protocol`, in this
//!   workspace): what the page and the code-runner workers tell each other, and
//!   a run's output format and caps; `domain::run::Stream` comes from it.
//!
//! Dependencies point one way: ui -> interop, api, domain; api/server -> sync,
//! storage, domain; sync -> domain; storage -> domain.

#![recursion_limit = "256"]

pub mod api;
pub mod app;
pub mod collab;
pub mod domain;
pub mod interop;
#[cfg(feature = "ssr")]
pub mod server;
#[cfg(feature = "ssr")]
pub mod storage;
pub mod sync;
pub mod ui;

/// The browser entry point: hydrates the server-rendered page.
#[cfg(feature = "hydrate")]
#[wasm_bindgen::prelude::wasm_bindgen]
pub fn hydrate() {
    console_error_panic_hook::set_once();
    leptos::mount::hydrate_body(app::App);
}

//! pairpad's code-runner workers, their Rust half, built once per language
//! (features `javascript` and `python`) into the worker bundles
//! (`scripts/runner-bundle.mjs`), whose tails start the runner:
//! [`javascript`] (a fresh worker per run; the program is evaluated by
//! `runner/js/evaluate.js`) or [`python`] (one long-lived worker; Pyodide is
//! driven by `runner/py/python.js`). What both share lives
//! here and in the modules below: the lockdown of the worker's global object
//! ([`lockdown`]), the run's output held to the caps and delivered
//! ([`writer`]), and the way replies reach the page ([`outbox`]): encoded in
//! gloo-worker's format and posted through the `postMessage` the bundle took
//! before the lockdown removed it (gloo's own `respond` looks `postMessage` up
//! on the global object each time, where a program could replace it).

#[cfg(feature = "javascript")]
mod javascript;
mod lockdown;
mod outbox;
#[cfg(feature = "python")]
mod python;
mod writer;

use js_sys::SharedArrayBuffer;
use std::cell::RefCell;
use wasm_bindgen::{prelude::wasm_bindgen, JsCast, JsValue};

thread_local! {
    /// The shared output channel the page posted for the next run.
    static NEXT_CHANNEL: RefCell<Option<SharedArrayBuffer>> = const { RefCell::new(None) };
}

/// Takes the next run's shared output channel (the page posts it beside the
/// bridge, just before the run: a SharedArrayBuffer cannot pass through
/// gloo-worker's codec).
#[wasm_bindgen]
pub fn attach_channel(buffer: SharedArrayBuffer) {
    NEXT_CHANNEL.with(|channel| *channel.borrow_mut() = Some(buffer));
}

/// The channel for the run that is starting now, if the page posted one.
fn take_channel() -> Option<SharedArrayBuffer> {
    NEXT_CHANNEL.with(|channel| channel.borrow_mut().take())
}

/// The message of a JavaScript error (or the thrown string), for reports.
fn error_text(error: &JsValue) -> Option<String> {
    error
        .dyn_ref::<js_sys::Error>()
        .map(|error| String::from(error.message()))
        .or_else(|| error.as_string())
}

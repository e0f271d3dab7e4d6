//! Running code in the browser: JavaScript in a Web Worker
//! (`/runner/js-worker.js`, built from `runner/js/`), Python in Pyodide in a
//! Worker (`/runner/py-worker.js`, built from `runner/py/`), both sandboxed
//! and stoppable; the Rust half of both workers is the
//! `pairpad-runner-worker` crate (`runner/worker`). [`Runner`] is the page's
//! API: `page` drives the workers, `bridge` is the gloo-worker bridge both
//! are reached through, `protocol` writes the run order (the messages' Rust
//! types, the output caps and the output channel's format are the
//! `pairpad_runner_protocol` crate), `channel` is the memory the page and a
//! worker share for a run's output. The server twin never runs anything.

#[cfg(feature = "hydrate")]
mod bridge;
#[cfg(feature = "hydrate")]
mod channel;
#[cfg(feature = "hydrate")]
mod page;
#[cfg(feature = "hydrate")]
mod protocol;

use crate::domain::run::RunStatus;
#[cfg(not(feature = "hydrate"))]
use crate::domain::{run::Stream, Language};

/// Where Python's runtime is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PythonStatus {
    /// Downloading or starting; the text says how far.
    Loading(String),
    Ready,
    Failed(String),
}

/// How a run ended.
#[derive(Clone, Debug, PartialEq)]
pub struct RunOutcome {
    /// Ok, Error, Timeout or Stopped (never Running).
    pub status: RunStatus,
    /// The program's own running time.
    pub duration_ms: f64,
    /// Its output was cut at a cap.
    pub truncated: bool,
    pub error: Option<RunError>,
}

pub use pairpad_runner_protocol::messages::{RunError, RunLimits};

#[cfg(feature = "hydrate")]
pub use page::Runner;

/// Server twin: nothing runs on the server.
#[cfg(not(feature = "hydrate"))]
pub struct Runner;

#[cfg(not(feature = "hydrate"))]
impl Runner {
    pub fn new() -> Option<Runner> {
        None
    }

    pub fn preload_python(&mut self, _on_status: impl Fn(PythonStatus) + 'static) {}

    pub fn run(
        &self,
        _language: Language,
        _code: &str,
        _stdin: &str,
        _limits: RunLimits,
        _on_output: impl Fn(Stream, String) + 'static,
    ) -> impl std::future::Future<Output = Result<RunOutcome, String>> + 'static {
        async { Err("code does not run on the server".to_owned()) }
    }

    pub fn stop(&self) {}

    pub fn is_running(&self) -> bool {
        false
    }
}

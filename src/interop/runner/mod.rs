//! Running code in the browser: JavaScript in a Web Worker, Python in Pyodide in
//! a Worker, both sandboxed and stoppable (`public/runner/`). [`Runner`] is the
//! page's API: `page` drives the workers, `protocol` types what passes between
//! them, `channel` is the memory they share for a run's output, `output` holds
//! that output to its caps. The server twin never runs anything.

#[cfg(feature = "hydrate")]
mod channel;
pub mod output;
#[cfg(feature = "hydrate")]
mod page;
pub mod protocol;

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

/// An error the program raised, with its line in the editor's numbering.
#[derive(Clone, Debug, PartialEq)]
pub struct RunError {
    /// The error's class, e.g. "TypeError" or "ZeroDivisionError".
    pub kind: String,
    pub message: String,
    pub line: Option<u32>,
}

/// Limits one run is held to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RunLimits {
    pub time_limit_ms: u64,
    pub max_output_bytes: usize,
    pub max_output_lines: usize,
}

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

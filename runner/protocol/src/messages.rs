//! What the page and a runner worker tell each other through a gloo-worker
//! bridge, as Rust types, and the bounds every field from a worker is held
//! to. Everything a worker sends is untrusted (the program it runs may try to
//! forge it): the page passes it through [`FromWorker::bounded`] (built on
//! [`run_error`], [`duration`], [`detail`]).

use crate::Stream;
use serde::{Deserialize, Serialize};

/// What the page asks of a runner worker (through a gloo-worker bridge).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum ToRunner {
    /// Run a program (one per JavaScript worker; one at a time, in order, in
    /// a Python worker). Its output goes to the shared channel the page
    /// posted before, or back as `Out` messages.
    Run(RunOrder),
    /// A Python worker's first message: load Python. Its replies that no
    /// run asked for (loading progress, `Tainted`) go back through the
    /// bridge that sent it. The interrupt buffer, if any, is posted beside
    /// the bridge before it.
    Start,
}

/// One run, as the worker gets it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunOrder {
    pub id: u32,
    pub code: String,
    pub stdin: String,
    pub max_output_bytes: u64,
    pub max_output_lines: u64,
    /// The run's time limit. The page enforces it (terminating a JavaScript
    /// worker, interrupting Python through the shared interrupt buffer); a
    /// Python worker without that buffer enforces it itself.
    pub time_limit_ms: u64,
}

/// Limits one run is held to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RunLimits {
    pub time_limit_ms: u64,
    pub max_output_bytes: usize,
    pub max_output_lines: usize,
}

/// An error the program raised, with its line in the editor's numbering.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunError {
    /// The error's class, e.g. "TypeError" or "ZeroDivisionError".
    pub kind: String,
    pub message: String,
    pub line: Option<u32>,
}

/// How a worker says a run ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum DoneStatus {
    Ok,
    Error,
    /// Python honoured the page's interrupt (time limit or stop).
    Interrupted,
    /// Python's own deadline (no interrupt buffer) ended the run.
    Timeout,
}

/// The worker's report that a run is over.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Done {
    pub id: f64,
    pub status: DoneStatus,
    pub error: Option<RunError>,
    /// The worker cut the output at a cap.
    pub truncated: bool,
    /// The run's own duration, measured in the worker.
    pub duration_ms: Option<f64>,
    /// Python: do not reuse this worker (the run left something behind).
    pub restart: bool,
}

/// Python's loading states, as its worker reports them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum LoadState {
    Loading,
    Ready,
    Error,
}

/// A message from a runner worker.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum FromWorker {
    /// Python's loading progress.
    Status {
        state: LoadState,
        detail: String,
    },
    /// Output was written to the run's channel (read it now, not at the next poll).
    Wake {
        id: f64,
    },
    /// Output posted as messages (no shared channel).
    Out {
        id: f64,
        chunks: Vec<(Stream, String)>,
    },
    Done(Done),
    /// Python ran between runs: replace the worker.
    Tainted,
}

/// Longest status detail kept (characters).
const MAX_DETAIL_CHARS: usize = 200;
/// Longest error type kept (characters).
const MAX_ERROR_TYPE_CHARS: usize = 200;
/// Longest error message kept (characters).
const MAX_ERROR_MESSAGE_CHARS: usize = 10_000;

fn clipped(text: &str, max_chars: usize) -> String {
    text.chars().take(max_chars).collect()
}

/// An error report from a worker, with its fields bounded: the type defaults to
/// "Error", and a line counts only if it is a positive whole number.
pub fn run_error(kind: Option<&str>, message: Option<&str>, line: Option<f64>) -> RunError {
    RunError {
        kind: clipped(kind.unwrap_or("Error"), MAX_ERROR_TYPE_CHARS),
        message: clipped(message.unwrap_or(""), MAX_ERROR_MESSAGE_CHARS),
        line: line
            .filter(|line| line.fract() == 0.0 && *line >= 1.0 && *line <= f64::from(u32::MAX))
            .map(|line| line as u32),
    }
}

/// A duration a worker reports, if it is one.
pub fn duration(ms: Option<f64>) -> Option<f64> {
    ms.filter(|ms| ms.is_finite() && *ms >= 0.0)
}

impl FromWorker {
    /// The message with every field held to the bounds above (for messages
    /// decoded whole, e.g. from a bridge).
    pub fn bounded(self) -> FromWorker {
        match self {
            FromWorker::Status {
                state,
                detail: text,
            } => FromWorker::Status {
                state,
                detail: detail(Some(&text)),
            },
            FromWorker::Done(done) => FromWorker::Done(Done {
                error: done.error.map(|error| {
                    run_error(
                        Some(&error.kind),
                        Some(&error.message),
                        error.line.map(f64::from),
                    )
                }),
                duration_ms: duration(done.duration_ms),
                ..done
            }),
            other => other,
        }
    }
}

/// A status detail, clipped.
pub fn detail(text: Option<&str>) -> String {
    clipped(text.unwrap_or(""), MAX_DETAIL_CHARS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_reports_are_bounded_and_lines_must_be_positive_whole_numbers() {
        let long = "x".repeat(20_000);
        let error = run_error(None, Some(&long), Some(3.0));
        assert_eq!(error.kind, "Error");
        assert_eq!(error.message.chars().count(), 10_000);
        assert_eq!(error.line, Some(3));
        for bad in [0.0, -1.0, 2.5, f64::NAN, f64::INFINITY, 1e12] {
            assert_eq!(run_error(Some("E"), None, Some(bad)).line, None, "{bad}");
        }
        assert_eq!(run_error(Some(&long), None, None).kind.chars().count(), 200);
    }

    #[test]
    fn durations_must_be_finite_and_not_negative() {
        assert_eq!(duration(Some(12.5)), Some(12.5));
        assert_eq!(duration(Some(-1.0)), None);
        assert_eq!(duration(Some(f64::NAN)), None);
        assert_eq!(duration(None), None);
    }

    #[test]
    fn decoded_messages_are_held_to_the_same_bounds() {
        let done = FromWorker::Done(Done {
            id: 1.0,
            status: DoneStatus::Error,
            error: Some(RunError {
                kind: "E".repeat(500),
                message: "m".repeat(20_000),
                line: Some(0),
            }),
            truncated: false,
            duration_ms: Some(f64::NAN),
            restart: false,
        });
        let FromWorker::Done(done) = done.bounded() else {
            panic!("a done message stays one")
        };
        let error = done.error.expect("the error is kept");
        assert_eq!(error.kind.chars().count(), 200);
        assert_eq!(error.message.chars().count(), 10_000);
        assert_eq!(error.line, None, "line 0 is no line");
        assert_eq!(done.duration_ms, None);
        let status = FromWorker::Status {
            state: LoadState::Loading,
            detail: "x".repeat(1_000),
        };
        assert!(
            matches!(status.bounded(), FromWorker::Status { detail, .. } if detail.len() == 200)
        );
    }

    #[test]
    fn status_details_are_clipped_to_200_characters() {
        assert_eq!(detail(Some(&"é".repeat(300))).chars().count(), 200);
        assert_eq!(detail(None), "");
    }
}

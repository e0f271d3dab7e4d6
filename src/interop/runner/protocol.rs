//! The messages between the page and the runner workers
//! (`public/runner/js-worker.js`, `public/runner/py-worker.js`), as Rust types.
//! Everything a worker sends is untrusted (the program it runs may forge it):
//! [`FromWorker::parse`] keeps only known message types and well-formed fields,
//! bounded in size, and never fails loudly.

use super::{RunError, RunLimits};
use crate::domain::{run::Stream, Language};

/// How a worker says a run ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DoneStatus {
    Ok,
    Error,
    /// Python honoured the page's interrupt (time limit or stop).
    Interrupted,
    /// Python's own deadline (no interrupt buffer) ended the run.
    Timeout,
}

/// The worker's report that a run is over.
#[derive(Clone, Debug, PartialEq)]
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
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LoadState {
    Loading,
    Ready,
    Error,
}

/// What a Python worker says about the memory snapshot (Python's memory right
/// after it started, kept in the browser so later pages restore it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SnapshotState {
    /// Python was restored from the snapshot.
    Used,
    /// Python started the long way: there was no usable snapshot.
    Missing,
    /// A snapshot-making worker stored a new one.
    Stored,
    /// A snapshot-making worker could not make or store one.
    Failed,
}

/// A message from a runner worker.
#[derive(Clone, Debug, PartialEq)]
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
    Snapshot(SnapshotState),
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

/// A status detail, clipped.
pub fn detail(text: Option<&str>) -> String {
    clipped(text.unwrap_or(""), MAX_DETAIL_CHARS)
}

/// A run handed to a worker.
pub struct RunRequest<'a> {
    pub id: u32,
    pub language: Language,
    pub code: &'a str,
    pub stdin: &'a str,
    pub limits: RunLimits,
}

#[cfg(feature = "hydrate")]
mod wire {
    //! The JavaScript shapes of the messages.

    use super::*;
    use js_sys::{Array, Object, Reflect};
    use wasm_bindgen::{JsCast, JsValue};

    fn field(message: &JsValue, name: &str) -> JsValue {
        Reflect::get(message, &JsValue::from_str(name)).unwrap_or(JsValue::UNDEFINED)
    }

    fn text(message: &JsValue, name: &str) -> Option<String> {
        field(message, name).as_string()
    }

    fn number(message: &JsValue, name: &str) -> Option<f64> {
        field(message, name).as_f64()
    }

    impl FromWorker {
        /// The message a worker posted, if it is one the page knows; anything
        /// else (a forged or garbled message) is `None`.
        pub fn parse(data: &JsValue) -> Option<FromWorker> {
            // Only plain data: never call into an object the worker could
            // have shaped (getters, proxies cannot cross postMessage anyway).
            if !data.is_object() || data.is_function() {
                return None;
            }
            let id = || number(data, "id");
            match text(data, "type")?.as_str() {
                "status" => Some(FromWorker::Status {
                    state: match text(data, "state")?.as_str() {
                        "loading" => LoadState::Loading,
                        "ready" => LoadState::Ready,
                        "error" => LoadState::Error,
                        _ => return None,
                    },
                    detail: detail(text(data, "detail").as_deref()),
                }),
                "wake" => Some(FromWorker::Wake { id: id()? }),
                "out" => {
                    let chunks = field(data, "chunks").dyn_into::<Array>().ok();
                    let chunks = chunks.map(|chunks| chunks.to_vec()).unwrap_or_default();
                    let chunks = chunks
                        .chunks_exact(2)
                        .filter_map(|pair| {
                            let stream = if pair[0].as_f64() == Some(2.0) {
                                Stream::Stderr
                            } else {
                                Stream::Stdout
                            };
                            Some((stream, pair[1].as_string()?))
                        })
                        .collect();
                    Some(FromWorker::Out { id: id()?, chunks })
                }
                "done" => {
                    let error = field(data, "error");
                    let error = (error.is_object()).then(|| {
                        run_error(
                            text(&error, "type").as_deref(),
                            text(&error, "message").as_deref(),
                            number(&error, "line"),
                        )
                    });
                    Some(FromWorker::Done(Done {
                        id: id()?,
                        status: match text(data, "status").as_deref() {
                            Some("ok") => DoneStatus::Ok,
                            Some("interrupted") => DoneStatus::Interrupted,
                            Some("timeout") => DoneStatus::Timeout,
                            _ => DoneStatus::Error,
                        },
                        error,
                        truncated: field(data, "truncated").as_bool() == Some(true),
                        duration_ms: duration(number(data, "durationMs")),
                        restart: field(data, "restart").as_bool() == Some(true),
                    }))
                }
                "tainted" => Some(FromWorker::Tainted),
                "snapshot" => Some(FromWorker::Snapshot(match text(data, "state")?.as_str() {
                    "used" => SnapshotState::Used,
                    "missing" => SnapshotState::Missing,
                    "stored" => SnapshotState::Stored,
                    "failed" => SnapshotState::Failed,
                    _ => return None,
                })),
                _ => None,
            }
        }
    }

    fn object(fields: &[(&str, JsValue)]) -> JsValue {
        let object = Object::new();
        for (name, value) in fields {
            // Setting a data property on a fresh plain object cannot fail.
            let _ = Reflect::set(&object, &JsValue::from_str(name), value);
        }
        object.into()
    }

    /// `{type:'run', …}`: `channel` is the run's output channel, if it has one.
    pub fn run_message(request: &RunRequest<'_>, channel: Option<&JsValue>) -> JsValue {
        let mut fields = vec![
            ("type", JsValue::from_str("run")),
            ("id", JsValue::from(request.id)),
            ("code", JsValue::from_str(request.code)),
            ("stdin", JsValue::from_str(request.stdin)),
            (
                "maxBytes",
                JsValue::from(request.limits.max_output_bytes as f64),
            ),
            (
                "maxLines",
                JsValue::from(request.limits.max_output_lines as f64),
            ),
            ("out", channel.cloned().unwrap_or(JsValue::NULL)),
        ];
        if request.language == Language::Python {
            fields.push((
                "timeLimitMs",
                JsValue::from(request.limits.time_limit_ms as f64),
            ));
        }
        object(&fields)
    }

    /// `{type:'init', interrupt}`: a Python worker's first message.
    pub fn init_message(interrupt: Option<&JsValue>) -> JsValue {
        object(&[
            ("type", JsValue::from_str("init")),
            ("interrupt", interrupt.cloned().unwrap_or(JsValue::NULL)),
        ])
    }

    /// `{type:'init', purpose:'snapshot'}`: the first message of a Python
    /// worker that only makes and stores the memory snapshot.
    pub fn make_snapshot_message() -> JsValue {
        object(&[
            ("type", JsValue::from_str("init")),
            ("interrupt", JsValue::NULL),
            ("purpose", JsValue::from_str("snapshot")),
        ])
    }
}

#[cfg(feature = "hydrate")]
pub use wire::{init_message, make_snapshot_message, run_message};

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
    fn status_details_are_clipped_to_200_characters() {
        assert_eq!(detail(Some(&"é".repeat(300))).chars().count(), 200);
        assert_eq!(detail(None), "");
    }
}

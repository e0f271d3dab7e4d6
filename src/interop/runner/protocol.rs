//! The shapes of the messages between the page and the runner workers: the
//! JavaScript objects of the Python worker (`public/runner/py-worker.js`) and
//! the run order of the JavaScript runner's bridge; the Rust types are in
//! `pairpad_runner_protocol::messages`. Everything a worker
//! sends is untrusted (the program it runs may forge it): [`parse`]
//! keeps only known message types and well-formed fields, bounded in size, and
//! never fails loudly.

use super::RunLimits;
use crate::domain::run::Stream;
use js_sys::{Array, Object, Reflect};
use pairpad_runner_protocol::messages::{
    detail, duration, run_error, Done, DoneStatus, FromWorker, LoadState, RunOrder, SnapshotState,
    ToRunner,
};
use wasm_bindgen::{JsCast, JsValue};

/// A run handed to a worker.
pub struct RunRequest<'a> {
    pub id: u32,
    pub code: &'a str,
    pub stdin: &'a str,
    pub limits: RunLimits,
}

fn field(message: &JsValue, name: &str) -> JsValue {
    Reflect::get(message, &JsValue::from_str(name)).unwrap_or(JsValue::UNDEFINED)
}

fn text(message: &JsValue, name: &str) -> Option<String> {
    field(message, name).as_string()
}

fn number(message: &JsValue, name: &str) -> Option<f64> {
    field(message, name).as_f64()
}

/// The message a worker posted, if it is one the page knows; anything else (a
/// forged or garbled message) is `None`.
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

fn object(fields: &[(&str, JsValue)]) -> JsValue {
    let object = Object::new();
    for (name, value) in fields {
        // Setting a data property on a fresh plain object cannot fail.
        let _ = Reflect::set(&object, &JsValue::from_str(name), value);
    }
    object.into()
}

/// The run as the JavaScript runner's bridge carries it (its output channel
/// goes beside the bridge).
pub fn run_order(request: &RunRequest<'_>) -> ToRunner {
    ToRunner::Run(RunOrder {
        id: request.id,
        code: request.code.to_owned(),
        stdin: request.stdin.to_owned(),
        max_output_bytes: request.limits.max_output_bytes as u64,
        max_output_lines: request.limits.max_output_lines as u64,
    })
}

/// `{type:'run', …}` (the Python worker): `channel` is the run's output
/// channel, if it has one.
pub fn run_message(request: &RunRequest<'_>, channel: Option<&JsValue>) -> JsValue {
    object(&[
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
        (
            "timeLimitMs",
            JsValue::from(request.limits.time_limit_ms as f64),
        ),
    ])
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

//! The Python runner: one long-lived worker (Pyodide takes seconds to start),
//! reused while runs leave nothing behind. This side owns the messages: the
//! page's `Start` and runs arrive through a gloo-worker bridge, and every
//! reply (loading progress, `Tainted`, each run's
//! output and end) leaves from here, the output held to the caps by the run's
//! [`Writer`]. `runner/py/python.js` (in the same bundle) does what only
//! JavaScript can: load Pyodide, keep runs from reaching later runs, and run
//! the program; it calls the `python_*` functions below.
//!
//! Replies that no run asked for go to the bridge that sent `Start` (loading
//! starts only then). Two replies are made in advance and handed to
//! python.js, for a run that changed the JavaScript environment (after which
//! nothing that passes through this side can be trusted): `Tainted`, and each
//! run's end as a sandbox error that asks for a fresh worker.

use crate::outbox::{reply_bytes, reply_to, Reply};
use crate::writer::{Clock, Writer};
use crate::{error_text, take_channel};
use gloo_worker::{HandlerId, Registrable, Worker, WorkerScope};
use js_sys::{Function, Reflect, Uint8Array};
use pairpad_runner_protocol::messages::{
    detail, duration, run_error, Done, DoneStatus, FromWorker, LoadState, RunOrder, ToRunner,
};
use pairpad_runner_protocol::Stream;
use std::cell::RefCell;
use wasm_bindgen::{prelude::wasm_bindgen, JsCast, JsValue};

/// Loading progress is sent at most this often (the page shows a percentage).
const STATUS_INTERVAL_MS: f64 = 100.0;
/// A run that changed the JavaScript environment ends with this.
const TAMPERED: &str = "the program changed the worker's JavaScript globals, which the runner \
                        relies on; Python restarts before the next run";

struct Python {
    /// `pythonRunner` from python.js: `begin(tainted)`,
    /// `run(id, code, stdin, timeLimitMs, tampered)` (see its header).
    driver: JsValue,
    clock: Clock,
    /// The worker's `postMessage`, bound, taken before the lockdown.
    post: Function,
    /// Replies to the bridge that sent `Start`.
    reply: Option<Reply>,
    last_status_ms: f64,
    /// Runs handed to python.js and not finished, oldest first.
    runs: Vec<Run>,
}

struct Run {
    id: u32,
    writer: Writer,
    reply: Reply,
}

thread_local! {
    static PYTHON: RefCell<Option<Python>> = const { RefCell::new(None) };
}

/// Starts the Python runner: registers it with gloo-worker (which tells the
/// page it is ready for `Start`). `set_timeout`, `now` and `post` are the
/// browser's own, taken before any program could replace them.
#[wasm_bindgen]
pub fn start_python(driver: JsValue, set_timeout: Function, now: Function, post: Function) {
    PYTHON.with(|python| {
        *python.borrow_mut() = Some(Python {
            driver,
            clock: Clock { set_timeout, now },
            post,
            reply: None,
            last_status_ms: f64::NEG_INFINITY,
            runs: Vec::new(),
        })
    });
    PyRunner::registrar().register();
}

/// Python's loading state: `state` is "loading", "ready" or "error".
/// Loading progress comes at most every 100 ms unless `force`d (a new phase).
#[wasm_bindgen]
pub fn python_status(state: &str, text: &str, force: bool) {
    let state = match state {
        "ready" => LoadState::Ready,
        "error" => LoadState::Error,
        _ => LoadState::Loading,
    };
    let due = with_python(|python| {
        let now = python.clock.now();
        let due = force
            || state != LoadState::Loading
            || now - python.last_status_ms >= STATUS_INTERVAL_MS;
        if due {
            python.last_status_ms = now;
        }
        due
    });
    if due == Some(true) {
        send(FromWorker::Status {
            state,
            detail: detail(Some(text)),
        });
    }
}

/// Python ran between runs: the page replaces this worker.
#[wasm_bindgen]
pub fn python_tainted() {
    send(FromWorker::Tainted);
}

/// Output of run `id`: `data` is bytes (Python's streams) or a string (the
/// runner's own messages); `stream` 2 is stderr, anything else stdout.
#[wasm_bindgen]
pub fn python_write(id: u32, stream: u32, data: JsValue) {
    let stream = if stream == 2 {
        Stream::Stderr
    } else {
        Stream::Stdout
    };
    // How much could still be shown: no more is copied out of JavaScript (a
    // program may write gigabytes), and the copy is made while the state is
    // not held.
    let room = with_python(|python| {
        let run = python.runs.iter().find(|run| run.id == id)?;
        (!run.writer.truncated()).then(|| run.writer.room())
    })
    .flatten();
    let Some(room) = room else {
        return; // finished, never started, or past its caps: ignored
    };
    // A character cut at the edge of the room still counts as cut.
    let limit = u32::try_from(room.saturating_add(4)).unwrap_or(u32::MAX);
    let bytes = data.dyn_ref::<Uint8Array>().map(|bytes| {
        let end = bytes.length().min(limit);
        bytes.subarray(0, end).to_vec()
    });
    let text = match bytes {
        Some(_) => None,
        None => data.as_string(),
    };
    with_python(|python| {
        let Some(run) = python.runs.iter_mut().find(|run| run.id == id) else {
            return;
        };
        match (&bytes, &text) {
            (Some(bytes), _) => run.writer.write_bytes(stream, bytes),
            (None, Some(text)) => run.writer.write(stream, text),
            (None, None) => {}
        }
    });
}

/// The end of run `id`: `status` is "ok", "error", "interrupted" (by the
/// page's interrupt) or "timeout" (the worker's own deadline); `restart`
/// asks the page not to reuse this worker.
#[wasm_bindgen]
#[allow(clippy::too_many_arguments)] // one call from python.js, fields of one report
pub fn python_finish(
    id: u32,
    status: &str,
    kind: Option<String>,
    message: Option<String>,
    line: Option<f64>,
    duration_ms: f64,
    restart: bool,
) {
    let status = match status {
        "ok" => DoneStatus::Ok,
        "interrupted" => DoneStatus::Interrupted,
        "timeout" => DoneStatus::Timeout,
        _ => DoneStatus::Error,
    };
    let ended = with_python(|python| {
        let at = python.runs.iter().position(|run| run.id == id)?;
        let mut run = python.runs.remove(at);
        run.writer.flush();
        Some(run)
    })
    .flatten();
    let Some(run) = ended else {
        return; // finished already
    };
    let has_error = status != DoneStatus::Ok && (kind.is_some() || message.is_some());
    (run.reply)(FromWorker::Done(Done {
        id: f64::from(id),
        status,
        error: has_error.then(|| run_error(kind.as_deref(), message.as_deref(), line)),
        truncated: run.writer.truncated(),
        duration_ms: duration(Some(duration_ms)),
        restart,
    }));
}

fn with_python<T>(change: impl FnOnce(&mut Python) -> T) -> Option<T> {
    PYTHON.with(|python| {
        let mut python = python.try_borrow_mut().ok()?;
        python.as_mut().map(change)
    })
}

/// Sends a reply no run asked for, to the bridge that sent `Start` (none is
/// made before it).
fn send(message: FromWorker) {
    let reply = with_python(|python| python.reply.clone()).flatten();
    if let Some(reply) = reply {
        reply(message);
    }
}

/// Calls `name` on python.js's driver with `arguments`; the JavaScript error's
/// text if it threw.
fn call_driver(driver: &JsValue, name: &str, arguments: &[JsValue]) -> Result<(), String> {
    let function = Reflect::get(driver, &JsValue::from_str(name))
        .ok()
        .and_then(|function| function.dyn_into::<Function>().ok())
        .ok_or_else(|| format!("python.js has no {name}"))?;
    let arguments: js_sys::Array = arguments.iter().collect();
    function
        .apply(driver, &arguments)
        .map(drop)
        .map_err(|error| error_text(&error).unwrap_or_else(|| format!("{name} failed")))
}

struct PyRunner;

impl Worker for PyRunner {
    type Message = ();
    type Input = ToRunner;
    type Output = FromWorker;

    fn create(_scope: &WorkerScope<Self>) -> Self {
        PyRunner
    }

    fn update(&mut self, _scope: &WorkerScope<Self>, _message: ()) {}

    fn received(&mut self, _scope: &WorkerScope<Self>, input: ToRunner, from: HandlerId) {
        match input {
            ToRunner::Start => start(&from),
            ToRunner::Run(order) => run(order, &from),
        }
    }
}

fn start(from: &HandlerId) {
    let begun = with_python(|python| {
        if python.reply.is_some() {
            return None; // started already
        }
        let reply = reply_to(&python.post, from)?;
        let tainted = reply_bytes(from, FromWorker::Tainted)?;
        python.reply = Some(reply.clone());
        Some((reply, tainted, python.driver.clone()))
    })
    .flatten();
    let Some((reply, tainted, driver)) = begun else {
        return;
    };
    if let Err(why) = call_driver(&driver, "begin", &[tainted.into()]) {
        reply(FromWorker::Status {
            state: LoadState::Error,
            detail: detail(Some(&format!("Python failed to load: {why}"))),
        });
    }
}

fn run(order: RunOrder, from: &HandlerId) {
    let channel = take_channel();
    let handed = with_python(|python| {
        let reply = reply_to(&python.post, from)?;
        let writer = Writer::new(
            order.id,
            channel,
            usize::try_from(order.max_output_bytes)
                .unwrap_or(usize::MAX)
                .max(1),
            usize::try_from(order.max_output_lines)
                .unwrap_or(usize::MAX)
                .max(1),
            python.clock.clone(),
            reply.clone(),
        );
        python.runs.push(Run {
            id: order.id,
            writer,
            reply,
        });
        Some(python.driver.clone())
    })
    .flatten();
    let Some(driver) = handed else {
        return; // not started: nothing to answer through
    };
    // The run's end if it changes the JavaScript environment: why, on stderr,
    // then an error that asks for a fresh worker.
    let tampered: js_sys::Array = [
        FromWorker::Out {
            id: f64::from(order.id),
            chunks: vec![(Stream::Stderr, format!("SandboxError: {TAMPERED}\n"))],
        },
        FromWorker::Done(Done {
            id: f64::from(order.id),
            status: DoneStatus::Error,
            error: Some(run_error(Some("SandboxError"), Some(TAMPERED), None)),
            truncated: false,
            duration_ms: None,
            restart: true,
        }),
    ]
    .into_iter()
    .filter_map(|reply| reply_bytes(from, reply))
    .map(JsValue::from)
    .collect();
    let arguments = [
        JsValue::from(order.id),
        JsValue::from_str(&order.code),
        JsValue::from_str(&order.stdin),
        JsValue::from(order.time_limit_ms as f64),
        tampered.into(),
    ];
    if let Err(why) = call_driver(&driver, "run", &arguments) {
        python_finish(
            order.id,
            "error",
            Some("InternalError".to_owned()),
            Some(why),
            None,
            0.0,
            true,
        );
    }
}

//! The JavaScript runner: it takes the run through a gloo-worker bridge
//! ([`ToRunner`]), hands it to the evaluator (`runner/js/evaluate.js`, in the
//! same bundle, which evaluates the program and formats values as Node does),
//! holds the output to the caps and delivers it ([`Writer`]), and reports the
//! end with the run's duration. The bundle's tail calls [`start_javascript`]
//! once, before the lockdown and any program.
//!
//! One run per worker: the page starts a fresh worker for every run, so
//! nothing a program does outlives it.

use crate::outbox::{reply_to, Reply};
use crate::writer::{Clock, Writer};
use crate::{error_text, take_channel};
use gloo_worker::{HandlerId, Registrable, Worker, WorkerScope};
use js_sys::{Array, Function, Reflect};
use pairpad_runner_protocol::messages::{
    run_error, Done, DoneStatus, FromWorker, RunOrder, ToRunner,
};
use pairpad_runner_protocol::Stream;
use std::{cell::RefCell, rc::Rc};
use wasm_bindgen::{closure::Closure, prelude::wasm_bindgen, JsCast, JsValue};

/// What the bundle hands over at start: the evaluator and the browser
/// functions taken before any program could replace them.
struct Setup {
    /// `{ run(code, stdin, write, finish) }` from evaluate.js.
    evaluator: JsValue,
    clock: Clock,
    /// The worker's `postMessage`, bound, taken before the lockdown.
    post: Function,
    /// Why this worker must refuse to run anything (the lockdown left a
    /// capability in place; a missing formatter is evaluate.js's to report).
    refusal: Option<String>,
}

thread_local! {
    static SETUP: RefCell<Option<Setup>> = const { RefCell::new(None) };
}

/// Starts the JavaScript runner: registers it with gloo-worker (which tells
/// the page it is ready). `set_timeout`, `now` and `post` are the browser's
/// own, taken before any program could replace them.
#[wasm_bindgen]
pub fn start_javascript(evaluator: JsValue, set_timeout: Function, now: Function, post: Function) {
    SETUP.with(|setup| {
        *setup.borrow_mut() = Some(Setup {
            evaluator,
            clock: Clock { set_timeout, now },
            post,
            refusal: None,
        })
    });
    JsRunner::registrar().register();
}

/// Makes the JavaScript runner refuse its run, saying why (the lockdown could
/// not remove everything).
#[wasm_bindgen]
pub fn refuse(reason: String) {
    SETUP.with(|setup| {
        if let Some(setup) = setup.borrow_mut().as_mut() {
            setup.refusal = Some(reason);
        }
    });
}

struct JsRunner {
    used: bool,
}

impl Worker for JsRunner {
    type Message = ();
    type Input = ToRunner;
    type Output = FromWorker;

    fn create(_scope: &WorkerScope<Self>) -> Self {
        JsRunner { used: false }
    }

    fn update(&mut self, _scope: &WorkerScope<Self>, _message: ()) {}

    fn received(&mut self, _scope: &WorkerScope<Self>, input: ToRunner, from: HandlerId) {
        let ToRunner::Run(order) = input else {
            return; // `Start` is for Python workers
        };
        if std::mem::replace(&mut self.used, true) {
            return; // one run per worker
        }
        let post = SETUP.with(|setup| setup.borrow().as_ref().map(|setup| setup.post.clone()));
        let Some(reply) = post.and_then(|post| reply_to(&post, &from)) else {
            return; // not started: nothing to answer through
        };
        run(order, reply);
    }
}

/// The state of the one run, shared by the callbacks evaluate.js calls.
struct Run {
    id: u32,
    writer: Writer,
    started_ms: f64,
    finished: bool,
}

/// A run that ended before the program started.
fn refused(id: u32, kind: &str, message: &str) -> FromWorker {
    FromWorker::Done(Done {
        id: f64::from(id),
        status: DoneStatus::Error,
        error: Some(run_error(Some(kind), Some(message), None)),
        truncated: false,
        duration_ms: Some(0.0),
        restart: false,
    })
}

fn run(order: RunOrder, reply: Reply) {
    let Some((evaluator, clock, refusal)) = SETUP.with(|setup| {
        setup.borrow().as_ref().map(|setup| {
            (
                setup.evaluator.clone(),
                setup.clock.clone(),
                setup.refusal.clone(),
            )
        })
    }) else {
        return reply(refused(
            order.id,
            "InternalError",
            "the runner did not start",
        ));
    };
    if let Some(refusal) = refusal {
        return reply(refused(order.id, "SandboxError", &refusal));
    }
    let run_fn = Reflect::get(&evaluator, &JsValue::from_str("run"))
        .ok()
        .and_then(|run| run.dyn_into::<Function>().ok());
    let Some(run_fn) = run_fn else {
        return reply(refused(order.id, "InternalError", "no evaluator"));
    };

    let writer = Writer::new(
        order.id,
        take_channel(),
        order
            .max_output_bytes
            .try_into()
            .unwrap_or(usize::MAX)
            .max(1),
        order
            .max_output_lines
            .try_into()
            .unwrap_or(usize::MAX)
            .max(1),
        clock.clone(),
        reply.clone(),
    );
    let state = Rc::new(RefCell::new(Run {
        id: order.id,
        writer,
        started_ms: clock.now(),
        finished: false,
    }));

    let write = {
        let state = state.clone();
        Closure::<dyn FnMut(JsValue, JsValue)>::new(move |stream: JsValue, text: JsValue| {
            let stream = if stream.as_f64() == Some(2.0) {
                Stream::Stderr
            } else {
                Stream::Stdout
            };
            let Some(text) = text.as_string() else { return };
            if let Ok(mut run) = state.try_borrow_mut() {
                if !run.finished {
                    run.writer.write(stream, &text);
                }
            }
        })
    };
    let finish = {
        let state = state.clone();
        let clock = clock.clone();
        let reply = reply.clone();
        Closure::<dyn FnMut(JsValue, JsValue, JsValue, JsValue, JsValue)>::new(
            move |status: JsValue,
                  kind: JsValue,
                  message: JsValue,
                  line: JsValue,
                  program_started: JsValue| {
                let Ok(mut run) = state.try_borrow_mut() else {
                    return;
                };
                if std::mem::replace(&mut run.finished, true) {
                    return;
                }
                run.writer.flush();
                let ok = status.as_string().as_deref() == Some("ok");
                // The program's own time, from when evaluate.js started it (after
                // compiling it), as the old worker counted; else from the order.
                let started = program_started
                    .as_f64()
                    .filter(|at| at.is_finite() && *at >= run.started_ms)
                    .unwrap_or(run.started_ms);
                let duration = ((clock.now() - started) * 10.0).round() / 10.0;
                let message = FromWorker::Done(Done {
                    id: f64::from(run.id),
                    status: if ok {
                        DoneStatus::Ok
                    } else {
                        DoneStatus::Error
                    },
                    error: (!ok).then(|| {
                        run_error(
                            kind.as_string().as_deref(),
                            message.as_string().as_deref(),
                            line.as_f64(),
                        )
                    }),
                    truncated: run.writer.truncated(),
                    duration_ms: Some(duration.max(0.0)),
                    restart: false,
                });
                drop(run);
                reply(message);
            },
        )
    };
    let arguments = Array::of4(
        &JsValue::from_str(&order.code),
        &JsValue::from_str(&order.stdin),
        write.as_ref(),
        finish.as_ref(),
    );
    // The callbacks live as long as the worker (one run; the page terminates
    // the worker after it), so they are never freed.
    write.forget();
    finish.forget();
    if let Err(error) = run_fn.apply(&evaluator, &arguments) {
        let message = error_text(&error).unwrap_or_else(|| "the evaluator failed".to_owned());
        reply(refused(order.id, "InternalError", &message));
    }
}

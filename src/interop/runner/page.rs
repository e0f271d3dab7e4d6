//! The page's code runner (browser only): starts the runner workers, hands them
//! runs, enforces the time limit, stops runs, reads their output as it streams
//! and keeps Python loaded.
//!
//! Both runners are workers reached through gloo-worker bridges (`bridge`;
//! their Rust half is the `pairpad-runner-worker` crate, `runner/worker`).
//! JavaScript runs in `/runner/js-worker.js`: a fresh worker per run, always
//! started one run ahead so a run does not wait for it; at the time limit (or
//! [`Runner::stop`]) the worker is terminated. Python runs in
//! `/runner/py-worker.js` (built from `runner/py/`; Pyodide, loaded once and
//! reused while runs leave nothing behind): at the time limit or stop it is
//! interrupted through a SharedArrayBuffer (KeyboardInterrupt); if that is not
//! honoured within 500 ms, or there is no SharedArrayBuffer, the worker is
//! terminated and Pyodide reloaded in the background. It is also replaced
//! when a run left something that could reach a later run; the next run waits
//! for the fresh one.
//! The Python worker restores Python's memory snapshot, which pairpad makes
//! when it is built and serves beside Pyodide (`runner/py/python.js`).
//!
//! The time limit counts from the moment a run is handed to its worker, so a
//! worker busy with something else (that never starts the run) still gets the
//! run stopped, and is replaced.
//!
//! Output: workers write UTF-8 into a SharedArrayBuffer that this side polls
//! every 16 ms (so output shows while the program is busy, and the last lines
//! before an endless loop survive the worker's termination); without
//! cross-origin isolation they post batches instead. Either way the page holds
//! the run to its caps again ([`OutputCaps`]).
//!
//! Callbacks (output, Python's status, a run's end) are called only after the
//! runner's state is released, so they may call back into the runner.

use super::bridge::{self, BridgedWorker};
use super::channel::{allocate_shared, shared_memory_available, Channel};
use super::protocol::{self, RunRequest};
use super::{PythonStatus, RunError, RunLimits, RunOutcome};
use crate::domain::{
    run::{RunStatus, Stream},
    Language,
};
use futures_channel::oneshot;
use js_sys::{Atomics, Int32Array, Object, Reflect, SharedArrayBuffer};
use leptos::prelude::{
    set_interval_with_handle, set_timeout_with_handle, IntervalHandle, TimeoutHandle,
};
use pairpad_runner_protocol::{
    messages::{Done, DoneStatus, FromWorker, LoadState, ToRunner},
    output::{time_limit_notice, OutputCaps, STOPPED_NOTICE},
};
use std::{
    cell::{Cell, RefCell},
    rc::{Rc, Weak},
    time::Duration,
};
use wasm_bindgen::{closure::Closure, JsCast, JsValue};

const JS_WORKER: &str = "/runner/js-worker.js";
const PY_WORKER: &str = "/runner/py-worker.js";
const POLL_MS: u64 = 16;
/// Polls read at most this much, so a flood of output is spread over frames
/// (the final read takes the rest).
const POLL_BUDGET_BYTES: u32 = 64 * 1024;
/// How long an interrupted Python program has to honour the interrupt.
const INTERRUPT_GRACE_MS: u64 = 500;
/// Code that catches KeyboardInterrupt gets it again this often until the grace ends.
const RESIGNAL_MS: u64 = 100;
/// Loading that makes no progress for this long is reported as failed.
const LOAD_SILENCE_MS: u64 = 60_000;
/// What the page writes to Pyodide's interrupt buffer.
const SIGINT: i32 = 2;
/// The smallest limit on a runner worker's reply (everything but output
/// batches is far smaller).
const MIN_REPLY_LIMIT: u32 = 64 * 1024;

fn now() -> f64 {
    web_sys::window()
        .and_then(|window| window.performance())
        .map(|performance| performance.now())
        .unwrap_or_else(js_sys::Date::now)
}

/// A callback the runner calls when it has let go of its state.
enum Effect {
    Output(Rc<dyn Fn(Stream, String)>, Stream, String),
    PythonStatus(Rc<dyn Fn(PythonStatus)>, PythonStatus),
    Finished(oneshot::Sender<RunOutcome>, RunOutcome),
}

impl Effect {
    fn perform(self) {
        match self {
            Effect::Output(on_output, stream, text) => on_output(stream, text),
            Effect::PythonStatus(on_status, status) => on_status(status),
            Effect::Finished(sender, outcome) => {
                // The caller may have stopped waiting: nothing to tell then.
                let _ = sender.send(outcome);
            }
        }
    }
}

/// A started worker; dropping it terminates the worker.
struct WorkerHandle {
    serial: u32,
    /// Dropped after `drop` below has stopped watching for errors: it
    /// terminates the worker, then lets go of the bridge.
    bridge: BridgedWorker,
    /// Set when the worker failed before it was used (404, CSP, COEP).
    failed: Rc<Cell<bool>>,
    _on_error: Closure<dyn FnMut(web_sys::Event)>,
}

impl Drop for WorkerHandle {
    fn drop(&mut self) {
        self.bridge.native().set_onerror(None);
    }
}

/// A timer's delay, at most what browsers accept (2^31 - 1 ms, about 24.8
/// days; Leptos throws beyond it).
fn timer_delay(ms: u64) -> Duration {
    Duration::from_millis(ms.min(i32::MAX as u64))
}

/// A pending timer or interval; cleared when dropped.
enum Timer {
    Once(TimeoutHandle),
    Repeating(IntervalHandle),
}

impl Drop for Timer {
    fn drop(&mut self) {
        match self {
            Timer::Once(handle) => handle.clear(),
            Timer::Repeating(handle) => handle.clear(),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// Waiting for Python to load.
    Waiting,
    /// Handed to its worker.
    Running,
}

struct Run {
    id: u32,
    language: Language,
    limits: RunLimits,
    /// Code and stdin, until the run is handed to its worker.
    request: Option<(String, String)>,
    caps: OutputCaps,
    phase: Phase,
    /// The time limit or a stop ended this run; its worker is being stopped.
    ending: Option<RunStatus>,
    started_at: f64,
    timers: Vec<Timer>,
    channel: Option<Channel>,
    /// JavaScript: the run's own worker (terminated when the run ends).
    js_worker: Option<WorkerHandle>,
    /// Python: the worker the run was handed to.
    python_serial: Option<u32>,
    on_output: Rc<dyn Fn(Stream, String)>,
    finished: Option<oneshot::Sender<RunOutcome>>,
}

impl Run {
    /// Hands the run's code and stdin to `worker` (once).
    fn hand_to(&mut self, worker: &WorkerHandle) {
        let (code, stdin) = self.request.take().unwrap_or_default();
        let request = RunRequest {
            id: self.id,
            code: &code,
            stdin: &stdin,
            limits: self.limits,
        };
        // Beside first: the worker attaches the channel before the run
        // order arrives (without one it posts the output back instead).
        if let Some(channel) = &self.channel {
            worker.bridge.post_beside(&channel.buffer);
        }
        worker.bridge.send(protocol::run_order(&request));
    }
}

struct Python {
    worker: WorkerHandle,
    /// Pyodide's interrupt buffer: [0] the signal, [1] why (1 time limit, 2 stop).
    interrupt: Option<Int32Array>,
    ready: bool,
    watchdog: Option<Timer>,
}

struct Inner {
    this: Weak<RefCell<Inner>>,
    shared_memory: bool,
    next_serial: u32,
    next_run_id: u32,
    run: Option<Run>,
    js_spare: Option<WorkerHandle>,
    python: Option<Python>,
    python_status: Option<PythonStatus>,
    on_python_status: Option<Rc<dyn Fn(PythonStatus)>>,
    effects: Vec<Effect>,
    /// The largest reply a runner worker may send (bytes); it bounds the
    /// replies of both workers, JavaScript and Python. Set from the byte cap
    /// of the run that starts: a batch of output is at most that, with
    /// framing.
    reply_limit: Rc<Cell<u32>>,
    disposed: bool,
}

/// Runs `change` on the runner's state, then performs the callbacks it queued.
fn act(shared: &Rc<RefCell<Inner>>, change: impl FnOnce(&mut Inner)) {
    let effects = match shared.try_borrow_mut() {
        Ok(mut inner) => {
            change(&mut inner);
            std::mem::take(&mut inner.effects)
        }
        // Only a change that calls back into the runner could get here, and
        // none does (callbacks run after the change): say so rather than panic.
        Err(_) => {
            leptos::logging::warn!("pairpad: the code runner was called from inside itself");
            return;
        }
    };
    for effect in effects {
        effect.perform();
    }
}

/// `act` from a callback that holds only a weak reference (timers, workers).
fn act_weak(weak: &Weak<RefCell<Inner>>, change: impl FnOnce(&mut Inner)) {
    if let Some(shared) = weak.upgrade() {
        act(&shared, change);
    }
}

impl Inner {
    fn after(&self, delay_ms: u64, then: impl FnOnce(&mut Inner) + 'static) -> Option<Timer> {
        let weak = self.this.clone();
        set_timeout_with_handle(move || act_weak(&weak, then), timer_delay(delay_ms))
            .ok()
            .map(Timer::Once)
    }

    fn every(&self, period_ms: u64, tick: impl Fn(&mut Inner) + 'static) -> Option<Timer> {
        let weak = self.this.clone();
        let tick = Rc::new(tick);
        set_interval_with_handle(
            move || {
                let tick = tick.clone();
                act_weak(&weak, move |inner| tick(inner));
            },
            timer_delay(period_ms),
        )
        .ok()
        .map(Timer::Repeating)
    }

    /// A new Python worker, started, or the browser's reason for refusing it.
    /// `interrupt` goes beside the bridge before the start, as the worker
    /// takes it before it starts Python. (gloo
    /// cannot name a worker; the name only labelled it in developer tools.)
    fn spawn_python_worker(
        &mut self,
        interrupt: Option<&SharedArrayBuffer>,
    ) -> Result<WorkerHandle, String> {
        let worker = self.spawn_worker(PY_WORKER, true)?;
        if let Some(interrupt) = interrupt {
            let beside = Object::new();
            // Setting a data property on a fresh plain object cannot fail.
            let _ = Reflect::set(&beside, &JsValue::from_str("interrupt"), interrupt);
            worker.bridge.post_beside(&beside);
        }
        worker.bridge.send(ToRunner::Start);
        Ok(worker)
    }

    /// The JavaScript runner: a new worker, started one run ahead; the run
    /// order is its start.
    fn spawn_js_worker(&mut self) -> Result<WorkerHandle, String> {
        self.spawn_worker(JS_WORKER, false)
    }

    /// A new runner worker behind a gloo-worker bridge (a module script if
    /// `module`), wired to this runner and watched for failure.
    fn spawn_worker(&mut self, url: &str, module: bool) -> Result<WorkerHandle, String> {
        self.next_serial += 1;
        let serial = self.next_serial;
        let weak = self.this.clone();
        let bridged = bridge::spawn(
            url,
            module,
            self.reply_limit.clone(),
            move |message: FromWorker| {
                // Untrusted: the program in the worker may have forged it.
                let message = message.bounded();
                act_weak(&weak, move |inner| inner.on_message(serial, message));
            },
        )?;
        Ok(self.handle(serial, bridged))
    }

    /// Wraps a started worker, watching it for failure.
    fn handle(&mut self, serial: u32, bridge: BridgedWorker) -> WorkerHandle {
        let failed = Rc::new(Cell::new(false));
        let weak = self.this.clone();
        let failed_flag = failed.clone();
        let on_error = Closure::<dyn FnMut(web_sys::Event)>::new(move |event: web_sys::Event| {
            event.prevent_default();
            failed_flag.set(true);
            act_weak(&weak, move |inner| inner.on_worker_error(serial));
        });
        bridge
            .native()
            .set_onerror(Some(on_error.as_ref().unchecked_ref()));
        WorkerHandle {
            serial,
            bridge,
            failed,
            _on_error: on_error,
        }
    }

    fn on_message(&mut self, serial: u32, message: FromWorker) {
        if self.python.as_ref().map(|python| python.worker.serial) == Some(serial) {
            self.on_python_message(serial, message);
        } else if self.run_in(serial) {
            self.on_run_message(message);
        }
    }

    fn on_worker_error(&mut self, serial: u32) {
        let run_js_worker = self
            .run
            .as_ref()
            .and_then(|run| run.js_worker.as_ref())
            .map(|worker| worker.serial);
        if run_js_worker == Some(serial) {
            self.fail("InternalError", "the JavaScript worker failed");
        } else if let Some(python) = &self.python {
            if python.worker.serial == serial && !python.ready {
                self.python_failed("the Python worker failed to start");
            }
        }
    }

    /// Whether the current run is in the worker `serial`.
    fn run_in(&self, serial: u32) -> bool {
        self.run.as_ref().is_some_and(|run| {
            run.js_worker.as_ref().map(|worker| worker.serial) == Some(serial)
                || run.python_serial == Some(serial)
        })
    }

    // ---- JavaScript ----------------------------------------------------------

    fn spawn_js_spare(&mut self) {
        if !self.disposed {
            // A refusal shows when a run needs the worker.
            self.js_spare = self.spawn_js_worker().ok();
        }
    }

    fn take_js_worker(&mut self) -> Option<WorkerHandle> {
        let mut worker = self.js_spare.take().or_else(|| {
            self.spawn_js_spare();
            self.js_spare.take()
        });
        if worker.as_ref().is_some_and(|worker| worker.failed.get()) {
            // Retry once, now.
            self.spawn_js_spare();
            worker = self.js_spare.take();
        }
        worker.filter(|worker| !worker.failed.get())
    }

    fn start_js(&mut self) {
        let Some(worker) = self.take_js_worker() else {
            self.fail(
                "InternalError",
                "the JavaScript worker could not be started",
            );
            return;
        };
        // The next run's worker starts now, in the background.
        self.spawn_js_spare();
        let Some(run) = self.run.as_mut() else { return };
        run.hand_to(&worker);
        run.js_worker = Some(worker);
        self.mark_running();
    }

    // ---- Python --------------------------------------------------------------

    fn ensure_python(&mut self, detail: &str) {
        if self.python.is_some() || self.disposed {
            return;
        }
        self.set_python_status(PythonStatus::Loading(detail.to_owned()));
        let buffer = self.shared_memory.then(|| allocate_shared(8)).flatten();
        let worker = match self.spawn_python_worker(buffer.as_ref()) {
            Ok(worker) => worker,
            Err(why) => {
                self.python_failed(&format!("could not start the Python worker: {why}"));
                return;
            }
        };
        let interrupt = buffer.map(|buffer| Int32Array::new(&buffer));
        self.python = Some(Python {
            worker,
            interrupt,
            ready: false,
            watchdog: None,
        });
        self.arm_load_watchdog();
    }

    /// Loading that goes quiet for too long (no progress, no ready) is reported
    /// as an error.
    fn arm_load_watchdog(&mut self) {
        let Some(serial) = self.python.as_ref().map(|python| python.worker.serial) else {
            return;
        };
        let watchdog = self.after(LOAD_SILENCE_MS, move |inner| {
            let loading = inner
                .python
                .as_ref()
                .is_some_and(|python| python.worker.serial == serial && !python.ready);
            if loading {
                inner.python_failed("Python did not finish loading (no progress for 60 s)");
            }
        });
        if let Some(python) = self.python.as_mut() {
            python.watchdog = watchdog;
        }
    }

    fn on_python_message(&mut self, serial: u32, message: FromWorker) {
        match message {
            FromWorker::Status { state, detail } => {
                let ready = self.python.as_ref().is_some_and(|python| python.ready);
                if let Some(python) = self.python.as_mut() {
                    python.watchdog = None;
                }
                match state {
                    LoadState::Ready => {
                        if let Some(python) = self.python.as_mut() {
                            python.ready = true;
                        }
                        self.set_python_status(PythonStatus::Ready);
                        self.start_waiting_python_run();
                    }
                    LoadState::Error => self.python_failed(if detail.is_empty() {
                        "Python failed to load"
                    } else {
                        &detail
                    }),
                    LoadState::Loading if !ready => {
                        self.arm_load_watchdog();
                        self.set_python_status(PythonStatus::Loading(detail));
                    }
                    LoadState::Loading => {}
                }
            }
            // Python ran between runs. A run in this worker ends with a restart anyway.
            FromWorker::Tainted => {
                if !self.run_in(serial) {
                    self.restart_python();
                }
            }
            message => {
                if self.run_in(serial) {
                    self.on_run_message(message);
                }
            }
        }
    }

    fn python_failed(&mut self, message: &str) {
        // Dropping the worker terminates it; the next preload or run tries again.
        self.python = None;
        self.set_python_status(PythonStatus::Failed(message.to_owned()));
        if self.waiting_for_python() {
            self.fail("PythonLoadError", message);
        }
    }

    fn restart_python(&mut self) {
        if self.python.take().is_some() && self.waiting_for_python() {
            self.fail("PythonLoadError", "Python was restarted");
        }
        self.ensure_python("Restarting Python…");
    }

    fn waiting_for_python(&self) -> bool {
        self.run
            .as_ref()
            .is_some_and(|run| run.language == Language::Python && run.phase == Phase::Waiting)
    }

    fn start_python(&mut self) {
        self.ensure_python("Starting Python…");
        match &self.python {
            Some(python) if python.ready => self.start_waiting_python_run(),
            Some(_) => {} // started when Python reports ready
            None => {
                if self.waiting_for_python() {
                    self.fail("PythonLoadError", "Python is not available");
                }
            }
        }
    }

    fn start_waiting_python_run(&mut self) {
        if !self.waiting_for_python() {
            return;
        }
        let (Some(python), Some(run)) = (self.python.as_ref(), self.run.as_mut()) else {
            return;
        };
        run.hand_to(&python.worker);
        run.python_serial = Some(python.worker.serial);
        // Running from now, whether or not the worker answers.
        self.mark_running();
    }

    fn set_python_status(&mut self, status: PythonStatus) {
        if self.python_status.as_ref() == Some(&status) {
            return;
        }
        self.python_status = Some(status.clone());
        if let Some(on_status) = &self.on_python_status {
            self.effects
                .push(Effect::PythonStatus(on_status.clone(), status));
        }
    }

    // ---- a run ---------------------------------------------------------------

    fn start_run(
        &mut self,
        language: Language,
        code: String,
        stdin: String,
        limits: RunLimits,
        on_output: Rc<dyn Fn(Stream, String)>,
        finished: oneshot::Sender<RunOutcome>,
    ) {
        if self.run.is_some() || self.disposed {
            // Runner::run checked this already, but this change may have waited
            // its turn: the caller hears that the run was abandoned.
            drop(finished);
            return;
        }
        // At worst every byte of output is a chunk of its own (13 bytes of
        // framing in gloo-worker's encoding).
        let limit = limits.max_output_bytes.saturating_mul(13) + MIN_REPLY_LIMIT as usize;
        self.reply_limit
            .set(u32::try_from(limit).unwrap_or(u32::MAX));
        self.next_run_id += 1;
        self.run = Some(Run {
            id: self.next_run_id,
            language,
            limits,
            request: Some((code, stdin)),
            caps: OutputCaps::new(limits.max_output_bytes, limits.max_output_lines),
            phase: Phase::Waiting,
            ending: None,
            started_at: 0.0,
            timers: Vec::new(),
            channel: self
                .shared_memory
                .then(|| Channel::new(limits.max_output_bytes))
                .flatten(),
            js_worker: None,
            python_serial: None,
            on_output,
            finished: Some(finished),
        });
        match language {
            Language::JavaScript => self.start_js(),
            Language::Python => self.start_python(),
        }
    }

    fn mark_running(&mut self) {
        let python_self_enforced = self
            .python
            .as_ref()
            .is_none_or(|python| python.interrupt.is_none());
        let Some(run) = self.run.as_mut().filter(|run| run.phase == Phase::Waiting) else {
            return;
        };
        run.phase = Phase::Running;
        run.started_at = now();
        // Without an interrupt buffer the Python worker enforces the limit
        // itself; this timer is then the backstop that restarts it.
        let grace = if run.language == Language::Python && python_self_enforced {
            INTERRUPT_GRACE_MS
        } else {
            0
        };
        let id = run.id;
        let limit = run.limits.time_limit_ms + grace;
        let polls = run.channel.is_some();
        let timer = self.after(limit, move |inner| {
            if inner.run_is(id) {
                inner.halt(RunStatus::Timeout);
            }
        });
        let poll = polls.then(|| {
            self.every(POLL_MS, move |inner| {
                inner.read_channel(id, POLL_BUDGET_BYTES)
            })
        });
        if let Some(run) = self.run.as_mut() {
            run.timers.extend(timer);
            run.timers.extend(poll.flatten());
        }
    }

    fn run_is(&self, id: u32) -> bool {
        self.run.as_ref().is_some_and(|run| run.id == id)
    }

    fn on_run_message(&mut self, message: FromWorker) {
        let Some((run_id, phase)) = self.run.as_ref().map(|run| (run.id, run.phase)) else {
            return;
        };
        let id = f64::from(run_id);
        match message {
            FromWorker::Wake { id: for_run } if for_run == id && phase == Phase::Running => {
                self.read_channel(run_id, POLL_BUDGET_BYTES);
            }
            FromWorker::Out {
                id: for_run,
                chunks,
            } if for_run == id => {
                // Whatever the run wrote to its channel came first.
                if phase == Phase::Running {
                    self.read_channel(run_id, u32::MAX);
                }
                for (stream, text) in chunks {
                    self.deliver(stream, &text);
                }
            }
            FromWorker::Done(done) if done.id == id => self.on_done(done),
            _ => {}
        }
    }

    fn on_done(&mut self, done: Done) {
        let Some(id) = self.run.as_ref().map(|run| run.id) else {
            return;
        };
        self.read_channel(id, u32::MAX);
        if done.truncated {
            self.mark_truncated();
        }
        let is_python = self
            .run
            .as_ref()
            .is_some_and(|run| run.language == Language::Python);
        if is_python && done.restart {
            self.restart_python();
        }
        let Some((ending, limit)) = self
            .run
            .as_ref()
            .map(|run| (run.ending, run.limits.time_limit_ms))
        else {
            return;
        };
        if let Some(ending) = ending {
            // We asked for the interrupt: report it as the timeout or stop it was.
            self.finish(ending, None, done.duration_ms);
        } else if matches!(done.status, DoneStatus::Interrupted | DoneStatus::Timeout) {
            self.notice(&time_limit_notice(limit));
            self.finish(RunStatus::Timeout, None, done.duration_ms);
        } else if done.status == DoneStatus::Ok {
            self.finish(RunStatus::Ok, None, done.duration_ms);
        } else {
            self.finish(RunStatus::Error, done.error, done.duration_ms);
        }
    }

    /// The time limit or [`Runner::stop`]: JavaScript workers are terminated;
    /// Python is interrupted first.
    fn halt(&mut self, reason: RunStatus) {
        let Some(run) = self.run.as_mut().filter(|run| run.ending.is_none()) else {
            return;
        };
        run.ending = Some(reason);
        let (id, phase, language, limit) =
            (run.id, run.phase, run.language, run.limits.time_limit_ms);
        let python_serial = run.python_serial;
        self.read_channel(id, u32::MAX);
        self.notice(&if reason == RunStatus::Timeout {
            time_limit_notice(limit)
        } else {
            STOPPED_NOTICE.to_owned()
        });
        if phase == Phase::Waiting {
            // Still waiting for Python to load: nothing runs yet, loading carries on.
            self.finish(reason, None, Some(0.0));
            return;
        }
        if language == Language::JavaScript {
            self.finish(reason, None, None);
            return;
        }
        let interrupt = self
            .python
            .as_ref()
            .filter(|python| Some(python.worker.serial) == python_serial)
            .and_then(|python| python.interrupt.clone());
        let Some(interrupt) = interrupt else {
            self.restart_python();
            self.finish(reason, None, None);
            return;
        };
        let why = if reason == RunStatus::Timeout { 1 } else { 2 };
        let signal = move || {
            let _ = Atomics::store(&interrupt, 1, why);
            let _ = Atomics::store(&interrupt, 0, SIGINT);
        };
        signal();
        let resignal = self.every(RESIGNAL_MS, move |_| signal());
        let grace = self.after(INTERRUPT_GRACE_MS, move |inner| {
            if inner.run_is(id) {
                inner.restart_python();
                inner.finish(reason, None, None);
            }
        });
        if let Some(run) = self.run.as_mut() {
            run.timers.extend(resignal);
            run.timers.extend(grace);
        }
    }

    fn fail(&mut self, kind: &str, message: &str) {
        self.deliver(Stream::Stderr, &format!("{kind}: {message}\n"));
        let error = RunError {
            kind: kind.to_owned(),
            message: message.to_owned(),
            line: None,
        };
        self.finish(RunStatus::Error, Some(error), Some(0.0));
    }

    fn finish(&mut self, status: RunStatus, error: Option<RunError>, duration_ms: Option<f64>) {
        let Some(id) = self.run.as_ref().map(|run| run.id) else {
            return;
        };
        self.read_channel(id, u32::MAX);
        // Dropping the run clears its timers and terminates its JavaScript worker.
        let Some(mut run) = self.run.take() else {
            return;
        };
        let elapsed = if run.started_at > 0.0 {
            now() - run.started_at
        } else {
            0.0
        };
        let duration = duration_ms.unwrap_or(elapsed);
        if let Some(finished) = run.finished.take() {
            self.effects.push(Effect::Finished(
                finished,
                RunOutcome {
                    status,
                    duration_ms: (duration * 10.0).round() / 10.0,
                    truncated: run.caps.truncated(),
                    error,
                },
            ));
        }
    }

    // ---- output --------------------------------------------------------------

    /// Reads the run's channel (at most `budget` bytes) and shows what it held.
    fn read_channel(&mut self, id: u32, budget: u32) {
        let Some(run) = self.run.as_mut().filter(|run| run.id == id) else {
            return;
        };
        let Some(channel) = run.channel.as_mut() else {
            return;
        };
        let (pieces, truncated) = channel.read(budget);
        for (stream, text) in pieces {
            self.deliver(stream, &text);
        }
        if truncated {
            self.mark_truncated();
        }
    }

    fn deliver(&mut self, stream: Stream, text: &str) {
        self.with_caps(|caps, out| caps.deliver(stream, text, out));
    }

    fn mark_truncated(&mut self) {
        self.with_caps(|caps, out| caps.mark_truncated(out));
    }

    fn notice(&mut self, text: &str) {
        self.with_caps(|caps, out| caps.notice(text, out));
    }

    fn with_caps(&mut self, show: impl FnOnce(&mut OutputCaps, &mut Vec<(Stream, String)>)) {
        let Some(run) = self.run.as_mut() else { return };
        let mut shown = Vec::new();
        show(&mut run.caps, &mut shown);
        for (stream, text) in shown {
            self.effects
                .push(Effect::Output(run.on_output.clone(), stream, text));
        }
    }

    fn dispose(&mut self) {
        if self.disposed {
            return;
        }
        self.disposed = true;
        self.finish(RunStatus::Stopped, None, None);
        self.js_spare = None;
        self.python = None;
        self.on_python_status = None;
    }
}

/// The page's code runner; its workers live as long as it does.
pub struct Runner {
    shared: Rc<RefCell<Inner>>,
}

impl Runner {
    /// A runner, with a JavaScript worker started for the first run.
    pub fn new() -> Option<Runner> {
        let shared = Rc::new_cyclic(|this| {
            RefCell::new(Inner {
                this: this.clone(),
                shared_memory: shared_memory_available(),
                next_serial: 0,
                next_run_id: 0,
                run: None,
                js_spare: None,
                python: None,
                python_status: None,
                on_python_status: None,
                effects: Vec::new(),
                reply_limit: Rc::new(Cell::new(MIN_REPLY_LIMIT)),
                disposed: false,
            })
        });
        act(&shared, |inner| inner.spawn_js_spare());
        Some(Runner { shared })
    }

    /// Starts loading Python in the background; `on_status` hears progress
    /// (and at once where it stands, if it is loading or loaded already).
    pub fn preload_python(&mut self, on_status: impl Fn(PythonStatus) + 'static) {
        let on_status: Rc<dyn Fn(PythonStatus)> = Rc::new(on_status);
        act(&self.shared, move |inner| {
            if inner.disposed {
                return;
            }
            inner.on_python_status = Some(on_status.clone());
            match (&inner.python, &inner.python_status) {
                (Some(_), Some(status)) => inner
                    .effects
                    .push(Effect::PythonStatus(on_status, status.clone())),
                _ => inner.ensure_python("Starting Python…"),
            }
        });
    }

    /// Runs `code`; output streams to `on_output` as it is printed. Returns how
    /// the run ended (an error string if the runner itself failed, e.g.
    /// because a run is already going).
    pub fn run(
        &self,
        language: Language,
        code: &str,
        stdin: &str,
        limits: RunLimits,
        on_output: impl Fn(Stream, String) + 'static,
    ) -> impl std::future::Future<Output = Result<RunOutcome, String>> + 'static {
        let (sender, receiver) = oneshot::channel();
        let busy = match self.shared.try_borrow() {
            Ok(inner) if inner.disposed => Some("the runner is closed"),
            Ok(inner) if inner.run.is_some() => Some("a run is already in progress"),
            Ok(_) => None,
            Err(_) => Some("the runner is busy"),
        };
        if busy.is_none() {
            let (code, stdin) = (code.to_owned(), stdin.to_owned());
            let on_output: Rc<dyn Fn(Stream, String)> = Rc::new(on_output);
            act(&self.shared, move |inner| {
                inner.start_run(language, code, stdin, limits, on_output, sender)
            });
        }
        async move {
            if let Some(busy) = busy {
                return Err(busy.to_owned());
            }
            receiver
                .await
                .map_err(|_| "the run was abandoned".to_owned())
        }
    }

    /// Stops the current run.
    pub fn stop(&self) {
        act(&self.shared, |inner| inner.halt(RunStatus::Stopped));
    }

    pub fn is_running(&self) -> bool {
        self.shared
            .try_borrow()
            .map(|inner| inner.run.is_some())
            .unwrap_or(true)
    }
}

impl Drop for Runner {
    fn drop(&mut self) {
        act(&self.shared, |inner| inner.dispose());
    }
}

//! A runner worker through a gloo-worker bridge (browser only): spawning it
//! with its native `Worker` in hand, a gate in front of gloo's decoder, and
//! what goes beside the bridge. Both runners speak this way: JavaScript
//! (`/runner/js-worker.js`, a classic worker) and Python
//! (`/runner/py-worker.js`, a module worker: it imports Pyodide's ES module);
//! the Rust half of both is the `pairpad-runner-worker` crate.
//!
//! - gloo-worker keeps the native `Worker` private, so a bridge cannot stop a
//!   program stuck in `while (true)`. [`spawn`] swaps the global `Worker`
//!   constructor for a Proxy during the (synchronous) spawn and keeps what it
//!   makes, so the page can `terminate()` it.
//! - gloo's codec panics on bytes it cannot decode (which ends the page). The
//!   worker's lockdown leaves a program no way to post, and the gate is the
//!   wall behind that: only a private copy of bytes that decode as a runner's
//!   reply (`pairpad_runner_protocol::reply`) reaches gloo's decoder, in a new
//!   event (a view onto shared memory could change between check and decode).
//! - A SharedArrayBuffer cannot pass through gloo's codec: the run's output
//!   channel and Python's interrupt buffer are posted beside the bridge
//!   ([`BridgedWorker::post_beside`]). What goes beside is posted at once,
//!   while the bridge may hold its messages until the worker has loaded: what
//!   is posted beside first reaches the worker before the message that needs
//!   it.

use gloo_worker::{Spawnable, WorkerBridge};
use js_sys::{Array, ArrayBuffer, Function, Object, Proxy, Reflect, Uint8Array};
use pairpad_runner_protocol::{
    bridge::RunnerEndpoint,
    messages::{FromWorker, ToRunner},
    reply::is_runner_reply,
};
use std::{
    cell::{Cell, RefCell},
    rc::Rc,
};
use wasm_bindgen::{closure::Closure, JsCast, JsValue};

/// A runner worker and its bridge. Dropping it terminates the worker.
pub struct BridgedWorker {
    worker: web_sys::Worker,
    bridge: Option<WorkerBridge<RunnerEndpoint>>,
    _gate: Closure<dyn FnMut(web_sys::MessageEvent)>,
}

impl BridgedWorker {
    /// The native worker (for its error events).
    pub fn native(&self) -> &web_sys::Worker {
        &self.worker
    }

    pub fn send(&self, message: ToRunner) {
        if let Some(bridge) = &self.bridge {
            bridge.send(message);
        }
    }

    /// Posts `value` outside the bridge (the worker's bundle takes it).
    pub fn post_beside(&self, value: &JsValue) {
        // Posting to a worker that died is a no-op.
        let _ = self.worker.post_message(value);
    }
}

impl Drop for BridgedWorker {
    fn drop(&mut self) {
        // Terminate first: the bridge's own drop then posts its goodbye to a
        // worker that is gone (a no-op) instead of one still running.
        self.worker.terminate();
        self.worker.set_onmessage(None);
        self.bridge.take();
    }
}

/// Starts the runner worker at `url` (a script that registers with
/// gloo-worker itself; a module script if `module`); `on_reply` gets its
/// replies. Replies longer than `max_reply_bytes` (read at each message) are
/// dropped. `Err` holds the browser's reason if it refused to create the
/// worker.
pub fn spawn(
    url: &str,
    module: bool,
    max_reply_bytes: Rc<Cell<u32>>,
    on_reply: impl Fn(FromWorker) + 'static,
) -> Result<BridgedWorker, String> {
    let bridge = RefCell::new(None);
    let worker = keeping_worker(|| {
        let bridge_made = RunnerEndpoint::spawner()
            .callback(on_reply)
            .with_loader(true)
            .as_module(module)
            .spawn(url);
        *bridge.borrow_mut() = Some(bridge_made);
    })?;
    // gloo set its decoder as the worker's onmessage: put the gate in front.
    let decoder = worker.onmessage();
    let gate =
        Closure::<dyn FnMut(web_sys::MessageEvent)>::new(move |event: web_sys::MessageEvent| {
            let Some(decoder) = &decoder else { return };
            let data = event.data();
            let Some(bytes) = data.dyn_ref::<Uint8Array>() else {
                return;
            };
            if !bytes.buffer().is_instance_of::<ArrayBuffer>()
                || bytes.length() > max_reply_bytes.get()
            {
                return;
            }
            let copy = bytes.to_vec();
            if !is_runner_reply(&copy) {
                return;
            }
            let init = web_sys::MessageEventInit::new();
            init.set_data(&Uint8Array::from(copy.as_slice()));
            if let Ok(checked) = web_sys::MessageEvent::new_with_event_init_dict("message", &init) {
                let _ = decoder.call1(&JsValue::UNDEFINED, &checked);
            }
        });
    worker.set_onmessage(Some(gate.as_ref().unchecked_ref()));
    Ok(BridgedWorker {
        worker,
        bridge: bridge.into_inner(),
        _gate: gate,
    })
}

/// Runs `spawn` with the global `Worker` constructor replaced by a Proxy that
/// keeps the worker it constructs; puts the constructor back before returning.
/// If the browser refuses to construct it, the Proxy hands gloo an inert
/// stand-in (gloo panics on a refusal, and a panic ends the page) and this
/// returns the reason.
fn keeping_worker(spawn: impl FnOnce()) -> Result<web_sys::Worker, String> {
    let global = js_sys::global();
    let name = JsValue::from_str("Worker");
    let constructor = Reflect::get(&global, &name)
        .ok()
        .filter(|constructor| constructor.is_function())
        .ok_or("this browser has no Web Workers")?;
    let made: Rc<RefCell<Option<Result<JsValue, JsValue>>>> = Rc::default();
    let construct = {
        let made = made.clone();
        Closure::<dyn FnMut(JsValue, Array, JsValue) -> JsValue>::new(
            move |target: JsValue, arguments: Array, new_target: JsValue| {
                let constructed = Reflect::construct_with_new_target(
                    target.unchecked_ref::<Function>(),
                    &arguments,
                    new_target.unchecked_ref::<Function>(),
                );
                let handed = match &constructed {
                    Ok(worker) => worker.clone(),
                    Err(_) => inert_worker(),
                };
                *made.borrow_mut() = Some(constructed);
                handed
            },
        )
    };
    let traps = Object::new();
    Reflect::set(&traps, &JsValue::from_str("construct"), construct.as_ref())
        .map_err(|_| "could not watch the Worker constructor")?;
    let proxy = Proxy::new(&constructor, &traps);
    Reflect::set(&global, &name, &proxy).map_err(|_| "could not watch the Worker constructor")?;
    spawn();
    let _ = Reflect::set(&global, &name, &constructor);
    let made = made.borrow_mut().take();
    match made {
        Some(Ok(worker)) => Ok(worker.unchecked_into()),
        Some(Err(error)) => Err(error
            .dyn_ref::<js_sys::Error>()
            .map(|error| String::from(error.message()))
            .or_else(|| error.as_string())
            .unwrap_or_else(|| "the browser refused it".to_owned())),
        None => Err("no worker was constructed".to_owned()),
    }
}

/// An object that takes what gloo does with a worker (messages, handlers,
/// terminate) and does nothing.
fn inert_worker() -> JsValue {
    let object = Object::new();
    let nothing = Closure::<dyn Fn()>::new(|| {}).into_js_value();
    for method in [
        "postMessage",
        "terminate",
        "addEventListener",
        "removeEventListener",
    ] {
        let _ = Reflect::set(&object, &JsValue::from_str(method), &nothing);
    }
    object.into()
}

//! Where a worker's replies go: gloo-worker's reply format, for the bridge
//! that asked, posted through the worker's `postMessage` as the bundle took it
//! before the lockdown (which then removes it from the global object, so a
//! program can neither post to the page nor intercept the runner's replies).

use gloo_worker::HandlerId;
use js_sys::{Function, Uint8Array};
use pairpad_runner_protocol::{
    messages::FromWorker,
    reply::{encode_reply, handler_number},
};
use std::rc::Rc;
use wasm_bindgen::JsValue;

/// Sends one reply to the page.
pub type Reply = Rc<dyn Fn(FromWorker)>;

/// The replies to the bridge `to`, posted through `post` (the worker's own
/// `postMessage`, bound); `None` if gloo's handler id is not one this crate
/// can encode.
pub fn reply_to(post: &Function, to: &HandlerId) -> Option<Reply> {
    let handler = handler_number(to)?;
    let post = post.clone();
    Some(Rc::new(move |message: FromWorker| {
        // Posting plain bytes to the page does not fail.
        let _ = post.call1(&JsValue::UNDEFINED, &bytes_for_page(handler, message));
    }))
}

/// `message` as the bytes of a reply to the bridge `to`, made now to be posted
/// later by the JavaScript half (see `runner/py/python.js`, quit).
#[cfg(feature = "python")]
pub fn reply_bytes(to: &HandlerId, message: FromWorker) -> Option<Uint8Array> {
    Some(bytes_for_page(handler_number(to)?, message))
}

fn bytes_for_page(handler: usize, message: FromWorker) -> Uint8Array {
    Uint8Array::from(encode_reply(handler, message).as_slice())
}

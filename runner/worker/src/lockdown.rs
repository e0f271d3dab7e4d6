//! The lockdown both runner workers apply before any program runs: network,
//! storage, messaging and nested-worker APIs are deleted from the worker's
//! global object and everything on its prototype chain (and some from
//! `navigator`), so neither a JavaScript program nor Python's `js` module can
//! reach them. The worker's CSP is the second wall. The JavaScript runner
//! locks down at once; the Python runner after Pyodide has loaded (it fetches
//! its files first).

use js_sys::{Object, Reflect};
use wasm_bindgen::{prelude::wasm_bindgen, JsCast, JsValue};

const BLOCKED_GLOBALS: &[&str] = &[
    "fetch",
    "XMLHttpRequest",
    "XMLHttpRequestUpload",
    "XMLHttpRequestEventTarget",
    "WebSocket",
    "WebSocketStream",
    "WebSocketError",
    "EventSource",
    "WebTransport",
    "WebTransportError",
    "importScripts",
    "Worker",
    "SharedWorker",
    "ServiceWorker",
    "ServiceWorkerRegistration",
    "ServiceWorkerContainer",
    "indexedDB",
    "caches",
    "Cache",
    "CacheStorage",
    "BroadcastChannel",
    // The runner posts through the postMessage its bundle took before this.
    "postMessage",
    "close",
    "Notification",
    "requestAnimationFrame",
    "cancelAnimationFrame",
    "webkitRequestFileSystem",
    "webkitRequestFileSystemSync",
    "webkitResolveLocalFileSystemURL",
    "webkitResolveLocalFileSystemSyncURL",
    "StorageManager",
    "StorageBucket",
    "StorageBucketManager",
    "LockManager",
    "Lock",
    "CookieStore",
    "cookieStore",
    "scheduler",
    "Scheduler",
    "TaskController",
    "TaskSignal",
    "RTCPeerConnection",
    "RTCDataChannel",
    "RTCRtpScriptTransformer",
    "PushManager",
    "PushSubscription",
    "BackgroundFetchManager",
    "SyncManager",
    "PaymentManager",
    "MediaSourceHandle",
];

/// Every global whose name starts with one of these goes too (browsers add
/// interfaces to these families from release to release).
const BLOCKED_PREFIXES: &[&str] = &[
    "IDB",
    "XMLHttpRequest",
    "WebTransport",
    "WebSocket",
    "FileSystem",
    "RTC",
];

const BLOCKED_NAVIGATOR: &[&str] = &[
    "storage",
    "locks",
    "usb",
    "hid",
    "serial",
    "bluetooth",
    "storageBuckets",
    "serviceWorker",
    "sendBeacon",
    "permissions",
    "mediaDevices",
];

/// Removes the blocked capabilities from this worker; returns what it could
/// not remove (reachable still: the runner must refuse to run programs).
/// Called once, before any program; every call into JavaScript here is one
/// that reports failure instead of throwing.
#[wasm_bindgen]
pub fn lockdown() -> Vec<String> {
    let global: JsValue = js_sys::global().into();
    let chain = prototype_chain(&global);
    let mut names: Vec<String> = BLOCKED_GLOBALS.iter().map(|&n| n.to_owned()).collect();
    for object in &chain {
        for name in Object::get_own_property_names(object.unchecked_ref::<Object>()).iter() {
            let Some(name) = name.as_string() else {
                continue;
            };
            if BLOCKED_PREFIXES.iter().any(|p| name.starts_with(p)) && !names.contains(&name) {
                names.push(name);
            }
        }
    }
    for name in &names {
        remove_everywhere(&chain, name);
    }
    let navigator = Reflect::get(&global, &JsValue::from_str("navigator"))
        .ok()
        .filter(|navigator| navigator.is_object());
    if let Some(navigator) = &navigator {
        let chain = prototype_chain(navigator);
        for name in BLOCKED_NAVIGATOR {
            remove_everywhere(&chain, name);
        }
    }
    let mut left: Vec<String> = names
        .into_iter()
        .filter(|name| still_there(&global, name))
        .collect();
    if let Some(navigator) = &navigator {
        left.extend(
            BLOCKED_NAVIGATOR
                .iter()
                .filter(|name| still_there(navigator, name))
                .map(|name| format!("navigator.{name}")),
        );
    }
    left
}

/// `object` and its prototypes, nearest first.
fn prototype_chain(object: &JsValue) -> Vec<JsValue> {
    let mut chain = Vec::new();
    let mut next = object.clone();
    while next.is_object() || next.is_function() {
        chain.push(next.clone());
        next = Reflect::get_prototype_of(&next)
            .map(JsValue::from)
            .unwrap_or(JsValue::NULL);
    }
    chain
}

/// Deletes `name` wherever it is an own property in `chain`; where it cannot
/// be deleted, makes it a read-only `undefined` if it can.
fn remove_everywhere(chain: &[JsValue], name: &str) {
    let key = JsValue::from_str(name);
    for object in chain {
        let object: &Object = object.unchecked_ref();
        let own = Reflect::get_own_property_descriptor(object, &key)
            .is_ok_and(|descriptor| !descriptor.is_undefined());
        if !own || Reflect::delete_property(object, &key) == Ok(true) {
            continue;
        }
        let descriptor = Object::new();
        let _ = Reflect::set(&descriptor, &"value".into(), &JsValue::UNDEFINED);
        let _ = Reflect::set(&descriptor, &"writable".into(), &JsValue::FALSE);
        let _ = Reflect::set(&descriptor, &"configurable".into(), &JsValue::FALSE);
        // Failure is reported by `still_there`.
        let _ = Reflect::define_property(object, &key, &descriptor);
    }
}

/// Whether `name` still reads as something on `object` (a getter that throws
/// counts: nothing here can tell it is gone).
fn still_there(object: &JsValue, name: &str) -> bool {
    !Reflect::get(object, &JsValue::from_str(name)).is_ok_and(|value| value.is_undefined())
}

//! Browser services for the interview features, through
//! `public/js/interview.js`: the interviewer key (from the link's fragment,
//! remembered per session), JSON requests to the REST API, file downloads,
//! and whether the tab has the user's attention. Raw bindings are private; the
//! server twins do nothing.

#[cfg(feature = "hydrate")]
mod raw {
    use wasm_bindgen::prelude::*;

    #[wasm_bindgen(module = "/public/js/interview.js")]
    extern "C" {
        #[wasm_bindgen(js_name = takeKey)]
        pub fn take_key(id: &str) -> String;
        #[wasm_bindgen(js_name = sendJson)]
        pub async fn send_json(method: &str, url: &str, key: &str, body: &str) -> JsValue;
        #[wasm_bindgen(js_name = fetchHistory)]
        pub async fn fetch_history(url: &str, key: &str) -> JsValue;
        pub fn download(name: &str, text: &str, kind: &str);
        #[wasm_bindgen(js_name = watchAttention)]
        pub fn watch_attention(on_change: &js_sys::Function);
    }
}

/// A REST answer: the HTTP status (0 when the request failed) and its body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reply {
    pub status: u16,
    pub body: String,
}

impl Reply {
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// The JSON error's message, or the status.
    pub fn error_message(&self) -> String {
        serde_json::from_str::<serde_json::Value>(&self.body)
            .ok()
            .and_then(|v| v["error"].as_str().map(str::to_owned))
            .unwrap_or_else(|| format!("request failed ({})", self.status))
    }
}

/// The interviewer key this browser holds for session `id` (empty: none),
/// also set as the cookie the session's WebSockets present (scoped to
/// `/ws/<id>`, so no request line carries the key).
pub fn take_key(id: &str) -> String {
    #[cfg(feature = "hydrate")]
    {
        raw::take_key(id)
    }
    #[cfg(not(feature = "hydrate"))]
    {
        let _ = id;
        String::new()
    }
}

/// Sends `body` (JSON, or empty) with `method` to `url`, with the key as a
/// Bearer token when there is one.
pub async fn send_json(method: &str, url: &str, key: &str, body: &str) -> Reply {
    #[cfg(feature = "hydrate")]
    {
        let answer = raw::send_json(method, url, key, body).await;
        let pair = js_sys::Array::from(&answer);
        Reply {
            status: pair.get(0).as_f64().unwrap_or(0.0) as u16,
            body: pair.get(1).as_string().unwrap_or_default(),
        }
    }
    #[cfg(not(feature = "hydrate"))]
    {
        let _ = (method, url, key, body);
        Reply {
            status: 0,
            body: String::new(),
        }
    }
}

/// A session's history as fetched for playback: the reply (for a 200, the
/// history's JSON without its packed updates) and the packed updates.
pub struct HistoryReply {
    pub reply: Reply,
    pub updates: Vec<u8>,
}

/// Fetches `url` (a session's history) with the interviewer key.
pub async fn fetch_history(url: &str, key: &str) -> HistoryReply {
    #[cfg(feature = "hydrate")]
    {
        let answer = js_sys::Array::from(&raw::fetch_history(url, key).await);
        HistoryReply {
            reply: Reply {
                status: answer.get(0).as_f64().unwrap_or(0.0) as u16,
                body: answer.get(1).as_string().unwrap_or_default(),
            },
            updates: js_sys::Uint8Array::new(&answer.get(2)).to_vec(),
        }
    }
    #[cfg(not(feature = "hydrate"))]
    {
        let _ = (url, key);
        HistoryReply {
            reply: Reply {
                status: 0,
                body: String::new(),
            },
            updates: Vec::new(),
        }
    }
}

/// Offers `text` as a download named `name` of MIME type `kind`.
pub fn download(name: &str, text: &str, kind: &str) {
    #[cfg(feature = "hydrate")]
    raw::download(name, text, kind);
    #[cfg(not(feature = "hydrate"))]
    let _ = (name, text, kind);
}

/// Calls `on_change(focused)` each time the tab gains or loses attention, for
/// the page's life.
pub fn watch_attention(on_change: impl FnMut(bool) + 'static) {
    #[cfg(feature = "hydrate")]
    {
        use wasm_bindgen::{closure::Closure, JsCast};
        let callback = Closure::<dyn FnMut(bool)>::new(on_change);
        raw::watch_attention(callback.as_ref().unchecked_ref());
        // Lives as long as the page: the listeners are never removed.
        callback.forget();
    }
    #[cfg(not(feature = "hydrate"))]
    let _ = on_change;
}

//! Small browser services: remembered settings (localStorage), the page's theme
//! attribute, the leave-page guard, timers (and yielding a turn), randomness
//! and the clock. Each has a server twin that does nothing.

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    #[cfg(feature = "hydrate")]
    {
        js_sys::Date::now() as u64
    }
    #[cfg(not(feature = "hydrate"))]
    {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0)
    }
}

/// A random number in [0, 1).
pub fn random() -> f64 {
    #[cfg(feature = "hydrate")]
    {
        js_sys::Math::random()
    }
    #[cfg(not(feature = "hydrate"))]
    {
        0.5
    }
}

/// A remembered setting, if any.
pub fn load_setting(key: &str) -> Option<String> {
    #[cfg(feature = "hydrate")]
    {
        web_sys::window()?
            .local_storage()
            .ok()??
            .get_item(key)
            .ok()?
    }
    #[cfg(not(feature = "hydrate"))]
    {
        let _ = key;
        None
    }
}

/// Remembers a setting in this browser.
pub fn save_setting(key: &str, value: &str) {
    #[cfg(feature = "hydrate")]
    if let Some(Ok(Some(storage))) = web_sys::window().map(|w| w.local_storage()) {
        let _ = storage.set_item(key, value);
    }
    #[cfg(not(feature = "hydrate"))]
    let _ = (key, value);
}

/// True if the system prefers a dark colour scheme.
pub fn prefers_dark() -> bool {
    #[cfg(feature = "hydrate")]
    {
        web_sys::window()
            .and_then(|w| w.match_media("(prefers-color-scheme: dark)").ok().flatten())
            .is_some_and(|m| m.matches())
    }
    #[cfg(not(feature = "hydrate"))]
    {
        false
    }
}

/// Sets `data-theme` on the document element ("light" or "dark").
pub fn set_document_theme(theme: &str) {
    #[cfg(feature = "hydrate")]
    if let Some(root) = web_sys::window()
        .and_then(|w| w.document())
        .and_then(|d| d.document_element())
    {
        let _ = root.set_attribute("data-theme", theme);
    }
    #[cfg(not(feature = "hydrate"))]
    let _ = theme;
}

/// The WebSocket URL of a session on this page's host.
pub fn session_socket_url(session_id: &str) -> Option<String> {
    #[cfg(feature = "hydrate")]
    {
        let location = web_sys::window()?.location();
        let scheme = if location.protocol().ok()? == "https:" {
            "wss"
        } else {
            "ws"
        };
        Some(format!(
            "{scheme}://{}/ws/{session_id}",
            location.host().ok()?
        ))
    }
    #[cfg(not(feature = "hydrate"))]
    {
        let _ = session_id;
        None
    }
}

/// Loads the page again (after unlocking a session).
pub fn reload_page() {
    #[cfg(feature = "hydrate")]
    if let Some(window) = web_sys::window() {
        let _ = window.location().reload();
    }
}

/// Asks for confirmation before the page is left while `has_unsaved()` is true.
/// The guard lives as long as the page.
pub fn guard_page_unload(has_unsaved: impl Fn() -> bool + 'static) {
    #[cfg(feature = "hydrate")]
    {
        use wasm_bindgen::{closure::Closure, JsCast};
        let handler = Closure::<dyn FnMut(web_sys::BeforeUnloadEvent)>::new(
            move |event: web_sys::BeforeUnloadEvent| {
                if has_unsaved() {
                    event.prevent_default();
                    event.set_return_value("You have edits that have not reached the server yet.");
                }
            },
        );
        if let Some(window) = web_sys::window() {
            let _ = window
                .add_event_listener_with_callback("beforeunload", handler.as_ref().unchecked_ref());
        }
        // The page owns the listener until it unloads.
        handler.forget();
    }
    #[cfg(not(feature = "hydrate"))]
    let _ = has_unsaved;
}

/// Calls `callback` after `delay_ms` (browser only).
pub fn set_timeout(callback: impl FnOnce() + 'static, delay_ms: u32) {
    #[cfg(feature = "hydrate")]
    {
        leptos::prelude::set_timeout(callback, std::time::Duration::from_millis(delay_ms.into()));
    }
    #[cfg(not(feature = "hydrate"))]
    let _ = (callback, delay_ms);
}

/// Calls `callback` every `period_ms` for the life of the page (browser only).
pub fn set_interval(callback: impl Fn() + 'static, period_ms: u32) {
    #[cfg(feature = "hydrate")]
    {
        let _ = leptos::prelude::set_interval_with_handle(
            callback,
            std::time::Duration::from_millis(period_ms.into()),
        );
    }
    #[cfg(not(feature = "hydrate"))]
    let _ = (callback, period_ms);
}

/// Waits for the browser's next turn (a macrotask), so that what it has
/// queued (a script loading, input) runs first (browser only; resolves at
/// once on the server).
pub async fn next_turn() {
    #[cfg(feature = "hydrate")]
    {
        let promise = js_sys::Promise::new(&mut |resolve, _reject| {
            set_timeout(
                move || {
                    let _ = resolve.call0(&wasm_bindgen::JsValue::NULL);
                },
                0,
            );
        });
        let _ = wasm_bindgen_futures::JsFuture::from(promise).await;
    }
}

/// True if the browser believes it is online.
pub fn is_online() -> bool {
    #[cfg(feature = "hydrate")]
    {
        web_sys::window().is_none_or(|w| w.navigator().on_line())
    }
    #[cfg(not(feature = "hydrate"))]
    {
        true
    }
}

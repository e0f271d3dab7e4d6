//! Copying text to the system clipboard.

/// Copies `text`; an error says why (no permission, insecure context, ...).
#[cfg(feature = "hydrate")]
pub async fn copy_text(text: &str) -> Result<(), String> {
    let window = web_sys::window().ok_or("no window")?;
    let promise = window.navigator().clipboard().write_text(text);
    wasm_bindgen_futures::JsFuture::from(promise)
        .await
        .map(|_| ())
        .map_err(|e| format!("{e:?}"))
}

/// Server twin: there is no clipboard to write to.
#[cfg(not(feature = "hydrate"))]
pub async fn copy_text(_text: &str) -> Result<(), String> {
    Err("no clipboard on the server".into())
}

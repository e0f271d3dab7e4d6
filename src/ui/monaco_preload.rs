//! Asks the browser to fetch Monaco's files as soon as a page's head arrives.
//!
//! Without these links the editor's files are requested only once the wasm has
//! loaded and hydrated the page (`Editor::preload`), and then one after another
//! (the loader, then `editor.main.js`, which asks for its stylesheet). With
//! them the downloads run beside the wasm's, and Monaco's loader finds them in
//! the memory cache; the page still evaluates Monaco only after hydrating. Over
//! a 100 ms, 8 Mbit/s link the editor is ready about 0.4 s sooner; on loopback,
//! where nothing waits for the network, it changes nothing (issue 16's note).

use leptos::prelude::*;
use leptos_meta::Link;

use crate::interop::editor::MONACO_VS;

/// Monaco's files every editor needs, under [`MONACO_VS`], with the request
/// kind the loader later makes for each: a preload is only reused by a request
/// of the same kind (and the same CORS mode: none, as the loader's).
const EDITOR_FILES: [(&str, &str); 3] = [
    ("loader.js", "script"),
    ("editor/editor.main.js", "script"),
    ("editor/editor.main.css", "style"),
];

/// `<link rel="preload">` in the head for each of Monaco's core files. Used by
/// the pages that open an editor (a session, its playback). Low priority: the
/// page's stylesheet and wasm come first, as the editor waits for hydration
/// anyway.
#[component]
pub fn MonacoPreload() -> impl IntoView {
    EDITOR_FILES
        .into_iter()
        .map(|(file, kind)| {
            view! {
                <Link rel="preload" href=format!("{MONACO_VS}/{file}") as_=kind fetchpriority="low" />
            }
        })
        .collect_view()
}

//! The Monaco editor, through `public/js/editor.js`. The raw bindings are
//! private; [`Editor`] is the safe API (disposed on drop). On the server the same
//! API exists and does nothing, so components compile on both sides.

use crate::collab::text_ops::{EditorChange, TextOp};
use crate::domain::Language;

/// Where pairpad serves Monaco's AMD build: `scripts/vendor.mjs` copies the
/// npm package there, under its version, and `public/js/editor.js` loads it
/// from the same place (its `MONACO_VS`; a test keeps the two equal).
pub const MONACO_VS: &str = "/vendor/monaco-editor-0.52.2/min/vs";

/// Light or dark.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Theme {
    Light,
    Dark,
}

impl Theme {
    pub fn as_str(&self) -> &'static str {
        match self {
            Theme::Light => "light",
            Theme::Dark => "dark",
        }
    }

    pub fn toggled(&self) -> Theme {
        match self {
            Theme::Light => Theme::Dark,
            Theme::Dark => Theme::Light,
        }
    }
}

/// Another participant's cursor as the editor draws it.
#[derive(Clone, Debug, serde::Serialize)]
pub struct PeerCursor {
    pub id: u64,
    pub name: String,
    pub color: u8,
    pub anchor: u32,
    pub head: u32,
    /// Changes when the participant moves or types (see `Peer::cursor_key`):
    /// the editor shows their name label then, and fades it out after a while.
    pub key: u32,
}

/// What the editor reports.
pub struct EditorEvents {
    pub on_change: Box<dyn FnMut(Vec<EditorChange>)>,
    pub on_selection: Box<dyn FnMut(u32, u32)>,
    pub on_undo: Box<dyn FnMut()>,
    pub on_redo: Box<dyn FnMut()>,
    pub on_run: Box<dyn FnMut()>,
}

#[cfg(feature = "hydrate")]
mod raw {
    use wasm_bindgen::prelude::*;

    #[wasm_bindgen(module = "/public/js/editor.js")]
    extern "C" {
        pub type EditorHandle;

        #[wasm_bindgen(catch, js_name = createEditor)]
        #[allow(clippy::too_many_arguments)]
        pub async fn create_editor(
            container: &web_sys::HtmlElement,
            text: &str,
            language: &str,
            theme: &str,
            on_change: &js_sys::Function,
            on_selection: &js_sys::Function,
            on_undo: &js_sys::Function,
            on_redo: &js_sys::Function,
            on_run: &js_sys::Function,
        ) -> Result<JsValue, JsValue>;

        #[wasm_bindgen(js_name = preloadMonaco)]
        pub fn preload_monaco();

        #[wasm_bindgen(method)]
        pub fn selections(this: &EditorHandle) -> Vec<u32>;
        #[wasm_bindgen(method, js_name = applyRemote)]
        pub fn apply_remote(this: &EditorHandle, deltas: &str, selections: &[u32]) -> u32;
        #[wasm_bindgen(method, js_name = setValue)]
        pub fn set_value(this: &EditorHandle, text: &str);
        #[wasm_bindgen(method)]
        pub fn length(this: &EditorHandle) -> u32;
        #[wasm_bindgen(method, js_name = setLanguage)]
        pub fn set_language(this: &EditorHandle, language: &str);
        #[wasm_bindgen(method, js_name = setTheme)]
        pub fn set_theme(this: &EditorHandle, theme: &str);
        #[wasm_bindgen(method, js_name = setReadOnly)]
        pub fn set_read_only(this: &EditorHandle, read_only: bool);
        #[wasm_bindgen(method, js_name = setPeers)]
        pub fn set_peers(this: &EditorHandle, peers: &str);
        #[wasm_bindgen(method, js_name = setHighlights)]
        pub fn set_highlights(this: &EditorHandle, ranges: &[u32]);
        #[wasm_bindgen(method)]
        pub fn dispose(this: &EditorHandle);
    }
}

#[cfg(feature = "hydrate")]
pub use browser::Editor;

#[cfg(feature = "hydrate")]
mod browser {
    use super::*;
    use wasm_bindgen::{closure::Closure, JsCast};

    /// The callbacks handed to the editor, kept alive as long as it may call them.
    struct Callbacks {
        _on_change: Closure<dyn FnMut(String)>,
        _on_selection: Closure<dyn FnMut(u32, u32)>,
        _on_undo: Closure<dyn FnMut()>,
        _on_redo: Closure<dyn FnMut()>,
        _on_run: Closure<dyn FnMut()>,
    }

    /// A live Monaco editor.
    pub struct Editor {
        handle: raw::EditorHandle,
        _callbacks: Callbacks,
    }

    impl Editor {
        /// Starts downloading Monaco so that creating the editor later is quick.
        pub fn preload() {
            raw::preload_monaco();
        }

        /// Loads Monaco if needed and creates an editor holding `text` in `container`.
        pub async fn create(
            container: &web_sys::HtmlElement,
            text: &str,
            language: Language,
            theme: Theme,
            events: EditorEvents,
        ) -> Result<Editor, String> {
            let EditorEvents {
                mut on_change,
                on_selection,
                on_undo,
                on_redo,
                on_run,
            } = events;
            let on_change = Closure::<dyn FnMut(String)>::new(move |json: String| {
                match serde_json::from_str::<Vec<EditorChange>>(&json) {
                    Ok(changes) => on_change(changes),
                    Err(e) => leptos::logging::error!("bad editor change: {e}"),
                }
            });
            let on_selection = Closure::<dyn FnMut(u32, u32)>::new(on_selection);
            let on_undo = Closure::<dyn FnMut()>::new(on_undo);
            let on_redo = Closure::<dyn FnMut()>::new(on_redo);
            let on_run = Closure::<dyn FnMut()>::new(on_run);
            let handle = raw::create_editor(
                container,
                text,
                language.as_str(),
                theme.as_str(),
                on_change.as_ref().unchecked_ref(),
                on_selection.as_ref().unchecked_ref(),
                on_undo.as_ref().unchecked_ref(),
                on_redo.as_ref().unchecked_ref(),
                on_run.as_ref().unchecked_ref(),
            )
            .await
            .map_err(|e| format!("{e:?}"))?;
            Ok(Editor {
                handle: handle.unchecked_into(),
                _callbacks: Callbacks {
                    _on_change: on_change,
                    _on_selection: on_selection,
                    _on_undo: on_undo,
                    _on_redo: on_redo,
                    _on_run: on_run,
                },
            })
        }

        /// Selections as flat (anchor, head) UTF-16 offsets.
        pub fn selections(&self) -> Vec<u32> {
            self.handle.selections()
        }

        /// Applies remote deltas without reporting them as local edits, then sets
        /// the selections. Returns the editor's new length.
        pub fn apply_remote(&self, deltas: &[Vec<TextOp>], selections: &[u32]) -> u32 {
            let json = serde_json::to_string(deltas).unwrap_or_else(|_| "[]".into());
            self.handle.apply_remote(&json, selections)
        }

        /// Replaces the whole text (without reporting it as an edit).
        pub fn set_value(&self, text: &str) {
            self.handle.set_value(text);
        }

        pub fn length(&self) -> u32 {
            self.handle.length()
        }

        pub fn set_language(&self, language: Language) {
            self.handle.set_language(language.as_str());
        }

        pub fn set_theme(&self, theme: Theme) {
            self.handle.set_theme(theme.as_str());
        }

        pub fn set_read_only(&self, read_only: bool) {
            self.handle.set_read_only(read_only);
        }

        pub fn set_peers(&self, peers: &[PeerCursor]) {
            let json = serde_json::to_string(peers).unwrap_or_else(|_| "[]".into());
            self.handle.set_peers(&json);
        }

        /// Highlights these UTF-16 ranges (flat start, end pairs); empty clears.
        pub fn set_highlights(&self, ranges: &[u32]) {
            self.handle.set_highlights(ranges);
        }
    }

    impl Drop for Editor {
        fn drop(&mut self) {
            self.handle.dispose();
        }
    }
}

/// Server twin: there is no editor to drive.
#[cfg(not(feature = "hydrate"))]
pub struct Editor;

#[cfg(not(feature = "hydrate"))]
impl Editor {
    pub fn preload() {}

    pub async fn create(
        _container: &leptos::web_sys::HtmlElement,
        _text: &str,
        _language: Language,
        _theme: Theme,
        _events: EditorEvents,
    ) -> Result<Editor, String> {
        Err("no editor on the server".into())
    }

    pub fn selections(&self) -> Vec<u32> {
        Vec::new()
    }

    pub fn apply_remote(&self, _deltas: &[Vec<TextOp>], _selections: &[u32]) -> u32 {
        0
    }

    pub fn set_value(&self, _text: &str) {}

    pub fn length(&self) -> u32 {
        0
    }

    pub fn set_language(&self, _language: Language) {}

    pub fn set_theme(&self, _theme: Theme) {}

    pub fn set_read_only(&self, _read_only: bool) {}

    pub fn set_peers(&self, _peers: &[PeerCursor]) {}

    pub fn set_highlights(&self, _ranges: &[u32]) {}
}

#[cfg(test)]
mod tests {
    use super::MONACO_VS;

    #[test]
    fn the_page_preloads_monaco_from_where_the_bridge_loads_it_and_npm_installs_it() {
        let bridge = include_str!("../../public/js/editor.js");
        assert!(
            bridge.contains(&format!("const MONACO_VS = '{MONACO_VS}';")),
            "public/js/editor.js loads Monaco from elsewhere than {MONACO_VS}"
        );
        let package: serde_json::Value =
            serde_json::from_str(include_str!("../../package.json")).unwrap();
        let version = package["dependencies"]["monaco-editor"]
            .as_str()
            .expect("package.json pins monaco-editor");
        assert!(
            MONACO_VS.starts_with(&format!("/vendor/monaco-editor-{version}/")),
            "scripts/vendor.mjs puts monaco-editor {version} elsewhere than {MONACO_VS}"
        );
    }
}

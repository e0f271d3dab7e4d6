//! Running code in the browser, through `public/js/runner.js` (JavaScript in a
//! Web Worker, Python in Pyodide in a Worker; both sandboxed and stoppable).
//! Raw bindings are private; [`Runner`] is the safe API; the server twin never
//! runs anything.

use crate::domain::{run::Stream, Language};
use serde::Deserialize;

/// Where Python's runtime is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PythonStatus {
    /// Downloading or starting; the text says how far.
    Loading(String),
    Ready,
    Failed(String),
}

/// How a run ended, as the runner reports it.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RunOutcome {
    pub status: String,
    pub duration_ms: f64,
    #[serde(default)]
    pub truncated: bool,
    #[serde(default)]
    pub error: Option<RunError>,
}

/// An error the program raised, with its line in the editor's numbering.
#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct RunError {
    #[serde(rename = "type")]
    pub kind: String,
    pub message: String,
    pub line: Option<u32>,
}

/// Limits one run is held to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RunLimits {
    pub time_limit_ms: u64,
    pub max_output_bytes: usize,
    pub max_output_lines: usize,
}

#[cfg(feature = "hydrate")]
mod raw {
    use wasm_bindgen::prelude::*;

    #[wasm_bindgen(module = "/public/js/runner.js")]
    extern "C" {
        pub type CodeRunner;

        #[wasm_bindgen(constructor)]
        pub fn new(origin: &str) -> CodeRunner;
        #[wasm_bindgen(method, js_name = preloadPython)]
        pub fn preload_python(this: &CodeRunner, on_status: &js_sys::Function);
        #[wasm_bindgen(method, catch)]
        #[allow(clippy::too_many_arguments)]
        pub async fn run(
            this: &CodeRunner,
            language: &str,
            code: &str,
            stdin: &str,
            time_limit_ms: f64,
            max_output_bytes: f64,
            max_output_lines: f64,
            on_output: &js_sys::Function,
        ) -> Result<JsValue, JsValue>;
        #[wasm_bindgen(method)]
        pub fn stop(this: &CodeRunner);
        #[wasm_bindgen(method, js_name = isRunning)]
        pub fn is_running(this: &CodeRunner) -> bool;
        #[wasm_bindgen(method)]
        pub fn dispose(this: &CodeRunner);
    }
}

#[cfg(feature = "hydrate")]
pub use browser::Runner;

#[cfg(feature = "hydrate")]
mod browser {
    use super::*;
    use std::rc::Rc;
    use wasm_bindgen::closure::Closure;
    use wasm_bindgen::JsCast;

    /// The page's code runner (its workers live as long as it does).
    pub struct Runner {
        raw: Rc<raw::CodeRunner>,
        _on_status: Option<Closure<dyn FnMut(String, String)>>,
    }

    impl Runner {
        pub fn new() -> Option<Runner> {
            let origin = web_sys::window()?.location().origin().ok()?;
            Some(Runner {
                raw: Rc::new(raw::CodeRunner::new(&origin)),
                _on_status: None,
            })
        }

        /// Starts loading Python in the background; `on_status` hears progress.
        pub fn preload_python(&mut self, mut on_status: impl FnMut(PythonStatus) + 'static) {
            let callback =
                Closure::<dyn FnMut(String, String)>::new(move |state: String, detail: String| {
                    on_status(match state.as_str() {
                        "ready" => PythonStatus::Ready,
                        "error" => PythonStatus::Failed(detail),
                        _ => PythonStatus::Loading(detail),
                    })
                });
            self.raw.preload_python(callback.as_ref().unchecked_ref());
            self._on_status = Some(callback);
        }

        /// Runs `code`; output streams to `on_output` as it is printed. Returns
        /// how the run ended (an error string if the runner itself failed, e.g.
        /// because a run is already going).
        pub fn run(
            &self,
            language: Language,
            code: &str,
            stdin: &str,
            limits: RunLimits,
            mut on_output: impl FnMut(Stream, String) + 'static,
        ) -> impl std::future::Future<Output = Result<RunOutcome, String>> + 'static {
            let raw = self.raw.clone();
            let code = code.to_owned();
            let stdin = stdin.to_owned();
            async move {
                let on_output = Closure::<dyn FnMut(String, String)>::new(
                    move |stream: String, text: String| {
                        let stream = if stream == "stderr" {
                            Stream::Stderr
                        } else {
                            Stream::Stdout
                        };
                        on_output(stream, text);
                    },
                );
                let result = raw
                    .run(
                        language.as_str(),
                        &code,
                        &stdin,
                        limits.time_limit_ms as f64,
                        limits.max_output_bytes as f64,
                        limits.max_output_lines as f64,
                        on_output.as_ref().unchecked_ref(),
                    )
                    .await;
                // Output may still be flushed until run() settles; only now drop it.
                drop(on_output);
                let json = result.map_err(|e| e.as_string().unwrap_or_else(|| format!("{e:?}")))?;
                let json = json.as_string().ok_or("the runner returned no result")?;
                serde_json::from_str(&json).map_err(|e| format!("bad run result: {e}"))
            }
        }

        /// Stops the current run.
        pub fn stop(&self) {
            self.raw.stop();
        }

        pub fn is_running(&self) -> bool {
            self.raw.is_running()
        }
    }

    impl Drop for Runner {
        fn drop(&mut self) {
            self.raw.dispose();
        }
    }
}

/// Server twin: nothing runs on the server.
#[cfg(not(feature = "hydrate"))]
pub struct Runner;

#[cfg(not(feature = "hydrate"))]
impl Runner {
    pub fn new() -> Option<Runner> {
        None
    }

    pub fn preload_python(&mut self, _on_status: impl FnMut(PythonStatus) + 'static) {}

    pub fn run(
        &self,
        _language: Language,
        _code: &str,
        _stdin: &str,
        _limits: RunLimits,
        _on_output: impl FnMut(Stream, String) + 'static,
    ) -> impl std::future::Future<Output = Result<RunOutcome, String>> + 'static {
        async { Err("code does not run on the server".to_owned()) }
    }

    pub fn stop(&self) {}

    pub fn is_running(&self) -> bool {
        false
    }
}

//! The run panel: Run/Stop/Clear, Python's loading state, the stdin box, and the
//! output of the latest run (streaming while it runs, then as recorded for everyone).

use super::{engine, signals::WorkspaceSignals};
use crate::{
    domain::run::{output_lines, RunStatus},
    interop::runner::PythonStatus,
};
use leptos::prelude::*;

/// Lines kept in the page at once; earlier ones are summarised (the run itself
/// keeps up to its own cap).
const MAX_SHOWN_LINES: usize = 2_000;

#[component]
pub fn RunPanel(signals: WorkspaceSignals) -> impl IntoView {
    let running = move || signals.running.get();
    let shown = Memo::new(move |_| {
        signals.run_view.with(|view| {
            view.as_ref().map(|view| {
                let (lines, hidden) = output_lines(&view.output, MAX_SHOWN_LINES);
                (view.id.clone(), lines, hidden)
            })
        })
    });
    let numbered_lines = move || {
        shown
            .get()
            .map(|(id, lines, hidden)| {
                lines
                    .into_iter()
                    .enumerate()
                    .map(|(i, line)| (id.clone(), hidden + i, line))
                    .collect::<Vec<_>>()
            })
            .unwrap_or_default()
    };
    let hidden = move || shown.with(|s| s.as_ref().map_or(0, |(_, _, hidden)| *hidden));
    let status_line = move || {
        signals.run_view.with(|view| {
            view.as_ref().map(|view| {
                let text = match view.status {
                    RunStatus::Running => format!("{} is running {}…", view.by, view.language.label()),
                    status => format!(
                        "{} ran {} · {} in {} ms{}",
                        view.by,
                        view.language.label(),
                        status.label(),
                        view.duration_ms,
                        if view.truncated { " · output truncated" } else { "" }
                    ),
                };
                let state = match view.status {
                    RunStatus::Running => "running",
                    RunStatus::Ok => "ok",
                    RunStatus::Error => "error",
                    RunStatus::Timeout => "timeout",
                    RunStatus::Stopped => "stopped",
                };
                view! { <div class="run-status" data-testid="run-status" data-status=state>{text}</div> }
            })
        })
    };
    let python = move || match signals.python.get() {
        PythonStatus::Loading(text) => ("loading", text),
        PythonStatus::Ready => ("ready", "Python ready".to_owned()),
        PythonStatus::Failed(error) => ("error", format!("Python failed to load: {error}")),
    };
    view! {
        <section class="run-panel">
            <div class="run-toolbar">
                <button
                    type="button"
                    class="primary"
                    data-testid="run-button"
                    disabled=move || running() || signals.ended.get()
                    title="Run (Ctrl+Enter)"
                    on:click=move |_| engine::with_current(|e| e.run_code())
                >
                    "Run"
                </button>
                <button
                    type="button"
                    data-testid="stop-button"
                    disabled=move || !running()
                    on:click=move |_| engine::with_current(|e| e.stop_code())
                >
                    "Stop"
                </button>
                <button
                    type="button"
                    data-testid="clear-output"
                    on:click=move |_| signals.run_view.set(None)
                >
                    "Clear"
                </button>
                <span class="python-status" data-testid="python-status" data-state=move || python().0>
                    {move || python().1}
                </span>
            </div>
            <div class="run-body">
                <div class="output" data-testid="output" role="log" aria-live="polite">
                    {move || {
                        (hidden() > 0)
                            .then(|| {
                                view! {
                                    <div class="line notice-line">
                                        {format!("… {} earlier lines not shown", hidden())}
                                    </div>
                                }
                            })
                    }}
                    <For
                        each=numbered_lines
                        key=|(id, index, (stream, text))| (id.clone(), *index, *stream, text.len())
                        let:line
                    >
                        <div class="line" data-stream=line.2.0.as_str()>{line.2.1}</div>
                    </For>
                    {status_line}
                </div>
                <label class="stdin">
                    <span>"Input (stdin)"</span>
                    <textarea
                        data-testid="stdin"
                        placeholder="One line per input() / readline"
                        prop:value=move || signals.stdin.get()
                        on:input=move |event| signals.stdin.set(event_target_value(&event))
                    ></textarea>
                </label>
            </div>
        </section>
    }
}

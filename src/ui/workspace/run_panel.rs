//! The run panel: Run/Stop/Clear, Python's loading state, the stdin box, and the
//! output of the latest run (streaming while it runs, then as recorded for everyone).

use super::{engine, signals::WorkspaceSignals};
use crate::{
    domain::run::{output_lines, RunStatus},
    interop::runner::PythonStatus,
};
use leptos::prelude::*;

/// Output longer than this many lines is windowed: only the lines in view
/// (and [`OVERSCAN_LINES`] around them) are in the page, between two spacers,
/// so a run that printed its whole cap (10,000 lines by default) scrolls
/// through all of it without slowing the page. Shorter output is rendered
/// whole and wraps long lines.
const WINDOW_FROM_LINES: usize = 500;
/// Height of one output line when windowed (CSS `.output.windowed .line`):
/// windowed lines do not wrap, so every line is this tall.
const LINE_HEIGHT_PX: f64 = 19.0;
/// Lines rendered above and below the visible ones, so a quick scroll does
/// not show blank space before the next frame.
const OVERSCAN_LINES: usize = 40;
/// Assumed height of the output area until it is first scrolled.
const DEFAULT_VIEWPORT_PX: f64 = 600.0;

/// Which lines `[first, last)` to render out of `total`, for an output area
/// scrolled to `scroll_top` showing `viewport` pixels.
fn visible_window(total: usize, scroll_top: f64, viewport: f64) -> (usize, usize) {
    if total <= WINDOW_FROM_LINES {
        return (0, total);
    }
    let top_line = (scroll_top.max(0.0) / LINE_HEIGHT_PX) as usize;
    let lines_in_view = (viewport.max(0.0) / LINE_HEIGHT_PX).ceil() as usize;
    let first = top_line.saturating_sub(OVERSCAN_LINES).min(total);
    let last = (top_line + lines_in_view + OVERSCAN_LINES).min(total);
    (first, last)
}

#[component]
pub fn RunPanel(signals: WorkspaceSignals) -> impl IntoView {
    let running = move || signals.running.get();
    let shown = Memo::new(move |_| {
        signals.run_view.with(|view| {
            view.as_ref().map(|view| {
                let (lines, _) = output_lines(&view.output, usize::MAX);
                (view.id.clone(), lines)
            })
        })
    });
    let output_area = NodeRef::<leptos::html::Div>::new();
    // (scrollTop, clientHeight) of the output area, in pixels.
    let scrolled = RwSignal::new((0.0, DEFAULT_VIEWPORT_PX));
    let total = move || shown.with(|s| s.as_ref().map_or(0, |(_, lines)| lines.len()));
    let window = Memo::new(move |_| {
        let (top, viewport) = scrolled.get();
        visible_window(total(), top, viewport)
    });
    let windowed = move || total() > WINDOW_FROM_LINES;
    let numbered_lines = move || {
        let (first, last) = window.get();
        shown.with(|shown| {
            shown
                .as_ref()
                .map(|(id, lines)| {
                    lines[first..last]
                        .iter()
                        .enumerate()
                        .map(|(i, line)| (id.clone(), first + i, line.clone()))
                        .collect::<Vec<_>>()
                })
                .unwrap_or_default()
        })
    };
    let spacer_above = move || format!("height: {}px", window.get().0 as f64 * LINE_HEIGHT_PX);
    let spacer_below = move || {
        format!(
            "height: {}px",
            (total() - window.get().1) as f64 * LINE_HEIGHT_PX
        )
    };
    let on_scroll = move |_| {
        if let Some(area) = output_area.get_untracked() {
            scrolled.set((
                f64::from(area.scroll_top()),
                f64::from(area.client_height()),
            ));
        }
    };
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
                <div
                    class="output"
                    class:windowed=windowed
                    data-testid="output"
                    data-lines=total
                    role="log"
                    aria-live="polite"
                    node_ref=output_area
                    on:scroll=on_scroll
                >
                    <div class="output-spacer" style=spacer_above></div>
                    <For
                        each=numbered_lines
                        key=|(id, index, (stream, text))| (id.clone(), *index, *stream, text.len())
                        let:line
                    >
                        <div class="line" data-stream=line.2.0.as_str()>{line.2.1}</div>
                    </For>
                    <div class="output-spacer" style=spacer_below></div>
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_output_is_rendered_whole() {
        assert_eq!(visible_window(0, 0.0, 600.0), (0, 0));
        assert_eq!(
            visible_window(WINDOW_FROM_LINES, 5000.0, 600.0),
            (0, WINDOW_FROM_LINES)
        );
    }

    #[test]
    fn long_output_renders_the_lines_in_view_and_a_margin() {
        let in_view = (600.0 / LINE_HEIGHT_PX).ceil() as usize;
        assert_eq!(
            visible_window(10_000, 0.0, 600.0),
            (0, in_view + OVERSCAN_LINES)
        );
        // Scrolled to line 5,000.
        let (first, last) = visible_window(10_000, 5_000.0 * LINE_HEIGHT_PX, 600.0);
        assert_eq!(first, 5_000 - OVERSCAN_LINES);
        assert_eq!(last, 5_000 + in_view + OVERSCAN_LINES);
        // Scrolled to the end (or past it, while the output shrinks).
        let (first, last) = visible_window(10_000, 10_000.0 * LINE_HEIGHT_PX, 600.0);
        assert_eq!(last, 10_000);
        assert!(first < 10_000 - in_view);
        assert_eq!(visible_window(10_000, 1e9, 600.0).1, 10_000);
    }
}

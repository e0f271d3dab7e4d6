//! The playback page `/s/<id>/playback`, for interviewers: fetches the
//! session's history with the interviewer key, rebuilds it once with
//! `collab::playback`, and shows the code at any instant in a read-only
//! editor under a timeline: a scrubber, play and pause at 1x to 16x, skip
//! idle, previous and next change, markers (runs with their output, language
//! changes, joins, leaves, focus and pastes) and a per-person highlight.
//!
//! It never connects to the session, so playback cannot change it. The key
//! lives in the browser (the link's fragment or what the session page kept),
//! so the server serves this shell to anyone and the history API decides:
//! without the key the page shows only why.

use crate::{
    collab::{
        playback::{DocumentMark, Timeline, TimelineBuilder},
        presence::{color_for, PALETTE_SIZE},
        text_ops::TextOp,
    },
    domain::{
        events::describe,
        run::RunRecord,
        text::{splice_between, Splice},
        Language,
    },
    interop::{
        browser,
        editor::{Editor, EditorEvents, Theme},
        interview,
    },
    ui::monaco_preload::MonacoPreload,
};
use leptos::{html, prelude::*, task::spawn_local};
use leptos_router::hooks::use_params_map;
use serde::Deserialize;
use std::cell::RefCell;

/// Updates replayed between two turns of the browser while the page opens.
const BUILD_SLICE: usize = 1_000;
/// How often playing moves the scrubber.
const TICK_MS: u32 = 50;
/// With "skip idle", longer gaps between changes play as this long.
const IDLE_GAP_MS: u64 = 5_000;
const SPEEDS: [u32; 5] = [1, 2, 4, 8, 16];

thread_local! {
    /// The page's rebuilt history and its editor (one playback per page).
    static PLAYER: RefCell<Option<Player>> = const { RefCell::new(None) };
}

struct Player {
    timeline: Timeline,
    editor: Option<Editor>,
    /// The text the editor shows, to change only what differs.
    shown: String,
    language: Option<Language>,
}

#[derive(Clone, Debug, PartialEq)]
enum Phase {
    Loading,
    Denied(String),
    Ready,
}

/// A mark on the timeline.
#[derive(Clone, Debug, PartialEq)]
struct Marker {
    id: usize,
    kind: &'static str,
    at_ms: u64,
    label: String,
    output: Option<String>,
}

/// Someone whose changes can be highlighted.
#[derive(Clone, Debug, PartialEq)]
struct Person {
    client: u64,
    name: String,
    color: u8,
}

/// The history's JSON once its packed updates are taken out.
#[derive(Deserialize)]
struct HistoryInfo {
    #[serde(default)]
    authors: Vec<AuthorInfo>,
    #[serde(default)]
    events: Vec<serde_json::Value>,
}

#[derive(Deserialize)]
struct AuthorInfo {
    client: u64,
    name: String,
    #[serde(default)]
    color: serde_json::Value,
}

/// Everything the page shows, as signals.
#[derive(Clone, Copy)]
struct View {
    phase: RwSignal<Phase>,
    start: RwSignal<u64>,
    duration: RwSignal<u64>,
    position: RwSignal<u64>,
    playing: RwSignal<bool>,
    speed: RwSignal<u32>,
    skip_idle: RwSignal<bool>,
    markers: RwSignal<Vec<Marker>>,
    people: RwSignal<Vec<Person>>,
    highlighted: RwSignal<Option<u64>>,
    run_output: RwSignal<Option<String>>,
    /// The editor is up and shows the code (the page is ready).
    editor_ready: RwSignal<bool>,
}

#[component]
pub fn PlaybackPage() -> impl IntoView {
    let params = use_params_map();
    let id = params.read_untracked().get("id").unwrap_or_default();
    let view = View {
        phase: RwSignal::new(Phase::Loading),
        start: RwSignal::new(0),
        duration: RwSignal::new(0),
        position: RwSignal::new(0),
        playing: RwSignal::new(false),
        speed: RwSignal::new(1),
        skip_idle: RwSignal::new(false),
        markers: RwSignal::new(Vec::new()),
        people: RwSignal::new(Vec::new()),
        highlighted: RwSignal::new(None),
        run_output: RwSignal::new(None),
        editor_ready: RwSignal::new(false),
    };
    let container = NodeRef::<html::Div>::new();
    // Leaving the page drops the history and disposes of the editor.
    on_cleanup(|| PLAYER.with(|player| drop(player.borrow_mut().take())));
    // Browser only: effects do not run on the server.
    Effect::new({
        let id = id.clone();
        move |started: Option<bool>| {
            if started != Some(true) {
                let id = id.clone();
                spawn_local(async move { load(&id, view).await });
            }
            true
        }
    });
    Effect::new(move |created: Option<bool>| {
        if created == Some(true) {
            return true;
        }
        match (view.phase.get(), container.get()) {
            (Phase::Ready, Some(element)) => {
                create_editor(element.into(), view);
                browser::set_interval(move || tick(view), TICK_MS);
                true
            }
            _ => false,
        }
    });

    let on_scrub = move |event: leptos::ev::Event| {
        let value = event_target_value(&event).parse::<u64>().unwrap_or(0);
        view.playing.set(false);
        seek(view, value);
    };
    let toggle_play = move |_| {
        if view.playing.get_untracked() {
            view.playing.set(false);
            return;
        }
        if view.position.get_untracked() >= view.duration.get_untracked() {
            seek(view, 0);
        }
        view.playing.set(true);
    };
    let step = move |forward: bool| {
        let at = view.start.get_untracked() + view.position.get_untracked();
        let target = PLAYER.with(|player| {
            let player = player.borrow();
            let timeline = &player.as_ref()?.timeline;
            if forward {
                timeline.next_change(at)
            } else {
                // Before the first change there is the start.
                Some(timeline.previous_change(at).unwrap_or(timeline.start_ms()))
            }
        });
        if let Some(target) = target {
            view.playing.set(false);
            seek(view, target.saturating_sub(view.start.get_untracked()));
        }
    };
    let time = move || {
        format!(
            "{} / {}",
            clock(view.position.get()),
            clock(view.duration.get())
        )
    };

    view! {
        <MonacoPreload />
        <section class="playback" data-testid="playback" data-ready=move || (view.phase.get() == Phase::Ready && view.editor_ready.get()).to_string()>
            <header class="playback-header">
                <h1>"Playback"</h1>
                <a href=format!("/s/{id}")>"Back to the session"</a>
            </header>
            {move || match view.phase.get() {
                Phase::Loading => view! { <p class="loading">"Loading the session's history…"</p> }.into_any(),
                Phase::Denied(message) => {
                    view! { <p class="error" role="alert" data-testid="playback-denied">{message}</p> }.into_any()
                }
                Phase::Ready => ().into_any(),
            }}
            <Show when=move || view.phase.get() == Phase::Ready>
                <div class="playback-code" data-testid="playback-code" node_ref=container></div>
                <div class="playback-timeline">
                    <input
                        type="range"
                        class="playback-scrubber"
                        data-testid="playback-scrubber"
                        aria-label="Time in the session"
                        min="0"
                        max=move || view.duration.get().to_string()
                        step="1"
                        data-start=move || view.start.get().to_string()
                        prop:value=move || view.position.get().to_string()
                        on:input=on_scrub
                    />
                    <div class="playback-markers">
                        <For each=move || view.markers.get() key=|marker| marker.id let:marker>
                            <MarkerButton marker view />
                        </For>
                    </div>
                </div>
                <div class="playback-controls">
                    <button type="button" data-testid="playback-prev" on:click=move |_| step(false)>"◀ Previous change"</button>
                    <button type="button" data-testid="playback-play" on:click=toggle_play>
                        {move || if view.playing.get() { "Pause" } else { "Play" }}
                    </button>
                    <button type="button" data-testid="playback-next" on:click=move |_| step(true)>"Next change ▶"</button>
                    <label>
                        "Speed "
                        <select
                            data-testid="playback-speed"
                            on:change=move |event| view.speed.set(event_target_value(&event).parse().unwrap_or(1))
                        >
                            {SPEEDS
                                .into_iter()
                                .map(|speed| view! { <option value=speed.to_string() selected=speed == 1>{format!("{speed}x")}</option> })
                                .collect_view()}
                        </select>
                    </label>
                    <label>
                        <input
                            type="checkbox"
                            data-testid="playback-skip-idle"
                            prop:checked=move || view.skip_idle.get()
                            on:change=move |event| view.skip_idle.set(event_target_checked(&event))
                        />
                        " Skip idle"
                    </label>
                    <span class="playback-time" data-testid="playback-time">{time}</span>
                </div>
                <div class="playback-people" aria-label="Highlight one person's changes">
                    <For each=move || view.people.get() key=|person| person.client let:person>
                        <PersonButton person view />
                    </For>
                </div>
                {move || {
                    view.run_output
                        .get()
                        .map(|output| view! { <pre class="playback-run-output" data-testid="playback-run-output">{output}</pre> })
                }}
            </Show>
        </section>
    }
}

#[component]
fn MarkerButton(marker: Marker, view: View) -> impl IntoView {
    let Marker {
        kind,
        at_ms,
        label,
        output,
        ..
    } = marker;
    let left = move || {
        let duration = view.duration.get().max(1) as f64;
        let offset = at_ms.saturating_sub(view.start.get()) as f64;
        format!("left: {:.3}%", (offset / duration * 100.0).min(100.0))
    };
    let on_click = move |_| {
        view.playing.set(false);
        let offset = at_ms.saturating_sub(view.start.get_untracked());
        seek(view, offset.min(view.duration.get_untracked()));
        if let Some(output) = &output {
            view.run_output.set(Some(output.clone()));
        }
    };
    view! {
        <button
            type="button"
            class=format!("playback-marker marker-{kind}")
            data-testid="playback-marker"
            data-kind=kind
            data-at=at_ms.to_string()
            style=left
            title=label.clone()
            aria-label=label
            on:click=on_click
        ></button>
    }
}

#[component]
fn PersonButton(person: Person, view: View) -> impl IntoView {
    let Person {
        client,
        name,
        color,
    } = person;
    let pressed = move || view.highlighted.get() == Some(client);
    let on_click = move |_| {
        let next = (view.highlighted.get_untracked() != Some(client)).then_some(client);
        view.highlighted.set(next);
        show(view);
    };
    view! {
        <button
            type="button"
            class=format!("playback-author pp-peer-{color}")
            data-testid="playback-author"
            data-client=client.to_string()
            aria-pressed=move || pressed().to_string()
            on:click=on_click
        >
            <span class="swatch" aria-hidden="true"></span>
            {name}
        </button>
    }
}

/// Fetches and rebuilds the history, or says why not.
async fn load(id: &str, view: View) {
    let key = interview::take_key(id);
    if !key.is_empty() {
        // Monaco downloads while the history does and is rebuilt.
        Editor::preload();
    }
    if key.is_empty() {
        view.phase.set(Phase::Denied(
            "Playback is for the interviewer: open it from the session page or the interviewer link."
                .into(),
        ));
        return;
    }
    let fetched = interview::fetch_history(&format!("/api/sessions/{id}/history"), &key).await;
    let reply = fetched.reply;
    let denied = match reply.status {
        200 => None,
        401 | 403 => Some(format!(
            "Playback is for the interviewer: {}.",
            reply.error_message()
        )),
        404 => Some("This session was not found: it may have expired or been deleted.".into()),
        _ => Some(format!(
            "The history could not be loaded: {}",
            reply.error_message()
        )),
    };
    if let Some(message) = denied {
        view.phase.set(Phase::Denied(message));
        return;
    }
    let info: HistoryInfo = match serde_json::from_str(&reply.body) {
        Ok(info) => info,
        Err(e) => {
            view.phase
                .set(Phase::Denied(format!("The history could not be read: {e}")));
            return;
        }
    };
    let mut builder = match TimelineBuilder::new(fetched.updates) {
        Ok(builder) => builder,
        Err(e) => {
            view.phase.set(Phase::Denied(e.to_string()));
            return;
        }
    };
    // A slice at a time: Monaco loads meanwhile (it needs the same thread).
    while !builder.advance(BUILD_SLICE) {
        browser::next_turn().await;
    }
    let timeline = builder.finish();
    let (start, end) = (timeline.start_ms(), timeline.end_ms());
    view.start.set(start);
    view.duration.set(end.saturating_sub(start));
    view.position.set(end.saturating_sub(start));
    view.markers.set(markers(&timeline, &info.events));
    view.people.set(people(&timeline, &info.authors));
    PLAYER.with(|player| {
        *player.borrow_mut() = Some(Player {
            timeline,
            editor: None,
            shown: String::new(),
            language: None,
        });
    });
    view.phase.set(Phase::Ready);
}

/// The markers: runs and language changes from the updates, the rest from
/// the recorded events, in time order.
fn markers(timeline: &Timeline, events: &[serde_json::Value]) -> Vec<Marker> {
    let mut markers: Vec<Marker> = timeline
        .marks()
        .map(|(at_ms, mark)| match mark {
            DocumentMark::Run(run) => Marker {
                id: 0,
                kind: "run",
                at_ms,
                label: format!("{} ran the code ({})", run.by, run.status.label()),
                output: Some(run_output(run)),
            },
            DocumentMark::Language(language) => Marker {
                id: 0,
                kind: "language",
                at_ms,
                label: format!("Language: {}", language.label()),
                output: None,
            },
        })
        .collect();
    for event in events {
        let kind = match event["kind"].as_str() {
            Some("join") => "join",
            Some("leave") => "leave",
            Some("blur") => "blur",
            Some("focus") => "focus",
            Some("paste") => "paste",
            _ => continue,
        };
        let Some(at_ms) = event["at"].as_f64() else {
            continue;
        };
        markers.push(Marker {
            id: 0,
            kind,
            at_ms: at_ms as u64,
            label: describe(event),
            output: None,
        });
    }
    markers.sort_by_key(|marker| marker.at_ms);
    for (id, marker) in markers.iter_mut().enumerate() {
        marker.id = id;
    }
    markers
}

fn run_output(run: &RunRecord) -> String {
    let mut text: String = run.output.iter().map(|chunk| chunk.text.as_str()).collect();
    if run.truncated {
        text.push_str("\n[output truncated]");
    }
    text
}

/// Everyone named in the history, then anyone else who changed the code.
fn people(timeline: &Timeline, authors: &[AuthorInfo]) -> Vec<Person> {
    let mut people: Vec<Person> = authors
        .iter()
        .map(|author| Person {
            client: author.client,
            name: author.name.clone(),
            color: author
                .color
                .as_u64()
                .filter(|color| *color < u64::from(PALETTE_SIZE))
                .map_or_else(|| color_for(author.client), |color| color as u8),
        })
        .collect();
    for client in timeline.authors() {
        if *client != 0 && !people.iter().any(|person| person.client == *client) {
            people.push(Person {
                client: *client,
                name: "Someone".into(),
                color: color_for(*client),
            });
        }
    }
    people
}

fn create_editor(container: leptos::web_sys::HtmlElement, view: View) {
    let theme = if browser::prefers_dark() {
        Theme::Dark
    } else {
        Theme::Light
    };
    let events = EditorEvents {
        on_change: Box::new(|_| {}),
        on_selection: Box::new(|_, _| {}),
        on_undo: Box::new(|| {}),
        on_redo: Box::new(|| {}),
        on_run: Box::new(|| {}),
    };
    spawn_local(async move {
        match Editor::create(&container, "", Language::default(), theme, events).await {
            Ok(editor) => {
                editor.set_read_only(true);
                PLAYER.with(|player| {
                    if let Some(player) = player.borrow_mut().as_mut() {
                        player.editor = Some(editor);
                    }
                });
                show(view);
                view.editor_ready.set(true);
            }
            Err(e) => view
                .phase
                .set(Phase::Denied(format!("The editor failed to load: {e}"))),
        }
    });
}

/// Moves to `offset_ms` on the timeline and shows the code there.
fn seek(view: View, offset_ms: u64) {
    view.position
        .set(offset_ms.min(view.duration.get_untracked()));
    show(view);
}

/// Shows the code as it was at the current position (and the highlight).
fn show(view: View) {
    let at = view.start.get_untracked() + view.position.get_untracked();
    let highlighted = view.highlighted.get_untracked();
    PLAYER.with(|player| {
        let mut player = player.borrow_mut();
        let Some(Player {
            timeline,
            editor: Some(editor),
            shown,
            language,
        }) = player.as_mut()
        else {
            return;
        };
        let count = timeline.steps_at(at);
        let text = timeline.code_after(count);
        if text != *shown {
            // Only the part that differs: the editor keeps its scroll position.
            editor.apply_remote(&[replacement(shown, &text)], &editor.selections());
            if editor.length() as usize != text.encode_utf16().count() {
                editor.set_value(&text);
            }
            *shown = text;
        }
        let wanted = timeline.language_after(count);
        if wanted.is_some() && wanted != *language {
            *language = wanted;
            editor.set_language(wanted.unwrap_or_default());
        }
        let ranges = highlighted.map_or_else(Vec::new, |author| timeline.ranges_by(count, author));
        editor.set_highlights(&ranges);
    });
}

/// The edit turning `old` into `new` (see [`splice_between`]).
fn replacement(old: &str, new: &str) -> Vec<TextOp> {
    let Some(Splice {
        at,
        removed,
        inserted,
    }) = splice_between(old, new)
    else {
        return vec![TextOp::Retain(old.encode_utf16().count() as u32)];
    };
    let mut ops = vec![TextOp::Retain(at as u32)];
    if removed > 0 {
        ops.push(TextOp::Delete(removed as u32));
    }
    if !inserted.is_empty() {
        ops.push(TextOp::Insert(inserted));
    }
    ops
}

/// One tick of play: time moves on by the tick times the speed (idle gaps
/// shortened when asked); at the end, play stops.
fn tick(view: View) {
    if !view.playing.get_untracked() {
        return;
    }
    let duration = view.duration.get_untracked();
    let start = view.start.get_untracked();
    let mut position =
        view.position.get_untracked() + u64::from(TICK_MS) * u64::from(view.speed.get_untracked());
    if view.skip_idle.get_untracked() {
        let next = PLAYER.with(|player| {
            let player = player.borrow();
            player
                .as_ref()
                .and_then(|player| player.timeline.next_change(start + position))
        });
        if let Some(next) = next {
            position = position.max(next.saturating_sub(start).saturating_sub(IDLE_GAP_MS));
        }
    }
    if position >= duration {
        position = duration;
        view.playing.set(false);
    }
    seek(view, position);
}

/// `m:ss` for a span of ms.
fn clock(ms: u64) -> String {
    let seconds = ms / 1000;
    format!("{}:{:02}", seconds / 60, seconds % 60)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_clock_reads_minutes_and_seconds() {
        assert_eq!(clock(0), "0:00");
        assert_eq!(clock(61_999), "1:01");
        assert_eq!(clock(3_600_000), "60:00");
    }

    #[test]
    fn only_the_middle_that_differs_is_replaced() {
        assert_eq!(
            replacement("héllo 👋 world", "héllo 🌍 world"),
            [
                TextOp::Retain(6),
                TextOp::Delete(2),
                TextOp::Insert("🌍".into())
            ]
        );
        // 👋 and 😀 share their high surrogate: the pair is replaced whole.
        assert_eq!(
            replacement("a👋", "a😀"),
            [
                TextOp::Retain(1),
                TextOp::Delete(2),
                TextOp::Insert("😀".into())
            ]
        );
        assert_eq!(
            replacement("abc", "abc"),
            [TextOp::Retain(3)],
            "nothing to change"
        );
        assert_eq!(
            replacement("", "x"),
            [TextOp::Retain(0), TextOp::Insert("x".into())]
        );
    }
}

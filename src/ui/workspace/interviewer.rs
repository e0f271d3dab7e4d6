//! The interviewer's side of the session page, shown only to a browser that
//! holds the interviewer key: the interviewer link, the password, ending and
//! reopening the interview, the interview record, the private notes (their own
//! document, synced over `/ws/<id>/notes`) and the focus and paste notices the
//! server records there. The server refuses all of it without the key; this
//! panel is only its face.

use super::signals::{Notice, WorkspaceSignals};
use crate::{
    collab::{backoff, notes::NotesReplica},
    domain::close_codes as close,
    interop::{
        browser, clipboard, interview,
        socket::{Socket, SocketEvent},
    },
};
use leptos::{html, prelude::*, task::spawn_local};
use std::{cell::RefCell, rc::Rc};

thread_local! {
    /// The page's notes connection (one interviewer panel per page).
    static NOTES: RefCell<Option<Rc<RefCell<NotesLink>>>> = const { RefCell::new(None) };
}

/// Focus and paste notices kept on screen.
const MAX_FOCUS_NOTICES: usize = 50;

#[component]
pub fn InterviewerPanel(
    session_id: String,
    share_url: String,
    password_required: bool,
    signals: WorkspaceSignals,
) -> impl IntoView {
    let key = signals.key;
    let share_url = StoredValue::new(share_url);
    let link = move || format!("{}#key={}", share_url.get_value(), key.get());
    let (copied, set_copied) = signal(String::new());
    let copy = move |_| {
        let link = link();
        spawn_local(async move {
            let feedback = match clipboard::copy_text(&link).await {
                Ok(()) => "Copied",
                Err(_) => "Select the link and press Ctrl+C",
            };
            set_copied.set(feedback.into());
        });
    };
    let has_password = RwSignal::new(password_required);
    let new_password = RwSignal::new(String::new());
    let message = RwSignal::new(None::<String>);
    let api = {
        let id = session_id.clone();
        move |path: &str| format!("/api/sessions/{id}{path}")
    };
    let request =
        move |method: &'static str, url: String, body: String, then: Box<dyn FnOnce()>| {
            let key = key.get_untracked();
            spawn_local(async move {
                let reply = interview::send_json(method, &url, &key, &body).await;
                if reply.is_success() {
                    message.set(None);
                    then();
                } else {
                    message.set(Some(reply.error_message()));
                }
            });
        };
    let set_password = {
        let api = api.clone();
        move |event: leptos::ev::SubmitEvent| {
            event.prevent_default();
            let body = serde_json::json!({ "password": new_password.get_untracked() }).to_string();
            request(
                "PUT",
                api("/password"),
                body,
                Box::new(move || {
                    has_password.set(true);
                    new_password.set(String::new());
                }),
            );
        }
    };
    let clear_password = {
        let api = api.clone();
        move |_| {
            request(
                "DELETE",
                api("/password"),
                String::new(),
                Box::new(move || has_password.set(false)),
            )
        }
    };
    let end = {
        let api = api.clone();
        move |_| {
            request(
                "POST",
                api("/end"),
                String::new(),
                Box::new(move || signals.ended.set(true)),
            )
        }
    };
    let reopen = {
        let api = api.clone();
        move |_| {
            request(
                "POST",
                api("/reopen"),
                String::new(),
                Box::new(move || signals.ended.set(false)),
            )
        }
    };
    let export_record = {
        let id = session_id.clone();
        move |_| {
            let url = format!("/api/sessions/{id}/export?format=html");
            let name = format!("interview-{}.html", id.get(..8).unwrap_or(&id));
            let key = key.get_untracked();
            spawn_local(async move {
                let reply = interview::send_json("GET", &url, &key, "").await;
                if reply.is_success() {
                    interview::download(&name, &reply.body, "text/html");
                } else {
                    message.set(Some(reply.error_message()));
                }
            });
        }
    };

    let notes = RwSignal::new(String::new());
    let notes_ready = RwSignal::new(false);
    let textarea = NodeRef::<html::Textarea>::new();
    on_cleanup(|| {
        // Dropping the link closes its socket.
        NOTES.with(|notes| notes.borrow_mut().take());
    });
    {
        let id = session_id.clone();
        // Browser only: the notes connection, once the key is known.
        Effect::new(move |started: Option<bool>| {
            if started == Some(true) || key.get().is_empty() {
                return started.unwrap_or(false);
            }
            let view = NotesView {
                notes,
                ready: notes_ready,
                textarea,
                focus_notices: signals.focus_notices,
            };
            let link = NotesLink::start(id.clone(), view);
            NOTES.with(|notes| *notes.borrow_mut() = Some(link));
            true
        });
    }
    let on_notes_input = move |event: leptos::ev::Event| {
        let text = event_target_value(&event);
        notes.set(text.clone());
        let link = NOTES.with(|notes| notes.borrow().clone());
        if let Some(link) = link {
            if let Ok(mut link) = link.try_borrow_mut() {
                link.edit(&text);
            }
        }
    };

    view! {
        <section class="interviewer" data-testid="interviewer-panel" aria-label="Interviewer">
            <h2>"Interviewer"</h2>
            <div class="share interviewer-share">
                <label for="interviewer-link" class="share-label">"Interviewer link"</label>
                <input id="interviewer-link" data-testid="interviewer-link" readonly prop:value=link />
                <button type="button" data-testid="copy-interviewer-link" on:click=copy>"Copy"</button>
                <span class="feedback" aria-live="polite">{copied}</span>
                <p class="hint">"Whoever opens this link is an interviewer too. Share the candidate link above with the candidate."</p>
            </div>
            <form class="password-set" data-testid="password-set" on:submit=set_password>
                <label>
                    <span class="visually-hidden">"New password"</span>
                    <input
                        type="password"
                        autocomplete="new-password"
                        placeholder="New password"
                        prop:value=move || new_password.get()
                        on:input=move |event| new_password.set(event_target_value(&event))
                    />
                </label>
                <button type="submit">"Set password"</button>
                <button type="button" data-testid="password-clear" on:click=clear_password disabled=move || !has_password.get()>
                    "Remove password"
                </button>
                <span class="password-status">
                    {move || if has_password.get() { "Password set" } else { "No password" }}
                </span>
            </form>
            <div class="interview-actions">
                <Show
                    when=move || signals.ended.get()
                    fallback=move || view! { <button type="button" class="danger" data-testid="end-session" on:click=end.clone()>"End interview"</button> }
                >
                    <button type="button" data-testid="reopen-session" on:click=reopen.clone()>"Reopen interview"</button>
                </Show>
                <button type="button" data-testid="export-record" on:click=export_record>"Download record"</button>
                <a
                    class="button-link"
                    data-testid="playback-link"
                    href=format!("/s/{session_id}/playback")
                    target="_blank"
                    rel="noopener"
                >
                    "Playback"
                </a>
            </div>
            {move || message.get().map(|text| view! { <p class="error" role="alert">{text}</p> })}
            <label class="notes">
                <span>"Private notes (interviewers only)"</span>
                <textarea
                    data-testid="notes"
                    node_ref=textarea
                    rows="8"
                    placeholder=move || if notes_ready.get() { "Notes only interviewers see" } else { "Connecting…" }
                    disabled=move || !notes_ready.get()
                    prop:value=move || notes.get()
                    on:input=on_notes_input
                ></textarea>
            </label>
            <div class="focus-notices" aria-live="polite">
                <For each=move || signals.focus_notices.get() key=|n| n.id let:notice>
                    <p class="notice" data-testid="focus-notice">{notice.text}</p>
                </For>
            </div>
        </section>
    }
}

/// Where the notes connection shows what it learns.
#[derive(Clone, Copy)]
struct NotesView {
    notes: RwSignal<String>,
    ready: RwSignal<bool>,
    textarea: NodeRef<html::Textarea>,
    focus_notices: RwSignal<Vec<Notice>>,
}

/// The notes replica and its connection (reconnecting with backoff).
struct NotesLink {
    session_id: String,
    replica: NotesReplica,
    socket: Option<Socket>,
    attempts: u32,
    stopped: bool,
    next_notice: u64,
    view: NotesView,
    this: std::rc::Weak<RefCell<NotesLink>>,
}

impl NotesLink {
    fn start(session_id: String, view: NotesView) -> Rc<RefCell<NotesLink>> {
        let client_id = (browser::random() * f64::from(u32::MAX)) as u64;
        let link = Rc::new_cyclic(|this| {
            RefCell::new(NotesLink {
                session_id,
                replica: NotesReplica::new(client_id),
                socket: None,
                attempts: 0,
                stopped: false,
                next_notice: 0,
                view,
                this: this.clone(),
            })
        });
        Self::connect(&link);
        link
    }

    fn connect(link: &Rc<RefCell<NotesLink>>) {
        let (url, weak) = {
            let link = link.borrow();
            // The key goes as a cookie (see `interview::take_key`).
            let url =
                browser::session_socket_url(&link.session_id).map(|url| format!("{url}/notes"));
            (url, link.this.clone())
        };
        let Some(url) = url else { return };
        let on_event = move |event| {
            if let Some(link) = weak.upgrade() {
                if let Ok(mut link) = link.try_borrow_mut() {
                    link.on_event(event);
                }
            }
        };
        match Socket::connect(&url, on_event) {
            Ok(socket) => link.borrow_mut().socket = Some(socket),
            Err(_) => link.borrow_mut().reconnect_later(),
        }
    }

    fn on_event(&mut self, event: SocketEvent) {
        match event {
            SocketEvent::Open => {
                self.attempts = 0;
                let effects = self.replica.on_open();
                self.send(&effects.send);
            }
            SocketEvent::Message(frame) => {
                let Ok(effects) = self.replica.on_frame(&frame) else {
                    return;
                };
                self.send(&effects.send);
                if effects.synced {
                    self.view.ready.set(true);
                }
                if effects.text_changed {
                    self.show_text();
                }
                for event in effects.new_events {
                    self.notice(&event);
                }
            }
            SocketEvent::Closed { code, .. } => {
                self.socket = None;
                self.view.ready.set(false);
                if matches!(code, close::INTERVIEWER_ONLY | close::SESSION_NOT_FOUND) {
                    self.stopped = true;
                } else {
                    self.reconnect_later();
                }
            }
        }
    }

    /// The textarea now holds `text`: send the change (kept in the replica,
    /// and synced on reconnect, if the connection is down).
    fn edit(&mut self, text: &str) {
        let effects = self.replica.edit(text);
        self.send(&effects.send);
    }

    fn send(&self, frames: &[Vec<u8>]) {
        if let Some(socket) = &self.socket {
            for frame in frames {
                socket.send(frame);
            }
        }
    }

    /// Shows the replica's text, keeping the caret where the text around it went.
    fn show_text(&self) {
        let text = self.replica.text();
        let before = self.view.notes.get_untracked();
        let caret = self.view.textarea.get_untracked().and_then(|area| {
            let start = area.selection_start().ok().flatten()?;
            let end = area.selection_end().ok().flatten()?;
            Some((area, start, end))
        });
        self.view.notes.set(text.clone());
        if let Some((area, start, end)) = caret {
            let moved = |offset: u32| moved_offset(&before, &text, offset);
            let _ = area.set_selection_range(moved(start), moved(end));
        }
    }

    fn notice(&mut self, event: &yrs::Any) {
        let Ok(event) = serde_json::to_value(event) else {
            return;
        };
        // Joins and leaves are recorded too (for the record); the people
        // panel already shows those.
        let attention = matches!(event["kind"].as_str(), Some("blur" | "focus" | "paste"));
        if event["role"] != "candidate" || !attention {
            return;
        }
        let text = crate::domain::events::describe(&event);
        let id = self.next_notice;
        self.next_notice += 1;
        self.view.focus_notices.update(|list| {
            list.push(Notice { id, text });
            let excess = list.len().saturating_sub(MAX_FOCUS_NOTICES);
            list.drain(..excess);
        });
    }

    fn reconnect_later(&mut self) {
        if self.stopped {
            return;
        }
        let delay = backoff::delay(self.attempts, browser::random());
        self.attempts += 1;
        let weak = self.this.clone();
        browser::set_timeout(
            move || {
                if let Some(link) = weak.upgrade() {
                    NotesLink::connect(&link);
                }
            },
            delay.as_millis() as u32,
        );
    }
}

/// Where a caret at UTF-16 `offset` in `before` is in `after`: unchanged
/// before the edit, moved by the edit's growth after it.
fn moved_offset(before: &str, after: &str, offset: u32) -> u32 {
    let old: Vec<u16> = before.encode_utf16().collect();
    let new: Vec<u16> = after.encode_utf16().collect();
    let prefix = old.iter().zip(&new).take_while(|(a, b)| a == b).count() as u32;
    if offset <= prefix {
        return offset;
    }
    let grown = new.len() as i64 - old.len() as i64;
    (i64::from(offset) + grown).clamp(prefix as i64, new.len() as i64) as u32
}

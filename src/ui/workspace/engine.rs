//! The engine of a session page: owns the document replica (`collab`), the
//! WebSocket and the Monaco editor, routes events between them, reconnects with
//! backoff and publishes what the page shows through [`WorkspaceSignals`].
//! Browser only in practice: on the server the interop twins make it inert.

use super::signals::{ConnectionState, Notice, Participant, RunView, WorkspaceSignals};
use crate::{
    collab::{
        backoff,
        presence::Peer,
        text_ops::{transform_offset, EditorChange},
        CollabClient, Effects,
    },
    domain::{
        close_codes as close,
        run::{LiveRun, RunRecord, RunStatus, LIVE_OUTPUT_BYTES},
        Language,
    },
    interop::{
        browser,
        editor::{Editor, EditorEvents, PeerCursor, Theme},
        interview,
        runner::{RunLimits, RunOutcome, Runner},
        socket::{Socket, SocketEvent},
    },
};
use leptos::{prelude::*, task::spawn_local};
use std::{
    cell::{Cell, RefCell},
    collections::HashMap,
    rc::{Rc, Weak},
};

/// How often we re-announce our presence (y-protocols renews every 15 s).
const PRESENCE_RENEW_MS: u32 = 15_000;
/// How often a run in progress announces the end of its output to the others
/// (through our presence: at most a few KiB, a few times a second).
const LIVE_RUN_EVERY_MS: u32 = 250;
/// Others' presence not renewed within this is dropped.
const PRESENCE_TIMEOUT_MS: u64 = 30_000;
/// How long a join/leave notice stays.
const NOTICE_MS: u32 = 4_000;
/// Python starts loading this long after the page at the latest.
const PYTHON_PRELOAD_FALLBACK_MS: u32 = 4_000;

pub type EngineHandle = Rc<RefCell<Engine>>;

thread_local! {
    /// The engine of the session page being shown. A thread-local rather than a
    /// reactive store: the engine is browser-only (`!Send`), and the page's
    /// reactive owner is also created and dropped on the server's threads.
    static CURRENT: RefCell<Option<EngineHandle>> = const { RefCell::new(None) };
}

/// Makes `engine` the page's engine (dropping any previous one).
pub fn install(engine: EngineHandle) {
    CURRENT.with(|current| *current.borrow_mut() = Some(engine));
}

/// Drops the page's engine (the workspace was unmounted).
pub fn uninstall() {
    let previous = CURRENT.with(|current| current.borrow_mut().take());
    drop(previous);
}

/// True once the page's engine runs.
pub fn is_running() -> bool {
    CURRENT.with(|current| current.borrow().is_some())
}

/// Runs `f` on the page's engine, if there is one and it is not busy.
pub fn with_current(f: impl FnOnce(&mut Engine)) {
    let engine = CURRENT.with(|current| current.borrow().clone());
    if let Some(engine) = engine {
        if let Ok(mut engine) = engine.try_borrow_mut() {
            f(&mut engine);
        }
    }
}

pub struct Engine {
    session_id: String,
    /// The interviewer key this browser holds (empty: a candidate).
    key: String,
    client: CollabClient,
    socket: Option<Socket>,
    editor: Option<Editor>,
    editor_loading: bool,
    container: Option<leptos::web_sys::HtmlElement>,
    signals: WorkspaceSignals,
    attempts: u32,
    /// Local edits were made that could not be sent yet.
    unsent: bool,
    /// The server said the session is gone: stop reconnecting.
    stopped: bool,
    known_participants: HashMap<u64, String>,
    /// Whether the editor shows anyone else's caret: a page alone (or with
    /// people who have no caret) skips the redraw after every keystroke.
    remote_cursors_drawn: Cell<bool>,
    next_notice: u64,
    runner: Option<Runner>,
    run_limits: RunLimits,
    runs_started: u64,
    /// The server refused a change (4413) and the replica was rebuilt under a
    /// new client id: until it has synced, the editor shows the old text and
    /// is reloaded from the server's document once the sync arrives.
    replica_replaced: bool,
    this: Weak<RefCell<Engine>>,
}

/// Starts the engine for a session whose editor goes into `container`.
pub fn start(
    session_id: String,
    container: leptos::web_sys::HtmlElement,
    signals: WorkspaceSignals,
    run_limits: RunLimits,
    document_limit: usize,
    key: String,
) -> EngineHandle {
    let mut client = new_replica(&signals);
    client.set_size_limit(document_limit);
    let engine = Rc::new_cyclic(|this| {
        RefCell::new(Engine {
            session_id,
            key,
            client,
            socket: None,
            editor: None,
            editor_loading: false,
            container: Some(container),
            signals,
            attempts: 0,
            unsent: false,
            stopped: false,
            known_participants: HashMap::new(),
            remote_cursors_drawn: Cell::new(false),
            next_notice: 0,
            runner: None,
            run_limits,
            runs_started: 0,
            replica_replaced: false,
            this: this.clone(),
        })
    });
    Editor::preload();
    connect(&engine);
    // The runners (a JavaScript worker kept ready for the first run, and
    // Python, which takes seconds to load) start once the editor is up, so
    // their downloads do not compete with it, or after a few seconds whatever
    // happens.
    let weak = Rc::downgrade(&engine);
    browser::set_timeout(
        move || with_engine(&weak, |engine| engine.start_runners()),
        PYTHON_PRELOAD_FALLBACK_MS,
    );
    let weak = Rc::downgrade(&engine);
    browser::set_interval(
        move || {
            if let Some(engine) = weak.upgrade() {
                let mut engine = engine.borrow_mut();
                let renew = engine.client.renew_presence();
                engine.apply(renew);
                let expired = engine
                    .client
                    .expire_presence(browser::now_ms(), PRESENCE_TIMEOUT_MS);
                engine.apply(expired);
            }
        },
        PRESENCE_RENEW_MS,
    );
    let weak = Rc::downgrade(&engine);
    browser::guard_page_unload(move || {
        weak.upgrade()
            .and_then(|engine| engine.try_borrow().ok().map(|e| e.has_unsent_edits()))
            .unwrap_or(false)
    });
    engine
}

/// A fresh replica of the session under a random client id.
fn new_replica(signals: &WorkspaceSignals) -> CollabClient {
    let client_id = (browser::random() * f64::from(u32::MAX)) as u64;
    let mut client = CollabClient::new(client_id, &signals.name.get_untracked(), browser::now_ms);
    // Announced with our presence when the connection opens; the server
    // stamps the same role (it is the server's word, not ours).
    let role = if signals.interviewer.get_untracked() {
        "interviewer"
    } else {
        "candidate"
    };
    let _ = client.set_role(role);
    client
}

/// Runs `f` on the engine if it is alive and not busy.
fn with_engine(weak: &Weak<RefCell<Engine>>, f: impl FnOnce(&mut Engine)) {
    if let Some(engine) = weak.upgrade() {
        match engine.try_borrow_mut() {
            Ok(mut engine) => f(&mut engine),
            Err(_) => leptos::logging::error!("pairpad: engine busy; event dropped"),
        }
    }
}

fn connect(engine: &EngineHandle) {
    let (url, weak) = {
        let engine = engine.borrow();
        // The key, if any, goes as a cookie (see `interview::take_key`).
        let url = browser::session_socket_url(&engine.session_id);
        (url, engine.this.clone())
    };
    let Some(url) = url else { return };
    let on_event = {
        let weak = weak.clone();
        move |event| with_engine(&weak, |engine| engine.on_socket_event(event))
    };
    match Socket::connect(&url, on_event) {
        Ok(socket) => engine.borrow_mut().socket = Some(socket),
        Err(e) => {
            leptos::logging::error!("pairpad: cannot open the connection: {e}");
            engine.borrow_mut().schedule_reconnect();
        }
    }
}

/// An insertion this long (UTF-16 units) counts as a paste interviewers hear
/// about.
const LARGE_PASTE_CHARS: usize = 200;

impl Engine {
    /// The code as this page has it.
    pub fn code(&self) -> String {
        self.client.code()
    }

    /// Tells the interviewers (through the server) that this page's tab lost
    /// (`blur`) or regained (`focus`) attention, or that a large block was
    /// pasted.
    pub fn report(&self, kind: &str, chars: Option<usize>) {
        let url = format!("/api/sessions/{}/events", self.session_id);
        let body = serde_json::json!({
            "kind": kind,
            "name": self.signals.name.get_untracked(),
            "chars": chars,
        })
        .to_string();
        let key = self.key.clone();
        spawn_local(async move {
            let reply = interview::send_json("POST", &url, &key, &body).await;
            if !reply.is_success() {
                leptos::logging::warn!("pairpad: event not recorded: {}", reply.error_message());
            }
        });
    }

    /// True while some local edit has not reached the server.
    pub fn has_unsent_edits(&self) -> bool {
        self.unsent
            || self
                .socket
                .as_ref()
                .is_some_and(|s| s.buffered_amount() > 0)
    }

    /// The user picked a language.
    pub fn set_language(&mut self, language: Language) {
        let effects = self.client.set_language(language);
        self.apply(effects);
    }

    /// The user changed their display name.
    pub fn set_name(&mut self, name: &str) {
        let effects = self.client.set_name(name);
        self.apply(effects);
    }

    /// The user toggled the theme.
    pub fn set_theme(&mut self, theme: Theme) {
        if let Some(editor) = &self.editor {
            editor.set_theme(theme);
        }
    }

    /// Starts the runners (once): a JavaScript worker for the first run, and
    /// Python loading in the background, reporting progress.
    fn start_runners(&mut self) {
        if self.runner.is_some() {
            return;
        }
        self.runner = Runner::new();
        let Some(runner) = self.runner.as_mut() else {
            return;
        };
        let python = self.signals.python;
        runner.preload_python(move |status| python.set(status));
    }

    /// Runs the current code in the current language (Run button, Ctrl+Enter).
    /// One run at a time: a run asked for while one is going is refused.
    pub fn run_code(&mut self) {
        self.start_runners();
        let Some(runner) = &self.runner else { return };
        if self.signals.running.get_untracked() || runner.is_running() {
            return;
        }
        self.runs_started += 1;
        let id = format!("{}-{}", self.client.client_id(), self.runs_started);
        let language = self
            .client
            .language()
            .unwrap_or_else(|| self.signals.language.get_untracked());
        let started_at = browser::now_ms();
        let view = self.signals.run_view;
        view.set(Some(RunView {
            id: id.clone(),
            by: self.client.name().to_owned(),
            language,
            status: RunStatus::Running,
            duration_ms: 0,
            output: Vec::new(),
            truncated: false,
            local: true,
        }));
        self.signals.running.set(true);
        let output_id = id.clone();
        let on_output = move |stream, text: String| {
            view.update(|current| {
                if let Some(current) = current.as_mut().filter(|v| v.id == output_id) {
                    current.push(stream, &text);
                }
            })
        };
        let run = runner.run(
            language,
            &self.client.code(),
            &self.signals.stdin.get_untracked(),
            self.run_limits,
            on_output,
        );
        self.announce_live_run();
        let weak = self.this.clone();
        spawn_local(async move {
            let outcome = run.await;
            with_engine(&weak, |engine| {
                engine.finish_run(id, language, started_at, outcome)
            });
        });
    }

    /// Stops our run.
    pub fn stop_code(&mut self) {
        if let Some(runner) = &self.runner {
            runner.stop();
        }
    }

    fn finish_run(
        &mut self,
        id: String,
        language: Language,
        started_at: u64,
        outcome: Result<RunOutcome, String>,
    ) {
        self.signals.running.set(false);
        let (status, duration_ms, truncated) = match &outcome {
            Ok(outcome) => (
                outcome.status,
                outcome.duration_ms.max(0.0) as u64,
                outcome.truncated,
            ),
            Err(_) => (
                RunStatus::Error,
                browser::now_ms().saturating_sub(started_at),
                false,
            ),
        };
        let mut record = None;
        self.signals.run_view.update(|view| {
            if let Some(view) = view.as_mut().filter(|v| v.id == id) {
                if let Err(problem) = &outcome {
                    view.push(crate::domain::run::Stream::Stderr, &format!("{problem}\n"));
                }
                view.status = status;
                view.duration_ms = duration_ms;
                view.truncated |= truncated;
                record = Some(RunRecord {
                    id: id.clone(),
                    by: view.by.clone(),
                    language,
                    started_at,
                    duration_ms,
                    status,
                    output: view.output.clone(),
                    truncated: view.truncated,
                });
            }
        });
        if let Some(mut record) = record {
            // Everyone sees who ran what and its output (capped for sharing).
            record.cap_for_sharing();
            let effects = self.client.record_run(&record);
            let refused = effects.refused_over;
            self.apply(effects);
            if let Some(limit) = refused {
                self.signals.problem.set(Some(format!(
                    "This run was not shared with the others: the document is at its size limit ({limit} bytes)."
                )));
            }
        }
        // After the record: the others replace what they watched with it.
        let ended = self.client.set_live_run(None);
        self.apply(ended);
    }

    /// Tells the others about our run in progress with the end of its output
    /// so far, and again every [`LIVE_RUN_EVERY_MS`] while it goes.
    fn announce_live_run(&mut self) {
        let live = self.signals.run_view.with_untracked(|view| {
            view.as_ref()
                .filter(|view| view.local && view.status == RunStatus::Running)
                .map(|view| LiveRun::new(&view.id, view.language, &view.output, LIVE_OUTPUT_BYTES))
        });
        let Some(live) = live else {
            return;
        };
        let effects = self.client.set_live_run(Some(live));
        self.apply(effects);
        let weak = self.this.clone();
        browser::set_timeout(
            move || with_engine(&weak, |engine| engine.announce_live_run()),
            LIVE_RUN_EVERY_MS,
        );
    }

    /// Shows another participant's run while it goes, as their presence
    /// announces it (never over our own run, nor over its record once that
    /// arrived); a run shown as going that nobody announces any more gives way
    /// to the latest record.
    fn show_live_run(&mut self, peers: &[Peer]) {
        if self.signals.running.get_untracked() {
            return;
        }
        let live = peers
            .iter()
            .filter(|peer| !peer.is_local)
            .find_map(|peer| Some((&peer.name, peer.run.as_ref()?)));
        // The latest record is read only when a run is announced or shown as
        // going: presence changes with every caret move.
        let watching = || {
            self.signals.run_view.with_untracked(|view| {
                view.as_ref()
                    .is_some_and(|view| !view.local && view.status == RunStatus::Running)
            })
        };
        if live.is_none() && !watching() {
            return;
        }
        let latest = self.client.latest_run();
        let live = live.filter(|(_, run)| latest.as_ref().is_none_or(|record| record.id != run.id));
        let Some((by, run)) = live else {
            if watching() {
                self.signals.run_view.set(latest.map(RunView::from_record));
            }
            return;
        };
        let view = RunView {
            id: run.id.clone(),
            by: by.clone(),
            language: run.language,
            status: RunStatus::Running,
            duration_ms: 0,
            output: run.output.clone(),
            truncated: run.truncated,
            local: false,
        };
        if self
            .signals
            .run_view
            .with_untracked(|shown| shown.as_ref() != Some(&view))
        {
            self.signals.run_view.set(Some(view));
        }
    }

    fn show_latest_run(&mut self) {
        let Some(latest) = self.client.latest_run() else {
            return;
        };
        if self.signals.running.get_untracked() {
            return; // never replace our own streaming output
        }
        // Replaced unless it is this record already (a run we watched going
        // is replaced by its record).
        let shown = self.signals.run_view.with_untracked(|v| {
            v.as_ref()
                .filter(|v| v.status != RunStatus::Running || v.local)
                .map(|v| v.id.clone())
        });
        if shown.as_deref() != Some(latest.id.as_str()) {
            self.signals
                .run_view
                .set(Some(RunView::from_record(latest)));
        }
    }

    fn on_socket_event(&mut self, event: SocketEvent) {
        match event {
            SocketEvent::Open => {
                self.attempts = 0;
                let effects = self.client.on_open();
                self.apply(effects);
            }
            SocketEvent::Message(bytes) => match self.client.on_frame(&bytes) {
                Ok(effects) => self.apply(effects),
                Err(e) => leptos::logging::error!("pairpad: bad frame from server: {e}"),
            },
            SocketEvent::Closed { code, reason } => self.on_closed(code, &reason),
        }
    }

    fn on_closed(&mut self, code: u16, reason: &str) {
        self.socket = None;
        let effects = self.client.on_close();
        self.apply(effects);
        match code {
            close::SESSION_NOT_FOUND | close::MALFORMED_SESSION_ID => {
                self.stopped = true;
                self.signals.status.set(ConnectionState::Offline);
                self.signals
                    .problem
                    .set(Some("This session no longer exists or has expired.".into()));
                return;
            }
            close::DOCUMENT_TOO_LARGE => {
                // A change of ours was refused (another's landed first, or
                // offline edits merged past the limit). Everything the server
                // accepted is kept; what it refused cannot be sent again, and
                // nothing after it could apply on the server (it depends on
                // it): so start a new replica, under a new client id, from the
                // server's document, at once.
                self.replace_replica();
                self.signals.problem.set(Some(format!(
                    "Your last change was not saved: the document would pass its size limit ({reason}). Everything before it is kept."
                )));
                self.reconnect_after(0);
                return;
            }
            close::INTERVIEW_ENDED => {
                // An edit of ours raced the end of the interview: it is not
                // kept (nobody else has it), and the page turns read-only.
                self.replace_replica();
                self.signals.ended.set(true);
                self.reconnect_after(0);
                return;
            }
            close::PASSWORD_REQUIRED => {
                self.stopped = true;
                self.signals.status.set(ConnectionState::Offline);
                self.signals.locked.set(true);
                return;
            }
            close::INTERVIEWER_ONLY => {
                self.stopped = true;
                self.signals.status.set(ConnectionState::Offline);
                self.signals.problem.set(Some(format!(
                    "This browser's interviewer key is not accepted ({reason})."
                )));
                return;
            }
            close::HISTORY_FULL => {
                self.stopped = true;
                self.signals.status.set(ConnectionState::Offline);
                self.signals.problem.set(Some(format!(
                    "This session cannot store more changes ({reason})."
                )));
                return;
            }
            _ => {}
        }
        self.schedule_reconnect();
    }

    /// Swaps the replica for a fresh one (see `replica_replaced`).
    fn replace_replica(&mut self) {
        let mut client = new_replica(&self.signals);
        if let Some(limit) = self.client.size_limit() {
            client.set_size_limit(limit);
        }
        self.client = client;
        self.replica_replaced = true;
        self.unsent = false;
    }

    fn schedule_reconnect(&mut self) {
        if self.stopped {
            return;
        }
        let attempt = self.attempts;
        self.attempts += 1;
        let state = if attempt >= backoff::OFFLINE_AFTER || !browser::is_online() {
            ConnectionState::Offline
        } else {
            ConnectionState::Reconnecting
        };
        self.signals.status.set(state);
        let delay = backoff::delay(attempt, browser::random());
        self.reconnect_after(delay.as_millis() as u32);
    }

    /// Connects again after `delay_ms` (from a timer: the engine is borrowed now).
    fn reconnect_after(&self, delay_ms: u32) {
        let weak = self.this.clone();
        browser::set_timeout(
            move || {
                if let Some(engine) = weak.upgrade() {
                    connect(&engine);
                }
            },
            delay_ms,
        );
    }

    /// Sends the frames the replica asks to send.
    fn send_all(&mut self, effects: &Effects) {
        for frame in &effects.send {
            let sent = self
                .socket
                .as_ref()
                .is_some_and(|socket| socket.send(frame));
            if !sent {
                // Kept in the document; the next sync carries it.
                self.unsent = true;
            }
        }
    }

    /// Carries out what the replica asks for.
    fn apply(&mut self, effects: Effects) {
        self.send_all(&effects);
        if let Some(limit) = effects.refused_over {
            self.signals.problem.set(Some(format!(
                "That change was not applied: the document would pass its size limit ({limit} bytes)."
            )));
        }
        let reload = effects.reload_editor || (self.replica_replaced && effects.synced);
        if self.replica_replaced && !effects.synced {
            // The new replica is still empty: nothing it says about the text
            // applies to the editor yet.
            self.send_all(&effects);
            return;
        }
        if effects.synced {
            self.replica_replaced = false;
        }
        if let Some(editor) = &self.editor {
            let expected = self.client.code_len_utf16();
            if reload {
                editor.set_value(&self.client.code());
            } else if !effects.text_deltas.is_empty() {
                let mut selections = editor.selections();
                for delta in &effects.text_deltas {
                    for offset in selections.iter_mut() {
                        *offset = transform_offset(*offset, delta);
                    }
                }
                let length = editor.apply_remote(&effects.text_deltas, &selections);
                if length != expected {
                    // Monaco normalised something (line endings): resync.
                    editor.set_value(&self.client.code());
                }
            }
        }
        if let Some(ended) = effects.ended {
            self.signals.ended.set(ended);
            if let Some(editor) = &self.editor {
                editor.set_read_only(ended);
            }
        }
        if let Some(language) = effects.language {
            self.signals.language.set(language);
            if let Some(editor) = &self.editor {
                editor.set_language(language);
            }
        }
        if effects.presence_changed {
            self.refresh_participants();
        } else if !effects.text_deltas.is_empty() || reload {
            // Someone typed: carets after their edit moved, and theirs shows
            // its label (see `Peer::cursor_key`).
            self.refresh_cursors();
        }
        if effects.runs_changed {
            self.show_latest_run();
        }
        if effects.synced {
            self.unsent = false;
            self.signals.status.set(ConnectionState::Connected);
            let recoloured = self.client.ensure_distinct_color();
            self.apply(recoloured);
            self.ensure_editor();
            self.refresh_participants();
        }
    }

    /// Redraws others' carets, selections and name labels in the editor
    /// (nothing to do when none is drawn: a caret first appears with a
    /// presence change, which redraws through `refresh_participants`).
    fn refresh_cursors(&self) {
        if self.remote_cursors_drawn.get() {
            self.draw_cursors(&self.client.peers());
        }
    }

    fn draw_cursors(&self, peers: &[Peer]) {
        let Some(editor) = &self.editor else {
            return;
        };
        let cursors: Vec<PeerCursor> = peers
            .iter()
            .filter(|peer| !peer.is_local)
            .filter_map(|peer| {
                let (anchor, head) = peer.selection?;
                Some(PeerCursor {
                    id: peer.client_id,
                    name: peer.name.clone(),
                    color: peer.color,
                    anchor,
                    head,
                    key: peer.cursor_key,
                })
            })
            .collect();
        self.remote_cursors_drawn.set(!cursors.is_empty());
        editor.set_peers(&cursors);
    }

    fn refresh_participants(&mut self) {
        let peers = self.client.peers();
        let participants: Vec<Participant> = peers
            .iter()
            .map(|peer| Participant {
                client_id: peer.client_id,
                name: peer.name.clone(),
                color: peer.color,
                is_local: peer.is_local,
                interviewer: peer.interviewer,
            })
            .collect();
        self.draw_cursors(&peers);
        // Join and leave notices, once we are in sync (not for the first roll call).
        let now: HashMap<u64, String> = participants
            .iter()
            .filter(|p| !p.is_local)
            .map(|p| (p.client_id, p.name.clone()))
            .collect();
        if self.client.is_synced() {
            let mut texts = Vec::new();
            for (id, name) in &now {
                if !self.known_participants.contains_key(id) {
                    texts.push(format!("{name} joined"));
                }
            }
            for (id, name) in &self.known_participants {
                if !now.contains_key(id) {
                    texts.push(format!("{name} left"));
                }
            }
            for text in texts {
                self.notify(text);
            }
        }
        self.known_participants = now;
        self.signals.participants.set(participants);
        self.show_live_run(&peers);
    }

    fn notify(&mut self, text: String) {
        let id = self.next_notice;
        self.next_notice += 1;
        let notices = self.signals.notices;
        notices.update(|list| list.push(Notice { id, text }));
        browser::set_timeout(
            move || notices.update(|list| list.retain(|n| n.id != id)),
            NOTICE_MS,
        );
    }

    /// Creates the Monaco editor once the first sync is done (so it opens with
    /// the real document, never an empty one).
    fn ensure_editor(&mut self) {
        if self.editor.is_some() || self.editor_loading {
            return;
        }
        let Some(container) = self.container.clone() else {
            return;
        };
        self.editor_loading = true;
        let text = self.client.code();
        let language = self
            .client
            .language()
            .unwrap_or_else(|| self.signals.language.get_untracked());
        let theme = self.signals.theme.get_untracked();
        let weak = self.this.clone();
        let events = editor_events(&weak);
        let signals = self.signals;
        spawn_local(async move {
            let created = Editor::create(&container, &text, language, theme, events).await;
            with_engine(&weak, |engine| {
                engine.editor_loading = false;
                match created {
                    Ok(editor) => {
                        // The document may have moved on while Monaco loaded.
                        if engine.client.code_len_utf16() != editor.length()
                            || engine.client.code() != text
                        {
                            editor.set_value(&engine.client.code());
                        }
                        if let Some(current) = engine.client.language() {
                            editor.set_language(current);
                        }
                        editor.set_read_only(engine.client.ended());
                        engine.editor = Some(editor);
                        signals.editor_ready.set(true);
                        engine.refresh_participants();
                        engine.start_runners();
                    }
                    Err(e) => signals
                        .problem
                        .set(Some(format!("The editor failed to load: {e}"))),
                }
            });
        });
    }
}

fn editor_events(weak: &Weak<RefCell<Engine>>) -> EditorEvents {
    let on_change = {
        let weak = weak.clone();
        move |changes: Vec<EditorChange>| {
            with_engine(&weak, |engine| {
                if engine.replica_replaced {
                    // The new replica has not synced: the editor is reloaded
                    // from the server's document when it has.
                    return;
                }
                let pasted = changes
                    .iter()
                    .map(|change| change.text.encode_utf16().count())
                    .max()
                    .unwrap_or(0);
                let effects = engine.client.on_editor_changes(changes);
                engine.apply(effects);
                // Others' carets after the edit moved with the text: their
                // labels (content widgets) are placed by offset, so redraw.
                engine.refresh_cursors();
                if pasted >= LARGE_PASTE_CHARS {
                    engine.report("paste", Some(pasted));
                }
            })
        }
    };
    let on_selection = {
        let weak = weak.clone();
        move |anchor: u32, head: u32| {
            with_engine(&weak, |engine| {
                let effects = engine.client.on_selection(anchor, head);
                engine.apply(effects);
            })
        }
    };
    let on_undo = {
        let weak = weak.clone();
        move || {
            with_engine(&weak, |engine| {
                let effects = engine.client.undo();
                engine.apply(effects);
            })
        }
    };
    let on_redo = {
        let weak = weak.clone();
        move || {
            with_engine(&weak, |engine| {
                let effects = engine.client.redo();
                engine.apply(effects);
            })
        }
    };
    EditorEvents {
        on_change: Box::new(on_change),
        on_selection: Box::new(on_selection),
        on_undo: Box::new(on_undo),
        on_redo: Box::new(on_redo),
        on_run: Box::new({
            let weak = weak.clone();
            move || with_engine(&weak, |engine| engine.run_code())
        }),
    }
}

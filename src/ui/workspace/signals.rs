//! The reactive state of a session page, shared by its components and written
//! by the engine.

use crate::{
    domain::{
        run::{OutputChunk, RunRecord, RunStatus, Stream},
        Language,
    },
    interop::{editor::Theme, runner::PythonStatus},
};
use leptos::prelude::*;

/// The connection as the status indicator shows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConnectionState {
    Connected,
    Reconnecting,
    Offline,
}

impl ConnectionState {
    /// The `data-state` attribute value.
    pub fn as_str(&self) -> &'static str {
        match self {
            ConnectionState::Connected => "connected",
            ConnectionState::Reconnecting => "reconnecting",
            ConnectionState::Offline => "offline",
        }
    }

    pub fn label(&self) -> &'static str {
        match self {
            ConnectionState::Connected => "Connected",
            ConnectionState::Reconnecting => "Connecting…",
            ConnectionState::Offline => "Offline",
        }
    }
}

/// A participant in the users list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Participant {
    pub client_id: u64,
    pub name: String,
    pub color: u8,
    pub is_local: bool,
    /// The server says they hold the interviewer key.
    pub interviewer: bool,
}

/// A short-lived message ("Ada joined").
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Notice {
    pub id: u64,
    pub text: String,
}

/// The run the output panel shows: the local one as it streams, or the latest
/// one recorded in the session.
#[derive(Clone, Debug, PartialEq)]
pub struct RunView {
    pub id: String,
    pub by: String,
    pub language: Language,
    pub status: RunStatus,
    pub duration_ms: u64,
    pub output: Vec<OutputChunk>,
    pub truncated: bool,
    /// Ran in this page (so output streamed here).
    pub local: bool,
}

impl RunView {
    pub fn from_record(record: RunRecord) -> Self {
        Self {
            id: record.id,
            by: record.by,
            language: record.language,
            status: record.status,
            duration_ms: record.duration_ms,
            output: record.output,
            truncated: record.truncated,
            local: false,
        }
    }

    /// Appends output, merging with the previous chunk of the same stream.
    pub fn push(&mut self, stream: Stream, text: &str) {
        match self.output.last_mut() {
            Some(last) if last.stream == stream => last.text.push_str(text),
            _ => self.output.push(OutputChunk {
                stream,
                text: text.to_owned(),
            }),
        }
    }
}

#[derive(Clone, Copy)]
pub struct WorkspaceSignals {
    pub status: RwSignal<ConnectionState>,
    pub participants: RwSignal<Vec<Participant>>,
    pub language: RwSignal<Language>,
    pub theme: RwSignal<Theme>,
    pub name: RwSignal<String>,
    pub notices: RwSignal<Vec<Notice>>,
    pub editor_ready: RwSignal<bool>,
    /// A problem the user must know about (session gone, editor failed, ...).
    pub problem: RwSignal<Option<String>>,
    /// What the output panel shows.
    pub run_view: RwSignal<Option<RunView>>,
    /// A run of ours is going.
    pub running: RwSignal<bool>,
    pub python: RwSignal<PythonStatus>,
    /// Input for the program (one line per input() call).
    pub stdin: RwSignal<String>,
    /// This browser holds the interviewer key.
    pub interviewer: RwSignal<bool>,
    /// That key (empty for a candidate); it never leaves the browser except
    /// to this server, as a Bearer token or the WebSocket's `key` parameter.
    pub key: RwSignal<String>,
    /// The interview has ended: everything is read-only.
    pub ended: RwSignal<bool>,
    /// A password protects the session and this browser has not unlocked it.
    pub locked: RwSignal<bool>,
    /// What the interviewers hear about (focus changes, large pastes).
    pub focus_notices: RwSignal<Vec<Notice>>,
}

impl WorkspaceSignals {
    pub fn new(language: Language, ended: bool, locked: bool) -> Self {
        Self {
            status: RwSignal::new(ConnectionState::Reconnecting),
            participants: RwSignal::new(Vec::new()),
            language: RwSignal::new(language),
            theme: RwSignal::new(Theme::Light),
            name: RwSignal::new(String::new()),
            notices: RwSignal::new(Vec::new()),
            editor_ready: RwSignal::new(false),
            problem: RwSignal::new(None),
            run_view: RwSignal::new(None),
            running: RwSignal::new(false),
            python: RwSignal::new(PythonStatus::Loading("Python: waiting…".into())),
            stdin: RwSignal::new(String::new()),
            interviewer: RwSignal::new(false),
            key: RwSignal::new(String::new()),
            ended: RwSignal::new(ended),
            locked: RwSignal::new(locked),
            focus_notices: RwSignal::new(Vec::new()),
        }
    }
}

//! The reactive state of a session page, shared by its components and written
//! by the engine.

use crate::{domain::Language, interop::editor::Theme};
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
}

/// A short-lived message ("Ada joined").
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Notice {
    pub id: u64,
    pub text: String,
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
}

impl WorkspaceSignals {
    pub fn new(language: Language) -> Self {
        Self {
            status: RwSignal::new(ConnectionState::Reconnecting),
            participants: RwSignal::new(Vec::new()),
            language: RwSignal::new(language),
            theme: RwSignal::new(Theme::Light),
            name: RwSignal::new(String::new()),
            notices: RwSignal::new(Vec::new()),
            editor_ready: RwSignal::new(false),
            problem: RwSignal::new(None),
        }
    }
}

//! The session workspace: the bar (share link, role, language, theme, name,
//! status, code download), the collaborative editor with its server-rendered
//! preview, the people panel, the interviewer's panel for a browser holding
//! the interviewer key, and the password prompt for one that must unlock the
//! session first. The [`engine`] does the work; components only show its
//! signals.

pub mod controls;
pub mod engine;
pub mod interviewer;
pub mod password_prompt;
pub mod run_panel;
pub mod signals;

use crate::{
    api::SessionView,
    domain::Language,
    interop::{browser, editor::Theme, interview, runner::RunLimits},
    ui::{monaco_preload::MonacoPreload, share_link::ShareLink},
};
use controls::{
    ConnectionStatus, DisplayName, EndedBanner, ExportCode, LanguageSelect, RoleBadge, ThemeToggle,
    UserList,
};
use interviewer::InterviewerPanel;
use leptos::{html, prelude::*};
use leptos_meta::Title;
use password_prompt::PasswordPrompt;
use run_panel::RunPanel;
use signals::WorkspaceSignals;

const NAME_KEY: &str = "pairpad.name";
const THEME_KEY: &str = "pairpad.theme";

#[component]
pub fn SessionWorkspace(session: SessionView) -> impl IntoView {
    let signals = WorkspaceSignals::new(session.language, session.ended, session.locked);
    let editor_host = NodeRef::<html::Div>::new();
    let session_id = session.id.clone();
    let run_limits = RunLimits {
        time_limit_ms: session.run_time_limit_ms,
        max_output_bytes: session.max_output_bytes,
        max_output_lines: session.max_output_lines,
    };
    let document_limit = session.max_document_bytes;
    on_cleanup(engine::uninstall);

    // Browser only (effects do not run on the server): the interviewer key
    // this browser holds, remembered name and theme, then the engine (not for
    // a candidate who must unlock the session first). Returns whether it has
    // started.
    Effect::new(move |started: Option<bool>| {
        if started == Some(true) {
            return true;
        }
        let key = interview::take_key(&session_id);
        if !key.is_empty() && signals.key.get_untracked() != key {
            signals.key.set(key.clone());
            signals.interviewer.set(true);
        }
        if signals.locked.get_untracked() && key.is_empty() {
            return true;
        }
        let Some(host) = editor_host.get() else {
            return false;
        };
        let name = browser::load_setting(NAME_KEY).unwrap_or_else(|| {
            let name = format!("Guest {}", (browser::random() * 9000.0) as u32 + 1000);
            browser::save_setting(NAME_KEY, &name);
            name
        });
        signals.name.set(name);
        let theme = match browser::load_setting(THEME_KEY).as_deref() {
            Some("dark") => Theme::Dark,
            Some("light") => Theme::Light,
            _ if browser::prefers_dark() => Theme::Dark,
            _ => Theme::Light,
        };
        signals.theme.set(theme);
        engine::install(engine::start(
            session_id.clone(),
            host.into(),
            signals,
            run_limits,
            document_limit,
            key.clone(),
        ));
        if key.is_empty() {
            // Interviewers hear when a candidate's tab loses or regains focus.
            interview::watch_attention(|focused| {
                engine::with_current(|e| e.report(if focused { "focus" } else { "blur" }, None));
            });
        }
        true
    });

    // Theme changes: remembered, applied to the page and the editor.
    Effect::new(move |previous: Option<Theme>| {
        let theme = signals.theme.get();
        if previous.is_some() {
            browser::save_setting(THEME_KEY, theme.as_str());
        }
        if previous.is_some() || engine::is_running() {
            browser::set_document_theme(theme.as_str());
        }
        engine::with_current(|e| e.set_theme(theme));
        theme
    });

    let pick_language = Callback::new(move |language: Language| {
        engine::with_current(|e| e.set_language(language));
    });
    let rename = Callback::new(move |name: String| {
        let name = crate::collab::presence::clean_name(&name);
        browser::save_setting(NAME_KEY, &name);
        signals.name.set(name.clone());
        engine::with_current(|e| e.set_name(&name));
    });

    let session_id = session.id.clone();
    let share_url = session.share_url.clone();
    let password_required = session.password_required;
    let code = session.code.clone();
    let locked_out = move || signals.locked.get() && !signals.interviewer.get();
    let prompt_id = session.id.clone();
    view! {
        <Title text=format!("Session {}: pairpad", &session.id[..8]) />
        <MonacoPreload />
        <section class="session" data-session-id=session.id.clone()>
            <header class="session-bar">
                <a class="brand" href="/">"pairpad"</a>
                <RoleBadge signals />
                <LanguageSelect signals on_pick=pick_language />
                <ThemeToggle signals />
                <DisplayName signals on_rename=rename />
                <ConnectionStatus signals />
                <ExportCode signals />
                <ShareLink url=session.share_url.clone() />
            </header>
            {move || {
                signals
                    .problem
                    .get()
                    .map(|problem| view! { <p class="problem" role="alert" data-testid="problem">{problem}</p> })
            }}
            <EndedBanner signals />
            <Show
                when=locked_out
                fallback=move || {
                    let code = code.clone();
                    let session_id = session_id.clone();
                    let share_url = share_url.clone();
                    view! {
                        <div class="workspace">
                            <div class="editor-area" data-testid="editor" data-ready=move || signals.editor_ready.get().to_string()>
                                // The server-rendered code: the first paint has content; it is
                                // replaced by the live editor once that has loaded and synced.
                                <pre class="code-preview" data-testid="code-preview" class:hidden=move || signals.editor_ready.get()>
                                    {code}
                                </pre>
                                <div class="monaco-host" node_ref=editor_host></div>
                            </div>
                            <div class="side">
                                <UserList signals />
                                <Show when=move || signals.interviewer.get()>
                                    <InterviewerPanel
                                        session_id=session_id.clone()
                                        share_url=share_url.clone()
                                        password_required
                                        signals
                                    />
                                </Show>
                            </div>
                        </div>
                        <RunPanel signals />
                    }
                }
            >
                <PasswordPrompt session_id=prompt_id.clone() />
            </Show>
        </section>
    }
}

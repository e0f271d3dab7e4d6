//! The session bar's controls: role, language, theme, display name,
//! connection status, code download, the ended banner, the users list and
//! join/leave notices.

use super::{engine, signals::WorkspaceSignals};
use crate::{
    domain::Language,
    interop::{editor::Theme, interview},
};
use leptos::prelude::*;

/// This browser's role in the session.
#[component]
pub fn RoleBadge(signals: WorkspaceSignals) -> impl IntoView {
    view! {
        <span class="role" data-testid="role" data-role=move || if signals.interviewer.get() { "interviewer" } else { "candidate" }>
            {move || if signals.interviewer.get() { "Interviewer" } else { "Candidate" }}
        </span>
    }
}

/// Downloads the code as a file named for its language.
#[component]
pub fn ExportCode(signals: WorkspaceSignals) -> impl IntoView {
    let download = move |_| {
        let extension = match signals.language.get_untracked() {
            Language::JavaScript => "js",
            Language::Python => "py",
        };
        engine::with_current(|engine| {
            interview::download(&format!("code.{extension}"), &engine.code(), "text/plain");
        });
    };
    view! {
        <button type="button" class="control" data-testid="export-code" on:click=download title="Download the code">
            "Download code"
        </button>
    }
}

/// Says the interview has ended (the editor and Run are read-only meanwhile).
#[component]
pub fn EndedBanner(signals: WorkspaceSignals) -> impl IntoView {
    view! {
        <Show when=move || signals.ended.get()>
            <p class="ended" role="status" data-testid="session-ended">
                "This interview has ended. The code is read-only."
            </p>
        </Show>
    }
}

#[component]
pub fn LanguageSelect(signals: WorkspaceSignals, on_pick: Callback<Language>) -> impl IntoView {
    view! {
        <label class="control">
            <span class="visually-hidden">"Language"</span>
            <select
                data-testid="language-select"
                prop:value=move || signals.language.get().as_str()
                on:change=move |event| {
                    if let Ok(language) = event_target_value(&event).parse::<Language>() {
                        on_pick.run(language);
                    }
                }
            >
                {Language::ALL
                    .iter()
                    .map(|l| {
                        view! {
                            <option value=l.as_str() selected=move || signals.language.get() == *l>
                                {l.label()}
                            </option>
                        }
                    })
                    .collect_view()}
            </select>
        </label>
    }
}

#[component]
pub fn ThemeToggle(signals: WorkspaceSignals) -> impl IntoView {
    view! {
        <button
            type="button"
            class="control"
            data-testid="theme-toggle"
            data-theme=move || signals.theme.get().as_str()
            title="Toggle light and dark theme"
            on:click=move |_| signals.theme.update(|theme| *theme = theme.toggled())
        >
            {move || match signals.theme.get() {
                Theme::Light => "Dark theme",
                Theme::Dark => "Light theme",
            }}
        </button>
    }
}

#[component]
pub fn DisplayName(signals: WorkspaceSignals, on_rename: Callback<String>) -> impl IntoView {
    view! {
        <label class="control name-control">
            <span>"You are"</span>
            <input
                data-testid="display-name"
                maxlength="40"
                prop:value=move || signals.name.get()
                on:change=move |event| on_rename.run(event_target_value(&event))
                on:keydown=move |event| {
                    if event.key() == "Enter" {
                        on_rename.run(event_target_value(&event));
                    }
                }
            />
        </label>
    }
}

#[component]
pub fn ConnectionStatus(signals: WorkspaceSignals) -> impl IntoView {
    view! {
        <span
            class="status"
            data-testid="connection-status"
            data-state=move || signals.status.get().as_str()
            role="status"
        >
            <span class="status-dot" aria-hidden="true"></span>
            {move || signals.status.get().label()}
        </span>
    }
}

#[component]
pub fn UserList(signals: WorkspaceSignals) -> impl IntoView {
    let count = move || signals.participants.with(|p| p.len());
    view! {
        <aside class="people">
            <h2>
                "People " <span class="count" data-testid="users-count">{count}</span>
            </h2>
            <ul data-testid="user-list">
                <For
                    each=move || signals.participants.get()
                    key=|p| (p.client_id, p.name.clone(), p.color, p.interviewer)
                    let:participant
                >
                    <li
                        class=format!("person pp-peer-{}", participant.color)
                        data-local=participant.is_local
                        data-role=if participant.interviewer { "interviewer" } else { "candidate" }
                    >
                        <span class="swatch" aria-hidden="true"></span>
                        <span class="person-name">{participant.name.clone()}</span>
                        {participant.interviewer.then(|| view! { <span class="badge">"interviewer"</span> })}
                        {participant.is_local.then(|| view! { <span class="you">" (you)"</span> })}
                    </li>
                </For>
            </ul>
            <div class="notices" aria-live="polite" data-testid="notices">
                <For each=move || signals.notices.get() key=|n| n.id let:notice>
                    <p class="notice">{notice.text}</p>
                </For>
            </div>
        </aside>
    }
}

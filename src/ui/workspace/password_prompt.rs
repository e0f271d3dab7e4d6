//! What a candidate sees of a password-protected session until they unlock
//! it: a password form, and nothing of the code. The right password gets this
//! browser the unlock cookie, and the page reloads into the workspace.

use crate::interop::{browser, interview};
use leptos::{prelude::*, task::spawn_local};

#[component]
pub fn PasswordPrompt(session_id: String) -> impl IntoView {
    let password = RwSignal::new(String::new());
    let error = RwSignal::new(None::<String>);
    let busy = RwSignal::new(false);
    let submit = move |event: leptos::ev::SubmitEvent| {
        event.prevent_default();
        if busy.get_untracked() {
            return;
        }
        busy.set(true);
        let url = format!("/api/sessions/{session_id}/unlock");
        let body = serde_json::json!({ "password": password.get_untracked() }).to_string();
        spawn_local(async move {
            let reply = interview::send_json("POST", &url, "", &body).await;
            busy.set(false);
            match reply.status {
                204 => browser::reload_page(),
                403 => error.set(Some("Wrong password. Try again.".into())),
                _ => error.set(Some(reply.error_message())),
            }
        });
    };
    view! {
        <form class="password-prompt" data-testid="password-prompt" on:submit=submit>
            <h2>"This interview is protected by a password"</h2>
            <p>"Ask your interviewer for it."</p>
            <label>
                <span class="visually-hidden">"Password"</span>
                <input
                    type="password"
                    data-testid="password-input"
                    autocomplete="off"
                    placeholder="Password"
                    prop:value=move || password.get()
                    on:input=move |event| password.set(event_target_value(&event))
                />
            </label>
            <button type="submit" class="primary" data-testid="password-submit" disabled=move || busy.get()>
                "Enter"
            </button>
            {move || {
                error
                    .get()
                    .map(|text| view! { <p class="error" role="alert" data-testid="password-error">{text}</p> })
            }}
        </form>
    }
}

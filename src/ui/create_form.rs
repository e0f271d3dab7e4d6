//! The "Create session" form, used on the home page and the not-found page:
//! language and an optional password. A plain form posting to a server
//! function: it works before hydration too. Its creator lands on the session
//! as the interviewer (the key rides in the redirect's fragment).

use crate::{api::CreateSession, domain::Language};
use leptos::prelude::*;

#[component]
pub fn CreateSessionForm() -> impl IntoView {
    let create = ServerAction::<CreateSession>::new();
    let error = move || {
        create
            .value()
            .get()
            .and_then(|result| result.err())
            .map(|e| e.to_string().replace("error running server function: ", ""))
    };
    view! {
        <ActionForm action=create attr:class="create-form">
            <label class="language-choice">
                "Language "
                <select name="language" data-testid="create-language">
                    {Language::ALL
                        .iter()
                        .map(|l| view! { <option value=l.as_str()>{l.label()}</option> })
                        .collect_view()}
                </select>
            </label>
            <label class="password-choice">
                <span class="visually-hidden">"Password (optional)"</span>
                <input
                    type="password"
                    name="password"
                    data-testid="password-field"
                    autocomplete="new-password"
                    placeholder="Password (optional)"
                />
            </label>
            <button
                type="submit"
                class="primary"
                data-testid="create-session"
                disabled=move || create.pending().get()
            >
                "Create session"
            </button>
        </ActionForm>
        {move || error().map(|e| view! { <p class="error" role="alert">{e}</p> })}
    }
}

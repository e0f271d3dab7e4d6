//! The page for unknown, expired or malformed session links (HTTP 404).

use super::create_form::CreateSessionForm;
use leptos::prelude::*;
use leptos_meta::Title;

#[component]
pub fn NotFoundPage(
    /// What was not found, in the user's words.
    #[prop(into, default = "This session does not exist or has expired.".into())]
    message: String,
) -> impl IntoView {
    crate::api::mark_not_found();
    view! {
        <Title text="Not found: pairpad" />
        <section class="not-found" data-testid="not-found">
            <h1>"Session not found"</h1>
            <p>{message}</p>
            <p>"Start a new one:"</p>
            <CreateSessionForm />
        </section>
    }
}

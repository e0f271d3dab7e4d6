//! The home page: what pairpad is, in one line, and the button that starts a session.

use super::create_form::CreateSessionForm;
use leptos::prelude::*;
use leptos_meta::Title;

#[component]
pub fn HomePage() -> impl IntoView {
    view! {
        <Title text="pairpad: collaborative coding interviews" />
        <section class="home">
            <h1>"pairpad"</h1>
            <p class="tagline">
                "Share a link, write one program together in real time, and run "
                "JavaScript or Python right in the browser."
            </p>
            <CreateSessionForm />
        </section>
    }
}

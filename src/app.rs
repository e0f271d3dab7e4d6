//! The HTML shell, the root component and the route table.

use crate::ui::{
    home::HomePage, not_found::NotFoundPage, playback::PlaybackPage, session::SessionPage,
};
use leptos::prelude::*;
use leptos_meta::{provide_meta_context, MetaTags, Stylesheet, Title};
use leptos_router::{
    components::{Route, Router, Routes},
    path, SsrMode,
};

/// The document around the app, rendered on the server only.
pub fn shell(options: LeptosOptions) -> impl IntoView {
    crate::api::set_page_csp();
    view! {
        <!DOCTYPE html>
        <html lang="en">
            <head>
                <meta charset="utf-8" />
                <meta name="viewport" content="width=device-width, initial-scale=1" />
                <meta name="color-scheme" content="light dark" />
                <link rel="icon" href="/favicon.svg" type="image/svg+xml" />
                <HydrationScripts options />
                <MetaTags />
            </head>
            <body>
                <App />
            </body>
        </html>
    }
}

#[component]
pub fn App() -> impl IntoView {
    provide_meta_context();
    view! {
        <Stylesheet id="leptos" href="/pkg/pairpad.css" />
        <Title text="pairpad" />
        <Router>
            <main>
                <Routes fallback=|| view! { <NotFoundPage message="There is no page at this address." /> }>
                    <Route path=path!("/") view=HomePage />
                    // Async: the status (404 for unknown sessions) is known before
                    // the first byte, and the page arrives complete.
                    <Route path=path!("/s/:id") view=SessionPage ssr=SsrMode::Async />
                    // A shell: the key is in the browser, so the page loads
                    // the history itself (and shows nothing without it).
                    <Route path=path!("/s/:id/playback") view=PlaybackPage />
                </Routes>
            </main>
        </Router>
    }
}

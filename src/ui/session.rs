//! The session page `/s/<id>`: the share link, the session's language, and the
//! editor area.

use super::{not_found::NotFoundPage, share_link::ShareLink};
use crate::api::{load_session, SessionLookup, SessionView};
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_params_map;

#[component]
pub fn SessionPage() -> impl IntoView {
    let params = use_params_map();
    let id = move || params.read().get("id").unwrap_or_default();
    let session = Resource::new(id, load_session);
    view! {
        <Suspense fallback=|| view! { <p class="loading">"Loading session…"</p> }>
            {move || Suspend::new(async move {
                match session.await {
                    Ok(SessionLookup::Found(view)) => view! { <SessionWorkspace session=view /> }.into_any(),
                    Ok(SessionLookup::NotFound) => view! { <NotFoundPage /> }.into_any(),
                    Ok(SessionLookup::Malformed) => {
                        view! { <NotFoundPage message="This is not a valid session link." /> }
                            .into_any()
                    }
                    Err(e) => view! { <p class="error" role="alert">{e.to_string()}</p> }.into_any(),
                }
            })}
        </Suspense>
    }
}

#[component]
fn SessionWorkspace(session: SessionView) -> impl IntoView {
    view! {
        <Title text=format!("Session {}: pairpad", &session.id[..8]) />
        <section class="session" data-session-id=session.id.clone()>
            <header class="session-bar">
                <a class="brand" href="/">"pairpad"</a>
                <span class="language" data-testid="session-language">
                    {session.language.label()}
                </span>
                <ShareLink url=session.share_url.clone() />
            </header>
            <div class="editor-area" data-testid="editor">
                <p class="placeholder">"The editor loads here."</p>
            </div>
        </section>
    }
}

//! The session page `/s/<id>`: loads the session and shows its workspace, or
//! the not-found page.

use super::{not_found::NotFoundPage, workspace::SessionWorkspace};
use crate::api::{load_session, SessionLookup};
use leptos::prelude::*;
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

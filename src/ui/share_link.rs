//! The share link of a session with a button that copies it.

use crate::interop::clipboard;
use leptos::{html, prelude::*, task::spawn_local};

#[component]
pub fn ShareLink(url: String) -> impl IntoView {
    let input = NodeRef::<html::Input>::new();
    let (feedback, set_feedback) = signal(String::new());
    let copy = {
        let url = url.clone();
        move |_| {
            let url = url.clone();
            spawn_local(async move {
                match clipboard::copy_text(&url).await {
                    Ok(()) => set_feedback.set("Copied".into()),
                    Err(_) => {
                        // No clipboard permission: select the link so Ctrl+C works.
                        if let Some(input) = input.get_untracked() {
                            input.select();
                        }
                        set_feedback.set("Press Ctrl+C to copy".into());
                    }
                }
            });
        }
    };
    view! {
        <div class="share">
            <label for="share-link" class="share-label">"Share"</label>
            <input
                id="share-link"
                node_ref=input
                data-testid="share-link"
                readonly
                value=url
                on:focus=move |_| {
                    if let Some(input) = input.get_untracked() {
                        input.select();
                    }
                }
            />
            <button type="button" data-testid="copy-link" on:click=copy>
                "Copy link"
            </button>
            <span class="feedback" aria-live="polite">{feedback}</span>
        </div>
    }
}

//! Components and pages. They talk to the server through `api` and to the
//! browser through `interop`, never to JavaScript directly.

pub mod create_form;
pub mod home;
pub mod monaco_preload;
pub mod not_found;
pub mod playback;
pub mod session;
pub mod share_link;
pub mod workspace;

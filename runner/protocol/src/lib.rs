//! What passes between pairpad's page and its code-runner workers: the
//! messages and the bounds on them (`messages`), a run's output (the shared
//! channel's byte format, the caps, the notices: `output`), and, for the
//! gloo-worker bridges, which bytes are a worker's reply (`reply`) and the
//! endpoint type the page spawns (`bridge`, feature `bridge`). Pure Rust apart
//! from `bridge`, so it is tested natively. Both runner workers (their Rust
//! half is the `pairpad-runner-worker` crate, `runner/worker`) and the page's
//! runner (`pairpad::interop::runner`) speak it.

#[cfg(feature = "bridge")]
pub mod bridge;
pub mod messages;
pub mod output;
pub mod reply;

use serde::{Deserialize, Serialize};

/// Which stream a piece of output came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Stream {
    Stdout,
    Stderr,
}

impl Stream {
    pub fn as_str(&self) -> &'static str {
        match self {
            Stream::Stdout => "stdout",
            Stream::Stderr => "stderr",
        }
    }
}

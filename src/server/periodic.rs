//! Background work repeated on an interval until the server stops (session
//! expiry, returning free memory).

use std::{future::Future, time::Duration};
use tokio::sync::watch;

/// Runs `work` every `interval` (a late tick waits a full interval, no bursts of
/// catch-up); returns when `stop` turns true.
pub async fn every<F, Fut>(interval: Duration, mut stop: watch::Receiver<bool>, mut work: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = ()>,
{
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ticker.tick() => work().await,
            _ = stop.changed() => return,
        }
        if *stop.borrow() {
            return;
        }
    }
}

//! When to try reconnecting: exponential backoff with jitter, capped.

use std::time::Duration;

/// First retry delay.
pub const INITIAL: Duration = Duration::from_millis(250);
/// Longest delay between retries.
pub const MAX: Duration = Duration::from_secs(10);
/// Failed attempts after which the UI says "offline" rather than "reconnecting".
pub const OFFLINE_AFTER: u32 = 5;

/// The delay before reconnect attempt `attempt` (0-based). `jitter` in [0, 1)
/// spreads clients out so a restarted server is not hit by all at once.
pub fn delay(attempt: u32, jitter: f64) -> Duration {
    let exponential = INITIAL.saturating_mul(1u32 << attempt.min(16));
    let capped = exponential.min(MAX);
    capped.mul_f64(0.5 + jitter.clamp(0.0, 1.0) / 2.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_then_caps() {
        assert_eq!(delay(0, 1.0), INITIAL);
        assert_eq!(delay(1, 1.0), INITIAL * 2);
        assert_eq!(delay(30, 1.0), MAX);
        assert_eq!(delay(30, 0.0), MAX / 2);
        assert!(delay(3, 0.5) < delay(4, 0.5));
    }
}

//! Limits password guesses: per address and session, and per address over all
//! sessions (each guess costs an argon2 verification, tens of milliseconds of
//! CPU). Wrong guesses count; once a budget is spent, every guess (a right one
//! too) waits until its window ends.

use crate::domain::SessionId;
use std::{
    collections::HashMap,
    net::IpAddr,
    sync::Mutex,
    time::{Duration, Instant},
};

/// Wrong guesses one address may make at one session per window.
pub const WRONG_GUESSES_PER_SESSION: u32 = 5;
/// Guesses (right or wrong) one address may make over all sessions per window.
pub const GUESSES_PER_ADDRESS: u32 = 30;
pub const WINDOW: Duration = Duration::from_secs(60);
/// Past this many tracked windows, ended ones are dropped.
const PRUNE_THRESHOLD: usize = 10_000;

/// A fixed window: how many were counted since it started.
#[derive(Clone, Copy)]
struct Window {
    started: Instant,
    count: u32,
}

impl Window {
    fn current(entry: &mut Option<Window>, now: Instant) -> &mut Window {
        let stale = entry.is_none_or(|w| now.saturating_duration_since(w.started) >= WINDOW);
        if stale {
            *entry = Some(Window {
                started: now,
                count: 0,
            });
        }
        entry.as_mut().expect("just set")
    }

    fn wait(&self, now: Instant) -> Duration {
        (self.started + WINDOW)
            .saturating_duration_since(now)
            .max(Duration::from_secs(1))
    }
}

#[derive(Default)]
struct Windows {
    per_session: HashMap<(IpAddr, SessionId), Option<Window>>,
    per_address: HashMap<IpAddr, Option<Window>>,
}

#[derive(Default)]
pub struct GuessLimiter {
    windows: Mutex<Windows>,
}

impl GuessLimiter {
    /// Admits a guess from `ip` at `session`, or says how long to wait.
    pub fn admit(&self, ip: IpAddr, session: SessionId, now: Instant) -> Result<(), Duration> {
        let mut windows = self.windows.lock().unwrap_or_else(|p| p.into_inner());
        if windows.per_session.len() + windows.per_address.len() >= PRUNE_THRESHOLD {
            let live = |w: &Option<Window>| {
                w.is_some_and(|w| now.saturating_duration_since(w.started) < WINDOW)
            };
            windows.per_session.retain(|_, w| live(w));
            windows.per_address.retain(|_, w| live(w));
        }
        let session_window =
            Window::current(windows.per_session.entry((ip, session)).or_default(), now);
        if session_window.count >= WRONG_GUESSES_PER_SESSION {
            return Err(session_window.wait(now));
        }
        let address_window = Window::current(windows.per_address.entry(ip).or_default(), now);
        if address_window.count >= GUESSES_PER_ADDRESS {
            return Err(address_window.wait(now));
        }
        address_window.count += 1;
        Ok(())
    }

    /// Counts a wrong guess from `ip` at `session`.
    pub fn wrong(&self, ip: IpAddr, session: SessionId, now: Instant) {
        let mut windows = self.windows.lock().unwrap_or_else(|p| p.into_inner());
        Window::current(windows.per_session.entry((ip, session)).or_default(), now).count += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn five_wrong_guesses_lock_one_session_for_one_address_until_the_window_ends() {
        let limiter = GuessLimiter::default();
        let (ip, other_ip): (IpAddr, IpAddr) =
            ("10.0.0.1".parse().unwrap(), "10.0.0.2".parse().unwrap());
        let (session, other) = (SessionId::new_random(), SessionId::new_random());
        let now = Instant::now();
        for _ in 0..WRONG_GUESSES_PER_SESSION {
            limiter.admit(ip, session, now).unwrap();
            limiter.wrong(ip, session, now);
        }
        let wait = limiter.admit(ip, session, now).unwrap_err();
        assert!(
            wait <= WINDOW && wait >= Duration::from_secs(59),
            "{wait:?}"
        );
        // Others are not affected.
        assert!(limiter.admit(other_ip, session, now).is_ok());
        assert!(limiter.admit(ip, other, now).is_ok());
        assert!(limiter.admit(ip, session, now + WINDOW).is_ok());
    }

    #[test]
    fn one_address_has_a_budget_over_all_sessions() {
        let limiter = GuessLimiter::default();
        let ip: IpAddr = "10.0.0.1".parse().unwrap();
        let now = Instant::now();
        for _ in 0..GUESSES_PER_ADDRESS {
            limiter.admit(ip, SessionId::new_random(), now).unwrap();
        }
        assert!(limiter.admit(ip, SessionId::new_random(), now).is_err());
    }
}

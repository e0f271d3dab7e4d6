//! Rate limiting per key (a client's address for session creation and event
//! reports, a session for the reports it takes in): one token bucket per key,
//! forgotten once it has refilled so the map cannot grow without bound.

use crate::domain::rate::TokenBucket;
use std::{
    collections::HashMap,
    hash::Hash,
    net::IpAddr,
    sync::Mutex,
    time::{Duration, Instant},
};

/// Past this many tracked addresses, full buckets are dropped.
const PRUNE_THRESHOLD: usize = 10_000;

pub struct RateLimiter<Key> {
    per_minute: u32,
    buckets: Mutex<HashMap<Key, TokenBucket>>,
}

/// The limiter for per-address limits.
pub type IpRateLimiter = RateLimiter<IpAddr>;

impl<Key: Hash + Eq> RateLimiter<Key> {
    /// `per_minute` events per key per minute, all of them usable at once;
    /// 0 disables the limit.
    pub fn per_minute(per_minute: u32) -> Self {
        Self {
            per_minute,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Counts one event for `key`, or says how long it must wait.
    pub fn check(&self, key: Key, now: Instant) -> Result<(), Duration> {
        if self.per_minute == 0 {
            return Ok(());
        }
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        if buckets.len() >= PRUNE_THRESHOLD {
            buckets.retain(|_, bucket| !bucket.is_full(now));
        }
        let per_minute = self.per_minute;
        buckets
            .entry(key)
            .or_insert_with(|| TokenBucket::new(per_minute, f64::from(per_minute) / 60.0, now))
            .try_take(now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_each_address_separately() {
        let limiter = IpRateLimiter::per_minute(2);
        let now = Instant::now();
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        assert!(limiter.check(a, now).is_ok());
        assert!(limiter.check(a, now).is_ok());
        let wait = limiter.check(a, now).unwrap_err();
        assert!(wait <= Duration::from_secs(30));
        assert!(limiter.check(b, now).is_ok());
        assert!(limiter.check(a, now + Duration::from_secs(30)).is_ok());
    }

    #[test]
    fn zero_means_unlimited() {
        let limiter = IpRateLimiter::per_minute(0);
        let ip: IpAddr = "::1".parse().unwrap();
        for _ in 0..1000 {
            assert!(limiter.check(ip, Instant::now()).is_ok());
        }
    }
}

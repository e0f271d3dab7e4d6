//! A token bucket: the one rate-limiting rule pairpad uses (session creation per IP,
//! WebSocket messages per connection). Time is passed in so the rule is testable.

use std::time::{Duration, Instant};

/// Allows `burst` events at once and `per_second` events per second sustained.
#[derive(Clone, Debug)]
pub struct TokenBucket {
    capacity: f64,
    per_second: f64,
    tokens: f64,
    last_refill: Instant,
}

impl TokenBucket {
    /// A full bucket. `per_second` must be positive.
    pub fn new(burst: u32, per_second: f64, now: Instant) -> Self {
        let capacity = f64::from(burst.max(1));
        Self {
            capacity,
            per_second: per_second.max(f64::MIN_POSITIVE),
            tokens: capacity,
            last_refill: now,
        }
    }

    /// Takes one token, or says how long until one is available.
    pub fn try_take(&mut self, now: Instant) -> Result<(), Duration> {
        let elapsed = now
            .saturating_duration_since(self.last_refill)
            .as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.per_second).min(self.capacity);
        self.last_refill = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64(
                (1.0 - self.tokens) / self.per_second,
            ))
        }
    }

    /// True once the bucket has refilled completely: its owner may forget it.
    pub fn is_full(&self, now: Instant) -> bool {
        let elapsed = now
            .saturating_duration_since(self.last_refill)
            .as_secs_f64();
        self.tokens + elapsed * self.per_second >= self.capacity
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allows_a_burst_then_refuses_until_refilled() {
        let start = Instant::now();
        let mut bucket = TokenBucket::new(3, 1.0, start);
        for _ in 0..3 {
            assert!(bucket.try_take(start).is_ok());
        }
        let wait = bucket.try_take(start).unwrap_err();
        assert!(wait > Duration::from_millis(900) && wait <= Duration::from_secs(1));
        assert!(bucket.try_take(start + Duration::from_millis(500)).is_err());
        assert!(bucket.try_take(start + Duration::from_millis(1000)).is_ok());
    }

    #[test]
    fn never_holds_more_than_its_burst() {
        let start = Instant::now();
        let mut bucket = TokenBucket::new(2, 10.0, start);
        let later = start + Duration::from_secs(60);
        assert!(bucket.is_full(later));
        assert!(bucket.try_take(later).is_ok());
        assert!(bucket.try_take(later).is_ok());
        assert!(bucket.try_take(later).is_err());
        assert!(!bucket.is_full(later));
    }
}

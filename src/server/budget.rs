//! What one WebSocket connection may send, sans IO: protocol messages per
//! second (each sync message and each awareness entry counts one), bytes per
//! second, and SyncStep1 requests per minute (each is answered with a diff that
//! may be the whole document). Three token buckets refilled together.
//!
//! Idle connections are the server's biggest memory cost, so a connection keeps
//! only its three balances and one instant; the rates live once in
//! [`BudgetRates`], shared by every connection.

use crate::{domain::Limits, sync::protocol::ClientMessage};
use std::time::Instant;

/// How fast each balance refills and how high it goes.
#[derive(Clone, Copy, Debug)]
pub struct BudgetRates {
    messages: Rate,
    bytes: Rate,
    sync_requests: Rate,
}

#[derive(Clone, Copy, Debug)]
struct Rate {
    capacity: f32,
    per_second: f32,
}

impl BudgetRates {
    pub fn new(limits: &Limits) -> Self {
        Self {
            messages: Rate {
                capacity: limits.message_burst.max(1) as f32,
                per_second: limits.messages_per_second.max(1) as f32,
            },
            bytes: Rate {
                // Two whole frames at once: a pasted file fits, twice.
                capacity: (2 * limits.max_frame_bytes).max(limits.bytes_per_second) as f32,
                per_second: limits.bytes_per_second.max(1) as f32,
            },
            sync_requests: Rate {
                capacity: limits.sync_requests_per_minute.max(1) as f32,
                per_second: limits.sync_requests_per_minute.max(1) as f32 / 60.0,
            },
        }
    }
}

/// Which allowance a connection ran out of.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Overspent {
    #[error("message rate limit exceeded")]
    Messages,
    #[error("data rate limit exceeded")]
    Bytes,
    #[error("too many sync requests")]
    SyncRequests,
}

/// One connection's balances.
#[derive(Debug)]
pub struct ConnectionBudget {
    refilled: Instant,
    messages: f32,
    bytes: f32,
    sync_requests: f32,
}

impl ConnectionBudget {
    /// Full balances.
    pub fn new(rates: &BudgetRates, now: Instant) -> Self {
        Self {
            refilled: now,
            messages: rates.messages.capacity,
            bytes: rates.bytes.capacity,
            sync_requests: rates.sync_requests.capacity,
        }
    }

    fn refill(&mut self, rates: &BudgetRates, now: Instant) {
        let elapsed = now.saturating_duration_since(self.refilled).as_secs_f32();
        self.refilled = now;
        let top_up = |balance: &mut f32, rate: Rate| {
            *balance = (*balance + elapsed * rate.per_second).min(rate.capacity);
        };
        top_up(&mut self.messages, rates.messages);
        top_up(&mut self.bytes, rates.bytes);
        top_up(&mut self.sync_requests, rates.sync_requests);
    }

    /// Charges a frame's bytes, before it is parsed.
    pub fn charge_bytes(
        &mut self,
        rates: &BudgetRates,
        bytes: usize,
        now: Instant,
    ) -> Result<(), Overspent> {
        self.refill(rates, now);
        self.bytes -= bytes as f32;
        if self.bytes < 0.0 {
            return Err(Overspent::Bytes);
        }
        Ok(())
    }

    /// Charges a parsed frame's messages.
    pub fn charge_messages(
        &mut self,
        rates: &BudgetRates,
        messages: &[ClientMessage],
        now: Instant,
    ) -> Result<(), Overspent> {
        self.refill(rates, now);
        let weight: usize = messages.iter().map(ClientMessage::weight).sum();
        let sync_requests = messages
            .iter()
            .filter(|message| matches!(message, ClientMessage::SyncStep1(_)))
            .count();
        self.messages -= weight as f32;
        if self.messages < 0.0 {
            return Err(Overspent::Messages);
        }
        self.sync_requests -= sync_requests as f32;
        if self.sync_requests < 0.0 {
            return Err(Overspent::SyncRequests);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sync::protocol::{decode_frame, encode_awareness_entries, encode_sync_step1};
    use std::time::Duration;

    fn limits() -> Limits {
        Limits {
            messages_per_second: 10,
            message_burst: 20,
            sync_requests_per_minute: 3,
            bytes_per_second: 1000,
            max_frame_bytes: 1000,
            ..Limits::default()
        }
    }

    fn sync_request() -> Vec<ClientMessage> {
        decode_frame(&encode_sync_step1(&Default::default())).unwrap()
    }

    #[test]
    fn awareness_entries_count_as_messages() {
        let rates = BudgetRates::new(&limits());
        let start = Instant::now();
        let mut budget = ConnectionBudget::new(&rates, start);
        let entries: Vec<(u64, u32, &str)> = (0..21).map(|id| (id, 1, "null")).collect();
        let crowded = decode_frame(&encode_awareness_entries(entries.into_iter())).unwrap();
        assert_eq!(
            budget.charge_messages(&rates, &crowded, start),
            Err(Overspent::Messages)
        );
    }

    #[test]
    fn messages_refill_at_their_rate() {
        let rates = BudgetRates::new(&limits());
        let start = Instant::now();
        let mut budget = ConnectionBudget::new(&rates, start);
        let one = decode_frame(&[3]).unwrap();
        for _ in 0..20 {
            budget.charge_messages(&rates, &one, start).unwrap();
        }
        assert_eq!(
            budget.charge_messages(&rates, &one, start),
            Err(Overspent::Messages)
        );
        let later = start + Duration::from_millis(300);
        let mut fresh = ConnectionBudget::new(&rates, start);
        for _ in 0..20 {
            fresh.charge_messages(&rates, &one, start).unwrap();
        }
        // 300 ms at 10/s is three messages.
        for _ in 0..3 {
            fresh.charge_messages(&rates, &one, later).unwrap();
        }
        assert!(fresh.charge_messages(&rates, &one, later).is_err());
    }

    #[test]
    fn sync_requests_are_limited_per_minute() {
        let rates = BudgetRates::new(&limits());
        let start = Instant::now();
        let mut budget = ConnectionBudget::new(&rates, start);
        for _ in 0..3 {
            budget
                .charge_messages(&rates, &sync_request(), start)
                .unwrap();
        }
        // Three a minute: one more after 20 s, not two.
        let later = start + Duration::from_secs(20);
        assert!(budget
            .charge_messages(&rates, &sync_request(), later)
            .is_ok());
        assert_eq!(
            budget.charge_messages(&rates, &sync_request(), later),
            Err(Overspent::SyncRequests)
        );
    }

    #[test]
    fn bytes_allow_two_frames_at_once_then_their_rate() {
        let rates = BudgetRates::new(&limits());
        let start = Instant::now();
        let mut budget = ConnectionBudget::new(&rates, start);
        budget.charge_bytes(&rates, 1000, start).unwrap();
        budget.charge_bytes(&rates, 1000, start).unwrap();
        assert_eq!(budget.charge_bytes(&rates, 1, start), Err(Overspent::Bytes));
        assert!(budget
            .charge_bytes(&rates, 500, start + Duration::from_secs(1))
            .is_ok());
    }
}

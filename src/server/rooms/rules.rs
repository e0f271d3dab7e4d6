//! A room's bounds, sans IO: who may join (per session and per address),
//! whether accepted updates fit the document's size limit and the session's
//! history, and when a snapshot is due. The room task asks; these answer, so
//! every rule is unit-tested here without a socket or a database.

use crate::domain::close_codes as close;
use crate::domain::Limits;
use std::{
    net::IpAddr,
    time::{Duration, Instant},
};

/// Update bytes logged since the last snapshot that make a new one due, at
/// the least; a large document waits for changes worth half its size, so it is
/// not rewritten again and again (loading replays at most that much log).
pub const SNAPSHOT_MIN_BYTES: usize = 64 * 1024;
/// Measuring the document exactly costs an encode of all of it: at most one
/// per this interval, so a client at the limit cannot make every edit cost that.
pub const MIN_MEASURE_INTERVAL: Duration = Duration::from_millis(200);

/// Why something was refused: a close code and a reason.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refusal {
    pub code: u16,
    pub reason: String,
}

/// Whether one more connection from `ip` fits a room whose connections come
/// from `present`: the session's cap, and the per-address cap below it, so
/// one address cannot fill a session.
pub fn admit(
    present: impl ExactSizeIterator<Item = IpAddr>,
    ip: IpAddr,
    limits: &Limits,
) -> Result<(), Refusal> {
    let refuse = |reason: String| Refusal {
        code: close::TRY_AGAIN_LATER,
        reason,
    };
    let limit = limits.max_connections_per_session;
    if present.len() >= limit {
        return Err(refuse(format!("session is full ({limit} connections)")));
    }
    let per_ip = limits.max_connections_per_session_per_ip;
    if per_ip != 0 && present.filter(|other| *other == ip).count() >= per_ip {
        return Err(refuse(format!(
            "too many connections to this session from your address ({per_ip})"
        )));
    }
    Ok(())
}

/// How much an update of `len` bytes can grow the document's encoding, at
/// most: its own size, plus the blocks it splits (an insert or delete in the
/// middle of a run of text cuts it in two, which costs a block header).
pub fn growth_bound(len: usize) -> usize {
    2 * len + 64
}

/// What a room counts to enforce its size, history and snapshot rules.
#[derive(Debug, Default)]
pub struct Accounts {
    /// At least the document's encoded size: exact when last measured, plus
    /// [`growth_bound`] of each update accepted since.
    size_bound: usize,
    measured_at: Option<Instant>,
    /// Update bytes the session has stored over its life.
    history_bytes: u64,
    /// Update bytes logged since the last snapshot, and that snapshot's size.
    bytes_since_snapshot: usize,
    snapshot_len: usize,
}

impl Accounts {
    /// A room just loaded: its document's exact size, its stored history, the
    /// bytes logged after its snapshot and that snapshot's size.
    pub fn new(
        size: usize,
        history_bytes: u64,
        bytes_since_snapshot: usize,
        snapshot_len: usize,
    ) -> Self {
        Self {
            size_bound: size,
            measured_at: None,
            history_bytes,
            bytes_since_snapshot,
            snapshot_len,
        }
    }

    /// Whether `count` updates of `incoming` bytes in all fit the session's
    /// history and the document's size limit.
    ///
    /// The size is checked without applying them (yrs cannot roll an applied
    /// update back): the document as measured plus the updates' own size.
    /// `measure` (an encode of the whole document, after applying what is
    /// pending) runs only when the running bound says the limit may be near,
    /// and at most once per [`MIN_MEASURE_INTERVAL`]; past that, a change that
    /// might not fit is refused.
    ///
    /// `now` is read only near the limit (a clock read per edit is measurable).
    pub fn check(
        &mut self,
        incoming: usize,
        count: usize,
        limits: &Limits,
        now: impl FnOnce() -> Instant,
        measure: impl FnOnce() -> usize,
    ) -> Result<(), Refusal> {
        let history_limit = limits.max_history_bytes;
        if self.history_bytes + incoming as u64 > history_limit {
            return Err(Refusal {
                code: close::HISTORY_FULL,
                reason: format!(
                    "session history is full ({history_limit} bytes); the session is read-only"
                ),
            });
        }
        let limit = limits.max_document_bytes;
        let too_large = || Refusal {
            code: close::DOCUMENT_TOO_LARGE,
            reason: format!("document size limit exceeded ({limit} bytes)"),
        };
        if self.size_bound + growth_bound(incoming) * count.max(1) <= limit {
            return Ok(());
        }
        let now = now();
        if self
            .measured_at
            .is_some_and(|at| now.saturating_duration_since(at) < MIN_MEASURE_INTERVAL)
        {
            return Err(too_large());
        }
        let size = measure();
        self.size_bound = size;
        self.measured_at = Some(now);
        if size + incoming > limit {
            return Err(too_large());
        }
        Ok(())
    }

    /// A bound on the size of a document not read: it encodes to no more
    /// than all the updates it merged.
    pub fn history_bound(&self) -> usize {
        usize::try_from(self.history_bytes).unwrap_or(usize::MAX)
    }

    /// `count` updates of `bytes` in all were stored.
    pub fn stored(&mut self, count: usize, bytes: usize) {
        // The growth bound of each, summed.
        self.size_bound += 2 * bytes + growth_bound(0) * count;
        self.history_bytes += bytes as u64;
        self.bytes_since_snapshot += bytes;
    }

    /// Whether enough changed since the last snapshot to take a new one: at
    /// least [`SNAPSHOT_MIN_BYTES`] of updates and half the last snapshot.
    pub fn snapshot_due(&self) -> bool {
        self.bytes_since_snapshot >= SNAPSHOT_MIN_BYTES.max(self.snapshot_len / 2)
    }

    /// A snapshot of `len` bytes was stored.
    pub fn snapshot_taken(&mut self, len: usize) {
        self.bytes_since_snapshot = 0;
        self.snapshot_len = len;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> Limits {
        Limits {
            max_connections_per_session: 4,
            max_connections_per_session_per_ip: 2,
            max_document_bytes: 10_000,
            max_history_bytes: 50_000,
            ..Limits::default()
        }
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn one_address_cannot_fill_a_session() {
        let (a, b) = (ip("10.0.0.1"), ip("10.0.0.2"));
        assert!(admit([a].into_iter(), a, &limits()).is_ok());
        let refused = admit([a, a].into_iter(), a, &limits()).unwrap_err();
        assert_eq!(refused.code, close::TRY_AGAIN_LATER);
        assert!(refused.reason.contains("your address (2)"), "{refused:?}");
        assert!(admit([a, a].into_iter(), b, &limits()).is_ok());
        let full = admit([a, a, b, b].into_iter(), ip("10.0.0.3"), &limits()).unwrap_err();
        assert!(full.reason.contains("session is full"), "{full:?}");
        let unlimited = Limits {
            max_connections_per_session_per_ip: 0,
            ..limits()
        };
        assert!(admit([a, a, a].into_iter(), a, &unlimited).is_ok());
    }

    #[test]
    fn the_size_limit_measures_only_near_it_and_refuses_what_would_pass_it() {
        let now = Instant::now();
        let mut accounts = Accounts::new(1_000, 0, 0, 0);
        let never = || -> usize { panic!("measured far from the limit") };
        accounts.check(100, 1, &limits(), || now, never).unwrap();
        accounts.stored(1, 100);
        // Near the limit by the bound: measured (the document is small really).
        let mut measured = 0;
        accounts
            .check(
                4_500,
                1,
                &limits(),
                || now,
                || {
                    measured += 1;
                    1_200
                },
            )
            .unwrap();
        assert_eq!(measured, 1);
        accounts.stored(1, 4_500);
        // Truly past it: refused with 4413, after a measure at most every 200 ms.
        let later = now + MIN_MEASURE_INTERVAL;
        let refused = accounts
            .check(9_000, 1, &limits(), || later, || 5_200)
            .unwrap_err();
        assert_eq!(refused.code, close::DOCUMENT_TOO_LARGE);
        let soon = later + Duration::from_millis(10);
        assert!(accounts.check(3_000, 1, &limits(), || soon, never).is_err());
    }

    #[test]
    fn a_full_history_makes_the_session_read_only() {
        let now = Instant::now();
        let mut accounts = Accounts::new(100, 49_000, 0, 0);
        accounts.check(900, 1, &limits(), || now, || 100).unwrap();
        accounts.stored(1, 900);
        let refused = accounts
            .check(200, 1, &limits(), || now, || 100)
            .unwrap_err();
        assert_eq!(refused.code, close::HISTORY_FULL);
    }

    #[test]
    fn snapshots_wait_for_changes_worth_half_the_document() {
        let mut small = Accounts::new(100, 0, 0, 100);
        small.stored(1, SNAPSHOT_MIN_BYTES - 1);
        assert!(!small.snapshot_due());
        small.stored(1, 1);
        assert!(small.snapshot_due());
        small.snapshot_taken(2_000_000);
        small.stored(1, SNAPSHOT_MIN_BYTES * 2);
        assert!(
            !small.snapshot_due(),
            "a 2 MB document waits for 1 MB of changes"
        );
        small.stored(1, 1_000_000);
        assert!(small.snapshot_due());
    }
}

//! The caller's clock, against which entries' expiry timestamps are compared.
//!
//! The cache never reads the time on its own: an entry carries an expiry timestamp in the
//! caller's unit ([`crate::EntryOptions::expires_at`]), and the cache asks its [`Clock`] for
//! "now" only when it meets an entry that has one (a hit on it, or an eviction scan in a shard
//! that holds some). Entries without expiry cost no clock reads.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// A source of "now" for expiry checks. An entry is expired once `now() >= expires_at`.
///
/// The unit is the caller's; it only has to match the timestamps given to
/// [`crate::EntryOptions::expires_at`]. The default, [`SystemClock`], counts milliseconds since
/// the Unix epoch. `now` may be called concurrently from many threads, under a shard's lock:
/// keep it cheap and never call back into the cache from it.
pub trait Clock: Send + Sync + fmt::Debug {
    /// The current time, in the unit of the cache's expiry timestamps.
    fn now(&self) -> u64;
}

/// Wall-clock time in milliseconds since the Unix epoch (0 if the system clock is set before
/// it). The default clock.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> u64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
    }
}

/// A clock that moves only when told to: for tests, simulations and callers that keep their own
/// coarse time.
///
/// ```
/// use cache_l1::{Clock, ManualClock};
///
/// let clock = ManualClock::new(1_000);
/// clock.advance(500);
/// assert_eq!(clock.now(), 1_500);
/// ```
#[derive(Debug, Default)]
pub struct ManualClock(AtomicU64);

impl ManualClock {
    /// A clock reading `now`.
    pub fn new(now: u64) -> Self {
        Self(AtomicU64::new(now))
    }

    /// Sets the time to `now` (it may go backwards; entries then un-expire for lookups).
    pub fn set(&self, now: u64) {
        self.0.store(now, Ordering::Release);
    }

    /// Moves the time forward by `by`, saturating.
    pub fn advance(&self, by: u64) {
        let _ = self
            .0
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |t| {
                Some(t.saturating_add(by))
            });
    }
}

impl Clock for ManualClock {
    fn now(&self) -> u64 {
        self.0.load(Ordering::Acquire)
    }
}

impl<C: Clock + ?Sized> Clock for std::sync::Arc<C> {
    fn now(&self) -> u64 {
        (**self).now()
    }
}

//! Counters that many threads bump without sharing a cache line.

use std::cell::Cell;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use crossbeam_utils::CachePadded;

/// Number of stripes in a [`Counter`]. A power of two, so a thread's stripe is a mask away.
const STRIPES: usize = 16;

/// A monotonically increasing counter split into cache-line-padded stripes.
///
/// Each thread adds to its own stripe (threads are assigned stripes round-robin on first use),
/// so hot paths on different cores do not bounce one cache line between them. Reading sums the
/// stripes: a read that races with adds sees some of them, as any relaxed counter would.
#[derive(Debug, Default)]
pub struct Counter {
    stripes: [CachePadded<AtomicU64>; STRIPES],
}

impl Counter {
    /// A counter at zero.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds `n` to the counter.
    #[inline]
    pub fn add(&self, n: u64) {
        self.stripes[stripe_index()].fetch_add(n, Ordering::Relaxed);
    }

    /// Adds 1 to the counter.
    #[inline]
    pub fn incr(&self) {
        self.add(1);
    }

    /// The current total.
    pub fn get(&self) -> u64 {
        self.stripes
            .iter()
            .map(|s| s.load(Ordering::Relaxed))
            .fold(0, u64::wrapping_add)
    }

    /// Resets the counter to zero. Adds racing with the reset may survive it.
    pub fn reset(&self) {
        for s in &self.stripes {
            s.store(0, Ordering::Relaxed);
        }
    }
}

/// The stripe of the calling thread.
#[inline]
fn stripe_index() -> usize {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    thread_local! {
        static STRIPE: Cell<usize> = const { Cell::new(usize::MAX) };
    }
    STRIPE.with(|s| {
        let mut i = s.get();
        if i == usize::MAX {
            i = NEXT.fetch_add(1, Ordering::Relaxed) & (STRIPES - 1);
            s.set(i);
        }
        i
    })
}

/// A snapshot of an L1 cache's counters.
///
/// Counters are cumulative since the cache was built (or since [`crate::ShardedSieve::clear`]
/// with `reset_stats`); `len` and `weight` are the current state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct L1Stats {
    /// Lookups that found a resident entry.
    pub hits: u64,
    /// Lookups that found nothing.
    pub misses: u64,
    /// Entries inserted (new keys and replacements).
    pub insertions: u64,
    /// Entries evicted by the policy to keep the budget.
    pub evictions: u64,
    /// Expired entries removed (by a lookup, an eviction scan, `retain` or a replacing insert).
    pub expirations: u64,
    /// Entries the caller removed (`remove`, `retain`; not `clear`).
    pub removals: u64,
    /// Inserts refused because the entry alone is heavier than the largest entry admitted.
    pub rejections: u64,
    /// Entries resident now.
    pub len: u64,
    /// Sum of the weights of resident entries now (bytes for a byte budget).
    pub weight: u64,
    /// The capacity the weights are held to.
    pub capacity: u64,
    /// The number of shards the capacity is split over.
    pub shards: usize,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counter_sums_adds_from_many_threads() {
        let c = Counter::new();
        std::thread::scope(|s| {
            for _ in 0..8 {
                s.spawn(|| {
                    for _ in 0..1000 {
                        c.incr();
                    }
                });
            }
        });
        assert_eq!(c.get(), 8000);
        c.reset();
        assert_eq!(c.get(), 0);
    }
}

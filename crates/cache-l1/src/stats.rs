//! Counters that many threads bump without sharing a cache line or a locked instruction.

use std::sync::atomic::{AtomicU64, Ordering};

use crossbeam_utils::CachePadded;
use thread_local::ThreadLocal;

/// A monotonically increasing counter with one cache-line-padded slot per thread.
///
/// A thread adds only to its own slot, so it is the slot's only writer: an add is a plain load
/// and store (no locked read-modify-write, which on x86 costs as much as the rest of a cache
/// hit), and hot paths on different cores never bounce one cache line between them. Reading
/// sums the slots: a read that races with adds sees some of them, as any relaxed counter would.
/// A slot is allocated the first time a thread adds (once per thread and counter).
#[derive(Debug, Default)]
pub struct Counter {
    slots: ThreadLocal<CachePadded<AtomicU64>>,
}

impl Counter {
    /// A counter at zero.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds `n` to the counter (wrapping at `u64::MAX`).
    #[inline]
    pub fn add(&self, n: u64) {
        let slot = self.slots.get_or_default();
        // Only this thread writes this slot, so load-then-store loses nothing.
        slot.store(
            slot.load(Ordering::Relaxed).wrapping_add(n),
            Ordering::Relaxed,
        );
    }

    /// Adds 1 to the counter.
    #[inline]
    pub fn incr(&self) {
        self.add(1);
    }

    /// The current total.
    pub fn get(&self) -> u64 {
        self.slots
            .iter()
            .map(|s| s.load(Ordering::Relaxed))
            .fold(0, u64::wrapping_add)
    }
}

/// A snapshot of an L1 cache's counters.
///
/// Counters are cumulative since the cache was built; `len` and `weight` are the current state.
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
        c.add(u64::MAX);
        assert_eq!(c.get(), 7999, "adds wrap");
    }
}

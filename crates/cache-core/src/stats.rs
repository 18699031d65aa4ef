//! The engine's counters and their snapshot.

use cache_l1::L1Stats;
use cache_l1::stats::Counter;
use cache_l2::L2Stats;

/// Counters the engine itself keeps (each tier keeps its own too).
#[derive(Debug, Default)]
pub(crate) struct Counters {
    /// L1 misses that found the key in L1 after waiting for its stripe (another caller put or
    /// promoted it meanwhile): served from L1, counted as L1 hits.
    pub(crate) l1_hits_after_wait: Counter,
    pub(crate) l2_hits: Counter,
    pub(crate) misses: Counter,
    pub(crate) insertions: Counter,
    pub(crate) promotions: Counter,
    pub(crate) invalidations: Counter,
    pub(crate) l1_rejections: Counter,
}

/// A snapshot of a [`crate::TieredCache`]'s counters and sizes.
///
/// Every `get` is exactly one of an L1 hit, an L2 hit or a miss, so
/// `l1_hits + l2_hits + misses` is the number of gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct CacheStats {
    /// Gets served from L1.
    pub l1_hits: u64,
    /// Gets that missed L1 and were served from L2 (and promoted).
    pub l2_hits: u64,
    /// Gets served by neither tier.
    pub misses: u64,
    /// Successful puts.
    pub insertions: u64,
    /// L2 hits copied into L1.
    pub promotions: u64,
    /// Keys `invalidate_key` found in either tier.
    pub invalidations: u64,
    /// Puts and promotions L1 refused because the entry alone exceeds its shard's budget (the
    /// value then lives in L2 only).
    pub l1_rejections: u64,
    /// The L1 tier's own snapshot: `evictions`, `len`, `weight` (bytes in use, or entries in
    /// entry-count mode) and `capacity`.
    pub l1: L1Stats,
    /// The L2 tier's own snapshot (`live_bytes` is its bytes in use), if there is an L2.
    pub l2: Option<L2Stats>,
}

impl CacheStats {
    /// Gets served so far: `l1_hits + l2_hits + misses`.
    pub fn gets(&self) -> u64 {
        self.l1_hits + self.l2_hits + self.misses
    }

    /// Fraction of gets served by neither tier, in `[0, 1]` (0 when there were no gets).
    pub fn miss_ratio(&self) -> f64 {
        ratio(self.misses, self.gets())
    }

    /// Fraction of gets served by L1.
    pub fn l1_hit_ratio(&self) -> f64 {
        ratio(self.l1_hits, self.gets())
    }

    /// Fraction of gets served by L2.
    pub fn l2_hit_ratio(&self) -> f64 {
        ratio(self.l2_hits, self.gets())
    }
}

#[expect(
    clippy::cast_precision_loss,
    reason = "ratios of counters; exact below 2^53"
)]
fn ratio(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 / whole as f64
    }
}

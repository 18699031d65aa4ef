//! The engine's counters and their snapshot.

use cache_l1::L1Stats;
use cache_l1::stats::Counter;
use cache_l2::L2Stats;

/// Counters the engine itself keeps (each tier keeps its own too).
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) l2_hits: Counter,
    pub(crate) misses: Counter,
    /// L1 lookups that found an entry it may not serve (expired, idle, flushed).
    pub(crate) l1_dead: Counter,
    pub(crate) insertions: Counter,
    pub(crate) promotions: Counter,
    pub(crate) promotions_superseded: Counter,
    pub(crate) promotions_coalesced: Counter,
    pub(crate) promotions_dropped: Counter,
    pub(crate) promotions_completed: Counter,
    pub(crate) invalidations: Counter,
    pub(crate) namespace_flushes: Counter,
    pub(crate) version_mismatches: Counter,
    pub(crate) expirations: Counter,
    pub(crate) idle_evictions: Counter,
    pub(crate) stale_serves: Counter,
    pub(crate) l2_metadata_reads: Counter,
    pub(crate) undecodable: Counter,
    pub(crate) l1_rejections: Counter,
    pub(crate) loads: Counter,
    pub(crate) load_waits: Counter,
    pub(crate) load_failures: Counter,
    pub(crate) validator_failures: Counter,
}

impl Counters {
    pub(crate) fn snapshot(
        &self,
        l1: L1Stats,
        l2: Option<&L2Stats>,
        promotions_queued: u64,
        promotion_queue_depth: u64,
        namespaces: u64,
    ) -> CacheStats {
        CacheStats {
            l1_hits: l1.hits.saturating_sub(self.l1_dead.get()),
            l2_hits: self.l2_hits.get(),
            misses: self.misses.get(),
            insertions: self.insertions.get(),
            promotions: self.promotions.get(),
            promotions_queued,
            promotions_completed: self.promotions_completed.get(),
            promotions_dropped: self.promotions_dropped.get(),
            promotions_coalesced: self.promotions_coalesced.get(),
            promotions_superseded: self.promotions_superseded.get(),
            promotion_queue_depth,
            invalidations: self.invalidations.get(),
            namespace_flushes: self.namespace_flushes.get(),
            namespaces,
            version_mismatches: self.version_mismatches.get(),
            expirations: self.expirations.get() + l1.expirations,
            idle_evictions: self.idle_evictions.get(),
            stale_serves: self.stale_serves.get(),
            l2_metadata_reads: self.l2_metadata_reads.get(),
            undecodable_records: self.undecodable.get(),
            l1_rejections: self.l1_rejections.get(),
            loads: self.loads.get(),
            load_waits: self.load_waits.get(),
            load_failures: self.load_failures.get(),
            validator_failures: self.validator_failures.get(),
            l1_bytes: l1.weight,
            l1_max_bytes: l1.capacity,
            l2_bytes: l2.map_or(0, |s| s.live_bytes),
            l2_max_bytes: l2.map_or(0, |s| s.max_bytes),
            l1,
            l2: l2.copied(),
        }
    }
}

/// A snapshot of a [`crate::TieredCache`]'s counters and sizes.
///
/// Every `get` is exactly one of an L1 hit, an L2 hit or a miss, so
/// `l1_hits + l2_hits + misses` is the number of gets. Tier-level detail (L1 evictions, L2
/// commits, negative skips, synopsis false positives, bytes saved by compression) is in `l1`
/// and `l2`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct CacheStats {
    /// Gets served from L1.
    pub l1_hits: u64,
    /// Gets that missed L1 and were served from L2.
    pub l2_hits: u64,
    /// Gets served by neither tier (absent, expired, idle, flushed).
    pub misses: u64,
    /// Successful puts (loaded values included).
    pub insertions: u64,
    /// L2 hits installed into L1 (inline or by the pool).
    pub promotions: u64,
    /// Promotions handed to the async pool.
    pub promotions_queued: u64,
    /// Promotions the pool's workers finished (installed, superseded or refused by L1).
    pub promotions_completed: u64,
    /// Promotions dropped because the pool's queue was full.
    pub promotions_dropped: u64,
    /// Promotions not queued because the same key was in flight already.
    pub promotions_coalesced: u64,
    /// Promotions not installed because the key was written or invalidated after their L2
    /// read (the guard against resurrecting old values).
    pub promotions_superseded: u64,
    /// Promotions waiting in the pool's queue now.
    pub promotion_queue_depth: u64,
    /// Entries removed by the `invalidate_*` calls (namespace flushes excluded).
    pub invalidations: u64,
    /// Namespace flushes.
    pub namespace_flushes: u64,
    /// Namespaces known now (counted against `limits.max_namespaces`).
    pub namespaces: u64,
    /// Puts refused by their CAS version.
    pub version_mismatches: u64,
    /// Entries found expired (past their stale window): on a get, or by L1 on its own.
    pub expirations: u64,
    /// Entries found idle past their idle timeout on a get.
    pub idle_evictions: u64,
    /// Gets served from a stale-while-revalidate window.
    pub stale_serves: u64,
    /// L2 records read for their metadata only (CAS version checks).
    pub l2_metadata_reads: u64,
    /// L2 records whose metadata section did not decode (served as misses).
    pub undecodable_records: u64,
    /// Puts and promotions L1 refused because the entry alone exceeds its largest entry
    /// weight (the value then lives in L2 only).
    pub l1_rejections: u64,
    /// Loader runs by [`crate::TieredCache::get_or_load`].
    pub loads: u64,
    /// `get_or_load` calls that waited for another caller's loader instead of running theirs.
    pub load_waits: u64,
    /// Loader runs that failed (their waiters got the error too).
    pub load_failures: u64,
    /// Entries `get_revalidated` found with a changed or missing input file.
    pub validator_failures: u64,
    /// L1 bytes in use (entry weights), or entries in entry-count mode.
    pub l1_bytes: u64,
    /// L1's budget, in the same unit.
    pub l1_max_bytes: u64,
    /// L2 bytes in use (accounted live bytes), 0 without an L2.
    pub l2_bytes: u64,
    /// L2's byte budget, 0 without an L2.
    pub l2_max_bytes: u64,
    /// The L1 tier's own snapshot.
    pub l1: L1Stats,
    /// The L2 tier's own snapshot, if there is an L2.
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

    /// L2's compression ratio over the values it has written: original bytes over stored
    /// bytes is not tracked per record, so this is `1 + bytes_saved / live_bytes` (1 without
    /// an L2 or compression).
    pub fn compression_ratio(&self) -> f64 {
        self.l2.map_or(1.0, |s| {
            if s.live_bytes == 0 {
                1.0
            } else {
                1.0 + ratio(s.bytes_saved, s.live_bytes)
            }
        })
    }

    /// Bytes compression saved in L2 (0 without an L2).
    pub fn bytes_saved(&self) -> u64 {
        self.l2.map_or(0, |s| s.bytes_saved)
    }

    /// L2 gets the synopsis answered without reading the file.
    pub fn negative_skips(&self) -> u64 {
        self.l2.map_or(0, |s| s.negative_skips)
    }

    /// L2 gets the synopsis let through that found nothing.
    pub fn synopsis_false_positives(&self) -> u64 {
        self.l2.map_or(0, |s| s.synopsis_false_positives)
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

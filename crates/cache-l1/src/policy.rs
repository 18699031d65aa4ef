//! Eviction policies.

/// The eviction policy each shard runs.
///
/// | policy | queues | a hit | eviction |
/// |---|---|---|---|
/// | [`Policy::Sieve`] | one SIEVE queue | sets the visited bit | SIEVE hand |
/// | [`Policy::S3Fifo`] | small FIFO + ghost history + main queue | bumps a 2-bit counter | sheds the small FIFO, or the main queue's hand when it is over its share |
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub enum Policy {
    /// SIEVE exactly as in Zhang et al., "SIEVE is Simpler than LRU: an Efficient Turn-Key
    /// Eviction Algorithm for Web Caches", NSDI 2024: one FIFO queue, a visited bit per entry and
    /// a hand. Not scan-resistant: a burst of one-hit keys can push out a working set whose bits
    /// the hand has just cleared.
    Sieve,
    /// Scan-resistant: S3-FIFO (Yang et al., "FIFO queues are all you need for cache eviction",
    /// SOSP 2023), a small probationary FIFO and a ghost history in front of a main queue whose
    /// hand is either CLOCK (the default) or SIEVE's.
    ///
    /// - A new key enters the main queue if it is in the ghost history (it is then taken out of
    ///   it) or if the main queue is below its share; otherwise it enters the small queue.
    /// - To make room, the main queue's hand evicts if the main queue is over its share (or the
    ///   small queue is empty). Otherwise the small queue sheds its oldest entries: one hit at
    ///   least `promote_hits` times while there moves to the main queue, and the first one that
    ///   was not is evicted, its hash remembered in the ghost history.
    /// - In the main queue each hit buys one more pass of the hand, up to `main_freq_cap`.
    ///
    /// While the cache fills, keys go to the main queue, which then holds them until entries that
    /// earn their place replace them: a scan or loop larger than the cache keeps hitting on the
    /// part of it the main queue holds, instead of flushing everything as SIEVE does.
    S3Fifo(S3FifoParams),
}

/// How the main queue of [`Policy::S3Fifo`] picks its victim.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum MainQueue {
    /// CLOCK (FIFO with reinsertion): the hand looks at the oldest entry; one with hits left
    /// spends one and moves to the head, the first without is evicted. New entries get a full
    /// lap before the hand reaches them.
    Clock,
    /// SIEVE's hand: spared entries stay in place, new entries enter at the head, where the
    /// hand reaches them soonest ("quick demotion"). Right for unfiltered arrivals, wrong for
    /// entries that already passed the small queue or the ghost history: on the P6 trace at 10%
    /// of its footprint it misses 76.0% where CLOCK misses 43.1%.
    Sieve,
}

/// Parameters of [`Policy::S3Fifo`]. The defaults were chosen by measuring miss ratios on the
/// ARC and LIRS traces (`docs/benchmarks.md`).
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub struct S3FifoParams {
    /// The small queue's share of a shard's capacity, in (0, 1); the main queue gets the rest.
    /// Default: 0.03.
    pub small_ratio: f64,
    /// Ghost history length as a multiple of the shard's resident entry count, ≥ 0.
    /// Default: 1.0.
    pub ghost_ratio: f64,
    /// Hits an entry needs while in the small queue to be promoted, ≥ 1. Default: 2.
    pub promote_hits: u8,
    /// Passes of the main queue's hand an entry can bank through hits, ≥ 1. Default: 3.
    pub main_freq_cap: u8,
    /// The main queue's hand. Default: [`MainQueue::Clock`].
    pub main_queue: MainQueue,
}

impl Default for S3FifoParams {
    fn default() -> Self {
        Self {
            small_ratio: 0.03,
            ghost_ratio: 1.0,
            promote_hits: 2,
            main_freq_cap: 3,
            main_queue: MainQueue::Clock,
        }
    }
}

impl S3FifoParams {
    /// Sets [`S3FifoParams::small_ratio`].
    #[must_use]
    pub fn small_ratio(mut self, r: f64) -> Self {
        self.small_ratio = r;
        self
    }

    /// Sets [`S3FifoParams::ghost_ratio`].
    #[must_use]
    pub fn ghost_ratio(mut self, r: f64) -> Self {
        self.ghost_ratio = r;
        self
    }

    /// Sets [`S3FifoParams::promote_hits`].
    #[must_use]
    pub fn promote_hits(mut self, n: u8) -> Self {
        self.promote_hits = n;
        self
    }

    /// Sets [`S3FifoParams::main_freq_cap`].
    #[must_use]
    pub fn main_freq_cap(mut self, n: u8) -> Self {
        self.main_freq_cap = n;
        self
    }

    /// Sets [`S3FifoParams::main_queue`].
    #[must_use]
    pub fn main_queue(mut self, q: MainQueue) -> Self {
        self.main_queue = q;
        self
    }

    /// Why these parameters are unusable, if they are.
    pub(crate) fn check(&self) -> Result<(), &'static str> {
        if !(self.small_ratio > 0.0 && self.small_ratio < 1.0) {
            return Err("small_ratio must be in (0, 1)");
        }
        if !(self.ghost_ratio >= 0.0 && self.ghost_ratio.is_finite()) {
            return Err("ghost_ratio must be finite and at least 0");
        }
        if self.promote_hits == 0 || self.main_freq_cap == 0 {
            return Err("promote_hits and main_freq_cap must be at least 1");
        }
        Ok(())
    }
}

impl Policy {
    /// The caps of entries' access counters, per list (small, main).
    pub(crate) fn freq_caps(&self) -> [u8; 2] {
        match self {
            Self::Sieve => [1, 1],
            Self::S3Fifo(p) => [p.promote_hits, p.main_freq_cap],
        }
    }
}

//! What the store does when a put would take it over its budget: which records it evicts
//! ([`EvictionPolicy`]), or whether it refuses the put instead ([`OnFull`]).
//!
//! SIEVE (Zhang et al., "SIEVE is Simpler than LRU: an Efficient Turn-Key Eviction Algorithm
//! for Web Caches", NSDI 2024) keeps records in insertion order with one "visited" bit each. A
//! hand moves from the oldest record towards the newest: a visited record has its bit cleared
//! and stays where it is; the first unvisited one is evicted, and the hand rests there for the
//! next eviction, wrapping to the oldest record past the newest. Here the insertion order is
//! the durable order table (sequence number → key), the hand is a sequence number and the
//! visited bits are in memory ([`VisitedBits`]): records need no rewrite when they are read,
//! and a restart forgets which were read (every record starts unvisited, as after a pass).

use std::sync::atomic::{AtomicU64, Ordering};

use serde::{Deserialize, Serialize};

/// Which records make room when the store is full. SIEVE (Zhang et al., NSDI 2024) walks
/// insertion order with a hand and keeps records read since it last passed them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EvictionPolicy {
    /// SIEVE over insertion order: records read since the hand last passed them are kept
    /// for another pass. The default.
    #[default]
    Sieve,
    /// Oldest insertion first, reads ignored.
    Fifo,
}

/// What a put does when the store is full.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OnFull {
    /// Evict records ([`EvictionPolicy`]) until the put fits. The default.
    #[default]
    Evict,
    /// Refuse the put with [`crate::L2Error::Full`] and keep every record. A refused
    /// overwrite still removes the key's old record: the caller meant to replace it, so
    /// serving it would be stale. An async put refused when its batch commits (the store
    /// filled between the call and the commit) is counted in
    /// [`crate::L2Stats::rejected_writes`] and reads as a miss.
    Reject,
}

/// One in-memory visited bit per record, addressed by sequence number modulo the bit count:
/// the newest `len` sequence numbers never share a bit, and an older one that shares a bit
/// only gets an undeserved second chance. Set by gets without a lock; read and cleared by the
/// writer thread as the hand passes.
#[derive(Debug)]
pub(crate) struct VisitedBits {
    words: Box<[AtomicU64]>,
    /// Bit count − 1 (the count is a power of two).
    mask: u64,
}

impl VisitedBits {
    /// Fewest bits: 4096 (512 bytes).
    const MIN_BITS: u64 = 1 << 12;
    /// Most bits: 2^24 (2 MiB).
    const MAX_BITS: u64 = 1 << 24;

    /// Bits for a store whose records' footprints add up to at most `footprint_limit` bytes:
    /// one per 512 bytes (a record's smallest footprint is about that), rounded up to a
    /// power of two within [`Self::MIN_BITS`, `Self::MAX_BITS`].
    pub(crate) fn for_budget(footprint_limit: u64) -> Self {
        let bits = (footprint_limit / 512)
            .clamp(Self::MIN_BITS, Self::MAX_BITS)
            .next_power_of_two();
        let words = (0..bits / 64).map(|_| AtomicU64::new(0)).collect();
        Self {
            words,
            mask: bits - 1,
        }
    }

    fn locate(&self, seq: u64) -> (&AtomicU64, u64) {
        let bit = seq & self.mask;
        let word = &self.words[usize::try_from(bit / 64).unwrap_or(0)];
        (word, 1 << (bit % 64))
    }

    /// Marks record `seq` as read.
    pub(crate) fn mark(&self, seq: u64) {
        let (word, bit) = self.locate(seq);
        // A load first: gets of hot records then leave the cache line shared.
        if word.load(Ordering::Relaxed) & bit == 0 {
            word.fetch_or(bit, Ordering::Relaxed);
        }
    }

    /// Clears record `seq`'s bit; returns whether it was set.
    pub(crate) fn take(&self, seq: u64) -> bool {
        let (word, bit) = self.locate(seq);
        word.load(Ordering::Relaxed) & bit != 0
            && word.fetch_and(!bit, Ordering::Relaxed) & bit != 0
    }

    /// Clears record `seq`'s bit (a new record must not inherit a read of an old one).
    pub(crate) fn clear(&self, seq: u64) {
        self.take(seq);
    }
}

/// The eviction state the writer thread carries between batches.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Hand {
    /// The policy.
    pub(crate) policy: EvictionPolicy,
    /// SIEVE: the sequence number the next search starts at (the oldest record at 0).
    pub(crate) at: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bits_are_set_taken_once_and_sized_by_budget() {
        let small = VisitedBits::for_budget(0);
        assert_eq!(small.mask + 1, VisitedBits::MIN_BITS);
        let big = VisitedBits::for_budget(u64::MAX);
        assert_eq!(big.mask + 1, VisitedBits::MAX_BITS);
        let mid = VisitedBits::for_budget(3 << 20);
        assert_eq!(mid.mask + 1, 8192, "6144 rounded up");

        assert!(!small.take(7));
        small.mark(7);
        small.mark(7);
        assert!(small.take(7));
        assert!(!small.take(7), "taking clears");
        // Sequence numbers a bit count apart share a bit; neighbours do not.
        small.mark(8);
        assert!(!small.take(9));
        assert!(small.take(8 + VisitedBits::MIN_BITS));
        small.mark(3);
        small.clear(3);
        assert!(!small.take(3));
    }
}

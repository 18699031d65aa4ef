//! Per-key stripe locks: what orders the two-tier steps of one key.

use std::hash::{BuildHasher, RandomState};

use crossbeam_utils::CachePadded;
use parking_lot::{Mutex, MutexGuard};

use crate::key::KeyRef;

/// Number of stripes; a power of two.
const STRIPES: usize = 256;

/// A fixed array of mutexes, one chosen per key by a randomly seeded hash.
///
/// Every step that spans both tiers for one key runs under that key's stripe: a put's L2 write
/// and L1 insert, an invalidation's L1 remove and L2 delete, and a promotion's L2 read and L1
/// insert. So those steps of different calls on one key never interleave: two puts cannot leave
/// L1 and L2 holding different values, and a promotion cannot install a value that a put or an
/// invalidation replaced after the promotion read it. L1 hits take no stripe.
///
/// Keys that share a stripe also wait for each other (1 in 256 pairs); only one stripe is ever
/// held at a time, and no lock is taken while holding one except the tiers' own, so there is no
/// lock-order cycle.
pub(crate) struct KeyLocks {
    stripes: Box<[CachePadded<Mutex<()>>]>,
    hasher: RandomState,
}

impl KeyLocks {
    pub(crate) fn new() -> Self {
        Self {
            stripes: (0..STRIPES)
                .map(|_| CachePadded::new(Mutex::new(())))
                .collect(),
            hasher: RandomState::new(),
        }
    }

    /// Locks the stripe of `key`.
    pub(crate) fn lock(&self, key: KeyRef<'_>) -> MutexGuard<'_, ()> {
        let h = self.hasher.hash_one(key);
        #[expect(
            clippy::cast_possible_truncation,
            reason = "masked to the stripe count"
        )]
        let i = (h as usize) & (STRIPES - 1);
        self.stripes[i].lock()
    }
}

impl std::fmt::Debug for KeyLocks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyLocks")
            .field("stripes", &self.stripes.len())
            .finish_non_exhaustive()
    }
}

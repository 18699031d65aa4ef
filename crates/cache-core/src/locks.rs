//! Per-key stripes: what orders the two-tier steps of one key, and lets a promotion tell
//! whether the key was written since it read L2.

use std::hash::{BuildHasher, RandomState};
use std::sync::atomic::{AtomicU64, Ordering};

use crossbeam_utils::CachePadded;
use parking_lot::{Mutex, MutexGuard};

use crate::key::KeyRef;

/// Number of stripes; a power of two.
const STRIPES: usize = 256;

/// One stripe: a mutex and a write sequence.
#[derive(Debug, Default)]
pub(crate) struct Stripe {
    lock: Mutex<()>,
    /// Bumped (under `lock`) by every put and invalidation of a key of the stripe, after its L2
    /// step and before its L1 step.
    seq: AtomicU64,
}

impl Stripe {
    pub(crate) fn lock(&self) -> MutexGuard<'_, ()> {
        self.lock.lock()
    }

    /// The write sequence now. A promotion reads it before its L2 read and installs only if
    /// it is unchanged (checked under the lock).
    pub(crate) fn seq(&self) -> u64 {
        self.seq.load(Ordering::SeqCst)
    }

    /// Records a write; call under the lock, after the write's L2 step.
    pub(crate) fn bump(&self, _held: &MutexGuard<'_, ()>) {
        self.seq.fetch_add(1, Ordering::SeqCst);
    }
}

/// A fixed array of stripes, one chosen per key by a randomly seeded hash.
///
/// Every put and `invalidate_key` runs its L2 and L1 steps under the key's stripe, so those
/// steps of different calls on one key never interleave: two puts cannot leave L1 and L2
/// holding different values. A promotion does not hold the stripe while it reads L2 (so a slow
/// L2 read blocks no writer); it notes the stripe's sequence before the read and installs into
/// L1 under the stripe only if no write of the stripe happened since. A write between the read
/// and the install makes the promotion drop its (possibly older) value: a false alarm (another
/// key of the stripe was written) only costs a promotion.
///
/// Only one stripe is ever held at a time, and no lock is taken while holding one except the
/// tiers' own and the invalidation gate's read side, so there is no lock-order cycle.
pub(crate) struct KeyLocks {
    stripes: Box<[CachePadded<Stripe>]>,
    hasher: RandomState,
}

impl KeyLocks {
    pub(crate) fn new() -> Self {
        Self {
            stripes: (0..STRIPES).map(|_| CachePadded::default()).collect(),
            hasher: RandomState::new(),
        }
    }

    /// The stripe of `key`.
    pub(crate) fn stripe(&self, key: KeyRef<'_>) -> &Stripe {
        let h = self.hasher.hash_one(key);
        #[expect(
            clippy::cast_possible_truncation,
            reason = "masked to the stripe count"
        )]
        let i = (h as usize) & (STRIPES - 1);
        &self.stripes[i]
    }
}

impl std::fmt::Debug for KeyLocks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyLocks")
            .field("stripes", &self.stripes.len())
            .finish_non_exhaustive()
    }
}

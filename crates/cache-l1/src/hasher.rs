//! The default hasher: foldhash, seeded from the operating system's randomness.
//!
//! The hash of a key picks its shard and its slot, so keys an attacker chooses must not be
//! predictable. hashbrown's default builder (foldhash built without its `std` feature) seeds
//! itself from the address-space layout alone: with ASLR off, every process hashes alike.
//! [`RandomState`] keeps foldhash's speed and takes both of its seeds from std's
//! `RandomState`, whose `SipHash` keys come from the operating system (`getrandom`).

use std::hash::BuildHasher;
use std::sync::OnceLock;

use foldhash::SharedSeed;
use foldhash::fast::{FoldHasher, SeedableRandomState};

/// A randomly seeded foldhash [`BuildHasher`]: the default hasher of
/// [`crate::ShardedSieve`]. Each instance draws its own seed, and the process shares one
/// random global seed; both come from the operating system's randomness.
#[derive(Clone, Debug)]
pub struct RandomState(SeedableRandomState);

/// A random `u64`: std's `SipHash`, keyed from the operating system's randomness (and fresh
/// keys for every `std::hash::RandomState`), applied to a constant.
fn os_random_u64() -> u64 {
    std::hash::RandomState::new().hash_one(0x5EED_u64)
}

impl Default for RandomState {
    fn default() -> Self {
        static SHARED: OnceLock<SharedSeed> = OnceLock::new();
        let shared = SHARED.get_or_init(|| SharedSeed::from_u64(os_random_u64()));
        Self(SeedableRandomState::with_seed(os_random_u64(), shared))
    }
}

impl BuildHasher for RandomState {
    type Hasher = FoldHasher<'static>;

    #[inline]
    fn build_hasher(&self) -> Self::Hasher {
        self.0.build_hasher()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_instance_hashes_differently() {
        let a = RandomState::default();
        let b = RandomState::default();
        assert_eq!(a.hash_one(b"key"), a.hash_one(b"key"));
        assert_ne!(a.hash_one(b"key"), b.hash_one(b"key"));
    }
}

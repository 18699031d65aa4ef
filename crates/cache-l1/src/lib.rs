//! `cache-l1`: a sharded, concurrent cache with a weight budget and SIEVE-family eviction.
//!
//! [`ShardedSieve<K, V, W>`] keeps entries in shards, each a hash index over the queues of its
//! [`Policy`] behind its own reader-writer lock:
//!
//! - [`Policy::Sieve`]: one SIEVE queue (Zhang et al., "SIEVE is Simpler than LRU:
//!   an Efficient Turn-Key Eviction Algorithm for Web Caches", NSDI 2024);
//! - [`Policy::S3Fifo`] (the default): scan-resistant, a small probationary FIFO and a ghost history in front of
//!   a main queue (Yang et al., "FIFO queues are all you need for cache eviction", SOSP 2023).
//!
//! A [`Weigher`] gives each entry a weight (bytes for a byte budget, 1 for an entry count); each
//! shard holds the sum of its weights to its slice of the capacity.
//!
//! - **Hits take no exclusive lock.** A hit bumps the entry's atomic access counter (SIEVE's
//!   `visited` bit) under the shard's shared lock; nothing is reordered.
//! - **Inserts evict by the policy** until the shard's weights fit again, before the new entry
//!   is linked, and hand the evicted entries back to the caller.
//! - **One shard is exactly SIEVE.** With `shards(1)` the eviction order is the paper's, so miss
//!   ratios match simulators such as libCacheSim; with more shards each shard runs its own queue
//!   over its slice of the capacity.
//! - **Hostile keys do not pile up.** The default hasher is randomly seeded; the hash is computed
//!   once per call and picks both the shard and the slot.
//! - **Lookups by borrowed keys.** `get`, `peek` and `remove` take any `Q: Hash + Equivalent<K>`.
//!
//! SIEVE is not scan-resistant: a burst of one-hit entries can push out a working set whose
//! `visited` bits the hand has just cleared, and a loop larger than the cache never hits.
//! [`Policy::S3Fifo`] is.
//!
//! ```
//! use cache_l1::Options;
//!
//! // A byte budget of 1 KiB; an entry weighs its value's length.
//! let cache = Options::new(1024)
//!     .shards(1)
//!     .build(|_key: &u32, value: &Vec<u8>| value.len() as u64)?;
//! for i in 0..4 {
//!     let outcome = cache.insert(i, vec![0; 300]).expect("fits");
//!     assert!(outcome.evicted.len() <= 1);
//! }
//! assert!(cache.weight() <= 1024);
//! assert!(cache.get(&3).is_some()); // the newest entry is resident
//! # Ok::<(), cache_l1::OptionsError>(())
//! ```

#![forbid(unsafe_code)]

mod cache;
mod clock;
mod ghost;
mod lists;
mod policy;
mod shard;
pub mod stats;
mod weigher;

pub use cache::{
    DEFAULT_MAX_ENTRY_FRACTION, EntryOptions, InsertOutcome, MAX_PRIORITY, MIN_ENTRIES_PER_SHARD,
    Options, OptionsError, Rejected, Removal, RemovalCause, ShardedSieve,
};
pub use clock::{Clock, ManualClock, SystemClock};
pub use hashbrown::Equivalent;
pub use policy::{MainQueue, Policy, S3FifoParams};
pub use stats::L1Stats;
pub use weigher::{UnitWeigher, Weigher};

//! `cache-l1`: a sharded, concurrent cache with a weight budget and SIEVE-family eviction.
//!
//! [`ShardedSieve<K, V, W>`] keeps entries in shards, each a hash index over the queues of its
//! [`Policy`] behind its own reader-writer lock:
//!
//! - [`Policy::S3Fifo`] (the default): scan-resistant, a small probationary FIFO and a ghost
//!   history in front of a CLOCK main queue (Yang et al., "FIFO queues are all you need for cache
//!   eviction", SOSP 2023). On the shared ARC and LIRS traces it misses less than SIEVE, moka
//!   and `quick_cache` (`docs/benchmarks.md`).
//! - [`Policy::Sieve`]: one SIEVE queue (Zhang et al., "SIEVE is Simpler than LRU: an Efficient
//!   Turn-Key Eviction Algorithm for Web Caches", NSDI 2024). With `shards(1)` the eviction order
//!   is the paper's, so miss ratios match simulators such as libCacheSim. Not scan-resistant: a
//!   burst of one-hit entries can push out a working set whose `visited` bits the hand has just
//!   cleared, and a loop larger than the cache never hits.
//!
//! # Guarantees
//!
//! - **Hits take no exclusive lock and allocate nothing.** A hit bumps the entry's atomic access
//!   counter under the shard's shared lock (a load, and a store only if it changes) and adds to
//!   a per-thread counter; nothing is reordered. Lookups take any borrowed form of the key
//!   (`Q: Hash + Equivalent<K>`); the hash is computed once and picks both shard and slot.
//! - **One budget for the whole cache.** A [`Weigher`] gives each entry a weight (bytes for a
//!   byte budget, 1 for an entry count). Each shard has a slice of the capacity and evicts
//!   within it; an entry larger than an eighth of its shard's slice may borrow room the other
//!   shards leave unused, and when shards are over their slices an insert makes the one most
//!   over give entries back (one lock at a time, after its own is released). So once operations
//!   return, the sum of all weights is within the capacity, and an entry larger than a shard's
//!   slice is still admitted. Only an entry heavier than [`Options::max_entry_fraction`] of the
//!   capacity (default 1/4) is [`Rejected`], and handed back rather than dropped. No atomic
//!   shared by all shards is written on the common insert path.
//! - **Inserts evict by the policy** before the new entry is linked, and hand every removed
//!   entry back ([`InsertOutcome::evicted`]).
//! - **Priority** ([`EntryOptions::priority`], 0 to [`MAX_PRIORITY`]): an entry with priority
//!   `p` is spared `p` times when the policy would evict it, as if hit once each time. Priority
//!   0 everywhere is the plain policy.
//! - **Expiry on the caller's clock** ([`EntryOptions::expires_at`], [`Clock`]): an expired
//!   entry is never returned; it leaves when a lookup, an eviction scan or [`ShardedSieve::retain`]
//!   meets it. Entries without expiry never cause a clock read.
//! - **A listener hears every departure** ([`ShardedSieve::with_listener`]) with its
//!   [`RemovalCause`] (`Evicted`, `Expired`, `Removed`, `Replaced`), after every lock is
//!   released.
//! - **Hostile keys do not pile up.** The default hasher is randomly seeded.
//!
//! # Memory per entry
//!
//! Beyond the key's and value's own heap data, a resident entry costs:
//!
//! - its slab node, [`ShardedSieve::node_bytes`]: `size_of::<K>() + size_of::<V>()` plus 40
//!   bytes (hash, expiry, weight, two `u32` links, counter, list, priority credit), rounded up to
//!   a multiple of 64: nodes are cache-line aligned, so that a hit costs one cache miss on the
//!   node, not two (on the 90/10 load this was worth 13% of throughput). 64 bytes for `u64` keys
//!   and `Arc<[u8]>` values, 128 for `u64` keys and `bytes::Bytes` values. The slab grows by
//!   doubling, so up to twice that while a shard fills;
//! - its hash-index slot: a `u32` and a control byte, at a load factor between 7/16 and 7/8,
//!   so 5.7 to 11.4 bytes;
//! - under S3-FIFO, once the cache has evicted, up to one ghost hash per resident entry (a
//!   16-byte FIFO slot, stale slots up to as many again, and a 16-byte index slot): 35 to 70
//!   bytes.
//!
//! `cache-bench mem` measures the resident memory per entry of 1M small entries beside moka
//! and `quick_cache` (`docs/benchmarks.md`).
//!
//! ```
//! use std::sync::Arc;
//! use cache_l1::{EntryOptions, ManualClock, Options, RemovalCause};
//!
//! // A byte budget of 1 KiB; an entry weighs its value's length; time is the caller's.
//! let clock = Arc::new(ManualClock::new(0));
//! let cache = Options::new(1024)
//!     .clock(clock.clone())
//!     .build(|_key: &u32, value: &Vec<u8>| value.len() as u64)?
//!     .with_listener(|key, _value, cause| {
//!         if cause == RemovalCause::Expired {
//!             println!("{key} expired");
//!         }
//!     });
//! for i in 0..4 {
//!     let outcome = cache.insert(i, vec![0; 250]).expect("fits");
//!     assert!(outcome.evicted.len() <= 1);
//! }
//! assert!(cache.weight() <= 1024);
//! let _ = cache.insert_with(9, vec![1; 10], EntryOptions::new().expires_at(100))
//!     .expect("fits");
//! assert!(cache.get(&9).is_some());
//! clock.set(100);
//! assert!(cache.get(&9).is_none()); // expired: a miss, and removed
//! // An entry above a quarter of the budget is handed back.
//! assert!(cache.insert(7, vec![0; 300]).is_err());
//! # Ok::<(), cache_l1::OptionsError>(())
//! ```

#![forbid(unsafe_code)]

mod cache;
mod clock;
mod ghost;
mod hasher;
mod lists;
mod policy;
mod shard;
pub mod stats;
mod weigher;

pub use cache::{
    DEFAULT_MAX_ENTRY_FRACTION, EntryOptions, Evicted, InsertOutcome, MAX_DEFAULT_SHARDS,
    MAX_PRIORITY, MIN_ENTRIES_PER_SHARD, Options, OptionsError, Rejected, Removal, RemovalCause,
    SHARDS_PER_CORE, ShardedSieve,
};
pub use clock::{Clock, ManualClock, SystemClock};
pub use hashbrown::Equivalent;
pub use hasher::RandomState;
pub use policy::{MainQueue, Policy, S3FifoParams};
pub use smallvec;
pub use stats::L1Stats;
pub use weigher::{UnitWeigher, Weigher};

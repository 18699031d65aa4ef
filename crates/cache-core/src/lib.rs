//! `cache-core`: the tiered cache engine a server embeds.
//!
//! A [`TieredCache`] puts a sharded in-memory SIEVE cache (L1, [`cache_l1`]) in front of a
//! durable, checksummed redb store (L2, [`cache_l2`]), and is built from one [`Config`] (loadable
//! from TOML). Keys are `(namespace, key)` pairs: a UTF-8 namespace and arbitrary key bytes;
//! values are [`bytes::Bytes`], returned without copying on an L1 hit.
//!
//! | operation | L1 | L2 |
//! |---|---|---|
//! | `put` | insert (evicting by SIEVE) | write (durable for overwrites) |
//! | `get` | lookup under a shared lock | on an L1 miss: read, verify, promote into L1 |
//! | `invalidate_key` | remove | delete (durable) |
//!
//! Reads take no lock while they read L2. Three guards keep the tiers in agreement (details and
//! the tests that break without them: `docs/architecture.md`):
//!
//! - a **write sequence per key stripe**, noted before an L2 read and checked when the promotion
//!   installs, so an overwritten or invalidated value is never promoted;
//! - an **invalidation epoch** that prefix, tag and dependency invalidations bump between their
//!   L2 step and their single L1 sweep, which installs and puts check the same way;
//! - a **generation per namespace**, held by every L1 entry, which makes
//!   [`TieredCache::invalidate_namespace`] O(1) and durable (L2 persists the bump).
//!
//! See `docs/architecture.md` for the data flow and the invariants, `docs/operations.md` for
//! every knob and stat.
//!
//! ```
//! use cache_core::{Config, TieredCache};
//!
//! // L1 alone, 1,000 entries, exactly the paper's SIEVE (one shard).
//! let config = Config::from_toml_str("[l1]\nmax_entries = 1000\nshards = 1")?;
//! let cache = TieredCache::open(&config)?;
//! cache.put("ns", b"k", "v")?;
//! assert_eq!(cache.get("ns", b"k")?.as_deref(), Some(&b"v"[..]));
//! assert_eq!(cache.stats().l1_hits, 1);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

#![forbid(unsafe_code)]

mod cache;
mod config;
mod entry;
mod error;
mod flight;
mod hooks;
mod idle;
mod key;
mod locks;
mod namespaces;
mod policy;
mod promotion;
mod stats;

pub use cache::{Hit, L1_ENTRY_OVERHEAD, Presence, Tier, TieredCache};
pub use cache_l1::{Clock, L1Stats, ManualClock, SystemClock};
pub use cache_l2::{
    CompressionOptions, KeyTooLong, L2Error, L2Options, L2Stats, MAX_KEY_LEN, MAX_NAMESPACE_LEN,
    OnCorrupt, WriteMode,
};
pub use config::{
    ASSUMED_MEAN_ENTRY_BYTES, Config, DEFAULT_L1_MAX_BYTES, L1Capacity, L1Config, L1Policy, Limits,
    MAX_L1_BYTES, MAX_L1_ENTRIES, MAX_NAMESPACES, MAX_PROMOTION_QUEUE, MAX_SHARDS, MIN_L1_BYTES,
    PromotionConfig, PromotionMode,
};
pub use entry::EntryInfo;
pub use error::{ConfigError, Error};
#[cfg(feature = "test-hooks")]
pub use hooks::{Hook, HookPoint};
pub use policy::{Admission, Cascade, ExtendedPolicy, Policy, Put};
pub use stats::CacheStats;

/// The README's examples, compiled and run as doc tests so they cannot rot.
#[cfg(doctest)]
#[doc = include_str!("../../../README.md")]
pub struct ReadmeDoctests;

//! `TieredCache`: L1 in front of L2, with inline promotion.

use bytes::Bytes;
use cache_l1::{Options, ShardedSieve, Weigher};
use cache_l2::{Store, check_key};

use crate::config::{ASSUMED_MEAN_ENTRY_BYTES, Config, L1Capacity};
use crate::error::{ConfigError, Error};
use crate::hooks::fire;
use crate::key::{CacheKey, KeyRef};
use crate::locks::KeyLocks;
use crate::stats::{CacheStats, Counters};

/// The fixed per-entry overhead, in bytes, that L1's byte budget charges on top of namespace,
/// key and value lengths. It approximates what an entry costs beyond its bytes: the queue node
/// (key and value handles, hash, weight, links, visited bit), the index slot, and allocator
/// overhead for the key's allocation.
pub const L1_ENTRY_OVERHEAD: u64 = 128;

/// The tier that served a [`Hit`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Tier {
    /// The in-memory tier.
    L1,
    /// The durable tier (the value has been promoted into L1 since).
    L2,
}

/// A value found by [`TieredCache::get`]. Dereferences to the value's bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Hit {
    /// The value. On an L1 hit this shares the cached buffer (no copy).
    pub value: Bytes,
    /// The tier that served it.
    pub tier: Tier,
}

impl std::ops::Deref for Hit {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        &self.value
    }
}

/// Weighs L1 entries in the unit of the configured budget.
#[derive(Debug, Clone, Copy)]
enum L1Weigher {
    Bytes,
    Entries,
}

impl Weigher<CacheKey, Bytes> for L1Weigher {
    fn weight(&self, key: &CacheKey, value: &Bytes) -> u64 {
        match self {
            Self::Bytes => (key.len() + value.len()) as u64 + L1_ENTRY_OVERHEAD,
            Self::Entries => 1,
        }
    }
}

/// A two-tier cache: a sharded in-memory SIEVE cache (L1) in front of a durable redb store (L2).
///
/// - `put` writes L2 first (the durable copy), then L1.
/// - `get` looks in L1 (a hit allocates nothing and takes no exclusive lock), then in L2; an L2
///   hit is promoted (copied into L1) before it is returned.
/// - `invalidate_key` removes the key from both tiers.
///
/// ```
/// use cache_core::{Config, L2Options, TieredCache};
///
/// let dir = tempfile::tempdir()?;
/// let mut config = Config::from_toml_str("[l1]\nmax_bytes = \"16MiB\"")?;
/// config.l2 = Some(L2Options::new(dir.path().join("l2.redb")));
/// let cache = TieredCache::open(&config)?;
/// cache.put("queries", b"select 1", "one row")?;
/// assert_eq!(cache.get("queries", b"select 1")?.as_deref(), Some(&b"one row"[..]));
/// assert!(cache.invalidate_key("queries", b"select 1")?);
/// assert_eq!(cache.get("queries", b"select 1")?, None);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct TieredCache {
    l1: ShardedSieve<CacheKey, Bytes, L1Weigher>,
    l2: Option<Store>,
    /// Orders the two-tier steps of one key (see [`KeyLocks`]).
    key_locks: KeyLocks,
    counters: Counters,
    #[cfg(feature = "test-hooks")]
    hooks: crate::hooks::Hooks,
}

impl std::fmt::Debug for TieredCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TieredCache")
            .field("l1", &self.l1)
            .field("l2", &self.l2)
            .finish_non_exhaustive()
    }
}

impl TieredCache {
    /// Builds L1 and opens (or creates) L2 as `config` says.
    ///
    /// # Errors
    ///
    /// [`Error::Config`] for an invalid config; [`Error::L2`] if the L2 file cannot be opened
    /// (already open, foreign, corrupt, I/O).
    pub fn open(config: &Config) -> Result<Self, Error> {
        config.validate()?;
        let (capacity, weigher, entries) = match config.l1.capacity()? {
            L1Capacity::Bytes(n) => (n, L1Weigher::Bytes, n / ASSUMED_MEAN_ENTRY_BYTES),
            L1Capacity::Entries(n) => (n, L1Weigher::Entries, n),
        };
        let mut options = Options::new(capacity)
            .policy(config.l1.policy.to_policy())
            .estimated_entries(entries);
        if let Some(f) = config.l1.max_entry_fraction {
            options = options.max_entry_fraction(f);
        }
        if let Some(shards) = config.l1.shards {
            options = options.shards(shards);
        }
        let l1 = options.build(weigher).map_err(|e| ConfigError::Invalid {
            field: "l1",
            reason: e.to_string(),
        })?;
        let l2 = config.l2.as_ref().map(Store::open).transpose()?;
        Ok(Self {
            l1,
            l2,
            key_locks: KeyLocks::new(),
            counters: Counters::default(),
            #[cfg(feature = "test-hooks")]
            hooks: crate::hooks::Hooks::default(),
        })
    }

    /// The value of `key` in `namespace`, from L1 or else L2 (then promoted into L1).
    ///
    /// # Errors
    ///
    /// [`Error::KeyTooLong`] for keys no put could have stored; [`Error::L2`] if reading L2
    /// fails.
    pub fn get(&self, namespace: &str, key: &[u8]) -> Result<Option<Hit>, Error> {
        check_key(namespace, key)?;
        let k = KeyRef { namespace, key };
        if let Some(value) = self.l1.get(&k) {
            return Ok(Some(Hit {
                value,
                tier: Tier::L1,
            }));
        }
        let Some(l2) = &self.l2 else {
            self.counters.misses.incr();
            return Ok(None);
        };
        // The L2 read and the promotion happen under the key's stripe, so no put or
        // invalidation of the key can slip between them and be overtaken.
        let _stripe = self.key_locks.lock(k);
        // Another caller may have put or promoted the key while this one waited.
        if let Some(value) = self.l1.peek(&k) {
            self.counters.l1_hits_after_wait.incr();
            return Ok(Some(Hit {
                value,
                tier: Tier::L1,
            }));
        }
        let Some(value) = l2.get(namespace, key)? else {
            self.counters.misses.incr();
            return Ok(None);
        };
        self.counters.l2_hits.incr();
        fire!(self.hooks, AfterL2Read, namespace, key);
        self.promote(namespace, key, value.clone());
        Ok(Some(Hit {
            value,
            tier: Tier::L2,
        }))
    }

    /// Stores `value` under `key` in `namespace`: durably in L2 (when there is one), then in L1.
    ///
    /// A value too heavy for L1 (over its shard's slice of the budget) lives in L2 only; an
    /// older value of the key is removed from L1 all the same.
    ///
    /// # Errors
    ///
    /// [`Error::KeyTooLong`]; [`Error::L2`] if L2 refuses the record (too large for its budget)
    /// or fails to write it. On error neither tier changed.
    pub fn put(&self, namespace: &str, key: &[u8], value: impl Into<Bytes>) -> Result<(), Error> {
        check_key(namespace, key)?;
        let value = value.into();
        let _stripe = self.key_locks.lock(KeyRef { namespace, key });
        if let Some(l2) = &self.l2 {
            l2.put(namespace, key, &value)?;
            fire!(self.hooks, AfterL2Write, namespace, key);
        }
        if self
            .l1
            .insert(CacheKey::new(namespace, key), value)
            .is_err()
        {
            self.counters.l1_rejections.incr();
        }
        self.counters.insertions.incr();
        Ok(())
    }

    /// Removes `key` in `namespace` from both tiers; returns whether either held it. The L2
    /// delete is durable when this returns.
    ///
    /// # Errors
    ///
    /// [`Error::KeyTooLong`]; [`Error::L2`] if the L2 delete fails. L1 no longer holds the key
    /// then, but L2 may, and a later get may promote it again.
    pub fn invalidate_key(&self, namespace: &str, key: &[u8]) -> Result<bool, Error> {
        check_key(namespace, key)?;
        let k = KeyRef { namespace, key };
        let _stripe = self.key_locks.lock(k);
        let in_l1 = self.l1.remove(&k).is_some();
        let in_l2 = match &self.l2 {
            Some(l2) => l2.delete(namespace, key)?,
            None => false,
        };
        let found = in_l1 || in_l2;
        if found {
            self.counters.invalidations.incr();
        }
        Ok(found)
    }

    /// Makes every L2 write so far durable (see [`cache_l2::Store::put`] for what a crash may
    /// take back before that).
    ///
    /// # Errors
    ///
    /// [`Error::L2`] if the commit fails.
    pub fn flush(&self) -> Result<(), Error> {
        if let Some(l2) = &self.l2 {
            l2.flush()?;
        }
        Ok(())
    }

    /// A snapshot of the counters and sizes of both tiers.
    pub fn stats(&self) -> CacheStats {
        let c = &self.counters;
        let l1 = self.l1.stats();
        CacheStats {
            l1_hits: l1.hits + c.l1_hits_after_wait.get(),
            l2_hits: c.l2_hits.get(),
            misses: c.misses.get(),
            insertions: c.insertions.get(),
            promotions: c.promotions.get(),
            invalidations: c.invalidations.get(),
            l1_rejections: c.l1_rejections.get(),
            l1,
            l2: self.l2.as_ref().map(Store::stats),
        }
    }

    /// Checks both tiers' invariants from scratch (see [`cache_l1::ShardedSieve::validate`] and
    /// [`cache_l2::Store::validate`]). For tests: it locks every L1 shard and reads every L2
    /// record.
    ///
    /// # Errors
    ///
    /// [`Error::L2`] if reading L2 fails.
    ///
    /// # Panics
    ///
    /// On the first broken invariant.
    pub fn validate(&self) -> Result<(), Error> {
        self.l1.validate();
        if let Some(l2) = &self.l2 {
            l2.validate()?;
        }
        Ok(())
    }

    /// Installs (or with `None` removes) a hook that runs at every [`crate::HookPoint`], in the
    /// calling thread: a test can block there to force an interleaving. Feature `test-hooks`.
    #[cfg(feature = "test-hooks")]
    pub fn set_test_hook(&self, hook: Option<crate::Hook>) {
        self.hooks.set(hook);
    }

    /// Copies an L2 hit into L1.
    fn promote(&self, namespace: &str, key: &[u8], value: Bytes) {
        match self.l1.insert(CacheKey::new(namespace, key), value) {
            Ok(_) => self.counters.promotions.incr(),
            Err(_) => self.counters.l1_rejections.incr(),
        }
    }
}

//! `TieredCache`: L1 in front of L2, with inline or async promotion, namespaces, expiry,
//! CAS versions, the invalidation family and single-flight loading.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread::JoinHandle;

use bytes::Bytes;
use cache_l1::{Clock, EntryOptions, Options, RemovalCause, ShardedSieve, SystemClock, Weigher};
use cache_l2::{Store, check_key};
use parking_lot::{Mutex, RwLock};

use crate::config::{ASSUMED_MEAN_ENTRY_BYTES, Config, L1Capacity, Limits, PromotionMode};
use crate::entry::{DEP, EntryInfo, Freshness, TAG, prefixed};
use crate::error::{ConfigError, Error};
use crate::flight::{Flights, Role};
use crate::hooks::fire;
use crate::idle::IdleClocks;
use crate::key::{CacheKey, KeyRef};
use crate::locks::KeyLocks;
use crate::namespaces::{Admitted, Namespaces, NsState};
use crate::policy::{Admission, Cascade, Put};
use crate::promotion::{Promotion, PromotionQueue};
use crate::stats::{CacheStats, Counters};

/// The fixed per-entry overhead, in bytes, that L1's byte budget charges on top of namespace,
/// key, value and metadata lengths. It approximates what an entry costs beyond its bytes: the
/// queue node (key and value handles, hash, weight, links, visited bit), the index slot, the
/// shared entry record (generation, idle clock, metadata handle) and allocator overhead.
pub const L1_ENTRY_OVERHEAD: u64 = 192;

/// The tier that served a [`Hit`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Tier {
    /// The in-memory tier.
    L1,
    /// The durable tier (the value is promoted into L1, inline or by the pool).
    L2,
    /// Neither: [`TieredCache::get_or_load`] ran the loader (or shared another caller's run).
    Loader,
}

/// A value found by [`TieredCache::get`], with what was stored beside it. Dereferences to the
/// value's bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Hit {
    /// The value. On an L1 hit this shares the cached buffer (no copy).
    pub value: Bytes,
    /// The tier that served it.
    pub tier: Tier,
    /// Content metadata, tags, dependencies, version, expiry.
    pub info: Arc<EntryInfo>,
    /// `Some(ms left in the window)` if the entry has expired and is served from its
    /// stale-while-revalidate window: the caller should refresh it.
    pub stale: Option<u64>,
}

impl Hit {
    /// The entry's CAS version, if its put gave one.
    pub fn version(&self) -> Option<u64> {
        self.info.version
    }

    /// The entry's content metadata.
    pub fn content_metadata(&self) -> &BTreeMap<String, String> {
        &self.info.content_metadata
    }

    /// Whether it was served stale (see [`Hit::stale`]).
    pub fn is_stale(&self) -> bool {
        self.stale.is_some()
    }
}

impl std::ops::Deref for Hit {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        &self.value
    }
}

/// What [`TieredCache::exists`] can say without reading a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Presence {
    /// L1 holds a live entry.
    Present,
    /// Certainly absent: not in L1, and L2's synopsis rules it out (or there is no L2).
    Absent,
    /// L2 may hold it (the synopsis, a Bloom filter, cannot rule it out).
    MaybePresent,
}

/// An L1 entry: the value and its description, shared by L1 and every hit.
pub(crate) struct Stored {
    pub(crate) value: Bytes,
    pub(crate) info: Arc<EntryInfo>,
    ns: Arc<NsState>,
    /// The namespace generation it was written in; dead once the namespace's moves past it.
    generation: u64,
    /// When it was last read or written (cache clock, ms); kept only for idle timeouts.
    last_access: AtomicU64,
}

impl Stored {
    fn alive_generation(&self) -> bool {
        self.generation >= self.ns.generation()
    }
}

/// Weighs L1 entries in the unit of the configured budget.
#[derive(Debug, Clone, Copy)]
enum L1Weigher {
    Bytes,
    Entries,
}

impl L1Weigher {
    /// The weight of an entry of `key_bytes` bytes of namespace and key, a value of `value_len`
    /// bytes and the description `info`.
    fn weigh(self, key_bytes: usize, value_len: usize, info: &EntryInfo) -> u64 {
        match self {
            Self::Bytes => (key_bytes + value_len) as u64 + info.weight() + L1_ENTRY_OVERHEAD,
            Self::Entries => 1,
        }
    }
}

impl Weigher<CacheKey, Arc<Stored>> for L1Weigher {
    fn weight(&self, key: &CacheKey, value: &Arc<Stored>) -> u64 {
        self.weigh(key.len(), value.value.len(), &value.info)
    }
}

type L1 = ShardedSieve<CacheKey, Arc<Stored>, L1Weigher>;

/// The state shared by callers and promotion workers.
pub(crate) struct Inner {
    l1: L1,
    l2: Option<Store>,
    key_locks: KeyLocks,
    /// Bumped by every bulk invalidation (prefix, tags, dependencies, clear) between its L2
    /// step and its L1 scan, under the write side of `gate`. A promotion notes it before its
    /// L2 read and installs (under the read side) only if it is unchanged.
    epoch: AtomicU64,
    gate: RwLock<()>,
    namespaces: Namespaces,
    clock: Arc<dyn Clock>,
    opened_at: u64,
    idle_clocks: Arc<IdleClocks>,
    limits: Limits,
    auto_admit_max: u64,
    /// How L1 weighs entries (for refusing an L1-only put L1 could not hold).
    weigher: L1Weigher,
    pub(crate) counters: Counters,
    flights: Flights,
    promotion: Option<PromotionQueue>,
    #[cfg(feature = "test-hooks")]
    pub(crate) hooks: crate::hooks::Hooks,
}

/// A two-tier cache: a sharded in-memory SIEVE-family cache (L1) in front of a durable redb
/// store (L2).
///
/// - `put` writes L2 first (the durable copy, with metadata, tags, dependencies and policy),
///   then L1 (as its admission says).
/// - `get` looks in L1 (a hit allocates nothing and takes no exclusive lock), then in L2; an L2
///   hit is promoted into L1, inline or by the promotion pool ([`crate::PromotionConfig`]).
/// - Invalidations reach both tiers, including entries only L2 holds and entries written
///   before a restart.
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
/// assert_eq!(cache.invalidate_key("queries", b"select 1")?, 1);
/// assert_eq!(cache.get("queries", b"select 1")?, None);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct TieredCache {
    inner: Arc<Inner>,
    workers: Mutex<Vec<JoinHandle<()>>>,
}

impl std::fmt::Debug for TieredCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TieredCache")
            .field("l1", &self.inner.l1)
            .field("l2", &self.inner.l2)
            .finish_non_exhaustive()
    }
}

impl TieredCache {
    /// Builds L1 and opens (or creates) L2 as `config` says, on the system clock.
    ///
    /// # Errors
    ///
    /// [`Error::Config`] for an invalid config; [`Error::L2`] if the L2 file cannot be opened
    /// (already open, foreign, corrupt, I/O).
    pub fn open(config: &Config) -> Result<Self, Error> {
        Self::open_with_clock(config, Arc::new(SystemClock))
    }

    /// As [`TieredCache::open`], with the clock TTLs, idle timeouts and stale windows are
    /// measured by (milliseconds). Tests pass a [`cache_l1::ManualClock`] so they never sleep.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use cache_core::{Config, ManualClock, Policy, Put, TieredCache};
    ///
    /// let clock = Arc::new(ManualClock::new(1_000));
    /// let cache = TieredCache::open_with_clock(&Config::default(), clock.clone())?;
    /// cache.put_with("ns", b"k", Put::new("v").policy(Policy::new().ttl_ms(100)))?;
    /// clock.advance(99);
    /// assert!(cache.get("ns", b"k")?.is_some());
    /// clock.advance(1);
    /// assert!(cache.get("ns", b"k")?.is_none());
    /// # Ok::<(), cache_core::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// As [`TieredCache::open`].
    pub fn open_with_clock(config: &Config, clock: Arc<dyn Clock>) -> Result<Self, Error> {
        config.validate()?;
        let (capacity, weigher, entries) = match config.l1.capacity()? {
            L1Capacity::Bytes(n) => (n, L1Weigher::Bytes, n / ASSUMED_MEAN_ENTRY_BYTES),
            L1Capacity::Entries(n) => (n, L1Weigher::Entries, n),
        };
        let mut options = Options::new(capacity)
            .policy(config.l1.policy.to_policy())
            .estimated_entries(entries)
            .clock(Arc::clone(&clock));
        if let Some(f) = config.l1.max_entry_fraction {
            options = options.max_entry_fraction(f);
        }
        if let Some(shards) = config.l1.shards {
            options = options.shards(shards);
        }
        let idle_clocks: Arc<IdleClocks> = Arc::default();
        let l1 = options
            .build(weigher)
            .map_err(|e| ConfigError::Invalid {
                field: "l1",
                reason: e.to_string(),
            })?
            .with_listener({
                let idle_clocks = Arc::clone(&idle_clocks);
                move |key: &CacheKey, stored: &Arc<Stored>, cause| {
                    if cause == RemovalCause::Evicted && stored.info.idle_ttl_ms.is_some() {
                        idle_clocks.note(key.clone(), stored.last_access.load(Ordering::Relaxed));
                    }
                }
            });
        // L2 decodes nothing larger than `limits.max_blob_bytes`.
        let l2 = config
            .effective_l2()
            .as_ref()
            .map(Store::open)
            .transpose()?;
        let known = match &l2 {
            Some(l2) => l2
                .namespaces()?
                .into_iter()
                .map(|ns| {
                    let g = l2.generation(&ns);
                    (ns, g)
                })
                .collect(),
            None => Vec::new(),
        };
        let promotion = (config.promotion.mode == PromotionMode::Async)
            .then(|| PromotionQueue::new(config.promotion.queue_capacity));
        let inner = Arc::new(Inner {
            l1,
            l2,
            key_locks: KeyLocks::new(),
            epoch: AtomicU64::new(0),
            gate: RwLock::new(()),
            namespaces: Namespaces::new(config.limits.max_namespaces, known),
            opened_at: clock.now(),
            clock,
            idle_clocks,
            limits: config.limits.clone(),
            auto_admit_max: config.l1.auto_admit_max_bytes.as_u64(),
            weigher,
            counters: Counters::default(),
            flights: Flights::default(),
            promotion,
            #[cfg(feature = "test-hooks")]
            hooks: crate::hooks::Hooks::default(),
        });
        let mut workers = Vec::new();
        if let Some(q) = &inner.promotion {
            for i in 0..config.promotion.workers {
                let rx = q.receiver();
                let inner = Arc::clone(&inner);
                let worker = std::thread::Builder::new()
                    .name(format!("cache-promotion-{i}"))
                    .spawn(move || {
                        if let Some(q) = &inner.promotion {
                            q.work(&inner, &rx);
                        }
                    })
                    .map_err(|e| ConfigError::Invalid {
                        field: "promotion.workers",
                        reason: format!("cannot start a worker thread: {e}"),
                    })?;
                workers.push(worker);
            }
        }
        Ok(Self {
            inner,
            workers: Mutex::new(workers),
        })
    }

    /// The value of `key` in `namespace`, from L1 or else L2 (then promoted into L1), with its
    /// metadata. Expired entries (past their stale window), idle ones and entries of a flushed
    /// namespace are never returned.
    ///
    /// ```
    /// use cache_core::{Config, Put, TieredCache};
    ///
    /// let cache = TieredCache::open(&Config::default())?;
    /// cache.put_with("ns", b"k", Put::new("v").metadata("content-type", "text/plain"))?;
    /// let hit = cache.get("ns", b"k")?.expect("just put");
    /// assert_eq!(&hit[..], b"v");
    /// assert_eq!(hit.content_metadata()["content-type"], "text/plain");
    /// assert!(!hit.is_stale());
    /// # Ok::<(), cache_core::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::KeyTooLong`] for keys no put could have stored; [`Error::L2`] if reading L2
    /// fails.
    pub fn get(&self, namespace: &str, key: &[u8]) -> Result<Option<Hit>, Error> {
        check_key(namespace, key)?;
        self.inner.get(namespace, key)
    }

    /// Whether `key` is in `namespace`, without reading any L2 record: L1 first, then the L2
    /// synopsis (a Bloom filter). Records no hit.
    ///
    /// ```
    /// use cache_core::{Config, Presence, TieredCache};
    ///
    /// let cache = TieredCache::open(&Config::default())?;
    /// cache.put("ns", b"k", "v")?;
    /// assert_eq!(cache.exists("ns", b"k")?, Presence::Present);
    /// assert_eq!(cache.exists("ns", b"other")?, Presence::Absent);
    /// # Ok::<(), cache_core::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::KeyTooLong`].
    pub fn exists(&self, namespace: &str, key: &[u8]) -> Result<Presence, Error> {
        check_key(namespace, key)?;
        let inner = &*self.inner;
        let k = KeyRef { namespace, key };
        if let Some(s) = inner.l1.peek(&k)
            && inner.is_live(&s)
        {
            return Ok(Presence::Present);
        }
        Ok(match &inner.l2 {
            Some(l2) if l2.may_contain(namespace, key) => Presence::MaybePresent,
            _ => Presence::Absent,
        })
    }

    /// Stores `value` under `key` in `namespace` with no metadata and the default policy; see
    /// [`TieredCache::put_with`].
    ///
    /// # Errors
    ///
    /// As [`TieredCache::put_with`].
    pub fn put(&self, namespace: &str, key: &[u8], value: impl Into<Bytes>) -> Result<(), Error> {
        self.put_with(namespace, key, Put::new(value))
    }

    /// Stores `put` under `key` in `namespace`: durably in L2 (when there is one, with its
    /// metadata, tags, dependencies and policy), then in L1 as its admission says. An older
    /// value of the key is replaced in both tiers.
    ///
    /// ```
    /// use cache_core::{Config, Error, Policy, Put, TieredCache};
    ///
    /// let cache = TieredCache::open(&Config::default())?;
    /// cache.put_with("ns", b"k", Put::new("v1").policy(Policy::new().version(1)))?;
    /// let stale = cache.put_with("ns", b"k", Put::new("v0").policy(Policy::new().version(1)));
    /// assert!(matches!(stale, Err(Error::VersionMismatch { existing: 1, attempted: 1 })));
    /// cache.put_with("ns", b"k", Put::new("v2").policy(Policy::new().version(2)))?;
    /// assert_eq!(cache.get("ns", b"k")?.unwrap().version(), Some(2));
    /// # Ok::<(), cache_core::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// Nothing is stored and the old value stays on:
    /// - [`Error::KeyTooLong`];
    /// - [`Error::BlobTooLarge`] for a value over `limits.max_blob_bytes` or the policy's
    ///   `max_blob_bytes`;
    /// - [`Error::MetadataTooLarge`] for content metadata, tags, dependencies or validators
    ///   over their limits;
    /// - [`Error::InvalidPolicy`] for a TTL of 0 or an absolute expiry not in the future;
    /// - [`Error::TooManyNamespaces`] for a new namespace past `limits.max_namespaces` (a
    ///   namespace counts once a put to it has succeeded);
    /// - [`Error::TooLargeForL1`] without an L2, for an entry heavier than L1's largest;
    /// - [`Error::VersionMismatch`] if the put's version is not greater than the stored one;
    /// - [`Error::Validator`] if an input file cannot be read;
    /// - [`Error::L2`] if L2 refuses or fails the write (if L2 was full with
    ///   `on_full = "reject"`, the old value is removed from both tiers, as L2 removes it).
    pub fn put_with(&self, namespace: &str, key: &[u8], put: Put) -> Result<(), Error> {
        check_key(namespace, key)?;
        self.inner.put(namespace, key, put)
    }

    /// Removes `key` in `namespace` from both tiers; returns how many entries it removed (0 or
    /// 1). The L2 delete is durable when this returns.
    ///
    /// # Errors
    ///
    /// [`Error::KeyTooLong`]; [`Error::L2`] if the L2 delete fails. L1 no longer holds the key
    /// then, but L2 may, and a later get may promote it again.
    pub fn invalidate_key(&self, namespace: &str, key: &[u8]) -> Result<u64, Error> {
        check_key(namespace, key)?;
        let inner = &*self.inner;
        let k = KeyRef { namespace, key };
        let stripe = inner.key_locks.stripe(k);
        let guard = stripe.lock();
        let in_l1 = inner
            .l1
            .remove(&k)
            .is_some_and(|(_, s)| s.alive_generation());
        let in_l2 = match &inner.l2 {
            Some(l2) => l2.delete(namespace, key)?,
            None => false,
        };
        stripe.bump(&guard);
        drop(guard);
        inner.idle_clocks.forget(k);
        let n = u64::from(in_l1 || in_l2);
        inner.counters.invalidations.add(n);
        Ok(n)
    }

    /// Removes every entry of `namespace` whose key starts with `prefix`, from both tiers;
    /// returns how many. L2 finds them by an ordered scan of the namespace's keys; L1 by a scan
    /// that locks each shard once.
    ///
    /// ```
    /// use cache_core::{Config, TieredCache};
    ///
    /// let cache = TieredCache::open(&Config::default())?;
    /// cache.put("ns", b"user:1", "a")?;
    /// cache.put("ns", b"user:2", "b")?;
    /// cache.put("ns", b"team:1", "c")?;
    /// assert_eq!(cache.invalidate_prefix("ns", b"user:")?, 2);
    /// assert!(cache.get("ns", b"team:1")?.is_some());
    /// # Ok::<(), cache_core::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::KeyTooLong`]; [`Error::L2`] if the L2 step fails (then L1 is untouched).
    pub fn invalidate_prefix(&self, namespace: &str, prefix: &[u8]) -> Result<u64, Error> {
        check_key(namespace, prefix)?;
        let removed = self.inner.bulk_invalidate(
            namespace,
            |l2| l2.invalidate_prefix(namespace, prefix),
            |key, _| key.starts_with(prefix),
        )?;
        Ok(removed.len() as u64)
    }

    /// Removes every entry of `namespace` carrying one of `tags`, from both tiers (L2 through
    /// its durable label index, so entries written before a restart are found too); returns how
    /// many. Each L1 shard is locked once per call.
    ///
    /// ```
    /// use cache_core::{Config, Put, TieredCache};
    ///
    /// let cache = TieredCache::open(&Config::default())?;
    /// cache.put_with("ns", b"q1", Put::new("a").tag("table:users"))?;
    /// cache.put_with("ns", b"q2", Put::new("b").tag("table:orders"))?;
    /// assert_eq!(cache.invalidate_tags("ns", &[b"table:users"])?, 1);
    /// assert!(cache.get("ns", b"q1")?.is_none());
    /// # Ok::<(), cache_core::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::KeyTooLong`] for a namespace or tag over its limit; [`Error::L2`] if the L2
    /// step fails (then L1 is untouched).
    pub fn invalidate_tags(&self, namespace: &str, tags: &[&[u8]]) -> Result<u64, Error> {
        Ok(self.inner.invalidate_labels(namespace, TAG, tags)?.len() as u64)
    }

    /// Removes every entry of `namespace` that lists one of `dependencies`, from both tiers;
    /// with [`Cascade::Transitive`], also every entry that depends on the key of a removed
    /// entry, and so on (each key is followed once, so cycles end). Returns how many entries
    /// it removed.
    ///
    /// ```
    /// use cache_core::{Cascade, Config, Put, TieredCache};
    ///
    /// let cache = TieredCache::open(&Config::default())?;
    /// cache.put_with("build", b"lib.o", Put::new("obj").depends_on("lib.c"))?;
    /// cache.put_with("build", b"app", Put::new("exe").depends_on("lib.o"))?;
    /// assert_eq!(cache.invalidate_dependencies("build", &[b"lib.c"], Cascade::Transitive)?, 2);
    /// # Ok::<(), cache_core::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::KeyTooLong`] for a namespace or dependency over its limit; [`Error::L2`] if an
    /// L2 step fails (entries removed by earlier rounds stay removed).
    pub fn invalidate_dependencies(
        &self,
        namespace: &str,
        dependencies: &[&[u8]],
        cascade: Cascade,
    ) -> Result<u64, Error> {
        self.inner
            .invalidate_dependencies(namespace, dependencies, cascade)
    }

    /// Flushes `namespace` in O(1): bumps its generation (durably in L2, so it survives a
    /// restart), which makes every entry written before dead at once in both tiers; a
    /// background sweep then frees them. Returns the new generation (0 if the namespace was
    /// never used).
    ///
    /// ```
    /// use cache_core::{Config, TieredCache};
    ///
    /// let cache = TieredCache::open(&Config::default())?;
    /// cache.put("tenant-7", b"k", "v")?;
    /// cache.invalidate_namespace("tenant-7")?;
    /// assert!(cache.get("tenant-7", b"k")?.is_none());
    /// # Ok::<(), cache_core::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::KeyTooLong`]; [`Error::L2`] if the durable bump fails (nothing is flushed then).
    pub fn invalidate_namespace(&self, namespace: &str) -> Result<u64, Error> {
        check_key(namespace, b"")?;
        let inner = &self.inner;
        let Some(ns) = inner.namespaces.get(namespace) else {
            return Ok(0);
        };
        let g = match &inner.l2 {
            Some(l2) => l2.invalidate_namespace(namespace)?,
            None => ns.generation() + 1,
        };
        ns.advance_to(g);
        inner.counters.namespace_flushes.incr();
        let sweeper = Arc::clone(inner);
        let ns_name: Box<[u8]> = namespace.as_bytes().into();
        // Frees L1 memory in the background (the entries are dead already); joined by
        // `shutdown`, so dropping the cache still closes L2 at once after.
        let sweep = std::thread::Builder::new()
            .name("cache-namespace-sweep".into())
            .spawn(move || {
                sweeper
                    .l1
                    .retain(|k, s| k.namespace() != &*ns_name || s.alive_generation());
            });
        let mut workers = self.workers.lock();
        workers.retain(|w| !w.is_finished() || w.thread().name() != Some("cache-namespace-sweep"));
        match sweep {
            Ok(handle) => workers.push(handle),
            // No thread: sweep here.
            Err(_) => {
                inner
                    .l1
                    .retain(|k, s| k.namespace() != namespace.as_bytes() || s.alive_generation());
            }
        }
        Ok(g)
    }

    /// Removes every entry from both tiers (L2 durably). Namespaces and their generations stay.
    ///
    /// # Errors
    ///
    /// [`Error::L2`] if the L2 clear fails (then L1 is untouched).
    pub fn clear(&self) -> Result<(), Error> {
        let inner = &*self.inner;
        if let Some(l2) = &inner.l2 {
            l2.clear()?;
        }
        inner.bump_epoch();
        inner.l1.clear();
        inner.idle_clocks.clear();
        Ok(())
    }

    /// The value of `key`, or, on a miss, the value `loader` makes (stored with
    /// [`TieredCache::put_with`] and returned with [`Tier::Loader`]). Concurrent misses for one
    /// key run the loader once: the others wait and share its result. A loader error (or
    /// panic) is returned to every waiter as [`Error::Load`] and nothing is cached.
    ///
    /// ```
    /// use cache_core::{Config, Put, Tier, TieredCache};
    ///
    /// let cache = TieredCache::open(&Config::default())?;
    /// let hit = cache.get_or_load("ns", b"k", || Ok::<_, std::io::Error>(Put::new("loaded")))?;
    /// assert_eq!((&hit[..], hit.tier), (&b"loaded"[..], Tier::Loader));
    /// assert_eq!(cache.get("ns", b"k")?.unwrap().tier, cache_core::Tier::L1);
    /// # Ok::<(), cache_core::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::Load`] if the loader (this caller's or the one it waited for) failed, or
    /// storing its value failed; otherwise as [`TieredCache::get`].
    pub fn get_or_load<E>(
        &self,
        namespace: &str,
        key: &[u8],
        loader: impl FnOnce() -> Result<Put, E>,
    ) -> Result<Hit, Error>
    where
        E: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        check_key(namespace, key)?;
        let inner = &*self.inner;
        if let Some(hit) = inner.get(namespace, key)? {
            return Ok(hit);
        }
        match inner.flights.join(CacheKey::new(namespace, key)) {
            Role::Waiter(flight) => {
                inner.counters.load_waits.incr();
                fire!(inner.hooks, JoinedLoad, namespace, key);
                flight.wait().map_err(Error::Load)
            }
            Role::Leader(guard) => {
                // A load that finished between the miss and the join stored its value.
                if let Some(hit) = inner.get(namespace, key)? {
                    guard.finish(Ok(hit.clone()));
                    return Ok(hit);
                }
                inner.counters.loads.incr();
                let outcome = match loader() {
                    Ok(put) => {
                        let value = put.bytes.clone();
                        match inner.put_info(namespace, key, put) {
                            Ok(info) => Ok(Hit {
                                value,
                                tier: Tier::Loader,
                                info,
                                stale: None,
                            }),
                            Err(e) => Err(Arc::new(e) as Arc<dyn std::error::Error + Send + Sync>),
                        }
                    }
                    Err(e) => Err(Arc::from(e.into())),
                };
                if outcome.is_err() {
                    inner.counters.load_failures.incr();
                }
                guard.finish(outcome.clone());
                outcome.map_err(Error::Load)
            }
        }
    }

    /// As [`TieredCache::get`], then re-hashes the entry's input files
    /// ([`Put::validate_file`]): if one changed or is gone, the entry is invalidated (with
    /// `cascade`, its dependents too: entries that depend on its key) and this is a miss.
    ///
    /// ```
    /// use cache_core::{Cascade, Config, Put, TieredCache};
    ///
    /// let dir = tempfile::tempdir()?;
    /// let input = dir.path().join("main.c");
    /// std::fs::write(&input, "int main() {}")?;
    /// let cache = TieredCache::open(&Config::default())?;
    /// cache.put_with("build", b"main.o", Put::new("obj").validate_file(&input))?;
    /// assert!(cache.get_revalidated("build", b"main.o", Cascade::Direct)?.is_some());
    /// std::fs::write(&input, "int main() { return 1; }")?;
    /// assert!(cache.get_revalidated("build", b"main.o", Cascade::Direct)?.is_none());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    ///
    /// As [`TieredCache::get`] and [`TieredCache::invalidate_dependencies`].
    pub fn get_revalidated(
        &self,
        namespace: &str,
        key: &[u8],
        cascade: Cascade,
    ) -> Result<Option<Hit>, Error> {
        let Some(hit) = self.get(namespace, key)? else {
            return Ok(None);
        };
        let changed = hit
            .info
            .validators
            .iter()
            .any(|(path, hash)| fingerprint(std::path::Path::new(path)).ok() != Some(*hash));
        if !changed {
            return Ok(Some(hit));
        }
        self.inner.counters.validator_failures.incr();
        self.invalidate_key(namespace, key)?;
        if cascade == Cascade::Transitive {
            self.invalidate_dependencies(namespace, &[key], Cascade::Transitive)?;
        }
        Ok(None)
    }

    /// Makes every L2 write so far durable (see [`cache_l2::Store::put`] for what a crash may
    /// take back before that).
    ///
    /// # Errors
    ///
    /// [`Error::L2`] if the commit fails.
    pub fn flush(&self) -> Result<(), Error> {
        if let Some(l2) = &self.inner.l2 {
            l2.flush()?;
        }
        Ok(())
    }

    /// Stops the promotion pool after it has installed every queued promotion; later L2 hits
    /// are promoted inline. Called by `drop` too; calling it again does nothing.
    pub fn shutdown(&self) {
        if let Some(q) = &self.inner.promotion {
            q.close();
        }
        for worker in self.workers.lock().drain(..) {
            let _ = worker.join();
        }
    }

    /// A snapshot of the counters and sizes of both tiers.
    pub fn stats(&self) -> CacheStats {
        let inner = &*self.inner;
        let (queued, depth) = inner
            .promotion
            .as_ref()
            .map_or((0, 0), |q| (q.queued(), q.depth()));
        inner.counters.snapshot(
            inner.l1.stats(),
            inner.l2.as_ref().map(Store::stats).as_ref(),
            queued,
            depth,
            inner.namespaces.len() as u64,
        )
    }

    /// Checks both tiers' invariants from scratch (see [`cache_l1::ShardedSieve::validate`] and
    /// [`cache_l2::Store::validate`]), and that L1's weight is the sum of its entries' weights
    /// as this cache weighs them. For tests: it locks every L1 shard and reads every L2 record.
    ///
    /// # Errors
    ///
    /// [`Error::L2`] if reading L2 fails.
    ///
    /// # Panics
    ///
    /// On the first broken invariant.
    pub fn validate(&self) -> Result<(), Error> {
        let inner = &*self.inner;
        inner.l1.validate();
        if let Some(l2) = &inner.l2 {
            l2.validate()?;
        }
        Ok(())
    }

    /// Installs (or with `None` removes) a hook that runs at every [`crate::HookPoint`], in the
    /// calling thread: a test can block there to force an interleaving. Feature `test-hooks`.
    #[cfg(feature = "test-hooks")]
    pub fn set_test_hook(&self, hook: Option<crate::Hook>) {
        self.inner.hooks.set(hook);
    }
}

impl Drop for TieredCache {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// The blake3 fingerprint of a file's content.
fn fingerprint(path: &std::path::Path) -> std::io::Result<[u8; 32]> {
    let mut hasher = blake3::Hasher::new();
    hasher.update_reader(std::fs::File::open(path)?)?;
    Ok(*hasher.finalize().as_bytes())
}

/// A deterministic per-key amount in `[0, max]`.
fn jitter(namespace: &str, key: &[u8], max: u64) -> u64 {
    let mut h = blake3::Hasher::new();
    h.update(&(namespace.len() as u64).to_le_bytes());
    h.update(namespace.as_bytes());
    h.update(key);
    let n = u64::from_le_bytes(
        h.finalize().as_bytes()[..8]
            .try_into()
            .expect("a blake3 hash has 32 bytes"),
    );
    if max == u64::MAX { n } else { n % (max + 1) }
}

impl Inner {
    fn now(&self) -> u64 {
        self.clock.now()
    }

    /// Whether an L1 entry may be served now (counts nothing, restarts no idle clock).
    fn is_live(&self, s: &Stored) -> bool {
        if !s.alive_generation() {
            return false;
        }
        !s.info.timed()
            || matches!(
                s.info
                    .freshness(self.now(), s.last_access.load(Ordering::Relaxed)),
                Freshness::Fresh | Freshness::Stale(_)
            )
    }

    fn get(&self, namespace: &str, key: &[u8]) -> Result<Option<Hit>, Error> {
        let k = KeyRef { namespace, key };
        if let Some(s) = self.l1.get(&k) {
            match self.serve(&s) {
                Ok(stale) => {
                    return Ok(Some(Hit {
                        value: s.value.clone(),
                        tier: Tier::L1,
                        info: Arc::clone(&s.info),
                        stale,
                    }));
                }
                Err(dead) => {
                    self.counters.l1_dead.incr();
                    // L2 holds the same record and counts why it is dead; without one, count
                    // it here.
                    if self.l2.is_none() {
                        match dead {
                            Freshness::Expired => self.counters.expirations.incr(),
                            Freshness::Idle => self.counters.idle_evictions.incr(),
                            _ => {}
                        }
                    }
                }
            }
        }
        let Some(l2) = &self.l2 else {
            self.counters.misses.incr();
            return Ok(None);
        };
        // Noted before the L2 read: a write of the stripe, or a bulk invalidation, after this
        // point makes the promotion drop what it read.
        let stripe = self.key_locks.stripe(k);
        let seq = stripe.seq();
        let epoch = self.epoch.load(Ordering::SeqCst);
        let Some(entry) = l2.get_entry(namespace, key)? else {
            self.counters.misses.incr();
            return Ok(None);
        };
        let Some(info) = EntryInfo::decode(&entry.meta, &entry.labels) else {
            self.counters.undecodable.incr();
            self.counters.misses.incr();
            return Ok(None);
        };
        let now = self.now();
        let last_access = self.l2_last_access(k, &info);
        let stale = match info.freshness(now, last_access) {
            Freshness::Fresh => None,
            Freshness::Stale(left) => Some(left),
            Freshness::Expired => {
                self.counters.expirations.incr();
                self.counters.misses.incr();
                return Ok(None);
            }
            Freshness::Idle => {
                self.counters.idle_evictions.incr();
                self.counters.misses.incr();
                return Ok(None);
            }
        };
        if stale.is_some() {
            self.counters.stale_serves.incr();
        }
        if info.idle_ttl_ms.is_some() {
            // This read restarts the idle clock; the promotion, if it installs, takes it over.
            self.idle_clocks.note(CacheKey::new(namespace, key), now);
        }
        self.counters.l2_hits.incr();
        fire!(self.hooks, AfterL2Read, namespace, key);
        let ns = self.namespaces.get(namespace);
        let info = Arc::new(info);
        if info.admission != Admission::Never
            && let Some(ns) = ns
        {
            let stored = Arc::new(Stored {
                value: entry.value.clone(),
                info: Arc::clone(&info),
                ns,
                generation: entry.generation,
                last_access: AtomicU64::new(now),
            });
            let p = Promotion {
                key: CacheKey::new(namespace, key),
                stored,
                seq,
                epoch,
            };
            let inline = match &self.promotion {
                Some(q) => q.offer(p, &self.counters),
                None => Some(p),
            };
            if let Some(p) = inline {
                self.install(p);
            }
        }
        Ok(Some(Hit {
            value: entry.value,
            tier: Tier::L2,
            info,
            stale,
        }))
    }

    /// When an entry only L2 holds was last read or written: its idle clock if this process
    /// kept one, else the later of its put and the cache's open (a restart restarts idle
    /// clocks).
    fn l2_last_access(&self, k: KeyRef<'_>, info: &EntryInfo) -> u64 {
        if info.idle_ttl_ms.is_none() {
            return info.written_at_ms;
        }
        let known = self.idle_clocks.get(k);
        known.unwrap_or(info.written_at_ms.max(self.opened_at))
    }

    /// Checks an L1 entry for a hit: `Ok(stale window left)` and its idle clock restarted, or
    /// `Err(why not)`: `Expired`, `Idle`, or `Fresh` for an entry of a flushed namespace.
    fn serve(&self, s: &Stored) -> Result<Option<u64>, Freshness> {
        if !s.alive_generation() {
            return Err(Freshness::Fresh);
        }
        if !s.info.timed() {
            return Ok(None);
        }
        let now = self.now();
        let stale = match s.info.freshness(now, s.last_access.load(Ordering::Relaxed)) {
            Freshness::Fresh => None,
            Freshness::Stale(left) => {
                self.counters.stale_serves.incr();
                Some(left)
            }
            dead => return Err(dead),
        };
        if s.info.idle_ttl_ms.is_some() {
            s.last_access.fetch_max(now, Ordering::Relaxed);
        }
        Ok(stale)
    }

    /// Installs a promotion into L1 unless the key was written, or a bulk invalidation ran,
    /// since its L2 read.
    pub(crate) fn install(&self, p: Promotion) {
        let stripe = {
            let (namespace, key) = (p.key.namespace_str(), p.key.key());
            fire!(self.hooks, BeforePromotionInstall, namespace, key);
            self.key_locks.stripe(KeyRef { namespace, key })
        };
        let guard = stripe.lock();
        if stripe.seq() != p.seq {
            self.counters.promotions_superseded.incr();
            return;
        }
        let gate = self.gate.read();
        if self.epoch.load(Ordering::SeqCst) != p.epoch {
            self.counters.promotions_superseded.incr();
            return;
        }
        if p.stored.info.idle_ttl_ms.is_some() {
            // The L1 entry carries the idle clock from now on.
            self.idle_clocks.forget(KeyRef {
                namespace: p.key.namespace_str(),
                key: p.key.key(),
            });
        }
        let opts = entry_options(&p.stored.info);
        match self.l1.insert_with(p.key, p.stored, opts) {
            Ok(_) => self.counters.promotions.incr(),
            Err(_) => self.counters.l1_rejections.incr(),
        }
        drop(gate);
        drop(guard);
    }

    fn put(&self, namespace: &str, key: &[u8], put: Put) -> Result<(), Error> {
        self.put_info(namespace, key, put).map(|_| ())
    }

    /// Validates `put`, resolves its policy, and stores it; returns its description.
    fn put_info(&self, namespace: &str, key: &[u8], put: Put) -> Result<Arc<EntryInfo>, Error> {
        let now = self.now();
        let (info, meta) = self.describe(namespace, key, &put, now)?;
        let info = Arc::new(info);
        if self.l2.is_none() {
            // L1 is the only tier: a value it cannot hold is refused before anything changes
            // (L1 would drop the key's old value while refusing the new one).
            let weight = self
                .weigher
                .weigh(namespace.len() + key.len(), put.bytes.len(), &info);
            let max = self.l1.max_entry_weight();
            if weight > max {
                self.counters.l1_rejections.incr();
                return Err(Error::TooLargeForL1 { weight, max });
            }
        }
        // A new namespace takes its slot only if this put succeeds.
        let admitted = self.namespaces.admit(namespace)?;
        // Captured before the L2 write: a namespace this cache does not know yet has never
        // been flushed through it, so its entries start at generation 0.
        let generation = match &admitted {
            Admitted::Known(ns) => ns.generation(),
            Admitted::Reserved(_) => 0,
        };
        let k = KeyRef { namespace, key };
        let stripe = self.key_locks.stripe(k);
        let guard = stripe.lock();
        if let Some(attempted) = info.version
            && let Some(existing) = self.current_version(namespace, key, now)?
            && attempted <= existing
        {
            self.counters.version_mismatches.incr();
            return Err(Error::VersionMismatch {
                existing,
                attempted,
            });
        }
        let epoch = self.epoch.load(Ordering::SeqCst);
        if let Some(l2) = &self.l2 {
            let labels = info.labels();
            let labels: Vec<&[u8]> = labels.iter().map(Vec::as_slice).collect();
            if let Err(e) = l2.put_with(namespace, key, &put.bytes, &meta, &labels) {
                if matches!(e, cache_l2::L2Error::Full { .. }) {
                    // L2 removed the old record; L1 must not keep serving it.
                    self.l1.remove(&k);
                    stripe.bump(&guard);
                }
                return Err(e.into());
            }
            fire!(self.hooks, AfterL2Write, namespace, key);
        }
        stripe.bump(&guard);
        let ns = match admitted {
            Admitted::Known(ns) => ns,
            Admitted::Reserved(r) => r.register(),
        };
        let admit = match info.admission {
            _ if self.l2.is_none() => true,
            Admission::Always => true,
            Admission::Auto => put.bytes.len() as u64 <= self.auto_admit_max,
            Admission::Never => false,
        };
        let stored = Arc::new(Stored {
            value: put.bytes,
            info: Arc::clone(&info),
            ns,
            generation,
            last_access: AtomicU64::new(now),
        });
        {
            // A bulk invalidation that removed this put's L2 record has scanned L1 already, or
            // will after this: do not leave the value in L1 behind its back.
            let _gate = self.gate.read();
            if admit && self.epoch.load(Ordering::SeqCst) == epoch {
                if self
                    .l1
                    .insert_with(CacheKey::new(namespace, key), stored, entry_options(&info))
                    .is_err()
                {
                    self.counters.l1_rejections.incr();
                }
            } else {
                self.l1.remove(&k);
            }
        }
        drop(guard);
        self.idle_clocks.forget(k);
        self.counters.insertions.incr();
        Ok(info)
    }

    /// The version of the live entry of the key, if any (L1, else L2). Called under the
    /// key's stripe.
    fn current_version(&self, namespace: &str, key: &[u8], now: u64) -> Result<Option<u64>, Error> {
        let k = KeyRef { namespace, key };
        if let Some(s) = self.l1.peek(&k)
            && self.is_live(&s)
        {
            return Ok(s.info.version);
        }
        let Some(l2) = &self.l2 else {
            return Ok(None);
        };
        self.counters.l2_metadata_reads.incr();
        let Some(entry) = l2.get_entry(namespace, key)? else {
            return Ok(None);
        };
        let Some(info) = EntryInfo::decode(&entry.meta, &entry.labels) else {
            return Ok(None);
        };
        let last_access = self.l2_last_access(k, &info);
        Ok(match info.freshness(now, last_access) {
            Freshness::Fresh | Freshness::Stale(_) => info.version,
            Freshness::Expired | Freshness::Idle => None,
        })
    }

    /// Checks `put` against the limits and resolves its policy at `now`; returns the entry's
    /// description and its encoded metadata section (what L2 stores).
    fn describe(
        &self,
        namespace: &str,
        key: &[u8],
        put: &Put,
        now: u64,
    ) -> Result<(EntryInfo, Vec<u8>), Error> {
        let limits = &self.limits;
        let max_blob = put
            .policy
            .max_blob_bytes
            .map_or(limits.max_blob_bytes.as_u64(), |m| {
                m.min(limits.max_blob_bytes.as_u64())
            });
        let size = put.bytes.len() as u64;
        if size > max_blob {
            return Err(Error::BlobTooLarge {
                size,
                max: max_blob,
            });
        }
        let meta_keys = put.content_metadata.len() as u64;
        if meta_keys > limits.max_metadata_keys {
            return Err(Error::MetadataTooLarge {
                what: "content metadata keys",
                size: meta_keys,
                max: limits.max_metadata_keys,
            });
        }
        let tags = distinct(&put.tags);
        let deps = distinct(&put.dependencies);
        let labels = (tags.len() + deps.len()) as u64;
        if labels > limits.max_labels {
            return Err(Error::MetadataTooLarge {
                what: "tags and dependencies",
                size: labels,
                max: limits.max_labels,
            });
        }
        let longest = tags.iter().chain(&deps).map(Bytes::len).max().unwrap_or(0) as u64;
        let max_label = cache_l2::record::MAX_LABEL_LEN as u64 - 1;
        if longest > max_label {
            return Err(Error::MetadataTooLarge {
                what: "a tag or dependency",
                size: longest,
                max: max_label,
            });
        }
        // The labels as L2 stores them (each prefixed by its kind), against L2's own limits,
        // whether or not there is an L2: one set of limits, checked before anything is written.
        let stored: Vec<Vec<u8>> = tags
            .iter()
            .map(|t| prefixed(TAG, t))
            .chain(deps.iter().map(|d| prefixed(DEP, d)))
            .collect();
        let refs: Vec<&[u8]> = stored.iter().map(Vec::as_slice).collect();
        if let Err(e) = cache_l2::record::check_labels(&refs) {
            return Err(Error::MetadataTooLarge {
                what: "tags and dependencies (encoded)",
                size: e.len as u64,
                max: e.max as u64,
            });
        }
        let validators = validators(put)?;
        let expires_at_ms = expiry(namespace, key, put, now)?;
        if put.policy.extended.idle_ttl_ms == Some(0) {
            return Err(Error::InvalidPolicy {
                field: "idle_ttl_ms",
                reason: "must be at least 1".into(),
            });
        }
        let info = EntryInfo {
            content_metadata: put.content_metadata.clone(),
            tags,
            dependencies: deps,
            version: put.policy.version,
            written_at_ms: now,
            expires_at_ms,
            stale_while_revalidate_ms: put.policy.extended.stale_while_revalidate_ms.unwrap_or(0),
            idle_ttl_ms: put.policy.extended.idle_ttl_ms,
            priority: put.policy.priority.min(cache_l1::MAX_PRIORITY),
            admission: put.policy.l1_admission,
            validators,
        };
        let meta = info.encode();
        let meta_bytes = meta.len() as u64;
        if meta_bytes > limits.max_metadata_bytes.as_u64() {
            return Err(Error::MetadataTooLarge {
                what: "content metadata and validators (encoded)",
                size: meta_bytes,
                max: limits.max_metadata_bytes.as_u64(),
            });
        }
        Ok((info, meta))
    }

    fn bump_epoch(&self) {
        let _gate = self.gate.write();
        self.epoch.fetch_add(1, Ordering::SeqCst);
    }

    /// Removes from both tiers the entries of `namespace` that L2's `l2_step` removes and L1's
    /// `matches` selects; returns their keys (each once).
    ///
    /// Order matters: L2 first (durable), then the epoch bump (so a promotion that read L2
    /// before the L2 step cannot install afterwards), then one L1 scan (which removes anything
    /// installed before the bump).
    fn bulk_invalidate(
        &self,
        namespace: &str,
        l2_step: impl FnOnce(&Store) -> cache_l2::Result<Vec<Box<[u8]>>>,
        matches: impl Fn(&[u8], &Stored) -> bool,
    ) -> Result<HashSet<Box<[u8]>>, Error> {
        let mut removed: HashSet<Box<[u8]>> = match &self.l2 {
            Some(l2) => l2_step(l2)?.into_iter().collect(),
            None => HashSet::new(),
        };
        self.bump_epoch();
        let ns = namespace.as_bytes();
        self.l1.retain(|k, s| {
            if k.namespace() != ns || !matches(k.key(), s) {
                return true;
            }
            if s.alive_generation() {
                removed.insert(k.key().into());
            }
            false
        });
        self.idle_clocks
            .forget_all(namespace, removed.iter().map(|k| &**k));
        self.counters.invalidations.add(removed.len() as u64);
        Ok(removed)
    }

    fn invalidate_labels(
        &self,
        namespace: &str,
        kind: u8,
        labels: &[&[u8]],
    ) -> Result<HashSet<Box<[u8]>>, Error> {
        check_key(namespace, b"")?;
        let max_label = cache_l2::record::MAX_LABEL_LEN - 1;
        if let Some(long) = labels.iter().find(|l| l.len() > max_label) {
            return Err(Error::MetadataTooLarge {
                what: "a tag or dependency",
                size: long.len() as u64,
                max: max_label as u64,
            });
        }
        let prefixed: Vec<Vec<u8>> = labels.iter().map(|l| prefixed(kind, l)).collect();
        let set: HashSet<&[u8]> = labels.iter().copied().collect();
        self.bulk_invalidate(
            namespace,
            |l2| {
                // The label section limit is per record; a long list goes in slices.
                let mut keys = Vec::new();
                for chunk in prefixed.chunks(32) {
                    let refs: Vec<&[u8]> = chunk.iter().map(Vec::as_slice).collect();
                    keys.extend(l2.invalidate_labels_keys(namespace, &refs)?);
                }
                Ok(keys)
            },
            |_, s| {
                let list = if kind == TAG {
                    &s.info.tags
                } else {
                    &s.info.dependencies
                };
                list.iter().any(|l| set.contains(&l[..]))
            },
        )
    }

    fn invalidate_dependencies(
        &self,
        namespace: &str,
        dependencies: &[&[u8]],
        cascade: Cascade,
    ) -> Result<u64, Error> {
        let mut seen: HashSet<Vec<u8>> = dependencies.iter().map(|d| d.to_vec()).collect();
        let mut frontier: Vec<Vec<u8>> = seen.iter().cloned().collect();
        let mut total = 0;
        while !frontier.is_empty() {
            let refs: Vec<&[u8]> = frontier.iter().map(Vec::as_slice).collect();
            let removed = self.invalidate_labels(namespace, DEP, &refs)?;
            total += removed.len() as u64;
            if cascade == Cascade::Direct {
                break;
            }
            frontier = removed
                .into_iter()
                .map(Vec::from)
                .filter(|k| seen.insert(k.clone()))
                .collect();
        }
        Ok(total)
    }
}

/// Fingerprints the put's input files.
fn validators(put: &Put) -> Result<Vec<(String, [u8; 32])>, Error> {
    let mut validators = Vec::with_capacity(put.validate_files.len());
    for path in &put.validate_files {
        let Some(s) = path.to_str() else {
            return Err(Error::Validator {
                path: path.clone(),
                source: std::io::Error::new(
                    std::io::ErrorKind::InvalidInput,
                    "validator paths must be UTF-8",
                ),
            });
        };
        let hash = fingerprint(path).map_err(|source| Error::Validator {
            path: path.clone(),
            source,
        })?;
        validators.push((s.to_owned(), hash));
    }
    Ok(validators)
}

/// When the put's entry stops being fresh: the earlier of its TTL and absolute expiry, less
/// its per-key jitter.
fn expiry(namespace: &str, key: &[u8], put: &Put, now: u64) -> Result<Option<u64>, Error> {
    let ttl_at = match put.policy.ttl_ms {
        Some(0) => {
            return Err(Error::InvalidPolicy {
                field: "ttl_ms",
                reason: "must be at least 1".into(),
            });
        }
        Some(ttl) => Some(now.saturating_add(ttl)),
        None => None,
    };
    if let Some(at) = put.policy.expires_at_unix_ms
        && at <= now
    {
        return Err(Error::InvalidPolicy {
            field: "expires_at_unix_ms",
            reason: format!("{at} is not after now ({now})"),
        });
    }
    let mut expires_at_ms = match (ttl_at, put.policy.expires_at_unix_ms) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    };
    if let (Some(at), Some(j)) = (expires_at_ms, put.policy.extended.jitter_ms) {
        // Never at or before the put: at most `at - now - 1` earlier.
        let room = (at - now).saturating_sub(1);
        expires_at_ms = Some(at - jitter(namespace, key, j.min(room)));
    }
    Ok(expires_at_ms)
}

fn entry_options(info: &EntryInfo) -> EntryOptions {
    let mut opts = EntryOptions::new().priority(info.priority);
    if let Some(at) = info.hard_expiry() {
        opts = opts.expires_at(at);
    }
    opts
}

fn distinct(labels: &[Bytes]) -> Vec<Bytes> {
    let mut seen = HashSet::with_capacity(labels.len());
    labels
        .iter()
        .filter(|l| seen.insert(&l[..]))
        .cloned()
        .collect()
}

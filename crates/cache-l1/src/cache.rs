//! The concurrent front: hash once, pick the shard, lock it, delegate; then, with no lock held,
//! keep the cache-wide budget and tell the listener.

use std::hash::{BuildHasher, Hash};
use std::num::NonZeroUsize;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use crossbeam_utils::CachePadded;
use hashbrown::Equivalent;

use crate::hasher::RandomState;
use parking_lot::RwLock;
use smallvec::SmallVec;

use crate::clock::{Clock, SystemClock};
use crate::policy::{Policy, S3FifoParams};
use crate::shard::{Inserted, Lookup, NEVER, Shard};
use crate::stats::{Counter, L1Stats};
use crate::weigher::{UnitWeigher, Weigher};

/// Why an entry left the cache, as the eviction listener is told.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RemovalCause {
    /// The policy evicted it to make room.
    Evicted,
    /// Its expiry timestamp passed; it was removed when a lookup, an eviction scan or
    /// [`ShardedSieve::retain`] met it.
    Expired,
    /// The caller removed it: [`ShardedSieve::remove`], [`ShardedSieve::retain`] or
    /// [`ShardedSieve::clear`].
    Removed,
    /// An insert of the same key replaced it (also when the new entry was rejected).
    Replaced,
}

/// An entry that left the cache, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Removal<K, V> {
    /// The key.
    pub key: K,
    /// The value.
    pub value: V,
    /// Why it left.
    pub cause: RemovalCause,
}

/// The highest entry priority; higher values given to [`EntryOptions::priority`] are clamped.
pub const MAX_PRIORITY: u8 = 7;

/// Per-entry settings for [`ShardedSieve::insert_with`].
///
/// ```
/// use cache_l1::EntryOptions;
///
/// // Survives two more eviction passes than its hits earn; expires at t = 60,000 (the
/// // cache's clock unit, milliseconds by default).
/// let opts = EntryOptions::new().priority(2).expires_at(60_000);
/// assert_eq!(opts.priority, 2);
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct EntryOptions {
    /// Eviction bias, 0 (the default: plain policy) to [`MAX_PRIORITY`]. An entry inserted with
    /// priority `p` is spared `p` times when the policy would otherwise evict it (each time the
    /// hand passes it with no hits left, it spends one unit and stays, as if it had been hit
    /// once; in S3-FIFO's small queue a unit buys promotion to the main queue). The credit is
    /// not refilled: a high-priority entry that is never read still leaves, `p` laps later.
    pub priority: u8,
    /// When the entry expires, in the cache's [`Clock`] unit (by default milliseconds since the
    /// Unix epoch); `None` (the default) never expires. An expired entry is never returned; it
    /// is removed lazily (cause [`RemovalCause::Expired`]).
    pub expires_at: Option<u64>,
}

impl EntryOptions {
    /// No priority, no expiry.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets [`EntryOptions::priority`], clamped to [`MAX_PRIORITY`].
    #[must_use]
    pub fn priority(mut self, priority: u8) -> Self {
        self.priority = priority.min(MAX_PRIORITY);
        self
    }

    /// Sets [`EntryOptions::expires_at`].
    #[must_use]
    pub fn expires_at(mut self, at: u64) -> Self {
        self.expires_at = Some(at);
        self
    }
}

/// What a successful [`ShardedSieve::insert`] hands back.
#[must_use = "evicted entries are handed back to the caller, who may need them (e.g. to write back)"]
#[derive(Debug)]
pub struct InsertOutcome<K, V> {
    /// The value the key held before, if any (also reported to the listener as
    /// [`RemovalCause::Replaced`], or `Expired` if it had expired).
    pub replaced: Option<V>,
    /// Entries removed to make room, in order: evicted by the policy, or expired ones its scan
    /// met first (see each [`Removal::cause`]). Some may come from other shards, when this
    /// entry took room the cache-wide budget had to win back.
    pub evicted: Evicted<K, V>,
}

/// The entries one insert removed to make room: inline up to two (the usual case allocates
/// nothing), on the heap beyond.
pub type Evicted<K, V> = SmallVec<[Removal<K, V>; 2]>;

/// An entry [`ShardedSieve::insert`] refused because it alone weighs more than the largest entry
/// the cache admits ([`Options::max_entry_fraction`] of the capacity). Nothing was evicted for it.
#[derive(Debug)]
pub struct Rejected<K, V> {
    /// The key, handed back.
    pub key: K,
    /// The value, handed back.
    pub value: V,
    /// The entry's weight, as the weigher computed it.
    pub weight: u64,
    /// The value the key held before. It was removed all the same, so that no reader sees a value
    /// older than the one the caller tried to store.
    pub removed: Option<V>,
}

/// The callback [`ShardedSieve::with_listener`] installs.
type Listener<K, V> = Box<dyn Fn(&K, &V, RemovalCause) + Send + Sync>;

/// Why [`Options`] cannot build a cache.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum OptionsError {
    /// `capacity` was 0: the cache could hold nothing.
    ZeroCapacity,
    /// The policy's parameters are out of range.
    BadPolicy(&'static str),
    /// `shards` was 0.
    ZeroShards,
    /// `max_entry_fraction` is not in (0, 1].
    BadEntryFraction(f64),
    /// More shards than capacity units: some shards could hold nothing.
    CapacityBelowShards {
        /// The capacity asked for.
        capacity: u64,
        /// The shard count asked for.
        shards: usize,
    },
}

impl std::fmt::Display for OptionsError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::ZeroCapacity => f.write_str("L1 capacity must be at least 1"),
            Self::BadPolicy(why) => write!(f, "L1 policy: {why}"),
            Self::ZeroShards => f.write_str("L1 shard count must be at least 1"),
            Self::BadEntryFraction(x) => {
                write!(f, "L1 max_entry_fraction {x} is not in (0, 1]")
            }
            Self::CapacityBelowShards { capacity, shards } => write!(
                f,
                "L1 capacity {capacity} is below the shard count {shards}: every shard needs \
                 at least 1 unit of capacity"
            ),
        }
    }
}

impl std::error::Error for OptionsError {}

/// How to build a [`ShardedSieve`].
///
/// ```
/// use cache_l1::{Options, UnitWeigher};
///
/// // 10,000 entries in 4 shards, every entry weighing 1.
/// let cache = Options::new(10_000).shards(4).build::<u64, String, _>(UnitWeigher)?;
/// assert_eq!(cache.shard_count(), 4);
/// # Ok::<(), cache_l1::OptionsError>(())
/// ```
#[derive(Debug, Clone)]
pub struct Options {
    capacity: u64,
    shards: Option<usize>,
    estimated_entries: Option<u64>,
    policy: Policy,
    max_entry_fraction: f64,
    clock: Option<Arc<dyn Clock>>,
}

/// The default [`Options::max_entry_fraction`]: an entry may use up to a quarter of the budget.
pub const DEFAULT_MAX_ENTRY_FRACTION: f64 = 0.25;

/// The fewest entries a shard should expect to hold when the shard count is left to
/// [`Options::build`]. Below this a shard's queue is too short for its policy: a loop over a few
/// more keys than a 12-entry shard holds misses every time under S3-FIFO, where the same loop
/// over one 100-entry queue keeps most of its keys (`docs/benchmarks.md`). At 256 the
/// probationary queue of a shard (10%) still holds 25 entries.
pub const MIN_ENTRIES_PER_SHARD: u64 = 256;

/// Shards per available core in [`Options::default_shards`].
///
/// Readers take a shard's lock in shared mode, which still writes the lock word: two cores
/// reading the same shard bounce its cache line. With many shards per core that happens
/// rarely. Measured with `cache-bench load` defaults on 2 cores (`docs/benchmarks.md`): 8
/// shards 20.1 Mops/s reads only and 13.9 at 90/10; 64 shards 27.6 and 19.4; 128 shards 28.9 and
/// 21.0. The miss ratio on the shared traces did not change (64.02% to 64.03% mean).
pub const SHARDS_PER_CORE: usize = 32;

/// The most shards [`Options::default_shards`] returns, whatever the core count.
pub const MAX_DEFAULT_SHARDS: usize = 4096;

impl Options {
    /// Options for a cache whose resident weights sum to at most `capacity` (in the weigher's
    /// unit: bytes for a byte budget, entries for [`UnitWeigher`]).
    pub fn new(capacity: u64) -> Self {
        Self {
            capacity,
            shards: None,
            estimated_entries: None,
            policy: Policy::S3Fifo(S3FifoParams::default()),
            max_entry_fraction: DEFAULT_MAX_ENTRY_FRACTION,
            clock: None,
        }
    }

    /// The largest share of the capacity one entry may weigh, in (0, 1]. Heavier entries are
    /// [`Rejected`] (handed back, never silently dropped). The limit is against the whole
    /// budget, not a shard's slice: a shard makes room for a large entry by going over its slice
    /// while other shards give theirs up. Default: [`DEFAULT_MAX_ENTRY_FRACTION`] (0.25). The
    /// limit in weight units is `max(1, floor(capacity * fraction))`.
    #[must_use]
    pub fn max_entry_fraction(mut self, fraction: f64) -> Self {
        self.max_entry_fraction = fraction;
        self
    }

    /// The clock expiry timestamps are compared against. Default: [`SystemClock`]
    /// (milliseconds since the Unix epoch).
    #[must_use]
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = Some(clock);
        self
    }

    /// The eviction policy every shard runs. Default: [`Policy::S3Fifo`] with
    /// [`S3FifoParams::default`], which misses less than SIEVE, moka and `quick_cache` on the
    /// shared traces (`docs/benchmarks.md`).
    #[must_use]
    pub fn policy(mut self, policy: Policy) -> Self {
        self.policy = policy;
        self
    }

    /// Number of shards, each with its own lock, queue and `capacity / shards` of the budget
    /// (the remainder goes to the first shards). With 1 shard the cache is exactly SIEVE as in
    /// the paper. Default: [`Options::default_shards`], reduced so that each shard expects at
    /// least [`MIN_ENTRIES_PER_SHARD`] entries (see [`Options::estimated_entries`]).
    #[must_use]
    pub fn shards(mut self, shards: usize) -> Self {
        self.shards = Some(shards);
        self
    }

    /// How many entries the cache will hold when full, a hint for the default shard count only.
    /// Default: `capacity`, which is exact for [`UnitWeigher`] and an overestimate for a byte
    /// budget; pass `capacity / mean entry weight` there.
    #[must_use]
    pub fn estimated_entries(mut self, entries: u64) -> Self {
        self.estimated_entries = Some(entries);
        self
    }

    /// The most shards the default shard count uses: [`SHARDS_PER_CORE`] per available core,
    /// rounded up to a power of two, at most [`MAX_DEFAULT_SHARDS`].
    pub fn default_shards() -> usize {
        let cores = std::thread::available_parallelism().map_or(1, NonZeroUsize::get);
        cores
            .saturating_mul(SHARDS_PER_CORE)
            .next_power_of_two()
            .min(MAX_DEFAULT_SHARDS)
    }

    /// The shard count [`Options::build`] picks when none is set: [`Options::default_shards`],
    /// halved until each shard expects at least [`MIN_ENTRIES_PER_SHARD`] entries (so 1 shard
    /// below 128 entries), and never more than `capacity`.
    pub fn shard_count(&self) -> usize {
        if let Some(n) = self.shards {
            return n;
        }
        let entries = self
            .estimated_entries
            .unwrap_or(self.capacity)
            .min(self.capacity);
        let mut n = Self::default_shards();
        while n > 1 && (n as u64).saturating_mul(MIN_ENTRIES_PER_SHARD) > entries {
            n /= 2;
        }
        n
    }

    /// Builds the cache with `weigher` and a [`RandomState`] hasher (foldhash, seeded from the
    /// operating system's randomness).
    ///
    /// # Errors
    ///
    /// [`OptionsError`] if the capacity or the shard count is 0, the capacity is below the
    /// shard count, the policy's parameters or the entry fraction are out of range.
    pub fn build<K, V, W>(self, weigher: W) -> Result<ShardedSieve<K, V, W>, OptionsError>
    where
        K: Hash + Eq,
        W: Weigher<K, V>,
    {
        self.build_with_hasher(weigher, RandomState::default())
    }

    /// Builds the cache with `weigher` and `hash_builder`. The hash picks the shard and the
    /// slot; pass a randomly seeded builder unless keys are trusted.
    ///
    /// # Errors
    ///
    /// As [`Options::build`].
    pub fn build_with_hasher<K, V, W, S>(
        self,
        weigher: W,
        hash_builder: S,
    ) -> Result<ShardedSieve<K, V, W, S>, OptionsError>
    where
        K: Hash + Eq,
        W: Weigher<K, V>,
        S: BuildHasher,
    {
        let capacity = self.capacity;
        if capacity == 0 {
            return Err(OptionsError::ZeroCapacity);
        }
        let fraction = self.max_entry_fraction;
        if !(fraction > 0.0 && fraction <= 1.0) {
            return Err(OptionsError::BadEntryFraction(fraction));
        }
        if let Policy::S3Fifo(p) = self.policy {
            p.check().map_err(OptionsError::BadPolicy)?;
        }
        let shards = match self.shards {
            Some(0) => return Err(OptionsError::ZeroShards),
            Some(n) if u64::try_from(n).map_or(true, |n| n > capacity) => {
                return Err(OptionsError::CapacityBelowShards {
                    capacity,
                    shards: n,
                });
            }
            Some(n) => n,
            None => self.shard_count(),
        };
        let n = shards as u64;
        let shards = (0..n)
            .map(|i| {
                let slice = capacity / n + u64::from(i < capacity % n);
                CachePadded::new(ShardSlot {
                    lock: RwLock::new(Shard::new(slice, self.policy)),
                    weight: AtomicU64::new(0),
                    slice,
                })
            })
            .collect();
        #[expect(
            clippy::cast_possible_truncation,
            clippy::cast_sign_loss,
            clippy::cast_precision_loss,
            reason = "a fraction of the capacity, rounded down; f64 covers it to 2^-53"
        )]
        let max_entry_weight = ((capacity as f64 * fraction) as u64).clamp(1, capacity);
        Ok(ShardedSieve {
            shards,
            hash_builder,
            weigher,
            capacity,
            max_entry_weight,
            over: CachePadded::new(AtomicU64::new(0)),
            clock: self.clock.unwrap_or_else(|| Arc::new(SystemClock)),
            listener: None,
            hits: Counter::new(),
            misses: Counter::new(),
            insertions: Counter::new(),
            evictions: Counter::new(),
            expirations: Counter::new(),
            removals: Counter::new(),
            rejections: Counter::new(),
        })
    }
}

/// A shard behind its lock, with its weight mirrored where the budget keeper can read it
/// without locking; alone on its cache lines.
struct ShardSlot<K, V> {
    lock: RwLock<Shard<K, V>>,
    /// The shard's weight as of its last write-locked operation.
    weight: AtomicU64,
    /// The shard's slice of the capacity (immutable).
    slice: u64,
}

/// A sharded, concurrent cache holding resident weights to a capacity, evicting by SIEVE or
/// S3-FIFO per shard.
///
/// See the [crate documentation](crate) for the algorithm and the guarantees.
pub struct ShardedSieve<K, V, W = UnitWeigher, S = RandomState> {
    shards: Box<[CachePadded<ShardSlot<K, V>>]>,
    hash_builder: S,
    weigher: W,
    capacity: u64,
    max_entry_weight: u64,
    /// How far the shards together are over their slices: the sum over shards of
    /// `max(0, weight - slice)`. Written only when a shard's excess changes, which entries no
    /// larger than an eighth of a slice never cause, so the insert path reads a line that stays
    /// shared between cores.
    over: CachePadded<AtomicU64>,
    clock: Arc<dyn Clock>,
    listener: Option<Listener<K, V>>,
    hits: Counter,
    misses: Counter,
    insertions: Counter,
    evictions: Counter,
    expirations: Counter,
    removals: Counter,
    rejections: Counter,
}

impl<K, V, W, S> std::fmt::Debug for ShardedSieve<K, V, W, S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ShardedSieve")
            .field("shards", &self.shards.len())
            .field("capacity", &self.capacity)
            .field("max_entry_weight", &self.max_entry_weight)
            .field("clock", &self.clock)
            .field("listener", &self.listener.is_some())
            .finish_non_exhaustive()
    }
}

impl<K, V, W, S> ShardedSieve<K, V, W, S>
where
    K: Hash + Eq,
    W: Weigher<K, V>,
    S: BuildHasher,
{
    /// Installs `listener`, called once for every entry that leaves the cache, with its cause:
    /// evicted, expired, removed, or replaced by an insert of the same key. It runs on the
    /// thread whose operation removed the entry, after every shard lock is released, so it may
    /// call back into the cache. Entries that [`Self::insert`] or [`Self::remove`] also hand
    /// back to the caller are reported too. Entries dropped with the cache are not.
    #[must_use]
    pub fn with_listener(
        mut self,
        listener: impl Fn(&K, &V, RemovalCause) + Send + Sync + 'static,
    ) -> Self {
        self.listener = Some(Box::new(listener));
        self
    }

    /// The hasher that picks each key's shard and slot.
    pub fn hasher(&self) -> &S {
        &self.hash_builder
    }

    #[inline]
    fn shard_index(&self, hash: u64) -> usize {
        // Bits 25..57 pick the shard, scaled onto 0..len without a division. hashbrown takes
        // the slot from the low bits and its 7-bit tag from the top bits (57..64): a shard
        // index drawn from those would leave every entry of a shard with fewer distinct tags,
        // and lookups would compare more keys.
        let n = self.shards.len() as u64;
        let i = (((hash >> 25) & 0xFFFF_FFFF) * n) >> 32;
        usize::try_from(i).unwrap_or(0)
    }

    /// Runs `f` on shard `i` under its exclusive lock, then refreshes the shard's weight mirror
    /// and the cache's excess over slices.
    fn with_shard<R>(&self, i: usize, f: impl FnOnce(&mut Shard<K, V>) -> R) -> R {
        let slot = &self.shards[i];
        let mut shard = slot.lock.write();
        let excess_before = shard.weight().saturating_sub(slot.slice);
        let r = f(&mut shard);
        let weight = shard.weight();
        slot.weight.store(weight, Ordering::Relaxed);
        let excess_after = weight.saturating_sub(slot.slice);
        if excess_after > excess_before {
            self.over
                .fetch_add(excess_after - excess_before, Ordering::AcqRel);
        } else if excess_after < excess_before {
            self.over
                .fetch_sub(excess_before - excess_after, Ordering::AcqRel);
        }
        r
    }

    /// Sum of the shards' weight mirrors.
    fn total(&self) -> u64 {
        self.shards
            .iter()
            .map(|s| s.weight.load(Ordering::Relaxed))
            .sum()
    }

    /// How much shard `i` may hold before it must evict to take `weight` more: its slice, or,
    /// for an entry larger than an eighth of the slice, the slice plus whatever room the other
    /// shards leave unused (read from their mirrors, without locks).
    fn limit(&self, i: usize, weight: u64) -> u64 {
        let slice = self.shards[i].slice;
        if weight <= slice / 8 {
            return slice;
        }
        let spare: i128 = self
            .shards
            .iter()
            .enumerate()
            .filter(|&(j, _)| j != i)
            .map(|(_, s)| i128::from(s.slice) - i128::from(s.weight.load(Ordering::Relaxed)))
            .sum();
        slice.saturating_add(u64::try_from(spare.max(0)).unwrap_or(u64::MAX))
    }

    fn notify(&self, removals: &[Removal<K, V>]) {
        if let Some(listener) = &self.listener {
            for r in removals {
                listener(&r.key, &r.value, r.cause);
            }
        }
    }

    fn count(&self, removals: &[Removal<K, V>]) {
        let (mut evicted, mut expired, mut removed) = (0, 0, 0);
        for r in removals {
            match r.cause {
                RemovalCause::Evicted => evicted += 1,
                RemovalCause::Expired => expired += 1,
                RemovalCause::Removed => removed += 1,
                RemovalCause::Replaced => {}
            }
        }
        self.evictions.add(evicted);
        self.expirations.add(expired);
        self.removals.add(removed);
    }

    /// Returns a clone of the value of `key` and records the hit.
    ///
    /// Runs under the shard's *shared* lock and allocates nothing (beyond what `V::clone` does):
    /// a hit only bumps the entry's atomic access counter (the `visited` bit of SIEVE). `key` may
    /// be any borrowed form of `K` that hashes the same way (see [`Equivalent`]). An expired
    /// entry is a miss; it is then removed (cause [`RemovalCause::Expired`]).
    #[inline]
    pub fn get<Q>(&self, key: &Q) -> Option<V>
    where
        Q: Hash + Equivalent<K> + ?Sized,
        V: Clone,
    {
        self.lookup(key, true)
    }

    /// Returns a clone of the value of `key` without recording a hit (no access counter bump, no
    /// hit or miss counted). An expired entry is a miss, and is removed as by [`Self::get`].
    #[inline]
    pub fn peek<Q>(&self, key: &Q) -> Option<V>
    where
        Q: Hash + Equivalent<K> + ?Sized,
        V: Clone,
    {
        self.lookup(key, false)
    }

    #[inline]
    fn lookup<Q>(&self, key: &Q, touch: bool) -> Option<V>
    where
        Q: Hash + Equivalent<K> + ?Sized,
        V: Clone,
    {
        let hash = self.hash_builder.hash_one(key);
        let i = self.shard_index(hash);
        // The shared guard must be gone before an expired entry is removed under the
        // exclusive one.
        let expired = {
            let shard = self.shards[i].lock.read();
            match shard.lookup(hash, key, &*self.clock, touch) {
                Lookup::Hit(v) => {
                    let v = v.clone();
                    drop(shard);
                    if touch {
                        self.hits.incr();
                    }
                    return Some(v);
                }
                Lookup::Miss => false,
                Lookup::Expired => true,
            }
        };
        if expired {
            self.remove_expired(i, hash, key);
        }
        if touch {
            self.misses.incr();
        }
        None
    }

    #[cold]
    fn remove_expired<Q>(&self, i: usize, hash: u64, key: &Q)
    where
        Q: Equivalent<K> + ?Sized,
    {
        let removed = self.with_shard(i, |s| s.remove_expired(hash, key, &*self.clock));
        if let Some(r) = removed {
            let r = [r];
            self.count(&r);
            self.notify(&r);
        }
    }

    /// Whether `key` is resident and not expired, without recording a hit.
    pub fn contains<Q>(&self, key: &Q) -> bool
    where
        Q: Hash + Equivalent<K> + ?Sized,
    {
        let hash = self.hash_builder.hash_one(key);
        let shard = self.shards[self.shard_index(hash)].lock.read();
        matches!(shard.lookup(hash, key, &*self.clock, false), Lookup::Hit(_))
    }

    /// Inserts `key` with `value` (no priority, no expiry), as [`Self::insert_with`].
    ///
    /// # Errors
    ///
    /// As [`Self::insert_with`].
    pub fn insert(&self, key: K, value: V) -> Result<InsertOutcome<K, V>, Rejected<K, V>> {
        self.insert_with(key, value, EntryOptions::default())
    }

    /// Inserts `key` with `value` and per-entry `options`, replacing any old value, and evicts
    /// by the policy until the weights fit the capacity again.
    ///
    /// Eviction runs in the key's shard, down to its slice of the capacity; an entry larger
    /// than an eighth of the slice may instead borrow room the other shards leave unused. When
    /// shards are over their slices after the insert, the one most over gives entries back
    /// (after this shard's lock is released, one shard lock at a time) until the cache is within
    /// its capacity. Every removed entry is returned in [`InsertOutcome::evicted`] and reported
    /// to the listener. A replacement keeps the key's slab slot and index entry and re-enters
    /// its queue at the head with its access counter at 0.
    ///
    /// # Errors
    ///
    /// [`Rejected`] (with the key and value handed back) if the entry alone weighs more than
    /// the largest entry admitted ([`Options::max_entry_fraction`]); an old value of the key is
    /// removed all the same.
    pub fn insert_with(
        &self,
        key: K,
        value: V,
        options: EntryOptions,
    ) -> Result<InsertOutcome<K, V>, Rejected<K, V>> {
        let hash = self.hash_builder.hash_one(&key);
        let i = self.shard_index(hash);
        let weight = self.weigher.weight(&key, &value).max(1);
        if weight > self.max_entry_weight {
            let removed = self.with_shard(i, |s| s.remove(hash, &key));
            self.rejections.incr();
            let removed = removed.map(|(k, v)| {
                if let Some(listener) = &self.listener {
                    listener(&k, &v, RemovalCause::Replaced);
                }
                v
            });
            return Err(Rejected {
                key,
                value,
                weight,
                removed,
            });
        }
        let credit = options.priority.min(MAX_PRIORITY);
        let expires_at = options.expires_at.unwrap_or(NEVER);
        let limit = self.limit(i, weight);
        let Inserted {
            replaced,
            mut removed,
        } = self.with_shard(i, |s| {
            s.insert(
                hash,
                key,
                value,
                weight,
                credit,
                expires_at,
                limit,
                &*self.clock,
            )
        });
        self.insertions.incr();
        if self.over.load(Ordering::Acquire) > 0 {
            self.keep_budget(i, &mut removed);
        }
        self.count(&removed);
        let replaced = replaced.map(|r| {
            if r.cause == RemovalCause::Expired {
                self.expirations.incr();
            }
            self.notify(std::slice::from_ref(&r));
            r.value
        });
        self.notify(&removed);
        Ok(InsertOutcome {
            replaced,
            evicted: removed,
        })
    }

    /// Brings the cache back within its capacity after an insert into shard `origin`, when
    /// some shard is over its slice: while the shards' weights sum to more than the capacity,
    /// evicts from the shard most over its slice (other than `origin` if any other holds
    /// entries), one shard lock at a time.
    #[cold]
    fn keep_budget(&self, origin: usize, out: &mut Evicted<K, V>) {
        loop {
            let total = self.total();
            if total <= self.capacity {
                break;
            }
            let most_over = self
                .shards
                .iter()
                .enumerate()
                .filter(|&(j, slot)| j != origin && slot.weight.load(Ordering::Relaxed) > 0)
                .max_by_key(|(_, slot)| {
                    i128::from(slot.weight.load(Ordering::Relaxed)) - i128::from(slot.slice)
                })
                .map_or(origin, |(j, _)| j);
            let needed = total - self.capacity;
            let freed = self.with_shard(most_over, |s| s.shed(needed, &*self.clock, out));
            if freed == 0 && most_over == origin {
                break;
            }
        }
    }

    /// Removes `key` and returns its entry (reported to the listener as
    /// [`RemovalCause::Removed`]). An expired entry is removed all the same.
    pub fn remove<Q>(&self, key: &Q) -> Option<(K, V)>
    where
        Q: Hash + Equivalent<K> + ?Sized,
    {
        let hash = self.hash_builder.hash_one(key);
        let (k, v) = self.with_shard(self.shard_index(hash), |s| s.remove(hash, key))?;
        self.removals.incr();
        if let Some(listener) = &self.listener {
            listener(&k, &v, RemovalCause::Removed);
        }
        Some((k, v))
    }

    /// Removes every entry for which `keep` returns `false` (cause [`RemovalCause::Removed`]),
    /// and every expired entry (cause `Expired`, without asking `keep`), shard by shard; returns
    /// how many entries `keep` rejected. Used for prefix and namespace sweeps.
    ///
    /// `keep` runs under each shard's exclusive lock in turn: it must not call into this cache.
    /// Entries inserted into a shard after it was swept are not seen.
    pub fn retain(&self, mut keep: impl FnMut(&K, &V) -> bool) -> usize {
        let mut rejected = 0;
        let mut out = Vec::new();
        for i in 0..self.shards.len() {
            rejected += self.with_shard(i, |s| s.retain(&mut keep, &*self.clock, &mut out));
            self.count(&out);
            self.notify(&out);
            out.clear();
        }
        rejected
    }

    /// Removes every entry and returns how many there were. With a listener each is reported
    /// ([`RemovalCause::Removed`]); counters are kept.
    pub fn clear(&self) -> usize {
        let mut out = Vec::new();
        let mut n = 0;
        for i in 0..self.shards.len() {
            let collect = self.listener.is_some().then_some(&mut out);
            n += self.with_shard(i, |s| s.clear(collect));
            self.notify(&out);
            out.clear();
        }
        n
    }

    /// Entries resident now (summed shard by shard, so not a snapshot under concurrent writes).
    pub fn len(&self) -> usize {
        self.shards.iter().map(|s| s.lock.read().len()).sum()
    }

    /// Whether no entry is resident.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Sum of the weights of resident entries (bytes for a byte budget). Never above
    /// [`Self::capacity`] once the operations that ran have returned (an insert may take the
    /// cache over while it makes room in other shards).
    pub fn weight(&self) -> u64 {
        self.total()
    }

    /// The capacity the weights are held to (the sum of the shards' slices).
    pub fn capacity(&self) -> u64 {
        self.capacity
    }

    /// The heaviest entry [`Self::insert`] admits, in weight units.
    pub fn max_entry_weight(&self) -> u64 {
        self.max_entry_weight
    }

    /// Bytes of the slab node that holds one entry, key and value inline: the fixed part of
    /// the per-entry memory (see the crate docs for the rest).
    pub const fn node_bytes() -> usize {
        crate::lists::node_bytes::<crate::shard::Entry<K, V>>()
    }

    /// The number of shards.
    pub fn shard_count(&self) -> usize {
        self.shards.len()
    }

    /// A snapshot of the counters and the current length and weight.
    pub fn stats(&self) -> L1Stats {
        L1Stats {
            hits: self.hits.get(),
            misses: self.misses.get(),
            insertions: self.insertions.get(),
            evictions: self.evictions.get(),
            expirations: self.expirations.get(),
            removals: self.removals.get(),
            rejections: self.rejections.get(),
            len: self.len() as u64,
            weight: self.weight(),
            capacity: self.capacity,
            shards: self.shards.len(),
        }
    }

    /// The resident keys of shard `shard` with their access counters (the visited bit, for
    /// [`Policy::Sieve`]): the small queue then the main queue, each from its tail (oldest) to its
    /// head (newest). For tests and debugging; it clones every key.
    ///
    /// # Panics
    ///
    /// If `shard >= self.shard_count()`.
    pub fn queue_snapshot(&self, shard: usize) -> Vec<(K, u8)>
    where
        K: Clone,
    {
        self.shards[shard]
            .lock
            .read()
            .keys_oldest_first()
            .map(|(k, v)| (k.clone(), v))
            .collect()
    }

    /// Checks every invariant from scratch: each shard's queue links, that the index and the
    /// queue hold the same entries under their keys' hashes, the expiring-entry counts, that
    /// each shard's weight counter equals the sum of its entries' weights and its mirror, that
    /// the shards' weights add up to [`Self::weight`] and that is within the capacity, and that
    /// the shards' slices add up to the capacity. For tests, with no operation running; it takes
    /// every shard's lock in turn.
    ///
    /// # Panics
    ///
    /// On the first broken invariant, with a message naming it.
    pub fn validate(&self) {
        let (mut capacity, mut weight) = (0, 0);
        for (i, slot) in self.shards.iter().enumerate() {
            let shard = slot.lock.read();
            shard.validate(&self.hash_builder);
            assert_eq!(shard.capacity(), slot.slice, "shard {i}: slice is off");
            assert_eq!(
                shard.weight(),
                slot.weight.load(Ordering::Relaxed),
                "shard {i}: weight mirror is off"
            );
            capacity += shard.capacity();
            weight += shard.weight();
        }
        assert_eq!(capacity, self.capacity, "shard capacities do not add up");
        assert_eq!(weight, self.weight(), "shard weights do not add up");
        let over: u64 = self
            .shards
            .iter()
            .map(|s| s.weight.load(Ordering::Relaxed).saturating_sub(s.slice))
            .sum();
        assert_eq!(
            over,
            self.over.load(Ordering::Relaxed),
            "excess over slices is off"
        );
        assert!(
            weight <= self.capacity,
            "weight {weight} is above capacity {}",
            self.capacity
        );
    }
}

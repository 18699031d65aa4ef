//! The concurrent front: hash once, pick the shard, lock it, delegate.

use std::hash::{BuildHasher, Hash};
use std::num::NonZeroUsize;

use crossbeam_utils::CachePadded;
use hashbrown::{DefaultHashBuilder, Equivalent};
use parking_lot::RwLock;

use crate::policy::{Policy, S3FifoParams};
use crate::shard::Shard;
use crate::stats::{Counter, L1Stats};
use crate::weigher::{UnitWeigher, Weigher};

/// What a successful [`ShardedSieve::insert`] hands back.
#[must_use = "evicted entries are handed back to the caller, who may need them (e.g. to write back)"]
#[derive(Debug)]
pub struct InsertOutcome<K, V> {
    /// The value the key held before, if any. Its weight was given back before eviction ran.
    pub replaced: Option<V>,
    /// Entries SIEVE evicted to make room, in eviction order.
    pub evicted: Vec<(K, V)>,
}

/// An entry [`ShardedSieve::insert`] refused because it alone weighs more than its shard's
/// capacity. Nothing was evicted for it.
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

/// Why [`Options`] cannot build a cache.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum OptionsError {
    /// `capacity` was 0: the cache could hold nothing.
    ZeroCapacity,
    /// The policy's parameters are out of range.
    BadPolicy(&'static str),
    /// `shards` was 0.
    ZeroShards,
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
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Options {
    capacity: u64,
    shards: Option<usize>,
    estimated_entries: Option<u64>,
    policy: Policy,
}

/// The fewest entries a shard should expect to hold when the shard count is left to
/// [`Options::build`]. Below this a shard's queue is too short for its policy: a loop over a few
/// more keys than a 12-entry shard holds misses every time under S3-FIFO, where the same loop
/// over one 100-entry queue keeps most of its keys (`docs/benchmarks.md`).
pub const MIN_ENTRIES_PER_SHARD: u64 = 64;

impl Options {
    /// Options for a cache whose resident weights sum to at most `capacity` (in the weigher's
    /// unit: bytes for a byte budget, entries for [`UnitWeigher`]).
    pub fn new(capacity: u64) -> Self {
        Self {
            capacity,
            shards: None,
            estimated_entries: None,
            policy: Policy::S3Fifo(S3FifoParams::default()),
        }
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

    /// The most shards the default shard count uses: 4 per available core, rounded up to a
    /// power of two.
    pub fn default_shards() -> usize {
        let cores = std::thread::available_parallelism().map_or(1, NonZeroUsize::get);
        (cores * 4).next_power_of_two()
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

    /// Builds the cache with `weigher` and a randomly seeded hasher.
    ///
    /// # Errors
    ///
    /// [`OptionsError`] if the capacity or the shard count is 0, or the capacity is below the
    /// shard count.
    pub fn build<K, V, W>(self, weigher: W) -> Result<ShardedSieve<K, V, W>, OptionsError>
    where
        K: Hash + Eq,
        W: Weigher<K, V>,
    {
        self.build_with_hasher(weigher, DefaultHashBuilder::default())
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
                CachePadded::new(RwLock::new(Shard::new(slice, self.policy)))
            })
            .collect();
        Ok(ShardedSieve {
            shards,
            hash_builder,
            weigher,
            capacity,
            hits: Counter::new(),
            misses: Counter::new(),
            insertions: Counter::new(),
            evictions: Counter::new(),
            rejections: Counter::new(),
        })
    }
}

/// A shard behind its lock, alone on its cache lines.
type ShardSlot<K, V> = CachePadded<RwLock<Shard<K, V>>>;

/// A sharded, concurrent SIEVE cache holding resident weights to a capacity.
///
/// See the [crate documentation](crate) for the algorithm and the guarantees.
pub struct ShardedSieve<K, V, W = UnitWeigher, S = DefaultHashBuilder> {
    shards: Box<[ShardSlot<K, V>]>,
    hash_builder: S,
    weigher: W,
    capacity: u64,
    hits: Counter,
    misses: Counter,
    insertions: Counter,
    evictions: Counter,
    rejections: Counter,
}

impl<K, V, W, S> std::fmt::Debug for ShardedSieve<K, V, W, S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ShardedSieve")
            .field("shards", &self.shards.len())
            .field("capacity", &self.capacity)
            .finish_non_exhaustive()
    }
}

impl<K, V, W, S> ShardedSieve<K, V, W, S>
where
    K: Hash + Eq,
    W: Weigher<K, V>,
    S: BuildHasher,
{
    #[inline]
    fn shard_for(&self, hash: u64) -> &RwLock<Shard<K, V>> {
        // Bits 25..57 pick the shard, scaled onto 0..len without a division. hashbrown takes
        // the slot from the low bits and its 7-bit tag from the top bits (57..64): a shard
        // index drawn from those would leave every entry of a shard with fewer distinct tags,
        // and lookups would compare more keys.
        let n = self.shards.len() as u64;
        let i = (((hash >> 25) & 0xFFFF_FFFF) * n) >> 32;
        &self.shards[usize::try_from(i).unwrap_or(0)]
    }

    /// Returns a clone of the value of `key` and records the hit.
    ///
    /// Runs under the shard's *shared* lock and allocates nothing (beyond what `V::clone` does):
    /// a hit only bumps the entry's atomic access counter (the `visited` bit of SIEVE). `key` may be any borrowed form of `K`
    /// that hashes the same way (see [`Equivalent`]).
    #[inline]
    pub fn get<Q>(&self, key: &Q) -> Option<V>
    where
        Q: Hash + Equivalent<K> + ?Sized,
        V: Clone,
    {
        let hash = self.hash_builder.hash_one(key);
        let found = self.shard_for(hash).read().get(hash, key).cloned();
        if found.is_some() {
            self.hits.incr();
        } else {
            self.misses.incr();
        }
        found
    }

    /// Returns a clone of the value of `key` without recording a hit.
    #[inline]
    pub fn peek<Q>(&self, key: &Q) -> Option<V>
    where
        Q: Hash + Equivalent<K> + ?Sized,
        V: Clone,
    {
        let hash = self.hash_builder.hash_one(key);
        self.shard_for(hash).read().peek(hash, key).cloned()
    }

    /// Whether `key` is resident, without recording a hit.
    pub fn contains<Q>(&self, key: &Q) -> bool
    where
        Q: Hash + Equivalent<K> + ?Sized,
    {
        let hash = self.hash_builder.hash_one(key);
        self.shard_for(hash).read().peek(hash, key).is_some()
    }

    /// Inserts `key` with `value`, replacing any old value, and evicts by the policy until the
    /// shard's weights fit its capacity again.
    ///
    /// # Errors
    ///
    /// [`Rejected`] (with the key and value handed back) if the entry alone weighs more than its
    /// shard's capacity; an old value of the key is removed all the same.
    pub fn insert(&self, key: K, value: V) -> Result<InsertOutcome<K, V>, Rejected<K, V>> {
        let hash = self.hash_builder.hash_one(&key);
        let weight = self.weigher.weight(&key, &value).max(1);
        let result = self
            .shard_for(hash)
            .write()
            .insert(hash, key, value, weight);
        match &result {
            Ok(outcome) => {
                self.insertions.incr();
                self.evictions.add(outcome.evicted.len() as u64);
            }
            Err(_) => self.rejections.incr(),
        }
        result
    }

    /// Removes `key` and returns its entry.
    pub fn remove<Q>(&self, key: &Q) -> Option<(K, V)>
    where
        Q: Hash + Equivalent<K> + ?Sized,
    {
        let hash = self.hash_builder.hash_one(key);
        self.shard_for(hash).write().remove(hash, key)
    }

    /// Removes every entry and returns how many there were. Counters are kept.
    pub fn clear(&self) -> usize {
        self.shards.iter().map(|s| s.write().clear()).sum()
    }

    /// Entries resident now (summed shard by shard, so not a snapshot under concurrent writes).
    pub fn len(&self) -> usize {
        self.shards.iter().map(|s| s.read().len()).sum()
    }

    /// Whether no entry is resident.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Sum of the weights of resident entries (bytes for a byte budget). Never above
    /// [`Self::capacity`] once the operations that ran have returned.
    pub fn weight(&self) -> u64 {
        self.shards.iter().map(|s| s.read().weight()).sum()
    }

    /// The capacity the weights are held to (the sum of the shards' slices).
    pub fn capacity(&self) -> u64 {
        self.capacity
    }

    /// The number of shards.
    pub fn shard_count(&self) -> usize {
        self.shards.len()
    }

    /// A snapshot of the counters and the current length and weight.
    pub fn stats(&self) -> L1Stats {
        let (len, weight) = self.shards.iter().fold((0u64, 0u64), |(l, w), s| {
            let s = s.read();
            (l + s.len() as u64, w + s.weight())
        });
        L1Stats {
            hits: self.hits.get(),
            misses: self.misses.get(),
            insertions: self.insertions.get(),
            evictions: self.evictions.get(),
            rejections: self.rejections.get(),
            len,
            weight,
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
            .read()
            .keys_oldest_first()
            .map(|(k, v)| (k.clone(), v))
            .collect()
    }

    /// Checks every invariant from scratch: each shard's queue links, that the index and the
    /// queue hold the same entries under their keys' hashes, that each shard's weight counter
    /// equals the sum of its entries' weights and is within its capacity, and that the shards'
    /// capacities add up to the cache's. For tests; it takes every shard's lock in turn.
    ///
    /// # Panics
    ///
    /// On the first broken invariant, with a message naming it.
    pub fn validate(&self) {
        let mut capacity = 0;
        for shard in &*self.shards {
            let shard = shard.read();
            shard.validate(&self.hash_builder);
            capacity += shard.capacity();
        }
        assert_eq!(capacity, self.capacity, "shard capacities do not add up");
    }
}

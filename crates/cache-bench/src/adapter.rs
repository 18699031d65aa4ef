//! One adapter trait for every cache under test, and the adapters.

use anyhow::Context as _;
use bytes::Bytes;
use cache_core::{Error as CoreError, L1_ENTRY_OVERHEAD, Tier, TieredCache};
use rand::SeedableRng;

/// The namespace trace keys live in.
pub const NAMESPACE: &str = "trace";
/// Bytes of a trace key as the tiered cache stores it (a `u64`, little-endian).
const KEY_LEN: u64 = 8;

/// What serving one request did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Served from the in-memory tier (the only tier of single-tier caches).
    L1Hit,
    /// Served from the durable tier.
    L2Hit,
    /// Served by neither; the value was then inserted.
    Miss,
    /// A miss whose value the cache refused to store (larger than a tier's budget).
    Uncacheable,
}

/// A cache under test, driven the way a read-through cache is used: look the key up, and on a
/// miss insert the value.
pub trait Target: Send + Sync {
    /// A short name for reports (`tiered`, `moka`).
    fn name(&self) -> &'static str;

    /// Serves one request for `key` whose value is `size` bytes.
    ///
    /// # Errors
    ///
    /// If the cache fails, or returns bytes other than the ones stored for `key`.
    fn serve(&self, key: u64, size: u32) -> anyhow::Result<Outcome>;

    /// `(in use, capacity)` of the in-memory tier, in its budget's unit, if the target can tell.
    fn l1_usage(&self) -> Option<(u64, u64)> {
        None
    }

    /// Bytes the disk tier has read and written so far, if the target has one.
    fn disk_io(&self) -> Option<DiskIo> {
        None
    }
}

/// Bytes a disk tier read from and wrote to its files, as the cache counts them: calls into
/// its storage, which the operating system's page cache may still serve without the device.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct DiskIo {
    /// Bytes read.
    pub read_bytes: u64,
    /// Bytes written.
    pub written_bytes: u64,
}

/// The bytes each key's value is made of: slices of one shared buffer of seeded bytes, at an
/// offset derived from the key, so values cost no allocation and can be checked on every hit.
/// The buffer is random bytes, which do not compress, or bytes built to compress to a given
/// ratio ([`crate::workload::compressible_bytes`]).
#[derive(Debug, Clone)]
pub struct Values {
    buf: Bytes,
}

impl Values {
    /// A source whose values are slices of `len` random bytes (seeded). Values longer than
    /// `len` are built on demand.
    pub fn new(len: usize, seed: u64) -> Self {
        Self::compressible(len, seed, 1.0)
    }

    /// As [`Values::new`], with bytes that zstd shrinks to about `compression_ratio` of their
    /// size (1: random bytes).
    ///
    /// # Panics
    ///
    /// If `compression_ratio` is not in `(0, 1]`.
    pub fn compressible(len: usize, seed: u64, compression_ratio: f64) -> Self {
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        let buf = crate::workload::compressible_bytes(len, compression_ratio, &mut rng);
        Self { buf: buf.into() }
    }

    fn offset(&self, key: u64, size: usize) -> usize {
        let room = self.buf.len() - size + 1;
        // A multiplicative hash spreads neighbouring keys over the buffer.
        let h = key.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 16;
        usize::try_from(h % room as u64).unwrap_or(0)
    }

    /// The value of `key` at `size` bytes.
    pub fn value(&self, key: u64, size: u32) -> Bytes {
        let size = size as usize;
        if size <= self.buf.len() {
            let at = self.offset(key, size);
            self.buf.slice(at..at + size)
        } else {
            // Longer than the buffer: the buffer repeated, starting at the key's offset.
            let start = self.offset(key, 1);
            let mut v = Vec::with_capacity(size);
            v.extend_from_slice(&self.buf[start..]);
            while v.len() < size {
                let take = (size - v.len()).min(self.buf.len());
                v.extend_from_slice(&self.buf[..take]);
            }
            v.truncate(size);
            v.into()
        }
    }

    /// Whether `got` is exactly what [`Values::value`] gives for `key` at `got`'s length.
    pub fn check(&self, key: u64, got: &[u8]) -> bool {
        let expected = self.value(key, u32::try_from(got.len()).unwrap_or(u32::MAX));
        expected[..] == got[..]
    }
}

fn wrong_bytes(target: &str, key: u64) -> anyhow::Error {
    anyhow::anyhow!("{target} returned wrong bytes for key {key}")
}

/// Our tiered cache (L1, and L2 unless disabled).
pub struct TieredTarget {
    cache: TieredCache,
    values: Values,
}

impl std::fmt::Debug for TieredTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TieredTarget")
            .field("cache", &self.cache)
            .finish_non_exhaustive()
    }
}

impl TieredTarget {
    /// Wraps `cache`; values come from `values`.
    pub fn new(cache: TieredCache, values: Values) -> Self {
        Self { cache, values }
    }

    /// The cache, for its stats.
    pub fn cache(&self) -> &TieredCache {
        &self.cache
    }
}

impl Target for TieredTarget {
    fn name(&self) -> &'static str {
        "tiered"
    }

    fn serve(&self, key: u64, size: u32) -> anyhow::Result<Outcome> {
        let k = key.to_le_bytes();
        if let Some(hit) = self.cache.get(NAMESPACE, &k)? {
            anyhow::ensure!(
                self.values.check(key, &hit.value),
                wrong_bytes("tiered", key)
            );
            return Ok(match hit.tier {
                Tier::L1 => Outcome::L1Hit,
                _ => Outcome::L2Hit,
            });
        }
        match self.cache.put(NAMESPACE, &k, self.values.value(key, size)) {
            Ok(()) => Ok(Outcome::Miss),
            Err(CoreError::L2(cache_l2_error)) if is_too_large(&cache_l2_error) => {
                Ok(Outcome::Uncacheable)
            }
            Err(CoreError::BlobTooLarge { .. }) => Ok(Outcome::Uncacheable),
            Err(e) => Err(e.into()),
        }
    }

    fn l1_usage(&self) -> Option<(u64, u64)> {
        let s = self.cache.stats().l1;
        Some((s.weight, s.capacity))
    }

    fn disk_io(&self) -> Option<DiskIo> {
        self.cache.stats().l2.map(|l2| DiskIo {
            read_bytes: l2.file_read_bytes,
            written_bytes: l2.file_written_bytes,
        })
    }
}

fn is_too_large(e: &cache_core::L2Error) -> bool {
    matches!(e, cache_core::L2Error::TooLarge { .. })
}

/// How the peers weigh an entry: as our L1 does, so that every cache of a run holds the same
/// budget to the same measure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EntryWeigher {
    by_bytes: bool,
}

impl EntryWeigher {
    /// Weights in bytes (`by_bytes`): namespace + key + value + [`L1_ENTRY_OVERHEAD`], the
    /// weight our L1 gives a trace entry; or 1 per entry (an entry budget).
    pub fn new(by_bytes: bool) -> Self {
        Self { by_bytes }
    }

    /// The weight of an entry whose value is `value_len` bytes, in bytes or entries.
    #[inline]
    pub fn weight(self, value_len: usize) -> u64 {
        if self.by_bytes {
            NAMESPACE.len() as u64 + KEY_LEN + value_len as u64 + L1_ENTRY_OVERHEAD
        } else {
            1
        }
    }
}

impl quick_cache::Weighter<u64, Bytes> for EntryWeigher {
    #[inline]
    fn weight(&self, _key: &u64, value: &Bytes) -> u64 {
        EntryWeigher::weight(*self, value.len())
    }
}

impl cache_l1::Weigher<u64, Bytes> for EntryWeigher {
    #[inline]
    fn weight(&self, _key: &u64, value: &Bytes) -> u64 {
        EntryWeigher::weight(*self, value.len())
    }
}

/// Our L1 alone (`cache_l1::ShardedSieve`), without the tiered cache around it: the cache
/// `cache-bench mrc` measures under the policy names `s3-fifo` and `sieve`.
pub struct L1Target {
    cache: cache_l1::ShardedSieve<u64, Bytes, EntryWeigher>,
    name: &'static str,
    values: Values,
}

impl std::fmt::Debug for L1Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("L1Target")
            .field("name", &self.name)
            .field("cache", &self.cache)
            .finish_non_exhaustive()
    }
}

impl L1Target {
    /// An L1 of `capacity` entries (`by_bytes == false`) or bytes weighed by [`EntryWeigher`],
    /// running `policy` (default: the engine's, S3-FIFO) in `shards` shards (default: the
    /// engine's shard count for the capacity), reported as `name`.
    ///
    /// # Errors
    ///
    /// The engine's, for a zero capacity or more shards than capacity.
    pub fn new(
        name: &'static str,
        capacity: u64,
        by_bytes: bool,
        policy: Option<cache_l1::Policy>,
        shards: Option<usize>,
        values: Values,
    ) -> anyhow::Result<Self> {
        let mut options = cache_l1::Options::new(capacity);
        if let Some(p) = policy {
            options = options.policy(p);
        }
        if let Some(n) = shards {
            options = options.shards(n);
        }
        let cache = options.build(EntryWeigher::new(by_bytes))?;
        Ok(Self {
            cache,
            name,
            values,
        })
    }

    /// The cache, for its stats.
    pub fn cache(&self) -> &cache_l1::ShardedSieve<u64, Bytes, EntryWeigher> {
        &self.cache
    }
}

impl Target for L1Target {
    fn name(&self) -> &'static str {
        self.name
    }

    fn serve(&self, key: u64, size: u32) -> anyhow::Result<Outcome> {
        if let Some(v) = self.cache.get(&key) {
            anyhow::ensure!(self.values.check(key, &v), wrong_bytes(self.name, key));
            return Ok(Outcome::L1Hit);
        }
        Ok(match self.cache.insert(key, self.values.value(key, size)) {
            Ok(_) => Outcome::Miss,
            Err(_) => Outcome::Uncacheable,
        })
    }

    fn l1_usage(&self) -> Option<(u64, u64)> {
        Some((self.cache.weight(), self.cache.capacity()))
    }
}

/// Our L2 alone (`cache_l2::Store`), without an L1 in front: every hit is a durable-tier hit,
/// every miss a put through its group commit.
pub struct L2Target {
    store: cache_l2::Store,
    values: Values,
}

impl std::fmt::Debug for L2Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("L2Target")
            .field("store", &self.store)
            .finish_non_exhaustive()
    }
}

impl L2Target {
    /// Opens a store with `options` (budget, compression, write mode, path), serving `values`.
    ///
    /// # Errors
    ///
    /// The store's: bad options, or a file it cannot open.
    pub fn open(options: &cache_l2::L2Options, values: Values) -> anyhow::Result<Self> {
        let store = cache_l2::Store::open(options)
            .with_context(|| format!("opening cache-l2 at {}", options.path.display()))?;
        Ok(Self { store, values })
    }
}

impl Target for L2Target {
    fn name(&self) -> &'static str {
        "cache-l2"
    }

    fn serve(&self, key: u64, size: u32) -> anyhow::Result<Outcome> {
        let k = key.to_le_bytes();
        if let Some(v) = self.store.get(NAMESPACE, &k)? {
            anyhow::ensure!(self.values.check(key, &v), wrong_bytes("cache-l2", key));
            return Ok(Outcome::L2Hit);
        }
        match self.store.put(NAMESPACE, &k, &self.values.value(key, size)) {
            Ok(_) => Ok(Outcome::Miss),
            Err(e) if is_too_large(&e) => Ok(Outcome::Uncacheable),
            Err(e) => Err(e.into()),
        }
    }

    fn disk_io(&self) -> Option<DiskIo> {
        let s = self.store.stats();
        Some(DiskIo {
            read_bytes: s.file_read_bytes,
            written_bytes: s.file_written_bytes,
        })
    }
}

/// `moka::sync::Cache` with the same budget and weigher as our L1.
pub struct MokaTarget {
    cache: moka::sync::Cache<u64, Bytes>,
    values: Values,
}

impl std::fmt::Debug for MokaTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MokaTarget").finish_non_exhaustive()
    }
}

impl MokaTarget {
    /// A moka cache of `capacity` entries (`by_bytes == false`) or bytes, weighing entries as
    /// our L1 does ([`EntryWeigher`]).
    pub fn new(capacity: u64, by_bytes: bool, values: Values) -> Self {
        let weigher = EntryWeigher::new(by_bytes);
        let cache = moka::sync::Cache::builder()
            .max_capacity(capacity)
            .weigher(move |_k: &u64, v: &Bytes| {
                u32::try_from(weigher.weight(v.len())).unwrap_or(u32::MAX)
            })
            .build();
        Self { cache, values }
    }
}

impl Target for MokaTarget {
    fn name(&self) -> &'static str {
        "moka"
    }

    fn serve(&self, key: u64, size: u32) -> anyhow::Result<Outcome> {
        if let Some(v) = self.cache.get(&key) {
            anyhow::ensure!(self.values.check(key, &v), wrong_bytes("moka", key));
            return Ok(Outcome::L1Hit);
        }
        self.cache.insert(key, self.values.value(key, size));
        Ok(Outcome::Miss)
    }

    fn l1_usage(&self) -> Option<(u64, u64)> {
        self.cache.run_pending_tasks();
        Some((
            self.cache.weighted_size(),
            self.cache.policy().max_capacity().unwrap_or(0),
        ))
    }
}

/// `quick_cache::sync::Cache` (S3-FIFO with CLOCK-Pro ideas) with the same budget and weigher as our
/// L1, and its default shard count.
pub struct QuickCacheTarget {
    cache: quick_cache::sync::Cache<u64, Bytes, EntryWeigher>,
    values: Values,
}

impl std::fmt::Debug for QuickCacheTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QuickCacheTarget")
            .field("cache", &self.cache)
            .finish_non_exhaustive()
    }
}

impl QuickCacheTarget {
    /// A `quick_cache` cache of `capacity` entries (`by_bytes == false`) or bytes, weighing
    /// entries as our L1 does ([`EntryWeigher`]). `quick_cache` also wants the number of entries
    /// it will hold (it sizes its tables and ghost history by it): `capacity` in entry mode, and
    /// in byte mode `capacity` over the weight of an entry of `typical_value_size` bytes.
    pub fn new(capacity: u64, by_bytes: bool, typical_value_size: u32, values: Values) -> Self {
        let weigher = EntryWeigher::new(by_bytes);
        let entries = (capacity / weigher.weight(typical_value_size as usize)).max(1);
        let cache = quick_cache::sync::Cache::with_weighter(
            usize::try_from(entries).unwrap_or(usize::MAX),
            capacity,
            weigher,
        );
        Self { cache, values }
    }
}

impl Target for QuickCacheTarget {
    fn name(&self) -> &'static str {
        "quick_cache"
    }

    fn serve(&self, key: u64, size: u32) -> anyhow::Result<Outcome> {
        if let Some(v) = self.cache.get(&key) {
            anyhow::ensure!(self.values.check(key, &v), wrong_bytes("quick_cache", key));
            return Ok(Outcome::L1Hit);
        }
        self.cache.insert(key, self.values.value(key, size));
        Ok(Outcome::Miss)
    }

    fn l1_usage(&self) -> Option<(u64, u64)> {
        Some((self.cache.weight(), self.cache.capacity()))
    }
}

/// An exact LRU baseline: one `lru::LruCache` behind a mutex, holding the sum of its entries'
/// weights ([`EntryWeigher`]) to the budget by dropping least recently used entries until a
/// new one fits.
pub struct LruTarget {
    state: parking_lot::Mutex<LruState>,
    capacity: u64,
    weigher: EntryWeigher,
    values: Values,
}

struct LruState {
    cache: lru::LruCache<u64, Bytes>,
    /// Sum of the resident entries' weights.
    weight: u64,
}

impl std::fmt::Debug for LruTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LruTarget")
            .field("capacity", &self.capacity)
            .field("weigher", &self.weigher)
            .finish_non_exhaustive()
    }
}

impl LruTarget {
    /// An LRU cache of `capacity` entries (`by_bytes == false`) or bytes.
    pub fn new(capacity: u64, by_bytes: bool, values: Values) -> Self {
        Self {
            state: parking_lot::Mutex::new(LruState {
                cache: lru::LruCache::unbounded(),
                weight: 0,
            }),
            capacity,
            weigher: EntryWeigher::new(by_bytes),
            values,
        }
    }
}

impl Target for LruTarget {
    fn name(&self) -> &'static str {
        "lru"
    }

    fn serve(&self, key: u64, size: u32) -> anyhow::Result<Outcome> {
        let mut state = self.state.lock();
        if let Some(v) = state.cache.get(&key) {
            let v = v.clone();
            drop(state);
            anyhow::ensure!(self.values.check(key, &v), wrong_bytes("lru", key));
            return Ok(Outcome::L1Hit);
        }
        let value = self.values.value(key, size);
        let weight = self.weigher.weight(value.len());
        if weight > self.capacity {
            return Ok(Outcome::Uncacheable);
        }
        while state.weight + weight > self.capacity {
            let (_, old) = state
                .cache
                .pop_lru()
                .expect("a positive resident weight means a resident entry");
            state.weight -= self.weigher.weight(old.len());
        }
        state.cache.put(key, value);
        state.weight += weight;
        Ok(Outcome::Miss)
    }

    fn l1_usage(&self) -> Option<(u64, u64)> {
        Some((self.state.lock().weight, self.capacity))
    }
}

/// The disk budget of a hybrid peer.
#[derive(Debug, Clone)]
pub struct DiskBudget {
    /// Bytes of disk the cache may use.
    pub max_bytes: u64,
    /// Directory its files go in.
    pub dir: std::path::PathBuf,
    /// Bytes of written entries it may hold in memory while they wait for the disk: the same
    /// allowance as our L2's group-commit queue (`queue_max_bytes`).
    pub write_buffer_bytes: u64,
}

/// foyer's hybrid cache (`foyer::HybridCache`, a memory cache over a block-structured disk
/// cache): the peer closest to our architecture.
///
/// Set up as ours is: the memory tier gets the L1 budget and weigher ([`EntryWeigher`]),
/// keeping foyer's default policy (LRU, 8 shards); the disk tier gets the L2 budget on a file
/// device in `dir` (buffered I/O, `pread`/`pwrite`), written on insertion
/// (`WriteOnInsertion`, as our write-through L2), with a write buffer and submit queue of
/// `write_buffer_bytes` each. Blocks are 16 MiB, or 1/16 of a smaller disk budget (at least
/// 64 KiB); an entry larger than a block is kept in memory only. foyer drops disk writes when
/// its buffers are full rather than wait, so under a write burst it may hold fewer entries
/// than its budget allows. A disk read runs on foyer's tokio runtime (2 worker threads),
/// which the serving thread blocks on; memory hits never leave the serving thread.
pub struct FoyerTarget {
    cache: foyer::HybridCache<u64, Bytes>,
    runtime: tokio::runtime::Runtime,
    values: Values,
}

impl std::fmt::Debug for FoyerTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FoyerTarget").finish_non_exhaustive()
    }
}

/// foyer's block size for a disk budget of `disk` bytes: 16 MiB, or 1/16 of a smaller budget
/// (4 KiB-aligned, at least 64 KiB).
fn foyer_block_size(disk: u64) -> usize {
    const MAX: u64 = 16 << 20;
    const MIN: u64 = 64 << 10;
    let block = (disk / 16).clamp(MIN, MAX) & !4095;
    usize::try_from(block).unwrap_or(16 << 20)
}

impl FoyerTarget {
    /// A hybrid cache with `capacity` bytes (`by_bytes`) or entries of memory and `disk` on
    /// disk.
    ///
    /// # Errors
    ///
    /// If the runtime cannot start or foyer cannot create its device or open.
    pub fn new(
        capacity: u64,
        by_bytes: bool,
        disk: &DiskBudget,
        values: Values,
    ) -> anyhow::Result<Self> {
        use foyer::{
            BlockEngineConfig, DeviceBuilder as _, FsDeviceBuilder, HybridCacheBuilder,
            HybridCachePolicy, PsyncIoEngineConfig, RecoverMode,
        };
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("foyer")
            .enable_all()
            .build()
            .context("starting foyer's tokio runtime")?;
        let weigher = EntryWeigher::new(by_bytes);
        let to_usize = |n: u64| usize::try_from(n).unwrap_or(usize::MAX);
        let buffer = to_usize(disk.write_buffer_bytes);
        let cache = runtime
            .block_on(async {
                let device = FsDeviceBuilder::new(&disk.dir)
                    .with_capacity(to_usize(disk.max_bytes))
                    .build()?;
                HybridCacheBuilder::new()
                    .with_name("cache-bench")
                    .with_policy(HybridCachePolicy::WriteOnInsertion)
                    .with_flush_on_close(false)
                    .memory(to_usize(capacity))
                    .with_weighter(move |_: &u64, v: &Bytes| to_usize(weigher.weight(v.len())))
                    .storage()
                    .with_io_engine_config(PsyncIoEngineConfig::new())
                    .with_engine_config(
                        BlockEngineConfig::new(device)
                            .with_block_size(foyer_block_size(disk.max_bytes))
                            .with_buffer_pool_size(buffer)
                            .with_submit_queue_size_threshold(buffer),
                    )
                    .with_recover_mode(RecoverMode::None)
                    .build()
                    .await
            })
            .context("opening foyer's hybrid cache")?;
        Ok(Self {
            cache,
            runtime,
            values,
        })
    }

    /// The value of `key` and whether it came from disk, or `None`. A memory hit completes on
    /// the calling thread; otherwise the thread blocks on foyer's runtime for the disk read.
    ///
    /// # Errors
    ///
    /// foyer's, for a failed disk read.
    pub fn lookup(&self, key: u64) -> anyhow::Result<Option<(Bytes, bool)>> {
        let entry = match self.cache.get(&key).try_unwrap() {
            Ok(entry) => Some(entry),
            Err(pending) => self.runtime.block_on(pending)?,
        };
        Ok(entry.map(|e| (e.value().clone(), e.source() == foyer::Source::Disk)))
    }

    /// Inserts `value` under `key` (into memory, and queued for the disk).
    pub fn insert(&self, key: u64, value: Bytes) {
        drop(self.cache.insert(key, value));
    }

    /// Weight held in the memory tier now, in its budget's unit: entries under an entry
    /// budget (as `load` sets it), bytes under a byte budget.
    pub fn memory_len(&self) -> u64 {
        self.cache.memory().usage() as u64
    }
}

impl Target for FoyerTarget {
    fn name(&self) -> &'static str {
        "foyer"
    }

    fn serve(&self, key: u64, size: u32) -> anyhow::Result<Outcome> {
        if let Some((value, disk)) = self.lookup(key)? {
            anyhow::ensure!(self.values.check(key, &value), wrong_bytes("foyer", key));
            return Ok(if disk { Outcome::L2Hit } else { Outcome::L1Hit });
        }
        self.insert(key, self.values.value(key, size));
        Ok(Outcome::Miss)
    }

    fn l1_usage(&self) -> Option<(u64, u64)> {
        let memory = self.cache.memory();
        Some((memory.usage() as u64, memory.capacity() as u64))
    }

    fn disk_io(&self) -> Option<DiskIo> {
        let s = self.cache.statistics();
        Some(DiskIo {
            read_bytes: s.disk_read_bytes() as u64,
            written_bytes: s.disk_write_bytes() as u64,
        })
    }
}

impl Drop for FoyerTarget {
    fn drop(&mut self) {
        // Stops foyer's flushers and reclaimers before the runtime they run on goes.
        if let Err(e) = self.runtime.block_on(self.cache.close()) {
            eprintln!("closing foyer: {e}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn foyer_blocks_are_a_sixteenth_of_small_disks_within_bounds() {
        assert_eq!(foyer_block_size(1 << 30), 16 << 20);
        assert_eq!(foyer_block_size(64 << 20), 4 << 20);
        assert_eq!(foyer_block_size(1 << 20), 64 << 10);
        assert_eq!(foyer_block_size((100 << 20) + 12_345) % 4096, 0);
    }

    #[test]
    fn values_are_checkable_and_differ_between_keys() {
        let values = Values::new(4096, 1);
        for (key, size) in [(1u64, 100u32), (2, 4096), (3, 0), (4, 10_000)] {
            let v = values.value(key, size);
            assert_eq!(v.len(), size as usize);
            assert!(values.check(key, &v));
        }
        let a = values.value(1, 100);
        assert!(!values.check(2, &a), "another key's bytes must not pass");
        let mut flipped = a.to_vec();
        flipped[50] ^= 1;
        assert!(!values.check(1, &flipped));
    }
}

//! Multi-threaded synthetic load on in-memory caches (`cache-bench load`), and their memory
//! per entry (`cache-bench mem`).
//!
//! Method of `load`:
//!
//! - Keys are `u64` ranks of a Zipf(`s`) distribution over `keys` keys (rank 1, the hottest, is
//!   key 0). Every thread gets its own sequence of `sequence_len` (default [`SEQUENCE_LEN`])
//!   keys and op kinds, drawn before any timing from a seeded RNG and cycled, so the RNG costs
//!   no target any time.
//! - Values are `Arc<[u8]>`, one allocation per key, made before timing; a cache holds clones.
//!   Each key's size is drawn once from the value-size distribution
//!   ([`crate::workload::ValueSizes`]: fixed, uniform or a trace's), and its bytes are the key
//!   (8 bytes, little-endian) then seeded bytes that compress to the chosen ratio
//!   ([`crate::workload::compressible_bytes`]; random by default). A hit clones the `Arc`
//!   (one atomic increment on that key's own counter, never on a counter shared by all keys)
//!   and checks the key stored in the value's first bytes.
//! - Warm-up (untimed): every thread replays its sequence with a get per op and an insert on a
//!   miss, pass after pass, until one pass's hit ratio is within [`WARM_TOLERANCE`] of the
//!   previous one (at least 2 passes, at most [`WARM_MAX_PASSES`]). The workload's new keys
//!   (YCSB D and E inserts) are never inserted by warm-up, so the timed part inserts them fresh.
//! - Timed: `threads` threads released together by a barrier run their ops: a read is a `get`
//!   (a miss inserts nothing), an insert (a `1 - read_ratio` share of ops) inserts its key.
//!   Throughput is all threads' ops over the wall time from the barrier to the last thread's
//!   end; the hit ratio is over the timed reads (each key a scan reads counts as one read).
//! - Workloads ([`Workload`]): the plain mix above, or the YCSB core workloads A-F (Cooper et
//!   al., "Benchmarking Cloud Serving Systems with YCSB", ACM Symposium on Cloud Computing
//!   2010) mapped onto a cache: a read is a `get`, an update inserts an existing key, an insert
//!   adds a key never seen before (each thread its own), a scan gets 1 to [`MAX_SCAN_LEN`]
//!   consecutive keys, and a read-modify-write is a `get` then an insert of the key. Keys are Zipf(`zipf`) ranks
//!   (YCSB's "zipfian"; `--zipf 0` is uniform), or for D the most recent inserts ("latest").
//! - Latency: one timed op in [`LATENCY_SAMPLE_EVERY`] is timed on its own (two clock reads,
//!   about 40 ns, as long as a hit) into a per-thread HDR histogram of nanoseconds (3
//!   significant digits); the report gives p50, p90, p99, p99.9 and the max of those ops over
//!   all threads. The sample is systematic (every 16th op), so it has every op kind's share.
//! - Targets run one after another in one process, each into a fresh cache; with several runs,
//!   every run measures every target in turn and the median run (by throughput) is reported.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use bytesize::ByteSize;
use clap::ValueEnum as _;
use hdrhistogram::Histogram;
use rand::rngs::StdRng;
use rand::{RngExt as _, SeedableRng as _};
use rand_distr::{Distribution as _, Zipf};
use serde::{Deserialize, Serialize};

use crate::replay::ratio;

use crate::adapter::{DiskIo, FoyerTarget};
use crate::report::{Machine, latency_histogram, record_since};

/// Keys (and op kinds) each thread draws before timing and then cycles through, by default:
/// 2^20.
pub const SEQUENCE_LEN: usize = 1 << 20;
/// Warm-up stops when a pass's hit ratio moves less than this (absolute) from the previous one.
pub const WARM_TOLERANCE: f64 = 0.002;
/// Warm-up passes at most.
pub const WARM_MAX_PASSES: usize = 10;

/// A value: its own allocation, shared by reference count.
pub type Value = Arc<[u8]>;

/// Every this many ops of a timed thread, one is timed for the latency histogram (the first,
/// the 17th, ...): a systematic sample, so the clock reads (about 40 ns a pair here, as long
/// as a cache hit) stay out of all but one op in 16.
pub const LATENCY_SAMPLE_EVERY: u64 = 16;

/// Longest scan of YCSB E, in keys; each scan's length is uniform in `1..=MAX_SCAN_LEN`.
pub const MAX_SCAN_LEN: u16 = 100;

/// The mix of operations of a `load` run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Workload {
    /// Reads (a `read_ratio` share; a miss inserts nothing) and inserts of Zipf keys. The default.
    #[default]
    Mix,
    /// YCSB A, update heavy: 50% reads, 50% updates.
    YcsbA,
    /// YCSB B, read mostly: 95% reads, 5% updates.
    YcsbB,
    /// YCSB C, read only.
    YcsbC,
    /// YCSB D, read latest: 95% reads skewed to the newest keys, 5% inserts of new keys.
    YcsbD,
    /// YCSB E, short ranges: 95% scans of 1 to [`MAX_SCAN_LEN`] keys, 5% inserts of new keys.
    YcsbE,
    /// YCSB F, read-modify-write: 50% reads, 50% read-then-update.
    YcsbF,
}

impl Workload {
    /// `(read, update, insert, scan)` shares; the rest is read-modify-write.
    fn shares(self, read_ratio: f64) -> [f64; 4] {
        match self {
            Self::Mix => [read_ratio, 1.0 - read_ratio, 0.0, 0.0],
            Self::YcsbA => [0.5, 0.5, 0.0, 0.0],
            Self::YcsbB => [0.95, 0.05, 0.0, 0.0],
            Self::YcsbC => [1.0, 0.0, 0.0, 0.0],
            Self::YcsbD => [0.95, 0.0, 0.05, 0.0],
            Self::YcsbE => [0.0, 0.0, 0.05, 0.95],
            Self::YcsbF => [0.5, 0.0, 0.0, 0.0],
        }
    }
}

/// One pre-drawn operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Read,
    /// An insert of a key that exists (an update) or of a new key.
    Write,
    /// Gets of this many consecutive keys.
    Scan(u16),
    ReadModifyWrite,
}

/// A cache `load` and `mem` measure, each built with its crate's defaults for an entry budget.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, clap::ValueEnum)]
pub enum LoadTarget {
    /// Our L1: `cache_l1::Options::new(capacity).build(UnitWeigher)`, default policy (S3-FIFO)
    /// and default shard count.
    #[value(name = "cache-l1")]
    CacheL1,
    /// `moka::sync::Cache::new(capacity)`.
    #[value(name = "moka")]
    Moka,
    /// `quick_cache::sync::Cache::new(capacity)`.
    #[value(name = "quick_cache")]
    QuickCache,
    /// Our tiered cache (`cache_core::TieredCache`): an L1 of `capacity` entries over an L2 of
    /// the disk budget, L2 hits promoted inline; the engine's defaults otherwise.
    #[value(name = "tiered")]
    Tiered,
    /// As `tiered`, with L2 hits promoted by the async pool.
    #[value(name = "tiered-async")]
    TieredAsync,
    /// Our L2 alone (`cache_l2::Store`) with the disk budget, the engine's defaults otherwise.
    #[value(name = "cache-l2")]
    CacheL2,
    /// foyer's hybrid cache ([`crate::adapter::FoyerTarget`]): `capacity` entries in memory
    /// over the disk budget.
    #[value(name = "foyer")]
    Foyer,
}

impl LoadTarget {
    /// The in-memory targets, in report order: what `mem` measures.
    pub const ALL: [Self; 3] = [Self::CacheL1, Self::Moka, Self::QuickCache];

    /// The name in reports and JSON: `cache-l1`, `moka`, `quick_cache`, `tiered`,
    /// `tiered-async`, `cache-l2`, `foyer`.
    pub fn name(self) -> &'static str {
        match self {
            Self::CacheL1 => "cache-l1",
            Self::Moka => "moka",
            Self::QuickCache => "quick_cache",
            Self::Tiered => "tiered",
            Self::TieredAsync => "tiered-async",
            Self::CacheL2 => "cache-l2",
            Self::Foyer => "foyer",
        }
    }

    /// Whether the target keeps entries on disk (and needs the disk budget).
    pub fn uses_disk(self) -> bool {
        matches!(
            self,
            Self::Tiered | Self::TieredAsync | Self::CacheL2 | Self::Foyer
        )
    }
}

/// What a get found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Got {
    Miss,
    /// A hit from memory (`disk == false`) or disk, whose value is (`valid`) or is not the
    /// key's.
    Hit {
        disk: bool,
        valid: bool,
    },
    /// The cache returned an error.
    Failed,
}

impl Got {
    #[inline]
    fn memory(key: u64, v: Option<&[u8]>) -> Self {
        v.map_or(Self::Miss, |v| Self::Hit {
            disk: false,
            valid: valid(key, v),
        })
    }
}

/// The operations `load` needs from a concurrent cache.
trait LoadCache: Sync {
    fn get(&self, key: u64) -> Got;
    fn insert(&self, key: u64, value: Value);
    /// Entries resident now (in memory, for tiered caches).
    fn len(&self) -> u64;
    /// Shards, if the cache has and tells them.
    fn shards(&self) -> Option<usize>;
    /// Bytes read from and written to disk so far, for caches with a disk tier.
    fn disk_io(&self) -> Option<DiskIo> {
        None
    }
    /// Waits for queued background work (disk writes, promotions) before a timed phase.
    fn settle(&self) {}
}

impl LoadCache for cache_l1::ShardedSieve<u64, Value> {
    #[inline]
    fn get(&self, key: u64) -> Got {
        Got::memory(key, cache_l1::ShardedSieve::get(self, &key).as_deref())
    }
    #[inline]
    fn insert(&self, key: u64, value: Value) {
        // An entry weighs 1, so nothing is rejected; evicted entries are dropped here.
        let _ = cache_l1::ShardedSieve::insert(self, key, value);
    }
    fn len(&self) -> u64 {
        cache_l1::ShardedSieve::len(self) as u64
    }
    fn shards(&self) -> Option<usize> {
        Some(self.shard_count())
    }
}

impl LoadCache for moka::sync::Cache<u64, Value> {
    #[inline]
    fn get(&self, key: u64) -> Got {
        Got::memory(key, moka::sync::Cache::get(self, &key).as_deref())
    }
    #[inline]
    fn insert(&self, key: u64, value: Value) {
        moka::sync::Cache::insert(self, key, value);
    }
    fn len(&self) -> u64 {
        self.run_pending_tasks();
        self.entry_count()
    }
    fn shards(&self) -> Option<usize> {
        None
    }
}

impl LoadCache for quick_cache::sync::Cache<u64, Value> {
    #[inline]
    fn get(&self, key: u64) -> Got {
        Got::memory(key, quick_cache::sync::Cache::get(self, &key).as_deref())
    }
    #[inline]
    fn insert(&self, key: u64, value: Value) {
        quick_cache::sync::Cache::insert(self, key, value);
    }
    fn len(&self) -> u64 {
        quick_cache::sync::Cache::len(self) as u64
    }
    fn shards(&self) -> Option<usize> {
        Some(self.num_shards())
    }
}

/// A value as the byte-oriented caches take it: the same allocation, no copy.
#[inline]
fn as_bytes(value: Value) -> bytes::Bytes {
    bytes::Bytes::from_owner(value)
}

impl LoadCache for cache_core::TieredCache {
    #[inline]
    fn get(&self, key: u64) -> Got {
        match cache_core::TieredCache::get(self, NAMESPACE, &key.to_le_bytes()) {
            Ok(Some(hit)) => Got::Hit {
                disk: hit.tier != cache_core::Tier::L1,
                valid: valid(key, &hit.value),
            },
            Ok(None) => Got::Miss,
            Err(_) => Got::Failed,
        }
    }
    #[inline]
    fn insert(&self, key: u64, value: Value) {
        // A failed put leaves the key absent, which later gets count as misses.
        let _ = self.put(NAMESPACE, &key.to_le_bytes(), as_bytes(value));
    }
    fn len(&self) -> u64 {
        self.stats().l1.len
    }
    fn shards(&self) -> Option<usize> {
        Some(self.stats().l1.shards)
    }
    fn disk_io(&self) -> Option<DiskIo> {
        self.stats().l2.map(|l2| DiskIo {
            read_bytes: l2.file_read_bytes,
            written_bytes: l2.file_written_bytes,
        })
    }
    fn settle(&self) {
        let _ = self.flush();
    }
}

impl LoadCache for cache_l2::Store {
    #[inline]
    fn get(&self, key: u64) -> Got {
        match cache_l2::Store::get(self, NAMESPACE, &key.to_le_bytes()) {
            Ok(Some(v)) => Got::Hit {
                disk: true,
                valid: valid(key, &v),
            },
            Ok(None) => Got::Miss,
            Err(_) => Got::Failed,
        }
    }
    #[inline]
    fn insert(&self, key: u64, value: Value) {
        let _ = self.put(NAMESPACE, &key.to_le_bytes(), &value);
    }
    fn len(&self) -> u64 {
        let _ = self.flush();
        self.stats().insertions
    }
    fn shards(&self) -> Option<usize> {
        None
    }
    fn disk_io(&self) -> Option<DiskIo> {
        let s = self.stats();
        Some(DiskIo {
            read_bytes: s.file_read_bytes,
            written_bytes: s.file_written_bytes,
        })
    }
    fn settle(&self) {
        let _ = self.flush();
    }
}

impl LoadCache for FoyerTarget {
    #[inline]
    fn get(&self, key: u64) -> Got {
        match self.lookup(key) {
            Ok(Some((v, disk))) => Got::Hit {
                disk,
                valid: valid(key, &v),
            },
            Ok(None) => Got::Miss,
            Err(_) => Got::Failed,
        }
    }
    #[inline]
    fn insert(&self, key: u64, value: Value) {
        FoyerTarget::insert(self, key, as_bytes(value));
    }
    fn len(&self) -> u64 {
        self.memory_len()
    }
    fn shards(&self) -> Option<usize> {
        None
    }
    fn disk_io(&self) -> Option<DiskIo> {
        crate::adapter::Target::disk_io(self)
    }
}

/// The namespace `load`'s keys live in, in the caches that have namespaces.
const NAMESPACE: &str = "load";

fn build_l1(
    capacity: u64,
    shards: Option<usize>,
) -> anyhow::Result<cache_l1::ShardedSieve<u64, Value>> {
    let mut options = cache_l1::Options::new(capacity);
    if let Some(n) = shards {
        options = options.shards(n);
    }
    Ok(options.build(cache_l1::UnitWeigher)?)
}

fn build_moka(capacity: u64) -> moka::sync::Cache<u64, Value> {
    moka::sync::Cache::new(capacity)
}

fn build_quick_cache(
    capacity: u64,
    shards: Option<usize>,
) -> anyhow::Result<quick_cache::sync::Cache<u64, Value>> {
    let items = usize::try_from(capacity).unwrap_or(usize::MAX);
    let Some(n) = shards else {
        return Ok(quick_cache::sync::Cache::new(items));
    };
    // What `Cache::new(items)` sets, plus the shard count.
    let options = quick_cache::OptionsBuilder::new()
        .estimated_items_capacity(items)
        .weight_capacity(capacity)
        .shards(n)
        .build()
        .map_err(|e| anyhow::anyhow!("quick_cache options: {e:?}"))?;
    Ok(quick_cache::sync::Cache::with_options(
        options,
        quick_cache::UnitWeighter,
        quick_cache::DefaultHashBuilder::default(),
        quick_cache::sync::DefaultLifecycle::default(),
    ))
}

/// How long each thread runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Length {
    /// This many ops per thread.
    Ops(u64),
    /// Until this much wall time has passed.
    Duration(Duration),
}

/// One `cache-bench load` run.
#[derive(Debug, Clone)]
pub struct LoadSpec {
    /// The caches, measured in this order. Default: all of [`LoadTarget::ALL`].
    pub targets: Vec<LoadTarget>,
    /// Threads running ops at once. Default 2.
    pub threads: usize,
    /// Distinct keys of the Zipf distribution. Default 1,000,000.
    pub keys: u64,
    /// Zipf skew (0 = uniform). Default 0.99.
    pub zipf: f64,
    /// Cache capacity in entries. Default 100,000.
    pub capacity: u64,
    /// Shard count of `cache-l1` and `quick_cache` (moka has no such knob), to compare them at
    /// equal shard counts. Default `None`: each cache picks its own.
    pub shards: Option<usize>,
    /// The mix of operations. Default [`Workload::Mix`].
    pub workload: Workload,
    /// Share of ops that are gets, in [0, 1], under [`Workload::Mix`]; the rest are inserts.
    /// Default 1.0.
    pub read_ratio: f64,
    /// The values: each key's size (at least 8 bytes, as values start with their key; a
    /// trace's smaller sizes count as 8), how well the bytes compress, and the seed. Default:
    /// 100 bytes, random.
    pub values: crate::workload::ValueSpec,
    /// When a put into our L2 (targets `tiered`, `tiered-async`, `cache-l2`) returns. Default
    /// `Sync`, the engine's.
    pub write_mode: cache_l2::WriteMode,
    /// Ops per thread, or a wall time. Default 10,000,000 ops.
    pub length: Length,
    /// Runs; the median is reported. Default 1.
    pub runs: usize,
    /// Disk budget of the targets with a disk tier (`tiered`, `cache-l2`, `foyer`), in bytes.
    /// Default 1 GiB.
    pub l2_max_bytes: u64,
    /// Directory their files go in (a fresh subdirectory per target, removed afterwards).
    /// Default: the system's temporary directory.
    pub dir: Option<std::path::PathBuf>,
    /// RNG seed of the key sequences. Default 42.
    pub seed: u64,
    /// Keys each thread draws before timing and cycles through; a power of two. Default
    /// [`SEQUENCE_LEN`]. Each warm-up pass runs one sequence per thread.
    pub sequence_len: usize,
    /// The command line, recorded in the report.
    pub command: String,
}

/// The setup a load report was made with.
#[derive(Debug, Clone, Serialize)]
pub struct LoadSetup {
    /// `"l1"`: the in-memory caches.
    pub cache: &'static str,
    /// Threads.
    pub threads: usize,
    /// Distinct keys.
    pub keys: u64,
    /// Zipf skew.
    pub zipf: f64,
    /// Capacity in entries (of the memory tier, for caches with a disk tier).
    pub capacity: u64,
    /// Disk budget of the caches with a disk tier, in bytes.
    pub l2_max_bytes: u64,
    /// Shard count forced on `cache-l1` and `quick_cache`, if any.
    pub shards: Option<usize>,
    /// The mix of operations.
    pub workload: Workload,
    /// Share of ops that are gets (under the `mix` workload).
    pub read_ratio: f64,
    /// The values: sizes, compressibility, seed.
    pub values: crate::workload::ValueReport,
    /// When a put into our L2 returned: `"sync"` or `"async"`.
    pub write_mode: cache_l2::WriteMode,
    /// Ops per thread, if the length was a count.
    pub ops_per_thread: Option<u64>,
    /// Seconds per run, if the length was a duration.
    pub duration_s: Option<f64>,
    /// Runs.
    pub runs: usize,
    /// Seed.
    pub seed: u64,
    /// Keys each thread draws and cycles through.
    pub sequence_len: usize,
}

/// One target in one run.
#[derive(Debug, Clone, Serialize)]
pub struct LoadRun {
    /// Millions of ops per second, all threads together.
    pub mops: f64,
    /// Hits over timed reads (0 if there were none).
    pub hit_ratio: f64,
    /// Hits served from memory over timed reads (all hits of a memory-only cache).
    pub l1_hit_ratio: f64,
    /// Hits served from disk over timed reads.
    pub l2_hit_ratio: f64,
    /// Ops timed, all threads.
    pub ops: u64,
    /// Timed reads, all threads.
    pub reads: u64,
    /// Wall time of the timed part, seconds.
    pub elapsed_s: f64,
    /// Warm-up passes.
    pub warmup_passes: usize,
    /// Hit ratio of the last warm-up pass.
    pub warmup_hit_ratio: f64,
    /// Entries resident after warm-up.
    pub warm_len: u64,
    /// Shards, if the cache tells.
    pub shards: Option<usize>,
    /// Latency of the timed ops, all threads.
    pub latency_ns: Latency,
    /// Bytes the cache read from and wrote to disk during the timed part (caches with a disk
    /// tier).
    pub disk: Option<DiskIo>,
    /// Peak resident memory of the process from building this cache to the end of its timed
    /// part (`VmHWM` after resetting it), in bytes; `None` where Linux does not let it reset.
    /// Memory freed by earlier targets may still count.
    pub peak_rss_bytes: Option<u64>,
    /// The timed ops' latency histogram, in nanoseconds (not serialized; the report keeps
    /// its CDF).
    #[serde(skip)]
    pub latency_histogram: Histogram<u64>,
}

/// Latency percentiles of one run's ops, in nanoseconds.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Latency {
    /// Median.
    pub p50: u64,
    /// 90th percentile.
    pub p90: u64,
    /// 99th percentile.
    pub p99: u64,
    /// 99.9th percentile.
    pub p999: u64,
    /// Slowest op.
    pub max: u64,
}

impl Latency {
    fn of(h: &Histogram<u64>) -> Self {
        Self {
            p50: h.value_at_quantile(0.5),
            p90: h.value_at_quantile(0.9),
            p99: h.value_at_quantile(0.99),
            p999: h.value_at_quantile(0.999),
            max: h.max(),
        }
    }
}

/// A target's reported figures: those of its median run.
#[derive(Debug, Clone, Serialize)]
pub struct LoadFigure {
    /// Millions of ops per second in the median run.
    pub mops: f64,
    /// Hit ratio of the timed reads in the median run.
    pub hit_ratio: f64,
    /// Throughput of every run, in run order.
    pub mops_runs: Vec<f64>,
    /// Op latency in the median run.
    pub latency_ns: Latency,
    /// Hits from memory over timed reads, in the median run.
    pub l1_hit_ratio: f64,
    /// Hits from disk over timed reads, in the median run.
    pub l2_hit_ratio: f64,
    /// Disk bytes read and written in the median run's timed part.
    pub disk: Option<DiskIo>,
    /// Peak resident memory in the median run, in bytes.
    pub peak_rss_bytes: Option<u64>,
    /// The median run's op latency CDF: `[quantile, microseconds]` pairs.
    pub latency_cdf_us: Vec<[f64; 2]>,
}

/// Everything a `load` run measured; serialized as its `--json` output.
#[derive(Debug, Clone, Serialize)]
pub struct LoadReport {
    /// The command line that made it.
    pub command: String,
    /// The machine.
    pub machine: Machine,
    /// The setup.
    pub setup: LoadSetup,
    /// Every run: each target's figures, by name.
    pub runs: Vec<BTreeMap<String, LoadRun>>,
    /// Each target's median run, by name (`cache-l1`, `moka`, `quick_cache`).
    pub targets: BTreeMap<String, LoadFigure>,
    /// Throughput ratios of the medians: `cache-l1/quick_cache`, `cache-l1/moka`,
    /// `tiered/foyer`, `tiered-async/foyer`, for the targets measured.
    pub ratios: BTreeMap<String, f64>,
    /// Throughput and latency by thread count, one point per `--threads` value in order (the
    /// figures above are those of the last): what the throughput-vs-threads plot draws.
    pub scaling: Vec<ScalingPoint>,
}

/// The targets' figures at one thread count.
#[derive(Debug, Clone, Serialize)]
pub struct ScalingPoint {
    /// Threads.
    pub threads: usize,
    /// Each target's median run at this count, by name.
    pub targets: BTreeMap<String, ScalingFigure>,
}

/// A target's throughput and latency at one thread count.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct ScalingFigure {
    /// Millions of ops per second.
    pub mops: f64,
    /// Hit ratio of the timed reads.
    pub hit_ratio: f64,
    /// 99th-percentile op latency, in nanoseconds.
    pub p99_ns: u64,
}

impl ScalingPoint {
    fn of(threads: usize, targets: &BTreeMap<String, LoadFigure>) -> Self {
        Self {
            threads,
            targets: targets
                .iter()
                .map(|(name, f)| {
                    let figure = ScalingFigure {
                        mops: f.mops,
                        hit_ratio: f.hit_ratio,
                        p99_ns: f.latency_ns.p99,
                    };
                    (name.clone(), figure)
                })
                .collect(),
        }
    }
}

/// Runs `spec` at each of `threads` in turn (each a full [`load`]), and reports the last
/// count's figures with every count's in [`LoadReport::scaling`]. `progress` gets each
/// (threads, run, target) as it finishes.
///
/// # Errors
///
/// As [`load`]; also if `threads` is empty.
pub fn load_scaling(
    spec: &LoadSpec,
    threads: &[usize],
    mut progress: impl FnMut(usize, usize, &str, &LoadRun),
) -> anyhow::Result<LoadReport> {
    let mut scaling = Vec::with_capacity(threads.len());
    let mut last = None;
    for &t in threads {
        let spec = LoadSpec {
            threads: t,
            ..spec.clone()
        };
        let report = load(&spec, |run, name, r| progress(t, run, name, r))?;
        scaling.extend(report.scaling.iter().cloned());
        last = Some(report);
    }
    let mut report = last.context("no thread count given")?;
    report.scaling = scaling;
    Ok(report)
}

/// One thread's pre-drawn ops.
struct Sequence {
    keys: Vec<u64>,
    ops: Vec<Op>,
}

/// Draws each thread's sequence: op kinds by the workload's shares, keys by Zipf rank (key 0 is
/// the hottest). Thread `t`'s `j`-th insert of a new key is `keys + j * threads + t`; YCSB D
/// reads the key that many ranks below the thread's newest.
fn sequences(spec: &LoadSpec) -> anyhow::Result<Vec<Sequence>> {
    #[expect(clippy::cast_precision_loss, reason = "key counts far below 2^53")]
    let zipf = Zipf::new(spec.keys as f64, spec.zipf).map_err(|e| {
        anyhow::anyhow!(
            "bad Zipf parameters (keys {}, s {}): {e}",
            spec.keys,
            spec.zipf
        )
    })?;
    let [read, update, insert, scan] = spec.workload.shares(spec.read_ratio);
    let threads = spec.threads as u64;
    Ok((0..threads)
        .map(|t| {
            let mut rng = StdRng::seed_from_u64(spec.seed.wrapping_add(t));
            let mut keys = Vec::with_capacity(spec.sequence_len);
            let mut ops = Vec::with_capacity(spec.sequence_len);
            let mut inserted = 0u64;
            for _ in 0..spec.sequence_len {
                #[expect(
                    clippy::cast_possible_truncation,
                    clippy::cast_sign_loss,
                    reason = "Zipf samples are integers in 1..=keys"
                )]
                let rank = zipf.sample(&mut rng) as u64 - 1;
                let x: f64 = if spec.workload == Workload::Mix && read >= 1.0 {
                    0.0
                } else {
                    rng.random()
                };
                let (op, key) = if x < read {
                    let key = if spec.workload == Workload::YcsbD {
                        // The newest key this thread knows, less the Zipf rank.
                        let newest = if inserted == 0 {
                            spec.keys - 1
                        } else {
                            spec.keys + (inserted - 1) * threads + t
                        };
                        newest.saturating_sub(rank)
                    } else {
                        rank
                    };
                    (Op::Read, key)
                } else if x < read + update {
                    (Op::Write, rank)
                } else if x < read + update + insert {
                    inserted += 1;
                    (Op::Write, spec.keys + (inserted - 1) * threads + t)
                } else if x < read + update + insert + scan {
                    (Op::Scan(rng.random_range(1..=MAX_SCAN_LEN)), rank)
                } else {
                    (Op::ReadModifyWrite, rank)
                };
                keys.push(key);
                ops.push(op);
            }
            Sequence { keys, ops }
        })
        .collect())
}

/// Keys a run can touch: the Zipf keys, the inserted ones, and scans running past either.
fn key_space(spec: &LoadSpec, seqs: &[Sequence]) -> u64 {
    let top = seqs
        .iter()
        .flat_map(|s| s.keys.iter().zip(&s.ops))
        .map(|(&k, op)| match op {
            Op::Scan(n) => k + u64::from(*n),
            _ => k + 1,
        })
        .max()
        .unwrap_or(0);
    top.max(spec.keys)
}

/// Every key's value, each its own allocation: the key (8 bytes), then bytes of `spec`'s
/// compressibility, `spec.size_of(key)` bytes in all (at least 8).
///
/// # Errors
///
/// If the values would take more memory than the machine has available.
fn values(keys: u64, spec: &crate::workload::ValueSpec) -> anyhow::Result<Vec<Value>> {
    let size = |k: u64| (spec.size_of(k) as usize).max(8);
    #[expect(
        clippy::cast_precision_loss,
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        reason = "an estimate of bytes"
    )]
    let expected = (keys as f64 * spec.sizes.mean().max(8.0)) as u64;
    if let Ok(available) = crate::report::meminfo_bytes("MemAvailable") {
        anyhow::ensure!(
            expected <= available,
            "the values of {keys} keys (about {}) take more than the {} of memory available: \
             lower --keys or --value-size",
            ByteSize(expected),
            ByteSize(available)
        );
    }
    let longest = (spec.sizes.max() as usize).clamp(8, 64 << 20);
    let tails = crate::adapter::Values::compressible(
        longest + (1 << 20),
        spec.seed,
        spec.compression_ratio,
    );
    Ok((0..keys)
        .map(|k| {
            let len = size(k);
            let mut v = Vec::with_capacity(len);
            v.extend_from_slice(&k.to_le_bytes());
            v.extend_from_slice(&tails.value(k, u32::try_from(len - 8).unwrap_or(u32::MAX)));
            Value::from(v)
        })
        .collect())
}

/// Whether `v` is the value of `key`.
#[inline]
fn valid(key: u64, v: &[u8]) -> bool {
    v.get(..8) == Some(&key.to_le_bytes()[..])
}

/// A thread of a run panicked (inside a cache under test): an error for that target, not a
/// panic of the whole bench.
fn thread_panicked(what: &str) -> anyhow::Error {
    anyhow::anyhow!("a {what} thread panicked inside the cache (its message is above)")
}

/// One warm-up pass over every thread's sequence, in parallel: a get per op (but writes), an
/// insert on a miss, except of keys at or above `fresh_from`: those are the workload's new keys
/// (YCSB D and E inserts), which the timed part must insert fresh, as YCSB does, and not find
/// there already (to a disk tier, replacing a record costs a durable commit that a fresh insert
/// may not). Returns `(hits, gets, wrong values or failed gets)`.
///
/// # Errors
///
/// If a thread panicked.
fn warm_pass<C: LoadCache>(
    cache: &C,
    seqs: &[Sequence],
    values: &[Value],
    fresh_from: u64,
) -> anyhow::Result<(u64, u64, u64)> {
    std::thread::scope(|s| {
        let handles: Vec<_> = seqs
            .iter()
            .map(|seq| {
                s.spawn(move || {
                    let (mut hits, mut wrong, mut gets) = (0u64, 0u64, 0u64);
                    for (&key, &op) in seq.keys.iter().zip(&seq.ops) {
                        if op == Op::Write {
                            continue;
                        }
                        gets += 1;
                        match cache.get(key) {
                            Got::Hit { valid, .. } => {
                                hits += 1;
                                wrong += u64::from(!valid);
                            }
                            Got::Miss if key < fresh_from => {
                                cache.insert(key, Arc::clone(&values[index(key)]));
                            }
                            Got::Miss => {}
                            Got::Failed => wrong += 1,
                        }
                    }
                    (hits, gets, wrong)
                })
            })
            .collect();
        // Every thread is joined before any error returns: the scope panics on a panicked
        // thread left unjoined.
        let joined: Vec<_> = handles
            .into_iter()
            .map(std::thread::ScopedJoinHandle::join)
            .collect();
        joined.into_iter().try_fold((0, 0, 0), |a, b| {
            let b = b.map_err(|_| thread_panicked("warm-up"))?;
            Ok((a.0 + b.0, a.1 + b.1, a.2 + b.2))
        })
    })
}

#[inline]
fn index(key: u64) -> usize {
    usize::try_from(key).unwrap_or(usize::MAX)
}

/// What one timed thread did.
struct ThreadCount {
    ops: u64,
    reads: u64,
    hits: u64,
    /// Of `hits`, those served from disk.
    disk_hits: u64,
    /// Hits with another key's value, and failed gets.
    wrong: u64,
    latency: Histogram<u64>,
}

/// A get of `key` that counts the read, the hit and its tier, and a value of another key or a
/// failure.
#[inline]
fn read<C: LoadCache>(cache: &C, key: u64, c: &mut ThreadCount) {
    c.reads += 1;
    match cache.get(key) {
        Got::Hit { disk, valid } => {
            c.hits += 1;
            c.disk_hits += u64::from(disk);
            c.wrong += u64::from(!valid);
        }
        Got::Miss => {}
        Got::Failed => c.wrong += 1,
    }
}

/// One op of a timed thread.
#[inline]
fn run_op<C: LoadCache>(cache: &C, key: u64, op: Op, values: &[Value], c: &mut ThreadCount) {
    match op {
        Op::Read => read(cache, key, c),
        Op::Write => cache.insert(key, Arc::clone(&values[index(key)])),
        Op::Scan(n) => {
            for k in key..key + u64::from(n) {
                read(cache, k, c);
            }
        }
        Op::ReadModifyWrite => {
            read(cache, key, c);
            cache.insert(key, Arc::clone(&values[index(key)]));
        }
    }
}

/// One thread's timed loop.
#[inline(never)]
fn timed_thread<C: LoadCache>(
    cache: &C,
    seq: &Sequence,
    values: &[Value],
    length: Length,
    stop: &AtomicBool,
) -> ThreadCount {
    const CHECK_EVERY: u64 = 1 << 12;
    let limit = match length {
        Length::Ops(n) => n,
        Length::Duration(_) => u64::MAX,
    };
    let mask = seq.keys.len() - 1;
    let mut c = ThreadCount {
        ops: 0,
        reads: 0,
        hits: 0,
        disk_hits: 0,
        wrong: 0,
        latency: latency_histogram(),
    };
    let mut i = 0usize;
    while c.ops < limit {
        let (key, op) = (seq.keys[i & mask], seq.ops[i & mask]);
        if c.ops.is_multiple_of(LATENCY_SAMPLE_EVERY) {
            let start = Instant::now();
            run_op(cache, key, op, values, &mut c);
            record_since(&mut c.latency, start);
        } else {
            run_op(cache, key, op, values, &mut c);
        }
        c.ops += 1;
        i += 1;
        if c.ops.is_multiple_of(CHECK_EVERY) && stop.load(Ordering::Relaxed) {
            break;
        }
    }
    c
}

/// Warms a fresh `cache` and times `spec.threads` threads on it.
fn measure<C: LoadCache>(
    cache: &C,
    spec: &LoadSpec,
    seqs: &[Sequence],
    values: &[Value],
) -> anyhow::Result<LoadRun> {
    let mut passes = 0;
    let mut last = -1.0;
    let mut warm_hit_ratio;
    loop {
        let (hits, gets, wrong) = warm_pass(cache, seqs, values, spec.keys)?;
        anyhow::ensure!(
            wrong == 0,
            "{wrong} gets returned another key's value or failed"
        );
        passes += 1;
        warm_hit_ratio = ratio(hits, gets);
        if (passes >= 2 && (warm_hit_ratio - last).abs() < WARM_TOLERANCE)
            || passes >= WARM_MAX_PASSES
        {
            break;
        }
        last = warm_hit_ratio;
    }
    let warm_len = cache.len();
    cache.settle();
    let disk_before = cache.disk_io();

    let stop = AtomicBool::new(false);
    let barrier = Barrier::new(spec.threads + 1);
    let (counts, elapsed) = std::thread::scope(|s| {
        let handles: Vec<_> = seqs
            .iter()
            .map(|seq| {
                let (stop, barrier) = (&stop, &barrier);
                s.spawn(move || {
                    barrier.wait();
                    timed_thread(cache, seq, values, spec.length, stop)
                })
            })
            .collect();
        barrier.wait();
        let start = Instant::now();
        if let Length::Duration(d) = spec.length {
            std::thread::sleep(d);
            stop.store(true, Ordering::Relaxed);
        }
        let joined: Vec<_> = handles
            .into_iter()
            .map(std::thread::ScopedJoinHandle::join)
            .collect();
        let elapsed = start.elapsed();
        joined
            .into_iter()
            .map(|c| c.map_err(|_| thread_panicked("load")))
            .collect::<anyhow::Result<Vec<ThreadCount>>>()
            .map(|c| (c, elapsed))
    })?;
    let sum = |f: fn(&ThreadCount) -> u64| counts.iter().map(f).sum::<u64>();
    let (ops, reads, hits, disk_hits, wrong) = (
        sum(|c| c.ops),
        sum(|c| c.reads),
        sum(|c| c.hits),
        sum(|c| c.disk_hits),
        sum(|c| c.wrong),
    );
    anyhow::ensure!(
        wrong == 0,
        "{wrong} gets returned another key's value or failed"
    );
    let disk = cache
        .disk_io()
        .zip(disk_before)
        .map(|(after, before)| DiskIo {
            read_bytes: after.read_bytes - before.read_bytes,
            written_bytes: after.written_bytes - before.written_bytes,
        });
    let mut latency = latency_histogram();
    for c in &counts {
        latency
            .add(&c.latency)
            .context("merging latency histograms")?;
    }
    #[expect(clippy::cast_precision_loss, reason = "a rate")]
    let mops = ops as f64 / elapsed.as_secs_f64() / 1e6;
    Ok(LoadRun {
        mops,
        hit_ratio: ratio(hits, reads),
        l1_hit_ratio: ratio(hits - disk_hits, reads),
        l2_hit_ratio: ratio(disk_hits, reads),
        ops,
        reads,
        elapsed_s: elapsed.as_secs_f64(),
        warmup_passes: passes,
        warmup_hit_ratio: warm_hit_ratio,
        warm_len,
        shards: cache.shards(),
        latency_ns: Latency::of(&latency),
        disk,
        peak_rss_bytes: None,
        latency_histogram: latency,
    })
}

/// Resets the process's peak resident set (`VmHWM`) to its current size, so a later reading is
/// the peak since now. Returns whether Linux allowed it (`/proc/self/clear_refs`, Linux 4.0+).
fn reset_peak_rss() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

/// The options of our L2 in the targets that have it (`tiered`, `tiered-async`, `cache-l2`):
/// the engine's defaults with `spec`'s disk budget and write mode, in `dir`.
fn l2_options(spec: &LoadSpec, dir: &std::path::Path) -> cache_l2::L2Options {
    cache_l2::L2Options {
        path: dir.join(crate::L2_FILE_NAME),
        max_bytes: bytesize::ByteSize(spec.l2_max_bytes),
        write_mode: spec.write_mode,
        ..cache_l2::L2Options::default()
    }
}

/// Builds a fresh `target` for `spec` and measures it. Caches with a disk tier get a fresh
/// directory, removed afterwards.
fn measure_target(
    target: LoadTarget,
    spec: &LoadSpec,
    seqs: &[Sequence],
    values: &[Value],
) -> anyhow::Result<LoadRun> {
    let peak = reset_peak_rss();
    let dir = match &spec.dir {
        Some(d) => tempfile::tempdir_in(d),
        None => tempfile::tempdir(),
    }
    .context("creating a directory for the disk tier")?;
    let tiered = |promotion| -> anyhow::Result<cache_core::TieredCache> {
        let mut config = cache_core::Config::default();
        config.l1.max_entries = Some(spec.capacity);
        config.l1.max_bytes = None;
        config.l1.shards = spec.shards;
        config.promotion.mode = promotion;
        config.l2 = Some(l2_options(spec, dir.path()));
        Ok(cache_core::TieredCache::open(&config)?)
    };
    let mut run = match target {
        LoadTarget::CacheL1 => measure(&build_l1(spec.capacity, spec.shards)?, spec, seqs, values),
        LoadTarget::Moka => measure(&build_moka(spec.capacity), spec, seqs, values),
        LoadTarget::QuickCache => measure(
            &build_quick_cache(spec.capacity, spec.shards)?,
            spec,
            seqs,
            values,
        ),
        LoadTarget::Tiered => measure(
            &tiered(cache_core::PromotionMode::Inline)?,
            spec,
            seqs,
            values,
        ),
        LoadTarget::TieredAsync => measure(
            &tiered(cache_core::PromotionMode::Async)?,
            spec,
            seqs,
            values,
        ),
        LoadTarget::CacheL2 => {
            let options = l2_options(spec, dir.path());
            measure(&cache_l2::Store::open(&options)?, spec, seqs, values)
        }
        LoadTarget::Foyer => {
            let write_buffer = cache_l2::L2Options::default()
                .group_commit
                .queue_max_bytes
                .as_u64();
            let disk = crate::adapter::DiskBudget {
                max_bytes: spec.l2_max_bytes,
                dir: dir.path().to_owned(),
                write_buffer_bytes: write_buffer,
            };
            let foyer = FoyerTarget::new(
                spec.capacity,
                false,
                &disk,
                crate::adapter::Values::new(1, 0),
            )?;
            measure(&foyer, spec, seqs, values)
        }
    }?;
    if peak {
        run.peak_rss_bytes = crate::report::proc_status_bytes("VmHWM").ok();
    }
    Ok(run)
}

fn check(spec: &LoadSpec) -> anyhow::Result<()> {
    anyhow::ensure!(spec.threads >= 1, "--threads must be at least 1");
    anyhow::ensure!(spec.keys >= 1, "--keys must be at least 1");
    anyhow::ensure!(spec.capacity >= 1, "--capacity must be at least 1");
    anyhow::ensure!(spec.runs >= 1, "--runs must be at least 1");
    anyhow::ensure!(spec.shards != Some(0), "--shards must be at least 1");
    anyhow::ensure!(
        (0.0..=1.0).contains(&spec.read_ratio),
        "--read-ratio must be in [0, 1]"
    );
    anyhow::ensure!(
        spec.values.sizes.min() >= 8
            || matches!(spec.values.sizes, crate::workload::ValueSizes::Trace { .. }),
        "--value-size must be at least 8 (values start with their key)"
    );
    spec.values.check()?;
    anyhow::ensure!(!spec.targets.is_empty(), "no target given");
    anyhow::ensure!(
        spec.sequence_len.is_power_of_two(),
        "--sequence-len must be a power of two"
    );
    Ok(())
}

/// Runs `spec`. `progress` gets each (run, target) as it finishes.
///
/// # Errors
///
/// Bad options, or a cache returning another key's value.
pub fn load(
    spec: &LoadSpec,
    mut progress: impl FnMut(usize, &str, &LoadRun),
) -> anyhow::Result<LoadReport> {
    check(spec)?;
    let seqs = sequences(spec)?;
    let values = values(key_space(spec, &seqs), &spec.values)?;
    let mut runs = Vec::with_capacity(spec.runs);
    for run in 0..spec.runs {
        let mut figures = BTreeMap::new();
        for &target in &spec.targets {
            let figure = measure_target(target, spec, &seqs, &values)
                .with_context(|| format!("{} in run {}", target.name(), run + 1))?;
            progress(run, target.name(), &figure);
            figures.insert(target.name().to_owned(), figure);
        }
        runs.push(figures);
    }

    let targets: BTreeMap<String, LoadFigure> = spec
        .targets
        .iter()
        .map(|t| {
            let name = t.name();
            let mut by_mops: Vec<&LoadRun> = runs.iter().map(|r| &r[name]).collect();
            by_mops.sort_by(|a, b| a.mops.total_cmp(&b.mops));
            let median = by_mops[by_mops.len() / 2];
            let figure = LoadFigure {
                mops: median.mops,
                hit_ratio: median.hit_ratio,
                mops_runs: runs.iter().map(|r| r[name].mops).collect(),
                latency_ns: median.latency_ns,
                l1_hit_ratio: median.l1_hit_ratio,
                l2_hit_ratio: median.l2_hit_ratio,
                disk: median.disk,
                peak_rss_bytes: median.peak_rss_bytes,
                latency_cdf_us: crate::report::latency_cdf(&median.latency_histogram),
            };
            (name.to_owned(), figure)
        })
        .collect();
    let mut ratios = BTreeMap::new();
    let pairs = [
        (LoadTarget::CacheL1, LoadTarget::QuickCache),
        (LoadTarget::CacheL1, LoadTarget::Moka),
        (LoadTarget::Tiered, LoadTarget::Foyer),
        (LoadTarget::TieredAsync, LoadTarget::Foyer),
    ];
    for (ours, peer) in pairs {
        if let (Some(o), Some(p)) = (targets.get(ours.name()), targets.get(peer.name())) {
            ratios.insert(format!("{}/{}", ours.name(), peer.name()), o.mops / p.mops);
        }
    }
    Ok(LoadReport {
        command: spec.command.clone(),
        machine: Machine::detect(),
        setup: LoadSetup {
            cache: "l1",
            threads: spec.threads,
            keys: spec.keys,
            zipf: spec.zipf,
            capacity: spec.capacity,
            l2_max_bytes: spec.l2_max_bytes,
            shards: spec.shards,
            workload: spec.workload,
            read_ratio: spec.read_ratio,
            values: spec.values.report(),
            write_mode: spec.write_mode,
            ops_per_thread: match spec.length {
                Length::Ops(n) => Some(n),
                Length::Duration(_) => None,
            },
            duration_s: match spec.length {
                Length::Duration(d) => Some(d.as_secs_f64()),
                Length::Ops(_) => None,
            },
            runs: spec.runs,
            seed: spec.seed,
            sequence_len: spec.sequence_len,
        },
        runs,
        scaling: vec![ScalingPoint::of(spec.threads, &targets)],
        targets,
        ratios,
    })
}

/// The workload of `setup` for titles: `ycsb-b`, or `mix, 95% reads`.
pub fn workload_label(setup: &LoadSetup) -> String {
    match setup.workload {
        Workload::Mix => format!("mix, {:.0}% reads", setup.read_ratio * 100.0),
        w => w
            .to_possible_value()
            .map_or_else(String::new, |v| v.get_name().to_owned()),
    }
}

impl LoadReport {
    /// The report as a table for the terminal.
    pub fn to_table(&self) -> String {
        let mut out = String::new();
        let s = &self.setup;
        let _ = writeln!(out, "machine:  {}", self.machine);
        let length = match (s.ops_per_thread, s.duration_s) {
            (Some(n), _) => format!("{n} ops per thread"),
            (None, Some(d)) => format!("{d} s"),
            (None, None) => String::new(),
        };
        let mix = workload_label(s);
        let _ = writeln!(
            out,
            "load:     {} threads, Zipf({}) over {} keys, capacity {} entries, {mix}, \
             values {} (mean {:.0} bytes, compression ratio {}), {length}; disk tiers {} \
             (L2 write mode {})",
            s.threads,
            s.zipf,
            s.keys,
            s.capacity,
            s.values.sizes,
            s.values.mean_bytes,
            s.values.compression_ratio,
            ByteSize(s.l2_max_bytes),
            match s.write_mode {
                cache_l2::WriteMode::Sync => "sync",
                cache_l2::WriteMode::Async => "async",
            }
        );
        let _ = writeln!(out, "runs:     {} (median reported)\n", self.runs.len());
        let _ = writeln!(
            out,
            "{:<12} {:>8} {:>8} {:>8} {:>6} {:>7} {:>7} {:>8} {:>9} {:>9} {:>9} {:>9} {:>9}  \
             runs (Mops/s)",
            "target",
            "Mops/s",
            "L1 hit",
            "L2 hit",
            "shards",
            "p50 ns",
            "p90 ns",
            "p99 ns",
            "p99.9 ns",
            "max ns",
            "disk read",
            "disk write",
            "peak RSS"
        );
        let size = |b: Option<u64>| b.map_or_else(|| "-".to_owned(), |b| ByteSize(b).to_string());
        for (name, f) in &self.targets {
            let shards = self
                .runs
                .first()
                .and_then(|r| r[name].shards)
                .map_or_else(|| "-".to_owned(), |n| n.to_string());
            let runs: Vec<String> = f.mops_runs.iter().map(|m| format!("{m:.2}")).collect();
            let l = &f.latency_ns;
            let _ = writeln!(
                out,
                "{name:<12} {:>8.2} {:>7.2}% {:>7.2}% {shards:>6} {:>7} {:>7} {:>8} {:>9} {:>9} \
                 {:>9} {:>9} {:>9}  {}",
                f.mops,
                f.l1_hit_ratio * 100.0,
                f.l2_hit_ratio * 100.0,
                l.p50,
                l.p90,
                l.p99,
                l.p999,
                l.max,
                size(f.disk.map(|d| d.read_bytes)),
                size(f.disk.map(|d| d.written_bytes)),
                size(f.peak_rss_bytes),
                runs.join(" ")
            );
        }
        if self.scaling.len() > 1 {
            let _ = writeln!(out, "\nthroughput (Mops/s) by thread count:");
            for p in &self.scaling {
                let figures: Vec<String> = p
                    .targets
                    .iter()
                    .map(|(name, f)| format!("{name} {:.2}", f.mops))
                    .collect();
                let _ = writeln!(out, "  {:>3} threads: {}", p.threads, figures.join(", "));
            }
        }
        for (name, r) in &self.ratios {
            let _ = writeln!(out, "{name}: {r:.2}x");
        }
        out
    }
}

/// Resident memory of this process (`VmRSS` of `/proc/self/status`), in bytes.
///
/// # Errors
///
/// If `/proc/self/status` cannot be read or has no `VmRSS` line (not Linux).
pub fn resident_bytes() -> anyhow::Result<u64> {
    crate::report::proc_status_bytes("VmRSS")
}

/// What one `mem` child measured.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub struct MemSample {
    /// Resident bytes before the cache was built.
    pub before_bytes: u64,
    /// Resident bytes after `entries` inserts.
    pub after_bytes: u64,
    /// Entries resident at the end.
    pub len: u64,
}

/// Builds `target` with capacity `entries`, inserts keys `0..entries` with values of
/// `value_size` bytes (each its own allocation), and reads the resident memory before and after.
/// Meant to run alone in a fresh process (`cache-bench mem` re-executes itself for it).
///
/// # Errors
///
/// If the resident memory cannot be read, or the cache refuses the capacity.
pub fn mem_sample(target: LoadTarget, entries: u64, value_size: u32) -> anyhow::Result<MemSample> {
    fn fill<C: LoadCache>(cache: &C, entries: u64, value_size: u32) -> u64 {
        let mut buf = vec![0u8; value_size as usize];
        for k in 0..entries {
            let n = buf.len().min(8);
            buf[..n].copy_from_slice(&k.to_le_bytes()[..n]);
            cache.insert(k, Value::from(&buf[..]));
        }
        cache.len()
    }
    let before_bytes = resident_bytes()?;
    // Each cache lives until after the second reading.
    let (len, after_bytes) = match target {
        LoadTarget::CacheL1 => {
            let c = build_l1(entries, None)?;
            (fill(&c, entries, value_size), resident_bytes()?)
        }
        LoadTarget::Moka => {
            let c = build_moka(entries);
            (fill(&c, entries, value_size), resident_bytes()?)
        }
        LoadTarget::QuickCache => {
            let c = build_quick_cache(entries, None)?;
            (fill(&c, entries, value_size), resident_bytes()?)
        }
        LoadTarget::Tiered | LoadTarget::TieredAsync | LoadTarget::CacheL2 | LoadTarget::Foyer => {
            anyhow::bail!(
                "mem measures in-memory caches; {} has a disk tier",
                target.name()
            )
        }
    };
    Ok(MemSample {
        before_bytes,
        after_bytes,
        len,
    })
}

/// One target's memory figures.
#[derive(Debug, Clone, Serialize)]
pub struct MemFigure {
    /// What the child measured.
    pub sample: MemSample,
    /// Resident growth per inserted entry, in bytes: `(after - before) / entries`.
    pub total_per_entry: f64,
    /// The same less the value bytes: `(after - before - entries * value_size) / entries`.
    pub overhead_per_entry: f64,
}

/// Everything a `mem` run measured; serialized as its `--json` output.
#[derive(Debug, Clone, Serialize)]
pub struct MemReport {
    /// The command line that made it.
    pub command: String,
    /// The machine.
    pub machine: Machine,
    /// Entries inserted, and each cache's capacity.
    pub entries: u64,
    /// Bytes per value.
    pub value_size: u32,
    /// Each target's figures, by name.
    pub targets: BTreeMap<String, MemFigure>,
}

impl MemFigure {
    /// Figures of `sample` for `entries` inserts of `value_size`-byte values.
    #[expect(clippy::cast_precision_loss, reason = "byte counts far below 2^53")]
    pub fn new(sample: MemSample, entries: u64, value_size: u32) -> Self {
        let grown = sample.after_bytes as f64 - sample.before_bytes as f64;
        let n = entries.max(1) as f64;
        Self {
            sample,
            total_per_entry: grown / n,
            overhead_per_entry: (grown - entries as f64 * f64::from(value_size)) / n,
        }
    }
}

impl MemReport {
    /// The report as a table for the terminal.
    pub fn to_table(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "{} entries of {}-byte values (u64 keys) into caches of {} entries, each in a fresh \
             process\n",
            self.entries, self.value_size, self.entries
        );
        let _ = writeln!(
            out,
            "{:<12} {:>10} {:>14} {:>16} {:>12}",
            "target", "resident", "RSS growth", "overhead/entry", "total/entry"
        );
        for (name, f) in &self.targets {
            let _ = writeln!(
                out,
                "{name:<12} {:>10} {:>14} {:>14.1} B {:>10.1} B",
                f.sample.len,
                bytesize::ByteSize(f.sample.after_bytes.saturating_sub(f.sample.before_bytes))
                    .to_string(),
                f.overhead_per_entry,
                f.total_per_entry
            );
        }
        out
    }
}

/// The hidden subcommand `mem` runs each measurement in.
pub const MEM_CHILD_COMMAND: &str = "mem-child";

/// Measures each of `targets` in a fresh child process: `exe mem-child --target NAME --entries
/// N --value-size B`, which must print a [`MemSample`] as JSON (the `cache-bench` binary does).
///
/// # Errors
///
/// If a child cannot be started, fails, or prints something else.
pub fn mem(
    exe: &std::path::Path,
    targets: &[LoadTarget],
    entries: u64,
    value_size: u32,
    command: String,
) -> anyhow::Result<MemReport> {
    anyhow::ensure!(entries >= 1, "--entries must be at least 1");
    let mut figures = BTreeMap::new();
    for &target in targets {
        let output = std::process::Command::new(exe)
            .arg(MEM_CHILD_COMMAND)
            .args(["--target", target.name()])
            .args(["--entries", &entries.to_string()])
            .args(["--value-size", &value_size.to_string()])
            .output()
            .with_context(|| format!("starting {}", exe.display()))?;
        anyhow::ensure!(
            output.status.success(),
            "the {} child failed: {}",
            target.name(),
            String::from_utf8_lossy(&output.stderr)
        );
        let sample: MemSample = serde_json::from_slice(&output.stdout)
            .with_context(|| format!("reading the {} child's output", target.name()))?;
        figures.insert(
            target.name().to_owned(),
            MemFigure::new(sample, entries, value_size),
        );
    }
    Ok(MemReport {
        command,
        machine: Machine::detect(),
        entries,
        value_size,
        targets: figures,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workload::{ValueSizes, ValueSpec};

    #[test]
    fn values_have_each_keys_size_start_with_the_key_and_compress_as_asked() {
        let spec = ValueSpec {
            sizes: ValueSizes::Uniform {
                min: 1000,
                max: 3000,
            },
            compression_ratio: 0.25,
            seed: 3,
        };
        let made = values(500, &spec).unwrap();
        let (mut raw, mut packed) = (0usize, 0usize);
        for (k, v) in (0u64..).zip(&made) {
            assert_eq!(v.len(), spec.size_of(k) as usize, "key {k}");
            assert!(valid(k, v), "key {k}");
            raw += v.len();
            packed += zstd::bulk::compress(v, 3).unwrap().len();
        }
        // Sizes spread over the range, not one size for all.
        let (min, max) = made.iter().fold((usize::MAX, 0), |(lo, hi), v| {
            (lo.min(v.len()), hi.max(v.len()))
        });
        assert!(min < 1200 && max > 2800, "{min}..{max}");
        #[expect(clippy::cast_precision_loss, reason = "a ratio")]
        let ratio = packed as f64 / raw as f64;
        assert!((0.25..0.35).contains(&ratio), "compressed to {ratio}");

        // Sizes under 8 (possible in a trace's sizes) count as 8: the key still fits.
        let tiny = ValueSpec {
            sizes: ValueSizes::Uniform { min: 1, max: 4 },
            ..ValueSpec::fixed(8)
        };
        assert!(values(10, &tiny).unwrap().iter().all(|v| v.len() == 8));
    }

    /// A cache whose gets panic after its first few: a panicking peer.
    struct PanicsAfter(std::sync::atomic::AtomicU64);

    impl LoadCache for PanicsAfter {
        fn get(&self, _key: u64) -> Got {
            assert!(
                self.0.fetch_add(1, Ordering::Relaxed) < 100,
                "the peer broke"
            );
            Got::Miss
        }
        fn insert(&self, _key: u64, _value: Value) {}
        fn len(&self) -> u64 {
            0
        }
        fn shards(&self) -> Option<usize> {
            None
        }
    }

    /// A small spec of `workload` on cache-l1: 2 threads, `keys` keys, `capacity` entries.
    fn small_spec(workload: Workload, keys: u64, capacity: u64) -> LoadSpec {
        LoadSpec {
            targets: vec![LoadTarget::CacheL1],
            threads: 2,
            keys,
            zipf: 0.99,
            capacity,
            shards: None,
            workload,
            read_ratio: 1.0,
            values: ValueSpec::fixed(8),
            write_mode: cache_l2::WriteMode::Sync,
            length: Length::Ops(1000),
            runs: 1,
            seed: 1,
            sequence_len: 4096,
            l2_max_bytes: 1 << 20,
            dir: None,
            command: String::new(),
        }
    }

    #[test]
    fn a_cache_that_panics_fails_its_run_with_an_error() {
        let spec = small_spec(Workload::Mix, 100, 10);
        let seqs = sequences(&spec).unwrap();
        let made = values(key_space(&spec, &seqs), &spec.values).unwrap();
        let cache = PanicsAfter(std::sync::atomic::AtomicU64::new(0));
        let e = measure(&cache, &spec, &seqs, &made).unwrap_err();
        assert!(format!("{e:#}").contains("panicked"), "{e:#}");
    }

    /// YCSB D's inserts stay fresh: warm-up reads of the newest keys do not insert them, so
    /// the timed part's inserts of those keys are inserts, not replacements.
    #[test]
    fn warm_up_leaves_the_new_keys_of_ycsb_d_for_the_timed_inserts() {
        let spec = small_spec(Workload::YcsbD, 1000, 2000);
        let seqs = sequences(&spec).unwrap();
        let top = key_space(&spec, &seqs);
        assert!(top > spec.keys + 100, "the sequences insert new keys");
        let made = values(top, &spec.values).unwrap();
        let cache = build_l1(spec.capacity, None).unwrap();
        let (hits, gets, wrong) = warm_pass(&cache, &seqs, &made, spec.keys).unwrap();
        assert!(hits > 0 && gets > hits && wrong == 0);
        assert!((0..spec.keys).any(|k| LoadCache::get(&cache, k) != Got::Miss));
        assert!(
            (spec.keys..top).all(|k| LoadCache::get(&cache, k) == Got::Miss),
            "a new key was inserted by the warm-up"
        );
    }

    /// The targets with our L2 get the run's disk budget and write mode, and the engine's
    /// defaults otherwise.
    #[test]
    fn l2_targets_take_the_disk_budget_and_write_mode() {
        let mut spec = small_spec(Workload::YcsbD, 10, 10);
        spec.l2_max_bytes = 3 << 20;
        for mode in [cache_l2::WriteMode::Sync, cache_l2::WriteMode::Async] {
            spec.write_mode = mode;
            let options = l2_options(&spec, std::path::Path::new("/d"));
            assert_eq!(options.write_mode, mode);
            assert_eq!(options.max_bytes.as_u64(), 3 << 20);
            assert_eq!(
                options.path,
                std::path::Path::new("/d").join(crate::L2_FILE_NAME)
            );
            assert_eq!(
                options.group_commit,
                cache_l2::L2Options::default().group_commit
            );
        }
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn values_larger_than_memory_are_refused_before_any_allocation() {
        let e = values(1 << 40, &ValueSpec::fixed(1 << 20)).unwrap_err();
        assert!(format!("{e:#}").contains("memory available"), "{e:#}");
    }
}

//! Multi-threaded synthetic load on in-memory caches (`cache-bench load`), and their memory
//! per entry (`cache-bench mem`).
//!
//! Method of `load`:
//!
//! - Keys are `u64` ranks of a Zipf(`s`) distribution over `keys` keys (rank 1, the hottest, is
//!   key 0). Every thread gets its own sequence of `sequence_len` (default [`SEQUENCE_LEN`])
//!   keys and op kinds, drawn before any timing from a seeded RNG and cycled, so the RNG costs
//!   no target any time.
//! - Values are `Arc<[u8]>` of `value_size` bytes, one allocation per key, made before timing;
//!   a cache holds clones. A hit clones the `Arc` (one atomic increment on that key's own
//!   counter, never on a counter shared by all keys) and checks the key stored in the value's
//!   first bytes.
//! - Warm-up (untimed): every thread replays its sequence with a get per op and an insert on a
//!   miss, pass after pass, until one pass's hit ratio is within [`WARM_TOLERANCE`] of the
//!   previous one (at least 2 passes, at most [`WARM_MAX_PASSES`]).
//! - Timed: `threads` threads released together by a barrier run their ops: a read is a `get`
//!   (a miss inserts nothing), an insert (a `1 - read_ratio` share of ops) inserts its key.
//!   Throughput is all threads' ops over the wall time from the barrier to the last thread's
//!   end; the hit ratio is over the timed reads.
//! - Targets run one after another in one process, each into a fresh cache; with several runs,
//!   every run measures every target in turn and the median run (by throughput) is reported.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use rand::rngs::StdRng;
use rand::{RngExt as _, SeedableRng as _};
use rand_distr::{Distribution as _, Zipf};
use serde::{Deserialize, Serialize};

use crate::replay::ratio;

use crate::report::Machine;

/// Keys (and op kinds) each thread draws before timing and then cycles through, by default:
/// 2^20.
pub const SEQUENCE_LEN: usize = 1 << 20;
/// Warm-up stops when a pass's hit ratio moves less than this (absolute) from the previous one.
pub const WARM_TOLERANCE: f64 = 0.002;
/// Warm-up passes at most.
pub const WARM_MAX_PASSES: usize = 10;

/// A value: its own allocation, shared by reference count.
pub type Value = Arc<[u8]>;

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
}

impl LoadTarget {
    /// Every target, in report order.
    pub const ALL: [Self; 3] = [Self::CacheL1, Self::Moka, Self::QuickCache];

    /// The name in reports and JSON: `cache-l1`, `moka`, `quick_cache`.
    pub fn name(self) -> &'static str {
        match self {
            Self::CacheL1 => "cache-l1",
            Self::Moka => "moka",
            Self::QuickCache => "quick_cache",
        }
    }
}

/// The operations `load` needs from a concurrent cache.
trait LoadCache: Sync {
    fn get(&self, key: u64) -> Option<Value>;
    fn insert(&self, key: u64, value: Value);
    /// Entries resident now.
    fn len(&self) -> u64;
    /// Shards, if the cache has and tells them.
    fn shards(&self) -> Option<usize>;
}

impl LoadCache for cache_l1::ShardedSieve<u64, Value> {
    #[inline]
    fn get(&self, key: u64) -> Option<Value> {
        cache_l1::ShardedSieve::get(self, &key)
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
    fn get(&self, key: u64) -> Option<Value> {
        moka::sync::Cache::get(self, &key)
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
    fn get(&self, key: u64) -> Option<Value> {
        quick_cache::sync::Cache::get(self, &key)
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
    /// Share of ops that are gets, in [0, 1]; the rest are inserts. Default 1.0.
    pub read_ratio: f64,
    /// Bytes per value (at least 8: values start with their key). Default 100.
    pub value_size: u32,
    /// Ops per thread, or a wall time. Default 10,000,000 ops.
    pub length: Length,
    /// Runs; the median is reported. Default 1.
    pub runs: usize,
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
    /// Capacity in entries.
    pub capacity: u64,
    /// Shard count forced on `cache-l1` and `quick_cache`, if any.
    pub shards: Option<usize>,
    /// Share of ops that are gets.
    pub read_ratio: f64,
    /// Bytes per value.
    pub value_size: u32,
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
    /// Throughput ratios of the medians: `cache-l1/quick_cache`, `cache-l1/moka`.
    pub ratios: BTreeMap<String, f64>,
}

/// One thread's pre-drawn ops.
struct Sequence {
    keys: Vec<u64>,
    /// Whether each op is a read (else an insert).
    reads: Vec<bool>,
}

fn sequences(spec: &LoadSpec) -> anyhow::Result<Vec<Sequence>> {
    #[expect(clippy::cast_precision_loss, reason = "key counts far below 2^53")]
    let zipf = Zipf::new(spec.keys as f64, spec.zipf).map_err(|e| {
        anyhow::anyhow!(
            "bad Zipf parameters (keys {}, s {}): {e}",
            spec.keys,
            spec.zipf
        )
    })?;
    Ok((0..spec.threads as u64)
        .map(|t| {
            let mut rng = StdRng::seed_from_u64(spec.seed.wrapping_add(t));
            #[expect(
                clippy::cast_possible_truncation,
                clippy::cast_sign_loss,
                reason = "Zipf samples are integers in 1..=keys"
            )]
            let keys = (0..spec.sequence_len)
                .map(|_| zipf.sample(&mut rng) as u64 - 1)
                .collect();
            let reads = (0..spec.sequence_len)
                .map(|_| spec.read_ratio >= 1.0 || rng.random_bool(spec.read_ratio))
                .collect();
            Sequence { keys, reads }
        })
        .collect())
}

/// Every key's value: `value_size` bytes starting with the key, each its own allocation.
fn values(keys: u64, value_size: u32) -> Vec<Value> {
    let mut buf = vec![0u8; value_size as usize];
    (0..keys)
        .map(|k| {
            buf[..8].copy_from_slice(&k.to_le_bytes());
            Value::from(&buf[..])
        })
        .collect()
}

/// Whether `v` is the value of `key`.
#[inline]
fn valid(key: u64, v: &[u8]) -> bool {
    v.get(..8) == Some(&key.to_le_bytes()[..])
}

/// One warm-up pass over every thread's sequence, in parallel: a get per op, an insert on a
/// miss. Returns `(hits, gets, wrong values)`.
fn warm_pass<C: LoadCache>(cache: &C, seqs: &[Sequence], values: &[Value]) -> (u64, u64, u64) {
    std::thread::scope(|s| {
        let handles: Vec<_> = seqs
            .iter()
            .map(|seq| {
                s.spawn(move || {
                    let (mut hits, mut wrong) = (0u64, 0u64);
                    for &key in &seq.keys {
                        if let Some(v) = cache.get(key) {
                            hits += 1;
                            wrong += u64::from(!valid(key, &v));
                        } else {
                            cache.insert(key, Arc::clone(&values[index(key)]));
                        }
                    }
                    (hits, seq.keys.len() as u64, wrong)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("warm-up thread"))
            .fold((0, 0, 0), |a, b| (a.0 + b.0, a.1 + b.1, a.2 + b.2))
    })
}

#[inline]
fn index(key: u64) -> usize {
    usize::try_from(key).unwrap_or(usize::MAX)
}

/// What one timed thread did.
#[derive(Default)]
struct ThreadCount {
    ops: u64,
    reads: u64,
    hits: u64,
    wrong: u64,
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
    let mut c = ThreadCount::default();
    let mut i = 0usize;
    while c.ops < limit {
        let key = seq.keys[i & mask];
        if seq.reads[i & mask] {
            c.reads += 1;
            if let Some(v) = cache.get(key) {
                c.hits += 1;
                c.wrong += u64::from(!valid(key, &v));
            }
        } else {
            cache.insert(key, Arc::clone(&values[index(key)]));
        }
        c.ops += 1;
        i += 1;
        if c.ops % CHECK_EVERY == 0 && stop.load(Ordering::Relaxed) {
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
        let (hits, gets, wrong) = warm_pass(cache, seqs, values);
        anyhow::ensure!(wrong == 0, "{wrong} hits returned another key's value");
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
        let counts: Vec<ThreadCount> = handles
            .into_iter()
            .map(|h| h.join().expect("load thread"))
            .collect();
        (counts, start.elapsed())
    });
    let sum = |f: fn(&ThreadCount) -> u64| counts.iter().map(f).sum::<u64>();
    let (ops, reads, hits, wrong) = (
        sum(|c| c.ops),
        sum(|c| c.reads),
        sum(|c| c.hits),
        sum(|c| c.wrong),
    );
    anyhow::ensure!(wrong == 0, "{wrong} hits returned another key's value");
    #[expect(clippy::cast_precision_loss, reason = "a rate")]
    let mops = ops as f64 / elapsed.as_secs_f64() / 1e6;
    Ok(LoadRun {
        mops,
        hit_ratio: ratio(hits, reads),
        ops,
        reads,
        elapsed_s: elapsed.as_secs_f64(),
        warmup_passes: passes,
        warmup_hit_ratio: warm_hit_ratio,
        warm_len,
        shards: cache.shards(),
    })
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
        spec.value_size >= 8,
        "--value-size must be at least 8 (values start with their key)"
    );
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
    let values = values(spec.keys, spec.value_size);
    let mut runs = Vec::with_capacity(spec.runs);
    for run in 0..spec.runs {
        let mut figures = BTreeMap::new();
        for &target in &spec.targets {
            let figure = match target {
                LoadTarget::CacheL1 => {
                    measure(&build_l1(spec.capacity, spec.shards)?, spec, &seqs, &values)
                }
                LoadTarget::Moka => measure(&build_moka(spec.capacity), spec, &seqs, &values),
                LoadTarget::QuickCache => measure(
                    &build_quick_cache(spec.capacity, spec.shards)?,
                    spec,
                    &seqs,
                    &values,
                ),
            }
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
            };
            (name.to_owned(), figure)
        })
        .collect();
    let mut ratios = BTreeMap::new();
    if let Some(ours) = targets.get(LoadTarget::CacheL1.name()) {
        for peer in [LoadTarget::QuickCache, LoadTarget::Moka] {
            if let Some(p) = targets.get(peer.name()) {
                ratios.insert(format!("cache-l1/{}", peer.name()), ours.mops / p.mops);
            }
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
            shards: spec.shards,
            read_ratio: spec.read_ratio,
            value_size: spec.value_size,
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
        targets,
        ratios,
    })
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
        let _ = writeln!(
            out,
            "load:     {} threads, Zipf({}) over {} keys, capacity {} entries, {:.0}% reads, \
             {}-byte values, {length}",
            s.threads,
            s.zipf,
            s.keys,
            s.capacity,
            s.read_ratio * 100.0,
            s.value_size
        );
        let _ = writeln!(out, "runs:     {} (median reported)\n", self.runs.len());
        let _ = writeln!(
            out,
            "{:<12} {:>10} {:>10} {:>8}  runs (Mops/s)",
            "target", "Mops/s", "hit ratio", "shards"
        );
        for (name, f) in &self.targets {
            let shards = self
                .runs
                .first()
                .and_then(|r| r[name].shards)
                .map_or_else(|| "-".to_owned(), |n| n.to_string());
            let runs: Vec<String> = f.mops_runs.iter().map(|m| format!("{m:.2}")).collect();
            let _ = writeln!(
                out,
                "{name:<12} {:>10.2} {:>9.2}% {shards:>8}  {}",
                f.mops,
                f.hit_ratio * 100.0,
                runs.join(" ")
            );
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
    let status = std::fs::read_to_string("/proc/self/status")
        .context("reading /proc/self/status (mem needs Linux)")?;
    let kib = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().strip_suffix("kB"))
        .and_then(|v| v.trim().parse::<u64>().ok())
        .context("no VmRSS in /proc/self/status")?;
    Ok(kib * 1024)
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

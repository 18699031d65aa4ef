//! `cache-bench`: the load-testing tool for the tiered cache.
//!
//! It replays real cache traces ([`trace`]) and synthetic workloads ([`workload`]) through the
//! tiered cache (L1 + L2) and, in the same run and on the same requests, through peer caches
//! (moka, `quick_cache`, an exact LRU, foyer's hybrid memory + disk cache), and reports hit
//! ratios per tier, byte miss ratio, throughput, latency, disk bytes and peak memory
//! ([`report`]), with plots ([`plot`]). Every
//! cache sits behind one adapter trait ([`adapter::Target`]); the replay loop ([`replay`]) times
//! only the serving, chunk by chunk, so trace parsing costs no target any time and memory stays
//! constant.
//!
//! The binary's `--help` documents the commands; `docs/benchmarks.md` the method and results.

#![forbid(unsafe_code)]

pub mod adapter;
pub mod churn;
pub mod load;
pub mod load_l2;
pub mod mrc;
pub mod plot;
pub mod replay;
pub mod report;
pub mod trace;
pub mod workload;

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::Context as _;
use cache_core::{Config, L1Policy, PromotionMode, TieredCache};

use crate::adapter::{
    DiskBudget, FoyerTarget, L1Target, L2Target, LruTarget, MokaTarget, QuickCacheTarget, Target,
    TieredTarget, Values,
};
use crate::report::{
    L2Report, LatencyReport, Machine, PeerReport, Percentiles, PromotionReport, ReplayReport, Setup,
};
use crate::trace::{Format, Request, TraceError, TraceReader};

/// The L1 budget of a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum L1Budget {
    /// A byte budget; entries weigh namespace + key + value + the fixed overhead.
    Bytes(u64),
    /// An entry budget; every entry weighs 1.
    Entries(u64),
}

/// A peer cache to run beside ours; each gets the same budget and weigher as our L1
/// ([`adapter::EntryWeigher`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Peer {
    /// `moka::sync::Cache` (W-TinyLFU), reported as `moka`.
    #[value(name = "moka")]
    Moka,
    /// `quick_cache::sync::Cache` (S3-FIFO with CLOCK-Pro ideas), reported as `quick_cache`.
    #[value(name = "quick_cache")]
    QuickCache,
    /// An exact LRU (`lru::LruCache` behind a mutex), reported as `lru`.
    #[value(name = "lru")]
    Lru,
    /// foyer's hybrid memory + disk cache ([`adapter::FoyerTarget`]), reported as `foyer`;
    /// it needs a disk budget (the run's L2 budget).
    #[value(name = "foyer")]
    Foyer,
    /// Our L1 alone ([`adapter::L1Target`]: `cache_l1::ShardedSieve`, no cache-core around
    /// it), with our L1's policy and shard count, reported as `cache-l1`.
    #[value(name = "cache-l1")]
    CacheL1,
    /// Our L2 alone ([`adapter::L2Target`]: `cache_l2::Store` with our L2's options in its
    /// own file, no L1 in front), reported as `cache-l2`; it needs L2 on.
    #[value(name = "cache-l2")]
    CacheL2,
}

/// The budgets a peer gets: those of our tiers.
#[derive(Debug, Clone)]
pub struct PeerBudget {
    /// The memory budget, in bytes (`by_bytes`) or entries: our L1's.
    pub capacity: u64,
    /// Whether `capacity` is bytes.
    pub by_bytes: bool,
    /// The size of a typical value, in bytes (`quick_cache` sizes its tables by it).
    pub typical_value_size: u32,
    /// The disk budget of hybrid peers: our L2's, if L2 is on.
    pub disk: Option<adapter::DiskBudget>,
    /// Our L1's eviction policy, for `cache-l1`.
    pub l1_policy: L1Policy,
    /// Our L1's shard count, for `cache-l1` (`None`: `cache_l1`'s default for the capacity).
    pub l1_shards: Option<usize>,
    /// Our L2's options, if L2 is on, for `cache-l2` (which gets its own file in the disk
    /// budget's directory).
    pub l2: Option<cache_core::L2Options>,
}

impl Peer {
    /// The peer's name in reports and JSON: `moka`, `quick_cache`, `lru`, `foyer`,
    /// `cache-l1` or `cache-l2`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Moka => "moka",
            Self::QuickCache => "quick_cache",
            Self::Lru => "lru",
            Self::Foyer => "foyer",
            Self::CacheL1 => "cache-l1",
            Self::CacheL2 => "cache-l2",
        }
    }

    /// The peer's adapter with `budget`, serving `values`.
    ///
    /// # Errors
    ///
    /// foyer or cache-l2 without a disk budget, or a peer failing to open.
    pub fn target(self, budget: &PeerBudget, values: Values) -> anyhow::Result<Box<dyn Target>> {
        let &PeerBudget {
            capacity, by_bytes, ..
        } = budget;
        Ok(match self {
            Self::Moka => Box::new(MokaTarget::new(capacity, by_bytes, values)),
            Self::QuickCache => Box::new(QuickCacheTarget::new(
                capacity,
                by_bytes,
                budget.typical_value_size,
                values,
            )),
            Self::Lru => Box::new(LruTarget::new(capacity, by_bytes, values)),
            Self::Foyer => {
                let disk = budget.disk.as_ref().context(
                    "foyer is a hybrid memory + disk cache: give it a disk budget with --l2",
                )?;
                Box::new(FoyerTarget::new(capacity, by_bytes, disk, values)?)
            }
            Self::CacheL1 => Box::new(L1Target::new(
                self.name(),
                capacity,
                by_bytes,
                Some(budget.l1_policy.to_policy()),
                budget.l1_shards,
                values,
            )?),
            Self::CacheL2 => {
                let (Some(disk), Some(l2)) = (&budget.disk, &budget.l2) else {
                    anyhow::bail!("cache-l2 is our L2 alone: it needs L2 on (--l2)");
                };
                let mut options = l2.clone();
                options.path = disk.dir.join("cache-l2-alone.redb");
                Box::new(L2Target::open(&options, values)?)
            }
        })
    }
}

/// How to build the caches of a run.
#[derive(Debug, Clone)]
pub struct CacheSpec {
    /// L1 budget.
    pub l1: L1Budget,
    /// L1 shards (default: the engine's).
    pub shards: Option<usize>,
    /// L1 eviction policy.
    pub policy: L1Policy,
    /// L2 budget in bytes; `None` runs L1 alone.
    pub l2_max_bytes: Option<u64>,
    /// Directory for the L2 file; default a temporary directory removed afterwards.
    pub l2_dir: Option<PathBuf>,
    /// Peers to run beside ours.
    pub peers: Vec<Peer>,
    /// Promote L2 hits with the engine's async pool instead of inline.
    pub async_promotion: bool,
    /// The engine config the fields above are laid over: what `--config` loaded, or
    /// [`Config::default`]. Its L1 budget, shards, policy, promotion mode and L2 budget and path
    /// are replaced by the fields above; everything else (limits, pool size, compression,
    /// write mode, group commit, ...) is used as is.
    pub engine: Config,
}

/// Where requests come from.
#[derive(Debug, Clone)]
pub enum Source {
    /// A trace file.
    Trace {
        /// The file.
        path: PathBuf,
        /// Its format; detected from the name and contents if `None`.
        format: Option<Format>,
    },
    /// A synthetic Zipf workload ([`workload::zipf`]).
    Zipf {
        /// Distinct keys.
        keys: u64,
        /// Skew.
        s: f64,
        /// Requests.
        requests: u64,
        /// RNG seed.
        seed: u64,
    },
}

/// One replay run.
#[derive(Debug, Clone)]
pub struct ReplaySpec {
    /// Where requests come from.
    pub source: Source,
    /// The caches.
    pub cache: CacheSpec,
    /// The values: sizes of requests that carry none (unsized traces) and of every Zipf
    /// request, how well the bytes compress, and their seed.
    pub values: workload::ValueSpec,
    /// The command line, recorded in the report.
    pub command: String,
}

/// Length of the shared buffer values are sliced from for sources with sizes, in bytes (larger
/// values are built on demand); sources without use their largest value size, up to this, +
/// 1 MiB.
const SIZED_VALUE_BUFFER: usize = 64 << 20;

/// Requests of a source, its description for reports, and its trace format.
type Opened = (
    Box<dyn Iterator<Item = Result<Request, TraceError>>>,
    String,
    Option<Format>,
);

fn open_source(source: &Source, values: &workload::ValueSpec) -> anyhow::Result<Opened> {
    Ok(match source {
        Source::Trace { path, format } => {
            let reader = TraceReader::open(path, *format)?;
            let format = reader.format();
            (Box::new(reader), path.display().to_string(), Some(format))
        }
        &Source::Zipf {
            keys,
            s,
            requests,
            seed,
        } => (
            Box::new(workload::zipf(keys, s, requests, values.clone(), seed)?.map(Ok)),
            format!(
                "zipf(keys={keys}, s={s}, requests={requests}, value_sizes={}, seed={seed})",
                values.sizes
            ),
            None,
        ),
    })
}

/// The engine config for `c`: `c.engine` with the spec's budgets, shards, policy and promotion
/// mode; an L2 without a directory goes into `temp_dir`.
fn engine_config(
    c: &CacheSpec,
    temp_dir: &mut Option<tempfile::TempDir>,
) -> anyhow::Result<Config> {
    let mut config = c.engine.clone();
    config.l1.max_bytes = match c.l1 {
        L1Budget::Bytes(n) => Some(bytesize::ByteSize(n)),
        L1Budget::Entries(_) => None,
    };
    config.l1.max_entries = match c.l1 {
        L1Budget::Entries(n) => Some(n),
        L1Budget::Bytes(_) => None,
    };
    config.l1.shards = c.shards;
    config.l1.policy = c.policy;
    config.promotion.mode = if c.async_promotion {
        PromotionMode::Async
    } else {
        PromotionMode::Inline
    };
    config.l2 = match c.l2_max_bytes {
        Some(max_bytes) => {
            let dir = match &c.l2_dir {
                Some(d) => d.clone(),
                None => temp_dir.insert(tempfile::tempdir()?).path().to_owned(),
            };
            let mut l2 = c.engine.l2.clone().unwrap_or_default();
            l2.path = dir.join(L2_FILE_NAME);
            l2.max_bytes = bytesize::ByteSize(max_bytes);
            Some(l2)
        }
        None => None,
    };
    config.validate().context("the engine config")?;
    Ok(config)
}

/// The peers of `c`, with our L1's budget (and `ours`'s shard count) and, for those with a disk,
/// our L2's in `dir`.
fn peer_targets(
    config: &Config,
    c: &CacheSpec,
    ours: &TieredTarget,
    values_spec: &workload::ValueSpec,
    dir: &std::path::Path,
    values: &Values,
) -> anyhow::Result<Vec<(Peer, Box<dyn Target>)>> {
    #[expect(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        reason = "a mean of u32 sizes"
    )]
    let typical_value_size = values_spec.sizes.mean().round() as u32;
    let (capacity, by_bytes) = match c.l1 {
        L1Budget::Bytes(n) => (n, true),
        L1Budget::Entries(n) => (n, false),
    };
    let budget = PeerBudget {
        capacity,
        by_bytes,
        typical_value_size,
        disk: config.l2.as_ref().map(|l2| DiskBudget {
            max_bytes: l2.max_bytes.as_u64(),
            dir: dir.to_owned(),
            write_buffer_bytes: l2.group_commit.queue_max_bytes.as_u64(),
        }),
        l1_policy: c.policy,
        l1_shards: Some(ours.cache().stats().l1.shards),
        l2: config.l2.clone(),
    };
    c.peers
        .iter()
        .map(|&p| Ok((p, p.target(&budget, values.clone())?)))
        .collect()
}

/// The bytes values are sliced from for a source of `format` (`None`: synthetic): sized sources
/// need a buffer to slice objects of many sizes from; unsized ones only need room for varied
/// offsets beyond their largest value.
fn value_bytes(format: Option<Format>, values: &workload::ValueSpec) -> Values {
    let buffer = if format.is_some_and(Format::is_sized) {
        SIZED_VALUE_BUFFER
    } else {
        (values.sizes.max() as usize).min(SIZED_VALUE_BUFFER) + (1 << 20)
    };
    Values::compressible(buffer, values.seed, values.compression_ratio)
}

/// Name of the L2 file in `--l2-dir` or the temporary directory.
pub const L2_FILE_NAME: &str = "cache-bench-l2.redb";

/// Replays `spec` and returns the report. `progress` gets the number of requests served after
/// every chunk.
///
/// # Errors
///
/// Bad options, an unreadable trace, a failing cache, or a cache returning wrong bytes.
pub fn replay(spec: &ReplaySpec, progress: impl FnMut(u64)) -> anyhow::Result<ReplayReport> {
    let c = &spec.cache;
    let (l1_unit, l1_capacity) = match c.l1 {
        L1Budget::Bytes(n) => ("bytes", n),
        L1Budget::Entries(n) => ("entries", n),
    };
    spec.values.check()?;
    let (requests, source, format) = open_source(&spec.source, &spec.values)?;
    // Declared before the cache so it is removed after the cache is closed.
    let mut temp_dir = None;
    let config = engine_config(c, &mut temp_dir)?;
    let cache = TieredCache::open(&config).context("opening the tiered cache")?;
    let values = value_bytes(format, &spec.values);
    let ours = TieredTarget::new(cache, values.clone());
    // Hybrid peers get the L2 budget, in their own directory beside the L2 file; declared
    // before the peers, so it is removed after they are closed.
    let peer_dir = tempfile::tempdir_in(
        config
            .l2
            .as_ref()
            .and_then(|l2| l2.path.parent())
            .unwrap_or(&std::env::temp_dir()),
    )?;
    let peers = peer_targets(&config, c, &ours, &spec.values, peer_dir.path(), &values)?;
    let mut targets: Vec<&dyn Target> = vec![&ours];
    targets.extend(peers.iter().map(|(_, t)| &**t));

    let tallies = replay::run(requests, &spec.values, &targets, progress)?;
    let t = &tallies[0];
    // Drains the promotion pool, so its counters are final.
    ours.cache().shutdown();
    let stats = ours.cache().stats();
    let l1_max_in_use = t.l1_max_in_use.unwrap_or(0).max(stats.l1.weight);
    Ok(ReplayReport {
        command: spec.command.clone(),
        source,
        format,
        machine: Machine::detect(),
        setup: Setup {
            l1_unit,
            l1_capacity,
            l1_shards: stats.l1.shards,
            l1_policy: c.policy,
            l2_max_bytes: c.l2_max_bytes,
            values: spec.values.report(),
            engine: config.clone(),
        },
        requests: t.requests,
        l1_hits: t.l1_hits,
        l2_hits: t.l2_hits,
        misses: t.misses,
        uncacheable: t.uncacheable,
        l1_hit_ratio: t.l1_hit_ratio(),
        l2_hit_ratio: t.l2_hit_ratio(),
        miss_ratio: t.miss_ratio(),
        byte_miss_ratio: t.byte_miss_ratio(),
        throughput_rps: t.throughput_rps(),
        elapsed_s: t.elapsed.as_secs_f64(),
        l1_max_in_use,
        l1_within_budget: l1_max_in_use <= l1_capacity,
        l2: stats.l2.map(|l2| L2Report {
            live_bytes: l2.live_bytes,
            max_bytes: l2.max_bytes,
            file_bytes: l2.file_bytes,
            insertions: l2.insertions,
            evictions: l2.evictions,
            corrupt_records: l2.corrupt_records,
            compressed_insertions: l2.compressed_insertions,
        }),
        promotion: PromotionReport {
            mode: if c.async_promotion { "async" } else { "inline" },
            queued: stats.promotions_queued,
            completed: stats.promotions_completed,
            dropped: stats.promotions_dropped,
            coalesced: stats.promotions_coalesced,
            superseded: stats.promotions_superseded,
            installed: stats.promotions,
        },
        latency_us: LatencyReport {
            request: Percentiles::of(&t.latency_ns),
            l2_hit: Percentiles::of(&t.l2_hit_latency_ns),
        },
        // After the shutdown, so it includes the last group commit.
        disk: ours.disk_io(),
        peak_rss_bytes: report::proc_status_bytes("VmHWM").ok(),
        peers: peers
            .iter()
            .zip(&tallies[1..])
            .map(|((p, _), t)| (p.name().to_owned(), PeerReport::from(t)))
            .collect::<BTreeMap<_, _>>(),
        latency_cdf_us: targets
            .iter()
            .zip(&tallies)
            .map(|(target, t)| (target.name().to_owned(), report::latency_cdf(&t.latency_ns)))
            .collect(),
    })
}

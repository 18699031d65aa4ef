//! The `cache-bench` command line. See `cache-bench --help`.

#![forbid(unsafe_code)]

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;
use bytesize::ByteSize;
use cache_bench::load::{Length, LoadSpec, LoadTarget};
use cache_bench::load_l2::L2LoadSpec;
use cache_bench::trace::Format;
use cache_bench::workload::{ValueSizes, ValueSpec};
use cache_bench::{CacheSpec, L1Budget, Peer, ReplaySpec, Source};
use cache_core::L1Policy;
use clap::parser::ValueSource;
use clap::{ArgMatches, Args, CommandFactory as _, FromArgMatches as _, Parser, Subcommand};

/// Load-testing tool for the tiered L1/L2 cache: replays real traces and synthetic workloads
/// through it and, in the same run, through peer caches (moka, `quick_cache`, lru), and reports
/// hit ratios per tier, byte miss ratio and throughput.
///
/// With no arguments it runs `cache-bench zipf` with its defaults: a Zipf(0.99) workload of
/// 1,000,000 requests over 100,000 keys of 1 KiB, through a 16 MiB L1 and a 64 MiB L2 in a
/// temporary directory, with moka beside it.
#[derive(Debug, Parser)]
#[command(name = "cache-bench", version)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Replay a trace file (ARC .lis, LIRS .trace, text `time id size`, oracleGeneral; plain
    /// or .zst): a get per request, and an insert on a miss.
    Replay(ReplayArgs),
    /// Replay a synthetic Zipf workload (what runs with no arguments).
    Zipf(ZipfArgs),
    /// Miss-ratio curves: each trace at each size through our L1 (s3-fifo, default shards;
    /// sieve, 1 shard), moka, `quick_cache` and an exact LRU, every entry weighing 1, one
    /// single-threaded replay per (trace, size, cache) on a work queue over all cores.
    Mrc(MrcArgs),
    /// Multi-threaded synthetic load: on the in-memory caches (`--cache l1`, the default) or on
    /// the durable tier beside raw redb (`--cache l2`).
    ///
    /// With `--cache l1`: our L1 (`cache-l1`), moka and `quick_cache`, one after another, each
    /// warmed up, then timed with all threads released together; reports Mops/s and hit ratio of
    /// the median run.
    ///
    /// With `--cache l2`: `cache_l2::Store` (`cache-l2`) and, as the baseline, one raw redb table
    /// (`raw-redb`: 1000 inserts per durable commit, one writer, the same 64 MiB page cache), each
    /// in fresh files. Put phase: every key once (`--writers` threads into cache-l2, then a
    /// flush, timed with the puts). Get phase: `--threads` threads of uniform random point gets,
    /// each value checked against the one put (a mismatch fails the run). Reports puts/s,
    /// gets/s, get p50/p99 latency in µs, the file size and cache-l2's live bytes, and the
    /// cache-l2/raw-redb ratios; each figure is the median over `--runs`. For example:
    ///
    ///     cache-bench load --cache l2 --write-mode sync --writers 64 --json l2.json
    Load(LoadArgs),
    /// File size of the durable tier under churn: puts distinct keys into a fresh
    /// `cache_l2::Store` until `--factor` times its budget was written, sampling the file size
    /// and live bytes (`Store::stats`, after a flush) after each budget's worth; reports the
    /// file against the budget, the largest file seen, and the file after closing. For example:
    ///
    ///     cache-bench churn --l2-max-bytes 64MiB --factor 10 --json churn.json
    Churn(ChurnArgs),
    /// Resident memory per entry of `cache-l1`, moka and `quick_cache`, each measured in a
    /// fresh child process: RSS before building the cache and after inserting N entries.
    Mem(MemArgs),
    /// One `mem` measurement in this process (what `mem` runs in each child).
    #[command(name = "mem-child", hide = true)]
    MemChild(MemChildArgs),
}

/// `--cache` values of `load`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum LoadCacheArg {
    /// The in-memory caches: our L1, moka and `quick_cache`.
    L1,
    /// The durable tier: `cache_l2::Store` beside a raw redb table.
    L2,
}

impl LoadCacheArg {
    fn name(self) -> &'static str {
        match self {
            Self::L1 => "l1",
            Self::L2 => "l2",
        }
    }
}

#[derive(Debug, Args)]
struct LoadArgs {
    /// What to load: `l1` (our L1 beside moka and `quick_cache`, in memory) or `l2`
    /// (`cache_l2::Store` beside a raw redb table, on disk). The options under "Options of
    /// --cache l1" and "Options of --cache l2" apply to that one only.
    #[arg(long, value_enum, default_value = "l1")]
    cache: LoadCacheArg,
    /// Threads running ops at once (with `--cache l2`, the get threads; see `--writers` for
    /// puts). With `--cache l1`, a comma-separated list (e.g. `1,2,4`) runs every count in turn
    /// for the throughput-vs-threads figures; the table shows the last.
    #[arg(long, value_delimiter = ',', default_value = "2")]
    threads: Vec<usize>,
    /// Also draw SVG plots into DIR (`--cache l1`): `load-throughput.svg` (Mops/s by thread
    /// count) and `load-latency.svg` (op latency CDFs at the last thread count).
    #[arg(long, value_name = "DIR")]
    plot: Option<PathBuf>,
    /// Value sizes, at least 8 bytes (values start with their key): `100` or `4KiB` (every
    /// value), and with `--cache l1` also `100..4KiB` (uniform, both bounds included) or
    /// `trace:PATH` (the object sizes of a sized trace; sizes under 8 count as 8). Each key
    /// draws its size once. Default: 100 for l1, 16384 for l2.
    #[arg(long, value_name = "SIZES")]
    value_size: Option<ValueSizes>,
    /// Ops per thread (with `--cache l2`, gets per get thread). Default: 10,000,000 for l1,
    /// 100,000 for l2.
    #[arg(long, value_name = "N", conflicts_with = "duration")]
    ops: Option<u64>,
    /// Run each timed part (with `--cache l2`, each get phase) for this long instead of a number
    /// of ops (e.g. `5s`).
    #[arg(long, value_parser = humantime::parse_duration)]
    duration: Option<std::time::Duration>,
    /// Runs; each measures every target, and the median run is reported (with `--cache l2`, the
    /// median of each figure).
    #[arg(long, default_value_t = 1)]
    runs: usize,
    /// RNG seed of the key sequences and of the values.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// When a put into our L2 returns: `sync` (once its group commit is done) or `async` (once
    /// queued; a put that replaces a record still waits for its commit). With `--cache l2`,
    /// cache-l2's puts; with `--cache l1`, those of tiered, tiered-async and cache-l2.
    #[arg(long, value_enum, default_value = "sync")]
    write_mode: WriteModeArg,
    /// Also write the report as JSON to FILE.
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
    #[command(flatten)]
    l1: LoadL1Args,
    #[command(flatten)]
    l2: LoadL2Args,
}

/// Options of `load --cache l1` only.
#[derive(Debug, Args)]
#[command(next_help_heading = "Options of --cache l1")]
struct LoadL1Args {
    /// Caches to measure, comma separated, in this order: in memory `cache-l1` (our L1 alone),
    /// moka, `quick_cache`; with a disk tier (`--l2` budget, `--capacity` entries in memory)
    /// `tiered` (L1 + L2, inline promotion), `tiered-async` (async promotion), `cache-l2` (our
    /// L2 alone), foyer (hybrid).
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        default_value = "cache-l1,moka,quick_cache"
    )]
    targets: Vec<LoadTarget>,
    /// Distinct keys (u64).
    #[arg(long, default_value_t = 1_000_000)]
    keys: u64,
    /// Zipf skew of the keys (0 = uniform).
    #[arg(long, default_value_t = 0.99)]
    zipf: f64,
    /// Cache capacity in entries.
    #[arg(long, value_name = "ENTRIES", default_value_t = 100_000)]
    capacity: u64,
    /// Shard count of cache-l1 and `quick_cache` (moka has none), to compare them at equal
    /// shard counts. Default: each cache's own.
    #[arg(long, value_name = "N")]
    shards: Option<usize>,
    /// The mix of operations: `mix` (gets and inserts by `--read-ratio`) or a YCSB core
    /// workload, `ycsb-a` (50% updates) to `ycsb-f` (read-modify-write); see the `load` module
    /// docs for how each maps onto a cache.
    #[arg(long, value_enum, default_value = "mix")]
    workload: cache_bench::load::Workload,
    /// Share of ops that are gets under `--workload mix` (a miss inserts nothing); the rest
    /// insert their key.
    #[arg(long, value_name = "R", default_value_t = 1.0)]
    read_ratio: f64,
    #[command(flatten)]
    bytes: ValueBytesArgs,
    /// Keys (and op kinds) each thread draws before timing and cycles through; a power of two.
    #[arg(long, value_name = "N", default_value_t = cache_bench::load::SEQUENCE_LEN)]
    sequence_len: usize,
    /// Disk budget of the targets with a disk tier (tiered, tiered-async, cache-l2, foyer).
    #[arg(long, value_name = "SIZE", default_value = "1GiB")]
    l2: ByteSize,
    /// Directory for their files (a fresh subdirectory per target, removed afterwards).
    /// Default: the system's temporary directory.
    #[arg(long, value_name = "DIR")]
    l2_dir: Option<PathBuf>,
}

/// Options of `load --cache l2` only.
#[derive(Debug, Args)]
#[command(next_help_heading = "Options of --cache l2")]
struct LoadL2Args {
    /// Distinct keys put into each target. Default: enough for 256 MiB of values (16384 of
    /// 16 KiB).
    #[arg(long, value_name = "N")]
    entries: Option<u64>,
    /// Values of JSON-like text, which zstd shrinks several times. Default: random bytes, which
    /// it cannot shrink (cache-l2 then stores them raw).
    #[arg(long)]
    compressible: bool,
    /// Threads putting into cache-l2 at once, each its share of the keys (raw-redb always has
    /// one batched writer: it is the baseline).
    #[arg(long, value_name = "N", default_value_t = 1)]
    writers: usize,
    /// cache-l2's budget for live bytes (e.g. 1GiB). Default: 4 times what the records account
    /// for, so that the put phase evicts nothing (a run fails if it does).
    #[arg(long, value_name = "SIZE")]
    l2_max_bytes: Option<ByteSize>,
    /// Directory to put the database files in, in a fresh subdirectory per run that is removed
    /// afterwards. Default: the system's temporary directory.
    #[arg(long, value_name = "DIR")]
    dir: Option<PathBuf>,
}

/// `--write-mode` values: `cache_l2::WriteMode`.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum WriteModeArg {
    Sync,
    Async,
}

impl From<WriteModeArg> for cache_l2::WriteMode {
    fn from(mode: WriteModeArg) -> Self {
        match mode {
            WriteModeArg::Sync => Self::Sync,
            WriteModeArg::Async => Self::Async,
        }
    }
}

#[derive(Debug, Args)]
struct ChurnArgs {
    /// The store's budget for live bytes (e.g. 1GiB).
    #[arg(long, value_name = "SIZE", default_value = "64MiB")]
    l2_max_bytes: ByteSize,
    /// Bytes per value (at least 8).
    #[arg(long, value_name = "BYTES", default_value_t = cache_bench::churn::DEFAULT_VALUE_SIZE)]
    value_size: u32,
    /// Data written, in multiples of `--l2-max-bytes`; one sample after each.
    #[arg(long, value_name = "N", default_value_t = cache_bench::churn::DEFAULT_FACTOR)]
    factor: u64,
    /// Values of JSON-like text, which zstd shrinks several times. Default: random bytes, which
    /// it cannot shrink (the store then keeps them raw).
    #[arg(long)]
    compressible: bool,
    /// When a put returns: `sync` (once its commit is done) or `async` (once queued).
    #[arg(long, value_enum, default_value = "async")]
    write_mode: WriteModeArg,
    /// Threads putting disjoint keys at once.
    #[arg(long, value_name = "N", default_value_t = 1)]
    writers: usize,
    /// Directory to put the database file in, in a fresh subdirectory that is removed
    /// afterwards. Default: the system's temporary directory.
    #[arg(long, value_name = "DIR")]
    dir: Option<PathBuf>,
    /// RNG seed of the values.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Also write the report as JSON to FILE.
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
}

#[derive(Debug, Args)]
struct MemArgs {
    /// Entries inserted, and each cache's capacity.
    #[arg(long, default_value_t = 1_000_000)]
    entries: u64,
    /// Bytes per value.
    #[arg(long, value_name = "BYTES", default_value_t = 16)]
    value_size: u32,
    /// Also write the report as JSON to FILE.
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
}

#[derive(Debug, Args)]
struct MemChildArgs {
    #[arg(long, value_enum)]
    target: LoadTarget,
    #[arg(long)]
    entries: u64,
    #[arg(long)]
    value_size: u32,
}

#[derive(Debug, Args)]
struct MrcArgs {
    /// The trace files (formats as for `replay`).
    #[arg(required = true)]
    traces: Vec<PathBuf>,
    /// Trace format of every file; default: detected per file.
    #[arg(long, value_enum)]
    format: Option<Format>,
    /// Cache sizes, comma separated: a percentage of the trace's unique keys (rounded to the
    /// nearest entry, at least 10, as the reference CSV does) or an entry count.
    #[arg(long, value_delimiter = ',', default_value = "0.1%,1%,10%")]
    sizes: Vec<cache_bench::mrc::CacheSize>,
    /// Skip sizes below this many entries.
    #[arg(long, value_name = "N", default_value_t = 0)]
    min_entries: u64,
    /// Caches to measure, comma separated.
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        default_value = "s3-fifo,sieve,moka,quick_cache,lru"
    )]
    targets: Vec<cache_bench::mrc::MrcTarget>,
    /// Bytes of every value (trace sizes are ignored: every entry weighs 1).
    #[arg(long, value_name = "BYTES", default_value_t = 16)]
    value_size: u32,
    /// Worker threads. Default: the available cores.
    #[arg(long, value_name = "N")]
    threads: Option<usize>,
    /// Also write the report as JSON to FILE.
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
    /// Write one SVG miss-ratio curve per trace to DIR/mrc-<trace>.svg.
    #[arg(long, value_name = "DIR")]
    plot: Option<PathBuf>,
}

/// How well values compress: shared by `replay`, `zipf` and `load --cache l1`.
#[derive(Debug, Args)]
struct ValueBytesArgs {
    /// What zstd shrinks values to, as a fraction of their size, in [1/128, 1]: 1 is random
    /// bytes, 0.5 compresses 2:1 (built as `RocksDB`'s `db_bench --compression_ratio` builds
    /// them; in `load` the first 8 bytes of a value are its key). Our L2 keeps a value
    /// compressed only at `max_ratio` (0.9) or less and from `min_bytes` (1 KiB) up; foyer
    /// 0.22's block engine does not compress.
    #[arg(long, value_name = "R", default_value_t = 1.0)]
    compression_ratio: f64,
}

#[derive(Debug, Args)]
struct ReplayArgs {
    /// The trace file.
    trace: PathBuf,
    /// Trace format; default: from the file name (ignoring .zst), and for .trace files from the
    /// number of fields on the first line.
    #[arg(long, value_enum)]
    format: Option<Format>,
    /// Value sizes for traces that record none (ARC, LIRS): `512` or `4KiB` (every value),
    /// `100..4KiB` (uniform, both bounds included) or `trace:PATH` (the object sizes of a sized
    /// trace). Each key draws its size once. Sized traces keep their own sizes.
    #[arg(long, value_name = "SIZES", default_value = "512")]
    value_size: ValueSizes,
    #[command(flatten)]
    bytes: ValueBytesArgs,
    /// RNG seed of the value sizes and bytes.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    #[command(flatten)]
    cache: CacheArgs,
}

#[derive(Debug, Args)]
struct ZipfArgs {
    /// Distinct keys.
    #[arg(long, default_value_t = 100_000)]
    keys: u64,
    /// Zipf skew (0 = uniform).
    #[arg(long, default_value_t = 0.99)]
    s: f64,
    /// Requests.
    #[arg(long, default_value_t = 1_000_000)]
    requests: u64,
    /// Value sizes: `1024` or `1KiB` (every value), `100..4KiB` (uniform, both bounds
    /// included) or `trace:PATH` (the object sizes of a sized trace). Each key draws its size
    /// once.
    #[arg(long, value_name = "SIZES", default_value = "1024")]
    value_size: ValueSizes,
    #[command(flatten)]
    bytes: ValueBytesArgs,
    /// RNG seed of the keys, the value sizes and the value bytes.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    #[command(flatten)]
    cache: CacheArgs,
}

#[derive(Debug, Args)]
struct CacheArgs {
    /// The engine's config file (TOML, as `Config::load` reads it; see `examples/cache.toml`),
    /// so that the run measures exactly what you deploy. Options given on the command line
    /// override its fields; an `[l2]` table turns L2 on. Its `l2.path` is never used: the L2
    /// file goes in `--l2-dir` or a temporary directory, so a bench never touches a live cache.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// L1 byte budget (e.g. 64MiB). Default: `--config`'s, else 64MiB for `replay` and 16MiB
    /// for `zipf`.
    #[arg(long, value_name = "SIZE", conflicts_with = "l1_entries")]
    l1: Option<ByteSize>,
    /// L1 entry budget instead of bytes: every entry weighs 1.
    #[arg(long, value_name = "N")]
    l1_entries: Option<u64>,
    /// L1 shards; 1 is exactly the paper's SIEVE. Default: the engine's, up to 32 per core (a
    /// power of two), fewer when shards would hold under 256 entries each.
    #[arg(long, value_name = "N")]
    shards: Option<usize>,
    /// L1 eviction policy: s3-fifo (scan-resistant) or sieve (the paper's SIEVE per shard).
    /// Default: the engine's (s3-fifo), or `l1.policy` of `--config`.
    #[arg(long, value_enum)]
    policy: Option<PolicyArg>,
    /// L2 byte budget (e.g. 1GiB). Default: `--config`'s (no `[l2]` table: no L2), else 1GiB
    /// for `replay` and 64MiB for `zipf`.
    #[arg(long, value_name = "SIZE", conflicts_with = "no_l2")]
    l2: Option<ByteSize>,
    /// Run L1 alone.
    #[arg(long)]
    no_l2: bool,
    /// Directory for the L2 file (reused if present). Default: a temporary directory, removed
    /// afterwards.
    #[arg(long, value_name = "DIR", conflicts_with = "no_l2")]
    l2_dir: Option<PathBuf>,
    /// Peer caches to run beside ours on the same requests, with the same budget and weigher as
    /// our L1: moka (W-TinyLFU), `quick_cache` (S3-FIFO with CLOCK-Pro ideas), lru (exact LRU),
    /// foyer (hybrid memory + disk; its disk gets the L2 budget, so it needs L2 on), and our
    /// tiers alone: cache-l1 (our L1 with its policy and shards, no cache-core around it) and
    /// cache-l2 (our L2 with its options in a file of its own, no L1 in front; needs L2 on).
    #[arg(long, value_enum, value_delimiter = ',', default_value = "moka")]
    peers: Vec<Peer>,
    /// Promote L2 hits into L1 with the engine's async pool (a get returns at once and queues
    /// the entry) instead of inline. Default: inline, or `promotion.mode` of `--config`.
    #[arg(long, conflicts_with = "no_l2")]
    async_promotion: bool,
    /// Also write the report as JSON to FILE.
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
    /// Also draw SVG plots into DIR: `replay-hit-ratio.svg` (hit ratio by tier, per cache) and
    /// `replay-latency.svg` (request latency CDFs).
    #[arg(long, value_name = "DIR")]
    plot: Option<PathBuf>,
}

/// `--policy` values.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum PolicyArg {
    S3Fifo,
    Sieve,
}

impl CacheArgs {
    /// The caches of a run: `--config` (or the engine's defaults), overridden by the options
    /// given; budgets not given anywhere get `default_l1` and `default_l2`.
    fn spec(&self, default_l1: ByteSize, default_l2: ByteSize) -> anyhow::Result<CacheSpec> {
        let engine = match &self.config {
            Some(path) => cache_core::Config::load(path)
                .with_context(|| format!("loading the engine config {}", path.display()))?,
            None => cache_core::Config::default(),
        };
        let from_file = self.config.is_some();
        let l1 = match (self.l1_entries, self.l1) {
            (Some(n), _) => L1Budget::Entries(n),
            (None, Some(b)) => L1Budget::Bytes(b.as_u64()),
            (None, None) if from_file => match engine.l1.capacity()? {
                cache_core::L1Capacity::Bytes(n) => L1Budget::Bytes(n),
                cache_core::L1Capacity::Entries(n) => L1Budget::Entries(n),
            },
            (None, None) => L1Budget::Bytes(default_l1.as_u64()),
        };
        let l2_max_bytes = match (self.no_l2, self.l2) {
            (true, _) => None,
            (false, Some(b)) => Some(b.as_u64()),
            (false, None) if from_file => engine.l2.as_ref().map(|o| o.max_bytes.as_u64()),
            (false, None) => Some(default_l2.as_u64()),
        };
        Ok(CacheSpec {
            l1,
            shards: self.shards.or(engine.l1.shards),
            policy: self.policy.map_or(engine.l1.policy, |p| match p {
                PolicyArg::S3Fifo => L1Policy::S3Fifo,
                PolicyArg::Sieve => L1Policy::Sieve,
            }),
            l2_max_bytes,
            l2_dir: self.l2_dir.clone(),
            peers: self.peers.clone(),
            async_promotion: self.async_promotion
                || engine.promotion.mode == cache_core::PromotionMode::Async,
            engine,
        })
    }
}

/// A progress bar on stderr for `total` steps (a counter with a rate when unknown); indicatif
/// draws nothing when stderr is not a terminal.
fn progress_bar(total: Option<u64>) -> indicatif::ProgressBar {
    let bar =
        indicatif::ProgressBar::with_draw_target(total, indicatif::ProgressDrawTarget::stderr());
    let template = if total.is_some() {
        "{elapsed_precise} [{wide_bar}] {human_pos}/{human_len} ({per_sec}, {eta} left)"
    } else {
        "{elapsed_precise} {human_pos} requests ({per_sec})"
    };
    if let Ok(style) = indicatif::ProgressStyle::with_template(template) {
        bar.set_style(style);
    }
    bar
}

fn main() -> ExitCode {
    match run() {
        Ok(code) => code,
        Err(e) => {
            eprintln!("cache-bench: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> anyhow::Result<ExitCode> {
    // Parsed by hand rather than with `Cli::parse` to keep the matches, which tell which flags
    // were given (`load` refuses the options of the other `--cache`).
    let matches = Cli::command().get_matches();
    let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    let command = match cli.command {
        Some(command) => command,
        None => Cli::parse_from(["cache-bench", "zipf"])
            .command
            .context("the default command")?,
    };
    let command_line = std::env::args().collect::<Vec<_>>().join(" ");
    let (spec, (json, plot)) = match command {
        Command::Replay(a) => (
            ReplaySpec {
                source: Source::Trace {
                    path: a.trace,
                    format: a.format,
                },
                cache: a.cache.spec(ByteSize::mib(64), ByteSize::gib(1))?,
                values: ValueSpec {
                    sizes: a.value_size,
                    compression_ratio: a.bytes.compression_ratio,
                    seed: a.seed,
                },
                command: command_line,
            },
            (a.cache.json, a.cache.plot),
        ),
        Command::Zipf(a) => (
            ReplaySpec {
                source: Source::Zipf {
                    keys: a.keys,
                    s: a.s,
                    requests: a.requests,
                    seed: a.seed,
                },
                cache: a.cache.spec(ByteSize::mib(16), ByteSize::mib(64))?,
                values: ValueSpec {
                    sizes: a.value_size,
                    compression_ratio: a.bytes.compression_ratio,
                    seed: a.seed,
                },
                command: command_line,
            },
            (a.cache.json, a.cache.plot),
        ),
        Command::Mrc(a) => return mrc(a, command_line),
        Command::Load(a) => {
            let given = matches.subcommand_matches("load");
            return match a.cache {
                LoadCacheArg::L1 => load(&a, given, command_line),
                LoadCacheArg::L2 => load_l2(&a, given, command_line),
            };
        }
        Command::Churn(a) => return churn(a, command_line),
        Command::Mem(a) => {
            let exe = std::env::current_exe().context("finding this program to re-run it")?;
            let report = cache_bench::load::mem(
                &exe,
                &LoadTarget::ALL,
                a.entries,
                a.value_size,
                command_line,
            )?;
            print!("{}", report.to_table());
            if let Some(path) = &a.json {
                write_json(path, &report)?;
            }
            return Ok(ExitCode::SUCCESS);
        }
        Command::MemChild(a) => {
            let sample = cache_bench::load::mem_sample(a.target, a.entries, a.value_size)?;
            println!("{}", serde_json::to_string(&sample)?);
            return Ok(ExitCode::SUCCESS);
        }
    };
    let report = {
        let bar = progress_bar(match &spec.source {
            Source::Zipf { requests, .. } => Some(*requests),
            Source::Trace { .. } => None,
        });
        let report = cache_bench::replay(&spec, |served| bar.set_position(served));
        bar.finish_and_clear();
        report?
    };
    print!("{}", report.to_table());
    if let Some(path) = json {
        write_json(&path, &report)?;
    }
    if let Some(dir) = plot {
        for path in cache_bench::plot::replay_plots(&report, &dir)? {
            println!("plot: {}", path.display());
        }
    }
    if !report.l1_within_budget {
        eprintln!("cache-bench: L1 exceeded its budget");
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}

/// Writes `value` as pretty JSON to `path` and says so.
fn write_json(path: &Path, value: &impl serde::Serialize) -> anyhow::Result<()> {
    let text = serde_json::to_string_pretty(value)?;
    std::fs::write(path, text + "\n").with_context(|| format!("writing {}", path.display()))?;
    println!("JSON report: {}", path.display());
    Ok(())
}

/// Fails if any option of `A` was given on the command line of `load` (`matches`), naming them:
/// they belong to the other `--cache`.
fn refuse_options_of<A: Args>(
    matches: Option<&ArgMatches>,
    cache: LoadCacheArg,
) -> anyhow::Result<()> {
    let Some(m) = matches else {
        return Ok(());
    };
    let given: Vec<String> = A::augment_args(clap::Command::new("load"))
        .get_arguments()
        .filter(|arg| m.value_source(arg.get_id().as_str()) == Some(ValueSource::CommandLine))
        .map(|arg| format!("--{}", arg.get_long().unwrap_or(arg.get_id().as_str())))
        .collect();
    anyhow::ensure!(
        given.is_empty(),
        "{} only apply with --cache {}",
        given.join(", "),
        cache.name()
    );
    Ok(())
}

fn load(a: &LoadArgs, matches: Option<&ArgMatches>, command: String) -> anyhow::Result<ExitCode> {
    refuse_options_of::<LoadL2Args>(matches, LoadCacheArg::L2)?;
    let l1 = &a.l1;
    let spec = LoadSpec {
        targets: l1.targets.clone(),
        threads: a.threads.last().copied().unwrap_or(2),
        keys: l1.keys,
        zipf: l1.zipf,
        capacity: l1.capacity,
        shards: l1.shards,
        workload: l1.workload,
        read_ratio: l1.read_ratio,
        values: ValueSpec {
            sizes: a.value_size.clone().unwrap_or(ValueSizes::Fixed(100)),
            compression_ratio: l1.bytes.compression_ratio,
            seed: a.seed,
        },
        write_mode: a.write_mode.into(),
        length: a
            .duration
            .map_or(Length::Ops(a.ops.unwrap_or(10_000_000)), Length::Duration),
        runs: a.runs,
        seed: a.seed,
        sequence_len: l1.sequence_len,
        l2_max_bytes: l1.l2.as_u64(),
        dir: l1.l2_dir.clone(),
        command,
    };
    let report = cache_bench::load::load_scaling(&spec, &a.threads, |threads, run, name, r| {
        eprintln!(
            "{threads} threads, run {}: {name}: {:.2} Mops/s, hit ratio {:.2}% ({} warm-up passes)",
            run + 1,
            r.mops,
            r.hit_ratio * 100.0,
            r.warmup_passes
        );
    })?;
    print!("{}", report.to_table());
    if let Some(path) = &a.json {
        write_json(path, &report)?;
    }
    if let Some(dir) = &a.plot {
        for path in cache_bench::plot::load_plots(&report, dir)? {
            println!("plot: {}", path.display());
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn load_l2(
    a: &LoadArgs,
    matches: Option<&ArgMatches>,
    command: String,
) -> anyhow::Result<ExitCode> {
    refuse_options_of::<LoadL1Args>(matches, LoadCacheArg::L1)?;
    anyhow::ensure!(a.plot.is_none(), "--plot only applies with --cache l1");
    let [threads] = a.threads[..] else {
        anyhow::bail!("--cache l2 takes one --threads count");
    };
    let l2 = &a.l2;
    let value_size = match &a.value_size {
        None => cache_bench::load_l2::DEFAULT_VALUE_SIZE,
        Some(ValueSizes::Fixed(n)) => *n,
        Some(other) => anyhow::bail!(
            "--cache l2 puts values of one size: give --value-size BYTES, not {other}"
        ),
    };
    let entries = l2
        .entries
        .unwrap_or_else(|| L2LoadSpec::default_entries(value_size));
    let spec = L2LoadSpec {
        entries,
        value_size,
        compressible: l2.compressible,
        write_mode: a.write_mode.into(),
        writers: l2.writers,
        l2_max_bytes: l2.l2_max_bytes.map_or_else(
            || L2LoadSpec::default_max_bytes(entries, value_size),
            |b| b.as_u64(),
        ),
        dir: l2.dir.clone(),
        threads,
        length: a.duration.map_or(
            Length::Ops(
                a.ops
                    .unwrap_or(cache_bench::load_l2::DEFAULT_GETS_PER_THREAD),
            ),
            Length::Duration,
        ),
        runs: a.runs,
        seed: a.seed,
        command,
    };
    let report = cache_bench::load_l2::load_l2(&spec, |run, name, r| {
        eprintln!(
            "run {}: {name}: {:.0} puts/s ({:.2} s, flush {:.3} s), {:.0} gets/s, \
             p50 {:.1} µs, p99 {:.1} µs",
            run + 1,
            r.puts_per_s,
            r.put_s,
            r.flush_s,
            r.gets_per_s,
            r.get_p50_us,
            r.get_p99_us
        );
    })?;
    print!("{}", report.to_table());
    if let Some(path) = &a.json {
        write_json(path, &report)?;
    }
    Ok(ExitCode::SUCCESS)
}

fn churn(a: ChurnArgs, command: String) -> anyhow::Result<ExitCode> {
    let spec = cache_bench::churn::ChurnSpec {
        max_bytes: a.l2_max_bytes.as_u64(),
        value_size: a.value_size,
        factor: a.factor,
        compressible: a.compressible,
        write_mode: a.write_mode.into(),
        writers: a.writers,
        dir: a.dir,
        seed: a.seed,
        command,
    };
    let report = cache_bench::churn::churn(&spec, |s| {
        eprintln!(
            "written {:.2}x: file {}, live {}",
            s.written_to_max,
            ByteSize(s.file_bytes),
            ByteSize(s.live_bytes)
        );
    })?;
    print!("{}", report.to_table());
    if let Some(path) = &a.json {
        write_json(path, &report)?;
    }
    Ok(ExitCode::SUCCESS)
}

fn mrc(a: MrcArgs, command: String) -> anyhow::Result<ExitCode> {
    let spec = cache_bench::mrc::MrcSpec {
        traces: a.traces,
        format: a.format,
        sizes: a.sizes,
        min_entries: a.min_entries,
        targets: a.targets,
        value_size: a.value_size,
        threads: a.threads,
        command,
    };
    let bar = progress_bar(None);
    let report = cache_bench::mrc::mrc(&spec, |done, total| {
        bar.set_length(total as u64);
        bar.set_position(done as u64);
    });
    bar.finish_and_clear();
    let report = report?;
    print!("{}", report.to_table());
    if let Some(path) = &a.json {
        write_json(path, &report)?;
    }
    if let Some(dir) = &a.plot {
        for path in cache_bench::plot::mrc_curves(&report, dir)? {
            println!("plot: {}", path.display());
        }
    }
    Ok(ExitCode::SUCCESS)
}

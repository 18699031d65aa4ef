//! The `cache-bench` command line. See `cache-bench --help`.

#![forbid(unsafe_code)]

use std::io::IsTerminal as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;
use bytesize::ByteSize;
use cache_bench::load::{Length, LoadSpec, LoadTarget};
use cache_bench::trace::Format;
use cache_bench::{CacheSpec, L1Budget, Peer, ReplaySpec, Source};
use cache_core::L1Policy;
use clap::{Args, Parser, Subcommand};

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
    /// Multi-threaded synthetic load on in-memory caches: our L1 (`cache-l1`), moka and
    /// `quick_cache`, one after another, each warmed up, then timed with all threads released
    /// together; reports Mops/s and hit ratio of the median run.
    Load(LoadArgs),
    /// Resident memory per entry of `cache-l1`, moka and `quick_cache`, each measured in a
    /// fresh child process: RSS before building the cache and after inserting N entries.
    Mem(MemArgs),
    /// One `mem` measurement in this process (what `mem` runs in each child).
    #[command(name = "mem-child", hide = true)]
    MemChild(MemChildArgs),
}

/// `--cache` values of `load`.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum LoadCacheArg {
    /// The in-memory caches: our L1, moka and `quick_cache`.
    L1,
}

#[derive(Debug, Args)]
struct LoadArgs {
    /// What to load: `l1` (our L1 beside moka and `quick_cache`), the only value for now.
    #[arg(long, value_enum, default_value = "l1")]
    cache: LoadCacheArg,
    /// Caches to measure, comma separated, in this order.
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        default_value = "cache-l1,moka,quick_cache"
    )]
    targets: Vec<LoadTarget>,
    /// Threads running ops at once.
    #[arg(long, default_value_t = 2)]
    threads: usize,
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
    /// Share of ops that are gets (a miss inserts nothing); the rest insert their key.
    #[arg(long, value_name = "R", default_value_t = 1.0)]
    read_ratio: f64,
    /// Bytes per value (at least 8).
    #[arg(long, value_name = "BYTES", default_value_t = 100)]
    value_size: u32,
    /// Ops per thread.
    #[arg(long, default_value_t = 10_000_000, conflicts_with = "duration")]
    ops: u64,
    /// Run each timed part for this long instead of a number of ops (e.g. `5s`).
    #[arg(long, value_parser = humantime::parse_duration)]
    duration: Option<std::time::Duration>,
    /// Runs; each measures every target, and the median run is reported.
    #[arg(long, default_value_t = 1)]
    runs: usize,
    /// RNG seed of the key sequences.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Keys (and op kinds) each thread draws before timing and cycles through; a power of two.
    #[arg(long, value_name = "N", default_value_t = cache_bench::load::SEQUENCE_LEN)]
    sequence_len: usize,
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

#[derive(Debug, Args)]
struct ReplayArgs {
    /// The trace file.
    trace: PathBuf,
    /// Trace format; default: from the file name (ignoring .zst), and for .trace files from the
    /// number of fields on the first line.
    #[arg(long, value_enum)]
    format: Option<Format>,
    /// Value size in bytes for traces that record no sizes (ARC, LIRS).
    #[arg(long, value_name = "BYTES", default_value_t = 512)]
    value_size: u32,
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
    /// Value size in bytes.
    #[arg(long, value_name = "BYTES", default_value_t = 1024)]
    value_size: u32,
    /// RNG seed.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    #[command(flatten)]
    cache: CacheArgs,
}

#[derive(Debug, Args)]
struct CacheArgs {
    /// L1 byte budget (e.g. 64MiB). Default: 64MiB for `replay`, 16MiB for `zipf`.
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
    #[arg(long, value_enum, default_value = "s3-fifo")]
    policy: PolicyArg,
    /// L2 byte budget (e.g. 1GiB). Default: 1GiB for `replay`, 64MiB for `zipf`.
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
    /// our L1: moka (W-TinyLFU), `quick_cache` (S3-FIFO with CLOCK-Pro ideas), lru (exact LRU).
    #[arg(long, value_enum, value_delimiter = ',', default_value = "moka")]
    peers: Vec<Peer>,
    /// Also write the report as JSON to FILE.
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
}

/// `--policy` values.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum PolicyArg {
    S3Fifo,
    Sieve,
}

impl CacheArgs {
    fn spec(&self, default_l1: ByteSize, default_l2: ByteSize) -> CacheSpec {
        CacheSpec {
            l1: match (self.l1_entries, self.l1) {
                (Some(n), _) => L1Budget::Entries(n),
                (None, l1) => L1Budget::Bytes(l1.unwrap_or(default_l1).as_u64()),
            },
            shards: self.shards,
            policy: match self.policy {
                PolicyArg::S3Fifo => L1Policy::S3Fifo,
                PolicyArg::Sieve => L1Policy::Sieve,
            },
            l2_max_bytes: (!self.no_l2).then(|| self.l2.unwrap_or(default_l2).as_u64()),
            l2_dir: self.l2_dir.clone(),
            peers: self.peers.clone(),
        }
    }
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
    let command = match Cli::parse().command {
        Some(command) => command,
        None => Cli::parse_from(["cache-bench", "zipf"])
            .command
            .context("the default command")?,
    };
    let command_line = std::env::args().collect::<Vec<_>>().join(" ");
    let (spec, json) = match command {
        Command::Replay(a) => (
            ReplaySpec {
                source: Source::Trace {
                    path: a.trace,
                    format: a.format,
                },
                cache: a.cache.spec(ByteSize::mib(64), ByteSize::gib(1)),
                value_size: a.value_size,
                command: command_line,
            },
            a.cache.json,
        ),
        Command::Zipf(a) => (
            ReplaySpec {
                source: Source::Zipf {
                    keys: a.keys,
                    s: a.s,
                    requests: a.requests,
                    seed: a.seed,
                },
                cache: a.cache.spec(ByteSize::mib(16), ByteSize::mib(64)),
                value_size: a.value_size,
                command: command_line,
            },
            a.cache.json,
        ),
        Command::Mrc(a) => return mrc(a, command_line),
        Command::Load(a) => return load(&a, command_line),
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
    let report = cache_bench::replay(&spec, |_| {})?;
    print!("{}", report.to_table());
    if let Some(path) = json {
        write_json(&path, &report)?;
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

fn load(a: &LoadArgs, command: String) -> anyhow::Result<ExitCode> {
    let LoadCacheArg::L1 = a.cache;
    let spec = LoadSpec {
        targets: a.targets.clone(),
        threads: a.threads,
        keys: a.keys,
        zipf: a.zipf,
        capacity: a.capacity,
        shards: a.shards,
        read_ratio: a.read_ratio,
        value_size: a.value_size,
        length: a.duration.map_or(Length::Ops(a.ops), Length::Duration),
        runs: a.runs,
        seed: a.seed,
        sequence_len: a.sequence_len,
        command,
    };
    let report = cache_bench::load::load(&spec, |run, name, r| {
        eprintln!(
            "run {}: {name}: {:.2} Mops/s, hit ratio {:.2}% ({} warm-up passes)",
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
    let interactive = std::io::stderr().is_terminal();
    let report = cache_bench::mrc::mrc(&spec, |done, total| {
        if interactive {
            eprint!("\r{done}/{total} replays done");
            if done == total {
                eprintln!();
            }
        }
    })?;
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

//! What a run prints and writes as JSON.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use hdrhistogram::Histogram;
use serde::Serialize;

use crate::adapter::DiskIo;
use crate::replay::Tally;

/// Largest latency the bench's histograms hold (longer ones are clamped to it): 60 s, in
/// nanoseconds.
pub const MAX_LATENCY_NS: u64 = 60_000_000_000;

/// An empty latency histogram: nanoseconds from 1 to [`MAX_LATENCY_NS`], 3 significant digits.
/// Record with [`record_since`].
///
/// # Panics
///
/// Never: the bounds are constants hdrhistogram accepts.
pub fn latency_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, MAX_LATENCY_NS, 3).expect("constant bounds are valid")
}

/// Records the nanoseconds since `start` (at least 1, clamped to the histogram's range).
#[inline]
pub fn record_since(h: &mut Histogram<u64>, start: std::time::Instant) {
    h.saturating_record(nanos_since(start));
}

/// Nanoseconds since `start`, at least 1 (a histogram's lowest value).
#[inline]
pub fn nanos_since(start: std::time::Instant) -> u64 {
    u64::try_from(start.elapsed().as_nanos())
        .unwrap_or(u64::MAX)
        .max(1)
}

/// A byte count of this process from `/proc/self/status`: `VmRSS` (resident now) or `VmHWM`
/// (the peak resident set), in bytes.
///
/// # Errors
///
/// If `/proc/self/status` cannot be read or lacks the field (not Linux).
pub fn proc_status_bytes(field: &str) -> anyhow::Result<u64> {
    proc_kib_field("/proc/self/status", field)
}

/// A field of `/proc/meminfo` (e.g. `MemAvailable`), in bytes.
///
/// # Errors
///
/// If `/proc/meminfo` cannot be read or lacks the field (not Linux).
pub fn meminfo_bytes(field: &str) -> anyhow::Result<u64> {
    proc_kib_field("/proc/meminfo", field)
}

/// The `field: N kB` line of the proc file at `path`, in bytes.
fn proc_kib_field(path: &str, field: &str) -> anyhow::Result<u64> {
    use anyhow::Context as _;
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading {path} (memory figures need Linux)"))?;
    let kib = text
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().strip_suffix("kB"))
        .and_then(|v| v.trim().parse::<u64>().ok())
        .with_context(|| format!("no {field} in {path}"))?;
    Ok(kib * 1024)
}

/// Quantiles a latency CDF is drawn at: every percent, then every 0.1% and 0.01% of the tail.
fn cdf_quantiles() -> impl Iterator<Item = f64> {
    let head = (0..100).map(|i| f64::from(i) / 100.0);
    let tail = (1..10).map(|i| 0.99 + f64::from(i) / 1000.0);
    let far = (1..=10).map(|i| 0.999 + f64::from(i) / 10_000.0);
    head.chain(tail).chain(far)
}

/// The CDF of a latency histogram of nanoseconds: `[quantile, microseconds]` pairs at
/// [`cdf_quantiles`]; empty for an empty histogram.
pub fn latency_cdf(h: &Histogram<u64>) -> Vec<[f64; 2]> {
    if h.is_empty() {
        return Vec::new();
    }
    cdf_quantiles()
        .map(|q| [q, micros(h.value_at_quantile(q))])
        .collect()
}

/// Nanoseconds as microseconds.
#[expect(
    clippy::cast_precision_loss,
    reason = "latencies are far below 2^53 ns"
)]
pub fn micros(ns: u64) -> f64 {
    ns as f64 / 1e3
}

/// The machine a run measured, so figures are read against their hardware.
#[derive(Debug, Clone, Serialize)]
pub struct Machine {
    /// Logical CPUs available to the process.
    pub cpus: usize,
    /// CPU model name, if the OS tells (`/proc/cpuinfo` on Linux).
    pub cpu_model: Option<String>,
    /// `os-arch`.
    pub os: String,
}

impl std::fmt::Display for Machine {
    /// `2 CPUs, <model>, <os-arch>`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} CPUs, {}, {}",
            self.cpus,
            self.cpu_model.as_deref().unwrap_or("unknown CPU"),
            self.os
        )
    }
}

impl Machine {
    /// Reads the machine's facts.
    pub fn detect() -> Self {
        let cpu_model = std::fs::read_to_string("/proc/cpuinfo").ok().and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_owned())
        });
        Self {
            cpus: std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get),
            cpu_model,
            os: format!("{}-{}", std::env::consts::OS, std::env::consts::ARCH),
        }
    }
}

/// How the tiered cache was set up.
#[derive(Debug, Clone, Serialize)]
pub struct Setup {
    /// `"bytes"` or `"entries"`: what the L1 budget counts.
    pub l1_unit: &'static str,
    /// L1 budget, in `l1_unit`.
    pub l1_capacity: u64,
    /// L1 shard count.
    pub l1_shards: usize,
    /// L1 eviction policy (`"s3-fifo"` or `"sieve"`).
    pub l1_policy: cache_core::L1Policy,
    /// L2 budget in bytes, if L2 is on.
    pub l2_max_bytes: Option<u64>,
    /// The values: sizes given to requests without one (every request of a synthetic
    /// workload), how well they compress, and their seed.
    pub values: crate::workload::ValueReport,
    /// The whole engine config the tiered cache was opened with (`--config` with the
    /// command line's overrides), as `Config` serializes it.
    pub engine: cache_core::Config,
}

/// L2 figures of the tiered cache at the end of a run.
#[derive(Debug, Clone, Serialize)]
pub struct L2Report {
    /// Live bytes at the end.
    pub live_bytes: u64,
    /// Budget.
    pub max_bytes: u64,
    /// Database file size at the end.
    pub file_bytes: u64,
    /// Records written.
    pub insertions: u64,
    /// Records evicted to keep the budget.
    pub evictions: u64,
    /// Records that failed verification.
    pub corrupt_records: u64,
    /// Records stored compressed.
    pub compressed_insertions: u64,
}

/// One peer's figures.
#[derive(Debug, Clone, Serialize)]
pub struct PeerReport {
    /// Requests served.
    pub requests: u64,
    /// Hits, both tiers.
    pub hits: u64,
    /// Hits served from memory (all hits of a memory-only cache).
    pub l1_hits: u64,
    /// Hits served from disk (hybrid caches).
    pub l2_hits: u64,
    /// `l1_hits / requests`.
    pub l1_hit_ratio: f64,
    /// `l2_hits / requests`.
    pub l2_hit_ratio: f64,
    /// Misses.
    pub misses: u64,
    /// Misses over requests.
    pub miss_ratio: f64,
    /// Missed bytes over requested bytes.
    pub byte_miss_ratio: f64,
    /// Requests per second of serving time.
    pub throughput_rps: f64,
    /// Serving time in seconds.
    pub elapsed_s: f64,
    /// Bytes its disk tier read and wrote (hybrid caches).
    pub disk: Option<DiskIo>,
    /// Latency of every request (lookup, and the insert on a miss), in microseconds.
    pub latency_us: Percentiles,
}

impl From<&Tally> for PeerReport {
    fn from(t: &Tally) -> Self {
        Self {
            requests: t.requests,
            hits: t.l1_hits + t.l2_hits,
            l1_hits: t.l1_hits,
            l2_hits: t.l2_hits,
            l1_hit_ratio: t.l1_hit_ratio(),
            l2_hit_ratio: t.l2_hit_ratio(),
            misses: t.misses,
            miss_ratio: t.miss_ratio(),
            byte_miss_ratio: t.byte_miss_ratio(),
            throughput_rps: t.throughput_rps(),
            elapsed_s: t.elapsed.as_secs_f64(),
            disk: t.disk,
            latency_us: Percentiles::of(&t.latency_ns),
        }
    }
}

/// Promotion of L2 hits into L1 over a replay (the engine's counters at the end, after the
/// async pool was drained).
#[derive(Debug, Clone, Serialize)]
pub struct PromotionReport {
    /// `inline` or `async`.
    pub mode: &'static str,
    /// Promotions handed to the async pool.
    pub queued: u64,
    /// Promotions the pool's workers finished.
    pub completed: u64,
    /// Promotions dropped because the pool's queue was full.
    pub dropped: u64,
    /// Promotions not queued because the key was in flight already.
    pub coalesced: u64,
    /// Promotions not installed because the key changed after the L2 read.
    pub superseded: u64,
    /// Promotions installed into L1 (inline or by the pool).
    pub installed: u64,
}

/// Latency percentiles of one request kind, in microseconds.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Percentiles {
    /// Median.
    pub p50: f64,
    /// 99th percentile.
    pub p99: f64,
    /// 99.9th percentile.
    pub p999: f64,
    /// Slowest.
    pub max: f64,
    /// Requests measured.
    pub count: u64,
}

impl Percentiles {
    /// The percentiles of a histogram of nanoseconds.
    pub fn of(h: &Histogram<u64>) -> Self {
        let us = |q: f64| micros(h.value_at_quantile(q));
        Self {
            p50: us(0.5),
            p99: us(0.99),
            p999: us(0.999),
            max: micros(h.max()),
            count: h.len(),
        }
    }
}

/// Our cache's latency per request kind.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct LatencyReport {
    /// Every request: the lookup, and the insert on a miss.
    pub request: Percentiles,
    /// Requests served from L2 (the read, verification, and the promotion inline or its
    /// enqueueing).
    pub l2_hit: Percentiles,
}

/// Everything a replay measured; serialized as the `--json` output.
#[derive(Debug, Clone, Serialize)]
pub struct ReplayReport {
    /// The command line that made it.
    pub command: String,
    /// The trace file, or a description of the synthetic workload.
    pub source: String,
    /// The trace format, for trace files.
    pub format: Option<crate::trace::Format>,
    /// The machine.
    pub machine: Machine,
    /// The tiered cache's setup.
    pub setup: Setup,
    /// Requests replayed.
    pub requests: u64,
    /// Requests served from L1.
    pub l1_hits: u64,
    /// Requests served from L2.
    pub l2_hits: u64,
    /// Requests served by neither tier.
    pub misses: u64,
    /// Misses whose value the cache refused to store (larger than a tier's budget).
    pub uncacheable: u64,
    /// `l1_hits / requests`.
    pub l1_hit_ratio: f64,
    /// `l2_hits / requests`.
    pub l2_hit_ratio: f64,
    /// `misses / requests`, a fraction.
    pub miss_ratio: f64,
    /// Missed bytes over requested bytes, a fraction.
    pub byte_miss_ratio: f64,
    /// Requests per second of serving time.
    pub throughput_rps: f64,
    /// Serving time in seconds.
    pub elapsed_s: f64,
    /// Highest L1 usage seen (at chunk ends and at the end), in `setup.l1_unit`.
    pub l1_max_in_use: u64,
    /// Whether L1 usage stayed within its budget at every check.
    pub l1_within_budget: bool,
    /// L2 figures, if L2 was on.
    pub l2: Option<L2Report>,
    /// How L2 hits were promoted into L1, and what the async pool did.
    pub promotion: PromotionReport,
    /// Our cache's latency per request kind, in microseconds.
    pub latency_us: LatencyReport,
    /// Bytes our L2 read from and wrote to its file (counted at redb's storage backend), if L2
    /// was on.
    pub disk: Option<DiskIo>,
    /// Peak resident memory of the whole bench process (`VmHWM`), in bytes, at the end: every
    /// cache of the run and the trace reader together. `None` off Linux.
    pub peak_rss_bytes: Option<u64>,
    /// The same requests through each peer, by name (`moka`, `quick_cache`, `lru`, `foyer`).
    pub peers: BTreeMap<String, PeerReport>,
    /// Each target's request latency CDF, by name (`tiered` and the peers'):
    /// `[quantile, microseconds]` pairs, what `--plot` draws.
    pub latency_cdf_us: BTreeMap<String, Vec<[f64; 2]>>,
}

fn pct(x: f64) -> String {
    format!("{:.3}%", x * 100.0)
}

fn rate(x: f64) -> String {
    if x >= 1e6 {
        format!("{:.2} M/s", x / 1e6)
    } else {
        format!("{:.1} k/s", x / 1e3)
    }
}

impl ReplayReport {
    /// The report as a table for the terminal.
    pub fn to_table(&self) -> String {
        let mut out = String::new();
        let s = &self.setup;
        let _ = writeln!(out, "source:   {}", self.source);
        let _ = writeln!(out, "machine:  {}", self.machine);
        let l2 = s
            .l2_max_bytes
            .map_or_else(|| "off".to_owned(), |b| bytesize::ByteSize(b).to_string());
        let _ = writeln!(
            out,
            "tiered:   L1 {} {} in {} shard(s), {:?}; L2 {}",
            s.l1_capacity, s.l1_unit, s.l1_shards, s.l1_policy, l2
        );
        let v = &s.values;
        let sizes = if self.format.is_some_and(crate::trace::Format::is_sized) {
            "the trace's sizes".to_owned()
        } else {
            format!("{} (mean {:.0} bytes)", v.sizes, v.mean_bytes)
        };
        let _ = writeln!(
            out,
            "values:   {sizes}, compression ratio {}, seed {}",
            v.compression_ratio, v.seed
        );
        let _ = writeln!(out, "requests: {}\n", self.requests);
        self.targets_table(&mut out);
        let _ = writeln!(
            out,
            "\nL1 in use: max {} of {} {} ({})",
            self.l1_max_in_use,
            s.l1_capacity,
            s.l1_unit,
            if self.l1_within_budget {
                "within budget"
            } else {
                "OVER BUDGET"
            }
        );
        if let Some(l2) = &self.l2 {
            let _ = writeln!(
                out,
                "L2:        {} live of {} budget, file {}; {} writes ({} compressed), {} \
                 evictions, {} corrupt",
                bytesize::ByteSize(l2.live_bytes),
                bytesize::ByteSize(l2.max_bytes),
                bytesize::ByteSize(l2.file_bytes),
                l2.insertions,
                l2.compressed_insertions,
                l2.evictions,
                l2.corrupt_records
            );
            let p = &self.promotion;
            let _ = writeln!(
                out,
                "promotion: {}; {} installed; pool: {} queued, {} completed, {} dropped, {} \
                 coalesced, {} superseded",
                p.mode, p.installed, p.queued, p.completed, p.dropped, p.coalesced, p.superseded
            );
            let l = &self.latency_us.l2_hit;
            let _ = writeln!(
                out,
                "L2 hits:   p50 {:.1} µs, p99 {:.1} µs, p99.9 {:.1} µs, max {:.1} µs ({} hits)",
                l.p50, l.p99, l.p999, l.max, l.count
            );
        }
        if let Some(rss) = self.peak_rss_bytes {
            let _ = writeln!(
                out,
                "memory:    peak resident {} (the whole bench: every cache and the trace reader)",
                bytesize::ByteSize(rss)
            );
        }
        if self.uncacheable > 0 {
            let _ = writeln!(
                out,
                "uncacheable: {} requests larger than a tier's budget",
                self.uncacheable
            );
        }
        out
    }
}

impl ReplayReport {
    /// One row per target: hit ratio by tier, miss ratios, throughput, p99, disk bytes.
    fn targets_table(&self, out: &mut String) {
        let _ = writeln!(
            out,
            "{:<11} {:>10} {:>10} {:>10} {:>10} {:>11} {:>9} {:>10} {:>10} {:>8}",
            "target",
            "L1 hit",
            "L2 hit",
            "miss",
            "byte miss",
            "throughput",
            "p99 µs",
            "disk read",
            "disk write",
            "vs moka"
        );
        let moka_rps = self.peers.get("moka").map(|p| p.throughput_rps);
        let vs = |rps: f64| moka_rps.map_or("-".into(), |m| format!("{:.2}x", rps / m));
        let bytes = |d: Option<DiskIo>, f: fn(&DiskIo) -> u64| {
            d.map_or("-".into(), |d| bytesize::ByteSize(f(&d)).to_string())
        };
        let mut row = |name: &str, tiers: [f64; 4], rps: f64, p99: f64, disk: Option<DiskIo>| {
            let _ = writeln!(
                out,
                "{name:<11} {:>10} {:>10} {:>10} {:>10} {:>11} {p99:>9.1} {:>10} {:>10} {:>8}",
                pct(tiers[0]),
                pct(tiers[1]),
                pct(tiers[2]),
                pct(tiers[3]),
                rate(rps),
                bytes(disk, |d| d.read_bytes),
                bytes(disk, |d| d.written_bytes),
                vs(rps),
            );
        };
        row(
            "tiered",
            [
                self.l1_hit_ratio,
                self.l2_hit_ratio,
                self.miss_ratio,
                self.byte_miss_ratio,
            ],
            self.throughput_rps,
            self.latency_us.request.p99,
            self.disk,
        );
        for (name, p) in &self.peers {
            row(
                name,
                [
                    p.l1_hit_ratio,
                    p.l2_hit_ratio,
                    p.miss_ratio,
                    p.byte_miss_ratio,
                ],
                p.throughput_rps,
                p.latency_us.p99,
                p.disk,
            );
        }
    }
}

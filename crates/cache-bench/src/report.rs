//! What a run prints and writes as JSON.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use hdrhistogram::Histogram;
use serde::Serialize;

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
    let ns = u64::try_from(start.elapsed().as_nanos()).unwrap_or(u64::MAX);
    h.saturating_record(ns.max(1));
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
    /// Size given to requests without one, in bytes.
    pub default_value_size: u32,
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
    /// Hits.
    pub hits: u64,
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
}

impl From<&Tally> for PeerReport {
    fn from(t: &Tally) -> Self {
        Self {
            requests: t.requests,
            hits: t.l1_hits + t.l2_hits,
            misses: t.misses,
            miss_ratio: t.miss_ratio(),
            byte_miss_ratio: t.byte_miss_ratio(),
            throughput_rps: t.throughput_rps(),
            elapsed_s: t.elapsed.as_secs_f64(),
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

/// Our cache's latency per request kind.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct LatencyReport {
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
    /// The same requests through each peer, by name (`moka`, `quick_cache`, `lru`).
    pub peers: BTreeMap<String, PeerReport>,
}

fn pct(x: f64) -> String {
    format!("{:.4}%", x * 100.0)
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
        let _ = writeln!(out, "requests: {}\n", self.requests);
        let _ = writeln!(
            out,
            "{:<11} {:>11} {:>11} {:>11} {:>11} {:>11} {:>13}",
            "target", "L1 hit", "L2 hit", "miss", "byte miss", "throughput", "ratio vs moka"
        );
        let moka_rps = self.peers.get("moka").map(|p| p.throughput_rps);
        let vs = |rps: f64| moka_rps.map_or("-".into(), |m| format!("{:.2}x", rps / m));
        let _ = writeln!(
            out,
            "{:<11} {:>11} {:>11} {:>11} {:>11} {:>11} {:>13}",
            "tiered",
            pct(self.l1_hit_ratio),
            pct(self.l2_hit_ratio),
            pct(self.miss_ratio),
            pct(self.byte_miss_ratio),
            rate(self.throughput_rps),
            vs(self.throughput_rps),
        );
        for (name, p) in &self.peers {
            let _ = writeln!(
                out,
                "{:<11} {:>11} {:>11} {:>11} {:>11} {:>11} {:>13}",
                name,
                pct(1.0 - p.miss_ratio),
                "-",
                pct(p.miss_ratio),
                pct(p.byte_miss_ratio),
                rate(p.throughput_rps),
                vs(p.throughput_rps),
            );
        }
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
                "L2:        {} live of {} budget, file {}; {} writes, {} evictions, {} corrupt",
                bytesize::ByteSize(l2.live_bytes),
                bytesize::ByteSize(l2.max_bytes),
                bytesize::ByteSize(l2.file_bytes),
                l2.insertions,
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

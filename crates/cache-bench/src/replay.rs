//! Replaying a stream of requests through several targets in one run.
//!
//! The stream is read once, in chunks: each chunk is served by every target in turn, and only
//! the serving is timed. Memory stays constant whatever the trace's length, trace parsing costs
//! no target any time, and all targets see exactly the same requests.

use std::time::{Duration, Instant};

use hdrhistogram::Histogram;

use crate::adapter::{DiskIo, Outcome, Target};
use crate::trace::{Request, TraceError};

/// Requests per chunk.
pub const CHUNK: usize = 1 << 16;

/// What one target did over a replay.
#[derive(Debug, Clone)]
pub struct Tally {
    /// Requests served.
    pub requests: u64,
    /// Served from the in-memory tier.
    pub l1_hits: u64,
    /// Served from the durable tier.
    pub l2_hits: u64,
    /// Served by neither (including uncacheable ones).
    pub misses: u64,
    /// Misses whose value the target refused to store.
    pub uncacheable: u64,
    /// Sum of the sizes of all requests, in bytes.
    pub bytes_requested: u64,
    /// Sum of the sizes of missed requests, in bytes.
    pub bytes_missed: u64,
    /// Time spent serving (parsing excluded).
    pub elapsed: Duration,
    /// Highest in-memory usage seen at chunk ends, in the budget's unit, if the target reports it.
    pub l1_max_in_use: Option<u64>,
    /// The in-memory budget the target reports.
    pub l1_capacity: Option<u64>,
    /// Latency of each request served from the durable tier, in nanoseconds (each request is
    /// timed on its own, so this includes one clock read).
    pub l2_hit_latency_ns: Histogram<u64>,
    /// Latency of every request, in nanoseconds (each timed on its own).
    pub latency_ns: Histogram<u64>,
    /// Bytes the target's disk tier read and wrote over the replay, if it has one (read at
    /// the end).
    pub disk: Option<DiskIo>,
}

impl Default for Tally {
    fn default() -> Self {
        Self {
            requests: 0,
            l1_hits: 0,
            l2_hits: 0,
            misses: 0,
            uncacheable: 0,
            bytes_requested: 0,
            bytes_missed: 0,
            elapsed: Duration::ZERO,
            l1_max_in_use: None,
            l1_capacity: None,
            l2_hit_latency_ns: crate::report::latency_histogram(),
            latency_ns: crate::report::latency_histogram(),
            disk: None,
        }
    }
}

/// `part / whole`, or 0 when `whole` is 0.
#[expect(clippy::cast_precision_loss, reason = "ratios of counters")]
pub(crate) fn ratio(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 / whole as f64
    }
}

impl Tally {
    fn record(&mut self, outcome: Outcome, size: u32) {
        self.requests += 1;
        self.bytes_requested += u64::from(size);
        match outcome {
            Outcome::L1Hit => self.l1_hits += 1,
            Outcome::L2Hit => self.l2_hits += 1,
            Outcome::Miss | Outcome::Uncacheable => {
                self.misses += 1;
                self.bytes_missed += u64::from(size);
                if outcome == Outcome::Uncacheable {
                    self.uncacheable += 1;
                }
            }
        }
    }

    /// Misses over requests.
    pub fn miss_ratio(&self) -> f64 {
        ratio(self.misses, self.requests)
    }

    /// L1 hits over requests.
    pub fn l1_hit_ratio(&self) -> f64 {
        ratio(self.l1_hits, self.requests)
    }

    /// L2 hits over requests.
    pub fn l2_hit_ratio(&self) -> f64 {
        ratio(self.l2_hits, self.requests)
    }

    /// Missed bytes over requested bytes.
    pub fn byte_miss_ratio(&self) -> f64 {
        ratio(self.bytes_missed, self.bytes_requested)
    }

    /// Requests served per second of serving time.
    pub fn throughput_rps(&self) -> f64 {
        let secs = self.elapsed.as_secs_f64();
        #[expect(clippy::cast_precision_loss, reason = "a rate")]
        if secs > 0.0 {
            self.requests as f64 / secs
        } else {
            0.0
        }
    }

    fn sample_l1(&mut self, target: &dyn Target) {
        if let Some((used, capacity)) = target.l1_usage() {
            self.l1_max_in_use = Some(self.l1_max_in_use.unwrap_or(0).max(used));
            self.l1_capacity = Some(capacity);
        }
    }
}

/// Serves every request of `requests` with every target, in chunks of [`CHUNK`]. A request
/// without a size gets the size `values` gives its key. `progress` is called after each chunk
/// with the number of requests served so far.
///
/// # Errors
///
/// The first trace error, or the first target error (a failing cache, or wrong bytes).
pub fn run(
    requests: impl Iterator<Item = Result<Request, TraceError>>,
    values: &crate::workload::ValueSpec,
    targets: &[&dyn Target],
    mut progress: impl FnMut(u64),
) -> anyhow::Result<Vec<Tally>> {
    let mut tallies = vec![Tally::default(); targets.len()];
    let mut chunk: Vec<(u64, u32)> = Vec::with_capacity(CHUNK);
    let mut requests = requests.peekable();
    let mut served = 0u64;
    while requests.peek().is_some() {
        chunk.clear();
        for r in requests.by_ref().take(CHUNK) {
            let r = r?;
            chunk.push((r.key, r.size.unwrap_or_else(|| values.size_of(r.key))));
        }
        for (target, tally) in targets.iter().zip(&mut tallies) {
            let start = Instant::now();
            for &(key, size) in &chunk {
                let t0 = Instant::now();
                let outcome = target.serve(key, size)?;
                let ns = crate::report::nanos_since(t0);
                tally.latency_ns.saturating_record(ns);
                if outcome == Outcome::L2Hit {
                    tally.l2_hit_latency_ns.saturating_record(ns);
                }
                tally.record(outcome, size);
            }
            tally.elapsed += start.elapsed();
            tally.sample_l1(*target);
        }
        served += chunk.len() as u64;
        progress(served);
    }
    for (target, tally) in targets.iter().zip(&mut tallies) {
        tally.disk = target.disk_io();
    }
    Ok(tallies)
}

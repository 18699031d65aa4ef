//! Miss-ratio curves: every trace at several cache sizes through several caches, in entry mode.
//!
//! Each trace is read once first to count its requests and unique keys, so that sizes can be
//! given as a share of the unique keys, as `../shared/reference/miss-ratio-count.csv` does
//! (rounded to the nearest entry, at least 10). Then every (trace, size, cache) is one job: a
//! fresh cache replays the whole trace alone, single-threaded, through [`crate::replay::run`]
//! (a get per request, an insert on a miss, every hit checked against the stored bytes), which
//! is what the reference simulator does. Jobs run on a work queue over
//! [`std::thread::available_parallelism`] threads, longest first.
//!
//! Every entry weighs 1 and trace sizes are ignored: a value is `value_size` bytes whatever the
//! trace says, so a sized trace measures object miss ratios.

use std::collections::{BTreeMap, HashSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use anyhow::Context as _;
use serde::Serialize;

use crate::adapter::{L1Target, LruTarget, MokaTarget, QuickCacheTarget, Target, Values};
use crate::report::Machine;
use crate::trace::{Format, Request, TraceReader};

/// The fewest entries a size given as a percentage gets, as in the reference CSV.
pub const MIN_PERCENT_ENTRIES: u64 = 10;

/// A cache size: a share of the trace's unique keys, or an entry count.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum CacheSize {
    /// Percent (0 < p ≤ 100) of the trace's unique keys, rounded to the nearest entry (halves
    /// away from zero) and at least [`MIN_PERCENT_ENTRIES`], as in the reference CSV.
    Percent(f64),
    /// An absolute number of entries, at least 1.
    Entries(u64),
}

impl CacheSize {
    /// Entries this size gives a trace with `unique_keys` distinct keys.
    pub fn entries(self, unique_keys: u64) -> u64 {
        match self {
            #[expect(
                clippy::cast_precision_loss,
                clippy::cast_possible_truncation,
                clippy::cast_sign_loss,
                reason = "key counts far below 2^53; the product is positive and at most the count"
            )]
            Self::Percent(p) => {
                ((unique_keys as f64 * p / 100.0).round() as u64).max(MIN_PERCENT_ENTRIES)
            }
            Self::Entries(n) => n,
        }
    }
}

impl std::fmt::Display for CacheSize {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Percent(p) => write!(f, "{p}%"),
            Self::Entries(n) => write!(f, "{n}"),
        }
    }
}

impl FromStr for CacheSize {
    type Err = String;

    /// `0.1%` (a share of the unique keys) or `1000` (entries).
    fn from_str(s: &str) -> Result<Self, String> {
        let s = s.trim();
        if let Some(p) = s.strip_suffix('%') {
            let p: f64 = p
                .trim()
                .parse()
                .map_err(|_| format!("{s:?} is not a percentage"))?;
            if !(p > 0.0 && p <= 100.0) {
                return Err(format!("{s:?}: a percentage must be in (0, 100]"));
            }
            Ok(Self::Percent(p))
        } else {
            let n: u64 = s.parse().map_err(|_| {
                format!("{s:?} is neither a percentage (`1%`) nor an entry count (`1000`)")
            })?;
            if n == 0 {
                return Err("a cache needs at least 1 entry".into());
            }
            Ok(Self::Entries(n))
        }
    }
}

/// A cache `cache-bench mrc` measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, clap::ValueEnum)]
pub enum MrcTarget {
    /// Our L1 (`cache_l1`) with its default policy (S3-FIFO) and default shard count.
    #[value(name = "s3-fifo")]
    S3Fifo,
    /// Our L1 with `Policy::Sieve` in 1 shard: the paper's SIEVE, which must reproduce the
    /// reference CSV's SIEVE rows.
    #[value(name = "sieve")]
    Sieve,
    /// `moka::sync::Cache` (W-TinyLFU).
    #[value(name = "moka")]
    Moka,
    /// `quick_cache::sync::Cache` at its default shard count.
    #[value(name = "quick_cache")]
    QuickCache,
    /// An exact LRU.
    #[value(name = "lru")]
    Lru,
}

impl MrcTarget {
    /// Every target, in report order.
    pub const ALL: [Self; 5] = [
        Self::S3Fifo,
        Self::Sieve,
        Self::Moka,
        Self::QuickCache,
        Self::Lru,
    ];

    /// The name in reports and JSON: `s3-fifo`, `sieve`, `moka`, `quick_cache`, `lru`.
    pub fn name(self) -> &'static str {
        match self {
            Self::S3Fifo => "s3-fifo",
            Self::Sieve => "sieve",
            Self::Moka => "moka",
            Self::QuickCache => "quick_cache",
            Self::Lru => "lru",
        }
    }

    /// A fresh cache of `entries` entries (every entry weighs 1).
    ///
    /// # Errors
    ///
    /// The engine's, for a capacity it refuses.
    pub fn build(self, entries: u64, values: Values) -> anyhow::Result<Box<dyn Target>> {
        Ok(match self {
            Self::S3Fifo => Box::new(L1Target::new(
                self.name(),
                entries,
                false,
                None,
                None,
                values,
            )?),
            Self::Sieve => Box::new(L1Target::new(
                self.name(),
                entries,
                false,
                Some(cache_l1::Policy::Sieve),
                Some(1),
                values,
            )?),
            Self::Moka => Box::new(MokaTarget::new(entries, false, values)),
            Self::QuickCache => Box::new(QuickCacheTarget::new(entries, false, 0, values)),
            Self::Lru => Box::new(LruTarget::new(entries, false, values)),
        })
    }

    /// Rough cost of a request relative to our L1, to start the longest jobs first.
    fn cost(self) -> u64 {
        match self {
            Self::Moka => 6,
            Self::S3Fifo | Self::Sieve | Self::QuickCache | Self::Lru => 1,
        }
    }
}

/// One `cache-bench mrc` run.
#[derive(Debug, Clone)]
pub struct MrcSpec {
    /// The trace files.
    pub traces: Vec<PathBuf>,
    /// Their format; detected per file if `None`.
    pub format: Option<Format>,
    /// The cache sizes, each applied to every trace.
    pub sizes: Vec<CacheSize>,
    /// Sizes below this many entries are skipped (default 0: none).
    pub min_entries: u64,
    /// The caches, in report order.
    pub targets: Vec<MrcTarget>,
    /// Bytes of every value (trace sizes are ignored). Default 16.
    pub value_size: u32,
    /// Worker threads; default [`std::thread::available_parallelism`].
    pub threads: Option<usize>,
    /// The command line, recorded in the report.
    pub command: String,
}

/// One trace's first-pass figures.
#[derive(Debug, Clone, Serialize)]
pub struct MrcTrace {
    /// Its name: the file name without `.zst` and without its last extension.
    pub trace: String,
    /// The file.
    pub path: String,
    /// Requests.
    pub requests: u64,
    /// Distinct keys.
    pub unique_keys: u64,
}

/// One target at one point.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct MrcFigure {
    /// Misses over requests, a fraction in [0, 1].
    pub miss_ratio: f64,
    /// Requests replayed (the trace's).
    pub requests: u64,
    /// Hits.
    pub hits: u64,
    /// Misses.
    pub misses: u64,
}

/// One (trace, size) point.
#[derive(Debug, Clone, Serialize)]
pub struct MrcPoint {
    /// The trace's name ([`MrcTrace::trace`]).
    pub trace: String,
    /// The cache size in entries.
    pub size_entries: u64,
    /// The size as given (`1%`, `1000`); sizes that round to the same entry count are measured
    /// once, their labels joined by `/`.
    pub size_label: String,
    /// Each target's figures, by name.
    pub targets: BTreeMap<String, MrcFigure>,
}

/// A size skipped for being below `--min-entries`.
#[derive(Debug, Clone, Serialize)]
pub struct MrcSkipped {
    /// The trace's name.
    pub trace: String,
    /// The size as given.
    pub size_label: String,
    /// What it came to, in entries.
    pub size_entries: u64,
}

/// Everything an `mrc` run measured; serialized as its `--json` output.
#[derive(Debug, Clone, Serialize)]
pub struct MrcReport {
    /// The command line that made it.
    pub command: String,
    /// The machine.
    pub machine: Machine,
    /// The targets, in report order.
    pub targets: Vec<&'static str>,
    /// Bytes of every value.
    pub value_size: u32,
    /// The traces with their request and unique-key counts.
    pub traces: Vec<MrcTrace>,
    /// Every measured point, by trace (in the order given) then size.
    pub points: Vec<MrcPoint>,
    /// Sizes skipped for `min_entries`.
    pub skipped: Vec<MrcSkipped>,
    /// Each target's mean miss ratio over all points (a fraction).
    pub mean: BTreeMap<String, f64>,
    /// Wall time of the whole run, in seconds.
    pub elapsed_s: f64,
}

/// A trace's name for reports: `multi2` for `lirs/multi2.trace.zst`.
pub fn trace_name(path: &Path) -> String {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let name = name.strip_suffix(".zst").unwrap_or(&name);
    match name.rsplit_once('.') {
        Some((stem, _)) if !stem.is_empty() => stem.to_owned(),
        _ => name.to_owned(),
    }
}

/// Runs `jobs` on `threads` threads, taking them in order from a shared queue, and returns the
/// results in the jobs' order. After the first error no new job starts, and that error is
/// returned. `done` is called after each job with the number finished so far.
fn run_queue<J: Sync, R: Send>(
    jobs: &[J],
    threads: usize,
    work: impl Fn(&J) -> anyhow::Result<R> + Sync,
    done: impl Fn(usize) + Sync,
) -> anyhow::Result<Vec<R>> {
    let next = AtomicUsize::new(0);
    let finished = AtomicUsize::new(0);
    let failed = AtomicBool::new(false);
    let results: Mutex<Vec<(usize, anyhow::Result<R>)>> = Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for _ in 0..threads.clamp(1, jobs.len().max(1)) {
            s.spawn(|| {
                while !failed.load(Ordering::Relaxed) {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(job) = jobs.get(i) else { break };
                    let result = work(job);
                    failed.fetch_or(result.is_err(), Ordering::Relaxed);
                    results
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner)
                        .push((i, result));
                    done(finished.fetch_add(1, Ordering::Relaxed) + 1);
                }
            });
        }
    });
    let mut results = results
        .into_inner()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    results.sort_by_key(|(i, _)| *i);
    results.into_iter().map(|(_, r)| r).collect()
}

/// Requests and unique keys of one trace, in one streaming pass.
fn count(path: &Path, format: Option<Format>) -> anyhow::Result<MrcTrace> {
    let mut keys = HashSet::new();
    let mut requests = 0u64;
    for r in TraceReader::open(path, format)? {
        keys.insert(r?.key);
        requests += 1;
    }
    Ok(MrcTrace {
        trace: trace_name(path),
        path: path.display().to_string(),
        requests,
        unique_keys: keys.len() as u64,
    })
}

/// One job: a trace at a size through a target.
struct Job {
    trace: usize,
    point: usize,
    entries: u64,
    target: MrcTarget,
}

/// The points of a run: every size of every trace, in entries, skipping those below
/// `min_entries` and merging sizes that come to the same entry count. Returns the points (by
/// trace, then size), the index of each point's trace, and the skipped sizes.
fn plan_points(
    traces: &[MrcTrace],
    spec: &MrcSpec,
) -> (Vec<MrcPoint>, Vec<usize>, Vec<MrcSkipped>) {
    let mut points: Vec<MrcPoint> = Vec::new();
    let mut point_trace = Vec::new();
    let mut skipped = Vec::new();
    for (t, trace) in traces.iter().enumerate() {
        let first = points.len();
        for size in &spec.sizes {
            let entries = size.entries(trace.unique_keys);
            let label = size.to_string();
            if entries < spec.min_entries {
                skipped.push(MrcSkipped {
                    trace: trace.trace.clone(),
                    size_label: label,
                    size_entries: entries,
                });
            } else if let Some(p) = points[first..]
                .iter_mut()
                .find(|p| p.size_entries == entries)
            {
                p.size_label = format!("{}/{label}", p.size_label);
            } else {
                points.push(MrcPoint {
                    trace: trace.trace.clone(),
                    size_entries: entries,
                    size_label: label,
                    targets: BTreeMap::new(),
                });
                point_trace.push(t);
            }
        }
        points[first..].sort_by_key(|p| p.size_entries);
    }

    (points, point_trace, skipped)
}

/// Measures `spec`. `progress` gets `(finished, total)` jobs after each job.
///
/// # Errors
///
/// An unreadable trace, a size no cache accepts, or a cache returning wrong bytes.
pub fn mrc(spec: &MrcSpec, progress: impl Fn(usize, usize) + Sync) -> anyhow::Result<MrcReport> {
    anyhow::ensure!(!spec.traces.is_empty(), "no trace given");
    anyhow::ensure!(!spec.sizes.is_empty(), "no cache size given");
    anyhow::ensure!(!spec.targets.is_empty(), "no target given");
    let started = std::time::Instant::now();
    let threads = spec.threads.unwrap_or_else(|| {
        std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
    });
    let traces = run_queue(
        &spec.traces,
        threads,
        |path| count(path, spec.format).with_context(|| format!("reading {}", path.display())),
        |_| {},
    )?;

    let (mut points, point_trace, skipped) = plan_points(&traces, spec);

    let mut jobs: Vec<Job> = points
        .iter()
        .zip(&point_trace)
        .enumerate()
        .flat_map(|(point, (p, &trace))| {
            spec.targets.iter().map(move |&target| Job {
                trace,
                point,
                entries: p.size_entries,
                target,
            })
        })
        .collect();
    // Longest first, so the last jobs to finish are short ones.
    jobs.sort_by_key(|j| std::cmp::Reverse(traces[j.trace].requests * j.target.cost()));
    let values = Values::new(spec.value_size as usize + (1 << 16), 0x5EED);
    let value_spec = crate::workload::ValueSpec::fixed(spec.value_size);
    let total = jobs.len();
    let tallies = run_queue(
        &jobs,
        threads,
        |job| {
            let path = &spec.traces[job.trace];
            let target = job.target.build(job.entries, values.clone())?;
            // Entry mode: every value has the same size, whatever the trace says.
            let requests = TraceReader::open(path, spec.format)?
                .map(|r| r.map(|r| Request { size: None, ..r }));
            let mut tally = crate::replay::run(requests, &value_spec, &[&*target], |_| {})
                .with_context(|| {
                    format!(
                        "{} at {} entries through {}",
                        path.display(),
                        job.entries,
                        job.target.name()
                    )
                })?;
            Ok(tally.swap_remove(0))
        },
        |finished| progress(finished, total),
    )?;
    for (job, t) in jobs.iter().zip(&tallies) {
        points[job.point].targets.insert(
            job.target.name().to_owned(),
            MrcFigure {
                miss_ratio: t.miss_ratio(),
                requests: t.requests,
                hits: t.l1_hits + t.l2_hits,
                misses: t.misses,
            },
        );
    }

    let mean = spec
        .targets
        .iter()
        .map(|t| {
            let name = t.name();
            let sum: f64 = points.iter().map(|p| p.targets[name].miss_ratio).sum();
            #[expect(clippy::cast_precision_loss, reason = "a count of points")]
            let mean = if points.is_empty() {
                0.0
            } else {
                sum / points.len() as f64
            };
            (name.to_owned(), mean)
        })
        .collect();
    Ok(MrcReport {
        command: spec.command.clone(),
        machine: Machine::detect(),
        targets: spec.targets.iter().map(|t| t.name()).collect(),
        value_size: spec.value_size,
        traces,
        points,
        skipped,
        mean,
        elapsed_s: started.elapsed().as_secs_f64(),
    })
}

impl MrcReport {
    /// The report as a table for the terminal: miss ratios in percent, one column per target,
    /// and each target's mean over all points when there is more than one.
    pub fn to_table(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "machine: {}", self.machine);
        for t in &self.traces {
            let _ = writeln!(
                out,
                "trace:   {} ({}): {} requests, {} unique keys",
                t.trace, t.path, t.requests, t.unique_keys
            );
        }
        let _ = writeln!(
            out,
            "\nmiss ratio (%), entry budget, {}-byte values:\n",
            self.value_size
        );
        let width = self
            .targets
            .iter()
            .map(|t| t.len().max(8))
            .collect::<Vec<_>>();
        // One column per target, in percent, ending the line.
        let percent_cells = |out: &mut String, ratio: &dyn Fn(&str) -> f64| {
            for (t, w) in self.targets.iter().zip(&width) {
                let _ = write!(out, " {:>w$.4}", ratio(t) * 100.0);
            }
            out.push('\n');
        };
        let _ = write!(out, "{:<12} {:>10} {:>9}", "trace", "size", "entries");
        for (t, w) in self.targets.iter().zip(&width) {
            let _ = write!(out, " {t:>w$}");
        }
        out.push('\n');
        for p in &self.points {
            let _ = write!(
                out,
                "{:<12} {:>10} {:>9}",
                p.trace, p.size_label, p.size_entries
            );
            percent_cells(&mut out, &|t| p.targets[t].miss_ratio);
        }
        if self.points.len() > 1 {
            let _ = write!(
                out,
                "{:<12} {:>20}",
                "mean",
                format!("{} points", self.points.len())
            );
            percent_cells(&mut out, &|t| self.mean[t]);
        }
        for s in &self.skipped {
            let _ = writeln!(
                out,
                "skipped: {} at {} ({} entries, below --min-entries)",
                s.trace, s.size_label, s.size_entries
            );
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_and_round_like_the_reference() {
        assert_eq!("1%".parse(), Ok(CacheSize::Percent(1.0)));
        assert_eq!(" 0.1% ".parse(), Ok(CacheSize::Percent(0.1)));
        assert_eq!("1000".parse(), Ok(CacheSize::Entries(1000)));
        for bad in ["0", "0%", "101%", "x%", "-3", "1.5"] {
            assert!(bad.parse::<CacheSize>().is_err(), "{bad}");
        }
        // Unique-key counts of the shared traces and the sizes the reference CSV gives them.
        for (unique, pct, entries) in [
            (9_939, 10.0, 994),
            (9_939, 1.0, 99),
            (1_409, 10.0, 141),
            (5_684, 1.0, 57),
            (3_083, 1.0, 31),
            (5_684, 0.1, 10),
        ] {
            assert_eq!(CacheSize::Percent(pct).entries(unique), entries);
        }
        assert_eq!(CacheSize::Entries(5).entries(1_000_000), 5);
    }

    #[test]
    fn trace_names_drop_zst_and_the_format_extension() {
        assert_eq!(trace_name(Path::new("a/multi2.trace.zst")), "multi2");
        assert_eq!(trace_name(Path::new("OLTP.lis")), "OLTP");
        assert_eq!(trace_name(Path::new("plain")), "plain");
    }
}

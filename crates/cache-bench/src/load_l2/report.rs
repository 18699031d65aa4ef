//! The report of `load --cache l2`: its JSON shape, the medians over runs, and the table.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::PathBuf;

use cache_l2::{CompressionOptions, GroupCommitOptions, L2Options, WriteMode};
use serde::Serialize;

use super::{CACHE_L2, L2LoadSpec, RAW_REDB, RAW_REDB_BATCH, TARGETS};
use crate::load::Length;
use crate::report::Machine;

/// The setup an L2 load report was made with.
#[derive(Debug, Clone, Serialize)]
pub struct L2LoadSetup {
    /// `"l2"`: the durable tier.
    pub cache: &'static str,
    /// Distinct keys put.
    pub entries: u64,
    /// Bytes per value.
    pub value_size: u32,
    /// `entries * value_size`: value bytes put per target per run.
    pub data_bytes: u64,
    /// Whether values were JSON-like text (else random bytes).
    pub compressible: bool,
    /// `cache-l2`'s write mode: `"sync"` or `"async"`.
    pub write_mode: WriteMode,
    /// Threads putting into `cache-l2` at once.
    pub writers: usize,
    /// `cache-l2`'s budget, in bytes.
    pub l2_max_bytes: u64,
    /// Page cache of both targets, in bytes.
    pub page_cache_bytes: u64,
    /// `cache-l2`'s compression options.
    pub compression: CompressionOptions,
    /// `cache-l2`'s group-commit options.
    pub group_commit: GroupCommitOptions,
    /// Inserts per write transaction of `raw-redb`, each committed durably.
    pub raw_redb_batch: u64,
    /// Threads getting at once.
    pub threads: usize,
    /// Gets per thread, if the get phase's length was a count.
    pub gets_per_thread: Option<u64>,
    /// Seconds of the get phase, if its length was a duration.
    pub duration_s: Option<f64>,
    /// Runs.
    pub runs: usize,
    /// Seed.
    pub seed: u64,
    /// Directory the runs' temporary directories were made in, if not the system's.
    pub dir: Option<PathBuf>,
}

/// One target in one run.
#[derive(Debug, Clone, Serialize)]
pub struct L2Run {
    /// Puts made.
    pub puts: u64,
    /// Wall time of the put phase, final flush included, in seconds.
    pub put_s: f64,
    /// Of which the final flush (`cache-l2`; 0 for `raw-redb`, whose commits are durable).
    pub flush_s: f64,
    /// `puts / put_s`.
    pub puts_per_s: f64,
    /// Gets made, all threads.
    pub gets: u64,
    /// Wall time of the get phase, in seconds.
    pub get_s: f64,
    /// `gets / get_s`.
    pub gets_per_s: f64,
    /// Median get latency, in microseconds.
    pub get_p50_us: f64,
    /// 99th-percentile get latency, in microseconds.
    pub get_p99_us: f64,
    /// Longest get, in microseconds.
    pub get_max_us: f64,
    /// Size of the database file after the put phase, in bytes.
    pub file_bytes: u64,
    /// `cache-l2`'s live bytes after the put phase (`Store::stats`); `None` for `raw-redb`.
    pub live_bytes: Option<u64>,
    /// `cache-l2`'s puts stored compressed; `None` for `raw-redb`.
    pub compressed_puts: Option<u64>,
}

/// A target's reported figures: each the median of that figure over the runs.
#[derive(Debug, Clone, Serialize)]
pub struct L2Figure {
    /// Puts per second, final flush included.
    pub puts_per_s: f64,
    /// Gets per second, all threads.
    pub gets_per_s: f64,
    /// Median get latency, in microseconds.
    pub get_p50_us: f64,
    /// 99th-percentile get latency, in microseconds.
    pub get_p99_us: f64,
    /// Database file size after the put phase, in bytes.
    pub file_bytes: u64,
    /// `cache-l2`'s live bytes after the put phase; `None` for `raw-redb`.
    pub live_bytes: Option<u64>,
}

/// `cache-l2` over `raw-redb`, of the medians.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct L2Ratios {
    /// Put throughput of `cache-l2` / that of `raw-redb`.
    pub puts_per_s: f64,
    /// Get throughput of `cache-l2` / that of `raw-redb`.
    pub gets_per_s: f64,
}

/// Everything an L2 load run measured; serialized as its `--json` output.
#[derive(Debug, Clone, Serialize)]
pub struct L2LoadReport {
    /// The command line that made it.
    pub command: String,
    /// The machine.
    pub machine: Machine,
    /// The setup.
    pub setup: L2LoadSetup,
    /// Every run: each target's figures, by name.
    pub runs: Vec<BTreeMap<String, L2Run>>,
    /// Each target's figures (medians over the runs), by name: `cache-l2`, `raw-redb`.
    pub targets: BTreeMap<String, L2Figure>,
    /// `cache-l2` / `raw-redb` throughput ratios.
    pub ratios: L2Ratios,
}

impl L2LoadReport {
    /// The report of `runs` of `spec`: each target's figures are the medians of its runs'.
    pub(super) fn new(spec: &L2LoadSpec, runs: Vec<BTreeMap<String, L2Run>>) -> Self {
        let targets: BTreeMap<String, L2Figure> = TARGETS
            .iter()
            .map(|&name| {
                let of = |f: fn(&L2Run) -> f64| {
                    median(runs.iter().map(|r| f(&r[name])).collect(), f64::total_cmp)
                };
                let figure = L2Figure {
                    puts_per_s: of(|r| r.puts_per_s),
                    gets_per_s: of(|r| r.gets_per_s),
                    get_p50_us: of(|r| r.get_p50_us),
                    get_p99_us: of(|r| r.get_p99_us),
                    file_bytes: median(runs.iter().map(|r| r[name].file_bytes).collect(), u64::cmp),
                    live_bytes: runs
                        .iter()
                        .map(|r| r[name].live_bytes)
                        .collect::<Option<Vec<u64>>>()
                        .map(|v| median(v, u64::cmp)),
                };
                (name.to_owned(), figure)
            })
            .collect();
        let (ours, base) = (&targets[CACHE_L2], &targets[RAW_REDB]);
        let ratios = L2Ratios {
            puts_per_s: ours.puts_per_s / base.puts_per_s,
            gets_per_s: ours.gets_per_s / base.gets_per_s,
        };
        let defaults = L2Options::default();
        Self {
            command: spec.command.clone(),
            machine: Machine::detect(),
            setup: L2LoadSetup {
                cache: "l2",
                entries: spec.entries,
                value_size: spec.value_size,
                data_bytes: spec.entries.saturating_mul(u64::from(spec.value_size)),
                compressible: spec.compressible,
                write_mode: spec.write_mode,
                writers: spec.writers,
                l2_max_bytes: spec.l2_max_bytes,
                page_cache_bytes: defaults.page_cache_bytes.as_u64(),
                compression: defaults.compression,
                group_commit: defaults.group_commit,
                raw_redb_batch: RAW_REDB_BATCH,
                threads: spec.threads,
                gets_per_thread: match spec.length {
                    Length::Ops(n) => Some(n),
                    Length::Duration(_) => None,
                },
                duration_s: match spec.length {
                    Length::Duration(d) => Some(d.as_secs_f64()),
                    Length::Ops(_) => None,
                },
                runs: spec.runs,
                seed: spec.seed,
                dir: spec.dir.clone(),
            },
            runs,
            targets,
            ratios,
        }
    }

    /// The report as a table for the terminal.
    pub fn to_table(&self) -> String {
        let mut out = String::new();
        let s = &self.setup;
        let _ = writeln!(out, "machine:  {}", self.machine);
        let length = match (s.gets_per_thread, s.duration_s) {
            (Some(n), _) => format!("{n} gets per thread"),
            (None, Some(d)) => format!("{d} s"),
            (None, None) => String::new(),
        };
        let _ = writeln!(
            out,
            "l2 load:  {} entries of {}-byte {} values ({}); cache-l2: {} writer{}, {} writes, \
             budget {}; raw-redb: 1 writer, {} puts per durable commit",
            s.entries,
            s.value_size,
            if s.compressible {
                "compressible"
            } else {
                "incompressible"
            },
            bytesize::ByteSize(s.data_bytes),
            s.writers,
            if s.writers == 1 { "" } else { "s" },
            match s.write_mode {
                WriteMode::Sync => "sync",
                WriteMode::Async => "async",
            },
            bytesize::ByteSize(s.l2_max_bytes),
            s.raw_redb_batch,
        );
        let _ = writeln!(
            out,
            "gets:     {} threads, uniform keys, {length}",
            s.threads
        );
        let _ = writeln!(out, "runs:     {} (median reported)\n", self.runs.len());
        let _ = writeln!(
            out,
            "{:<10} {:>10} {:>10} {:>11} {:>11} {:>11} {:>11}",
            "target", "puts/s", "gets/s", "get p50 µs", "get p99 µs", "file", "live"
        );
        for (name, f) in &self.targets {
            let live = f
                .live_bytes
                .map_or_else(|| "-".to_owned(), |b| bytesize::ByteSize(b).to_string());
            let _ = writeln!(
                out,
                "{name:<10} {:>10.0} {:>10.0} {:>11.1} {:>11.1} {:>11} {live:>11}",
                f.puts_per_s,
                f.gets_per_s,
                f.get_p50_us,
                f.get_p99_us,
                bytesize::ByteSize(f.file_bytes).to_string(),
            );
        }
        let _ = writeln!(
            out,
            "cache-l2/raw-redb: puts {:.2}x, gets {:.2}x",
            self.ratios.puts_per_s, self.ratios.gets_per_s
        );
        out
    }
}
/// The median of `xs` (the upper one for an even count); `xs` must not be empty.
fn median<T: Copy>(mut xs: Vec<T>, cmp: impl Fn(&T, &T) -> std::cmp::Ordering) -> T {
    xs.sort_by(cmp);
    xs[xs.len() / 2]
}

#[cfg(test)]
mod tests {
    use super::median;

    #[test]
    fn median_takes_the_middle_or_upper_middle() {
        assert!((median(vec![3.0, 1.0, 2.0], f64::total_cmp) - 2.0).abs() < f64::EPSILON);
        assert_eq!(median(vec![4, 1, 3, 2], u64::cmp), 3);
    }
}

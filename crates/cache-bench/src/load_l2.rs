//! Load on the durable tier (`cache-bench load --cache l2`): `cache_l2::Store` beside a raw redb
//! table, on the same keys and values, in the same run.
//!
//! Method:
//!
//! - Keys are the 8-byte big-endian forms of `index * K` for `index` in `0..entries` and a fixed
//!   odd `K` ([`key`]): distinct, and spread over the key space as hashed keys are, so puts land
//!   all over the B-tree rather than at its right edge.
//! - Values ([`ValueGen`]) are `value_size` bytes: the index (8 bytes, little-endian), then a
//!   slice, at an offset drawn from the index, of a seeded window of random bytes
//!   (incompressible, the default) or of JSON-like text that zstd shrinks (`compressible`). Both
//!   targets get byte-for-byte the same values. A value is built into a reused buffer just before
//!   its put (a copy, the same for both targets), so no run holds all the data in memory.
//! - Put phase, timed from the first put to the end of the last commit: `cache-l2` opens
//!   `L2Options { write_mode, max_bytes, .. }` with its other defaults (zstd level 3,
//!   64 MiB page cache), and `writers` threads put their share of the keys (index `w`,
//!   `w + writers`, …) into namespace [`NAMESPACE`] at once; then `Store::flush`, timed as part
//!   of the phase, so async writes are paid for. `raw-redb` is the baseline: one
//!   `(&[u8]) -> &[u8]` table, one writer, [`RAW_REDB_BATCH`] inserts per write transaction,
//!   each committed with `Durability::Immediate`, and the same page cache size.
//! - Get phase: `threads` threads, released together, each draw uniform indices from a seeded RNG
//!   (the same sequence for both targets) and get them, `cache-l2` with `Store::get`, `raw-redb`
//!   with one read transaction per get that copies the value out. Each get's latency (the call
//!   alone) goes into the thread's histogram; the histograms are merged for p50 and p99. Every
//!   value is compared with the one put ([`ValueGen::check`]): a missing or different value fails
//!   the run. Throughput is all threads' gets over the wall time from the release to the last
//!   thread's end, checks included (they cost both targets the same).
//! - Each run writes both targets into fresh files in a fresh temporary directory (in `dir`, or
//!   the system's), removed afterwards. With several runs, each figure reported is the median of
//!   that figure over the runs (the upper one for an even count); every run is kept in `runs`.

mod report;
mod values;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Barrier;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use cache_l2::{L2Options, Store, WriteMode};
use hdrhistogram::Histogram;
use rand::rngs::StdRng;
use rand::{RngExt as _, SeedableRng as _};
use redb::{Durability, ReadableDatabase as _, TableDefinition};

pub use self::report::{L2Figure, L2LoadReport, L2LoadSetup, L2Ratios, L2Run};
pub use self::values::{GetMismatch, ValueGen, key};
use crate::load::Length;

/// Default bytes per value: 16 KiB.
pub const DEFAULT_VALUE_SIZE: u32 = 16 << 10;
/// Default data written per run, all values together: 256 MiB (with 16 KiB values, 16,384
/// entries).
pub const DEFAULT_DATA_BYTES: u64 = 256 << 20;
/// Default gets per get thread.
pub const DEFAULT_GETS_PER_THREAD: u64 = 100_000;
/// Inserts per write transaction of the `raw-redb` baseline.
pub const RAW_REDB_BATCH: u64 = 1000;
/// The `cache-l2` namespace every key is put in.
pub const NAMESPACE: &str = "bench";
/// The names of the two targets, in report order.
pub const TARGETS: [&str; 2] = [CACHE_L2, RAW_REDB];

const CACHE_L2: &str = "cache-l2";
const RAW_REDB: &str = "raw-redb";
/// The baseline's one table.
const RAW_TABLE: TableDefinition<&[u8], &[u8]> = TableDefinition::new("bench");
/// A get thread checks for the stop flag every this many gets.
const STOP_CHECK_EVERY: u64 = 64;
/// How often a timed get phase looks for a failed thread while it waits.
const STOP_POLL: Duration = Duration::from_millis(10);

/// One `cache-bench load --cache l2` run.
#[derive(Debug, Clone)]
pub struct L2LoadSpec {
    /// Distinct keys put. Default: [`DEFAULT_DATA_BYTES`] / `value_size`.
    pub entries: u64,
    /// Bytes per value (at least 8). Default [`DEFAULT_VALUE_SIZE`].
    pub value_size: u32,
    /// JSON-like values zstd shrinks, instead of random bytes. Default `false`.
    pub compressible: bool,
    /// `cache-l2`'s write mode. Default [`WriteMode::Sync`].
    pub write_mode: WriteMode,
    /// Threads putting into `cache-l2` at once (`raw-redb` always has one writer). Default 1.
    pub writers: usize,
    /// `cache-l2`'s budget in bytes. Default [`L2LoadSpec::default_max_bytes`]: 4 times the
    /// data, so nothing is evicted.
    pub l2_max_bytes: u64,
    /// Directory to make each run's temporary directory in. Default `None`: the system's.
    pub dir: Option<PathBuf>,
    /// Threads getting at once. Default 2.
    pub threads: usize,
    /// Gets per thread, or a wall time, of the get phase. Default
    /// [`DEFAULT_GETS_PER_THREAD`] gets.
    pub length: Length,
    /// Runs; each figure reported is the median over them. Default 1.
    pub runs: usize,
    /// Seed of the values and of the get threads' key sequences. Default 42.
    pub seed: u64,
    /// The command line, recorded in the report.
    pub command: String,
}

impl L2LoadSpec {
    /// The defaults for `value_size`-byte values (see each field).
    pub fn new(value_size: u32, command: String) -> Self {
        let entries = Self::default_entries(value_size);
        Self {
            entries,
            value_size,
            compressible: false,
            write_mode: WriteMode::Sync,
            writers: 1,
            l2_max_bytes: Self::default_max_bytes(entries, value_size),
            dir: None,
            threads: 2,
            length: Length::Ops(DEFAULT_GETS_PER_THREAD),
            runs: 1,
            seed: 42,
            command,
        }
    }

    /// Entries that hold [`DEFAULT_DATA_BYTES`] of `value_size`-byte values (at least 1).
    pub fn default_entries(value_size: u32) -> u64 {
        (DEFAULT_DATA_BYTES / u64::from(value_size.max(1))).max(1)
    }

    /// Four times the bytes `entries` records of `value_size`-byte values account for in
    /// `cache-l2` (namespace, key, header and value, uncompressed), and at least
    /// [`cache_l2::MIN_MAX_BYTES`]: room enough that the put phase evicts nothing.
    pub fn default_max_bytes(entries: u64, value_size: u32) -> u64 {
        let record = cache_l2::record::HEADER_V2_LEN + value_size as usize;
        let per_entry = cache_l2::record::accounted_size(NAMESPACE, &key(0), record, 0);
        entries
            .saturating_mul(per_entry)
            .saturating_mul(4)
            .max(cache_l2::MIN_MAX_BYTES)
    }

    fn check(&self) -> anyhow::Result<()> {
        anyhow::ensure!(self.entries >= 1, "--entries must be at least 1");
        anyhow::ensure!(self.writers >= 1, "--writers must be at least 1");
        anyhow::ensure!(self.threads >= 1, "--threads must be at least 1");
        anyhow::ensure!(self.runs >= 1, "--runs must be at least 1");
        anyhow::ensure!(
            self.value_size >= 8,
            "--value-size must be at least 8 (values start with their key index)"
        );
        Ok(())
    }

    fn l2_options(&self, path: PathBuf) -> L2Options {
        L2Options {
            max_bytes: bytesize::ByteSize(self.l2_max_bytes),
            write_mode: self.write_mode,
            ..L2Options::new(path)
        }
    }
}

/// What a put phase measured.
struct Puts {
    elapsed: Duration,
    flush: Duration,
    file_bytes: u64,
}

/// What a get phase measured.
#[derive(Debug)]
struct Gets {
    count: u64,
    elapsed: Duration,
    latency_ns: Histogram<u64>,
}

/// The size of the file at `path`, in bytes.
pub(crate) fn file_bytes(path: &Path) -> anyhow::Result<u64> {
    Ok(std::fs::metadata(path)
        .with_context(|| format!("reading the size of {}", path.display()))?
        .len())
}

/// Puts every key into `store` from `spec.writers` threads at once, then flushes.
/// Puts the keys of `indices`, with their values, into `store`: one writer thread's share.
pub(crate) fn put_share(
    store: &Store,
    values: &ValueGen,
    indices: impl Iterator<Item = u64>,
) -> anyhow::Result<()> {
    let mut value = Vec::with_capacity(values.value_size());
    for index in indices {
        values.write(index, &mut value);
        store
            .put(NAMESPACE, &key(index), &value)
            .with_context(|| format!("putting key index {index}"))?;
    }
    Ok(())
}

fn put_cache_l2(store: &Store, spec: &L2LoadSpec, values: &ValueGen) -> anyhow::Result<Puts> {
    let writers = spec.writers as u64;
    let barrier = Barrier::new(spec.writers + 1);
    let (results, start) = std::thread::scope(|s| {
        let handles: Vec<_> = (0..writers)
            .map(|w| {
                let barrier = &barrier;
                s.spawn(move || {
                    barrier.wait();
                    put_share(store, values, (w..spec.entries).step_by(spec.writers))
                })
            })
            .collect();
        barrier.wait();
        let start = Instant::now();
        let results: Vec<_> = handles
            .into_iter()
            .map(|h| h.join().expect("put thread"))
            .collect();
        (results, start)
    });
    results.into_iter().collect::<anyhow::Result<()>>()?;
    let flush_start = Instant::now();
    store.flush().context("flushing")?;
    let flush = flush_start.elapsed();
    Ok(Puts {
        elapsed: start.elapsed(),
        flush,
        file_bytes: file_bytes(store.path())?,
    })
}

/// Puts every key into `db`, [`RAW_REDB_BATCH`] per durable write transaction.
fn put_raw_redb(
    db: &redb::Database,
    path: &Path,
    spec: &L2LoadSpec,
    values: &ValueGen,
) -> anyhow::Result<Puts> {
    let mut value = Vec::with_capacity(values.value_size());
    let start = Instant::now();
    let mut first = 0;
    while first < spec.entries {
        let end = first.saturating_add(RAW_REDB_BATCH).min(spec.entries);
        let mut txn = db.begin_write()?;
        txn.set_durability(Durability::Immediate)?;
        {
            let mut table = txn.open_table(RAW_TABLE)?;
            for index in first..end {
                values.write(index, &mut value);
                table.insert(&key(index)[..], &value[..])?;
            }
        }
        txn.commit()?;
        first = end;
    }
    Ok(Puts {
        elapsed: start.elapsed(),
        flush: Duration::ZERO,
        file_bytes: file_bytes(path)?,
    })
}

/// The get phase: `spec.threads` threads released together, each getting uniformly drawn keys
/// with `get` and checking every value against `values`.
fn get_phase<F, V>(get: &F, spec: &L2LoadSpec, values: &ValueGen) -> anyhow::Result<Gets>
where
    F: Fn(&[u8]) -> anyhow::Result<Option<V>> + Sync,
    V: AsRef<[u8]>,
{
    // Made here, so a thread cannot fail before the barrier and leave the others waiting.
    let histograms = (0..spec.threads)
        .map(|_| crate::report::latency_histogram())
        .collect::<Vec<_>>();
    let stop = AtomicBool::new(false);
    let barrier = Barrier::new(spec.threads + 1);
    let (results, elapsed) = std::thread::scope(|s| {
        let handles: Vec<_> = histograms
            .into_iter()
            .zip(0u64..)
            .map(|(hist, t)| {
                let (stop, barrier) = (&stop, &barrier);
                s.spawn(move || {
                    barrier.wait();
                    let result = get_thread(get, spec, values, t, stop, hist);
                    if result.is_err() {
                        // Spare the other threads the rest of a failed run.
                        stop.store(true, Ordering::Relaxed);
                    }
                    result
                })
            })
            .collect();
        barrier.wait();
        let start = Instant::now();
        if let Length::Duration(d) = spec.length {
            // Sleeps in short steps so that a failed thread ends the phase early.
            let end = start + d;
            while !stop.load(Ordering::Relaxed) && Instant::now() < end {
                std::thread::sleep(end.saturating_duration_since(Instant::now()).min(STOP_POLL));
            }
            stop.store(true, Ordering::Relaxed);
        }
        let results: Vec<_> = handles
            .into_iter()
            .map(|h| h.join().expect("get thread"))
            .collect();
        (results, start.elapsed())
    });
    let mut latency_ns = crate::report::latency_histogram();
    let mut gets = 0;
    for result in results {
        let (n, hist) = result?;
        gets += n;
        latency_ns
            .add(&hist)
            .map_err(|e| anyhow::anyhow!("merging latency histograms: {e}"))?;
    }
    Ok(Gets {
        count: gets,
        elapsed,
        latency_ns,
    })
}

/// One get thread's loop: gets of uniformly drawn keys (from the seed plus `thread`) until the
/// phase's length or `stop`; returns the gets made and their latencies in nanoseconds.
fn get_thread<F, V>(
    get: &F,
    spec: &L2LoadSpec,
    values: &ValueGen,
    thread: u64,
    stop: &AtomicBool,
    mut latency_ns: Histogram<u64>,
) -> anyhow::Result<(u64, Histogram<u64>)>
where
    F: Fn(&[u8]) -> anyhow::Result<Option<V>>,
    V: AsRef<[u8]>,
{
    let limit = match spec.length {
        Length::Ops(n) => n,
        Length::Duration(_) => u64::MAX,
    };
    let mut rng = StdRng::seed_from_u64(spec.seed.wrapping_add(thread));
    let mut gets = 0u64;
    while gets < limit {
        let index = rng.random_range(0..spec.entries);
        let start = Instant::now();
        let got = get(&key(index))?;
        crate::report::record_since(&mut latency_ns, start);
        values.check(index, got.as_ref().map(AsRef::as_ref))?;
        gets += 1;
        if gets.is_multiple_of(STOP_CHECK_EVERY) && stop.load(Ordering::Relaxed) {
            break;
        }
    }
    Ok((gets, latency_ns))
}

#[expect(
    clippy::cast_precision_loss,
    reason = "counts and nanoseconds below 2^53"
)]
fn figures(spec: &L2LoadSpec, puts: &Puts, gets: &Gets) -> L2Run {
    let us = |q: f64| gets.latency_ns.value_at_quantile(q) as f64 / 1e3;
    L2Run {
        puts: spec.entries,
        put_s: puts.elapsed.as_secs_f64(),
        flush_s: puts.flush.as_secs_f64(),
        puts_per_s: spec.entries as f64 / puts.elapsed.as_secs_f64(),
        gets: gets.count,
        get_s: gets.elapsed.as_secs_f64(),
        gets_per_s: gets.count as f64 / gets.elapsed.as_secs_f64(),
        get_p50_us: us(0.5),
        get_p99_us: us(0.99),
        get_max_us: gets.latency_ns.max() as f64 / 1e3,
        file_bytes: puts.file_bytes,
        live_bytes: None,
        compressed_puts: None,
    }
}

/// One run of `cache-l2`: a fresh store in `dir`, the put phase, the get phase.
fn measure_cache_l2(dir: &Path, spec: &L2LoadSpec, values: &ValueGen) -> anyhow::Result<L2Run> {
    let store = Store::open(&spec.l2_options(dir.join("cache-l2.redb")))?;
    let puts = put_cache_l2(&store, spec, values)?;
    let stats = store.stats();
    anyhow::ensure!(
        stats.evictions == 0,
        "{} records were evicted during the put phase; raise --l2-max-bytes",
        stats.evictions
    );
    let gets = get_phase(&|k: &[u8]| Ok(store.get(NAMESPACE, k)?), spec, values)?;
    Ok(L2Run {
        live_bytes: Some(stats.live_bytes),
        compressed_puts: Some(stats.compressed_insertions),
        ..figures(spec, &puts, &gets)
    })
}

/// One run of `raw-redb`: a fresh database in `dir`, the put phase, the get phase.
fn measure_raw_redb(dir: &Path, spec: &L2LoadSpec, values: &ValueGen) -> anyhow::Result<L2Run> {
    let path = dir.join("raw-redb.redb");
    let page_cache = usize::try_from(L2Options::default().page_cache_bytes.as_u64())
        .context("the page cache size does not fit this platform")?;
    let db = redb::Builder::new()
        .set_cache_size(page_cache)
        .create(&path)
        .with_context(|| format!("creating {}", path.display()))?;
    let puts = put_raw_redb(&db, &path, spec, values)?;
    let get = |k: &[u8]| -> anyhow::Result<Option<Vec<u8>>> {
        let txn = db.begin_read()?;
        let table = txn.open_table(RAW_TABLE)?;
        // Copied out, as a caller that returns the value past the transaction must.
        Ok(table.get(k)?.map(|v| v.value().to_vec()))
    };
    let gets = get_phase(&get, spec, values)?;
    Ok(figures(spec, &puts, &gets))
}

/// A fresh temporary directory for one run's files, in `dir` or the system's.
pub(crate) fn run_dir(dir: Option<&Path>) -> anyhow::Result<tempfile::TempDir> {
    let mut builder = tempfile::Builder::new();
    builder.prefix("cache-bench-l2-");
    match dir {
        Some(d) => {
            std::fs::create_dir_all(d).with_context(|| format!("creating {}", d.display()))?;
            builder
                .tempdir_in(d)
                .with_context(|| format!("making a directory in {}", d.display()))
        }
        None => builder.tempdir().context("making a temporary directory"),
    }
}

///
/// # Errors
///
/// Bad options, a failing store or database, or a get that returned something other than the
/// value put.
pub fn load_l2(
    spec: &L2LoadSpec,
    mut progress: impl FnMut(usize, &str, &L2Run),
) -> anyhow::Result<L2LoadReport> {
    spec.check()?;
    let values = ValueGen::new(spec.value_size, spec.compressible, spec.seed)?;
    let mut runs = Vec::with_capacity(spec.runs);
    for run in 0..spec.runs {
        // Removed at the end of the run, after both targets have closed their files.
        let dir = run_dir(spec.dir.as_deref())?;
        let mut figures = BTreeMap::new();
        for name in TARGETS {
            let figure = match name {
                CACHE_L2 => measure_cache_l2(dir.path(), spec, &values),
                _ => measure_raw_redb(dir.path(), spec, &values),
            }
            .with_context(|| format!("{name} in run {}", run + 1))?;
            progress(run, name, &figure);
            figures.insert(name.to_owned(), figure);
        }
        runs.push(figures);
    }

    Ok(L2LoadReport::new(spec, runs))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tiny_spec() -> L2LoadSpec {
        L2LoadSpec {
            entries: 64,
            length: Length::Ops(500),
            ..L2LoadSpec::new(256, "test".into())
        }
    }

    #[test]
    fn get_phase_fails_on_a_wrong_value() {
        let spec = tiny_spec();
        let values = ValueGen::new(spec.value_size, false, 1).unwrap();
        // A reader that serves every key right except index 7, whose last byte is flipped.
        let faulty = |k: &[u8]| -> anyhow::Result<Option<Vec<u8>>> {
            let index = (0..spec.entries).find(|&i| key(i) == k).unwrap();
            let mut v = Vec::new();
            values.write(index, &mut v);
            if index == 7 {
                *v.last_mut().unwrap() ^= 1;
            }
            Ok(Some(v))
        };
        let err = get_phase(&faulty, &spec, &values).unwrap_err();
        let mismatch = err.downcast_ref::<GetMismatch>().expect("a GetMismatch");
        assert_eq!(
            *mismatch,
            GetMismatch::WrongBytes {
                index: 7,
                len: 256,
                expected_len: 256,
                first_difference: 255,
            }
        );
    }

    #[test]
    fn get_phase_fails_on_a_missing_value() {
        let spec = L2LoadSpec {
            length: Length::Duration(Duration::from_mins(1)),
            ..tiny_spec()
        };
        let values = ValueGen::new(spec.value_size, false, 1).unwrap();
        let started = Instant::now();
        let err = get_phase(
            &|_: &[u8]| -> anyhow::Result<Option<Vec<u8>>> { Ok(None) },
            &spec,
            &values,
        )
        .unwrap_err();
        assert!(matches!(
            err.downcast_ref::<GetMismatch>(),
            Some(GetMismatch::Missing { .. })
        ));
        // The failure ends a timed phase at once rather than after its 60 s.
        assert!(started.elapsed() < Duration::from_secs(10));
    }

    #[test]
    fn get_phase_counts_every_get_of_a_right_reader() {
        let spec = tiny_spec();
        let values = ValueGen::new(spec.value_size, true, 1).unwrap();
        let right = |k: &[u8]| -> anyhow::Result<Option<Vec<u8>>> {
            let index = (0..spec.entries).find(|&i| key(i) == k).unwrap();
            let mut v = Vec::new();
            values.write(index, &mut v);
            Ok(Some(v))
        };
        let gets = get_phase(&right, &spec, &values).unwrap();
        assert_eq!(gets.count, 1000);
        assert_eq!(gets.latency_ns.len(), 1000);
    }
}

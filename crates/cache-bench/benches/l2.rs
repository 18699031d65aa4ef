//! criterion benches of the durable tier, `cache_l2::Store`, single-threaded: gets of present
//! and absent keys, puts made durable in batches, and what value compression costs and saves
//! in the store.
//!
//! Every store lives in its own `tempfile` directory, removed at the end of its group. Keys and
//! values are those of `cache-bench load --cache l2` ([`cache_bench::load_l2`]): 8-byte keys
//! spread over the key space, values of random bytes (stored raw whatever the compression
//! options, since zstd cannot shrink them) or of JSON-like text that zstd shrinks several
//! times. Other options are `L2Options` defaults unless a group's name says otherwise.
//!
//! - `l2_get/entries=…,value=…`: `hit` gets keys drawn from the `entries` preloaded ones,
//!   `miss` gets keys never written, which the synopsis (a Bloom filter) answers without
//!   reading the file. The store is preloaded with async puts and one `Store::flush`, so every
//!   record is committed and durable, and nothing is queued, before the first get.
//! - `l2_put_batch/…`: `batch=N` is N async puts of fresh keys, then `Store::flush`, which
//!   returns once they are committed and durable (the writer's group commit gathers what is
//!   queued; there is no batch-put API). The store is filled to its budget first, so every put
//!   evicts a record and the file stops growing: the steady state of a cache, not a file
//!   growing run by run. Compression is off (it would try and reject every random value; the
//!   `l2_compression_*` groups measure that).
//! - `l2_compression_put/…` and `l2_compression_get/…`: the same puts and gets with compression
//!   on (`zstd=3`, the default options) or off (`raw`), on compressible and incompressible
//!   values. `l2_record`'s `l2_zstd` group measures zstd alone.
//!
//! ```sh
//! cargo bench -p cache-bench --bench l2                        # everything (several minutes)
//! cargo bench -p cache-bench --bench l2 -- --quick l2_get      # one group, under a minute
//! cargo bench -p cache-bench --bench l2 -- --quick l2_put_batch
//! ```

use std::cell::{Cell, OnceCell};
use std::hint::black_box;

use bytesize::ByteSize;
use cache_bench::load_l2::{ValueGen, key};
use cache_l2::{CompressionOptions, L2Options, Store, WriteMode};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use rand::{RngExt, SeedableRng};
use tempfile::TempDir;

const NAMESPACE: &str = "bench";
/// Seed of the values.
const SEED: u64 = 42;
/// Records preloaded for the get groups.
const GET_ENTRIES: u64 = 1000;
/// Value sizes of `l2_get`: inline in the entry, inline but a page of its own, four chunks.
const GET_VALUE_SIZES: [u32; 3] = [256, 4 << 10, 64 << 10];
/// Gets per iteration, keys precomputed so the RNG is not measured.
const GET_BATCH: u64 = 256;
/// Value size of `l2_put_batch`.
const PUT_VALUE_SIZE: u32 = 4 << 10;
/// Puts per `Store::flush` in `l2_put_batch`. The writer also cuts a commit at
/// `group_commit.max_ops` (1000) puts or `max_delay_ms` (2 ms) after its first one, so a large
/// batch may span several commits; only the flush's is sure to be durable.
const PUT_BATCHES: [u64; 3] = [1, 64, 1024];
/// Budget of the stores puts are measured on: small, so filling one takes a second or two.
const PUT_MAX_BYTES: u64 = 64 << 20;
/// Value size of the compression groups: one chunk when stored raw.
const COMPRESSION_VALUE_SIZE: u32 = 16 << 10;
/// Puts per `Store::flush` in `l2_compression_put`.
const COMPRESSION_PUT_BATCH: u64 = 64;

/// A store in its own temporary directory, and the next fresh key index to put.
struct Fixture {
    // Dropped before the directory it lives in.
    store: Store,
    next: Cell<u64>,
    _dir: TempDir,
}

impl Fixture {
    /// A store at `l2.redb` in a fresh temporary directory, with async puts (the groups flush
    /// when they need the writes committed), compression on at the default options or off, and
    /// `max_bytes` if given (the default 1 GiB otherwise).
    fn open(compress: bool, max_bytes: Option<u64>) -> Self {
        let dir = tempfile::tempdir().expect("temporary directory");
        let defaults = L2Options::new(dir.path().join("l2.redb"));
        let store = Store::open(&L2Options {
            write_mode: WriteMode::Async,
            compression: CompressionOptions {
                enabled: compress,
                ..CompressionOptions::default()
            },
            max_bytes: max_bytes.map_or(defaults.max_bytes, ByteSize::b),
            ..defaults
        })
        .expect("open the store");
        Self {
            store,
            next: Cell::new(0),
            _dir: dir,
        }
    }

    /// Puts the values of the next `count` fresh indices, then flushes: all committed and
    /// durable when it returns.
    fn preload(&self, values: &ValueGen, count: u64) {
        let mut buf = Vec::with_capacity(values.value_size());
        for _ in 0..count {
            let i = self.next.get();
            values.write(i, &mut buf);
            self.store.put(NAMESPACE, &key(i), &buf).expect("put");
            self.next.set(i + 1);
        }
        self.store.flush().expect("flush");
    }

    /// Puts fresh keys until the store has evicted a record, then flushes. Every later put of
    /// a fresh key evicts.
    fn fill_to_budget(&self, values: &ValueGen) {
        while self.store.stats().evictions == 0 {
            self.preload(values, 1024);
        }
    }

    /// Puts `bufs` under fresh keys, then flushes.
    fn put_batch(&self, bufs: &[Vec<u8>]) {
        for v in bufs {
            let i = self.next.get();
            self.store.put(NAMESPACE, &key(i), v).expect("put");
            self.next.set(i + 1);
        }
        self.store.flush().expect("flush");
    }

    /// Gets every key of `keys`.
    fn get_all(&self, keys: &[[u8; 8]]) {
        for k in keys {
            black_box(self.store.get(NAMESPACE, black_box(k)).expect("get"));
        }
    }

    /// Asserts that every get of `keys` returns the value of its index.
    fn check_hits(&self, values: &ValueGen, indices: &[u64], keys: &[[u8; 8]]) {
        for (&i, k) in indices.iter().zip(keys) {
            let got = self.store.get(NAMESPACE, k).expect("get");
            values.check(i, got.as_deref()).expect("the value put");
        }
    }
}

/// `count` values of `values`, built once so the benches only copy them into the store.
fn value_bufs(values: &ValueGen, count: u64) -> Vec<Vec<u8>> {
    (0..count)
        .map(|i| {
            let mut buf = Vec::new();
            values.write(i, &mut buf);
            buf
        })
        .collect()
}

/// `GET_BATCH` indices drawn from `0..GET_ENTRIES`, and their keys.
fn hit_keys() -> (Vec<u64>, Vec<[u8; 8]>) {
    let mut rng = rand::rngs::StdRng::seed_from_u64(1);
    let indices: Vec<u64> = (0..GET_BATCH)
        .map(|_| rng.random_range(0..GET_ENTRIES))
        .collect();
    let keys = indices.iter().map(|&i| key(i)).collect();
    (indices, keys)
}

// criterion calls a bench function's closure once per sample, and not at all when the filter
// leaves it out: each store is made on the first call of a function that uses it (`OnceCell`),
// so a filtered run writes only the stores it measures.

fn get(c: &mut Criterion) {
    let (hit_indices, hits) = hit_keys();
    // Never written: the indices after the preloaded ones.
    let misses: Vec<[u8; 8]> = (GET_ENTRIES..GET_ENTRIES + GET_BATCH).map(key).collect();
    for value_size in GET_VALUE_SIZES {
        let fixture = OnceCell::new();
        let setup = || {
            let f = Fixture::open(false, None);
            let values = ValueGen::new(value_size, false, SEED).expect("valid value size");
            f.preload(&values, GET_ENTRIES);
            f.check_hits(&values, &hit_indices, &hits);
            let skipped = misses
                .iter()
                .filter(|k| !f.store.may_contain(NAMESPACE, &k[..]))
                .count() as u64;
            // A 1% false-positive rate: a few of the misses read the file.
            assert!(
                skipped >= GET_BATCH * 9 / 10,
                "the synopsis skips only {skipped} of {GET_BATCH} misses"
            );
            f
        };

        let mut group =
            c.benchmark_group(format!("l2_get/entries={GET_ENTRIES},value={value_size}B"));
        group.throughput(Throughput::ElementsAndBytes {
            elements: GET_BATCH,
            bytes: GET_BATCH * u64::from(value_size),
        });
        group.bench_function(BenchmarkId::from_parameter("hit"), |b| {
            let f = fixture.get_or_init(setup);
            b.iter(|| f.get_all(&hits));
        });
        group.throughput(Throughput::Elements(GET_BATCH));
        group.bench_function(BenchmarkId::from_parameter("miss"), |b| {
            let f = fixture.get_or_init(setup);
            b.iter(|| f.get_all(&misses));
        });
        group.finish();
    }
}

fn put_batches(c: &mut Criterion) {
    let values = ValueGen::new(PUT_VALUE_SIZE, false, SEED).expect("valid value size");
    let largest = PUT_BATCHES.into_iter().max().unwrap_or(1);
    let bufs = value_bufs(&values, largest);
    let fixture = OnceCell::new();
    let setup = || {
        let f = Fixture::open(false, Some(PUT_MAX_BYTES));
        f.fill_to_budget(&values);
        f
    };

    let mut group = c.benchmark_group(format!(
        "l2_put_batch/value={PUT_VALUE_SIZE}B,max_bytes={}MiB,full",
        PUT_MAX_BYTES >> 20
    ));
    for batch in PUT_BATCHES {
        group.throughput(Throughput::ElementsAndBytes {
            elements: batch,
            bytes: batch * u64::from(PUT_VALUE_SIZE),
        });
        let bufs = &bufs[..usize::try_from(batch).expect("fits in usize")];
        group.bench_function(BenchmarkId::from_parameter(format!("batch={batch}")), |b| {
            let f = fixture.get_or_init(setup);
            b.iter(|| f.put_batch(bufs));
        });
    }
    group.finish();
}

fn compression_put(c: &mut Criterion) {
    let mut group = c.benchmark_group(format!(
        "l2_compression_put/value={COMPRESSION_VALUE_SIZE}B,batch={COMPRESSION_PUT_BATCH},\
         max_bytes={}MiB,full",
        PUT_MAX_BYTES >> 20
    ));
    group.throughput(Throughput::ElementsAndBytes {
        elements: COMPRESSION_PUT_BATCH,
        bytes: COMPRESSION_PUT_BATCH * u64::from(COMPRESSION_VALUE_SIZE),
    });
    for compressible in [true, false] {
        let values =
            ValueGen::new(COMPRESSION_VALUE_SIZE, compressible, SEED).expect("valid value size");
        let bufs = value_bufs(&values, COMPRESSION_PUT_BATCH);
        for compress in [true, false] {
            let fixture = OnceCell::new();
            let setup = || {
                let f = Fixture::open(compress, Some(PUT_MAX_BYTES));
                f.fill_to_budget(&values);
                assert_eq!(
                    f.store.stats().compressed_insertions > 0,
                    compress && compressible,
                    "zstd shrinks the compressible values only"
                );
                f
            };
            group.bench_function(
                BenchmarkId::from_parameter(variant(compressible, compress)),
                |b| {
                    let f = fixture.get_or_init(setup);
                    b.iter(|| f.put_batch(&bufs));
                },
            );
        }
    }
    group.finish();
}

fn compression_get(c: &mut Criterion) {
    let (hit_indices, hits) = hit_keys();
    let mut group = c.benchmark_group(format!(
        "l2_compression_get/entries={GET_ENTRIES},value={COMPRESSION_VALUE_SIZE}B"
    ));
    group.throughput(Throughput::ElementsAndBytes {
        elements: GET_BATCH,
        bytes: GET_BATCH * u64::from(COMPRESSION_VALUE_SIZE),
    });
    // Incompressible values are stored raw either way: their gets are `l2_get`'s.
    let values = ValueGen::new(COMPRESSION_VALUE_SIZE, true, SEED).expect("valid value size");
    for compress in [true, false] {
        let fixture = OnceCell::new();
        let setup = || {
            let f = Fixture::open(compress, None);
            f.preload(&values, GET_ENTRIES);
            f.check_hits(&values, &hit_indices, &hits);
            assert_eq!(
                f.store.stats().compressed_insertions,
                if compress { GET_ENTRIES } else { 0 }
            );
            f
        };
        group.bench_function(BenchmarkId::from_parameter(variant(true, compress)), |b| {
            let f = fixture.get_or_init(setup);
            b.iter(|| f.get_all(&hits));
        });
    }
    group.finish();
}

/// The name of a compression variant, e.g. `compressible,zstd=3`.
fn variant(compressible: bool, compress: bool) -> String {
    let values = if compressible {
        "compressible"
    } else {
        "incompressible"
    };
    if compress {
        format!("{values},zstd={}", CompressionOptions::default().level)
    } else {
        format!("{values},raw")
    }
}

criterion_group!(benches, get, put_batches, compression_put, compression_get);
criterion_main!(benches);

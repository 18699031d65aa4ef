//! criterion benches of the in-memory tier beside its peers, single-threaded: the hit path,
//! the insert path when every insert evicts, and a 90/10 get/insert mix over Zipf keys.
//!
//! Each group is named by its parameters and holds one function per cache (`cache-l1`, `moka`,
//! `quick_cache`), so criterion's report compares them side by side. Multi-threaded throughput
//! is `cache-bench load`'s job.
//!
//! ```sh
//! cargo bench -p cache-bench --bench l1                 # everything (a few minutes)
//! cargo bench -p cache-bench --bench l1 -- --quick hit  # one group, under a minute
//! ```

use std::hint::black_box;

use bytes::Bytes;
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use rand::{RngExt, SeedableRng};
use rand_distr::{Distribution, Zipf};

const ENTRIES: u64 = 100_000;
const VALUE_BYTES: usize = 100;
/// Keys per batch of lookups, precomputed so the RNG is not measured.
const BATCH: usize = 4096;

/// The operations every cache under test offers.
trait Cache {
    fn get(&self, key: u64) -> Option<Bytes>;
    fn insert(&self, key: u64, value: Bytes);
}

impl Cache for cache_l1::ShardedSieve<u64, Bytes> {
    fn get(&self, key: u64) -> Option<Bytes> {
        cache_l1::ShardedSieve::get(self, &key)
    }
    fn insert(&self, key: u64, value: Bytes) {
        let _ = cache_l1::ShardedSieve::insert(self, key, value);
    }
}

impl Cache for moka::sync::Cache<u64, Bytes> {
    fn get(&self, key: u64) -> Option<Bytes> {
        moka::sync::Cache::get(self, &key)
    }
    fn insert(&self, key: u64, value: Bytes) {
        moka::sync::Cache::insert(self, key, value);
    }
}

impl Cache for quick_cache::sync::Cache<u64, Bytes> {
    fn get(&self, key: u64) -> Option<Bytes> {
        quick_cache::sync::Cache::get(self, &key)
    }
    fn insert(&self, key: u64, value: Bytes) {
        quick_cache::sync::Cache::insert(self, key, value);
    }
}

/// The three caches, each with room for `ENTRIES` entries.
fn caches() -> Vec<(&'static str, Box<dyn Cache>)> {
    vec![
        (
            "cache-l1",
            Box::new(
                cache_l1::Options::new(ENTRIES)
                    .build(cache_l1::UnitWeigher)
                    .expect("valid options"),
            ),
        ),
        ("moka", Box::new(moka::sync::Cache::new(ENTRIES))),
        (
            "quick_cache",
            Box::new(quick_cache::sync::Cache::new(
                usize::try_from(ENTRIES).expect("fits in usize"),
            )),
        ),
    ]
}

fn value(key: u64) -> Bytes {
    let mut v = vec![0u8; VALUE_BYTES];
    v[..8].copy_from_slice(&key.to_le_bytes());
    Bytes::from(v)
}

/// Inserts keys `0..n`.
fn fill(cache: &dyn Cache, n: u64) {
    for k in 0..n {
        cache.insert(k, value(k));
    }
}

fn hit(c: &mut Criterion) {
    let mut rng = rand::rngs::StdRng::seed_from_u64(1);
    // Half the capacity: resident in every cache whatever its admission policy.
    let keys: Vec<u64> = (0..BATCH)
        .map(|_| rng.random_range(0..ENTRIES / 2))
        .collect();
    let mut group = c.benchmark_group(format!("l1_hit/entries={ENTRIES},value={VALUE_BYTES}B"));
    group.throughput(Throughput::Elements(BATCH as u64));
    for (name, cache) in caches() {
        fill(&*cache, ENTRIES / 2);
        for &k in &keys {
            assert!(cache.get(k).is_some(), "{name}: key {k} not resident");
        }
        group.bench_function(BenchmarkId::from_parameter(name), |b| {
            b.iter(|| {
                for &k in &keys {
                    black_box(cache.get(black_box(k)));
                }
            });
        });
    }
    group.finish();
}

fn insert_with_eviction(c: &mut Criterion) {
    let mut group = c.benchmark_group(format!(
        "l1_insert_evict/entries={ENTRIES},value={VALUE_BYTES}B"
    ));
    group.throughput(Throughput::Elements(BATCH as u64));
    let values: Vec<Bytes> = (0..BATCH as u64).map(value).collect();
    for (name, cache) in caches() {
        fill(&*cache, ENTRIES);
        let mut next = ENTRIES;
        group.bench_function(BenchmarkId::from_parameter(name), |b| {
            b.iter(|| {
                for v in &values {
                    cache.insert(next, v.clone());
                    next += 1;
                }
            });
        });
    }
    group.finish();
}

fn mixed(c: &mut Criterion) {
    let keys_total = 10 * ENTRIES;
    let n = f64::from(u32::try_from(keys_total).expect("fits in u32"));
    let zipf = Zipf::new(n, 0.99).expect("valid Zipf");
    let mut rng = rand::rngs::StdRng::seed_from_u64(2);
    let ops: Vec<(bool, u64)> = (0..BATCH)
        .map(|_| {
            #[expect(
                clippy::cast_possible_truncation,
                clippy::cast_sign_loss,
                reason = "Zipf samples are whole numbers in 1..=keys_total"
            )]
            let k = zipf.sample(&mut rng) as u64 - 1;
            (rng.random_range(0..10) == 0, k)
        })
        .collect();
    let values: Vec<Bytes> = ops.iter().map(|&(_, k)| value(k)).collect();
    let mut group = c.benchmark_group(format!(
        "l1_mixed/reads=90%,inserts=10%,zipf=0.99,keys={keys_total},entries={ENTRIES}"
    ));
    group.throughput(Throughput::Elements(BATCH as u64));
    for (name, cache) in caches() {
        for (&(_, k), v) in ops.iter().zip(&values).cycle().take(4 * BATCH) {
            cache.insert(k, v.clone());
        }
        group.bench_function(BenchmarkId::from_parameter(name), |b| {
            b.iter(|| {
                for (&(insert, k), v) in ops.iter().zip(&values) {
                    if insert {
                        cache.insert(k, v.clone());
                    } else {
                        black_box(cache.get(k));
                    }
                }
            });
        });
    }
    group.finish();
}

criterion_group!(benches, hit, insert_with_eviction, mixed);
criterion_main!(benches);

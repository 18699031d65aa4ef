//! Guards the claim that one L1 shard is exactly SIEVE: replaying the shared traces through the
//! tiered cache (L1 alone, entry budget, one shard, the same path as `cache-bench replay`) must
//! give every SIEVE miss ratio of `reference/miss-ratio-count.csv` (measured with libCacheSim)
//! to ±0.0001.
//! All 41 rows run in every `cargo test` (about 10 s on two cores), split over two tests.

mod common;

use cache_bench::{CacheSpec, L1Budget, ReplaySpec, Source};
use cache_core::L1Policy;

fn sieve_miss_ratio(trace: &str, entries: u64) -> f64 {
    let spec = ReplaySpec {
        source: Source::Trace {
            path: common::trace_path(trace),
            format: None,
        },
        cache: CacheSpec {
            l1: L1Budget::Entries(entries),
            shards: Some(1),
            policy: L1Policy::Sieve,
            l2_max_bytes: None,
            l2_dir: None,
            peers: Vec::new(),
            async_promotion: false,
            engine: cache_core::Config::default(),
        },
        values: cache_bench::workload::ValueSpec::fixed(8),
        command: String::new(),
    };
    let report = cache_bench::replay(&spec, |_| {}).expect("replay");
    assert_eq!(report.l1_hits + report.misses, report.requests);
    report.miss_ratio
}

fn check(rows: &[common::Row]) {
    assert!(!rows.is_empty());
    // Two threads: one row's replay is single-threaded, and this machine class has two cores.
    let failures: Vec<String> = std::thread::scope(|s| {
        let (a, b) = rows.split_at(rows.len() / 2);
        let handles = [a, b].map(|half| {
            s.spawn(move || {
                half.iter()
                    .filter_map(|row| {
                        let got = sieve_miss_ratio(&row.trace, row.size);
                        ((got - row.miss_ratio).abs() > 1e-4).then(|| {
                            format!(
                                "{}@{}: got {got:.6}, reference {:.6}",
                                row.trace, row.size, row.miss_ratio
                            )
                        })
                    })
                    .collect::<Vec<_>>()
            })
        });
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect()
    });
    assert!(
        failures.is_empty(),
        "SIEVE rows off by more than 1e-4:\n{}",
        failures.join("\n")
    );
}

fn sieve_rows(keep: impl Fn(&str) -> bool) -> Vec<common::Row> {
    common::reference_rows()
        .into_iter()
        .filter(|r| r.policy == "SIEVE" && keep(&r.trace))
        .collect()
}

#[test]
fn single_shard_l1_matches_every_sieve_row_for_lirs_and_oltp() {
    if !common::traces_available("single_shard_l1_matches_every_sieve_row_for_lirs_and_oltp") {
        return;
    }
    let rows = sieve_rows(|t| !matches!(t, "P3" | "P6"));
    assert_eq!(
        rows.len(),
        8 + 9 * 3,
        "OLTP has 8 SIEVE rows, each LIRS trace 3"
    );
    check(&rows);
}

#[test]
fn single_shard_l1_matches_the_sieve_rows_for_p3_and_p6() {
    if !common::traces_available("single_shard_l1_matches_the_sieve_rows_for_p3_and_p6") {
        return;
    }
    let rows = sieve_rows(|t| matches!(t, "P3" | "P6"));
    assert_eq!(rows.len(), 6);
    check(&rows);
}

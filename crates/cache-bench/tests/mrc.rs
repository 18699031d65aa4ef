//! Guards `cache-bench mrc`: the report's fields are consistent (every target replays every
//! request, ratios are fractions, the mean is the mean of the points), hand-computed miss counts
//! on a tiny trace, the reference CSV's SIEVE and LRU rows, the SVG curves, and the command line
//! the README shows.

mod common;

use std::path::{Path, PathBuf};

use cache_bench::mrc::{CacheSize, MrcReport, MrcSpec, MrcTarget, mrc};

/// Keys 1 2 3 1 4 1 2 5 1 2 3: 11 requests over 5 keys.
const TINY: &str = "1\n2\n3\n1\n4\n*\n1\n2\n5\n1\n2\n3\n";

fn tiny_trace(dir: &Path) -> PathBuf {
    let path = dir.join("tiny.trace");
    std::fs::write(&path, TINY).unwrap();
    path
}

fn spec(traces: Vec<PathBuf>, sizes: Vec<CacheSize>) -> MrcSpec {
    MrcSpec {
        traces,
        format: None,
        sizes,
        min_entries: 0,
        targets: MrcTarget::ALL.to_vec(),
        value_size: 16,
        threads: Some(2),
        command: "test".into(),
    }
}

fn misses(report: &MrcReport, point: usize, target: &str) -> u64 {
    report.points[point].targets[target].misses
}

#[test]
fn tiny_trace_gives_consistent_and_hand_computed_figures() {
    let dir = tempfile::tempdir().unwrap();
    let mut spec = spec(
        vec![tiny_trace(dir.path())],
        vec![
            CacheSize::Entries(3),
            CacheSize::Entries(2),
            // 10% of 5 keys rounds to 1, raised to the minimum of 10 entries.
            CacheSize::Percent(10.0),
            CacheSize::Entries(10),
        ],
    );
    spec.min_entries = 3;
    let report = mrc(&spec, |_, _| {}).unwrap();

    assert_eq!(report.traces.len(), 1);
    assert_eq!(report.traces[0].trace, "tiny");
    assert_eq!(report.traces[0].requests, 11);
    assert_eq!(report.traces[0].unique_keys, 5);
    // 2 entries is below --min-entries; 10% and 10 come to the same 10 entries, measured once.
    assert_eq!(report.skipped.len(), 1);
    assert_eq!(report.skipped[0].size_entries, 2);
    let sizes: Vec<(u64, &str)> = report
        .points
        .iter()
        .map(|p| (p.size_entries, p.size_label.as_str()))
        .collect();
    assert_eq!(sizes, [(3, "3"), (10, "10%/10")]);

    for p in &report.points {
        assert_eq!(p.targets.len(), 5, "{p:?}");
        for (name, f) in &p.targets {
            assert_eq!(f.requests, 11, "{name}");
            assert_eq!(f.hits + f.misses, f.requests, "{name}");
            assert!((0.0..=1.0).contains(&f.miss_ratio), "{name}");
            assert!(f.misses >= 5, "{name}: every key misses once");
        }
    }
    // With room for every key, only the first request of each key misses.
    for t in MrcTarget::ALL {
        assert_eq!(misses(&report, 1, t.name()), 5, "{}", t.name());
    }
    // At 3 entries, by hand. LRU (most recent first): 1 2 3 miss; 1 hits; 4 evicts 2; 1 hits;
    // 2 evicts 3; 5 evicts 4; 1 and 2 hit; 3 evicts 5: 7 misses. SIEVE (oldest first, hand
    // from the tail): 4 clears 1's bit and evicts 2; 2 evicts 3; 5 evicts 4; 1 and 2 hit; 3
    // clears 2's bit and evicts 5: the same 7 misses.
    assert_eq!(misses(&report, 0, "lru"), 7);
    assert_eq!(misses(&report, 0, "sieve"), 7);

    let json = serde_json::to_value(&report).unwrap();
    assert_eq!(json["command"], "test");
    assert!(json["machine"]["cpus"].as_u64().unwrap() >= 1);
    for p in json["points"].as_array().unwrap() {
        assert!(p["trace"].is_string() && p["size_label"].is_string());
        assert!(p["size_entries"].is_u64());
        for t in MrcTarget::ALL {
            let f = &p["targets"][t.name()];
            assert!(f["miss_ratio"].is_f64(), "{}", t.name());
            assert_eq!(f["requests"], 11);
        }
    }
    for t in MrcTarget::ALL {
        let name = t.name();
        let expected = report
            .points
            .iter()
            .map(|p| p.targets[name].miss_ratio)
            .sum::<f64>()
            / 2.0;
        let mean = json["mean"][name].as_f64().unwrap();
        assert!(
            (mean - expected).abs() < 1e-12,
            "{name}: {mean} vs {expected}"
        );
    }
    let table = report.to_table();
    assert!(
        table.contains("quick_cache") && table.contains("mean"),
        "{table}"
    );

    let plots = dir.path().join("plots");
    let written = cache_bench::plot::mrc_curves(&report, &plots).unwrap();
    assert_eq!(written, [plots.join("mrc-tiny.svg")]);
    let svg = std::fs::read_to_string(&written[0]).unwrap();
    assert!(svg.starts_with("<svg"), "{}", &svg[..svg.len().min(80)]);
    for t in MrcTarget::ALL {
        assert!(svg.contains(t.name()), "legend lacks {}", t.name());
    }
}

#[test]
fn sieve_and_lru_match_the_reference_rows_on_cpp() {
    if !common::traces_available("sieve_and_lru_match_the_reference_rows_on_cpp") {
        return;
    }
    let report = mrc(
        &spec(
            vec![common::trace_path("cpp")],
            vec![CacheSize::Percent(10.0)],
        ),
        |_, _| {},
    )
    .unwrap();
    assert_eq!(report.traces[0].unique_keys, 1223);
    let point = &report.points[0];
    assert_eq!(point.size_entries, 122, "10% of 1223 keys, as the CSV");
    for (target, policy) in [("sieve", "SIEVE"), ("lru", "LRU")] {
        let row = common::reference_rows()
            .into_iter()
            .find(|r| r.trace == "cpp" && r.size == 122 && r.policy == policy)
            .unwrap();
        let got = point.targets[target].miss_ratio;
        assert!(
            (got - row.miss_ratio).abs() <= 1e-4,
            "{target}: {got} vs reference {}",
            row.miss_ratio
        );
        assert_eq!(point.targets[target].requests, row.requests);
    }
}

#[test]
fn the_binary_runs_mrc_with_json_and_plots() {
    let dir = tempfile::tempdir().unwrap();
    let trace = tiny_trace(dir.path());
    let json = dir.path().join("mrc.json");
    let plots = dir.path().join("plots");
    let output = common::cli()
        .args(["mrc", trace.to_str().unwrap(), "--sizes", "3,10%"])
        .args(["--json", json.to_str().unwrap()])
        .args(["--plot", plots.to_str().unwrap()])
        .output()
        .unwrap();
    let stdout = common::succeeded(&output);
    assert!(
        stdout.contains("s3-fifo") && stdout.contains("mean"),
        "{stdout}"
    );
    let report: serde_json::Value = common::read_json(&json);
    assert_eq!(report["points"].as_array().unwrap().len(), 2);
    assert!(plots.join("mrc-tiny.svg").is_file());

    let bad = common::cli()
        .args(["mrc", trace.to_str().unwrap(), "--sizes", "0%"])
        .output()
        .unwrap();
    assert!(!bad.status.success(), "0% is not a size");
}

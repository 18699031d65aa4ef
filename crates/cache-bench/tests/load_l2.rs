//! Guards `cache-bench load --cache l2`: tiny runs in both write modes finish with every figure
//! of `cache-l2` and `raw-redb` positive and finite under the names the JSON documents; a wrong
//! or missing value is caught; the CLI keeps each `--cache`'s options to itself and leaves no
//! files behind.

mod common;

use cache_bench::load::Length;
use cache_bench::load_l2::{GetMismatch, L2LoadSpec, NAMESPACE, ValueGen, key, load_l2};
use cache_l2::WriteMode;

/// 64 entries of 4 KiB: 256 KiB per target.
fn tiny(write_mode: WriteMode, writers: usize) -> L2LoadSpec {
    L2LoadSpec {
        entries: 64,
        write_mode,
        writers,
        length: Length::Ops(300),
        ..L2LoadSpec::new(4096, "test".into())
    }
}

fn positive(json: &serde_json::Value, what: &str) -> f64 {
    let x = json
        .as_f64()
        .unwrap_or_else(|| panic!("{what} is not a number: {json}"));
    assert!(x.is_finite() && x > 0.0, "{what}: {x}");
    x
}

#[test]
fn tiny_l2_load_reports_both_targets_in_both_write_modes() {
    for (mode, writers, name) in [
        (WriteMode::Sync, 1, "sync"),
        (WriteMode::Async, 1, "async"),
        (WriteMode::Sync, 4, "sync"),
    ] {
        let mut finished = Vec::new();
        let report = load_l2(&tiny(mode, writers), |run, target, _| {
            finished.push((run, target.to_owned()));
        })
        .unwrap();
        assert_eq!(
            finished,
            [(0, "cache-l2".to_owned()), (0, "raw-redb".to_owned())]
        );
        let json = serde_json::to_value(&report).unwrap();
        for target in ["cache-l2", "raw-redb"] {
            let t = &json["targets"][target];
            for field in ["puts_per_s", "gets_per_s", "get_p50_us", "get_p99_us"] {
                positive(&t[field], &format!("{name}/{writers}: {target}.{field}"));
            }
            assert!(t["get_p99_us"].as_f64() >= t["get_p50_us"].as_f64());
            assert!(t["file_bytes"].as_u64().unwrap() > 64 * 4096, "{target}");
            let run = &report.runs[0][target];
            assert_eq!((run.puts, run.gets), (64, 600), "{target}");
        }
        let live = json["targets"]["cache-l2"]["live_bytes"].as_u64().unwrap();
        // Random values are stored raw: every record holds its value and a header.
        assert!(live > 64 * 4096, "{live}");
        assert!(json["targets"]["raw-redb"]["live_bytes"].is_null());
        assert_eq!(report.runs[0]["cache-l2"].compressed_puts, Some(0));
        positive(&json["ratios"]["puts_per_s"], "ratios.puts_per_s");
        positive(&json["ratios"]["gets_per_s"], "ratios.gets_per_s");
        let setup = &json["setup"];
        assert_eq!(setup["cache"], "l2");
        assert_eq!(setup["write_mode"], name);
        assert_eq!(setup["writers"], writers);
        assert_eq!(setup["data_bytes"], 64 * 4096);
        assert_eq!(setup["raw_redb_batch"], 1000);
        assert_eq!(setup["page_cache_bytes"], 64 << 20);
        assert!(json["machine"]["cpus"].as_u64().unwrap() >= 1);
        assert_eq!(json["command"], "test");
        let table = report.to_table();
        assert!(table.contains("cache-l2/raw-redb: puts"), "{table}");
    }
}

#[test]
fn compressible_values_shrink_in_cache_l2() {
    let spec = L2LoadSpec {
        compressible: true,
        runs: 3,
        length: Length::Duration(std::time::Duration::from_millis(20)),
        ..tiny(WriteMode::Sync, 1)
    };
    let report = load_l2(&spec, |_, _, _| {}).unwrap();
    assert_eq!(report.runs.len(), 3);
    for run in &report.runs {
        let ours = &run["cache-l2"];
        assert_eq!(ours.compressed_puts, Some(64));
        assert!(ours.live_bytes.unwrap() < 64 * 4096 / 2, "{ours:?}");
    }
    // Each reported figure is one of the runs' (the median).
    let t = &report.targets["cache-l2"];
    assert!(
        report
            .runs
            .iter()
            .any(|r| (r["cache-l2"].gets_per_s - t.gets_per_s).abs() < f64::EPSILON)
    );
}

#[test]
fn the_checker_catches_missing_and_wrong_values() {
    for compressible in [false, true] {
        let values = ValueGen::new(100, compressible, 9).unwrap();
        let (mut v, mut other) = (Vec::new(), Vec::new());
        values.write(5, &mut v);
        values.write(6, &mut other);
        assert_eq!(v.len(), 100);
        assert_ne!(v, other);
        assert_eq!(values.check(5, Some(&v)), Ok(()));
        assert_eq!(
            values.check(5, None),
            Err(GetMismatch::Missing { index: 5 })
        );
        let wrong = |got: &[u8]| match values.check(5, Some(got)) {
            Err(GetMismatch::WrongBytes {
                index: 5,
                len,
                expected_len: 100,
                first_difference,
            }) => (len, first_difference),
            other => panic!("{other:?}"),
        };
        // Another key's value, a flipped byte, a truncated value, one with a byte too many.
        assert_eq!(wrong(&other), (100, 0));
        let mut flipped = v.clone();
        flipped[60] ^= 0x80;
        assert_eq!(wrong(&flipped), (100, 60));
        assert_eq!(wrong(&v[..99]), (99, 99));
        let mut longer = v.clone();
        longer.push(0);
        assert_eq!(wrong(&longer), (101, 100));
    }
    assert!(ValueGen::new(7, false, 1).is_err());
}

#[test]
fn keys_are_distinct_and_the_namespace_is_fixed() {
    let keys: std::collections::HashSet<[u8; 8]> = (0..10_000).map(key).collect();
    assert_eq!(keys.len(), 10_000);
    assert_eq!(NAMESPACE, "bench");
}

#[test]
fn cli_runs_l2_load_and_cleans_up_its_directory() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("l2.json");
    let db_dir = dir.path().join("db");
    let output = common::cli()
        .args([
            "load",
            "--cache",
            "l2",
            "--entries",
            "32",
            "--value-size",
            "2048",
        ])
        .args(["--ops", "100", "--writers", "2", "--write-mode", "async"])
        .arg("--dir")
        .arg(&db_dir)
        .arg("--json")
        .arg(&json)
        .output()
        .unwrap();
    let stdout = common::succeeded(&output);
    assert!(stdout.contains("cache-l2/raw-redb: puts"), "{stdout}");
    let report: serde_json::Value = common::read_json(&json);
    assert!(
        report["command"].as_str().unwrap().contains("--cache l2"),
        "{report}"
    );
    assert_eq!(report["setup"]["entries"], 32);
    assert_eq!(report["setup"]["value_size"], 2048);
    assert_eq!(report["setup"]["write_mode"], "async");
    assert_eq!(report["setup"]["gets_per_thread"], 100);
    for target in ["cache-l2", "raw-redb"] {
        positive(&report["targets"][target]["gets_per_s"], target);
    }
    // The run's subdirectory, and the database files in it, are gone.
    assert_eq!(std::fs::read_dir(&db_dir).unwrap().count(), 0);
}

#[test]
fn cli_refuses_options_of_the_other_cache() {
    for (args, flag) in [
        (
            &["--cache", "l1", "--writers", "4"][..],
            "--writers only apply with --cache l2",
        ),
        (
            &["--writers", "4"][..],
            "--writers only apply with --cache l2",
        ),
        (&["--cache", "l1", "--compressible"][..], "--compressible"),
        (
            &["--cache", "l2", "--zipf", "0.5"][..],
            "--zipf only apply with --cache l1",
        ),
        (
            &["--cache", "l2", "--keys", "9", "--targets", "moka"][..],
            "--targets, --keys only apply with --cache l1",
        ),
    ] {
        let output = common::cli().arg("load").args(args).output().unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "{args:?} succeeded");
        assert!(stderr.contains(flag), "{args:?}: {stderr}");
    }
}

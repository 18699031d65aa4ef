//! Guards `cache-bench churn`: a tiny churn (1 MiB budget, 16 KiB values, 3 × the budget
//! written) in both write modes, and with several writers, reports one sample per round and
//! figures that agree with each other and with the store's budget, and leaves no files behind;
//! the CLI writes the JSON the docs name. It does not check the file against issue 4's goal
//! (1.1 × the budget): the tool reports that ratio, it does not judge it.

mod common;

use cache_bench::churn::{ChurnReport, ChurnSpec, churn};
use cache_l2::WriteMode;

const MAX_BYTES: u64 = 1 << 20;
const VALUE_SIZE: u32 = 16 << 10;
const FACTOR: u64 = 3;

fn tiny(write_mode: WriteMode, writers: usize, dir: &std::path::Path) -> ChurnSpec {
    ChurnSpec {
        max_bytes: MAX_BYTES,
        value_size: VALUE_SIZE,
        factor: FACTOR,
        write_mode,
        writers,
        dir: Some(dir.to_owned()),
        ..ChurnSpec::new("test".into())
    }
}

#[expect(clippy::cast_precision_loss, reason = "sizes far below 2^53")]
fn close_to(ratio: f64, part: u64, whole: u64, what: &str) {
    let expected = part as f64 / whole as f64;
    assert!(
        (ratio - expected).abs() < 1e-9,
        "{what}: {ratio} is not {part}/{whole}"
    );
}

/// Checks everything in `report` that must hold whatever the store's file layout.
fn check_coherent(report: &ChurnReport, what: &str) {
    let (setup, c) = (&report.setup, &report.churn);
    assert_eq!(setup.puts_per_round, MAX_BYTES / u64::from(VALUE_SIZE));
    assert_eq!(report.samples.len() as u64, FACTOR, "{what}");
    assert_eq!(c.max_bytes, MAX_BYTES, "{what}");
    assert!(c.written_bytes >= FACTOR * MAX_BYTES, "{what}: {c:?}");
    assert_eq!(c.written_bytes, c.puts * u64::from(VALUE_SIZE), "{what}");
    assert!(
        c.live_bytes > 0 && c.live_bytes <= MAX_BYTES,
        "{what}: {c:?}"
    );
    assert!(c.file_bytes > 0 && c.closed_file_bytes > 0, "{what}: {c:?}");
    assert!(c.max_file_bytes >= c.file_bytes, "{what}: {c:?}");
    if !setup.compressible {
        // Three budgets' worth of distinct, incompressible keys went through a store that
        // holds one.
        assert!(c.evictions > 0, "{what}: {c:?}");
    }
    assert!(
        c.durable_commits > 0 && c.durable_commits <= c.commits,
        "{what}"
    );
    assert!(c.puts_per_s.is_finite() && c.puts_per_s > 0.0, "{what}");
    close_to(c.file_to_max, c.file_bytes, c.max_bytes, "file_to_max");
    close_to(
        c.max_file_to_max,
        c.max_file_bytes,
        c.max_bytes,
        "max_file_to_max",
    );
    close_to(
        c.closed_file_to_max,
        c.closed_file_bytes,
        c.max_bytes,
        "closed_file_to_max",
    );
    close_to(c.live_to_file, c.live_bytes, c.file_bytes, "live_to_file");

    let mut previous_puts = 0;
    for (round, s) in (1..).zip(&report.samples) {
        assert_eq!(s.puts, round * setup.puts_per_round, "{what}: {s:?}");
        assert!(s.puts > previous_puts);
        previous_puts = s.puts;
        assert!(s.written_bytes >= round * MAX_BYTES, "{what}: {s:?}");
        assert!(s.live_bytes <= MAX_BYTES, "{what}: {s:?}");
        assert!(
            s.file_bytes > 0 && s.file_bytes <= c.max_file_bytes,
            "{s:?}"
        );
        close_to(
            s.written_to_max,
            s.written_bytes,
            MAX_BYTES,
            "written_to_max",
        );
        close_to(s.file_to_max, s.file_bytes, MAX_BYTES, "file_to_max");
        close_to(s.live_to_file, s.live_bytes, s.file_bytes, "live_to_file");
    }
    assert_eq!(report.samples.last().map(|s| s.puts), Some(c.puts));
}

#[test]
fn tiny_churn_reports_coherent_figures_in_both_write_modes() {
    for (mode, writers, name) in [
        (WriteMode::Sync, 1, "sync"),
        (WriteMode::Async, 1, "async"),
        (WriteMode::Async, 3, "async"),
    ] {
        let what = format!("{name}, {writers} writers");
        let dir = tempfile::tempdir().unwrap();
        let mut progress = Vec::new();
        let report = churn(&tiny(mode, writers, dir.path()), |s| {
            progress.push(s.puts);
        })
        .unwrap();
        check_coherent(&report, &what);
        assert_eq!(
            progress,
            report.samples.iter().map(|s| s.puts).collect::<Vec<_>>()
        );

        let json = serde_json::to_value(&report).unwrap();
        assert_eq!(json["setup"]["write_mode"], name);
        assert_eq!(json["setup"]["writers"], writers);
        assert_eq!(json["setup"]["compressible"], false);
        assert_eq!(json["samples"].as_array().unwrap().len(), 3);
        for field in [
            "max_bytes",
            "written_bytes",
            "file_bytes",
            "live_bytes",
            "max_file_bytes",
            "file_to_max",
            "live_to_file",
            "puts_per_s",
            "evictions",
        ] {
            assert!(json["churn"][field].is_number(), "{what}: churn.{field}");
        }
        let table = report.to_table();
        let rows = table
            .lines()
            .filter(|l| l.trim_start().starts_with(|c: char| c.is_ascii_digit()))
            .count();
        assert_eq!(rows, 3, "{table}");
        assert!(table.contains("final: file"), "{table}");

        // The run's subdirectory, and the database file in it, are gone.
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0, "{what}");
    }
}

#[test]
fn compressible_values_churn_coherently() {
    let dir = tempfile::tempdir().unwrap();
    let spec = ChurnSpec {
        compressible: true,
        ..tiny(WriteMode::Async, 1, dir.path())
    };
    let report = churn(&spec, |_| {}).unwrap();
    check_coherent(&report, "compressible");
    assert!(report.setup.compressible);
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}

#[test]
fn bad_options_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    for (spec, message) in [
        (
            ChurnSpec {
                factor: 0,
                ..tiny(WriteMode::Sync, 1, dir.path())
            },
            "--factor",
        ),
        (
            ChurnSpec {
                writers: 0,
                ..tiny(WriteMode::Sync, 1, dir.path())
            },
            "--writers",
        ),
        (
            ChurnSpec {
                value_size: 7,
                ..tiny(WriteMode::Sync, 1, dir.path())
            },
            "--value-size",
        ),
    ] {
        let err = churn(&spec, |_| {}).unwrap_err();
        assert!(format!("{err:#}").contains(message), "{err:#}");
    }
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}

#[test]
fn cli_runs_churn_and_writes_json() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("churn.json");
    let db_dir = dir.path().join("db");
    let output = common::cli()
        .args(["churn", "--l2-max-bytes", "1MiB", "--factor", "2"])
        .args([
            "--value-size",
            "8192",
            "--write-mode",
            "sync",
            "--writers",
            "2",
        ])
        .arg("--dir")
        .arg(&db_dir)
        .arg("--json")
        .arg(&json)
        .output()
        .unwrap();
    let stdout = common::succeeded(&output);
    assert!(stdout.contains("final: file"), "{stdout}");
    let report: serde_json::Value = common::read_json(&json);
    assert!(
        report["command"].as_str().unwrap().contains("churn"),
        "{report}"
    );
    assert_eq!(report["setup"]["max_bytes"], 1 << 20);
    assert_eq!(report["setup"]["value_size"], 8192);
    assert_eq!(report["setup"]["factor"], 2);
    assert_eq!(report["setup"]["write_mode"], "sync");
    assert_eq!(report["setup"]["writers"], 2);
    assert_eq!(report["samples"].as_array().unwrap().len(), 2);
    assert_eq!(report["churn"]["written_bytes"], 2 << 20);
    assert_eq!(std::fs::read_dir(&db_dir).unwrap().count(), 0);
}

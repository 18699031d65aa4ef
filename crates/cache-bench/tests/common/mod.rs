//! Where the shared traces and reference figures are, and how to run the binary.

#![allow(
    dead_code,
    reason = "each test binary uses a different part of this module"
)]

use std::io::Write as _;
use std::path::PathBuf;

/// `$CACHE_TRACES`, or `../shared/traces` beside the repository.
fn traces_location() -> PathBuf {
    std::env::var_os("CACHE_TRACES").map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/traces"),
        PathBuf::from,
    )
}

/// Whether the shared traces are there for `test`, which needs them. If they are not, the test
/// is skipped with one line on standard error naming the variable to set, unless `CI` or
/// `CACHE_TRACES` is set: then the traces must be there, and their absence fails the test.
pub(crate) fn traces_available(test: &str) -> bool {
    let dir = traces_location();
    if dir.join("README.md").is_file() {
        return true;
    }
    let required = std::env::var_os("CI").is_some() || std::env::var_os("CACHE_TRACES").is_some();
    assert!(
        !required,
        "shared traces not found at {}: put the shared/ folder beside the repository or set \
         CACHE_TRACES to its traces/ directory (CI or CACHE_TRACES is set, so trace tests must \
         run)",
        dir.display()
    );
    // Written past the test harness's capture, so `cargo test` shows it.
    let _ = writeln!(
        std::io::stderr(),
        "skipped {test}: shared traces not found at {}; set CACHE_TRACES to the traces/ \
         directory of the shared data to run it",
        dir.display()
    );
    false
}

/// The shared traces directory; call [`traces_available`] first.
pub(crate) fn traces_dir() -> PathBuf {
    let dir = traces_location();
    assert!(
        dir.join("README.md").is_file(),
        "shared traces not found at {}",
        dir.display()
    );
    dir
}

/// The trace file a reference row names.
pub(crate) fn trace_path(name: &str) -> PathBuf {
    let dir = traces_dir();
    match name {
        "OLTP" | "P3" | "P6" => dir.join(format!("arc/{name}.lis.zst")),
        _ => dir.join(format!("lirs/{name}.trace.zst")),
    }
}

/// One row of `reference/miss-ratio-count.csv`.
#[derive(Debug, Clone)]
pub(crate) struct Row {
    pub(crate) trace: String,
    pub(crate) size: u64,
    pub(crate) policy: String,
    pub(crate) requests: u64,
    /// A fraction, not a percentage.
    pub(crate) miss_ratio: f64,
}

/// Every row of `reference/miss-ratio-count.csv` (beside the traces directory).
pub(crate) fn reference_rows() -> Vec<Row> {
    let path = traces_dir().join("../reference/miss-ratio-count.csv");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    text.lines()
        .skip(1)
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            Row {
                trace: f[0].to_owned(),
                size: f[1].parse().unwrap(),
                policy: f[2].to_owned(),
                requests: f[3].parse().unwrap(),
                miss_ratio: f[4].parse::<f64>().unwrap() / 100.0,
            }
        })
        .collect()
}

/// The `cache-bench` binary, ready for arguments.
pub(crate) fn cli() -> std::process::Command {
    std::process::Command::new(env!("CARGO_BIN_EXE_cache-bench"))
}

/// The standard output of a `cache-bench` run; panics with both streams unless it succeeded.
pub(crate) fn succeeded(output: &std::process::Output) -> String {
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

/// The JSON report a `cache-bench` run wrote to `path`.
pub(crate) fn read_json(path: &std::path::Path) -> serde_json::Value {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

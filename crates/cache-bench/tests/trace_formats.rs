//! Guards the trace readers: each format parses a small inline sample (plain and zstd), bad
//! records are reported with their record number, formats are detected from names and contents,
//! and the shared trace files yield the request counts the reference simulators saw.

mod common;

use std::path::{Path, PathBuf};

use cache_bench::trace::{Format, Request, TraceError, TraceReader};

fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let path = dir.join(name);
    if path.extension().is_some_and(|e| e == "zst") {
        let packed = zstd::encode_all(bytes, 3).unwrap();
        std::fs::write(&path, packed).unwrap();
    } else {
        std::fs::write(&path, bytes).unwrap();
    }
    path
}

fn read_all(path: &Path, format: Option<Format>) -> Result<Vec<Request>, TraceError> {
    TraceReader::open(path, format)?.collect()
}

fn keys_only(keys: &[u64]) -> Vec<Request> {
    keys.iter()
        .map(|&key| Request { key, size: None })
        .collect()
}

#[test]
fn arc_lines_expand_to_one_request_per_block() {
    let dir = tempfile::tempdir().unwrap();
    let sample = b"100 3 0 1\n7 1 0 2\n\n50 2 0 3\n";
    for name in ["t.lis", "t.lis.zst"] {
        let path = write(dir.path(), name, sample);
        assert_eq!(Format::detect(&path).unwrap(), Format::Arc);
        assert_eq!(
            read_all(&path, None).unwrap(),
            keys_only(&[100, 101, 102, 7, 50, 51])
        );
    }
}

#[test]
fn lirs_skips_checkpoints() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "t.trace.zst", b"5\n*\n6\n5\n*\n");
    assert_eq!(Format::detect(&path).unwrap(), Format::Lirs);
    assert_eq!(read_all(&path, None).unwrap(), keys_only(&[5, 6, 5]));
}

#[test]
fn text_records_carry_sizes() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "t.trace", b"0 11 100\n1 12 2000\n2 11 100\n");
    assert_eq!(Format::detect(&path).unwrap(), Format::Text);
    let sized = |key, size| Request {
        key,
        size: Some(size),
    };
    assert_eq!(
        read_all(&path, None).unwrap(),
        vec![sized(11, 100), sized(12, 2000), sized(11, 100)]
    );
}

#[test]
fn oracle_general_records_are_24_bytes_little_endian() {
    let dir = tempfile::tempdir().unwrap();
    let mut bytes = Vec::new();
    for (t, id, size, next) in [
        (1u32, 42u64, 512u32, 3i64),
        (2, u64::MAX, 7, -1),
        (3, 42, 512, -1),
    ] {
        bytes.extend_from_slice(&t.to_le_bytes());
        bytes.extend_from_slice(&id.to_le_bytes());
        bytes.extend_from_slice(&size.to_le_bytes());
        bytes.extend_from_slice(&next.to_le_bytes());
    }
    let path = write(dir.path(), "t.oracleGeneral.bin.zst", &bytes);
    assert_eq!(Format::detect(&path).unwrap(), Format::Oracle);
    let got = read_all(&path, None).unwrap();
    assert_eq!(got.len(), 3);
    assert_eq!((got[1].key, got[1].size), (u64::MAX, Some(7)));
    // A truncated last record is an error, not a silent short read.
    let cut = write(dir.path(), "cut.bin", &bytes[..bytes.len() - 5]);
    let err = read_all(&cut, None).unwrap_err();
    assert!(matches!(err, TraceError::Parse { record: 3, .. }), "{err}");
}

#[test]
fn bad_records_name_their_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "bad.lis", b"1 2 0 1\n3 x 0 2\n");
    let err = read_all(&path, None).unwrap_err();
    assert!(matches!(err, TraceError::Parse { record: 2, .. }), "{err}");
    assert!(err.to_string().contains("count"), "{err}");
    let path = write(dir.path(), "weird.txt", b"1 2\n");
    assert!(matches!(
        Format::detect(&path),
        Err(TraceError::UnknownFormat { .. })
    ));
    // An explicit format overrides detection.
    let path = write(dir.path(), "keys.txt", b"9\n8\n");
    assert_eq!(
        read_all(&path, Some(Format::Lirs)).unwrap(),
        keys_only(&[9, 8])
    );
}

#[test]
fn missing_file_is_an_io_error() {
    let err = TraceReader::open(Path::new("/nonexistent/t.lis"), None).unwrap_err();
    assert!(matches!(err, TraceError::Io { .. }), "{err}");
}

fn count(path: &Path) -> u64 {
    let mut n = 0;
    for r in TraceReader::open(path, None).unwrap() {
        r.unwrap();
        n += 1;
    }
    n
}

#[test]
fn shared_traces_have_the_reference_request_counts() {
    if !common::traces_available("shared_traces_have_the_reference_request_counts") {
        return;
    }
    let dir = common::traces_dir();
    assert_eq!(count(&dir.join("arc/OLTP.lis.zst")), 914_145);
    assert_eq!(count(&dir.join("arc/P3.lis.zst")), 3_912_296);
    assert_eq!(
        count(&dir.join("sized/adaptsize.oracleGeneral.bin.zst")),
        66_987
    );
    assert_eq!(
        count(&dir.join("sized/adaptsize-request.trace.zst")),
        66_987
    );
    // Every LIRS trace, against the request count the reference simulator recorded.
    let mut checked = std::collections::BTreeMap::new();
    for row in common::reference_rows() {
        if !matches!(row.trace.as_str(), "OLTP" | "P3" | "P6") {
            checked.entry(row.trace.clone()).or_insert(row.requests);
        }
    }
    assert_eq!(
        checked.len(),
        9,
        "all nine LIRS traces are in the reference"
    );
    for (trace, requests) in checked {
        assert_eq!(count(&common::trace_path(&trace)), requests, "{trace}");
    }
}

#[test]
fn both_adaptsize_encodings_agree() {
    if !common::traces_available("both_adaptsize_encodings_agree") {
        return;
    }
    let dir = common::traces_dir();
    let a = TraceReader::open(&dir.join("sized/adaptsize.oracleGeneral.bin.zst"), None).unwrap();
    let b = TraceReader::open(&dir.join("sized/adaptsize-request.trace.zst"), None).unwrap();
    assert_eq!(b.format(), Format::Text);
    let mut n = 0;
    for (x, y) in a.zip(b) {
        assert_eq!(x.unwrap(), y.unwrap(), "request {n}");
        n += 1;
    }
    assert_eq!(n, 66_987);
}

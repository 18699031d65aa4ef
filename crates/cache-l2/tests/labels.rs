//! Guards labels, namespace generations and the format migration: label invalidation finds
//! records written before a restart; a namespace flush hides everything written before it at
//! once (queued writes included), survives a restart, and its dead records are swept; limits
//! give typed errors; a store of format 1 (version-1 records) opens, reads and migrates; prefix
//! invalidation and clear remove exactly what they name, durably.

use std::time::{Duration, Instant};

use cache_l2::{L2Error, L2Options, Store, WriteMode, record};

fn options(dir: &tempfile::TempDir) -> L2Options {
    let mut o = L2Options::new(dir.path().join("l2.redb"));
    o.compression.enabled = false;
    o
}

#[test]
fn label_invalidation_reaches_records_written_before_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = Store::open(&options(&dir)).unwrap();
        for i in 0..20u8 {
            let tag: &[u8] = if i % 2 == 0 { b"even" } else { b"odd" };
            store
                .put_with("q", &[i], &[i; 5000], b"m", &[tag, b"all"])
                .unwrap();
        }
        store
            .put_with("other", &[0], b"x", b"", &[b"even"])
            .unwrap();
    }
    let store = Store::open(&options(&dir)).unwrap();
    assert_eq!(store.invalidate_labels("q", &[b"even"]).unwrap(), 10);
    for i in 0..20u8 {
        let got = store.get_entry("q", &[i]).unwrap();
        if i % 2 == 0 {
            assert_eq!(got, None, "{i}");
        } else {
            let e = got.expect("odd keys stay");
            assert_eq!(&e.value[..], &[i; 5000][..]);
            assert_eq!(&e.meta[..], b"m");
            assert_eq!(e.labels, [&b"odd"[..], b"all"]);
        }
    }
    // Another namespace's record with the same label is untouched.
    assert_eq!(
        store.get("other", &[0]).unwrap().as_deref(),
        Some(&b"x"[..])
    );
    assert_eq!(store.invalidate_labels("q", &[b"even"]).unwrap(), 0);
    assert_eq!(store.invalidate_labels("q", &[b"all", b"odd"]).unwrap(), 10);
    assert_eq!(store.stats().label_invalidations, 20);
    store.validate().unwrap();
    drop(store);
    let store = Store::open(&options(&dir)).unwrap();
    for i in 0..20u8 {
        assert_eq!(store.get("q", &[i]).unwrap(), None, "{i} after reopen");
    }
}

#[test]
fn a_namespace_flush_hides_queued_and_committed_records_and_is_swept() {
    let dir = tempfile::tempdir().unwrap();
    let mut o = options(&dir);
    o.write_mode = WriteMode::Async;
    o.group_commit.max_delay_ms = 60_000;
    let store = Store::open(&o).unwrap();
    for i in 0..300u16 {
        store.put("ns", &i.to_le_bytes(), b"old").unwrap();
    }
    store.flush().unwrap();
    // Queued, not committed: the flush must hide these too.
    for i in 300..310u16 {
        store.put("ns", &i.to_le_bytes(), b"old").unwrap();
    }
    store.put("keep", b"k", b"kept").unwrap();
    assert_eq!(store.invalidate_namespace("ns").unwrap(), 1);
    for i in 0..310u16 {
        assert_eq!(store.get("ns", &i.to_le_bytes()).unwrap(), None, "{i}");
    }
    assert_eq!(
        store.get("keep", b"k").unwrap().as_deref(),
        Some(&b"kept"[..])
    );
    store.put("ns", b"new", b"new").unwrap();
    assert_eq!(
        store.get("ns", b"new").unwrap().as_deref(),
        Some(&b"new"[..])
    );
    // The sweep runs while the writer is idle; with `max_delay_ms` at a minute a lone async put
    // keeps it gathering, so flush it.
    store.flush().unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while store.stats().swept < 310 {
        assert!(
            Instant::now() < deadline,
            "sweep stalled: {:?}",
            store.stats()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    store.validate().unwrap();
    let s = store.stats();
    assert_eq!((s.swept, s.namespace_flushes), (310, 1), "{s:?}");
    drop(store);
    let store = Store::open(&o).unwrap();
    assert_eq!(store.get("ns", &0u16.to_le_bytes()).unwrap(), None);
    assert_eq!(
        store.get("ns", b"new").unwrap().as_deref(),
        Some(&b"new"[..])
    );
    assert_eq!(store.invalidate_namespace("ns").unwrap(), 2);
    assert_eq!(store.get("ns", b"new").unwrap(), None);
}

#[test]
fn oversized_labels_and_metadata_are_typed_errors() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&options(&dir)).unwrap();
    let long = vec![b'l'; record::MAX_LABEL_LEN + 1];
    let err = store.put_with("ns", b"k", b"v", b"", &[&long]).unwrap_err();
    assert!(
        matches!(&err, L2Error::KeyTooLong(e) if e.what == "label"),
        "{err}"
    );
    let meta = vec![0u8; record::MAX_META_LEN + 1];
    let err = store.put_with("ns", b"k", b"v", &meta, &[]).unwrap_err();
    assert!(
        matches!(&err, L2Error::KeyTooLong(e) if e.what == "metadata"),
        "{err}"
    );
    let many: Vec<Vec<u8>> = (0..100u32)
        .map(|i| format!("{i:01000}").into_bytes())
        .collect();
    let refs: Vec<&[u8]> = many.iter().map(Vec::as_slice).collect();
    let err = store.put_with("ns", b"k", b"v", b"", &refs).unwrap_err();
    assert!(
        matches!(&err, L2Error::KeyTooLong(e) if e.what == "labels"),
        "{err}"
    );
    assert!(store.invalidate_labels("ns", &[&long]).is_err());
    assert_eq!(store.get("ns", b"k").unwrap(), None, "nothing was written");
    store.validate().unwrap();
}

/// Writes a store of format 1 by hand: version-1 records, no blob, label or generation tables.
fn write_format_1(path: &std::path::Path, records: &[(&[u8], &[u8])]) {
    const RECORDS: redb::TableDefinition<(&str, &[u8]), &[u8]> =
        redb::TableDefinition::new("records_v1");
    const ORDER: redb::TableDefinition<u64, (&str, &[u8])> = redb::TableDefinition::new("order_v1");
    const META: redb::TableDefinition<&str, u64> = redb::TableDefinition::new("meta_v1");
    const FORMAT: redb::TableDefinition<&str, u64> = redb::TableDefinition::new("cache_l2_format");
    let db = redb::Database::create(path).unwrap();
    let txn = db.begin_write().unwrap();
    {
        let mut t = txn.open_table(RECORDS).unwrap();
        let mut order = txn.open_table(ORDER).unwrap();
        let mut live = 0;
        for (seq, (key, value)) in (0u64..).zip(records) {
            let rec = record::encode_v1("ns", key, seq, 0, value.len() as u64, value);
            live += record::accounted_size("ns", key, rec.len(), 0);
            t.insert(("ns", *key), rec.as_slice()).unwrap();
            order.insert(seq, ("ns", *key)).unwrap();
        }
        let mut meta = txn.open_table(META).unwrap();
        meta.insert("live_bytes", live).unwrap();
        meta.insert("next_seq", records.len() as u64).unwrap();
        txn.open_table(FORMAT).unwrap().insert("format", 1).unwrap();
    }
    txn.commit().unwrap();
}

#[test]
fn a_format_1_store_opens_reads_and_migrates() {
    let dir = tempfile::tempdir().unwrap();
    let big = vec![7u8; 20_000];
    write_format_1(
        &dir.path().join("l2.redb"),
        &[(b"a", b"raw v1 value"), (b"b", &big)],
    );
    let store = Store::open(&options(&dir)).unwrap();
    store.validate().unwrap();
    assert_eq!(
        store.get("ns", b"a").unwrap().as_deref(),
        Some(&b"raw v1 value"[..])
    );
    assert_eq!(store.get("ns", b"b").unwrap().as_deref(), Some(&big[..]));
    store.put_with("ns", b"c", &big, b"", &[b"t"]).unwrap();
    store.put("ns", b"a", b"rewritten").unwrap();
    store.validate().unwrap();
    drop(store);
    let store = Store::open(&options(&dir)).unwrap();
    assert_eq!(
        store.get("ns", b"a").unwrap().as_deref(),
        Some(&b"rewritten"[..])
    );
    assert_eq!(store.get("ns", b"b").unwrap().as_deref(), Some(&big[..]));
    assert_eq!(store.invalidate_labels("ns", &[b"t"]).unwrap(), 1);
    store.validate().unwrap();
}

#[test]
fn prefix_invalidation_removes_exactly_the_keys_with_the_prefix_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = Store::open(&options(&dir)).unwrap();
        for key in [&b"user:1"[..], b"user:2", b"user", b"usex", b"team:1", b""] {
            store.put("app", key, &[7; 3000]).unwrap();
        }
        // The same prefix in a neighbouring namespace stays.
        store.put("app2", b"user:1", b"x").unwrap();
        store.put("ap", b"puser:1", b"x").unwrap();
    }
    let store = Store::open(&options(&dir)).unwrap();
    // Queued writes before the call are covered too.
    store.put("app", b"user:3", b"new").unwrap();
    let mut removed = store.invalidate_prefix("app", b"user:").unwrap();
    removed.sort();
    let expected: Vec<Box<[u8]>> = vec![
        b"user:1"[..].into(),
        b"user:2"[..].into(),
        b"user:3"[..].into(),
    ];
    assert_eq!(removed, expected);
    for key in [&b"user"[..], b"usex", b"team:1", b""] {
        assert!(store.get("app", key).unwrap().is_some(), "{key:?}");
    }
    assert!(store.get("app2", b"user:1").unwrap().is_some());
    assert!(store.get("ap", b"puser:1").unwrap().is_some());
    assert_eq!(store.stats().prefix_invalidations, 3);
    // The empty prefix takes the whole namespace.
    assert_eq!(store.invalidate_prefix("app", b"").unwrap().len(), 4);
    store.validate().unwrap();
}

#[test]
fn label_invalidation_reports_the_keys_it_removed() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&options(&dir)).unwrap();
    store.put_with("q", b"a", b"1", b"", &[b"t1"]).unwrap();
    store
        .put_with("q", b"b", b"2", b"", &[b"t1", b"t2"])
        .unwrap();
    store.put_with("q", b"c", b"3", b"", &[b"t2"]).unwrap();
    store.put_with("q", b"d", b"4", b"", &[b"t3"]).unwrap();
    let mut keys = store.invalidate_labels_keys("q", &[b"t1", b"t2"]).unwrap();
    keys.sort();
    let expected: Vec<Box<[u8]>> = vec![b"a"[..].into(), b"b"[..].into(), b"c"[..].into()];
    assert_eq!(keys, expected);
    assert!(store.get("q", b"d").unwrap().is_some());
}

#[test]
fn clear_empties_the_store_durably_and_namespaces_are_listed() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = Store::open(&options(&dir)).unwrap();
        for i in 0..50u32 {
            store
                .put_with(
                    if i % 2 == 0 { "a" } else { "b" },
                    &i.to_le_bytes(),
                    &vec![1; 20_000],
                    b"",
                    &[b"l"],
                )
                .unwrap();
        }
        store.invalidate_namespace("flushed").unwrap();
        assert_eq!(store.namespaces().unwrap(), ["a", "b", "flushed"]);
        assert_eq!(store.clear().unwrap(), 50);
        assert_eq!(store.stats().live_bytes, 0);
        assert_eq!(store.get("a", &0u32.to_le_bytes()).unwrap(), None);
        store.validate().unwrap();
        // The store takes writes again after a clear.
        store.put("c", b"k", b"v").unwrap();
    }
    let store = Store::open(&options(&dir)).unwrap();
    assert_eq!(store.get("a", &0u32.to_le_bytes()).unwrap(), None);
    assert_eq!(store.get("c", b"k").unwrap().as_deref(), Some(&b"v"[..]));
    assert_eq!(store.invalidate_labels("a", &[b"l"]).unwrap(), 0);
    assert_eq!(store.namespaces().unwrap(), ["c", "flushed"]);
    assert_eq!(store.generation("flushed"), 1);
    store.validate().unwrap();
}

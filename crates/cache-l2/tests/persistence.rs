//! Guards what the store keeps: values round-trip (raw and compressed), survive close and
//! reopen, stay within the byte budget by evicting the oldest records, and always match a
//! simple model (a value is the last one written for its key, or absent after eviction or delete).

use std::collections::HashMap;

use cache_l2::{CompressionOptions, L2Options, Store};
use proptest::prelude::*;

fn options(dir: &tempfile::TempDir) -> L2Options {
    L2Options::new(dir.path().join("l2.redb"))
}

#[test]
fn values_round_trip_and_survive_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let text = b"{\"query\":\"select * from t\",\"rows\":[1,2,3]} ".repeat(100);
    {
        let store = Store::open(&options(&dir)).unwrap();
        store.put("ns", b"small", b"tiny").unwrap();
        let outcome = store.put("ns", b"json", &text).unwrap();
        assert!(
            outcome.compressed,
            "repetitive JSON above min_bytes is compressed"
        );
        store
            .put("other", b"small", b"same key, other namespace")
            .unwrap();
        assert_eq!(
            store.get("ns", b"json").unwrap().as_deref(),
            Some(&text[..])
        );
        let stats = store.stats();
        assert_eq!((stats.insertions, stats.compressed_insertions), (3, 1));
        assert!(stats.bytes_saved > text.len() as u64 / 2);
        store.validate().unwrap();
    }
    let store = Store::open(&options(&dir)).unwrap();
    assert_eq!(
        store.get("ns", b"small").unwrap().as_deref(),
        Some(&b"tiny"[..])
    );
    assert_eq!(
        store.get("ns", b"json").unwrap().as_deref(),
        Some(&text[..])
    );
    assert_eq!(
        store.get("other", b"small").unwrap().as_deref(),
        Some(&b"same key, other namespace"[..])
    );
    assert_eq!(store.get("ns", b"absent").unwrap(), None);
    let stats = store.stats();
    assert_eq!((stats.hits, stats.misses), (3, 1));
    assert!(stats.live_bytes > 0 && stats.file_bytes > stats.live_bytes);
    store.validate().unwrap();
}

#[test]
fn compression_off_stores_raw() {
    let dir = tempfile::tempdir().unwrap();
    let mut opts = options(&dir);
    opts.compression = CompressionOptions {
        enabled: false,
        ..CompressionOptions::default()
    };
    let store = Store::open(&opts).unwrap();
    let text = vec![b'x'; 10_000];
    assert!(!store.put("ns", b"k", &text).unwrap().compressed);
    assert_eq!(store.get("ns", b"k").unwrap().as_deref(), Some(&text[..]));
}

#[test]
fn budget_evicts_oldest_first() {
    let dir = tempfile::tempdir().unwrap();
    let mut opts = options(&dir);
    opts.max_bytes = bytesize::ByteSize::kib(64);
    opts.compression.enabled = false;
    let store = Store::open(&opts).unwrap();
    let value = vec![7u8; 10_000]; // stored raw: 64 KiB holds six of them
    for i in 0u32..20 {
        store.put("ns", &i.to_le_bytes(), &value).unwrap();
        store.validate().unwrap();
        assert!(store.stats().live_bytes <= 64 << 10);
    }
    // The newest records are resident; the oldest were evicted in insertion order.
    let resident: Vec<bool> = (0u32..20)
        .map(|i| store.get("ns", &i.to_le_bytes()).unwrap().is_some())
        .collect();
    let first = resident.iter().position(|&r| r).unwrap();
    assert!(first > 0, "something was evicted");
    assert!(
        resident[first..].iter().all(|&r| r),
        "eviction is FIFO: {resident:?}"
    );
    assert_eq!(store.stats().evictions, first as u64);
    let too_big = vec![1u8; 70 << 10];
    assert!(matches!(
        store.put("ns", b"huge", &too_big),
        Err(cache_l2::L2Error::TooLarge { .. })
    ));
}

#[test]
fn bad_options_are_named() {
    let err = Store::open(&L2Options::default()).unwrap_err();
    assert!(err.to_string().contains("l2.path"), "{err}");
    let dir = tempfile::tempdir().unwrap();
    let mut opts = options(&dir);
    opts.compression.level = 99;
    let err = Store::open(&opts).unwrap_err();
    assert!(err.to_string().contains("l2.compression.level"), "{err}");
}

#[derive(Debug, Clone)]
enum Op {
    /// Put key `k` (namespace by parity), `n` bytes, labels from the bits of `l`.
    Put(u8, u16, u8),
    Get(u8),
    Delete(u8),
    InvalidateLabel(u8, u8),
    FlushNamespace(u8),
    Reopen,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        5 => (0u8..16, 1u16..12000, 0u8..8).prop_map(|(k, n, l)| Op::Put(k, n, l)),
        5 => (0u8..16).prop_map(Op::Get),
        1 => (0u8..16).prop_map(Op::Delete),
        1 => (0u8..2, 0u8..3).prop_map(|(ns, l)| Op::InvalidateLabel(ns, l)),
        1 => (0u8..2).prop_map(Op::FlushNamespace),
        1 => Just(Op::Reopen),
    ]
}

fn namespace(k: u8) -> &'static str {
    ["even", "odd"][usize::from(k % 2)]
}

fn labels(l: u8) -> Vec<Vec<u8>> {
    (0..3u8)
        .filter(|b| l & (1 << b) != 0)
        .map(|b| vec![b'L', b])
        .collect()
}

fn value(k: u8, n: u16) -> Vec<u8> {
    // Half compressible, half not, so both record shapes are exercised.
    (0..n)
        .map(|i| {
            let [lo, hi] = i.to_le_bytes();
            if k.is_multiple_of(2) {
                k
            } else {
                lo.wrapping_mul(k) ^ hi
            }
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    /// Against a model of the last write per key (value and labels): a get returns that value
    /// with its metadata and labels, or nothing (evicted); deletes, label invalidations and
    /// namespace flushes remove exactly what they name, across reopens; the bookkeeping
    /// validates after every step.
    #[test]
    fn store_matches_model(ops in prop::collection::vec(op(), 1..60)) {
        let dir = tempfile::tempdir().unwrap();
        let mut opts = options(&dir);
        opts.max_bytes = bytesize::ByteSize::kib(64);
        let mut store = Store::open(&opts).unwrap();
        let mut model: HashMap<u8, (Vec<u8>, Vec<Vec<u8>>)> = HashMap::new();
        for op in ops {
            match op {
                Op::Put(k, n, l) => {
                    let ls = labels(l);
                    let refs: Vec<&[u8]> = ls.iter().map(Vec::as_slice).collect();
                    store.put_with(namespace(k), &[k], &value(k, n), &[k, 0xEE], &refs).unwrap();
                    model.insert(k, (value(k, n), ls));
                }
                Op::Get(k) => {
                    if let Some(got) = store.get_entry(namespace(k), &[k]).unwrap() {
                        let want = model.get(&k);
                        prop_assert!(want.is_some(), "key {} came back", k);
                        let (v, ls) = want.unwrap();
                        prop_assert_eq!(&got.value[..], &v[..]);
                        prop_assert_eq!(&got.meta[..], &[k, 0xEE][..]);
                        let got_labels: Vec<Vec<u8>> =
                            got.labels.iter().map(|l| l.to_vec()).collect();
                        prop_assert_eq!(&got_labels, ls);
                    }
                }
                Op::Delete(k) => {
                    store.delete(namespace(k), &[k]).unwrap();
                    model.remove(&k);
                    prop_assert_eq!(store.get(namespace(k), &[k]).unwrap(), None);
                }
                Op::InvalidateLabel(ns, l) => {
                    let label = [b'L', l];
                    let removed = store.invalidate_labels(namespace(ns), &[&label]).unwrap();
                    let named: Vec<u8> = model
                        .iter()
                        .filter(|(k, (_, ls))| *k % 2 == ns && ls.iter().any(|x| x[..] == label))
                        .map(|(k, _)| *k)
                        .collect();
                    prop_assert!(removed <= named.len() as u64);
                    for k in named {
                        model.remove(&k);
                        prop_assert_eq!(store.get(namespace(k), &[k]).unwrap(), None);
                    }
                }
                Op::FlushNamespace(ns) => {
                    store.invalidate_namespace(namespace(ns)).unwrap();
                    model.retain(|k, _| k % 2 != ns);
                    for k in (ns..16).step_by(2) {
                        prop_assert_eq!(store.get(namespace(k), &[k]).unwrap(), None);
                    }
                }
                Op::Reopen => {
                    drop(store);
                    store = Store::open(&opts).unwrap();
                }
            }
            store.validate().unwrap();
            let s = store.stats();
            prop_assert!(s.footprint_bytes <= s.footprint_limit);
            prop_assert!(s.live_bytes <= 64 << 10);
        }
    }
}

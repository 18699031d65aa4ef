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
    Put(u8, u16),
    Get(u8),
    Delete(u8),
    Reopen,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        5 => (0u8..16, 1u16..6000).prop_map(|(k, n)| Op::Put(k, n)),
        5 => (0u8..16).prop_map(Op::Get),
        1 => (0u8..16).prop_map(Op::Delete),
        1 => Just(Op::Reopen),
    ]
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

    #[test]
    fn store_matches_model(ops in prop::collection::vec(op(), 1..60)) {
        let dir = tempfile::tempdir().unwrap();
        let mut opts = options(&dir);
        opts.max_bytes = bytesize::ByteSize::kib(64);
        let mut store = Store::open(&opts).unwrap();
        // Last value written per key; a get returns it or (after eviction) nothing.
        let mut model: HashMap<u8, Vec<u8>> = HashMap::new();
        for op in ops {
            match op {
                Op::Put(k, n) => {
                    store.put("ns", &[k], &value(k, n)).unwrap();
                    model.insert(k, value(k, n));
                }
                Op::Get(k) => {
                    if let Some(got) = store.get("ns", &[k]).unwrap() {
                        prop_assert_eq!(Some(&got[..]), model.get(&k).map(Vec::as_slice));
                    }
                }
                Op::Delete(k) => {
                    store.delete("ns", &[k]).unwrap();
                    model.remove(&k);
                    prop_assert_eq!(store.get("ns", &[k]).unwrap(), None);
                }
                Op::Reopen => {
                    drop(store);
                    store = Store::open(&opts).unwrap();
                }
            }
            store.validate().unwrap();
            prop_assert!(store.stats().live_bytes <= 64 << 10);
        }
    }
}

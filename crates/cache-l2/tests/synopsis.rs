//! The synopsis (a Bloom filter over the keys a store may hold): gets of keys never written,
//! or written before their namespace's flush, skip the file; it never hides a record (no false
//! negatives), also after a reopen and across rebuilds racing with puts. `validate` checks the
//! no-false-negative invariant for every record; the model test in `persistence.rs` runs it
//! after every step.

use cache_l2::{L2Options, Store, WriteMode};

fn options(dir: &tempfile::TempDir) -> L2Options {
    let mut o = L2Options::new(dir.path().join("l2.redb"));
    o.max_bytes = bytesize::ByteSize::mib(64);
    o
}

#[test]
fn gets_of_absent_keys_skip_the_file_and_present_keys_still_hit() {
    let dir = tempfile::tempdir().unwrap();
    let o = options(&dir);
    {
        let store = Store::open(&o).unwrap();
        for i in 0..500u32 {
            store.put("ns", &i.to_le_bytes(), b"v").unwrap();
        }
        let absent = 2000u64;
        for i in 10_000..10_000 + absent {
            assert_eq!(store.get("ns", &i.to_le_bytes()).unwrap(), None);
        }
        let s = store.stats();
        assert_eq!(s.negative_skips + s.synopsis_false_positives, absent);
        assert!(s.synopsis_false_positives < absent / 20, "{s:?}");
        assert!(!store.may_contain("other", b"k"));
        assert!(store.may_contain("ns", &7u32.to_le_bytes()));
    }
    // Rebuilt on open from the order table: every record still hits.
    let store = Store::open(&o).unwrap();
    for i in 0..500u32 {
        assert!(store.get("ns", &i.to_le_bytes()).unwrap().is_some(), "{i}");
    }
    assert_eq!(store.get("ns", &99_999u32.to_le_bytes()).unwrap(), None);
    let s = store.stats();
    assert_eq!(s.negative_skips + s.synopsis_false_positives, 1);
    store.validate().unwrap();
}

#[test]
fn keys_written_before_a_namespace_flush_are_skipped() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&options(&dir)).unwrap();
    for i in 0..100u32 {
        store.put("ns", &i.to_le_bytes(), b"v").unwrap();
    }
    store.invalidate_namespace("ns").unwrap();
    let before = store.stats().negative_skips;
    for i in 0..100u32 {
        assert_eq!(store.get("ns", &i.to_le_bytes()).unwrap(), None);
    }
    let skipped = store.stats().negative_skips - before;
    assert!(skipped >= 95, "only {skipped} of 100 skipped");
    // Written again in the new generation: found.
    store.put("ns", &1u32.to_le_bytes(), b"w").unwrap();
    assert_eq!(
        store.get("ns", &1u32.to_le_bytes()).unwrap().as_deref(),
        Some(&b"w"[..])
    );
    store.validate().unwrap();
}

/// More keys than the synopsis was sized for (4096 at least) make the writer rebuild it while
/// idle; every key put from two threads, before, during or after a rebuild, must stay
/// visible.
#[test]
fn rebuilds_after_saturation_lose_no_key_written_meanwhile() {
    let dir = tempfile::tempdir().unwrap();
    let mut o = options(&dir);
    o.write_mode = WriteMode::Async;
    let store = Store::open(&o).unwrap();
    std::thread::scope(|s| {
        for t in 0..2u32 {
            let store = &store;
            s.spawn(move || {
                for i in 0..6000u32 {
                    let k = [t.to_le_bytes(), i.to_le_bytes()].concat();
                    store.put("ns", &k, b"v").unwrap();
                    if i % 8 == 0 {
                        // Give the writer idle moments to rebuild in.
                        std::thread::yield_now();
                    }
                }
            });
        }
    });
    store.flush().unwrap();
    // Wait (bounded) for the idle writer to rebuild: background work, not a timing assertion.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while store.stats().synopsis_rebuilds == 0 && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    assert!(store.stats().synopsis_rebuilds >= 1);
    for t in 0..2u32 {
        for i in 0..6000u32 {
            let k = [t.to_le_bytes(), i.to_le_bytes()].concat();
            assert!(store.get("ns", &k).unwrap().is_some(), "key {t}/{i} hidden");
        }
    }
    store.validate().unwrap();
}

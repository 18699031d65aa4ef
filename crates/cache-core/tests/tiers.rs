//! Guards the two-tier contract: a put is readable from L1 and, once L1 has evicted it, from L2
//! (and is promoted back); an invalidation removes the key from both tiers, for good, across a
//! restart; an overwrite is never answered with the old bytes; L1 never holds more bytes than its
//! budget.

use cache_core::{Config, Error, KeyTooLong, L1_ENTRY_OVERHEAD, L2Options, TieredCache};

/// `l1` is the body of the `[l1]` TOML table; L2 is 64 MiB in `dir`.
fn config(dir: &tempfile::TempDir, l1: &str) -> Config {
    let mut config = Config::from_toml_str(&format!("[l1]\n{l1}")).unwrap();
    let mut l2 = L2Options::new(dir.path().join("l2.redb"));
    l2.max_bytes = bytesize::ByteSize::mib(64);
    config.l2 = Some(l2);
    config
}

fn key(i: u32) -> [u8; 4] {
    i.to_le_bytes()
}

#[test]
fn l1_evictions_are_served_from_l2_and_promoted() {
    let dir = tempfile::tempdir().unwrap();
    let cache = TieredCache::open(&config(&dir, "max_entries = 4\nshards = 1")).unwrap();
    for i in 0..10 {
        cache.put("ns", &key(i), format!("value {i}")).unwrap();
    }
    let stats = cache.stats();
    assert_eq!(stats.l1.len, 4);
    assert_eq!(stats.l1.evictions, 6);
    // Key 0 left L1 long ago; L2 has it.
    assert_eq!(
        cache.get("ns", &key(0)).unwrap().as_deref(),
        Some(&b"value 0"[..])
    );
    let stats = cache.stats();
    assert_eq!((stats.l1_hits, stats.l2_hits, stats.promotions), (0, 1, 1));
    // Promoted: the next get is an L1 hit.
    assert_eq!(
        cache.get("ns", &key(0)).unwrap().as_deref(),
        Some(&b"value 0"[..])
    );
    assert_eq!(cache.stats().l1_hits, 1);
    assert_eq!(cache.get("ns", &key(99)).unwrap(), None);
    let stats = cache.stats();
    assert_eq!(stats.misses, 1);
    assert_eq!(stats.gets(), 3);
    cache.validate().unwrap();
}

#[test]
fn invalidation_reaches_both_tiers_and_survives_restart() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(&dir, "max_entries = 2\nshards = 1");
    {
        let cache = TieredCache::open(&cfg).unwrap();
        for i in 0..5 {
            cache.put("ns", &key(i), "v").unwrap();
        }
        // Key 0 is in L2 only, key 4 in both.
        assert_eq!(cache.invalidate_key("ns", &key(0)).unwrap(), 1);
        assert_eq!(cache.invalidate_key("ns", &key(4)).unwrap(), 1);
        assert_eq!(cache.invalidate_key("ns", &key(77)).unwrap(), 0);
        assert_eq!(cache.get("ns", &key(0)).unwrap(), None);
        assert_eq!(cache.get("ns", &key(4)).unwrap(), None);
        assert_eq!(cache.stats().invalidations, 2);
        cache.validate().unwrap();
    }
    let cache = TieredCache::open(&cfg).unwrap();
    assert_eq!(cache.get("ns", &key(0)).unwrap(), None);
    assert_eq!(cache.get("ns", &key(4)).unwrap(), None);
    assert_eq!(
        cache.get("ns", &key(1)).unwrap().as_deref(),
        Some(&b"v"[..])
    );
    assert_eq!(cache.stats().l2_hits, 1);
}

#[test]
fn overwrites_are_never_answered_with_old_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(&dir, "max_entries = 2\nshards = 1");
    {
        let cache = TieredCache::open(&cfg).unwrap();
        cache.put("ns", &key(1), "old").unwrap();
        cache.put("ns", &key(1), "new").unwrap();
        assert_eq!(
            cache.get("ns", &key(1)).unwrap().as_deref(),
            Some(&b"new"[..])
        );
        // Push it out of L1 (SIEVE spares it one pass: it was just read); L2 must hold the
        // new value too.
        for i in 2..12 {
            cache.put("ns", &key(i), "x").unwrap();
        }
        assert_eq!(
            cache.get("ns", &key(1)).unwrap().as_deref(),
            Some(&b"new"[..])
        );
        assert_eq!(cache.stats().l2_hits, 1);
    }
    let cache = TieredCache::open(&cfg).unwrap();
    assert_eq!(
        cache.get("ns", &key(1)).unwrap().as_deref(),
        Some(&b"new"[..])
    );
}

#[test]
fn namespaces_are_separate() {
    let cache = TieredCache::open(&Config::default()).unwrap();
    cache.put("a", b"bc", "1").unwrap();
    cache.put("ab", b"c", "2").unwrap();
    assert_eq!(cache.get("a", b"bc").unwrap().as_deref(), Some(&b"1"[..]));
    assert_eq!(cache.get("ab", b"c").unwrap().as_deref(), Some(&b"2"[..]));
    cache.invalidate_key("a", b"bc").unwrap();
    assert_eq!(cache.get("ab", b"c").unwrap().as_deref(), Some(&b"2"[..]));
}

#[test]
fn l1_byte_budget_holds_and_big_values_live_in_l2_only() {
    let dir = tempfile::tempdir().unwrap();
    let budget = 256 << 10;
    let cache =
        TieredCache::open(&config(&dir, &format!("max_bytes = {budget}\nshards = 4"))).unwrap();
    let mut x = 0x1234_5678u32;
    for i in 0..2_000u32 {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        let len = (x % 20_000) as usize;
        cache.put("ns", &key(i), vec![7u8; len]).unwrap();
        if i % 100 == 0 {
            cache.get("ns", &key(i / 2)).unwrap();
        }
        let stats = cache.stats();
        assert!(
            stats.l1.weight <= budget,
            "L1 holds {} bytes",
            stats.l1.weight
        );
    }
    // A value bigger than a shard's quarter of the budget goes to L2 only.
    let big = vec![1u8; 100 << 10];
    cache.put("ns", b"big", big.clone()).unwrap();
    assert!(cache.stats().l1_rejections >= 1);
    assert_eq!(cache.get("ns", b"big").unwrap().as_deref(), Some(&big[..]));
    cache.validate().unwrap();
    // The weight charged is namespace + key + value + the fixed overhead.
    let one = TieredCache::open(&Config::default()).unwrap();
    one.put("ns", b"key", vec![0u8; 10]).unwrap();
    assert_eq!(one.stats().l1.weight, 2 + 3 + 10 + L1_ENTRY_OVERHEAD);
}

#[test]
fn oversized_keys_are_refused_with_a_typed_error() {
    let cache = TieredCache::open(&Config::default()).unwrap();
    let long_ns = "n".repeat(cache_core::MAX_NAMESPACE_LEN + 1);
    assert!(matches!(
        cache.put(&long_ns, b"k", "v"),
        Err(Error::KeyTooLong(KeyTooLong {
            what: "namespace",
            ..
        }))
    ));
    let long_key = vec![0u8; cache_core::MAX_KEY_LEN + 1];
    assert!(matches!(
        cache.get("ns", &long_key),
        Err(Error::KeyTooLong(KeyTooLong { what: "key", .. }))
    ));
    assert_eq!(cache.stats().insertions, 0);
}

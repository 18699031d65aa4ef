//! Guards the engine's features across both tiers and restarts: what a put stores comes back on
//! an L2 hit; CAS sees L2; tag invalidation reaches entries only L2 holds after a restart;
//! stale windows, idle timeouts and jitter follow the injected clock; file validators; clear;
//! the async pool's counters.

use std::sync::Arc;

use cache_core::{
    Admission, Cascade, Config, Error, L2Options, ManualClock, Policy, Presence, Put, Tier,
    TieredCache,
};

fn config(dir: &tempfile::TempDir, extra: &str) -> Config {
    let mut config =
        Config::from_toml_str(&format!("[l1]\nmax_entries = 4\nshards = 1\n{extra}")).unwrap();
    config.l2 = Some(L2Options::new(dir.path().join("l2.redb")));
    config
}

#[test]
fn an_l2_hit_after_a_restart_returns_everything_the_put_stored() {
    let dir = tempfile::tempdir().unwrap();
    let put = Put::new("rows")
        .metadata("content-type", "application/json")
        .metadata("encoding", "identity")
        .tag("table:users")
        .depends_on("schema:v3")
        .policy(Policy::new().version(9).ttl_ms(u64::MAX / 2));
    {
        let cache = TieredCache::open(&config(&dir, "")).unwrap();
        cache.put_with("q", b"k", put.clone()).unwrap();
    }
    let cache = TieredCache::open(&config(&dir, "")).unwrap();
    let hit = cache.get("q", b"k").unwrap().unwrap();
    assert_eq!(hit.tier, Tier::L2);
    assert_eq!(&hit.value[..], b"rows");
    assert_eq!(hit.content_metadata(), &put.content_metadata);
    assert_eq!(hit.info.tags, put.tags);
    assert_eq!(hit.info.dependencies, put.dependencies);
    assert_eq!(hit.version(), Some(9));
    // Promoted with its metadata: the L1 hit says the same.
    let again = cache.get("q", b"k").unwrap().unwrap();
    assert_eq!(again.tier, Tier::L1);
    assert_eq!(again.info, hit.info);
}

#[test]
fn cas_sees_a_version_only_l2_holds() {
    let dir = tempfile::tempdir().unwrap();
    {
        let cache = TieredCache::open(&config(&dir, "")).unwrap();
        cache
            .put_with("ns", b"k", Put::new("v5").policy(Policy::new().version(5)))
            .unwrap();
    }
    let cache = TieredCache::open(&config(&dir, "")).unwrap();
    let stale = cache.put_with("ns", b"k", Put::new("v4").policy(Policy::new().version(4)));
    assert!(matches!(
        stale,
        Err(Error::VersionMismatch {
            existing: 5,
            attempted: 4
        })
    ));
    assert_eq!(cache.stats().l2_metadata_reads, 1);
    assert_eq!(&cache.get("ns", b"k").unwrap().unwrap()[..], b"v5");
    cache
        .put_with("ns", b"k", Put::new("v6").policy(Policy::new().version(6)))
        .unwrap();
    assert_eq!(cache.stats().version_mismatches, 1);
}

#[test]
fn tag_and_dependency_invalidation_reach_entries_only_l2_holds_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    {
        let cache = TieredCache::open(&config(&dir, "")).unwrap();
        for i in 0..20u8 {
            let tag = if i % 2 == 0 { "even" } else { "odd" };
            cache
                .put_with(
                    "q",
                    &[i],
                    Put::new(vec![i; 100]).tag(tag).depends_on(vec![i % 5]),
                )
                .unwrap();
        }
        cache
            .put_with("other", &[0], Put::new("x").tag("even"))
            .unwrap();
    }
    let cache = TieredCache::open(&config(&dir, "")).unwrap();
    assert_eq!(
        cache.stats().l1.len,
        0,
        "L1 starts empty: everything is in L2 only"
    );
    assert_eq!(cache.invalidate_tags("q", &[b"even"]).unwrap(), 10);
    assert_eq!(
        cache
            .invalidate_dependencies("q", &[&[1]], Cascade::Direct)
            .unwrap(),
        2
    );
    for i in 0..20u8 {
        let gone = i % 2 == 0 || i % 5 == 1;
        assert_eq!(cache.get("q", &[i]).unwrap().is_none(), gone, "key {i}");
    }
    assert!(cache.get("other", &[0]).unwrap().is_some());
    drop(cache);
    let cache = TieredCache::open(&config(&dir, "")).unwrap();
    assert_eq!(
        cache.get("q", &[0]).unwrap(),
        None,
        "an invalidation came back after restart"
    );
    assert_eq!(cache.get("q", &[1]).unwrap(), None);
    assert!(cache.get("q", &[3]).unwrap().is_some());
}

#[test]
fn a_namespace_flush_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    {
        let cache = TieredCache::open(&config(&dir, "")).unwrap();
        cache.put("tenant", b"k", "old").unwrap();
        assert_eq!(cache.invalidate_namespace("tenant").unwrap(), 1);
        cache.put("tenant", b"k2", "new").unwrap();
    }
    let cache = TieredCache::open(&config(&dir, "")).unwrap();
    assert_eq!(cache.get("tenant", b"k").unwrap(), None);
    assert_eq!(&cache.get("tenant", b"k2").unwrap().unwrap()[..], b"new");
}

#[test]
fn stale_while_revalidate_serves_a_marked_stale_value_within_its_window_only() {
    let clock = Arc::new(ManualClock::new(10_000));
    let cache = TieredCache::open_with_clock(&Config::default(), clock.clone()).unwrap();
    let policy = Policy::new().ttl_ms(100).stale_while_revalidate_ms(50);
    cache
        .put_with("ns", b"k", Put::new("v").policy(policy))
        .unwrap();
    assert_eq!(cache.get("ns", b"k").unwrap().unwrap().stale, None);
    clock.advance(100);
    let hit = cache.get("ns", b"k").unwrap().unwrap();
    assert_eq!(
        hit.stale,
        Some(50),
        "expired: served stale with the whole window left"
    );
    clock.advance(49);
    assert_eq!(cache.get("ns", b"k").unwrap().unwrap().stale, Some(1));
    clock.advance(1);
    assert_eq!(cache.get("ns", b"k").unwrap(), None);
    let s = cache.stats();
    assert_eq!(s.stale_serves, 2);
    assert!(s.expirations >= 1);
}

#[test]
fn idle_timeouts_follow_reads_in_either_tier() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(10_000));
    let cache = TieredCache::open_with_clock(&config(&dir, ""), clock.clone()).unwrap();
    for admission in [Admission::Always, Admission::Never] {
        let key = format!("{admission:?}");
        let policy = Policy::new().idle_ttl_ms(100).l1_admission(admission);
        cache
            .put_with("ns", key.as_bytes(), Put::new("v").policy(policy))
            .unwrap();
        clock.advance(60);
        assert!(cache.get("ns", key.as_bytes()).unwrap().is_some(), "{key}");
        // 120 ms after the put, 60 after the last read: still there.
        clock.advance(60);
        assert!(cache.get("ns", key.as_bytes()).unwrap().is_some(), "{key}");
        clock.advance(100);
        assert!(cache.get("ns", key.as_bytes()).unwrap().is_none(), "{key}");
    }
    assert_eq!(cache.stats().idle_evictions, 2);
}

#[test]
fn jitter_is_deterministic_per_key_and_bounded() {
    let expiry = |key: &[u8]| {
        let clock = Arc::new(ManualClock::new(0));
        let cache = TieredCache::open_with_clock(&Config::default(), clock.clone()).unwrap();
        let policy = Policy::new().ttl_ms(10_000).jitter_ms(5_000);
        cache
            .put_with("ns", key, Put::new("v").policy(policy))
            .unwrap();
        cache
            .get("ns", key)
            .unwrap()
            .unwrap()
            .info
            .expires_at_ms
            .unwrap()
    };
    let mut seen = std::collections::HashSet::new();
    for i in 0..50u32 {
        let key = i.to_le_bytes();
        let at = expiry(&key);
        assert_eq!(at, expiry(&key), "the same key gets the same jitter");
        assert!((5_000..=10_000).contains(&at), "{at}");
        seen.insert(at);
    }
    assert!(
        seen.len() > 40,
        "jitter spreads expiries: {} distinct of 50",
        seen.len()
    );
    // Jitter never makes an entry expire at its put.
    let clock = Arc::new(ManualClock::new(0));
    let cache = TieredCache::open_with_clock(&Config::default(), clock).unwrap();
    let policy = Policy::new().ttl_ms(1).jitter_ms(u64::MAX);
    cache
        .put_with("ns", b"k", Put::new("v").policy(policy))
        .unwrap();
    assert!(cache.get("ns", b"k").unwrap().is_some());
}

#[test]
fn exists_answers_from_l1_and_the_synopsis_without_reading_records() {
    let dir = tempfile::tempdir().unwrap();
    let cache = TieredCache::open(&config(&dir, "")).unwrap();
    cache.put("ns", b"k", "v").unwrap();
    assert_eq!(cache.exists("ns", b"k").unwrap(), Presence::Present);
    for i in 0..8u8 {
        cache.put("ns", &[i], "filler").unwrap();
    }
    let before = cache.stats().l2.unwrap().hits;
    assert_eq!(cache.exists("ns", b"k").unwrap(), Presence::MaybePresent);
    assert_eq!(
        cache.exists("ns", b"never written").unwrap(),
        Presence::Absent
    );
    assert_eq!(
        cache.stats().l2.unwrap().hits,
        before,
        "exists read a record"
    );
}

#[test]
fn a_changed_input_file_invalidates_the_entry_and_its_dependents() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("lib.c");
    std::fs::write(&input, "v1").unwrap();
    let cache = TieredCache::open(&config(&dir, "")).unwrap();
    cache
        .put_with("build", b"lib.o", Put::new("obj").validate_file(&input))
        .unwrap();
    cache
        .put_with("build", b"app", Put::new("exe").depends_on("lib.o"))
        .unwrap();
    let hit = cache
        .get_revalidated("build", b"lib.o", Cascade::Transitive)
        .unwrap();
    assert!(hit.is_some(), "unchanged input: a hit");
    std::fs::write(&input, "v2").unwrap();
    assert!(
        cache
            .get_revalidated("build", b"lib.o", Cascade::Transitive)
            .unwrap()
            .is_none()
    );
    assert!(
        cache.get("build", b"app").unwrap().is_none(),
        "the dependent went too"
    );
    assert_eq!(cache.stats().validator_failures, 1);
    // A missing input file counts as changed; an unreadable one at put time is an error.
    let missing = dir.path().join("gone.c");
    let e = cache.put_with("build", b"x", Put::new("y").validate_file(&missing));
    assert!(matches!(e, Err(Error::Validator { .. })));
}

#[test]
fn clear_empties_both_tiers_for_good() {
    let dir = tempfile::tempdir().unwrap();
    {
        let cache = TieredCache::open(&config(&dir, "")).unwrap();
        for i in 0..10u8 {
            cache.put("ns", &[i], "v").unwrap();
        }
        cache.clear().unwrap();
        assert_eq!(cache.get("ns", &[0]).unwrap(), None);
        assert_eq!(cache.stats().l1.len, 0);
        cache.validate().unwrap();
    }
    let cache = TieredCache::open(&config(&dir, "")).unwrap();
    assert_eq!(cache.get("ns", &[9]).unwrap(), None);
}

#[test]
fn the_async_pool_promotes_l2_hits_and_counts_them() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(&dir, "[promotion]\nmode = \"async\"\nworkers = 2");
    cfg.l1.max_entries = Some(8);
    cfg.l1.policy = cache_core::L1Policy::Sieve;
    let cache = TieredCache::open(&cfg).unwrap();
    for i in 0..20u8 {
        cache.put("ns", &[i], vec![i; 10]).unwrap();
    }
    for i in 0..4u8 {
        assert_eq!(cache.get("ns", &[i]).unwrap().unwrap().tier, Tier::L2);
    }
    cache.shutdown();
    let s = cache.stats();
    assert_eq!(s.promotions_queued, 4);
    assert_eq!(s.promotions_completed, 4);
    assert_eq!(s.promotions, 4);
    assert_eq!(s.promotion_queue_depth, 0);
    for i in 0..4u8 {
        assert_eq!(
            cache.get("ns", &[i]).unwrap().unwrap().tier,
            Tier::L1,
            "key {i}"
        );
    }
    // After shutdown, promotion is inline.
    assert_eq!(cache.get("ns", &[10]).unwrap().unwrap().tier, Tier::L2);
    assert_eq!(cache.get("ns", &[10]).unwrap().unwrap().tier, Tier::L1);
}

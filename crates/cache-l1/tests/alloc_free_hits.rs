//! A hit allocates nothing: `get` and `peek` of resident keys, owned or borrowed, under either
//! policy, with and without an expiry timestamp, and with the per-thread counters already set up
//! by an earlier hit and miss on this thread. Counted by a global allocator that counts every
//! allocation (the `allocation-counter` crate), so a `Box`, a `Vec`, a `String` or a clone that
//! allocates anywhere on the path fails the test.

use std::sync::Arc;

use cache_l1::{EntryOptions, ManualClock, Options, Policy, S3FifoParams};

fn hits_allocate_nothing(policy: Policy) {
    let clock = Arc::new(ManualClock::new(0));
    let cache = Options::new(1_000)
        .shards(4)
        .policy(policy)
        .clock(clock)
        .build::<String, Arc<[u8]>, _>(cache_l1::UnitWeigher)
        .unwrap();
    let value: Arc<[u8]> = Arc::from(&b"value"[..]);
    let keys: Vec<String> = (0..100).map(|i| format!("key-{i}")).collect();
    for (i, k) in keys.iter().enumerate() {
        let opts = if i % 2 == 0 {
            EntryOptions::new().expires_at(1_000)
        } else {
            EntryOptions::new()
        };
        let _ = cache
            .insert_with(k.clone(), Arc::clone(&value), opts)
            .unwrap();
    }
    // The first hit and miss on this thread set up its counter slots (one allocation per
    // thread and counter).
    assert!(cache.get(keys[0].as_str()).is_some());
    assert!(cache.get("absent").is_none());
    let counted = allocation_counter::measure(|| {
        for _ in 0..10 {
            for k in &keys {
                // Borrowed `&str` lookups of `String` keys: no owned key is built.
                assert!(cache.get(k.as_str()).is_some());
                assert!(cache.peek(k.as_str()).is_some());
                assert!(cache.contains(k.as_str()));
            }
        }
        assert!(cache.get("absent").is_none());
    });
    assert_eq!(counted.count_total, 0, "hits allocated: {counted:?}");
    // The check can fail: a lookup that builds an owned key allocates.
    let counted = allocation_counter::measure(|| {
        assert!(cache.get(&keys[1].clone()).is_some());
    });
    assert!(counted.count_total > 0);
}

#[test]
fn hits_allocate_nothing_under_sieve() {
    hits_allocate_nothing(Policy::Sieve);
}

#[test]
fn hits_allocate_nothing_under_s3fifo() {
    hits_allocate_nothing(Policy::S3Fifo(S3FifoParams::default()));
}

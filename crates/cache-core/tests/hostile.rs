//! Hostile input gets a typed error or bounded work, and loses nothing acknowledged: oversized
//! values, metadata over its limits, too many namespaces (across a restart too), a tag on
//! 100,000 keys, extreme TTLs.

use std::sync::Arc;

use bytesize::ByteSize;
use cache_core::{Config, Error, L2Options, ManualClock, Policy, Put, TieredCache, WriteMode};

fn config(dir: &tempfile::TempDir, extra: &str) -> Config {
    let mut config = Config::from_toml_str(extra).unwrap();
    let mut l2 = L2Options::new(dir.path().join("l2.redb"));
    l2.max_bytes = ByteSize::mib(256);
    config.l2 = Some(l2);
    config
}

/// Puts `"kept"` under `k`, runs `bad`, and checks it failed as `is_expected` says and `k`
/// still reads `"kept"` (from L1 and, after L1 is cleared by pushing, from L2).
fn refused_without_loss(
    cache: &TieredCache,
    bad: Result<(), Error>,
    is_expected: fn(&Error) -> bool,
) {
    let err = bad.expect_err("hostile input was accepted");
    assert!(is_expected(&err), "unexpected error: {err:?}");
    assert_eq!(&cache.get("ns", b"k").unwrap().unwrap()[..], b"kept");
    cache.validate().unwrap();
}

#[test]
fn oversized_values_are_refused_and_the_old_value_stays() {
    let dir = tempfile::tempdir().unwrap();
    let cache = TieredCache::open(&config(&dir, "[limits]\nmax_blob_bytes = \"1MiB\"")).unwrap();
    cache.put("ns", b"k", "kept").unwrap();
    let big = vec![0u8; (1 << 20) + 1];
    refused_without_loss(
        &cache,
        cache.put("ns", b"k", big),
        |e| matches!(e, Error::BlobTooLarge { size, max } if *size == (1 << 20) + 1 && *max == 1 << 20),
    );
    let policy = Policy::new().max_blob_bytes(10);
    let put = Put::new("eleven char").policy(policy);
    refused_without_loss(&cache, cache.put_with("ns", b"k", put), |e| {
        matches!(e, Error::BlobTooLarge { max: 10, .. })
    });
    // Exactly at the limit is fine.
    cache.put("ns", b"at limit", vec![1u8; 1 << 20]).unwrap();
}

#[test]
fn metadata_over_its_limits_is_refused_and_the_old_value_stays() {
    let dir = tempfile::tempdir().unwrap();
    let cache = TieredCache::open(&config(
        &dir,
        "[limits]\nmax_metadata_keys = 4\nmax_metadata_bytes = \"1KiB\"\nmax_labels = 8",
    ))
    .unwrap();
    cache.put("ns", b"k", "kept").unwrap();
    let mut many = Put::new("x");
    for i in 0..5 {
        many = many.metadata(format!("k{i}"), "v");
    }
    refused_without_loss(&cache, cache.put_with("ns", b"k", many), |e| {
        matches!(
            e,
            Error::MetadataTooLarge {
                size: 5,
                max: 4,
                ..
            }
        )
    });
    let long = Put::new("x").metadata("k", "v".repeat(2000));
    refused_without_loss(&cache, cache.put_with("ns", b"k", long), |e| {
        matches!(e, Error::MetadataTooLarge { max: 1024, .. })
    });
    let mut tags = Put::new("x");
    for i in 0..9 {
        tags = tags.tag(format!("t{i}"));
    }
    refused_without_loss(&cache, cache.put_with("ns", b"k", tags), |e| {
        matches!(
            e,
            Error::MetadataTooLarge {
                size: 9,
                max: 8,
                ..
            }
        )
    });
    let long_tag = Put::new("x").tag(vec![b't'; 5000]);
    refused_without_loss(&cache, cache.put_with("ns", b"k", long_tag), |e| {
        matches!(e, Error::MetadataTooLarge { size: 5000, .. })
    });
    let long_dep =
        cache.invalidate_dependencies("ns", &[&[0u8; 5000]], cache_core::Cascade::Direct);
    assert!(matches!(long_dep, Err(Error::MetadataTooLarge { .. })));
    // A config past L2's section limit is refused at open, naming the field.
    let e = Config::from_toml_str("[limits]\nmax_metadata_bytes = \"1MiB\"").unwrap_err();
    assert!(e.to_string().contains("limits.max_metadata_bytes"), "{e}");
}

#[test]
fn too_many_namespaces_are_refused_across_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(&dir, "[limits]\nmax_namespaces = 3");
    {
        let cache = TieredCache::open(&cfg).unwrap();
        for ns in ["a", "b", "c"] {
            cache.put(ns, b"k", ns).unwrap();
        }
        let e = cache.put("d", b"k", "x").unwrap_err();
        assert!(matches!(e, Error::TooManyNamespaces { limit: 3 }), "{e:?}");
        // Known namespaces keep working.
        cache.put("a", b"k2", "y").unwrap();
        assert_eq!(cache.stats().namespaces, 3);
    }
    let cache = TieredCache::open(&cfg).unwrap();
    assert!(matches!(
        cache.put("d", b"k", "x"),
        Err(Error::TooManyNamespaces { .. })
    ));
    for ns in ["a", "b", "c"] {
        assert_eq!(&cache.get(ns, b"k").unwrap().unwrap()[..], ns.as_bytes());
    }
    // Reads of unknown namespaces are misses, and do not register them.
    assert_eq!(cache.get("zzz", b"k").unwrap(), None);
    assert_eq!(cache.stats().namespaces, 3);
}

#[test]
fn a_tag_on_100_000_keys_is_invalidated_in_one_call_and_spares_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(&dir, "[l1]\nmax_bytes = \"4MiB\"");
    // Fresh inserts return once queued, so writing 100,000 keys takes seconds, not minutes.
    cfg.l2.as_mut().unwrap().write_mode = WriteMode::Async;
    let cache = TieredCache::open(&cfg).unwrap();
    let n: u32 = 100_000;
    for i in 0..n {
        let put = Put::new(i.to_le_bytes().to_vec()).tag("hot");
        cache.put_with("ns", &i.to_le_bytes(), put).unwrap();
    }
    for i in 0..100u32 {
        cache
            .put_with(
                "ns",
                format!("other {i}").as_bytes(),
                Put::new("x").tag("cold"),
            )
            .unwrap();
    }
    cache.flush().unwrap();
    assert_eq!(
        cache.invalidate_tags("ns", &[b"hot"]).unwrap(),
        u64::from(n)
    );
    for i in (0..n).step_by(997) {
        assert_eq!(cache.get("ns", &i.to_le_bytes()).unwrap(), None, "key {i}");
    }
    for i in 0..100u32 {
        assert!(
            cache
                .get("ns", format!("other {i}").as_bytes())
                .unwrap()
                .is_some()
        );
    }
    assert_eq!(cache.stats().l2.unwrap().label_invalidations, u64::from(n));
}

#[test]
fn extreme_ttls_are_typed_errors_or_saturate() {
    let clock = Arc::new(ManualClock::new(5_000));
    let cache = TieredCache::open_with_clock(&Config::default(), clock.clone()).unwrap();
    cache.put("ns", b"k", "kept").unwrap();
    let zero = Put::new("x").policy(Policy::new().ttl_ms(0));
    refused_without_loss(&cache, cache.put_with("ns", b"k", zero), |e| {
        matches!(
            e,
            Error::InvalidPolicy {
                field: "ttl_ms",
                ..
            }
        )
    });
    let past = Put::new("x").policy(Policy::new().expires_at_unix_ms(5_000));
    refused_without_loss(&cache, cache.put_with("ns", b"k", past), |e| {
        matches!(
            e,
            Error::InvalidPolicy {
                field: "expires_at_unix_ms",
                ..
            }
        )
    });
    let idle0 = Put::new("x").policy(Policy::new().idle_ttl_ms(0));
    refused_without_loss(&cache, cache.put_with("ns", b"k", idle0), |e| {
        matches!(
            e,
            Error::InvalidPolicy {
                field: "idle_ttl_ms",
                ..
            }
        )
    });
    // Huge values saturate instead of overflowing.
    let forever = Policy::new()
        .ttl_ms(u64::MAX)
        .stale_while_revalidate_ms(u64::MAX)
        .idle_ttl_ms(u64::MAX)
        .jitter_ms(u64::MAX);
    cache
        .put_with("ns", b"max", Put::new("m").policy(forever))
        .unwrap();
    clock.set(u64::MAX - 1);
    assert!(cache.get("ns", b"max").unwrap().is_some());
    // An expiry of 1 ms with a huge stale window serves stale for as long as the clock runs.
    clock.set(10);
    let stale = Policy::new().ttl_ms(1).stale_while_revalidate_ms(u64::MAX);
    cache
        .put_with("ns", b"s", Put::new("s").policy(stale))
        .unwrap();
    clock.set(u64::MAX - 1);
    assert!(cache.get("ns", b"s").unwrap().unwrap().is_stale());
    cache.validate().unwrap();
}

/// A put that fails takes no namespace slot: four failed puts to new namespaces used to fill
/// `max_namespaces = 4` until a restart.
#[test]
fn failed_puts_register_no_namespace() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(&dir, "[limits]\nmax_namespaces = 4");
    // A value L2 cannot hold (its footprint is over the budget), under `max_blob_bytes`.
    cfg.l2.as_mut().unwrap().max_bytes = ByteSize::mib(1);
    let cache = TieredCache::open(&cfg).unwrap();
    let mut x = 0x9E37_79B9_7F4A_7C15u64;
    let noise: Vec<u8> = (0..2 << 20)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x.to_le_bytes()[0]
        })
        .collect();
    for ns in ["a", "b", "c", "d"] {
        let e = cache.put(ns, b"k", noise.clone()).unwrap_err();
        assert!(
            matches!(e, Error::L2(cache_core::L2Error::TooLarge { .. })),
            "{e:?}"
        );
        // Refused for its metadata too: before anything is written.
        let e = cache
            .put_with(ns, b"k", Put::new("v").metadata("x", "y".repeat(20_000)))
            .unwrap_err();
        assert!(matches!(e, Error::MetadataTooLarge { .. }), "{e:?}");
    }
    assert_eq!(cache.stats().namespaces, 0);
    for ns in ["e", "f", "g", "h"] {
        cache.put(ns, b"k", ns).unwrap();
    }
    assert_eq!(cache.stats().namespaces, 4);
    assert!(matches!(
        cache.put("i", b"k", "x"),
        Err(Error::TooManyNamespaces { limit: 4 })
    ));
}

/// Concurrent puts to new namespaces never take more slots than the cap, whichever fail.
#[test]
fn concurrent_puts_to_new_namespaces_respect_the_cap() {
    let cfg = Config::from_toml_str("[limits]\nmax_namespaces = 8").unwrap();
    let cache = TieredCache::open(&cfg).unwrap();
    std::thread::scope(|s| {
        for t in 0..4u32 {
            let cache = &cache;
            s.spawn(move || {
                for i in 0..50u32 {
                    let _ = cache.put(&format!("ns-{}", (t * 50 + i) % 20), b"k", "v");
                }
            });
        }
    });
    assert_eq!(cache.stats().namespaces, 8);
}

/// Without an L2, a value L1 cannot hold is an error that keeps the old value (L1 used to
/// drop the old value while refusing the new one, and the put returned `Ok`).
#[test]
fn an_l1_only_put_l1_cannot_hold_is_refused_and_keeps_the_old_value() {
    let cfg = Config::from_toml_str("[l1]\nmax_bytes = \"64KiB\"\nshards = 1").unwrap();
    let cache = TieredCache::open(&cfg).unwrap();
    cache.put("ns", b"k", "kept").unwrap();
    // The largest entry is a quarter of the budget: 16 KiB with its overhead.
    let e = cache.put("ns", b"k", vec![0u8; 17 << 10]).unwrap_err();
    assert!(
        matches!(e, Error::TooLargeForL1 { max, .. } if max == 16 << 10),
        "{e:?}"
    );
    assert_eq!(&cache.get("ns", b"k").unwrap().unwrap()[..], b"kept");
    assert_eq!(cache.stats().l1_rejections, 1);
    cache.validate().unwrap();
}

/// Tags and dependencies are checked against the limits L2 stores them under (each with its
/// kind prefix) before anything is written, with or without an L2: 64 tags of 1,023 bytes
/// passed core's checks and then failed in L2.
#[test]
fn labels_over_the_l2_section_are_refused_before_anything_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let tiered = TieredCache::open(&config(&dir, "")).unwrap();
    let l1_only = TieredCache::open(&Config::default()).unwrap();
    for cache in [&tiered, &l1_only] {
        cache.put("ns", b"k", "kept").unwrap();
        let mut put = Put::new("x");
        for i in 0..64u8 {
            let mut tag = vec![i; 1023];
            tag[0] = b't';
            put = put.tag(tag);
        }
        refused_without_loss(cache, cache.put_with("ns", b"k", put), |e| {
            matches!(
                e,
                Error::MetadataTooLarge {
                    what: "tags and dependencies (encoded)",
                    ..
                }
            )
        });
        assert!(matches!(
            cache.put_with(
                "new",
                b"k",
                Put::new("x").tag(vec![b'a'; 1023]).tag(vec![b'b'; 64])
            ),
            Ok(())
        ));
    }
}

/// `limits.max_blob_bytes` bounds what L2 decodes too: after it is lowered, a record written
/// under the old limit is a counted miss, refused before it is decompressed.
#[test]
fn l2_decodes_nothing_over_the_blob_limit() {
    let dir = tempfile::tempdir().unwrap();
    let big: Vec<u8> = b"compressible ".repeat(200_000);
    {
        let cache =
            TieredCache::open(&config(&dir, "[limits]\nmax_blob_bytes = \"4MiB\"")).unwrap();
        cache.put("ns", b"big", big.clone()).unwrap();
        cache.put("ns", b"small", "s").unwrap();
    }
    let cache = TieredCache::open(&config(&dir, "[limits]\nmax_blob_bytes = \"1MiB\"")).unwrap();
    assert_eq!(cache.get("ns", b"big").unwrap(), None);
    let l2 = cache.stats().l2.unwrap();
    assert_eq!((l2.corrupt_records, l2.oversized_records), (1, 1));
    assert_eq!(&cache.get("ns", b"small").unwrap().unwrap()[..], b"s");
}

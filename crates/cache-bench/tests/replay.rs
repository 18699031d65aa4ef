//! Guards the replay command end to end: per-tier counts add up, L2 serves what L1 evicted, L1
//! never holds more bytes than its budget (checked after every request), the JSON report has the
//! documented fields, and the binary's flags work as the README shows them.

mod common;

use cache_bench::adapter::{Target, TieredTarget, Values};
use cache_bench::trace::TraceReader;
use cache_bench::workload::ValueSpec;
use cache_bench::{CacheSpec, L1Budget, Peer, ReplaySpec, Source};
use cache_core::L1Policy;
use cache_core::{Config, L1Config, TieredCache};

fn adaptsize() -> std::path::PathBuf {
    common::traces_dir().join("sized/adaptsize.oracleGeneral.bin.zst")
}

#[test]
fn adaptsize_through_both_tiers_reports_consistent_figures() {
    if !common::traces_available("adaptsize_through_both_tiers_reports_consistent_figures") {
        return;
    }
    let spec = ReplaySpec {
        source: Source::Trace {
            path: adaptsize(),
            format: None,
        },
        cache: CacheSpec {
            l1: L1Budget::Bytes(8 << 20),
            shards: None,
            policy: L1Policy::default(),
            l2_max_bytes: Some(64 << 20),
            l2_dir: None,
            peers: vec![Peer::Moka],
            async_promotion: false,
            engine: cache_core::Config::default(),
        },
        values: ValueSpec::fixed(512),
        command: "test".into(),
    };
    let report = cache_bench::replay(&spec, |_| {}).unwrap();
    assert_eq!(report.requests, 66_987);
    assert_eq!(
        report.l1_hits + report.l2_hits + report.misses,
        report.requests
    );
    assert!(
        report.l1_hits > 0 && report.l2_hits > 0,
        "both tiers serve: {report:?}"
    );
    assert!(report.l1_within_budget && report.l1_max_in_use <= 8 << 20);
    let l2 = report.l2.as_ref().unwrap();
    assert!(l2.live_bytes <= 64 << 20);
    assert_eq!(l2.corrupt_records, 0);
    assert!(report.byte_miss_ratio > 0.0 && report.byte_miss_ratio < 1.0);

    let json = serde_json::to_value(&report).unwrap();
    for field in [
        "requests",
        "l1_hits",
        "l2_hits",
        "misses",
        "miss_ratio",
        "byte_miss_ratio",
        "throughput_rps",
    ] {
        assert!(json[field].is_number(), "missing {field}");
    }
    let moka = &json["peers"]["moka"];
    assert!(moka["miss_ratio"].as_f64().unwrap() > 0.0);
    assert!(moka["throughput_rps"].as_f64().unwrap() > 0.0);
    assert_eq!(moka["requests"].as_u64(), Some(66_987));
}

#[test]
fn every_peer_serves_every_request_and_lru_matches_the_reference() {
    if !common::traces_available("every_peer_serves_every_request_and_lru_matches_the_reference") {
        return;
    }
    let spec = ReplaySpec {
        source: Source::Trace {
            path: common::trace_path("multi1"),
            format: None,
        },
        cache: CacheSpec {
            l1: L1Budget::Entries(261),
            shards: None,
            policy: L1Policy::default(),
            l2_max_bytes: None,
            l2_dir: None,
            peers: vec![Peer::Moka, Peer::QuickCache, Peer::Lru],
            async_promotion: false,
            engine: cache_core::Config::default(),
        },
        values: ValueSpec::fixed(64),
        command: "test".into(),
    };
    let report = cache_bench::replay(&spec, |_| {}).unwrap();
    assert_eq!(report.requests, 15_858);
    let names: Vec<&str> = report.peers.keys().map(String::as_str).collect();
    assert_eq!(names, ["lru", "moka", "quick_cache"]);
    for (name, p) in &report.peers {
        assert_eq!(p.requests, report.requests, "{name}");
        assert_eq!(p.hits + p.misses, p.requests, "{name}");
        assert!(p.throughput_rps > 0.0, "{name}");
    }
    // An exact LRU of 261 entries is what the reference simulator's LRU row measures.
    let lru = common::reference_rows()
        .into_iter()
        .find(|r| r.trace == "multi1" && r.size == 261 && r.policy == "LRU")
        .unwrap();
    assert!((report.peers["lru"].miss_ratio - lru.miss_ratio).abs() <= 1e-4);

    // In byte mode the peers hold the same byte budget as our L1.
    let mut bytes = spec.clone();
    bytes.cache.l1 = L1Budget::Bytes(64 << 10);
    let report = cache_bench::replay(&bytes, |_| {}).unwrap();
    for (name, p) in &report.peers {
        assert_eq!(p.hits + p.misses, report.requests, "{name}");
        assert!(p.hits > 0, "{name}");
    }
}

#[test]
fn l1_bytes_never_exceed_the_budget_during_a_replay() {
    if !common::traces_available("l1_bytes_never_exceed_the_budget_during_a_replay") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let budget = 8 << 20;
    let config = Config {
        l1: L1Config {
            max_bytes: Some(bytesize::ByteSize(budget)),
            ..L1Config::default()
        },
        l2: Some(cache_core::L2Options {
            max_bytes: bytesize::ByteSize(64 << 20),
            ..cache_core::L2Options::new(dir.path().join("l2.redb"))
        }),
        ..Config::default()
    };
    let target = TieredTarget::new(TieredCache::open(&config).unwrap(), Values::new(1 << 20, 7));
    let mut max = 0;
    for request in TraceReader::open(&adaptsize(), None).unwrap() {
        let request = request.unwrap();
        target.serve(request.key, request.size.unwrap()).unwrap();
        let (used, capacity) = target.l1_usage().unwrap();
        assert_eq!(capacity, budget);
        assert!(used <= budget, "L1 holds {used} bytes, over its {budget}");
        max = max.max(used);
    }
    assert!(max > budget / 2, "the budget was actually used: max {max}");
    target.cache().validate().unwrap();
}

/// 50,000 Zipf(0.99) requests over 5,000 keys of 1 KiB, through a 1 MiB L1 and a 16 MiB L2
/// (which holds every key).
fn zipf_spec(seed: u64, peers: Vec<Peer>, async_promotion: bool) -> ReplaySpec {
    ReplaySpec {
        source: Source::Zipf {
            keys: 5_000,
            s: 0.99,
            requests: 50_000,
            seed,
        },
        cache: CacheSpec {
            l1: L1Budget::Bytes(1 << 20),
            shards: Some(2),
            policy: L1Policy::default(),
            l2_max_bytes: Some(16 << 20),
            l2_dir: None,
            peers,
            async_promotion,
            engine: cache_core::Config::default(),
        },
        values: ValueSpec::fixed(1024),
        command: "test".into(),
    }
}

#[test]
fn zipf_default_shape_runs_and_l2_helps() {
    let spec = zipf_spec(1, vec![Peer::Moka], false);
    let report = cache_bench::replay(&spec, |_| {}).unwrap();
    assert_eq!(report.requests, 50_000);
    // L2 holds every key (5,000 values of 1 KiB in 16 MiB), so exactly the first touch of each
    // distinct key misses. The seeded workload tells which keys those are.
    let distinct: std::collections::HashSet<u64> =
        cache_bench::workload::zipf(5_000, 0.99, 50_000, ValueSpec::fixed(1024), 1)
            .unwrap()
            .map(|r| r.key)
            .collect();
    assert_eq!(report.misses, distinct.len() as u64);
    assert!(report.l2_hits > 0, "the 1 MiB L1 cannot hold them all");
    assert!(
        report.peers["moka"].misses >= report.misses,
        "moka has no second tier"
    );
}

/// foyer gets our budgets (1 MiB of memory, 16 MiB of disk, which holds every key): its disk
/// serves what its memory evicted, every request is accounted for, and it reports disk bytes.
#[test]
fn foyer_serves_from_memory_and_disk_with_our_budgets() {
    let report = cache_bench::replay(&zipf_spec(5, vec![Peer::Foyer], false), |_| {}).unwrap();
    let f = &report.peers["foyer"];
    assert_eq!(f.l1_hits + f.l2_hits + f.misses, 50_000);
    assert!(f.l1_hits > 0 && f.l2_hits > 0, "{f:?}");
    // Misses are at least the first touches, which our L2 (holding every key) has exactly.
    assert!(f.misses >= report.misses, "{f:?}");
    let disk = f.disk.expect("foyer has a disk tier");
    assert!(disk.written_bytes > 0 && disk.read_bytes > 0, "{disk:?}");
}

/// A peer with a disk needs a disk budget: without L2, asking for foyer or our L2 alone is a
/// clear error.
#[test]
fn disk_peers_without_a_disk_budget_are_refused() {
    for peer in [Peer::Foyer, Peer::CacheL2] {
        let mut spec = zipf_spec(5, vec![peer], false);
        spec.cache.l2_max_bytes = None;
        let err = cache_bench::replay(&spec, |_| {}).unwrap_err();
        assert!(format!("{err:#}").contains("--l2"), "{peer:?}: {err:#}");
    }
}

/// Our tiers alone see the same requests as the tiered cache: with every key fitting in L2,
/// L2 alone misses exactly where the tiered cache does (first touches), and L1 alone, with
/// the tiered cache's L1 budget, policy and shards, hits as the tiered cache's L1 does give or
/// take the keys promotion reorders.
#[test]
fn our_tiers_alone_bracket_the_tiered_cache() {
    let report = cache_bench::replay(
        &zipf_spec(5, vec![Peer::CacheL1, Peer::CacheL2], false),
        |_| {},
    )
    .unwrap();
    let (l1, l2) = (&report.peers["cache-l1"], &report.peers["cache-l2"]);
    assert_eq!(l2.misses, report.misses, "{l2:?}");
    assert_eq!((l2.l1_hits, l2.l2_hits), (0, l2.hits));
    assert_eq!(l1.l2_hits, 0);
    assert!(l1.misses > report.misses, "L1 alone has no second tier");
    #[expect(clippy::cast_precision_loss, reason = "a ratio of counts")]
    let gap = (l1.l1_hits as f64 - report.l1_hits as f64).abs() / report.requests as f64;
    assert!(
        gap < 0.02,
        "L1 alone {l1:?} against tiered L1 {}",
        report.l1_hits
    );
    assert!(l2.disk.is_some_and(|d| d.written_bytes > 0));
}

#[test]
fn async_promotion_keeps_the_hit_ratio_and_reports_the_pool() {
    let spec = |async_promotion| zipf_spec(3, Vec::new(), async_promotion);
    let inline = cache_bench::replay(&spec(false), |_| {}).unwrap();
    let pooled = cache_bench::replay(&spec(true), |_| {}).unwrap();
    // L2 holds every key, so misses are exactly the first touches either way.
    assert_eq!(pooled.misses, inline.misses);
    let p = &pooled.promotion;
    assert_eq!(p.mode, "async");
    assert!(p.queued > 0);
    assert_eq!(
        p.completed, p.queued,
        "the pool was drained before the report"
    );
    assert!(p.installed <= p.completed);
    assert_eq!(inline.promotion.queued, 0);
    assert_eq!(inline.promotion.installed, inline.l2_hits);
    for r in [&inline, &pooled] {
        assert_eq!(r.latency_us.l2_hit.count, r.l2_hits);
        assert!(r.latency_us.l2_hit.p50 <= r.latency_us.l2_hit.p99);
    }
}

#[test]
fn the_binary_replays_a_trace_and_writes_json() {
    let dir = tempfile::tempdir().unwrap();
    let trace = dir.path().join("tiny.lis");
    std::fs::write(&trace, "0 50 0 1\n0 50 0 2\n25 50 0 3\n").unwrap();
    let json = dir.path().join("out.json");
    let output = common::cli()
        .args([
            "replay",
            trace.to_str().unwrap(),
            "--l1",
            "64KiB",
            "--l2",
            "1MiB",
        ])
        .args(["--shards", "1", "--json", json.to_str().unwrap()])
        .args(["--peers", "moka,quick_cache,lru,foyer,cache-l1,cache-l2"])
        .args(["--plot", dir.path().join("plots").to_str().unwrap()])
        .output()
        .unwrap();
    let stdout = common::succeeded(&output);
    assert!(
        stdout.contains("moka") && stdout.contains("L2 hit") && stdout.contains("foyer"),
        "{stdout}"
    );
    let report: serde_json::Value = common::read_json(&json);
    assert_eq!(report["requests"], 150);
    // 50 cold blocks, then 50 repeats, then 25 repeats and 25 new.
    assert_eq!(report["misses"], 75);
    assert_eq!(report["format"], "arc");
    let n = |v: &serde_json::Value| v.as_u64().unwrap();
    assert_eq!(
        n(&report["l1_hits"]) + n(&report["l2_hits"]) + n(&report["misses"]),
        150
    );
    assert!(
        n(&report["disk"]["written_bytes"]) > 0,
        "L2 wrote the misses"
    );
    assert!(n(&report["peak_rss_bytes"]) > 1 << 20);
    for peer in [
        "moka",
        "quick_cache",
        "lru",
        "foyer",
        "cache-l1",
        "cache-l2",
    ] {
        let p = &report["peers"][peer];
        assert_eq!(p["requests"], 150, "{peer}");
        assert_eq!(n(&p["l1_hits"]) + n(&p["l2_hits"]), n(&p["hits"]), "{peer}");
        assert_eq!(n(&p["hits"]) + n(&p["misses"]), 150, "{peer}");
        assert!(p["latency_us"]["p99"].is_number(), "{peer}");
        let on_disk = peer == "foyer" || peer == "cache-l2";
        assert_eq!(p["disk"].is_object(), on_disk, "{peer}");
        // Memory-only peers serve nothing from disk; our L2 alone serves every hit from disk.
        if !on_disk {
            assert_eq!(p["l2_hits"], 0, "{peer}");
        }
        if peer == "cache-l2" {
            assert!(n(&p["hits"]) > 0 && p["l1_hits"] == 0, "{peer}: {p}");
        }
        assert!(
            !report["latency_cdf_us"][peer]
                .as_array()
                .unwrap()
                .is_empty()
        );
    }
    assert!(
        !report["latency_cdf_us"]["tiered"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    for plot in ["replay-hit-ratio.svg", "replay-latency.svg"] {
        let svg = std::fs::read_to_string(dir.path().join("plots").join(plot)).unwrap();
        assert!(svg.contains("foyer") && svg.contains("tiered"), "{plot}");
    }
    for field in ["queued", "completed", "dropped"] {
        assert!(report["promotion"][field].is_u64(), "promotion.{field}");
    }
    for field in ["p50", "p99"] {
        assert!(
            report["latency_us"]["l2_hit"][field].is_number(),
            "latency_us.l2_hit.{field}"
        );
    }

    let bad = common::cli()
        .args([
            "replay",
            trace.to_str().unwrap(),
            "--l1",
            "64KiB",
            "--l1-entries",
            "5",
        ])
        .output()
        .unwrap();
    assert!(
        !bad.status.success(),
        "--l1 and --l1-entries exclude each other"
    );
}

#[test]
fn the_binary_benchmarks_an_engine_config_and_flags_override_it() {
    let dir = tempfile::tempdir().unwrap();
    let trace = dir.path().join("tiny.lis");
    std::fs::write(&trace, "0 50 0 1\n0 50 0 2\n25 50 0 3\n").unwrap();
    let live = dir.path().join("live/l2.redb");
    let config = dir.path().join("cache.toml");
    std::fs::write(
        &config,
        format!(
            "[l1]\nmax_entries = 40\nshards = 1\npolicy = \"sieve\"\n\
             [l2]\npath = {live:?}\nmax_bytes = \"1MiB\"\ncompression = {{ enabled = false }}\n\
             [promotion]\nmode = \"async\"\nworkers = 1\n"
        ),
    )
    .unwrap();
    let json = dir.path().join("out.json");
    let run = |extra: &[&str]| -> serde_json::Value {
        let output = common::cli()
            .args(["replay", trace.to_str().unwrap(), "--peers", "moka"])
            .args(["--config", config.to_str().unwrap()])
            .args(["--json", json.to_str().unwrap()])
            .args(extra)
            .output()
            .unwrap();
        common::succeeded(&output);
        common::read_json(&json)
    };

    let report = run(&[]);
    let setup = &report["setup"];
    assert_eq!(setup["l1_unit"], "entries");
    assert_eq!(setup["l1_capacity"], 40);
    assert_eq!(setup["l1_shards"], 1);
    assert_eq!(setup["l1_policy"], "sieve");
    assert_eq!(setup["l2_max_bytes"], 1 << 20);
    assert_eq!(report["promotion"]["mode"], "async");
    assert_eq!(setup["engine"]["promotion"]["workers"], 1);
    assert_eq!(setup["engine"]["l2"]["compression"]["enabled"], false);
    assert_eq!(report["l2"]["compressed_insertions"], 0);
    assert_ne!(setup["engine"]["l2"]["path"], live.to_str().unwrap());
    assert!(
        !live.exists(),
        "the bench must not touch the config's L2 file"
    );
    // Every entry fits: 50 cold misses, 50 hits, 25 hits and 25 misses.
    assert_eq!(report["misses"], 75);
    assert_eq!(report["peers"]["moka"]["requests"], 150);

    let report = run(&["--l1", "64KiB", "--policy", "s3-fifo", "--no-l2"]);
    let setup = &report["setup"];
    assert_eq!(setup["l1_unit"], "bytes");
    assert_eq!(setup["l1_capacity"], 64 << 10);
    assert_eq!(setup["l1_policy"], "s3-fifo");
    assert!(setup["l2_max_bytes"].is_null());
    assert!(report["l2"].is_null());

    // The example in the repo is a config the bench takes as it is.
    let example = concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/cache.toml");
    let output = common::cli()
        .args(["replay", trace.to_str().unwrap(), "--config", example])
        .args(["--json", json.to_str().unwrap()])
        .output()
        .unwrap();
    common::succeeded(&output);
    let report: serde_json::Value = common::read_json(&json);
    assert_eq!(report["setup"]["l1_capacity"], 256 << 20);
    assert_eq!(report["setup"]["l2_max_bytes"], 8_u64 << 30);

    std::fs::write(&config, "[l1]\nmax_byts = \"1MiB\"\n").unwrap();
    let bad = common::cli()
        .args(["replay", trace.to_str().unwrap()])
        .args(["--config", config.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(!bad.status.success());
    let stderr = String::from_utf8_lossy(&bad.stderr);
    assert!(stderr.contains("max_byts"), "{stderr}");
}

/// Value sizes and compressibility reach the caches: a size range is reported and makes bytes
/// and requests miss in different shares, values built to compress 2:1 are stored compressed
/// by L2 and random ones are not, sizes taken from a sized trace have its mean object size, and
/// an unsized trace is refused as a source of sizes.
#[test]
fn the_binary_draws_value_sizes_and_compressibility() {
    let dir = tempfile::tempdir().unwrap();
    let zipf = |ratio: &str| -> serde_json::Value {
        let json = dir.path().join(format!("zipf-{ratio}.json"));
        let output = common::cli()
            .args(["zipf", "--keys", "1000", "--requests", "10000"])
            .args(["--value-size", "2KiB..8KiB", "--compression-ratio", ratio])
            .args(["--l1", "256KiB", "--l2", "64MiB", "--peers", "moka"])
            .args(["--json", json.to_str().unwrap()])
            .output()
            .unwrap();
        common::succeeded(&output);
        common::read_json(&json)
    };
    let half = zipf("0.5");
    let values = &half["setup"]["values"];
    assert_eq!(values["sizes"], "2048..8192");
    assert_eq!(
        (&values["min_bytes"], &values["max_bytes"]),
        (&2048.into(), &8192.into())
    );
    assert!((values["mean_bytes"].as_f64().unwrap() - 5120.0).abs() < 1e-9);
    assert_eq!(values["compression_ratio"], 0.5);
    let l2 = &half["l2"];
    assert!(l2["insertions"].as_u64().unwrap() > 0);
    assert_eq!(
        l2["compressed_insertions"], l2["insertions"],
        "every value is over min_bytes and compresses 2:1: {l2}"
    );
    let miss = half["miss_ratio"].as_f64().unwrap();
    let byte_miss = half["byte_miss_ratio"].as_f64().unwrap();
    assert!((miss - byte_miss).abs() > 1e-6, "{miss} {byte_miss}");

    let random = zipf("1");
    assert!(random["l2"]["insertions"].as_u64().unwrap() > 0);
    assert_eq!(
        random["l2"]["compressed_insertions"], 0,
        "random bytes stay raw"
    );

    // An ARC trace with the AdaptSize trace's object sizes: 36,815 objects of 279 MB in all
    // (shared/traces/README.md).
    let trace = dir.path().join("tiny.lis");
    std::fs::write(&trace, "0 50 0 1\n0 25 0 2\n").unwrap();
    if common::traces_available("the_binary_draws_value_sizes_and_compressibility (trace: sizes)") {
        let json = dir.path().join("sized.json");
        let sizes = format!("trace:{}", adaptsize().display());
        let output = common::cli()
            .args(["replay", trace.to_str().unwrap(), "--value-size", &sizes])
            .args(["--no-l2", "--json", json.to_str().unwrap()])
            .output()
            .unwrap();
        common::succeeded(&output);
        let report: serde_json::Value = common::read_json(&json);
        let mean = report["setup"]["values"]["mean_bytes"].as_f64().unwrap();
        let expected = 279e6 / 36_815.0;
        assert!(
            (mean / expected - 1.0).abs() < 0.005,
            "{mean} vs {expected}"
        );
        // 50 first touches miss and 25 repeats hit: the sizes served differ by key, so the share
        // of bytes missed is not the share of requests (it would be with one size for all).
        assert_eq!(
            (&report["requests"], &report["misses"]),
            (&75.into(), &50.into())
        );
        let byte_miss = report["byte_miss_ratio"].as_f64().unwrap();
        assert!((byte_miss - 50.0 / 75.0).abs() > 1e-3, "{byte_miss}");
    }

    let unsized_trace = common::cli()
        .args(["zipf", "--requests", "10", "--no-l2", "--value-size"])
        .arg(format!("trace:{}", trace.display()))
        .output()
        .unwrap();
    assert!(!unsized_trace.status.success());
    let stderr = String::from_utf8_lossy(&unsized_trace.stderr);
    assert!(stderr.contains("records no sizes"), "{stderr}");
}

//! Guards "every knob has a valid range, and `open` allocates nothing proportional to an
//! unchecked number": each numeric field of `Config` is refused just outside its documented
//! range with a `ConfigError` naming it, and the engine opens at both ends of every range.
//! The values a hostile-config probe found accepted (and that then aborted or panicked in
//! `open`) are refused by name.

use cache_core::{Config, ConfigError, L2Options, PromotionMode, TieredCache};

/// A config from `toml`, with an L2 in `dir` if the text has an `[l2]` table.
fn parse(toml: &str, dir: &tempfile::TempDir) -> Result<Config, ConfigError> {
    let mut text = toml.to_owned();
    if text.contains("[l2]") {
        let path = dir.path().join("l2.redb");
        text = text.replace(
            "[l2]",
            &format!("[l2]\npath = {:?}", path.to_str().unwrap()),
        );
    }
    Config::from_toml_str(&text)
}

/// `(field, a TOML document setting it, valid?)`: the bounds of each range and the values
/// just outside them.
const CASES: &[(&str, &str, bool)] = &[
    ("l1.max_bytes", "[l1]\nmax_bytes = 1024", true),
    ("l1.max_bytes", "[l1]\nmax_bytes = 1023", false),
    ("l1.max_bytes", "[l1]\nmax_bytes = \"16TiB\"", true),
    ("l1.max_bytes", "[l1]\nmax_bytes = 17592186044417", false),
    ("l1.max_entries", "[l1]\nmax_entries = 1", true),
    ("l1.max_entries", "[l1]\nmax_entries = 0", false),
    ("l1.max_entries", "[l1]\nmax_entries = 1099511627776", true),
    ("l1.max_entries", "[l1]\nmax_entries = 1099511627777", false),
    ("l1.shards", "[l1]\nshards = 1", true),
    ("l1.shards", "[l1]\nshards = 0", false),
    (
        "l1.shards",
        "[l1]\nmax_bytes = \"1GiB\"\nshards = 65536",
        true,
    ),
    (
        "l1.shards",
        "[l1]\nmax_bytes = \"1GiB\"\nshards = 65537",
        false,
    ),
    ("l1.shards", "[l1]\nmax_entries = 8\nshards = 9", false),
    (
        "l1.max_entry_fraction",
        "[l1]\nmax_entry_fraction = 1.0",
        true,
    ),
    (
        "l1.max_entry_fraction",
        "[l1]\nmax_entry_fraction = 0.0",
        false,
    ),
    (
        "l1.auto_admit_max_bytes",
        "[l1]\nauto_admit_max_bytes = 0",
        true,
    ),
    (
        "l1.auto_admit_max_bytes",
        "[l1]\nauto_admit_max_bytes = \"1GiB\"",
        true,
    ),
    (
        "l1.auto_admit_max_bytes",
        "[l1]\nauto_admit_max_bytes = 1073741825",
        false,
    ),
    (
        "limits.max_namespaces",
        "[limits]\nmax_namespaces = 1",
        true,
    ),
    (
        "limits.max_namespaces",
        "[limits]\nmax_namespaces = 0",
        false,
    ),
    (
        "limits.max_namespaces",
        "[limits]\nmax_namespaces = 1048576",
        true,
    ),
    (
        "limits.max_namespaces",
        "[limits]\nmax_namespaces = 1048577",
        false,
    ),
    (
        "limits.max_blob_bytes",
        "[limits]\nmax_blob_bytes = 1",
        true,
    ),
    (
        "limits.max_blob_bytes",
        "[limits]\nmax_blob_bytes = 0",
        false,
    ),
    (
        "limits.max_blob_bytes",
        "[limits]\nmax_blob_bytes = \"1GiB\"",
        true,
    ),
    (
        "limits.max_blob_bytes",
        "[limits]\nmax_blob_bytes = 1073741825",
        false,
    ),
    (
        "limits.max_metadata_keys",
        "[limits]\nmax_metadata_keys = 0",
        true,
    ),
    (
        "limits.max_metadata_keys",
        "[limits]\nmax_metadata_keys = 65536",
        true,
    ),
    (
        "limits.max_metadata_keys",
        "[limits]\nmax_metadata_keys = 65537",
        false,
    ),
    (
        "limits.max_metadata_bytes",
        "[limits]\nmax_metadata_bytes = 256",
        true,
    ),
    (
        "limits.max_metadata_bytes",
        "[limits]\nmax_metadata_bytes = 255",
        false,
    ),
    (
        "limits.max_metadata_bytes",
        "[limits]\nmax_metadata_bytes = \"64KiB\"",
        true,
    ),
    (
        "limits.max_metadata_bytes",
        "[limits]\nmax_metadata_bytes = 65537",
        false,
    ),
    ("limits.max_labels", "[limits]\nmax_labels = 0", true),
    ("limits.max_labels", "[limits]\nmax_labels = 64", true),
    ("limits.max_labels", "[limits]\nmax_labels = 65", false),
    (
        "promotion.workers",
        "[promotion]\nmode = \"async\"\nworkers = 1",
        true,
    ),
    ("promotion.workers", "[promotion]\nworkers = 0", false),
    (
        "promotion.workers",
        "[promotion]\nmode = \"async\"\nworkers = 256",
        true,
    ),
    ("promotion.workers", "[promotion]\nworkers = 257", false),
    (
        "promotion.queue_capacity",
        "[promotion]\nmode = \"async\"\nqueue_capacity = 1",
        true,
    ),
    (
        "promotion.queue_capacity",
        "[promotion]\nqueue_capacity = 0",
        false,
    ),
    (
        "promotion.queue_capacity",
        "[promotion]\nmode = \"async\"\nqueue_capacity = 1048576",
        true,
    ),
    (
        "promotion.queue_capacity",
        "[promotion]\nqueue_capacity = 1048577",
        false,
    ),
    ("l2.max_bytes", "[l2]\nmax_bytes = \"64KiB\"", true),
    ("l2.max_bytes", "[l2]\nmax_bytes = 65535", false),
    ("l2.max_bytes", "[l2]\nmax_bytes = \"1PiB\"", true),
    ("l2.max_bytes", "[l2]\nmax_bytes = 1125899906842625", false),
    ("l2.max_value_bytes", "[l2]\nmax_value_bytes = 1", true),
    ("l2.max_value_bytes", "[l2]\nmax_value_bytes = 0", false),
    (
        "l2.max_value_bytes",
        "[l2]\nmax_value_bytes = 1073741825",
        false,
    ),
    ("l2.page_cache_bytes", "[l2]\npage_cache_bytes = 0", true),
    (
        "l2.page_cache_bytes",
        "[l2]\npage_cache_bytes = \"1TiB\"",
        true,
    ),
    (
        "l2.page_cache_bytes",
        "[l2]\npage_cache_bytes = 1099511627777",
        false,
    ),
    (
        "l2.synopsis_false_positive_rate",
        "[l2]\nsynopsis_false_positive_rate = 0.000001",
        true,
    ),
    (
        "l2.synopsis_false_positive_rate",
        "[l2]\nsynopsis_false_positive_rate = 0.0000009",
        false,
    ),
    (
        "l2.synopsis_false_positive_rate",
        "[l2]\nsynopsis_false_positive_rate = 0.5",
        true,
    ),
    (
        "l2.synopsis_false_positive_rate",
        "[l2]\nsynopsis_false_positive_rate = 0.51",
        false,
    ),
    (
        "l2.compression.level",
        "[l2]\ncompression = { level = 22 }",
        true,
    ),
    (
        "l2.compression.level",
        "[l2]\ncompression = { level = 23 }",
        false,
    ),
    (
        "l2.compression.min_bytes",
        "[l2]\ncompression = { min_bytes = 0 }",
        true,
    ),
    (
        "l2.compression.min_bytes",
        "[l2]\ncompression = { min_bytes = 1073741825 }",
        false,
    ),
    (
        "l2.compression.max_ratio",
        "[l2]\ncompression = { max_ratio = 1.0 }",
        true,
    ),
    (
        "l2.compression.max_ratio",
        "[l2]\ncompression = { max_ratio = 0.0 }",
        false,
    ),
    (
        "l2.group_commit.max_ops",
        "[l2]\ngroup_commit = { max_ops = 1 }",
        true,
    ),
    (
        "l2.group_commit.max_ops",
        "[l2]\ngroup_commit = { max_ops = 0 }",
        false,
    ),
    (
        "l2.group_commit.max_ops",
        "[l2]\ngroup_commit = { max_ops = 1048576 }",
        true,
    ),
    (
        "l2.group_commit.max_ops",
        "[l2]\ngroup_commit = { max_ops = 1048577 }",
        false,
    ),
    (
        "l2.group_commit.max_bytes",
        "[l2]\ngroup_commit = { max_bytes = 1 }",
        true,
    ),
    (
        "l2.group_commit.max_bytes",
        "[l2]\ngroup_commit = { max_bytes = 0 }",
        false,
    ),
    (
        "l2.group_commit.max_bytes",
        "[l2]\ngroup_commit = { max_bytes = \"4GiB\" }",
        true,
    ),
    (
        "l2.group_commit.max_bytes",
        "[l2]\ngroup_commit = { max_bytes = 4294967297 }",
        false,
    ),
    (
        "l2.group_commit.max_delay_ms",
        "[l2]\ngroup_commit = { max_delay_ms = 0 }",
        true,
    ),
    (
        "l2.group_commit.max_delay_ms",
        "[l2]\ngroup_commit = { max_delay_ms = 60000 }",
        true,
    ),
    (
        "l2.group_commit.max_delay_ms",
        "[l2]\ngroup_commit = { max_delay_ms = 60001 }",
        false,
    ),
    (
        "l2.group_commit.queue_capacity",
        "[l2]\ngroup_commit = { queue_capacity = 1 }",
        true,
    ),
    (
        "l2.group_commit.queue_capacity",
        "[l2]\ngroup_commit = { queue_capacity = 0 }",
        false,
    ),
    (
        "l2.group_commit.queue_capacity",
        "[l2]\ngroup_commit = { queue_capacity = 1048576 }",
        true,
    ),
    (
        "l2.group_commit.queue_capacity",
        "[l2]\ngroup_commit = { queue_capacity = 1048577 }",
        false,
    ),
    (
        "l2.group_commit.queue_max_bytes",
        "[l2]\ngroup_commit = { queue_max_bytes = 1 }",
        true,
    ),
    (
        "l2.group_commit.queue_max_bytes",
        "[l2]\ngroup_commit = { queue_max_bytes = 0 }",
        false,
    ),
    (
        "l2.group_commit.queue_max_bytes",
        "[l2]\ngroup_commit = { queue_max_bytes = \"4GiB\" }",
        true,
    ),
    (
        "l2.group_commit.queue_max_bytes",
        "[l2]\ngroup_commit = { queue_max_bytes = 4294967297 }",
        false,
    ),
];

#[test]
fn every_range_is_enforced_and_the_engine_opens_at_both_ends() {
    for &(field, toml, valid) in CASES {
        let dir = tempfile::tempdir().unwrap();
        match parse(toml, &dir) {
            Ok(config) => {
                assert!(valid, "{field}: {toml:?} was accepted");
                let cache = TieredCache::open(&config)
                    .unwrap_or_else(|e| panic!("{field}: {toml:?} did not open: {e}"));
                cache.put("ns", b"k", "v").unwrap();
                assert!(
                    cache.get("ns", b"k").unwrap().is_some(),
                    "{field}: {toml:?}"
                );
            }
            Err(e) => {
                assert!(!valid, "{field}: {toml:?} was refused: {e}");
                assert!(
                    e.to_string().contains(field),
                    "{toml:?} gave {e}, which does not name {field}"
                );
            }
        }
    }
}

/// What a hostile-config probe found accepted, each of which then aborted (a 61 TB or 38 GB
/// allocation) or panicked inside `TieredCache::open` or a commit.
#[test]
fn the_configs_that_crashed_open_are_refused_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        (
            "[promotion]\nmode = \"async\"\nqueue_capacity = 1099511627776",
            "promotion.queue_capacity",
        ),
        (
            "[l1]\nmax_bytes = \"1EiB\"\nshards = 100000000",
            "l1.max_bytes",
        ),
        (
            "[l1]\nmax_bytes = \"1GiB\"\nshards = 100000000",
            "l1.shards",
        ),
        (
            "[l1]\nmax_entries = 4611686018427387904\nshards = 2147483648",
            "l1.max_entries",
        ),
        (
            "[l1]\nmax_entries = 1000000\nshards = 2147483648",
            "l1.shards",
        ),
        (
            "[l2]\ngroup_commit = { queue_capacity = 9223372036854775807 }",
            "l2.group_commit.queue_capacity",
        ),
        ("[l2]\npage_cache_bytes = \"18EiB\"", "l2.page_cache_bytes"),
        (
            "[l2]\ngroup_commit = { max_delay_ms = 9223372036854775807 }",
            "l2.group_commit.max_delay_ms",
        ),
        (
            "[l1]\nauto_admit_max_bytes = 9223372036854775807",
            "l1.auto_admit_max_bytes",
        ),
    ];
    for (toml, field) in cases {
        let e = parse(toml, &dir).expect_err(toml);
        assert!(e.to_string().contains(field), "{toml:?} gave {e}");
    }
    // `usize::MAX` cannot be written in TOML; a config built in code is validated by `open`.
    let mut config = Config::default();
    config.promotion.mode = PromotionMode::Async;
    config.promotion.queue_capacity = usize::MAX;
    let e = TieredCache::open(&config).expect_err("usize::MAX slots");
    assert!(e.to_string().contains("promotion.queue_capacity"), "{e}");
    let mut config = Config::default();
    let mut l2 = L2Options::new(dir.path().join("x.redb"));
    l2.group_commit.max_ops = usize::MAX;
    config.l2 = Some(l2);
    let e = TieredCache::open(&config).expect_err("usize::MAX ops");
    assert!(e.to_string().contains("l2.group_commit.max_ops"), "{e}");
}

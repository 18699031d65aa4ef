//! Guards L2's crash semantics: after a crash, a get returns the last acknowledged value of its
//! key, or a miss; never a value that a later acknowledged put or delete replaced.
//!
//! Each scenario runs in a child process (this test binary re-executed with `--ignored --exact
//! crash_child`) that writes, logs every acknowledged operation, and then exits without running
//! destructors: no clean close, no final flush, so redb reopens from the last durable commit
//! exactly as after `kill -9`. The parent reopens the store and checks every key against the log.
//! (Killing with SIGKILL at arbitrary instants, mid-operation, is the next step: issue 4.)

use std::fs::OpenOptions;
use std::io::Write;
use std::path::Path;
use std::process::Command;

use cache_l2::{L2Options, Store};

const SCENARIO: &str = "CACHE_L2_CRASH_SCENARIO";
const DIR: &str = "CACHE_L2_CRASH_DIR";
const SEED: &str = "CACHE_L2_CRASH_SEED";

fn options(dir: &Path) -> L2Options {
    let mut o = L2Options::new(dir.join("l2.redb"));
    o.max_bytes = bytesize::ByteSize::kib(64);
    o.compression.enabled = false;
    o
}

/// A value that names its key and version in its first 12 bytes.
fn value(key: u8, version: u64, len: usize) -> Vec<u8> {
    let mut v = vec![key; len.max(12)];
    v[..8].copy_from_slice(&version.to_le_bytes());
    v[8] = key;
    v
}

fn version_of(v: &[u8]) -> u64 {
    u64::from_le_bytes(v[..8].try_into().unwrap())
}

fn run_child(scenario: &str, dir: &Path, seed: u64) {
    let status = Command::new(std::env::current_exe().unwrap())
        .args([
            "--ignored",
            "--exact",
            "crash_child",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(SCENARIO, scenario)
        .env(DIR, dir)
        .env(SEED, seed.to_string())
        .stdout(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(
        status.success(),
        "child {scenario} (seed {seed}) failed: {status}"
    );
}

/// The child half of every scenario below. Ignored: the scenarios run it in a subprocess.
#[test]
#[ignore = "run by the crash scenarios in a child process"]
fn crash_child() {
    let scenario = std::env::var(SCENARIO).expect("run by a crash scenario");
    let dir = std::path::PathBuf::from(std::env::var_os(DIR).unwrap());
    let seed: u64 = std::env::var(SEED).unwrap().parse().unwrap();
    let store = Store::open(&options(&dir)).unwrap();
    let mut log = OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("acks.log"))
        .unwrap();
    match scenario.as_str() {
        "overwrite-after-unsynced-eviction" | "delete-after-unsynced-eviction" => {
            // Fresh inserts ride non-durable commits (and every so often a durable one); keep
            // going until one that was not durable evicts K.
            let mut i = 0u32;
            loop {
                store.put("ns", b"K", &value(b'K', 1, 10_000)).unwrap();
                store.flush().unwrap();
                let mut last_durable = true;
                while store.get("ns", b"K").unwrap().is_some() {
                    let out = store
                        .put("filler", &i.to_le_bytes(), &[0u8; 1_000])
                        .unwrap();
                    last_durable = out.durable;
                    i += 1;
                }
                if !last_durable {
                    break;
                }
            }
            if scenario.starts_with("overwrite") {
                let out = store.put("ns", b"K", &value(b'K', 2, 10_000)).unwrap();
                assert!(
                    out.durable,
                    "a write of a key an undurable commit evicted must be durable"
                );
            } else {
                assert!(!store.delete("ns", b"K").unwrap(), "K was evicted first");
            }
        }
        "random-ops" => random_ops(&store, &mut log, seed),
        other => panic!("unknown scenario {other}"),
    }
    // Crash: no destructor runs, so the store is neither flushed nor closed.
    std::process::exit(0);
}

/// Small xorshift: the crate has no RNG dependency, and the sequence only needs to be seeded.
fn next(x: &mut u64) -> u64 {
    *x ^= *x << 13;
    *x ^= *x >> 7;
    *x ^= *x << 17;
    *x
}

/// Puts, overwrites and deletes over 16 keys in a 64 KiB store, logging each one after it is
/// acknowledged. Keys mostly come in a loop, jittered: with room for about ten values, most puts
/// are then fresh inserts that evict, so long runs of non-durable commits evict keys and write
/// them again (the pattern a crash is most likely to undo), between overwrites and deletes.
fn random_ops(store: &Store, log: &mut std::fs::File, seed: u64) {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let ops = 50 + next(&mut x) % 400;
    for version in 1..=ops {
        let key = ((version + next(&mut x) % 3) % 16) as u8;
        if next(&mut x).is_multiple_of(10) {
            store.delete("ns", &[key]).unwrap();
            writeln!(log, "del {key}").unwrap();
        } else {
            let len = 2_000 + (next(&mut x) % 8_000) as usize;
            store.put("ns", &[key], &value(key, version, len)).unwrap();
            writeln!(log, "put {key} {version}").unwrap();
        }
    }
}

/// What each key may hold after the crash: its last acknowledged version (`None`: deleted), or
/// nothing at all.
fn last_acknowledged(dir: &Path) -> std::collections::HashMap<u8, Option<u64>> {
    let log = std::fs::read_to_string(dir.join("acks.log")).unwrap_or_default();
    let mut last = std::collections::HashMap::new();
    for line in log.lines() {
        let f: Vec<&str> = line.split(' ').collect();
        let key: u8 = f[1].parse().unwrap();
        last.insert(key, f.get(2).map(|v| v.parse().unwrap()));
    }
    last
}

#[test]
fn an_overwrite_after_an_unsynced_eviction_survives_a_crash() {
    let dir = tempfile::tempdir().unwrap();
    run_child("overwrite-after-unsynced-eviction", dir.path(), 0);
    let store = Store::open(&options(dir.path())).unwrap();
    let got = store
        .get("ns", b"K")
        .unwrap()
        .expect("the overwrite was durable");
    assert_eq!(
        version_of(&got),
        2,
        "the crash brought back the replaced value"
    );
    store.validate().unwrap();
}

#[test]
fn a_delete_after_an_unsynced_eviction_survives_a_crash() {
    let dir = tempfile::tempdir().unwrap();
    run_child("delete-after-unsynced-eviction", dir.path(), 0);
    let store = Store::open(&options(dir.path())).unwrap();
    assert_eq!(
        store.get("ns", b"K").unwrap(),
        None,
        "a deleted key came back"
    );
    store.validate().unwrap();
}

#[test]
fn random_operations_then_a_crash_never_return_replaced_values() {
    for seed in 1..=25u64 {
        let dir = tempfile::tempdir().unwrap();
        run_child("random-ops", dir.path(), seed);
        let store = Store::open(&options(dir.path())).unwrap();
        store.validate().unwrap();
        for (key, last) in last_acknowledged(dir.path()) {
            if let Some(got) = store.get("ns", &[key]).unwrap() {
                assert_eq!(
                    got[8], key,
                    "seed {seed}: key {key} holds another key's bytes"
                );
                assert_eq!(
                    Some(version_of(&got)),
                    last,
                    "seed {seed}: key {key} holds a replaced or deleted value"
                );
            }
        }
    }
}

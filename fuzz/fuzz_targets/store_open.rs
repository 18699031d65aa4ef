//! `store_open`: a valid L2 store file (built once per process), damaged by the input (a list of
//! byte/page/length edits, `cache_fuzz::apply_damage`), then `Store::open` (an Err is fine) and,
//! if it opens, a `get` of every key it held: an Err or a miss is fine, a hit must be exactly
//! the value that was put. Then a put and get of a fresh key, and drop (which flushes).
//!
//! Panics the store contains (e.g. redb's on a corrupt page, caught inside the store) are not
//! crashes: the target replaces libfuzzer-sys's abort-on-every-panic hook on its first run
//! (`cache_fuzz::install_contained_panic_hook`); a panic escaping the API aborts with its
//! backtrace (`cache_fuzz::run_guarded`). Set FUZZ_ANY_PANIC_IS_CRASH=1 to keep the
//! abort-on-every-panic hook instead.
#![no_main]

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use bytesize::ByteSize;
use cache_l2::{L2Options, Store};
use libfuzzer_sys::fuzz_target;

/// The undamaged store: its file's bytes and every record put into it.
struct Base {
    file: Vec<u8>,
    records: Vec<(String, Vec<u8>, Vec<u8>)>,
    dir: PathBuf,
}

fn options(path: &Path) -> L2Options {
    let mut o = L2Options::new(path);
    o.max_bytes = ByteSize::mib(4);
    o.compression.min_bytes = 64;
    // Smaller than the default 64 MiB: each iteration opens a fresh store.
    o.page_cache_bytes = ByteSize::mib(8);
    o
}

fn build_base() -> Base {
    let dir = cache_fuzz::scratch_dir("store_open");
    let path = dir.join("base.redb");
    let mut records = Vec::new();
    {
        let store = Store::open(&options(&path)).expect("open a fresh store");
        for i in 0..300usize {
            let ns = format!("ns{}", i % 4);
            let key = format!("key-{i:04}").into_bytes();
            let len = if i % 3 == 0 {
                i % 61
            } else {
                3 << 10 | (i * 7919) % (37 << 10)
            };
            let value = cache_fuzz::payload(len, &key, i % 2 == 1);
            store.put(&ns, &key, &value).expect("put into the base store");
            records.push((ns, key, value));
        }
        store.flush().expect("flush the base store");
        let present = records
            .iter()
            .filter(|(ns, k, _)| matches!(store.get(ns, k), Ok(Some(_))))
            .count();
        let stats = store.stats();
        eprintln!(
            "store_open: base store holds {present} of {} records; {stats:?}",
            records.len()
        );
    }
    let file = std::fs::read(&path).expect("read the base store");
    std::fs::remove_file(&path).expect("remove the base store");
    eprintln!("store_open: base file is {} bytes", file.len());
    Base { file, records, dir }
}

fuzz_target!(|data: &[u8]| {
    static BASE: OnceLock<Base> = OnceLock::new();
    cache_fuzz::install_contained_panic_hook();
    let base = BASE.get_or_init(build_base);
    let mut file = base.file.clone();
    cache_fuzz::apply_damage(&mut file, data);
    let path = base.dir.join("fuzz.redb");
    let _ = std::fs::remove_file(&path);
    std::fs::write(&path, &file).expect("write the damaged file");
    cache_fuzz::run_guarded(|| {
        let Ok(store) = Store::open(&options(&path)) else {
            return;
        };
        for (ns, key, value) in &base.records {
            if let Ok(Some(got)) = store.get(ns, key) {
                assert!(
                    got[..] == value[..],
                    "get({ns}, {}) returned {} bytes that are not the value put ({} bytes)",
                    String::from_utf8_lossy(key),
                    got.len(),
                    value.len()
                );
            }
        }
        if store.put("fuzz", b"probe", b"probe value").is_ok()
            && let Ok(Some(got)) = store.get("fuzz", b"probe")
        {
            assert!(&got[..] == b"probe value", "a fresh put read back other bytes");
        }
        drop(store);
    });
    let _ = std::fs::remove_file(&path);
});

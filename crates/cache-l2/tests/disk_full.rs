//! Guards recovery from a real full file system: a store on a small tmpfs fills it, so its
//! commits fail with `ENOSPC`. While the disk is full, puts fail with a typed error and gets
//! return the last durable values (the store reopens its file to read it); once space is freed,
//! writes resume without a restart, and `lost_writes` counts exactly the acknowledged inserts
//! that the reopen rolled back (before, writes never resumed and sync mode counted nothing).
//!
//! Needs permission to mount a tmpfs (root, as on the CI machine); elsewhere it says so on
//! standard error and returns.

use std::io::Write as _;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use cache_l2::{L2Error, L2Options, Store};

/// A tmpfs of `size` mounted on `dir` for the test's life.
struct Tmpfs<'a>(&'a Path);

impl<'a> Tmpfs<'a> {
    fn mount(dir: &'a Path, size: &str) -> Option<Self> {
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir)
            .output()
            .is_ok_and(|o| o.status.success());
        ok.then_some(Self(dir))
    }
}

impl Drop for Tmpfs<'_> {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(self.0).status();
    }
}

fn value(k: u32) -> Vec<u8> {
    // Incompressible, so the file system fills at the rate of the puts.
    let mut x = u64::from(k).wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..48 << 10)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x.to_le_bytes()[1]
        })
        .collect()
}

fn eventually(what: &str, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < Duration::from_secs(30), "{what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn a_full_file_system_is_survived_and_writes_resume_once_space_is_freed() {
    let dir = tempfile::tempdir().unwrap();
    let Some(_fs) = Tmpfs::mount(dir.path(), "24m") else {
        let _ = writeln!(
            std::io::stderr(),
            "skipped a_full_file_system_is_survived_and_writes_resume_once_space_is_freed: \
             cannot mount a tmpfs here (needs root)"
        );
        return;
    };
    // Space the test frees later.
    let ballast = dir.path().join("ballast");
    std::fs::write(&ballast, vec![1u8; 6 << 20]).unwrap();
    let mut options = L2Options::new(dir.path().join("l2.redb"));
    options.max_bytes = bytesize::ByteSize::mib(256);
    options.compression.enabled = false;
    let store = Store::open(&options).unwrap();

    let mut acked: Vec<u32> = Vec::new();
    let mut durable = 0;
    let mut k = 0u32;
    let full = loop {
        match store.put("ns", &k.to_le_bytes(), &value(k)) {
            Ok(_) => {
                acked.push(k);
            }
            Err(e) => break e,
        }
        if k % 16 == 15 && store.flush().is_ok() {
            durable = k + 1;
        }
        k += 1;
        assert!(k < 10_000, "the file system never filled");
    };
    assert!(
        matches!(full, L2Error::WriteFailed { .. } | L2Error::Degraded { .. }),
        "{full:?}"
    );
    assert!(
        durable > 16,
        "{durable} durable puts before the disk filled"
    );
    assert!(store.stats().degraded);
    assert!(
        store.put("ns", b"more", b"x").is_err(),
        "writes fail while full"
    );

    // The store reopens its file while the disk is still full and serves its durable state.
    eventually("the store reopens its file", || store.stats().reopens >= 1);
    for k in 0..durable {
        let got = store.get("ns", &k.to_le_bytes()).unwrap();
        assert_eq!(got.as_deref(), Some(&value(k)[..]), "durable key {k}");
    }
    assert!(store.stats().degraded, "writes wait for space");

    std::fs::remove_file(&ballast).unwrap();
    eventually("writes resume once space is freed", || {
        store.put("ns", b"after", b"resumed").is_ok()
    });
    let stats = store.stats();
    assert!(!stats.degraded && stats.io_errors >= 1, "{stats:?}");
    let mut misses = 0;
    for &k in &acked {
        match store.get("ns", &k.to_le_bytes()).unwrap() {
            Some(got) => assert_eq!(got[..], value(k)[..], "key {k}"),
            None => misses += 1,
        }
    }
    println!(
        "acknowledged {}, {durable} made durable before the disk filled, {misses} lost; {stats:?}",
        acked.len()
    );
    assert_eq!(
        misses, stats.lost_writes,
        "lost_writes counts the acknowledged inserts that read as misses: {stats:?}"
    );
    store.flush().unwrap();
    drop(store);
    // And the file opens again cleanly, with what the store said it kept.
    let store = Store::open(&options).unwrap();
    assert_eq!(
        store.get("ns", b"after").unwrap().as_deref(),
        Some(&b"resumed"[..])
    );
    drop(store);
}

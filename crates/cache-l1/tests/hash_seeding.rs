//! Guards random-seeded hashing: keys pick their shard by hash, so two processes must not hash
//! alike even when the address-space layout is the same in both (ASLR off, as `setarch -R`
//! runs a program). With hashbrown's default builder (foldhash without `std`), whose only
//! randomness is the address-space layout, they did.

use std::hash::BuildHasher as _;
use std::process::Command;

use cache_l1::{Options, UnitWeigher};

const CHILD_ENV: &str = "CACHE_L1_HASH_CHILD";

/// In a child: prints the hash of a fixed key under a new cache's hasher.
#[test]
fn hash_child() {
    if std::env::var_os(CHILD_ENV).is_none() {
        return;
    }
    let cache = Options::new(1000)
        .build::<u64, u64, _>(UnitWeigher)
        .unwrap();
    println!("hash={}", cache.hasher().hash_one(42u64));
}

/// The child's hash, run with ASLR off; `None` if this machine cannot turn ASLR off.
fn hash_without_aslr() -> Option<String> {
    let arch = std::env::consts::ARCH;
    let out = Command::new("setarch")
        .args([arch, "-R"])
        .arg(std::env::current_exe().unwrap())
        .args(["--exact", "hash_child", "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, "1")
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let at = stdout.find("hash=")?;
    Some(
        stdout[at..]
            .split_whitespace()
            .next()
            .unwrap_or_default()
            .to_owned(),
    )
}

#[test]
fn two_processes_without_aslr_hash_differently() {
    if std::env::var_os(CHILD_ENV).is_some() {
        return;
    }
    let (Some(a), Some(b)) = (hash_without_aslr(), hash_without_aslr()) else {
        // setarch is util-linux's, on every Debian; a sandbox may forbid personality(2).
        eprintln!("skipped: `setarch -R` is not available here, so ASLR cannot be turned off");
        return;
    };
    assert_ne!(
        a, b,
        "two processes with the same address-space layout hashed alike"
    );
}

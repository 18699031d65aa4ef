//! Guards the per-key ordering of two-tier steps (the stripe locks of `TieredCache`): while one
//! call is paused between the tiers for a key, another call on the same key must not overtake it.
//!
//! Each test pauses thread A at a hook point (feature `test-hooks`) and starts thread B on the
//! same key. With the guard, B cannot finish while A is paused: the test gives it 200 ms (the
//! only wait, spent only when the guard holds), then resumes A. Without the guard B finishes in
//! that time and the final state shows the lost update, so each test fails if the guard is
//! removed.
//!
//! - put vs put: without the guard A's L1 insert lands after B's, leaving L1 and L2 disagreeing.
//! - promotion vs invalidation: without it A promotes the value B just invalidated.
//! - promotion vs newer put: without it A promotes the value B just replaced.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::Duration;

use cache_core::{Config, HookPoint, L2Options, TieredCache};

/// A cache with a 2-entry L1, so a key is pushed out of L1 by two other puts.
fn cache(dir: &tempfile::TempDir) -> Arc<TieredCache> {
    let mut config = Config::from_toml_str("[l1]\nmax_entries = 2\nshards = 1").unwrap();
    config.l2 = Some(L2Options::new(dir.path().join("l2.redb")));
    Arc::new(TieredCache::open(&config).unwrap())
}

/// Pushes `K` out of L1 (it stays in L2): eight fresh keys outlast any credit a few hits buy
/// `K` under either policy.
fn push_out_of_l1(cache: &TieredCache) {
    for i in 0..8 {
        cache
            .put("ns", format!("filler {i}").as_bytes(), "filler")
            .unwrap();
    }
}

/// Arms a hook that pauses the first thread reaching `point` for key `K` until `resume` fires;
/// returns a receiver that fires when it has paused, and the sender that resumes it.
fn pause_at(cache: &TieredCache, point: HookPoint) -> (mpsc::Receiver<()>, mpsc::SyncSender<()>) {
    let (paused_tx, paused_rx) = mpsc::sync_channel(1);
    let (resume_tx, resume_rx) = mpsc::sync_channel::<()>(1);
    let resume_rx = parking_lot::Mutex::new(resume_rx);
    let armed = AtomicBool::new(true);
    cache.set_test_hook(Some(Arc::new(move |p, _ns: &str, key: &[u8]| {
        if p == point && key == b"K" && armed.swap(false, Ordering::SeqCst) {
            paused_tx.send(()).unwrap();
            resume_rx.lock().recv().unwrap();
        }
    })));
    (paused_rx, resume_tx)
}

/// Runs `a` until it pauses, runs `b` concurrently (giving it 200 ms to overtake), resumes `a`,
/// and joins both.
fn interleave(
    paused: &mpsc::Receiver<()>,
    resume: &mpsc::SyncSender<()>,
    a: impl FnOnce() + Send,
    b: impl FnOnce() + Send,
) {
    std::thread::scope(|s| {
        let a = s.spawn(a);
        paused.recv().unwrap();
        let (done_tx, done_rx) = mpsc::channel();
        let b = s.spawn(move || {
            b();
            let _ = done_tx.send(());
        });
        let overtook = done_rx.recv_timeout(Duration::from_millis(200)).is_ok();
        resume.send(()).unwrap();
        a.join().unwrap();
        b.join().unwrap();
        eprintln!("B finished while A was paused: {overtook}");
    });
}

#[test]
fn two_puts_of_one_key_leave_both_tiers_agreeing() {
    let dir = tempfile::tempdir().unwrap();
    let cache = cache(&dir);
    let (paused, resume) = pause_at(&cache, HookPoint::AfterL2Write);
    interleave(
        &paused,
        &resume,
        || cache.put("ns", b"K", "from A").unwrap(),
        || cache.put("ns", b"K", "from B").unwrap(),
    );
    cache.set_test_hook(None);
    let in_l1 = cache.get("ns", b"K").unwrap().unwrap();
    push_out_of_l1(&cache);
    let in_l2 = cache.get("ns", b"K").unwrap().unwrap();
    assert_eq!(in_l2.tier, cache_core::Tier::L2);
    assert_eq!(
        in_l1.value, in_l2.value,
        "L1 and L2 disagree after two puts"
    );
}

/// Puts `K = "old"`, pushes it out of L1, then runs a get of `K` (which reads `"old"` from L2
/// and pauses before promoting it) against `b`; returns the cache for the verdict.
fn race_a_promotion_against(
    dir: &tempfile::TempDir,
    b: impl FnOnce(&TieredCache) + Send,
) -> Arc<TieredCache> {
    let cache = cache(dir);
    cache.put("ns", b"K", "old").unwrap();
    push_out_of_l1(&cache);
    let (paused, resume) = pause_at(&cache, HookPoint::AfterL2Read);
    interleave(
        &paused,
        &resume,
        || {
            cache.get("ns", b"K").unwrap();
        },
        || b(&cache),
    );
    cache.set_test_hook(None);
    cache
}

#[test]
fn promotion_cannot_resurrect_an_invalidated_value() {
    let dir = tempfile::tempdir().unwrap();
    let cache = race_a_promotion_against(&dir, |c| {
        c.invalidate_key("ns", b"K").unwrap();
    });
    assert_eq!(
        cache.get("ns", b"K").unwrap(),
        None,
        "an invalidated value came back"
    );
}

#[test]
fn promotion_cannot_install_a_value_older_than_a_newer_put() {
    let dir = tempfile::tempdir().unwrap();
    let cache = race_a_promotion_against(&dir, |c| c.put("ns", b"K", "new").unwrap());
    let got = cache.get("ns", b"K").unwrap().unwrap();
    assert_eq!(&got.value[..], b"new", "a promotion overwrote a newer put");
}

//! Deterministic interleaving tests of the engine's guards. Each test pauses one thread at a
//! hook point (feature `test-hooks`), runs the competing call to completion, resumes, and
//! checks the final state; no test depends on timing except where its doc says so. Each test's
//! doc names the guard it tests: with that guard removed, the test fails.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, mpsc};
use std::time::Duration;

use cache_core::{Config, Error, HookPoint, L2Options, Put, Tier, TieredCache};

/// A cache with a 2-entry L1 (so a key is pushed out of L1 by a few other puts) and an L2;
/// `promotion` is the body of the `[promotion]` table.
fn cache(dir: &tempfile::TempDir, promotion: &str) -> Arc<TieredCache> {
    let mut config = Config::from_toml_str(&format!(
        "[l1]\nmax_entries = 2\nshards = 1\n[promotion]\n{promotion}"
    ))
    .unwrap();
    config.l2 = Some(L2Options::new(dir.path().join("l2.redb")));
    Arc::new(TieredCache::open(&config).unwrap())
}

const ASYNC: &str = "mode = \"async\"\nworkers = 1";
const INLINE: &str = "mode = \"inline\"";

/// Pushes `K` out of L1 (it stays in L2).
fn push_out_of_l1(cache: &TieredCache) {
    for i in 0..8 {
        cache
            .put("ns", format!("filler {i}").as_bytes(), "filler")
            .unwrap();
    }
    assert!(cache.exists("ns", b"K").unwrap() != cache_core::Presence::Present);
}

/// Arms a hook that pauses the first thread (any thread: a caller or a promotion worker)
/// reaching `point` for key `K` until resumed; returns a receiver that fires once it has
/// paused, and the sender that resumes it.
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

/// Puts `K = "old"` (tagged `t`), pushes it out of L1, and gets it: the L2 hit's promotion
/// pauses just before its install (on the pool's worker, or in the getting thread when
/// inline). `b` runs to completion meanwhile; then the promotion resumes and, for the async
/// pool, is drained. Returns the cache for the verdict.
fn race_a_promotion_against(
    dir: &tempfile::TempDir,
    promotion: &str,
    b: impl FnOnce(&TieredCache) + Send,
) -> Arc<TieredCache> {
    let cache = cache(dir, promotion);
    cache
        .put_with("ns", b"K", Put::new("old").tag("t"))
        .unwrap();
    push_out_of_l1(&cache);
    let (paused, resume) = pause_at(&cache, HookPoint::BeforePromotionInstall);
    std::thread::scope(|s| {
        let reader = s.spawn(|| {
            let hit = cache.get("ns", b"K").unwrap().unwrap();
            assert_eq!((&hit.value[..], hit.tier), (&b"old"[..], Tier::L2));
        });
        paused.recv().unwrap();
        b(&cache);
        resume.send(()).unwrap();
        reader.join().unwrap();
    });
    cache.shutdown();
    cache.set_test_hook(None);
    cache
}

/// Guard: the key's stripe sequence, checked at install. An async promotion that read `K`
/// before `invalidate_key` must not install it afterwards.
#[test]
fn async_promotion_cannot_resurrect_an_invalidated_key() {
    let dir = tempfile::tempdir().unwrap();
    let cache = race_a_promotion_against(&dir, ASYNC, |c| {
        assert_eq!(c.invalidate_key("ns", b"K").unwrap(), 1);
    });
    assert_eq!(
        cache.get("ns", b"K").unwrap(),
        None,
        "an invalidated value came back"
    );
    assert_eq!(cache.stats().promotions_superseded, 1);
}

/// Guard: the bulk-invalidation epoch, checked at install (a tag invalidation does not touch
/// the key's stripe). An async promotion that read `K` before `invalidate_tags` must not
/// install it afterwards.
#[test]
fn async_promotion_cannot_resurrect_a_tag_invalidated_key() {
    let dir = tempfile::tempdir().unwrap();
    let cache = race_a_promotion_against(&dir, ASYNC, |c| {
        assert_eq!(c.invalidate_tags("ns", &[b"t"]).unwrap(), 1);
    });
    assert_eq!(
        cache.get("ns", b"K").unwrap(),
        None,
        "a tag-invalidated value came back"
    );
}

/// Guard: the key's stripe sequence. An async promotion of the old value must not overwrite
/// a newer put in L1.
#[test]
fn async_promotion_cannot_install_a_value_older_than_a_newer_put() {
    let dir = tempfile::tempdir().unwrap();
    let cache = race_a_promotion_against(&dir, ASYNC, |c| c.put("ns", b"K", "new").unwrap());
    let got = cache.get("ns", b"K").unwrap().unwrap();
    assert_eq!((&got.value[..], got.tier), (&b"new"[..], Tier::L1));
}

/// Guard: the stripe sequence, for inline promotion (which no longer holds the stripe while
/// it reads L2).
#[test]
fn inline_promotion_cannot_resurrect_an_invalidated_key() {
    let dir = tempfile::tempdir().unwrap();
    let cache = race_a_promotion_against(&dir, INLINE, |c| {
        assert_eq!(c.invalidate_key("ns", b"K").unwrap(), 1);
    });
    assert_eq!(cache.get("ns", b"K").unwrap(), None);
}

/// Guard: the bulk-invalidation epoch, for inline promotion.
#[test]
fn inline_promotion_cannot_resurrect_a_prefix_invalidated_key() {
    let dir = tempfile::tempdir().unwrap();
    let cache = race_a_promotion_against(&dir, INLINE, |c| {
        assert_eq!(c.invalidate_prefix("ns", b"K").unwrap(), 1);
    });
    assert_eq!(cache.get("ns", b"K").unwrap(), None);
}

/// Guard: the stripe lock around a put's two tiers. Thread A pauses between its L2 write and
/// its L1 insert; B puts the same key. With the guard B waits for A, so both tiers end with
/// B's value; without it A's L1 insert lands after B's and L1 and L2 disagree. (B is given
/// 200 ms to overtake, a wait spent only while the guard holds.)
#[test]
fn two_puts_of_one_key_leave_both_tiers_agreeing() {
    let dir = tempfile::tempdir().unwrap();
    let cache = cache(&dir, INLINE);
    let (paused, resume) = pause_at(&cache, HookPoint::AfterL2Write);
    std::thread::scope(|s| {
        let a = s.spawn(|| cache.put("ns", b"K", "from A").unwrap());
        paused.recv().unwrap();
        let (done_tx, done_rx) = mpsc::channel();
        let cache = &cache;
        let b = s.spawn(move || {
            cache.put("ns", b"K", "from B").unwrap();
            let _ = done_tx.send(());
        });
        let _ = done_rx.recv_timeout(Duration::from_millis(200));
        resume.send(()).unwrap();
        a.join().unwrap();
        b.join().unwrap();
    });
    cache.set_test_hook(None);
    let in_l1 = cache.get("ns", b"K").unwrap().unwrap();
    push_out_of_l1(&cache);
    let in_l2 = cache.get("ns", b"K").unwrap().unwrap();
    assert_eq!(in_l2.tier, Tier::L2);
    assert_eq!(
        in_l1.value, in_l2.value,
        "L1 and L2 disagree after two puts"
    );
}

/// Guard: the namespace generation each L1 entry carries. A put pauses between its L2 write
/// and its L1 insert while the namespace is flushed; its L1 entry, inserted after the flush
/// with the old generation, must not be served (nor its L2 record, killed by the durable
/// generation bump).
#[test]
fn a_namespace_flush_during_a_put_is_not_undone_by_the_put() {
    let dir = tempfile::tempdir().unwrap();
    let cache = cache(&dir, INLINE);
    cache.put("ns", b"before", "x").unwrap();
    let (paused, resume) = pause_at(&cache, HookPoint::AfterL2Write);
    std::thread::scope(|s| {
        let put = s.spawn(|| cache.put("ns", b"K", "during").unwrap());
        paused.recv().unwrap();
        cache.invalidate_namespace("ns").unwrap();
        resume.send(()).unwrap();
        put.join().unwrap();
    });
    cache.set_test_hook(None);
    assert_eq!(
        cache.get("ns", b"K").unwrap(),
        None,
        "a flushed put is served"
    );
    assert_eq!(cache.get("ns", b"before").unwrap(), None);
    cache.put("ns", b"after", "y").unwrap();
    assert_eq!(
        cache.get("ns", b"after").unwrap().as_deref(),
        Some(&b"y"[..])
    );
    cache.validate().unwrap();
}

/// What one `get_or_load` caller got: the value, or the error's text.
type CallerResult = Result<Vec<u8>, String>;

/// Runs `get_or_load` for `K` on `callers` threads with `loader`; the loader waits (up to 10 s,
/// spent only if the guard is broken) until every other caller has joined the load, so all are
/// concurrent misses. Returns each caller's result and how many times the loader ran.
fn load_concurrently(
    callers: usize,
    loader: impl Fn() -> Result<Put, std::io::Error> + Sync,
) -> (Vec<CallerResult>, usize, Arc<TieredCache>) {
    let dir = tempfile::tempdir().unwrap();
    let cache = cache(&dir, INLINE);
    let joined = Arc::new((parking_lot::Mutex::new(0usize), parking_lot::Condvar::new()));
    {
        let joined = Arc::clone(&joined);
        cache.set_test_hook(Some(Arc::new(move |p, _: &str, _: &[u8]| {
            if p == HookPoint::JoinedLoad {
                *joined.0.lock() += 1;
                joined.1.notify_all();
            }
        })));
    }
    let runs = AtomicUsize::new(0);
    let results = std::thread::scope(|s| {
        let handles: Vec<_> = (0..callers)
            .map(|_| {
                s.spawn(|| {
                    cache
                        .get_or_load("ns", b"K", || {
                            runs.fetch_add(1, Ordering::SeqCst);
                            let mut n = joined.0.lock();
                            let deadline = std::time::Instant::now() + Duration::from_secs(10);
                            while *n < callers - 1 {
                                if joined.1.wait_until(&mut n, deadline).timed_out() {
                                    break;
                                }
                            }
                            drop(n);
                            loader()
                        })
                        .map(|hit| hit.value.to_vec())
                        .map_err(|e| e.to_string())
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    cache.set_test_hook(None);
    (results, runs.load(Ordering::SeqCst), cache)
}

/// Guard: the single-flight map. Eight concurrent misses run the loader once and all get its
/// value; the value is cached.
#[test]
fn get_or_load_runs_the_loader_once_for_concurrent_misses() {
    let (results, runs, cache) = load_concurrently(8, || Ok(Put::new("loaded")));
    assert_eq!(runs, 1, "the loader ran {runs} times");
    for r in results {
        assert_eq!(r.unwrap(), b"loaded");
    }
    let stats = cache.stats();
    assert_eq!((stats.loads, stats.load_waits), (1, 7));
    assert_eq!(cache.get("ns", b"K").unwrap().unwrap().tier, Tier::L1);
}

/// Guard: the single-flight map shares failures too. The loader's error reaches every caller
/// and nothing is cached; the next call runs the loader again.
#[test]
fn a_loader_error_reaches_every_waiter_and_caches_nothing() {
    let (results, runs, cache) =
        load_concurrently(4, || Err(std::io::Error::other("backend down")));
    assert_eq!(runs, 1);
    for r in results {
        assert!(r.unwrap_err().contains("backend down"));
    }
    assert_eq!(cache.get("ns", b"K").unwrap(), None);
    assert_eq!(cache.stats().load_failures, 1);
    let hit = cache
        .get_or_load("ns", b"K", || {
            Ok::<_, std::io::Error>(Put::new("second try"))
        })
        .unwrap();
    assert_eq!(&hit.value[..], b"second try");
    let e = cache.get_or_load("ns", b"P", || -> Result<Put, std::io::Error> {
        Err(std::io::Error::other("x"))
    });
    assert!(matches!(e, Err(Error::Load(_))));
}

//! Guards group commit: queued writes share commits, reads see them before they commit, and
//! the write modes acknowledge what they promise.

use std::sync::Arc;

use cache_l2::{L2Options, Store, WriteMode};

/// A store whose writer only cuts a batch when it is full, when a caller waits, or after a
/// minute: batching is then decided by the test, not by timing.
fn options(dir: &tempfile::TempDir, mode: WriteMode, max_ops: usize) -> L2Options {
    let mut o = L2Options::new(dir.path().join("l2.redb"));
    o.compression.enabled = false;
    o.write_mode = mode;
    o.group_commit.max_ops = max_ops;
    o.group_commit.max_delay_ms = 60_000;
    o
}

#[test]
fn async_puts_share_commits_and_are_readable_before_them() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&options(&dir, WriteMode::Async, 10)).unwrap();
    for i in 0..95u32 {
        let out = store.put("ns", &i.to_le_bytes(), &i.to_be_bytes()).unwrap();
        assert!(!out.committed, "a fresh async insert returns once queued");
        // Visible at once, whether or not its batch has committed.
        assert_eq!(
            store.get("ns", &i.to_le_bytes()).unwrap().as_deref(),
            Some(&i.to_be_bytes()[..])
        );
    }
    store.flush().unwrap();
    let s = store.stats();
    assert_eq!(s.insertions, 95);
    // 9 full batches of 10, then the last 5 with the flush: 10 commits for 96 requests.
    assert_eq!(s.commits, 10, "{s:?}");
    assert_eq!(s.batched_writes, 96);
    assert_eq!(s.queued_writes, 0);
    store.validate().unwrap();
    drop(store);
    let store = Store::open(&options(&dir, WriteMode::Async, 10)).unwrap();
    for i in 0..95u32 {
        assert_eq!(
            store.get("ns", &i.to_le_bytes()).unwrap().as_deref(),
            Some(&i.to_be_bytes()[..])
        );
    }
}

#[test]
fn an_async_overwrite_waits_for_a_durable_commit() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&options(&dir, WriteMode::Async, 1000)).unwrap();
    let first = store.put("ns", b"k", b"one").unwrap();
    assert!(!first.committed);
    // Queued, not committed: replacing it must wait too.
    let second = store.put("ns", b"k", b"two").unwrap();
    assert!(second.committed && second.durable, "{second:?}");
    // Committed now: replacing it waits for a durable commit.
    let third = store.put("ns", b"k", b"three").unwrap();
    assert!(third.committed && third.durable, "{third:?}");
    assert_eq!(
        store.get("ns", b"k").unwrap().as_deref(),
        Some(&b"three"[..])
    );
    let fresh = store.put("ns", b"other", b"x").unwrap();
    assert!(!fresh.committed);
    store.validate().unwrap();
}

#[test]
fn sync_puts_return_committed_and_overwrites_durable() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&options(&dir, WriteMode::Sync, 1000)).unwrap();
    let fresh = store.put("ns", b"k", b"one").unwrap();
    assert!(fresh.committed);
    let over = store.put("ns", b"k", b"two").unwrap();
    assert!(over.committed && over.durable, "{over:?}");
}

#[test]
fn a_delete_of_a_queued_put_removes_it() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&options(&dir, WriteMode::Async, 1000)).unwrap();
    store.put("ns", b"k", b"v").unwrap();
    assert!(store.delete("ns", b"k").unwrap(), "the queued put counts");
    assert_eq!(store.get("ns", b"k").unwrap(), None);
    assert!(!store.delete("ns", b"k").unwrap());
    store.validate().unwrap();
    assert_eq!(store.get("ns", b"k").unwrap(), None);
}

#[test]
fn a_full_queue_blocks_writers_until_the_writer_catches_up() {
    let dir = tempfile::tempdir().unwrap();
    let mut o = options(&dir, WriteMode::Async, 1000);
    o.group_commit.queue_capacity = 4;
    let store = Store::open(&o).unwrap();
    // With a minute of batching delay, this only finishes if a full queue cuts the batch.
    for i in 0..40u32 {
        store.put("ns", &i.to_le_bytes(), b"v").unwrap();
    }
    store.flush().unwrap();
    let s = store.stats();
    assert_eq!(s.insertions, 40);
    assert!(s.commits >= 10, "batches of at most 4: {s:?}");
}

#[test]
fn concurrent_sync_writers_all_land() {
    let dir = tempfile::tempdir().unwrap();
    let mut o = options(&dir, WriteMode::Sync, 1000);
    o.group_commit.max_delay_ms = 2;
    let store = Arc::new(Store::open(&o).unwrap());
    std::thread::scope(|s| {
        for t in 0..16u32 {
            let store = Arc::clone(&store);
            s.spawn(move || {
                for i in 0..50u32 {
                    let key = [t.to_le_bytes(), i.to_le_bytes()].concat();
                    let out = store.put("ns", &key, &key).unwrap();
                    assert!(out.committed);
                    assert_eq!(store.get("ns", &key).unwrap().as_deref(), Some(&key[..]));
                }
            });
        }
    });
    let s = store.stats();
    assert_eq!(s.insertions, 800);
    assert!(s.commits <= 800);
    store.validate().unwrap();
}

//! The async promotion pool's queue: a bounded channel from readers to worker threads, with
//! in-flight duplicates coalesced.
//!
//! An L2 hit hands the worker the entry it decoded (no second L2 read) with the key's stripe
//! sequence and the invalidation epoch it saw before reading; the worker installs it only if
//! both are unchanged ([`crate::cache`]), so a promotion never resurrects an overwritten or
//! invalidated value.

use std::collections::HashSet;
use std::hash::{BuildHasher, RandomState};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use std::time::Duration;

use crossbeam_channel::{Receiver, Sender, TryRecvError, TrySendError};
use parking_lot::{Mutex, RwLock};

use crate::cache::{Inner, Stored};
use crate::key::CacheKey;
use crate::stats::Counters;

/// The first sleep of an idle worker.
const MIN_IDLE_SLEEP: Duration = Duration::from_micros(50);
/// The longest sleep of an idle worker: the most a promotion waits after a quiet spell.
pub(crate) const MAX_IDLE_SLEEP: Duration = Duration::from_millis(2);

/// One promotion: the key, the entry read from L2, and what the reader saw before reading.
pub(crate) struct Promotion {
    pub(crate) key: CacheKey,
    pub(crate) stored: Arc<Stored>,
    /// The key's stripe sequence before the L2 read.
    pub(crate) seq: u64,
    /// The bulk-invalidation epoch before the L2 read.
    pub(crate) epoch: u64,
}

/// The readers' side of the pool.
pub(crate) struct PromotionQueue {
    tx: RwLock<Option<Sender<Promotion>>>,
    rx: Receiver<Promotion>,
    /// Hashes of keys queued or being installed.
    inflight: Mutex<HashSet<u64>>,
    hasher: RandomState,
    queued: AtomicU64,
}

impl PromotionQueue {
    pub(crate) fn new(capacity: usize) -> Self {
        let (tx, rx) = crossbeam_channel::bounded(capacity);
        Self {
            tx: RwLock::new(Some(tx)),
            rx,
            inflight: Mutex::new(HashSet::new()),
            hasher: RandomState::new(),
            queued: AtomicU64::new(0),
        }
    }

    pub(crate) fn receiver(&self) -> Receiver<Promotion> {
        self.rx.clone()
    }

    /// Queues `p` unless the same key is in flight (coalesced) or the queue is full (dropped);
    /// after [`PromotionQueue::close`], hands it back for the caller to install inline.
    pub(crate) fn offer(&self, p: Promotion, counters: &Counters) -> Option<Promotion> {
        let tx = self.tx.read();
        let Some(tx) = &*tx else {
            return Some(p);
        };
        let h = self.hasher.hash_one(&p.key);
        if !self.inflight.lock().insert(h) {
            counters.promotions_coalesced.incr();
            return None;
        }
        match tx.try_send(p) {
            Ok(()) => {
                self.queued.fetch_add(1, Ordering::Relaxed);
                None
            }
            Err(TrySendError::Full(_)) => {
                self.inflight.lock().remove(&h);
                counters.promotions_dropped.incr();
                None
            }
            Err(TrySendError::Disconnected(p)) => {
                self.inflight.lock().remove(&h);
                Some(p)
            }
        }
    }

    /// Runs one worker until the queue is closed and drained.
    ///
    /// Workers poll rather than block: a sender that finds a receiver blocked must wake it
    /// (a futex syscall, several microseconds on the reader's path, measured by
    /// `cache-bench replay --async-promotion`). An idle worker sleeps 50 µs, doubling up to
    /// [`MAX_IDLE_SLEEP`], so a promotion waits at most that long once the pool has been idle.
    pub(crate) fn work(&self, inner: &Inner, rx: &Receiver<Promotion>) {
        let mut idle_rounds = 0u32;
        loop {
            match rx.try_recv() {
                Ok(p) => {
                    idle_rounds = 0;
                    let h = self.hasher.hash_one(&p.key);
                    inner.install(p);
                    self.inflight.lock().remove(&h);
                    inner.counters.promotions_completed.incr();
                }
                Err(TryRecvError::Empty) => {
                    let sleep = MIN_IDLE_SLEEP
                        .saturating_mul(1 << idle_rounds.min(8))
                        .min(MAX_IDLE_SLEEP);
                    idle_rounds += 1;
                    std::thread::sleep(sleep);
                }
                Err(TryRecvError::Disconnected) => break,
            }
        }
    }

    /// Stops taking promotions; workers finish what is queued, then exit.
    pub(crate) fn close(&self) {
        self.tx.write().take();
    }

    /// Promotions queued so far.
    pub(crate) fn queued(&self) -> u64 {
        self.queued.load(Ordering::Relaxed)
    }

    /// Promotions waiting now.
    pub(crate) fn depth(&self) -> u64 {
        self.rx.len() as u64
    }
}

//! Idle clocks of entries L1 does not hold: when each was last read, kept so an idle timeout
//! stays exact while the entry lives in L2 only.

use std::sync::atomic::{AtomicBool, Ordering};

use parking_lot::Mutex;

use crate::key::{CacheKey, KeyRef};

/// Past this many clocks the map is emptied: those entries fall back to the later of their put
/// and the cache's open (see `Inner::l2_last_access`).
const MAX_IDLE_CLOCKS: usize = 1 << 20;

/// The clocks, by key (looked up by borrowed key). Until the first clock is noted, every call
/// returns without taking the lock, so caches with no idle timeouts pay nothing on puts and
/// invalidations.
#[derive(Debug, Default)]
pub(crate) struct IdleClocks {
    map: Mutex<hashbrown::HashMap<CacheKey, u64>>,
    used: AtomicBool,
}

impl IdleClocks {
    pub(crate) fn get(&self, k: KeyRef<'_>) -> Option<u64> {
        if !self.used.load(Ordering::Acquire) {
            return None;
        }
        self.map.lock().get(&k).copied()
    }

    /// Records that `key` was last read at `at`.
    pub(crate) fn note(&self, key: CacheKey, at: u64) {
        let mut map = self.map.lock();
        self.used.store(true, Ordering::Release);
        if map.len() >= MAX_IDLE_CLOCKS {
            map.clear();
        }
        map.insert(key, at);
    }

    pub(crate) fn forget(&self, k: KeyRef<'_>) {
        if self.used.load(Ordering::Acquire) {
            self.map.lock().remove(&k);
        }
    }

    pub(crate) fn forget_all<'a>(&self, namespace: &str, keys: impl IntoIterator<Item = &'a [u8]>) {
        if self.used.load(Ordering::Acquire) {
            let mut map = self.map.lock();
            for key in keys {
                map.remove(&KeyRef { namespace, key });
            }
        }
    }

    pub(crate) fn clear(&self) {
        self.map.lock().clear();
    }
}

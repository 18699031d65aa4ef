//! The synopsis: a Bloom filter (the `fastbloom` crate) over the keys the store may hold, so a
//! get or an existence check for a key never written answers without reading the file.
//!
//! Each key enters hashed with its namespace's generation, so the synopsis is in effect one
//! filter per namespace generation: a namespace flush (a generation bump) leaves it with no
//! entries for that namespace, in O(1), and gets of keys written before the flush are
//! answered without a read.
//!
//! A Bloom filter cannot forget, so deleted and evicted keys stay in it and the false-positive
//! rate rises as keys churn. The writer thread rebuilds it while idle once the keys inserted
//! since the last build exceed the count it was sized for (twice the records at that build),
//! and it is rebuilt on open from the order table (keys only, no record bodies).
//!
//! No false negatives, ever, which the async put path relies on to call a put a fresh insert:
//! a put's key enters the synopsis under the pending lock before the put is queued; a rebuild
//! publishes its new filter to writers first (under the same lock, taking every queued key
//! along), then adds every committed key from a snapshot taken after that, and only then
//! replaces the filter readers use.

use std::sync::atomic::{AtomicUsize, Ordering};

use fastbloom::AtomicBloomFilter;
use parking_lot::RwLock;

/// Fewest keys a filter is sized for.
const MIN_ITEMS: usize = 4096;

/// A filter and the number of keys it was sized for.
#[derive(Debug)]
pub(crate) struct Filter {
    bloom: AtomicBloomFilter,
    capacity: usize,
}

impl Filter {
    /// An empty filter for `capacity` keys at false-positive rate `fp`.
    pub(crate) fn new(capacity: usize, fp: f64) -> Self {
        let capacity = capacity.max(MIN_ITEMS);
        Self {
            bloom: AtomicBloomFilter::with_false_pos(fp).expected_items(capacity),
            capacity,
        }
    }

    /// The capacity for a filter about to hold `records` keys: twice that, so it rebuilds
    /// after as many again have been inserted.
    pub(crate) fn capacity_for(records: usize) -> usize {
        records.saturating_mul(2).max(MIN_ITEMS)
    }

    pub(crate) fn insert(&self, hash: u64) {
        self.bloom.insert_hash(hash);
    }

    fn contains(&self, hash: u64) -> bool {
        self.bloom.contains_hash(hash)
    }

    fn bytes(&self) -> usize {
        self.bloom.num_bits() / 8
    }
}

/// The live filter, and during a rebuild the next one.
#[derive(Debug)]
pub(crate) struct Synopsis {
    current: RwLock<Filter>,
    /// Set (under the store's pending lock) while a rebuild is in progress; writers insert
    /// into it as well.
    next: RwLock<Option<Filter>>,
    /// Keys inserted into `current` since it was built.
    inserted: AtomicUsize,
    fp: f64,
}

impl Synopsis {
    /// A synopsis whose current filter is `filter`, holding `items` keys.
    pub(crate) fn new(filter: Filter, items: usize, fp: f64) -> Self {
        Self {
            current: RwLock::new(filter),
            next: RwLock::new(None),
            inserted: AtomicUsize::new(items),
            fp,
        }
    }

    /// The configured false-positive rate.
    pub(crate) fn fp(&self) -> f64 {
        self.fp
    }

    /// Adds a key hash. Called under the pending lock (see the [module docs](self)).
    pub(crate) fn insert(&self, hash: u64) {
        self.current.read().insert(hash);
        if let Some(next) = &*self.next.read() {
            next.insert(hash);
        }
        self.inserted.fetch_add(1, Ordering::Relaxed);
    }

    /// Whether the key hash may be present (`false`: it certainly is not).
    pub(crate) fn may_contain(&self, hash: u64) -> bool {
        self.current.read().contains(hash)
    }

    /// Whether the filter has taken more keys than it was sized for.
    pub(crate) fn saturated(&self) -> bool {
        self.inserted.load(Ordering::Relaxed) > self.current.read().capacity
    }

    /// Starts a rebuild: `next` receives every insert from now on. Call under the pending lock.
    pub(crate) fn begin_rebuild(&self, next: Filter) {
        *self.next.write() = Some(next);
    }

    /// Runs `f` on the filter being built.
    pub(crate) fn with_next(&self, f: impl FnOnce(&Filter)) {
        if let Some(next) = &*self.next.read() {
            f(next);
        }
    }

    /// Abandons a rebuild (its snapshot could not be read); the current filter stays.
    pub(crate) fn abort_rebuild(&self) {
        self.next.write().take();
    }

    /// Ends a rebuild: the filter being built, holding `items` keys, becomes current.
    pub(crate) fn finish_rebuild(&self, items: usize) {
        if let Some(next) = self.next.write().take() {
            *self.current.write() = next;
            self.inserted.store(items, Ordering::Relaxed);
        }
    }

    /// Replaces the filter with `filter`, holding `items` keys (a reopened file's); any rebuild
    /// in progress is abandoned. Call under the pending lock, with every queued key inserted
    /// into `filter`.
    pub(crate) fn replace(&self, filter: Filter, items: usize) {
        self.next.write().take();
        *self.current.write() = filter;
        self.inserted.store(items, Ordering::Relaxed);
    }

    /// Bytes of the current filter.
    pub(crate) fn bytes(&self) -> usize {
        self.current.read().bytes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rebuild_keeps_keys_inserted_while_it_runs() {
        let s = Synopsis::new(Filter::new(10, 0.01), 0, 0.01);
        for h in 0..5000u64 {
            s.insert(h.wrapping_mul(0x9E37_79B9_7F4A_7C15));
        }
        assert!(s.saturated());
        s.begin_rebuild(Filter::new(Filter::capacity_for(10), 0.01));
        s.insert(42);
        s.with_next(|f| f.insert(7));
        assert!(!s.may_contain(7), "not current until finished");
        s.finish_rebuild(2);
        assert!(s.may_contain(42) && s.may_contain(7));
        assert!(!s.saturated());
        let absent = (1_000_000..1_010_000u64)
            .filter(|h| s.may_contain(*h))
            .count();
        assert!(absent < 400, "{absent} false positives of 10,000 at 1%");
    }
}

//! Guards the single-shard cache's SIEVE semantics (with priorities), and the options.
//!
//! Random operation sequences run against [`cache_l1::ShardedSieve`] and against a deliberately
//! naive reference: a `Vec` ordered from tail to head, a hand index, and a linear scan, written
//! from the paper's pseudocode (plus priority credit, spent like a visited bit). With one shard
//! every hit, every eviction (in order), the queue order and every visited bit must agree, and
//! `validate()` must hold after every step. `model.rs` checks the sharded bookkeeping.

mod common;

use cache_l1::{Options, Policy};
use common::{Reference, build, check_against, op};
use proptest::prelude::*;

/// SIEVE as the paper states it, with no cleverness.
#[derive(Debug, Default)]
struct ReferenceSieve {
    /// Tail (oldest) first: (key, weight, visited, priority credit).
    queue: Vec<(u8, u64, bool, u8)>,
    hand: Option<usize>,
    weight: u64,
    capacity: u64,
}

impl ReferenceSieve {
    fn position(&self, k: u8) -> Option<usize> {
        self.queue.iter().position(|e| e.0 == k)
    }

    fn get(&mut self, k: u8) -> bool {
        match self.position(k) {
            Some(p) => {
                self.queue[p].2 = true;
                true
            }
            None => false,
        }
    }

    /// Removes the entry at `p`; a hand on it moves to its newer neighbour.
    fn remove_at(&mut self, p: usize) -> u8 {
        let (k, w, _, _) = self.queue.remove(p);
        self.weight -= w;
        self.hand = match self.hand {
            Some(h) if h > p => Some(h - 1),
            Some(h) if h == p && p < self.queue.len() => Some(p),
            Some(h) if h == p => None,
            other => other,
        };
        k
    }

    /// The paper's hand; an unvisited entry with priority credit spends one unit and is passed
    /// over as a visited one would be.
    fn evict(&mut self) -> u8 {
        let mut i = self.hand.unwrap_or(0);
        loop {
            let e = &mut self.queue[i];
            if e.2 {
                e.2 = false;
            } else if e.3 > 0 {
                e.3 -= 1;
            } else {
                break;
            }
            i = if i + 1 == self.queue.len() { 0 } else { i + 1 };
        }
        self.hand = Some(i);
        self.remove_at(i)
    }

    /// Returns (replaced, evicted keys, rejected).
    /// A replacement that fits changes the entry in place and counts as a hit; one that needs
    /// room is a removal and a new insert.
    fn insert(&mut self, k: u8, w: u64, p: u8) -> (bool, Vec<u8>, bool) {
        if let Some(pos) = self.position(k)
            && w <= self.capacity
        {
            let old = self.queue[pos].1;
            if w <= old || self.weight - old + w <= self.capacity {
                self.queue[pos] = (k, w, true, p);
                self.weight = self.weight - old + w;
                return (true, Vec::new(), false);
            }
        }
        let replaced = self.position(k).map(|p| self.remove_at(p)).is_some();
        if w > self.capacity {
            return (replaced, Vec::new(), true);
        }
        let mut evicted = Vec::new();
        while self.weight + w > self.capacity {
            evicted.push(self.evict());
        }
        self.queue.push((k, w, false, p));
        self.weight += w;
        (replaced, evicted, false)
    }
}

impl Reference for ReferenceSieve {
    fn get(&mut self, k: u8) -> bool {
        ReferenceSieve::get(self, k)
    }

    fn insert(&mut self, k: u8, w: u64, p: u8) -> (bool, Vec<u8>, bool) {
        ReferenceSieve::insert(self, k, w, p)
    }

    fn remove(&mut self, k: u8) -> Option<u8> {
        self.position(k).map(|p| self.remove_at(p))
    }

    fn snapshot(&self) -> Vec<(u8, u8)> {
        self.queue.iter().map(|e| (e.0, u8::from(e.2))).collect()
    }

    fn weight(&self) -> u64 {
        self.weight
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn single_shard_matches_reference_sieve(
        capacity in 1u64..40,
        ops in prop::collection::vec(op(24, 6), 1..400),
    ) {
        let cache = build(capacity, 1, Policy::Sieve);
        let mut model = ReferenceSieve { capacity, ..ReferenceSieve::default() };
        check_against(&cache, &mut model, ops)?;
    }
}

#[test]
fn replacing_with_an_oversized_value_removes_the_old_one() {
    let cache = build(10, 1, Policy::Sieve);
    let _ = cache.insert(1, ((1, 0), 4)).expect("fits");
    let rejected = cache.insert(1, ((1, 1), 11)).expect_err("too heavy");
    assert_eq!(rejected.removed.map(|v| v.0), Some((1, 0)));
    assert_eq!(rejected.weight, 11);
    assert!(
        cache.get(&1).is_none(),
        "the stale value must not be served"
    );
    assert_eq!(cache.stats().rejections, 1);
    cache.validate();
}

#[test]
fn options_refuse_degenerate_shapes() {
    use cache_l1::OptionsError;
    let err = |o: Options| {
        o.build::<u8, u8, _>(cache_l1::UnitWeigher)
            .map(|_| ())
            .unwrap_err()
    };
    assert_eq!(err(Options::new(0)), OptionsError::ZeroCapacity);
    assert_eq!(err(Options::new(8).shards(0)), OptionsError::ZeroShards);
    assert_eq!(
        err(Options::new(3).shards(4)),
        OptionsError::CapacityBelowShards {
            capacity: 3,
            shards: 4
        }
    );
    // Without an explicit count the default shrinks to fit a tiny capacity.
    let tiny = Options::new(1)
        .build::<u8, u8, _>(cache_l1::UnitWeigher)
        .expect("valid");
    assert_eq!(tiny.shard_count(), 1);
}

#[test]
fn the_default_shard_count_leaves_each_shard_enough_entries() {
    use cache_l1::MIN_ENTRIES_PER_SHARD;
    let max = Options::default_shards();
    assert!(max.is_power_of_two());
    assert_eq!(Options::new(100).shard_count(), 1);
    assert_eq!(Options::new(1 << 40).shard_count(), max);
    for entries in [1, 64, 127, 128, 500, 1000, 5000, 1 << 20] {
        let n = Options::new(1 << 30)
            .estimated_entries(entries)
            .shard_count();
        assert!(n.is_power_of_two() && n <= max, "{entries}: {n}");
        assert!(
            n == 1 || n as u64 * MIN_ENTRIES_PER_SHARD <= entries,
            "{entries} entries over {n} shards"
        );
        assert!(
            n == max || (2 * n) as u64 * MIN_ENTRIES_PER_SHARD > entries,
            "{entries} entries could have {} shards",
            2 * n
        );
    }
    assert_eq!(Options::new(1 << 30).shards(3).shard_count(), 3);
}

#[test]
fn weights_near_u64_max_do_not_overflow_the_budget_arithmetic() {
    let cache = Options::new(u64::MAX)
        .shards(1)
        .max_entry_fraction(1.0)
        .build(|_k: &u8, w: &u64| *w)
        .expect("valid options");
    let _ = cache.insert(1, u64::MAX - 1).expect("fits");
    let out = cache.insert(2, 10).expect("fits once the first is evicted");
    let evicted: Vec<_> = out.evicted.into_iter().map(|r| (r.key, r.value)).collect();
    assert_eq!(evicted, vec![(1, u64::MAX - 1)]);
    assert_eq!(cache.weight(), 10);
    cache.validate();
}

#[test]
fn the_documented_node_size_holds() {
    // The crate docs give size_of::<K>() + size_of::<V>() + 40, rounded up to a multiple of 64
    // (nodes are cache-line aligned).
    assert_eq!(cache_l1::ShardedSieve::<u64, u64>::node_bytes(), 64);
    assert_eq!(
        cache_l1::ShardedSieve::<u64, std::sync::Arc<[u8]>>::node_bytes(),
        64
    );
    assert_eq!(cache_l1::ShardedSieve::<u64, [u64; 4]>::node_bytes(), 128);
}

//! Guards the scan-resistant policy's semantics, one shard at a time, against a naive reference
//! S3-FIFO written from the policy's description (`Policy::S3Fifo`): two `Vec`s (small and main
//! queues, oldest first), a `Vec` of remembered keys for the ghost history, and linear scans.
//! Every hit, every eviction (in order), the contents and counters of both queues must agree
//! after every step of random operation sequences, with random parameters.
//!
//! It also shows the point of the policy: a loop larger than the cache keeps hitting under
//! S3-FIFO and never hits under SIEVE.

mod common;

use cache_l1::{MainQueue, Options, Policy, S3FifoParams, UnitWeigher};
use common::{Reference, build, check_against, op};
use proptest::prelude::*;

/// (key, weight, counter, priority credit)
type Slot = (u8, u64, u8, u8);

#[derive(Debug)]
struct ReferenceS3Fifo {
    small: Vec<Slot>,
    main: Vec<Slot>,
    /// Remembered keys, oldest first, each once.
    ghost: Vec<u8>,
    capacity: u64,
    main_capacity: u64,
    p: S3FifoParams,
}

impl ReferenceS3Fifo {
    fn new(capacity: u64, p: S3FifoParams) -> Self {
        #[expect(
            clippy::cast_possible_truncation,
            clippy::cast_sign_loss,
            clippy::cast_precision_loss
        )]
        let small = (capacity as f64 * p.small_ratio).round() as u64;
        Self {
            small: Vec::new(),
            main: Vec::new(),
            ghost: Vec::new(),
            capacity,
            main_capacity: capacity - small,
            p,
        }
    }

    fn weight(q: &[Slot]) -> u64 {
        q.iter().map(|s| s.1).sum()
    }

    fn total(&self) -> u64 {
        Self::weight(&self.small) + Self::weight(&self.main)
    }

    /// Removes `k` from whichever queue holds it; returns which (true: main).
    fn take_resident(&mut self, k: u8) -> Option<bool> {
        if let Some(i) = self.small.iter().position(|s| s.0 == k) {
            self.small.remove(i);
            return Some(false);
        }
        let i = self.main.iter().position(|s| s.0 == k)?;
        self.main.remove(i);
        Some(true)
    }

    fn get(&mut self, k: u8) -> bool {
        if let Some(s) = self.small.iter_mut().find(|s| s.0 == k) {
            s.2 = (s.2 + 1).min(self.p.promote_hits);
            return true;
        }
        if let Some(s) = self.main.iter_mut().find(|s| s.0 == k) {
            s.2 = (s.2 + 1).min(self.p.main_freq_cap);
            return true;
        }
        false
    }

    fn remember(&mut self, k: u8, capacity: usize) {
        if capacity == 0 {
            return;
        }
        self.ghost.retain(|&g| g != k);
        self.ghost.push(k);
        while self.ghost.len() > capacity {
            self.ghost.remove(0);
        }
    }

    fn evict_one(&mut self) -> u8 {
        if Self::weight(&self.main) <= self.main_capacity {
            while !self.small.is_empty() {
                let (k, w, f, c) = self.small.remove(0);
                if f >= self.p.promote_hits {
                    self.main.push((k, w, 0, c));
                } else if c > 0 {
                    self.main.push((k, w, 0, c - 1));
                } else {
                    let len = self.small.len() + self.main.len();
                    #[expect(
                        clippy::cast_possible_truncation,
                        clippy::cast_sign_loss,
                        clippy::cast_precision_loss
                    )]
                    let cap = ((len + 1) as f64 * self.p.ghost_ratio).round() as usize;
                    self.remember(k, cap);
                    return k;
                }
            }
        }
        loop {
            let (k, w, f, c) = self.main.remove(0);
            if f > 0 {
                self.main.push((k, w, f - 1, c));
            } else if c > 0 {
                self.main.push((k, w, 0, c - 1));
            } else {
                return k;
            }
        }
    }

    /// Returns (replaced, evicted keys, rejected).
    /// A replacement that fits changes the entry in place and counts as a hit; one that needs
    /// room is a removal and a new insert into the queue it was in.
    fn insert(&mut self, k: u8, w: u64, p: u8) -> (bool, Vec<u8>, bool) {
        if w <= self.capacity {
            let total = self.total();
            let (caps, queues) = (
                [self.p.promote_hits, self.p.main_freq_cap],
                [&mut self.small, &mut self.main],
            );
            for (cap, q) in caps.into_iter().zip(queues) {
                if let Some(s) = q.iter_mut().find(|s| s.0 == k)
                    && (w <= s.1 || total - s.1 + w <= self.capacity)
                {
                    *s = (k, w, (s.2 + 1).min(cap), p);
                    return (true, Vec::new(), false);
                }
            }
        }
        let old = self.take_resident(k);
        if w > self.capacity {
            return (old.is_some(), Vec::new(), true);
        }
        let to_main = match old {
            Some(in_main) => in_main,
            None if self.ghost.contains(&k) => {
                self.ghost.retain(|&g| g != k);
                true
            }
            None => Self::weight(&self.main) + w <= self.main_capacity,
        };
        let mut evicted = Vec::new();
        while self.capacity - self.total() < w {
            evicted.push(self.evict_one());
        }
        if to_main {
            self.main.push((k, w, 0, p));
        } else {
            self.small.push((k, w, 0, p));
        }
        (old.is_some(), evicted, false)
    }

    fn snapshot(&self) -> Vec<(u8, u8)> {
        self.small
            .iter()
            .chain(&self.main)
            .map(|s| (s.0, s.2))
            .collect()
    }
}

impl Reference for ReferenceS3Fifo {
    fn get(&mut self, k: u8) -> bool {
        ReferenceS3Fifo::get(self, k)
    }

    fn insert(&mut self, k: u8, w: u64, p: u8) -> (bool, Vec<u8>, bool) {
        ReferenceS3Fifo::insert(self, k, w, p)
    }

    fn remove(&mut self, k: u8) -> Option<u8> {
        self.take_resident(k).map(|_| k)
    }

    fn snapshot(&self) -> Vec<(u8, u8)> {
        ReferenceS3Fifo::snapshot(self)
    }

    fn weight(&self) -> u64 {
        self.total()
    }
}

fn params() -> impl Strategy<Value = S3FifoParams> {
    (0.01f64..0.9, 0.0f64..3.0, 1u8..4, 1u8..4).prop_map(|(small, ghost, promote, cap)| {
        S3FifoParams::default()
            .small_ratio(small)
            .ghost_ratio(ghost)
            .promote_hits(promote)
            .main_freq_cap(cap)
            .main_queue(MainQueue::Clock)
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn single_shard_matches_reference_s3fifo(
        capacity in 1u64..60,
        p in params(),
        ops in prop::collection::vec(op(24, 6), 1..500),
    ) {
        let cache = build(capacity, 1, Policy::S3Fifo(p));
        let mut model = ReferenceS3Fifo::new(capacity, p);
        check_against(&cache, &mut model, ops)?;
    }
}

/// Misses of a loop over `keys` distinct keys, `laps` times, in a cache of `capacity` entries.
fn loop_misses(policy: Policy, capacity: u64, keys: u64, laps: u64) -> u64 {
    let cache = Options::new(capacity)
        .shards(1)
        .policy(policy)
        .build::<u64, (), _>(UnitWeigher)
        .unwrap();
    let mut misses = 0;
    for _ in 0..laps {
        for k in 0..keys {
            if cache.get(&k).is_none() {
                misses += 1;
                let _ = cache.insert(k, ());
            }
        }
    }
    misses
}

#[test]
fn a_loop_larger_than_the_cache_keeps_hitting_under_s3fifo_only() {
    let (capacity, keys, laps) = (100, 1_000, 10);
    let sieve = loop_misses(Policy::Sieve, capacity, keys, laps);
    let s3 = loop_misses(
        Policy::S3Fifo(S3FifoParams::default()),
        capacity,
        keys,
        laps,
    );
    assert_eq!(
        sieve,
        keys * laps,
        "SIEVE never hits a loop larger than the cache"
    );
    // The main queue keeps the part of the loop it took while the cache filled: about 97 of
    // the 1,000 keys hit on every lap after the first.
    let hits = keys * laps - s3;
    assert!(hits >= 90 * (laps - 1), "S3-FIFO hit only {hits} times");
}

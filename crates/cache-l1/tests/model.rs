//! Guards the sharded cache's bookkeeping against a plain map: random sequences of every
//! operation (gets, peeks, inserts with priorities and expiry, removes, retains, clears, and a
//! caller's clock moving forward) on 1 to 8 shards with random weights and entry limits.
//!
//! The model holds what must be resident: every accepted insert, less what the cache reported
//! leaving. After every step:
//! - lookups return exactly the model's live values; an expired entry is never returned;
//! - the listener heard exactly the entries that left, once each, with the right cause
//!   (`Expired` exactly for those past their expiry, `Evicted` only from inserts that needed
//!   room, `Removed` for remove/retain/clear, `Replaced` for the old value of a re-inserted key);
//! - `validate()` holds, the cache-wide weight equals the model's and stays within capacity;
//! - inserts are rejected exactly when heavier than the largest admitted entry, whatever the
//!   shard's slice.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock, Weak};

use cache_l1::{
    EntryOptions, MainQueue, ManualClock, Options, Policy, RemovalCause, S3FifoParams, ShardedSieve,
};
use proptest::prelude::*;

/// (key, serial): values name the insert that wrote them, so stale values show.
type Value = (u8, u32);
type Weigh = fn(&u8, &(Value, u64)) -> u64;
type Heard = Arc<Mutex<Vec<(u8, Value, RemovalCause)>>>;

#[expect(
    clippy::trivially_copy_pass_by_ref,
    reason = "weighers take references"
)]
fn weigh(_k: &u8, v: &(Value, u64)) -> u64 {
    v.1
}

#[derive(Debug, Clone, Copy)]
enum Op {
    Get(u8),
    Peek(u8),
    /// Key, weight, priority, time to live (from now).
    Insert(u8, u64, u8, Option<u64>),
    Remove(u8),
    /// Keeps keys whose remainder modulo 3 is not this.
    Retain(u8),
    Clear,
    Advance(u64),
}

fn op(keys: u8, max_weight: u64) -> impl Strategy<Value = Op> {
    let ttl = prop_oneof![2 => Just(None), 1 => (1u64..20).prop_map(Some)];
    prop_oneof![
        6 => (0..keys).prop_map(Op::Get),
        1 => (0..keys).prop_map(Op::Peek),
        8 => (0..keys, 1..=max_weight, 0u8..=3, ttl)
            .prop_map(|(k, w, p, t)| Op::Insert(k, w, p, t)),
        1 => (0..keys).prop_map(Op::Remove),
        1 => (0u8..3).prop_map(Op::Retain),
        1 => Just(Op::Clear),
        2 => (1u64..8).prop_map(Op::Advance),
    ]
}

fn policy() -> impl Strategy<Value = Policy> {
    prop_oneof![
        Just(Policy::Sieve),
        (0.01f64..0.5, 0.0f64..2.0, 1u8..4, 1u8..4, any::<bool>()).prop_map(
            |(small, ghost, promote, cap, clock)| {
                Policy::S3Fifo(
                    S3FifoParams::default()
                        .small_ratio(small)
                        .ghost_ratio(ghost)
                        .promote_hits(promote)
                        .main_freq_cap(cap)
                        .main_queue(if clock {
                            MainQueue::Clock
                        } else {
                            MainQueue::Sieve
                        }),
                )
            }
        ),
    ]
}

/// A resident entry as the model sees it.
#[derive(Debug, Clone, Copy)]
struct Live {
    value: Value,
    weight: u64,
    expires_at: Option<u64>,
}

impl Live {
    fn expired(&self, now: u64) -> bool {
        self.expires_at.is_some_and(|t| now >= t)
    }
}

struct Harness {
    cache: ShardedSieve<u8, (Value, u64), Weigh>,
    clock: Arc<ManualClock>,
    heard: Heard,
    model: HashMap<u8, Live>,
    capacity: u64,
}

impl Harness {
    fn new(capacity: u64, shards: usize, policy: Policy, fraction: f64) -> Self {
        let clock = Arc::new(ManualClock::new(0));
        let heard: Heard = Arc::default();
        let sink = Arc::clone(&heard);
        let cache = Options::new(capacity)
            .shards(shards)
            .policy(policy)
            .max_entry_fraction(fraction)
            .clock(clock.clone())
            .build(weigh as Weigh)
            .expect("valid options")
            .with_listener(move |k, v, cause| sink.lock().unwrap().push((*k, v.0, cause)));
        Self {
            cache,
            clock,
            heard,
            model: HashMap::new(),
            capacity,
        }
    }

    fn take_heard(&self) -> Vec<(u8, Value, RemovalCause)> {
        std::mem::take(&mut *self.heard.lock().unwrap())
    }

    /// Checks one reported departure against the model and applies it; `allowed` lists the
    /// causes this operation may produce besides `Expired`.
    fn depart(
        &mut self,
        (k, v, cause): (u8, Value, RemovalCause),
        allowed: &[RemovalCause],
    ) -> Result<(), TestCaseError> {
        let now = self.clock.now_value();
        let live = self.model.remove(&k);
        prop_assert_eq!(
            live.map(|l| l.value),
            Some(v),
            "{:?} of a non-resident value",
            cause
        );
        let expired = live.is_some_and(|l| l.expired(now));
        if cause == RemovalCause::Expired {
            prop_assert!(expired, "{:?} reported Expired before its time", (k, v));
        } else {
            prop_assert!(allowed.contains(&cause), "unexpected cause {:?}", cause);
            // Eviction scans and sweeps must call an expired entry what it is.
            if matches!(cause, RemovalCause::Evicted) {
                prop_assert!(!expired, "an expired entry reported as Evicted");
            }
        }
        Ok(())
    }

    /// An insert, checked against the model: accepted exactly when within the entry limit,
    /// the outcome and the listener agreeing on what left.
    fn insert(
        &mut self,
        serial: u32,
        key: u8,
        weight: u64,
        priority: u8,
        ttl: Option<u64>,
    ) -> Result<(), TestCaseError> {
        let (k, w) = (key, weight);
        let now = self.clock.now_value();
        let value = (k, serial);
        let mut opts = EntryOptions::new().priority(priority);
        if let Some(ttl) = ttl {
            opts = opts.expires_at(now + ttl);
        }
        let old = self.model.get(&k).map(|l| l.value);
        match self.cache.insert_with(k, (value, w), opts) {
            Ok(out) => {
                prop_assert!(w <= self.cache.max_entry_weight());
                prop_assert_eq!(out.replaced.map(|v| v.0), old);
                let heard = self.take_heard();
                let returned: Vec<_> = out
                    .evicted
                    .iter()
                    .map(|r| (r.key, r.value.0, r.cause))
                    .collect();
                // The listener hears the replaced value, then what the outcome returns.
                let (first, rest) = if old.is_some() {
                    let (first, others) = heard.split_first().expect("replaced value reported");
                    (Some(*first), others.to_vec())
                } else {
                    (None, heard.clone())
                };
                prop_assert_eq!(&rest, &returned, "listener and outcome disagree");
                if let Some(f) = first {
                    prop_assert_eq!(f.0, k);
                    self.depart(f, &[RemovalCause::Replaced])?;
                }
                for r in returned {
                    prop_assert!(r.0 != k, "an insert evicted its own entry");
                    self.depart(r, &[RemovalCause::Evicted])?;
                }
                self.model.insert(
                    k,
                    Live {
                        value,
                        weight: w,
                        expires_at: ttl.map(|t| now + t),
                    },
                );
            }
            Err(rejected) => {
                prop_assert!(w > self.cache.max_entry_weight(), "rejected {} <= max", w);
                prop_assert_eq!(rejected.removed.map(|v| v.0), old);
                for h in self.take_heard() {
                    self.depart(h, &[RemovalCause::Replaced])?;
                }
                prop_assert!(!self.model.contains_key(&k));
            }
        }
        Ok(())
    }

    fn step(&mut self, serial: u32, op: Op) -> Result<(), TestCaseError> {
        let now = self.clock.now_value();
        let live_value =
            |m: &HashMap<u8, Live>, k: u8| m.get(&k).filter(|l| !l.expired(now)).map(|l| l.value);
        match op {
            Op::Get(k) | Op::Peek(k) => {
                let want = live_value(&self.model, k);
                let got = if matches!(op, Op::Get(_)) {
                    self.cache.get(&k)
                } else {
                    self.cache.peek(&k)
                };
                prop_assert_eq!(got.map(|v| v.0), want, "lookup of {}", k);
                for h in self.take_heard() {
                    prop_assert_eq!(h.0, k, "a lookup removed another key");
                    self.depart(h, &[])?;
                }
            }
            Op::Insert(k, w, p, ttl) => self.insert(serial, k, w, p, ttl)?,
            Op::Remove(k) => {
                let want = self.model.get(&k).map(|l| l.value);
                prop_assert_eq!(self.cache.remove(&k).map(|e| e.1.0), want);
                for h in self.take_heard() {
                    self.depart(h, &[RemovalCause::Removed])?;
                }
            }
            Op::Retain(r) => {
                let want = self
                    .model
                    .iter()
                    .filter(|(k, l)| !l.expired(now) && **k % 3 == r)
                    .count();
                prop_assert_eq!(self.cache.retain(|k, _| k % 3 != r), want);
                for h in self.take_heard() {
                    self.depart(h, &[RemovalCause::Removed])?;
                }
                prop_assert!(
                    self.model.values().all(|l| !l.expired(now)),
                    "retain left an expired entry"
                );
                prop_assert!(self.model.keys().all(|k| k % 3 != r));
            }
            Op::Clear => {
                prop_assert_eq!(self.cache.clear(), self.model.len());
                for h in self.take_heard() {
                    self.depart(h, &[RemovalCause::Removed])?;
                }
            }
            Op::Advance(d) => self.clock.advance(d),
        }
        self.cache.validate();
        prop_assert!(self.take_heard().is_empty());
        prop_assert_eq!(self.cache.len(), self.model.len(), "resident entries");
        let weight: u64 = self.model.values().map(|l| l.weight).sum();
        prop_assert_eq!(self.cache.weight(), weight);
        prop_assert!(weight <= self.capacity);
        let now = self.clock.now_value();
        for k in 0..40u8 {
            let live = self.model.get(&k).is_some_and(|l| !l.expired(now));
            prop_assert_eq!(self.cache.contains(&k), live, "contains({})", k);
        }
        Ok(())
    }
}

/// `ManualClock::now` through the trait, without importing it everywhere.
trait NowValue {
    fn now_value(&self) -> u64;
}

impl NowValue for ManualClock {
    fn now_value(&self) -> u64 {
        cache_l1::Clock::now(self)
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn every_entry_is_resident_or_reported_once_with_its_cause(
        shards in 1usize..8,
        extra_capacity in 0u64..60,
        policy in policy(),
        fraction in prop_oneof![Just(1.0), Just(0.5), Just(0.25), 0.05f64..1.0],
        ops in prop::collection::vec(op(40, 12), 1..300),
    ) {
        let capacity = shards as u64 + extra_capacity;
        let mut h = Harness::new(capacity, shards, policy, fraction);
        for (serial, op) in (0u32..).zip(ops) {
            h.step(serial, op)?;
        }
    }
}

#[test]
fn an_entry_larger_than_its_shards_slice_is_admitted_and_the_budget_holds() {
    // 8 shards over 64 units: slices of 8. An entry of 30 is admitted; other shards give up
    // room so that the total stays within 64.
    let mut h = Harness::new(64, 8, Policy::Sieve, 0.5);
    for k in 0..32u8 {
        h.step(u32::from(k), Op::Insert(k, 2, 0, None)).unwrap();
    }
    assert_eq!(h.cache.weight(), 64);
    h.step(100, Op::Insert(200, 30, 0, None)).unwrap();
    assert_eq!(h.cache.get(&200).map(|v| v.1), Some(30));
    assert!(h.cache.weight() <= 64);
    // Beyond the fraction: rejected and handed back.
    let rejected = h.cache.insert(201, ((201, 0), 33)).unwrap_err();
    assert_eq!((rejected.key, rejected.weight), (201, 33));
    assert_eq!(h.cache.stats().rejections, 1);
}

#[test]
fn expired_entries_are_never_returned_and_leave_lazily() {
    let h = Harness::new(16, 1, Policy::Sieve, 1.0);
    let _ = h
        .cache
        .insert_with(1, ((1, 0), 1), EntryOptions::new().expires_at(10))
        .unwrap();
    let _ = h.cache.insert(2, ((2, 0), 1)).unwrap();
    h.clock.set(9);
    assert!(h.cache.get(&1).is_some());
    h.clock.set(10);
    // Still resident until something meets it...
    assert_eq!(h.cache.len(), 2);
    assert!(h.cache.get(&1).is_none());
    // ...and the lookup that met it removed it.
    assert_eq!(h.cache.len(), 1);
    assert_eq!(h.take_heard(), vec![(1, (1, 0), RemovalCause::Expired)]);
    let stats = h.cache.stats();
    assert_eq!((stats.expirations, stats.hits, stats.misses), (1, 1, 1));
}

#[test]
fn the_listener_may_call_back_into_the_cache() {
    // The listener runs after the shard lock is released: one that reads and writes the same
    // cache (every shard's lock, through `len`) must not deadlock.
    type Cache = ShardedSieve<u32, u32>;
    let me: Arc<OnceLock<Weak<Cache>>> = Arc::default();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let (slot, sink) = (Arc::clone(&me), Arc::clone(&seen));
    let cache = Arc::new(
        Options::new(4)
            .shards(1)
            .build(cache_l1::UnitWeigher)
            .unwrap()
            .with_listener(move |k: &u32, _v: &u32, cause| {
                let cache = slot.get().and_then(Weak::upgrade).expect("cache alive");
                assert!(cache.get(k).is_none(), "a departed entry is still visible");
                let _ = cache.remove(&(k + 1000));
                sink.lock().unwrap().push((*k, cause, cache.len()));
            }),
    );
    me.set(Arc::downgrade(&cache)).unwrap();
    for k in 0..10 {
        let _ = cache.insert(k, k).unwrap();
    }
    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 6, "six evictions heard: {seen:?}");
    assert!(
        seen.iter()
            .all(|&(_, c, len)| c == RemovalCause::Evicted && len == 4)
    );
}

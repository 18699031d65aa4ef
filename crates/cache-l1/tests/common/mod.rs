//! Shared pieces of the model tests: the cache under test and random operations.

#![allow(
    dead_code,
    reason = "each test binary uses a different part of this module"
)]

use cache_l1::{EntryOptions, Options, Policy, ShardedSieve};
use proptest::prelude::*;

/// Key, then serial number: values name the insert that wrote them, so stale values show.
pub(crate) type Value = (u8, u32);

/// The weight rides along with the value.
pub(crate) type Cache = ShardedSieve<u8, (Value, u64), fn(&u8, &(Value, u64)) -> u64>;

#[expect(
    clippy::trivially_copy_pass_by_ref,
    reason = "weighers take references"
)]
fn weigh(_k: &u8, v: &(Value, u64)) -> u64 {
    v.1
}

/// A cache whose only limit on one entry is the whole capacity, as in the reference models.
pub(crate) fn build(capacity: u64, shards: usize, policy: Policy) -> Cache {
    Options::new(capacity)
        .shards(shards)
        .policy(policy)
        .max_entry_fraction(1.0)
        .build(weigh as fn(&u8, &(Value, u64)) -> u64)
        .expect("valid options")
}

#[derive(Debug, Clone)]
pub(crate) enum Op {
    Get(u8),
    /// Key, weight, priority.
    Insert(u8, u64, u8),
    Remove(u8),
}

/// Gets, inserts (one in four with a priority of 1 to 3) and removes over `keys` keys.
pub(crate) fn op(keys: u8, max_weight: u64) -> impl Strategy<Value = Op> {
    let priority = prop_oneof![3 => Just(0u8), 1 => 1u8..=3];
    prop_oneof![
        4 => (0..keys).prop_map(Op::Get),
        4 => (0..keys, 1..=max_weight, priority).prop_map(|(k, w, p)| Op::Insert(k, w, p)),
        1 => (0..keys).prop_map(Op::Remove),
    ]
}

/// A naive single-queue-set reference policy to compare one shard against.
pub(crate) trait Reference {
    /// A lookup; whether it hit.
    fn get(&mut self, k: u8) -> bool;
    /// An insert of weight `w` and priority `p`: (replaced an old value, evicted keys in order,
    /// rejected).
    fn insert(&mut self, k: u8, w: u64, p: u8) -> (bool, Vec<u8>, bool);
    /// A removal; the key if it was resident.
    fn remove(&mut self, k: u8) -> Option<u8>;
    /// Resident keys with their counters, in the order `ShardedSieve::queue_snapshot` gives.
    fn snapshot(&self) -> Vec<(u8, u8)>;
    /// Sum of resident weights.
    fn weight(&self) -> u64;
}

/// Applies `ops` to a one-shard `cache` and to `model`, comparing every result, the queues and
/// counters, and the weight after each step, with `validate()` in between.
pub(crate) fn check_against(
    cache: &Cache,
    model: &mut impl Reference,
    ops: Vec<Op>,
) -> Result<(), TestCaseError> {
    for (serial, op) in (0u32..).zip(ops) {
        match op {
            Op::Get(k) => {
                prop_assert_eq!(cache.get(&k).is_some(), model.get(k), "get {}", k);
            }
            Op::Insert(k, w, p) => {
                let (replaced, evicted, rejected) = model.insert(k, w, p);
                match cache.insert_with(k, ((k, serial), w), EntryOptions::new().priority(p)) {
                    Ok(out) => {
                        prop_assert!(!rejected, "cache accepted what the model rejects");
                        prop_assert_eq!(out.replaced.is_some(), replaced);
                        let keys: Vec<u8> = out.evicted.iter().map(|e| e.key).collect();
                        prop_assert_eq!(keys, evicted, "eviction order");
                    }
                    Err(r) => {
                        prop_assert!(rejected, "cache rejected what the model accepts");
                        prop_assert_eq!(r.removed.is_some(), replaced);
                    }
                }
            }
            Op::Remove(k) => {
                prop_assert_eq!(cache.remove(&k).map(|e| e.0), model.remove(k));
            }
        }
        cache.validate();
        prop_assert_eq!(
            cache.queue_snapshot(0),
            model.snapshot(),
            "queues and counters"
        );
        prop_assert_eq!(cache.weight(), model.weight());
    }
    Ok(())
}

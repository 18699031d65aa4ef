//! Shared pieces of the model tests: the cache under test and random operations.

#![allow(
    dead_code,
    reason = "each test binary uses a different part of this module"
)]

use cache_l1::{Options, Policy, ShardedSieve};
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

pub(crate) fn build(capacity: u64, shards: usize, policy: Policy) -> Cache {
    Options::new(capacity)
        .shards(shards)
        .policy(policy)
        .build(weigh as fn(&u8, &(Value, u64)) -> u64)
        .expect("valid options")
}

#[derive(Debug, Clone)]
pub(crate) enum Op {
    Get(u8),
    Insert(u8, u64),
    Remove(u8),
}

pub(crate) fn op(keys: u8, max_weight: u64) -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0..keys).prop_map(Op::Get),
        4 => (0..keys, 1..=max_weight).prop_map(|(k, w)| Op::Insert(k, w)),
        1 => (0..keys).prop_map(Op::Remove),
    ]
}

//! Which records make room when the store is full, and what `on_full = "reject"` does.
//!
//! - `policy_matches_reference_model`: with records of one footprint the store holds a fixed
//!   number of them, so a model of SIEVE (Zhang et al., NSDI 2024: insertion order, visited
//!   bits, a hand that clears and passes visited records and evicts the first unvisited one)
//!   or of FIFO predicts exactly which keys are resident after every put and get. Guards the
//!   hand, the marking of reads and the bit reset of new records.
//! - `reject_*`: a full store refuses puts with `L2Error::Full`, evicts nothing, and counts
//!   the refusals.

use std::collections::HashSet;

use cache_l2::{EvictionPolicy, L2Error, L2Options, OnFull, Store, WriteMode};
use proptest::prelude::*;

/// Two chunks plus a tail: a footprint of about 33 KiB, so a 1 MiB file holds a few dozen.
const VALUE_LEN: usize = 2 * 16_364 + 100;

fn options(dir: &tempfile::TempDir) -> L2Options {
    let mut o = L2Options::new(dir.path().join("l2.redb"));
    o.max_bytes = bytesize::ByteSize::mib(1);
    o.compression.enabled = false;
    o
}

fn value(key: u8, version: u16) -> Vec<u8> {
    let mut x = u64::from(key) << 16 | u64::from(version) | 1 << 40;
    (0..VALUE_LEN)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x.to_le_bytes()[0]
        })
        .collect()
}

fn key(k: u8) -> [u8; 4] {
    [b'k', b'e', b'y', k]
}

/// SIEVE (or FIFO) over keys, as a list in insertion order.
struct Model {
    sieve: bool,
    capacity: usize,
    /// `(sequence number, key, visited)`, oldest first.
    order: Vec<(u64, u8, bool)>,
    hand: u64,
    next_seq: u64,
}

impl Model {
    fn put(&mut self, k: u8) {
        self.order.retain(|&(_, key, _)| key != k);
        while self.order.len() + 1 > self.capacity {
            self.evict();
        }
        self.order.push((self.next_seq, k, false));
        self.next_seq += 1;
    }

    fn evict(&mut self) {
        if !self.sieve {
            self.order.remove(0);
            return;
        }
        loop {
            let i = self
                .order
                .iter()
                .position(|&(s, ..)| s >= self.hand)
                .unwrap_or(0);
            let (seq, _, visited) = &mut self.order[i];
            self.hand = *seq + 1;
            if *visited {
                *visited = false;
            } else {
                self.order.remove(i);
                return;
            }
        }
    }

    fn get(&mut self, k: u8) -> bool {
        match self.order.iter_mut().find(|(_, key, _)| *key == k) {
            Some((_, _, visited)) => {
                *visited = true;
                true
            }
            None => false,
        }
    }

    fn resident(&self) -> HashSet<u8> {
        self.order.iter().map(|&(_, k, _)| k).collect()
    }
}

#[derive(Debug, Clone)]
enum Op {
    Put(u8),
    Get(u8),
}

fn ops() -> impl Strategy<Value = Vec<Op>> {
    prop::collection::vec(
        prop_oneof![
            2 => (0u8..48).prop_map(Op::Put),
            3 => (0u8..48).prop_map(Op::Get),
        ],
        1..160,
    )
}

fn check_against_model(policy: EvictionPolicy, ops: &[Op]) -> Result<(), TestCaseError> {
    let dir = tempfile::tempdir().unwrap();
    let mut o = options(&dir);
    o.eviction = policy;
    let store = Store::open(&o).unwrap();
    // The capacity in records: the limit over one record's footprint.
    store.put("ns", &key(255), &value(255, 0)).unwrap();
    let s = store.stats();
    let one = s.footprint_bytes;
    let capacity = usize::try_from(s.footprint_limit / one).unwrap();
    store.delete("ns", &key(255)).unwrap();
    prop_assert!(capacity > 8 && capacity < 48, "capacity {}", capacity);
    let mut model = Model {
        sieve: policy == EvictionPolicy::Sieve,
        capacity,
        order: Vec::new(),
        hand: 0,
        next_seq: 0,
    };
    let mut versions = [0u16; 48];
    for op in ops {
        match *op {
            Op::Put(k) => {
                versions[usize::from(k)] += 1;
                store
                    .put("ns", &key(k), &value(k, versions[usize::from(k)]))
                    .unwrap();
                model.put(k);
            }
            Op::Get(k) => {
                let got = store.get("ns", &key(k)).unwrap();
                let want = model.get(k);
                prop_assert_eq!(
                    got.is_some(),
                    want,
                    "get {} (hit in the model: {})",
                    k,
                    want
                );
                if let Some(v) = got {
                    prop_assert_eq!(&v[..], &value(k, versions[usize::from(k)])[..]);
                }
            }
        }
        let resident_bytes = model.order.len() as u64 * one;
        prop_assert_eq!(
            store.stats().footprint_bytes,
            resident_bytes,
            "records resident"
        );
    }
    // Every key the model holds is a hit with its latest value, every other one a miss.
    let resident = model.resident();
    for k in 0..48u8 {
        let got = store.get("ns", &key(k)).unwrap();
        prop_assert_eq!(got.is_some(), resident.contains(&k), "final get {}", k);
    }
    store.validate().unwrap();
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(12))]

    #[test]
    fn policy_matches_reference_model_sieve(ops in ops()) {
        check_against_model(EvictionPolicy::Sieve, &ops)?;
    }

    #[test]
    fn policy_matches_reference_model_fifo(ops in ops()) {
        check_against_model(EvictionPolicy::Fifo, &ops)?;
    }
}

/// A hot key read between inserts survives a scan of new keys under SIEVE, and not under FIFO.
#[test]
fn sieve_keeps_a_read_key_through_a_scan_that_fifo_does_not() {
    for (policy, survives) in [(EvictionPolicy::Sieve, true), (EvictionPolicy::Fifo, false)] {
        let dir = tempfile::tempdir().unwrap();
        let mut o = options(&dir);
        o.eviction = policy;
        let store = Store::open(&o).unwrap();
        store.put("ns", b"hot", &value(0, 0)).unwrap();
        for k in 1..=200u8 {
            assert!(store.get("ns", b"hot").unwrap().is_some() || !survives);
            store.put("ns", &key(k), &value(k, 0)).unwrap();
        }
        assert!(
            store.stats().evictions > 100,
            "{policy:?}: the scan evicted"
        );
        assert_eq!(
            store.get("ns", b"hot").unwrap().is_some(),
            survives,
            "{policy:?}"
        );
    }
}

fn fill_until_full(store: &Store) -> u8 {
    for k in 0..=255u8 {
        match store.put("ns", &key(k), &value(k, 0)) {
            Ok(_) => {}
            Err(L2Error::Full { needed, limit }) => {
                assert!(needed > 0 && limit > 0);
                return k;
            }
            Err(e) => panic!("unexpected error {e}"),
        }
    }
    panic!("never full");
}

#[test]
fn reject_refuses_puts_when_full_and_keeps_every_record() {
    let dir = tempfile::tempdir().unwrap();
    let mut o = options(&dir);
    o.on_full = OnFull::Reject;
    let store = Store::open(&o).unwrap();
    let first_refused = fill_until_full(&store);
    let s = store.stats();
    assert_eq!(s.evictions, 0);
    assert_eq!(s.rejected_writes, 1);
    assert!(s.footprint_bytes <= s.footprint_limit);
    for k in 0..first_refused {
        assert_eq!(store.get("ns", &key(k)).unwrap().unwrap(), value(k, 0));
    }
    assert_eq!(store.get("ns", &key(first_refused)).unwrap(), None);

    // A refused overwrite takes the old record with it (serving it would be stale)...
    let grown = vec![7u8; VALUE_LEN * 3];
    assert!(matches!(
        store.put("ns", &key(0), &grown),
        Err(L2Error::Full { .. })
    ));
    assert_eq!(store.get("ns", &key(0)).unwrap(), None);
    // ...which makes room for the put refused before.
    store
        .put("ns", &key(first_refused), &value(first_refused, 0))
        .unwrap();
    assert_eq!(store.stats().rejected_writes, 2);
    store.validate().unwrap();
}

#[test]
fn reject_in_async_mode_refuses_at_commit_and_counts_it() {
    let dir = tempfile::tempdir().unwrap();
    let mut o = options(&dir);
    o.on_full = OnFull::Reject;
    o.write_mode = WriteMode::Async;
    let store = Store::open(&o).unwrap();
    // Queued faster than they commit: some pass the check at the call and are refused when
    // their batch commits; either way none evicts and every refusal is counted.
    let mut refused_at_call = 0;
    for k in 0..120u8 {
        match store.put("ns", &key(k), &value(k, 0)) {
            Ok(_) => {}
            Err(L2Error::Full { .. }) => refused_at_call += 1,
            Err(e) => panic!("unexpected error {e}"),
        }
    }
    store.flush().unwrap();
    let s = store.stats();
    assert_eq!(s.evictions, 0);
    let resident = (0..120u8)
        .filter(|&k| store.get("ns", &key(k)).unwrap().is_some())
        .count() as u64;
    assert!(refused_at_call <= s.rejected_writes);
    assert_eq!(resident + s.rejected_writes, 120, "{s:?}");
    assert!(s.footprint_bytes <= s.footprint_limit);
    store.validate().unwrap();
}

//! Races every operation on real threads and checks the history afterwards.
//!
//! Two writers own half the keys each and write increasing versions with weights from 1 to
//! 40 (above a shard's slice of 25, so inserts borrow room and other shards give it back), some
//! with a short expiry; two readers look keys up; a third thread removes and sweeps with
//! `retain`; a fourth moves the clock. Checked:
//! - every value a reader gets was written to that key, was not expired when read, and no
//!   reader sees a key's versions go backwards (nothing older comes back);
//! - every accepted insert ends exactly once: reported to the listener (evicted, expired,
//!   removed, replaced) or still resident at the end (then reported by a final `clear`);
//!   rejected inserts never are;
//! - `validate()` and the budget hold at the end.
//!
//! Each scenario runs under both policies.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Barrier, Mutex};

use cache_l1::{
    Clock, EntryOptions, ManualClock, Options, Policy, RemovalCause, S3FifoParams, ShardedSieve,
};

/// (key, version, weight, expiry timestamp or `u64::MAX`)
type Value = (u16, u32, u64, u64);
type Weigh = fn(&u16, &Value) -> u64;

#[expect(
    clippy::trivially_copy_pass_by_ref,
    reason = "weighers take references"
)]
fn weigh(_k: &u16, v: &Value) -> u64 {
    v.2
}

const KEYS: u16 = 96;
const OPS: u32 = 50_000;

/// A small deterministic generator, one per thread.
fn next(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}

type Cache = ShardedSieve<u16, Value, Weigh>;

/// Writer `t` (0 or 1) owns the keys `k % 2 == t` and writes each a rising version; returns the
/// (key, version) pairs the cache accepted.
fn write(cache: &Cache, clock: &ManualClock, t: u16) -> Vec<(u16, u32)> {
    let mut rng = 0x9E37_79B9_7F4A_7C15 ^ u64::from(t + 1);
    let mut version = vec![0u32; usize::from(KEYS)];
    let mut accepted = Vec::new();
    for _ in 0..OPS {
        let r = next(&mut rng);
        let k = u16::try_from(r % u64::from(KEYS / 2)).unwrap() * 2 + t;
        let v = &mut version[usize::from(k)];
        *v += 1;
        let weight = 1 + (r >> 20) % 40;
        let mut opts = EntryOptions::new().priority(u8::try_from((r >> 30) % 3).unwrap());
        let mut expires = u64::MAX;
        if (r >> 40).is_multiple_of(4) {
            expires = clock.now() + 1 + (r >> 44) % 5;
            opts = opts.expires_at(expires);
        }
        if cache.insert_with(k, (k, *v, weight, expires), opts).is_ok() {
            accepted.push((k, *v));
        }
    }
    accepted
}

/// Looks keys up until `done`, checking each value against the key, the clock and the last
/// version this reader saw.
fn read(cache: &Cache, clock: &ManualClock, stream: u64, done: &AtomicBool) {
    let mut rng = 0xD1B5_4A32_D192_ED03 ^ stream;
    let mut last = vec![0u32; usize::from(KEYS)];
    while !done.load(Ordering::Relaxed) {
        let k = u16::try_from(next(&mut rng) % u64::from(KEYS)).unwrap();
        let before = clock.now();
        if let Some((key, version, _, expires)) = cache.get(&k) {
            assert_eq!(key, k, "a lookup returned another key's value");
            assert!(expires > before, "an expired value was returned");
            let seen = &mut last[usize::from(k)];
            assert!(version >= *seen, "key {k}: version {version} after {seen}");
            *seen = version;
        }
    }
}

/// Removes keys, and now and then sweeps a residue class with `retain`, until `done`.
fn sweep(cache: &Cache, done: &AtomicBool) {
    let mut rng = 0xABCD_EF01_2345_6789;
    while !done.load(Ordering::Relaxed) {
        let r = next(&mut rng);
        if r.is_multiple_of(64) {
            let m = u16::try_from(r >> 8 & 7).unwrap() + 5;
            cache.retain(|k, _| k % m != 0);
        } else {
            cache.remove(&u16::try_from((r >> 8) % u64::from(KEYS)).unwrap());
        }
        std::thread::yield_now();
    }
}

fn race(policy: Policy) {
    let clock = Arc::new(ManualClock::new(0));
    let heard: Arc<Mutex<Vec<(u16, u32, RemovalCause)>>> = Arc::default();
    let sink = Arc::clone(&heard);
    let cache: Cache = Options::new(200)
        .shards(8)
        .policy(policy)
        .max_entry_fraction(0.25)
        .clock(clock.clone())
        .build(weigh as Weigh)
        .unwrap()
        .with_listener(move |k, v, cause| sink.lock().unwrap().push((*k, v.1, cause)));
    let done = AtomicBool::new(false);
    let start = Barrier::new(6);
    let accepted: Vec<(u16, u32)> = std::thread::scope(|s| {
        let (cache, clock, start, done) = (&cache, &*clock, &start, &done);
        let writers: Vec<_> = (0..2u16)
            .map(|t| {
                s.spawn(move || {
                    start.wait();
                    write(cache, clock, t)
                })
            })
            .collect();
        for stream in 0..2 {
            s.spawn(move || {
                start.wait();
                read(cache, clock, stream, done);
            });
        }
        s.spawn(move || {
            start.wait();
            sweep(cache, done);
        });
        s.spawn(move || {
            start.wait();
            while !done.load(Ordering::Relaxed) {
                clock.advance(1);
                std::thread::yield_now();
            }
        });
        let accepted = writers
            .into_iter()
            .flat_map(|w| w.join().unwrap())
            .collect();
        done.store(true, Ordering::Relaxed);
        accepted
    });
    cache.validate();
    assert!(cache.weight() <= cache.capacity());
    let resident = cache.len();
    assert_eq!(cache.clear(), resident);
    let heard = std::mem::take(&mut *heard.lock().unwrap());
    let mut ends: HashMap<(u16, u32), usize> = HashMap::new();
    for (k, v, _) in &heard {
        *ends.entry((*k, *v)).or_default() += 1;
    }
    for a in &accepted {
        assert_eq!(ends.remove(a), Some(1), "{a:?} did not end exactly once");
    }
    assert!(ends.is_empty(), "reported but never accepted: {ends:?}");
    // The race must have exercised every way out, or it proves little.
    for c in [
        RemovalCause::Evicted,
        RemovalCause::Expired,
        RemovalCause::Removed,
        RemovalCause::Replaced,
    ] {
        let n = heard.iter().filter(|h| h.2 == c).count();
        assert!(n > 0, "no {c:?} in {} departures", heard.len());
    }
}

#[test]
fn racing_operations_lose_nothing_and_resurrect_nothing_under_sieve() {
    race(Policy::Sieve);
}

#[test]
fn racing_operations_lose_nothing_and_resurrect_nothing_under_s3fifo() {
    race(Policy::S3Fifo(S3FifoParams::default()));
}

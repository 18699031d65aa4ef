//! One shard: a hash index over the policy's lists, held to a weight capacity.
//!
//! A shard is a single-threaded state machine; [`crate::ShardedSieve`] wraps each in a
//! reader-writer lock. Only [`Shard::lookup`] runs under the shared lock, and it touches nothing
//! but an atomic access counter.

use std::hash::{BuildHasher, Hash};

use hashbrown::{Equivalent, HashTable};

use crate::clock::Clock;
use crate::ghost::Ghost;
use crate::lists::{ListId, Lists};
use crate::policy::{MainQueue, Policy};
use crate::{Evicted, Removal, RemovalCause};

/// The expiry timestamp of an entry that never expires.
pub(crate) const NEVER: u64 = u64::MAX;

/// What a list node carries.
#[derive(Debug)]
pub(crate) struct Entry<K, V> {
    pub(crate) key: K,
    pub(crate) value: V,
    /// The full hash of `key`, kept so the table can rehash and removal can find the slot.
    pub(crate) hash: u64,
    /// When the entry expires, in the clock's unit; [`NEVER`] if it does not.
    pub(crate) expires_at: u64,
}

impl<K, V> Entry<K, V> {
    #[inline]
    fn expired_at(&self, now: Option<u64>) -> bool {
        now.is_some_and(|now| now >= self.expires_at)
    }

    fn into_removal(self, cause: RemovalCause) -> Removal<K, V> {
        Removal {
            key: self.key,
            value: self.value,
            cause,
        }
    }
}

/// What a lookup found.
#[derive(Debug)]
pub(crate) enum Lookup<T> {
    Hit(T),
    Miss,
    /// The key is resident but expired: a miss, and the entry should go.
    Expired,
}

/// What [`Shard::insert`] did besides linking the new entry.
#[derive(Debug)]
pub(crate) struct Inserted<K, V> {
    /// The key's previous entry, with the cause to report it under (`Replaced`, or `Expired`
    /// if it had expired already).
    pub(crate) replaced: Option<Removal<K, V>>,
    /// Entries removed to make room, in order (`Evicted` or `Expired`).
    pub(crate) removed: Evicted<K, V>,
}

#[derive(Debug)]
pub(crate) struct Shard<K, V> {
    /// Maps a key's hash to the list index of its entry.
    table: HashTable<u32>,
    lists: Lists<Entry<K, V>>,
    ghost: Ghost,
    policy: Policy,
    /// Counter caps per list, from the policy.
    caps: [u8; 2],
    /// This shard's slice of the cache's capacity: the most it holds while the cache as a whole
    /// is full. It may hold more while other shards leave part of theirs unused.
    capacity: u64,
    /// The main queue's share of `capacity` (the scan-resistant policy's; all of it for SIEVE).
    main_capacity: u64,
    /// Resident entries that carry an expiry timestamp; while 0, nothing reads the clock.
    expiring: usize,
}

impl<K: Eq, V> Shard<K, V> {
    pub(crate) fn new(capacity: u64, policy: Policy) -> Self {
        let main_capacity = match policy {
            Policy::Sieve => capacity,
            #[expect(
                clippy::cast_possible_truncation,
                clippy::cast_sign_loss,
                clippy::cast_precision_loss,
                reason = "a share of the capacity, rounded"
            )]
            Policy::S3Fifo(p) => capacity - ((capacity as f64 * p.small_ratio).round() as u64),
        };
        Self {
            table: HashTable::new(),
            lists: Lists::new(),
            ghost: Ghost::default(),
            policy,
            caps: policy.freq_caps(),
            capacity,
            main_capacity,
            expiring: 0,
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.lists.len()
    }

    /// Sum of the weights of resident entries.
    pub(crate) fn weight(&self) -> u64 {
        self.lists.list_weight(ListId::Small) + self.lists.list_weight(ListId::Main)
    }

    pub(crate) fn capacity(&self) -> u64 {
        self.capacity
    }

    /// "Now", if this shard holds entries that can expire.
    fn now_if_expiring(&self, clock: &dyn Clock) -> Option<u64> {
        (self.expiring > 0).then(|| clock.now())
    }

    #[inline]
    fn find<Q>(&self, hash: u64, key: &Q) -> Option<u32>
    where
        Q: Equivalent<K> + ?Sized,
    {
        self.table
            .find(hash, |&idx| key.equivalent(&self.lists.get(idx).key))
            .copied()
    }

    /// Looks `key` up and, on a hit, bumps its access counter (`touch`) or not (a peek). Needs
    /// only `&self`; reads the clock only if the entry has an expiry timestamp.
    #[inline]
    pub(crate) fn lookup<Q>(&self, hash: u64, key: &Q, clock: &dyn Clock, touch: bool) -> Lookup<&V>
    where
        Q: Equivalent<K> + ?Sized,
    {
        let Some(idx) = self.find(hash, key) else {
            return Lookup::Miss;
        };
        let entry = self.lists.get(idx);
        if entry.expires_at != NEVER && clock.now() >= entry.expires_at {
            return Lookup::Expired;
        }
        if touch {
            self.lists.touch(idx, self.caps);
        }
        Lookup::Hit(&entry.value)
    }

    /// Inserts or replaces `key`. A replacement is a new entry: the old one is removed first (its
    /// weight given back); the new one enters at the head of the list the old one was in, with
    /// its counter at 0 and `credit` as its priority credit.
    ///
    /// Evicts *before* linking the new entry, as the paper's algorithm does, so the new entry is
    /// never its own victim, until the shard holds at most `limit` ([`Shard::make_room`]).
    #[expect(clippy::too_many_arguments, reason = "the parts of one entry")]
    pub(crate) fn insert(
        &mut self,
        hash: u64,
        key: K,
        value: V,
        weight: u64,
        credit: u8,
        expires_at: u64,
        limit: u64,
        clock: &dyn Clock,
    ) -> Inserted<K, V> {
        let now = self.now_if_expiring(clock);
        let mut removed = Evicted::new();
        if let Some(idx) = self.find(hash, &key) {
            let old_weight = self.lists.weight(idx);
            let old_expired = self.lists.get(idx).expired_at(now);
            let cause = if old_expired {
                RemovalCause::Expired
            } else {
                RemovalCause::Replaced
            };
            if weight <= old_weight || self.weight() - old_weight <= limit.saturating_sub(weight) {
                // A replacement that needs no room: the value changes in place, the entry
                // keeps its place in its queue and the write counts as a hit. No neighbour
                // node is touched.
                self.lists.reweigh(idx, weight, credit);
                self.lists.touch(idx, self.caps);
                let entry = self.lists.get_mut(idx);
                let old_key = std::mem::replace(&mut entry.key, key);
                let old_value = std::mem::replace(&mut entry.value, value);
                let had_expiry = std::mem::replace(&mut entry.expires_at, expires_at) != NEVER;
                self.expiring =
                    self.expiring - usize::from(had_expiry) + usize::from(expires_at != NEVER);
                return Inserted {
                    replaced: Some(Removal {
                        key: old_key,
                        value: old_value,
                        cause,
                    }),
                    removed,
                };
            }
            // A heavier value that needs room: the node leaves its list (so no hand can pick
            // it and its weight no longer counts) but keeps its slab slot and index entry, and
            // comes back at the head of the same list as a new entry once room is made.
            let list = self.lists.list_of(idx);
            self.lists.detach(idx);
            self.make_room(weight, limit, now, &mut removed);
            let entry = self.lists.reattach_head(idx, list, weight, credit);
            let old_key = std::mem::replace(&mut entry.key, key);
            let old_value = std::mem::replace(&mut entry.value, value);
            let had_expiry = std::mem::replace(&mut entry.expires_at, expires_at) != NEVER;
            self.expiring =
                self.expiring - usize::from(had_expiry) + usize::from(expires_at != NEVER);
            let replaced = Removal {
                key: old_key,
                value: old_value,
                cause,
            };
            return Inserted {
                replaced: Some(replaced),
                removed,
            };
        }
        let list = match self.policy {
            Policy::Sieve => ListId::Main,
            Policy::S3Fifo(_) if self.ghost.take(hash) => ListId::Main,
            Policy::S3Fifo(_)
                if self.lists.list_weight(ListId::Main)
                    <= self.main_capacity.saturating_sub(weight)
                    && weight <= self.main_capacity =>
            {
                ListId::Main
            }
            Policy::S3Fifo(_) => ListId::Small,
        };
        self.make_room(weight, limit, now, &mut removed);
        let entry = Entry {
            key,
            value,
            hash,
            expires_at,
        };
        let idx = self.lists.push_head(list, entry, weight, 0, credit);
        let lists = &self.lists;
        self.table.insert_unique(hash, idx, |&i| lists.get(i).hash);
        self.expiring += usize::from(expires_at != NEVER);
        Inserted {
            replaced: None,
            removed,
        }
    }

    /// Evicts while this shard would hold more than `limit` with `weight` more, or until it is
    /// empty. `limit` is the shard's slice, or more when the cache lets it borrow room other
    /// shards leave unused ([`crate::ShardedSieve::insert_with`]); with one shard it is the
    /// capacity, and this is the policy's own `while weight + new > capacity`.
    fn make_room(
        &mut self,
        weight: u64,
        limit: u64,
        now: Option<u64>,
        removed: &mut Evicted<K, V>,
    ) {
        // `weight() + new > limit`, written so that it cannot overflow.
        while self.weight() > limit.saturating_sub(weight) {
            match self.evict_one(now) {
                Some(r) => removed.push(r),
                None => break,
            }
        }
    }

    /// Gives back room for the cache-wide budget: evicts until `needed` weight is freed, or,
    /// after at least one eviction, the shard is within its slice, or it is empty. Appends what
    /// it removed to `out` and returns the weight freed.
    pub(crate) fn shed(&mut self, needed: u64, clock: &dyn Clock, out: &mut Evicted<K, V>) -> u64 {
        let now = self.now_if_expiring(clock);
        let (mut freed, mut n) = (0u64, 0);
        while freed < needed && (n == 0 || self.weight() > self.capacity) {
            let before = self.weight();
            match self.evict_one(now) {
                Some(r) => out.push(r),
                None => break,
            }
            freed += before - self.weight();
            n += 1;
        }
        freed
    }

    /// Evicts one entry by the policy and returns it, or `None` if the shard is empty. An
    /// expired entry the policy's scan meets goes first, whatever its counter.
    fn evict_one(&mut self, now: Option<u64>) -> Option<Removal<K, V>> {
        let expired = |e: &Entry<K, V>| e.expired_at(now);
        if let Policy::S3Fifo(p) = self.policy
            && self.lists.list_weight(ListId::Main) <= self.main_capacity
        {
            // Shed the small queue until one entry leaves: entries hit often enough there (or
            // with priority credit to spend) move on to the main queue, the first one that was
            // not is evicted and remembered.
            while let Some(tail) = self.lists.tail(ListId::Small) {
                if expired(self.lists.get(tail)) {
                    return Some(self.unlink(tail).into_removal(RemovalCause::Expired));
                }
                if self.lists.freq(tail) >= p.promote_hits || self.lists.spend_credit(tail) {
                    self.lists.move_to_head(tail, ListId::Main);
                } else {
                    let entry = self.unlink(tail);
                    // Entries in the lists, this one included (not a node detached for
                    // replacement).
                    let linked =
                        self.lists.list_len(ListId::Small) + self.lists.list_len(ListId::Main);
                    #[expect(
                        clippy::cast_possible_truncation,
                        clippy::cast_sign_loss,
                        clippy::cast_precision_loss,
                        reason = "a multiple of the entry count, rounded"
                    )]
                    let ghost_capacity = ((linked + 1) as f64 * p.ghost_ratio).round() as usize;
                    self.ghost.insert(entry.hash, ghost_capacity);
                    return Some(entry.into_removal(RemovalCause::Evicted));
                }
            }
        }
        let victim = match self.policy {
            Policy::S3Fifo(p) if p.main_queue == MainQueue::Clock => {
                self.lists.next_victim_clock(ListId::Main, expired)?
            }
            _ => self.lists.next_victim(ListId::Main, expired)?,
        };
        let entry = self.unlink(victim);
        let cause = if entry.expired_at(now) {
            RemovalCause::Expired
        } else {
            RemovalCause::Evicted
        };
        Some(entry.into_removal(cause))
    }

    /// Removes `key` and returns its entry.
    pub(crate) fn remove<Q>(&mut self, hash: u64, key: &Q) -> Option<(K, V)>
    where
        Q: Equivalent<K> + ?Sized,
    {
        let idx = self.find(hash, key)?;
        let entry = self.unlink(idx);
        Some((entry.key, entry.value))
    }

    /// Removes `key` if it is resident and expired, and returns it.
    pub(crate) fn remove_expired<Q>(
        &mut self,
        hash: u64,
        key: &Q,
        clock: &dyn Clock,
    ) -> Option<Removal<K, V>>
    where
        Q: Equivalent<K> + ?Sized,
    {
        let idx = self.find(hash, key)?;
        let now = self.now_if_expiring(clock);
        if !self.lists.get(idx).expired_at(now) {
            return None;
        }
        Some(self.unlink(idx).into_removal(RemovalCause::Expired))
    }

    /// Removes every entry `keep` says no to (cause `Removed`) and every expired entry (cause
    /// `Expired`, without asking `keep`), appending them to `out`. Returns how many `keep`
    /// rejected.
    pub(crate) fn retain(
        &mut self,
        keep: &mut impl FnMut(&K, &V) -> bool,
        clock: &dyn Clock,
        out: &mut Vec<Removal<K, V>>,
    ) -> usize {
        let now = self.now_if_expiring(clock);
        let mut doomed = Vec::new();
        for list in [ListId::Small, ListId::Main] {
            for (idx, e) in self.lists.iter_oldest_first(list) {
                if e.expired_at(now) {
                    doomed.push((idx, RemovalCause::Expired));
                } else if !keep(&e.key, &e.value) {
                    doomed.push((idx, RemovalCause::Removed));
                }
            }
        }
        let mut rejected = 0;
        for (idx, cause) in doomed {
            rejected += usize::from(cause == RemovalCause::Removed);
            out.push(self.unlink(idx).into_removal(cause));
        }
        rejected
    }

    /// Removes every entry (and the ghost history) and returns how many there were; with `out`,
    /// hands them over (cause `Removed`) instead of dropping them.
    pub(crate) fn clear(&mut self, out: Option<&mut Vec<Removal<K, V>>>) -> usize {
        let n = self.lists.len();
        if let Some(out) = out {
            for list in [ListId::Small, ListId::Main] {
                while let Some(tail) = self.lists.tail(list) {
                    out.push(self.unlink(tail).into_removal(RemovalCause::Removed));
                }
            }
        } else {
            self.table.clear();
            self.lists.clear();
            self.expiring = 0;
        }
        self.ghost.clear();
        n
    }

    /// Removes the entry at list index `idx` from the table and its list.
    fn unlink(&mut self, idx: u32) -> Entry<K, V> {
        let hash = self.lists.get(idx).hash;
        match self.table.find_entry(hash, |&i| i == idx) {
            Ok(slot) => {
                slot.remove();
            }
            Err(_) => unreachable!("list entry {idx} is missing from the index"),
        }
        let (entry, _weight) = self.lists.remove(idx);
        self.expiring -= usize::from(entry.expires_at != NEVER);
        entry
    }

    /// Keys with their access counters: the main queue (or for the scan-resistant policy, the
    /// small queue then the main queue), each from its tail (oldest) to its head (newest).
    pub(crate) fn keys_oldest_first(&self) -> impl Iterator<Item = (&K, u8)> + '_ {
        [ListId::Small, ListId::Main]
            .into_iter()
            .flat_map(move |list| {
                self.lists
                    .iter_oldest_first(list)
                    .map(|(idx, e)| (&e.key, self.lists.freq(idx)))
            })
    }

    /// Recomputes every derived fact from scratch and compares.
    ///
    /// # Panics
    ///
    /// On the first broken invariant, with a message naming it.
    pub(crate) fn validate<S: BuildHasher>(&self, hasher: &S)
    where
        K: Hash,
    {
        self.lists.validate();
        self.ghost.validate();
        assert_eq!(
            self.table.len(),
            self.lists.len(),
            "index and lists disagree on length"
        );
        for list in [ListId::Small, ListId::Main] {
            for (idx, entry) in self.lists.iter_oldest_first(list) {
                assert_eq!(
                    entry.hash,
                    hasher.hash_one(&entry.key),
                    "stale hash at {idx}"
                );
                assert!(self.lists.weight(idx) >= 1, "entry {idx} weighs 0");
                assert!(
                    self.lists.freq(idx) <= self.caps[list as usize],
                    "counter over cap"
                );
                assert!(
                    self.lists.credit(idx) <= crate::MAX_PRIORITY,
                    "credit over the maximum priority"
                );
                assert_eq!(
                    self.table.find(entry.hash, |&i| i == idx),
                    Some(&idx),
                    "entry {idx} is not indexed under its hash"
                );
                assert_eq!(
                    self.find(entry.hash, &entry.key),
                    Some(idx),
                    "a lookup of entry {idx}'s key finds another entry"
                );
            }
        }
        if matches!(self.policy, Policy::Sieve) {
            assert_eq!(
                self.lists.list_len(ListId::Small),
                0,
                "SIEVE uses one queue"
            );
        }
        let expiring = [ListId::Small, ListId::Main]
            .into_iter()
            .flat_map(|list| self.lists.iter_oldest_first(list))
            .filter(|(_, e)| e.expires_at != NEVER)
            .count();
        assert_eq!(expiring, self.expiring, "expiring-entry count is off");
    }
}

//! One shard: a hash index over the policy's lists, held to a weight capacity.
//!
//! A shard is a single-threaded state machine; [`crate::ShardedSieve`] wraps each in a
//! reader-writer lock. Only [`Shard::get`] runs under the shared lock, and it touches nothing but
//! an atomic access counter.

use std::hash::{BuildHasher, Hash};

use hashbrown::{Equivalent, HashTable};

use crate::ghost::Ghost;
use crate::lists::{ListId, Lists};
use crate::policy::{MainQueue, Policy};
use crate::{InsertOutcome, Rejected};

/// What a list node carries.
#[derive(Debug)]
pub(crate) struct Entry<K, V> {
    pub(crate) key: K,
    pub(crate) value: V,
    /// The full hash of `key`, kept so the table can rehash and removal can find the slot.
    pub(crate) hash: u64,
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
    /// The most the resident weights may sum to once an operation returns.
    capacity: u64,
    /// The main queue's share of `capacity` (the scan-resistant policy's; all of it for SIEVE).
    main_capacity: u64,
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

    #[inline]
    fn find<Q>(&self, hash: u64, key: &Q) -> Option<u32>
    where
        Q: Equivalent<K> + ?Sized,
    {
        self.table
            .find(hash, |&idx| key.equivalent(&self.lists.get(idx).key))
            .copied()
    }

    /// Looks `key` up and, on a hit, bumps its access counter. Needs only `&self`.
    #[inline]
    pub(crate) fn get<Q>(&self, hash: u64, key: &Q) -> Option<&V>
    where
        Q: Equivalent<K> + ?Sized,
    {
        let idx = self.find(hash, key)?;
        self.lists.touch(idx, self.caps);
        Some(&self.lists.get(idx).value)
    }

    /// Looks `key` up without touching its access counter.
    #[inline]
    pub(crate) fn peek<Q>(&self, hash: u64, key: &Q) -> Option<&V>
    where
        Q: Equivalent<K> + ?Sized,
    {
        self.find(hash, key).map(|idx| &self.lists.get(idx).value)
    }

    /// Inserts or replaces `key`. A replacement is a new entry: the old one is removed first (its
    /// weight given back); the new one enters at the head of the list the old one was in, with
    /// its counter at 0.
    ///
    /// Evicts *before* linking the new entry, as the paper's algorithm does, so the new entry is
    /// never its own victim. If `weight` exceeds the shard's capacity the entry is rejected; an
    /// old value of the key is removed all the same, so a reader never sees a value older than
    /// the one the caller tried to store.
    pub(crate) fn insert(
        &mut self,
        hash: u64,
        key: K,
        value: V,
        weight: u64,
    ) -> Result<InsertOutcome<K, V>, Rejected<K, V>> {
        let old = self.find(hash, &key).map(|idx| {
            let list = self.lists.list_of(idx);
            (self.unlink(idx), list)
        });
        let (replaced, old_list) = match old {
            Some((entry, list)) => (Some(entry.value), Some(list)),
            None => (None, None),
        };
        if weight > self.capacity {
            return Err(Rejected {
                key,
                value,
                weight,
                removed: replaced,
            });
        }
        let list = match self.policy {
            Policy::Sieve => ListId::Main,
            Policy::S3Fifo(_) => match old_list {
                Some(list) => list,
                None if self.ghost.take(hash) => ListId::Main,
                None if self.lists.list_weight(ListId::Main) + weight <= self.main_capacity => {
                    ListId::Main
                }
                None => ListId::Small,
            },
        };
        let mut evicted = Vec::new();
        // `weight <= capacity` holds between operations, so the room never underflows, and
        // comparing against it cannot overflow as `self.weight() + weight` could.
        while self.capacity - self.weight() < weight {
            let entry = self
                .evict_one()
                .expect("weight above zero implies a resident entry");
            evicted.push((entry.key, entry.value));
        }
        let idx = self
            .lists
            .push_head(list, Entry { key, value, hash }, weight, 0);
        let lists = &self.lists;
        self.table.insert_unique(hash, idx, |&i| lists.get(i).hash);
        Ok(InsertOutcome { replaced, evicted })
    }

    /// Evicts one entry by the policy and returns it, or `None` if the shard is empty.
    fn evict_one(&mut self) -> Option<Entry<K, V>> {
        if let Policy::S3Fifo(p) = self.policy
            && self.lists.list_weight(ListId::Main) <= self.main_capacity
        {
            // Shed the small queue until one entry leaves: entries hit often enough there move
            // on to the main queue, the first one that was not is evicted and remembered.
            while let Some(tail) = self.lists.tail(ListId::Small) {
                if self.lists.freq(tail) >= p.promote_hits {
                    self.lists.move_to_head(tail, ListId::Main);
                } else {
                    let entry = self.unlink(tail);
                    #[expect(
                        clippy::cast_possible_truncation,
                        clippy::cast_sign_loss,
                        clippy::cast_precision_loss,
                        reason = "a multiple of the entry count, rounded"
                    )]
                    let ghost_capacity = ((self.len() + 1) as f64 * p.ghost_ratio).round() as usize;
                    self.ghost.insert(entry.hash, ghost_capacity);
                    return Some(entry);
                }
            }
        }
        let victim = match self.policy {
            Policy::S3Fifo(p) if p.main_queue == MainQueue::Clock => {
                self.lists.next_victim_clock(ListId::Main)?
            }
            _ => self.lists.next_victim(ListId::Main)?,
        };
        Some(self.unlink(victim))
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

    /// Removes every entry (and the ghost history) and returns how many entries there were.
    pub(crate) fn clear(&mut self) -> usize {
        let n = self.lists.len();
        self.table.clear();
        self.lists.clear();
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
        self.lists.remove(idx).0
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
        assert!(
            self.weight() <= self.capacity,
            "weight {} is above capacity {}",
            self.weight(),
            self.capacity
        );
    }
}

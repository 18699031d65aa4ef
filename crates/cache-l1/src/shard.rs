//! One shard: a hash index over a SIEVE queue, held to a weight capacity.
//!
//! A shard is a single-threaded state machine; [`crate::ShardedSieve`] wraps each in a
//! reader-writer lock. Only [`Shard::get`] runs under the shared lock, and it touches nothing but
//! an atomic `visited` bit.

use std::hash::{BuildHasher, Hash};

use hashbrown::{Equivalent, HashTable};

use crate::sieve::SieveQueue;
use crate::{InsertOutcome, Rejected};

/// What a queue node carries.
#[derive(Debug)]
pub(crate) struct Entry<K, V> {
    pub(crate) key: K,
    pub(crate) value: V,
    /// The full hash of `key`, kept so the table can rehash and removal can find the slot.
    pub(crate) hash: u64,
    /// The weight charged on insert and given back on removal.
    pub(crate) weight: u64,
}

#[derive(Debug)]
pub(crate) struct Shard<K, V> {
    /// Maps a key's hash to the queue index of its entry.
    table: HashTable<u32>,
    queue: SieveQueue<Entry<K, V>>,
    /// Sum of the weights of resident entries.
    weight: u64,
    /// The most `weight` may be once an operation returns.
    capacity: u64,
}

impl<K: Eq, V> Shard<K, V> {
    pub(crate) fn new(capacity: u64) -> Self {
        Self {
            table: HashTable::new(),
            queue: SieveQueue::new(),
            weight: 0,
            capacity,
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.queue.len()
    }

    pub(crate) fn weight(&self) -> u64 {
        self.weight
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
            .find(hash, |&idx| key.equivalent(&self.queue.get(idx).key))
            .copied()
    }

    /// Looks `key` up and, on a hit, sets its visited bit. Needs only `&self`.
    #[inline]
    pub(crate) fn get<Q>(&self, hash: u64, key: &Q) -> Option<&V>
    where
        Q: Equivalent<K> + ?Sized,
    {
        let idx = self.find(hash, key)?;
        self.queue.mark_visited(idx);
        Some(&self.queue.get(idx).value)
    }

    /// Looks `key` up without touching its visited bit.
    #[inline]
    pub(crate) fn peek<Q>(&self, hash: u64, key: &Q) -> Option<&V>
    where
        Q: Equivalent<K> + ?Sized,
    {
        self.find(hash, key).map(|idx| &self.queue.get(idx).value)
    }

    /// Inserts or replaces `key`. A replacement is a new entry: the old one is removed first
    /// (its weight given back) and the new one enters at the head, not visited.
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
        let replaced = self.remove(hash, &key).map(|(_, v)| v);
        if weight > self.capacity {
            return Err(Rejected {
                key,
                value,
                weight,
                removed: replaced,
            });
        }
        let mut evicted = Vec::new();
        // `weight <= capacity` holds between operations, so the room never underflows, and
        // comparing against it cannot overflow as `self.weight + weight` could.
        while self.capacity - self.weight < weight {
            let victim = self
                .queue
                .next_victim()
                .expect("weight above zero implies a resident entry");
            let entry = self.unlink(victim);
            evicted.push((entry.key, entry.value));
        }
        let idx = self.queue.push_head(Entry {
            key,
            value,
            hash,
            weight,
        });
        let queue = &self.queue;
        self.table.insert_unique(hash, idx, |&i| queue.get(i).hash);
        self.weight += weight;
        Ok(InsertOutcome { replaced, evicted })
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

    /// Removes every entry and returns how many there were.
    pub(crate) fn clear(&mut self) -> usize {
        let n = self.queue.len();
        self.table.clear();
        self.queue.clear();
        self.weight = 0;
        n
    }

    /// Removes the entry at queue index `idx` from the table and the queue.
    fn unlink(&mut self, idx: u32) -> Entry<K, V> {
        let hash = self.queue.get(idx).hash;
        match self.table.find_entry(hash, |&i| i == idx) {
            Ok(slot) => {
                slot.remove();
            }
            Err(_) => unreachable!("queue entry {idx} is missing from the index"),
        }
        let entry = self.queue.remove(idx);
        self.weight -= entry.weight;
        entry
    }

    /// Keys with their visited bits, from the tail (oldest) to the head (newest).
    pub(crate) fn keys_oldest_first(&self) -> impl Iterator<Item = (&K, bool)> + '_ {
        self.queue
            .iter_oldest_first()
            .map(|(idx, e)| (&e.key, self.queue.is_visited(idx)))
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
        self.queue.validate();
        assert_eq!(
            self.table.len(),
            self.queue.len(),
            "index and queue lengths differ"
        );
        let mut weight = 0u64;
        for (idx, entry) in self.queue.iter_oldest_first() {
            assert_eq!(
                entry.hash,
                hasher.hash_one(&entry.key),
                "stale hash at {idx}"
            );
            assert!(entry.weight >= 1, "entry {idx} weighs 0");
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
            weight += entry.weight;
        }
        assert_eq!(
            weight, self.weight,
            "weight counter differs from the sum of weights"
        );
        assert!(
            self.weight <= self.capacity,
            "weight {} is above capacity {}",
            self.weight,
            self.capacity
        );
    }
}

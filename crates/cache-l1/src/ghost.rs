//! The ghost history: hashes of keys recently evicted from the probationary queue.
//!
//! A key whose hash is in the ghost history was evicted before it proved itself; if it comes
//! back while remembered, it is taken out of the history and its insert goes straight to the main
//! queue. Only 64-bit hashes are kept (no keys), so a hash collision can admit an unrelated key
//! to the main queue: harmless, and rare with random-seeded hashes.

use std::collections::VecDeque;

use hashbrown::HashTable;

/// The last `capacity` distinct hashes inserted (inserting a remembered hash again makes it the
/// newest), less those taken out.
///
/// Kept as a FIFO of `(hash, sequence number)` slots: each remembered hash has one live slot,
/// the one with its latest sequence number; other slots are stale (the hash was taken out, or
/// inserted again later). Stale slots are skipped when they reach the front, and compacted away
/// when they make up more than half of the FIFO, so it stays within twice the capacity.
#[derive(Debug, Default)]
pub(crate) struct Ghost {
    fifo: VecDeque<(u64, u64)>,
    /// `(hash, sequence number of its live FIFO slot)`, keyed by the hash itself (already random).
    members: HashTable<(u64, u64)>,
    next_seq: u64,
}

impl Ghost {
    #[cfg(test)]
    pub(crate) fn contains(&self, hash: u64) -> bool {
        self.members.find(hash, |&(h, _)| h == hash).is_some()
    }

    /// Forgets `hash`; returns whether it was remembered.
    pub(crate) fn take(&mut self, hash: u64) -> bool {
        match self.members.find_entry(hash, |&(h, _)| h == hash) {
            Ok(slot) => {
                slot.remove();
                self.compact();
                true
            }
            Err(_) => false,
        }
    }

    /// Remembers `hash`, then forgets the oldest hashes until at most `capacity` remain.
    pub(crate) fn insert(&mut self, hash: u64, capacity: usize) {
        if capacity == 0 {
            return;
        }
        let seq = self.next_seq;
        self.next_seq += 1;
        self.fifo.push_back((hash, seq));
        // One probe finds the member or the slot for it.
        match self.members.entry(hash, |&(h, _)| h == hash, |&(h, _)| h) {
            hashbrown::hash_table::Entry::Occupied(mut member) => member.get_mut().1 = seq,
            hashbrown::hash_table::Entry::Vacant(slot) => {
                slot.insert((hash, seq));
            }
        }
        while self.members.len() > capacity {
            let Some((old, old_seq)) = self.fifo.pop_front() else {
                break;
            };
            if let Ok(slot) = self
                .members
                .find_entry(old, |&(h, s)| h == old && s == old_seq)
            {
                slot.remove();
            }
        }
        self.compact();
    }

    /// Drops stale slots once they outnumber live ones (plus some slack), so each costs O(1)
    /// amortized.
    fn compact(&mut self) {
        if self.fifo.len() > 2 * self.members.len() + 16 {
            let members = &self.members;
            self.fifo
                .retain(|&(h, s)| members.find(h, |&m| m == (h, s)).is_some());
        }
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.members.len()
    }

    pub(crate) fn clear(&mut self) {
        self.fifo.clear();
        self.members.clear();
    }

    /// Checks that every remembered hash has its live slot in the FIFO, and that stale slots
    /// are bounded.
    ///
    /// # Panics
    ///
    /// If either does not hold.
    pub(crate) fn validate(&self) {
        let live = self
            .fifo
            .iter()
            .filter(|&&(h, s)| self.members.find(h, |&m| m == (h, s)).is_some())
            .count();
        assert_eq!(
            live,
            self.members.len(),
            "ghost members and live FIFO slots disagree"
        );
        assert!(
            self.fifo.len() <= 2 * self.members.len() + 16,
            "too many stale ghost slots"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forgets_oldest_first_and_takes_out() {
        let mut g = Ghost::default();
        g.insert(1, 3);
        g.insert(2, 3);
        g.insert(1, 3); // refreshed: now the newest
        g.insert(3, 3);
        assert!(g.contains(1) && g.contains(2) && g.contains(3));
        g.insert(4, 3); // forgets 2, the oldest live one
        assert!(!g.contains(2) && g.contains(1));
        assert!(g.take(3));
        assert!(!g.take(3));
        assert!(!g.contains(3));
        assert_eq!(g.len(), 2);
        g.validate();
        g.insert(6, 0);
        assert!(!g.contains(6), "a zero-capacity ghost remembers nothing");
    }
}

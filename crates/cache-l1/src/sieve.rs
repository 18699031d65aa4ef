//! The SIEVE queue and its hand, over an index-linked slab.
//!
//! SIEVE (Zhang et al., "SIEVE is Simpler than LRU: an Efficient Turn-Key Eviction Algorithm
//! for Web Caches", NSDI 2024) keeps one FIFO queue, from the *tail* (oldest) to the *head*
//! (newest), and a *hand*:
//!
//! - a new entry goes in at the head, not visited;
//! - a hit only sets the entry's `visited` bit (no reordering, so a hit needs no exclusive lock);
//! - to evict, the hand starts where it last stopped (the tail the first time) and walks toward
//!   the head, clearing `visited` bits, until it finds an entry that is not visited; that entry
//!   is evicted and the hand stays at its newer neighbour. Past the head the hand wraps to the
//!   tail.
//!
//! Known weakness (from the paper): SIEVE is not scan-resistant; a burst of one-hit entries
//! pushes out a working set whose bits were cleared by the last pass of the hand.
//!
//! Nodes live in a [`Slab`] and link to each other by `u32` index, so the queue needs no
//! `unsafe` and no per-node allocation.

use std::sync::atomic::{AtomicBool, Ordering};

use slab::Slab;

/// "No node": the end of the list, or a hand that has not started (it then starts at the tail).
pub(crate) const NIL: u32 = u32::MAX;

/// One queue node: the caller's item plus the SIEVE state.
#[derive(Debug)]
pub(crate) struct Node<T> {
    pub(crate) item: T,
    /// Set by hits (under a shared lock, hence atomic); cleared by the passing hand.
    visited: AtomicBool,
    /// Toward the head (newer entries); `NIL` at the head.
    newer: u32,
    /// Toward the tail (older entries); `NIL` at the tail.
    older: u32,
}

/// A SIEVE queue of items of type `T`, addressed by stable `u32` indices.
#[derive(Debug)]
pub(crate) struct SieveQueue<T> {
    nodes: Slab<Node<T>>,
    /// Newest node.
    head: u32,
    /// Oldest node.
    tail: u32,
    /// Where the next eviction scan starts; `NIL` means the tail.
    hand: u32,
}

impl<T> SieveQueue<T> {
    pub(crate) fn new() -> Self {
        Self {
            nodes: Slab::new(),
            head: NIL,
            tail: NIL,
            hand: NIL,
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.nodes.len()
    }

    /// The item at `idx`.
    ///
    /// Panics if `idx` is not a live node: indices come only from this queue, so that is a bug.
    #[inline]
    pub(crate) fn get(&self, idx: u32) -> &T {
        &self.node(idx).item
    }

    /// Records a hit on `idx`. Takes `&self`: hits run under a shared lock.
    #[inline]
    pub(crate) fn mark_visited(&self, idx: u32) {
        let visited = &self.node(idx).visited;
        // Load first: a hot entry is read far more often than its bit changes, and a plain
        // load keeps its cache line shared between cores.
        if !visited.load(Ordering::Relaxed) {
            visited.store(true, Ordering::Relaxed);
        }
    }

    /// Inserts `item` at the head, not visited, and returns its index.
    ///
    /// # Panics
    ///
    /// If the queue already holds `u32::MAX - 1` nodes.
    pub(crate) fn push_head(&mut self, item: T) -> u32 {
        let entry = self.nodes.vacant_entry();
        let idx = u32::try_from(entry.key())
            .ok()
            .filter(|&i| i != NIL)
            .expect("a shard holds fewer than u32::MAX entries");
        entry.insert(Node {
            item,
            visited: AtomicBool::new(false),
            newer: NIL,
            older: self.head,
        });
        if self.head == NIL {
            self.tail = idx;
        } else {
            self.node_mut(self.head).newer = idx;
        }
        self.head = idx;
        idx
    }

    /// Unlinks and returns the item at `idx`. A hand resting on it moves to its newer neighbour.
    pub(crate) fn remove(&mut self, idx: u32) -> T {
        let node = self.nodes.remove(idx as usize);
        if node.newer == NIL {
            self.head = node.older;
        } else {
            self.node_mut(node.newer).older = node.older;
        }
        if node.older == NIL {
            self.tail = node.newer;
        } else {
            self.node_mut(node.older).newer = node.newer;
        }
        if self.hand == idx {
            self.hand = node.newer;
        }
        node.item
    }

    /// Runs the hand to the next entry to evict and returns its index (it is not removed; the
    /// caller removes it with [`Self::remove`], which leaves the hand on its newer neighbour).
    ///
    /// Visited entries the hand passes lose their bit. Returns `None` only when empty. Runs under
    /// the exclusive lock, so no hit can set a bit behind the hand: it stops within one lap.
    pub(crate) fn next_victim(&mut self) -> Option<u32> {
        if self.tail == NIL {
            return None;
        }
        let mut cur = if self.hand == NIL {
            self.tail
        } else {
            self.hand
        };
        loop {
            let node = self.node(cur);
            if !node.visited.load(Ordering::Relaxed) {
                break;
            }
            node.visited.store(false, Ordering::Relaxed);
            cur = if node.newer == NIL {
                self.tail
            } else {
                node.newer
            };
        }
        self.hand = cur;
        Some(cur)
    }

    /// Removes every node and resets the hand.
    pub(crate) fn clear(&mut self) {
        self.nodes.clear();
        self.head = NIL;
        self.tail = NIL;
        self.hand = NIL;
    }

    /// Indices and items from the tail (oldest) to the head (newest).
    pub(crate) fn iter_oldest_first(&self) -> impl Iterator<Item = (u32, &T)> + '_ {
        let mut cur = self.tail;
        std::iter::from_fn(move || {
            if cur == NIL {
                return None;
            }
            let idx = cur;
            let node = self.node(idx);
            cur = node.newer;
            Some((idx, &node.item))
        })
    }

    /// Whether the node at `idx` has its visited bit set (for tests and `validate`).
    pub(crate) fn is_visited(&self, idx: u32) -> bool {
        self.node(idx).visited.load(Ordering::Relaxed)
    }

    /// The index the next eviction scan starts from (`None`: the tail).
    #[cfg(test)]
    pub(crate) fn hand(&self) -> Option<u32> {
        (self.hand != NIL).then_some(self.hand)
    }

    /// Checks the links: a well-formed doubly linked list over exactly the live nodes, and a
    /// hand on a live node or unset.
    ///
    /// # Panics
    ///
    /// On the first broken invariant, with a message naming it.
    pub(crate) fn validate(&self) {
        let mut count = 0usize;
        let mut prev = NIL;
        let mut cur = self.tail;
        while cur != NIL {
            let node = self.node(cur);
            assert_eq!(node.older, prev, "node {cur}: `older` does not point back");
            count += 1;
            assert!(count <= self.nodes.len(), "cycle in the SIEVE queue");
            prev = cur;
            cur = node.newer;
        }
        assert_eq!(
            prev, self.head,
            "walking from the tail does not end at the head"
        );
        assert_eq!(
            count,
            self.nodes.len(),
            "queue length differs from the slab's"
        );
        assert!(
            self.hand == NIL || self.nodes.contains(self.hand as usize),
            "hand {} is not a live node",
            self.hand
        );
    }

    #[inline]
    fn node(&self, idx: u32) -> &Node<T> {
        &self.nodes[idx as usize]
    }

    #[inline]
    fn node_mut(&mut self, idx: u32) -> &mut Node<T> {
        &mut self.nodes[idx as usize]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn evict(q: &mut SieveQueue<u32>) -> u32 {
        let v = q.next_victim().expect("non-empty");
        q.remove(v)
    }

    #[test]
    fn evicts_in_fifo_order_without_hits() {
        let mut q = SieveQueue::new();
        for i in 0..4 {
            q.push_head(i);
        }
        assert_eq!((evict(&mut q), evict(&mut q)), (0, 1));
        q.validate();
    }

    #[test]
    fn visited_entries_survive_one_pass_and_the_hand_keeps_its_place() {
        // The example from the paper's Figure 1, in miniature: tail A B C D head, A and C hit.
        let mut q = SieveQueue::new();
        let idx: Vec<u32> = (0..4).map(|i| q.push_head(i)).collect();
        q.mark_visited(idx[0]);
        q.mark_visited(idx[2]);
        // The hand clears A, evicts B and stays on C.
        assert_eq!(evict(&mut q), 1);
        assert!(!q.is_visited(idx[0]));
        assert_eq!(q.hand(), Some(idx[2]));
        // A new entry E enters at the head; the hand clears C, evicts D and rests on E.
        q.push_head(4);
        assert_eq!(evict(&mut q), 3);
        assert_eq!(q.hand(), Some(q.iter_oldest_first().last().unwrap().0));
        q.validate();
        // E is not visited, so it goes next; then the hand wraps to the tail: A, then C.
        assert_eq!(evict(&mut q), 4);
        assert_eq!(evict(&mut q), 0);
        assert_eq!(evict(&mut q), 2);
        assert_eq!(q.next_victim(), None);
        q.validate();
    }

    #[test]
    fn removing_the_node_under_the_hand_moves_the_hand_newer() {
        let mut q = SieveQueue::new();
        let idx: Vec<u32> = (0..3).map(|i| q.push_head(i)).collect();
        q.mark_visited(idx[0]);
        assert_eq!(q.next_victim(), Some(idx[1]));
        q.remove(idx[1]);
        assert_eq!(q.hand(), Some(idx[2]));
        q.remove(idx[2]);
        assert_eq!(
            q.hand(),
            None,
            "hand past the head starts again at the tail"
        );
        q.validate();
    }
}

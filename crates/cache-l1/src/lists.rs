//! Index-linked FIFO lists over one slab, each with a SIEVE hand.
//!
//! Nodes live in a [`Slab`] and link to each other by `u32` index, so the lists need no `unsafe`
//! and no per-node allocation. A node belongs to one list at a time and can move between lists
//! without being reallocated. Each list runs from its *tail* (oldest) to its *head* (newest).
//!
//! Every node carries a small access counter (`freq`), bumped by hits under a shared lock (hence
//! atomic) and saturating at a cap. [`Lists::next_victim`] is the SIEVE hand of Zhang et al.,
//! "SIEVE is Simpler than LRU: an Efficient Turn-Key Eviction Algorithm for Web Caches",
//! NSDI 2024: it starts where it last stopped (the tail the first time), walks toward the head
//! (wrapping to the tail) decrementing counters, and stops at the first node whose counter is
//! 0; after that node is removed the hand rests on its newer neighbour. With a cap of 1 the
//! counter is the paper's `visited` bit.
//!
//! Two additions, both inert by default so that the hands stay the paper's: a node's *priority
//! credit* spares it from a hand that would evict it, one unit per pass, and a caller's
//! `expired` predicate makes the hand take an expired node at once, whatever its counter.

use std::sync::atomic::{AtomicU8, Ordering};

use slab::Slab;

/// "No node": the end of a list, or a hand that has not started (it then starts at the tail).
pub(crate) const NIL: u32 = u32::MAX;

/// The lists a shard keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ListId {
    /// The probationary FIFO of the scan-resistant policy.
    Small = 0,
    /// The SIEVE queue (the only list of the plain SIEVE policy).
    Main = 1,
}

/// One node: the caller's item plus list membership, links and the access counter.
///
/// Aligned to a cache line, so that a node of up to 64 bytes (`u64` keys with `Arc<[u8]>`
/// values, say) is read with one cache miss instead of the two a node straddling a line boundary
/// costs; larger nodes are padded to a multiple of 64 bytes.
#[derive(Debug)]
#[repr(align(64))]
struct Node<T> {
    item: T,
    weight: u64,
    freq: AtomicU8,
    list: ListId,
    /// Passes of a hand this node survives with its counter at 0 (its priority).
    credit: u8,
    /// Toward the head (newer); `NIL` at the head.
    newer: u32,
    /// Toward the tail (older); `NIL` at the tail.
    older: u32,
}

#[derive(Debug, Clone, Copy)]
struct Ends {
    head: u32,
    tail: u32,
    hand: u32,
    len: usize,
    weight: u64,
}

impl Ends {
    const EMPTY: Self = Self {
        head: NIL,
        tail: NIL,
        hand: NIL,
        len: 0,
        weight: 0,
    };
}

/// Bytes of the node holding an item of type `T` (the slab's slot may add a tag word, unless
/// the node has a niche for it).
pub(crate) const fn node_bytes<T>() -> usize {
    size_of::<Node<T>>()
}

/// Two lists of items of type `T` over one slab, addressed by stable `u32` indices.
#[derive(Debug)]
pub(crate) struct Lists<T> {
    nodes: Slab<Node<T>>,
    ends: [Ends; 2],
}

impl<T> Lists<T> {
    pub(crate) fn new() -> Self {
        Self {
            nodes: Slab::new(),
            ends: [Ends::EMPTY; 2],
        }
    }

    /// Nodes in both lists.
    pub(crate) fn len(&self) -> usize {
        self.nodes.len()
    }

    pub(crate) fn list_len(&self, list: ListId) -> usize {
        self.ends[list as usize].len
    }

    /// Sum of the weights of the nodes in `list`.
    pub(crate) fn list_weight(&self, list: ListId) -> u64 {
        self.ends[list as usize].weight
    }

    /// The item at `idx`. Panics if `idx` is not a live node: indices come only from these
    /// lists, so that is a bug.
    #[inline]
    pub(crate) fn get(&self, idx: u32) -> &T {
        &self.nodes[idx as usize].item
    }

    #[inline]
    pub(crate) fn weight(&self, idx: u32) -> u64 {
        self.nodes[idx as usize].weight
    }

    pub(crate) fn list_of(&self, idx: u32) -> ListId {
        self.nodes[idx as usize].list
    }

    pub(crate) fn freq(&self, idx: u32) -> u8 {
        self.nodes[idx as usize].freq.load(Ordering::Relaxed)
    }

    /// Records a hit on `idx`: the counter goes up by one, to at most the cap of the node's
    /// list (`caps[list]`). Takes `&self`: hits run under a shared lock. A load first, and a store
    /// only if the counter changes, keeps a hot entry's cache line shared between cores; two
    /// racing hits may count once.
    #[inline]
    pub(crate) fn touch(&self, idx: u32, caps: [u8; 2]) {
        let node = &self.nodes[idx as usize];
        let f = node.freq.load(Ordering::Relaxed);
        if f < caps[node.list as usize] {
            node.freq.store(f + 1, Ordering::Relaxed);
        }
    }

    /// The priority credit left to the node at `idx`.
    pub(crate) fn credit(&self, idx: u32) -> u8 {
        self.nodes[idx as usize].credit
    }

    /// Spends one unit of `idx`'s priority credit; `false` if it had none.
    pub(crate) fn spend_credit(&mut self, idx: u32) -> bool {
        let c = &mut self.nodes[idx as usize].credit;
        let had = *c > 0;
        *c = c.saturating_sub(1);
        had
    }

    /// Inserts `item` at the head of `list` with counter `freq` and priority credit `credit`,
    /// and returns its index.
    ///
    /// # Panics
    ///
    /// If the lists already hold `u32::MAX - 1` nodes.
    pub(crate) fn push_head(
        &mut self,
        list: ListId,
        item: T,
        weight: u64,
        freq: u8,
        credit: u8,
    ) -> u32 {
        let entry = self.nodes.vacant_entry();
        let idx = u32::try_from(entry.key())
            .ok()
            .filter(|&i| i != NIL)
            .expect("a shard holds fewer than u32::MAX entries");
        entry.insert(Node {
            item,
            weight,
            freq: AtomicU8::new(freq),
            list,
            credit,
            newer: NIL,
            older: NIL,
        });
        self.link_head(list, idx);
        idx
    }

    /// Unlinks and frees the node at `idx`, returning its item and weight. A hand resting on it
    /// moves to its newer neighbour.
    pub(crate) fn remove(&mut self, idx: u32) -> (T, u64) {
        self.unlink(idx);
        let node = self.nodes.remove(idx as usize);
        (node.item, node.weight)
    }

    /// Mutable access to the item at `idx`.
    pub(crate) fn get_mut(&mut self, idx: u32) -> &mut T {
        &mut self.nodes[idx as usize].item
    }

    /// Changes the weight of the node at `idx` (and its list's total) and sets its priority
    /// credit, leaving it where it is.
    pub(crate) fn reweigh(&mut self, idx: u32, weight: u64, credit: u8) {
        let node = &mut self.nodes[idx as usize];
        let ends = &mut self.ends[node.list as usize];
        ends.weight = ends.weight - node.weight + weight;
        node.weight = weight;
        node.credit = credit;
    }

    /// Takes the node at `idx` out of its list but keeps it (and its index) in the slab: it is
    /// in no list, so no hand can pick it, until [`Self::reattach_head`]. A hand resting on it
    /// moves to its newer neighbour.
    pub(crate) fn detach(&mut self, idx: u32) {
        self.unlink(idx);
    }

    /// Links a node taken out by [`Self::detach`] at the head of `list`, as a new node with
    /// `weight`, counter 0 and priority credit `credit`; returns its item for updating.
    pub(crate) fn reattach_head(
        &mut self,
        idx: u32,
        list: ListId,
        weight: u64,
        credit: u8,
    ) -> &mut T {
        let node = &mut self.nodes[idx as usize];
        node.weight = weight;
        *node.freq.get_mut() = 0;
        node.credit = credit;
        self.link_head(list, idx);
        &mut self.nodes[idx as usize].item
    }

    /// Moves the node at `idx` to the head of `list`, with its counter reset to 0.
    pub(crate) fn move_to_head(&mut self, idx: u32, list: ListId) {
        self.unlink(idx);
        *self.nodes[idx as usize].freq.get_mut() = 0;
        self.link_head(list, idx);
    }

    /// The oldest node of `list`.
    pub(crate) fn tail(&self, list: ListId) -> Option<u32> {
        let t = self.ends[list as usize].tail;
        (t != NIL).then_some(t)
    }

    /// Runs `list`'s SIEVE hand to the next node to evict and returns its index (it is not
    /// removed; [`Self::remove`] then leaves the hand on its newer neighbour). Counters the hand
    /// passes go down by one; a node whose counter is 0 spends a unit of priority credit instead,
    /// if it has one. The first node that is `expired`, or has neither, is the victim. Returns
    /// `None` only when the list is empty. Runs under the exclusive lock, so no hit can raise a
    /// counter behind the hand: it stops within `cap + max credit` laps.
    pub(crate) fn next_victim(
        &mut self,
        list: ListId,
        expired: impl Fn(&T) -> bool,
    ) -> Option<u32> {
        let ends = self.ends[list as usize];
        if ends.tail == NIL {
            return None;
        }
        let mut cur = if ends.hand == NIL {
            ends.tail
        } else {
            ends.hand
        };
        loop {
            let node = &mut self.nodes[cur as usize];
            if expired(&node.item) {
                break;
            }
            let freq = node.freq.get_mut();
            if *freq > 0 {
                *freq -= 1;
            } else if node.credit > 0 {
                node.credit -= 1;
            } else {
                break;
            }
            cur = if node.newer == NIL {
                ends.tail
            } else {
                node.newer
            };
        }
        self.ends[list as usize].hand = cur;
        Some(cur)
    }

    /// CLOCK over `list`: looks at the tail; a node with a counter above 0 has it decremented
    /// (or else a unit of priority credit spent) and moves to the head; the first node that is
    /// `expired`, or has neither, is returned (not removed).
    pub(crate) fn next_victim_clock(
        &mut self,
        list: ListId,
        expired: impl Fn(&T) -> bool,
    ) -> Option<u32> {
        loop {
            let tail = self.tail(list)?;
            let node = &mut self.nodes[tail as usize];
            if expired(&node.item) {
                return Some(tail);
            }
            let freq = node.freq.get_mut();
            let f = if *freq > 0 {
                *freq - 1
            } else if node.credit > 0 {
                node.credit -= 1;
                0
            } else {
                return Some(tail);
            };
            self.unlink(tail);
            *self.nodes[tail as usize].freq.get_mut() = f;
            self.link_head(list, tail);
        }
    }

    /// Removes every node and resets the hands.
    pub(crate) fn clear(&mut self) {
        self.nodes.clear();
        self.ends = [Ends::EMPTY; 2];
    }

    /// Indices and items of `list` from its tail (oldest) to its head (newest).
    pub(crate) fn iter_oldest_first(&self, list: ListId) -> impl Iterator<Item = (u32, &T)> + '_ {
        let mut cur = self.ends[list as usize].tail;
        std::iter::from_fn(move || {
            if cur == NIL {
                return None;
            }
            let idx = cur;
            let node = &self.nodes[idx as usize];
            cur = node.newer;
            Some((idx, &node.item))
        })
    }

    /// Where `list`'s next eviction scan starts (`None`: the tail).
    #[cfg(test)]
    pub(crate) fn hand(&self, list: ListId) -> Option<u32> {
        let h = self.ends[list as usize].hand;
        (h != NIL).then_some(h)
    }

    /// Checks every list: well-formed doubly linked lists that together hold exactly the live
    /// nodes, each node tagged with its list, lengths and weights that match, and hands on
    /// nodes of their own list (or unset).
    ///
    /// # Panics
    ///
    /// On the first broken invariant, with a message naming it.
    pub(crate) fn validate(&self) {
        let mut total = 0usize;
        for list in [ListId::Small, ListId::Main] {
            let ends = self.ends[list as usize];
            let (mut count, mut weight, mut prev, mut cur) = (0usize, 0u64, NIL, ends.tail);
            while cur != NIL {
                let node = &self.nodes[cur as usize];
                assert_eq!(node.list, list, "node {cur} is linked into the wrong list");
                assert_eq!(node.older, prev, "node {cur}: `older` does not point back");
                count += 1;
                weight += node.weight;
                assert!(count <= self.nodes.len(), "cycle in list {list:?}");
                prev = cur;
                cur = node.newer;
            }
            assert_eq!(
                prev, ends.head,
                "{list:?}: walking from the tail misses the head"
            );
            assert_eq!(count, ends.len, "{list:?}: length counter is off");
            assert_eq!(weight, ends.weight, "{list:?}: weight counter is off");
            assert!(
                ends.hand == NIL
                    || self
                        .nodes
                        .get(ends.hand as usize)
                        .is_some_and(|n| n.list == list),
                "{list:?}: hand {} is not a node of the list",
                ends.hand
            );
            total += count;
        }
        assert_eq!(
            total,
            self.nodes.len(),
            "lists and slab disagree on the node count"
        );
    }

    fn link_head(&mut self, list: ListId, idx: u32) {
        let weight = self.nodes[idx as usize].weight;
        let ends = &mut self.ends[list as usize];
        let old_head = ends.head;
        ends.head = idx;
        if old_head == NIL {
            ends.tail = idx;
        }
        ends.len += 1;
        ends.weight += weight;
        let node = &mut self.nodes[idx as usize];
        node.list = list;
        node.newer = NIL;
        node.older = old_head;
        if old_head != NIL {
            self.nodes[old_head as usize].newer = idx;
        }
    }

    fn unlink(&mut self, idx: u32) {
        let (list, newer, older, weight) = {
            let n = &self.nodes[idx as usize];
            (n.list, n.newer, n.older, n.weight)
        };
        let ends = &mut self.ends[list as usize];
        if newer == NIL {
            ends.head = older;
        }
        if older == NIL {
            ends.tail = newer;
        }
        if ends.hand == idx {
            ends.hand = newer;
        }
        ends.len -= 1;
        ends.weight -= weight;
        if newer != NIL {
            self.nodes[newer as usize].older = older;
        }
        if older != NIL {
            self.nodes[older as usize].newer = newer;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAIN: ListId = ListId::Main;

    fn evict(q: &mut Lists<u32>) -> u32 {
        let v = q.next_victim(MAIN, |_| false).expect("non-empty");
        q.remove(v).0
    }

    #[test]
    fn evicts_in_fifo_order_without_hits() {
        let mut q = Lists::new();
        for i in 0..4 {
            q.push_head(MAIN, i, 1, 0, 0);
        }
        assert_eq!((evict(&mut q), evict(&mut q)), (0, 1));
        q.validate();
    }

    #[test]
    fn visited_entries_survive_one_pass_and_the_hand_keeps_its_place() {
        // The example from the paper's Figure 1, in miniature: tail A B C D head, A and C hit.
        let mut q = Lists::new();
        let idx: Vec<u32> = (0..4).map(|i| q.push_head(MAIN, i, 1, 0, 0)).collect();
        q.touch(idx[0], [1, 1]);
        q.touch(idx[2], [1, 1]);
        q.touch(idx[2], [1, 1]); // saturates at the cap
        // The hand clears A, evicts B and stays on C.
        assert_eq!(evict(&mut q), 1);
        assert_eq!(q.freq(idx[0]), 0);
        assert_eq!(q.hand(MAIN), Some(idx[2]));
        // A new entry E enters at the head; the hand clears C, evicts D and rests on E.
        q.push_head(MAIN, 4, 1, 0, 0);
        assert_eq!(evict(&mut q), 3);
        assert_eq!(
            q.hand(MAIN),
            Some(q.iter_oldest_first(MAIN).last().unwrap().0)
        );
        q.validate();
        // E is not visited, so it goes next; then the hand wraps to the tail: A, then C.
        assert_eq!(evict(&mut q), 4);
        assert_eq!(evict(&mut q), 0);
        assert_eq!(evict(&mut q), 2);
        assert_eq!(q.next_victim(MAIN, |_| false), None);
        q.validate();
    }

    #[test]
    fn removing_the_node_under_the_hand_moves_the_hand_newer() {
        let mut q = Lists::new();
        let idx: Vec<u32> = (0..3).map(|i| q.push_head(MAIN, i, 1, 0, 0)).collect();
        q.touch(idx[0], [1, 1]);
        assert_eq!(q.next_victim(MAIN, |_| false), Some(idx[1]));
        q.remove(idx[1]);
        assert_eq!(q.hand(MAIN), Some(idx[2]));
        q.remove(idx[2]);
        assert_eq!(
            q.hand(MAIN),
            None,
            "hand past the head starts again at the tail"
        );
        q.validate();
    }

    #[test]
    fn counters_above_one_buy_extra_passes() {
        let mut q = Lists::new();
        let a = q.push_head(MAIN, 0, 1, 0, 0);
        let _b = q.push_head(MAIN, 1, 1, 0, 0);
        for _ in 0..3 {
            q.touch(a, [1, 3]);
        }
        // A survives three passes; B (never hit) goes first, then A once its counter ran out.
        assert_eq!(evict(&mut q), 1);
        assert_eq!(evict(&mut q), 0);
    }

    #[test]
    fn priority_credit_spares_a_node_once_per_unit_and_expiry_overrides_everything() {
        let mut q = Lists::new();
        let a = q.push_head(MAIN, 0, 1, 0, 2);
        let _b = q.push_head(MAIN, 1, 1, 0, 0);
        let c = q.push_head(MAIN, 2, 1, 0, 0);
        q.touch(c, [1, 1]);
        // A spends a unit of credit and B goes. Then C's bit clears and A, expired, is taken
        // with its credit left; once it is not expired, A spends its last unit and C goes.
        assert_eq!(evict(&mut q), 1);
        assert_eq!(q.credit(a), 1);
        let victim = q.next_victim(MAIN, |&item| item == 0).unwrap();
        assert_eq!(victim, a, "an expired node is taken despite its credit");
        assert_eq!(q.credit(a), 1);
        assert_eq!(evict(&mut q), 2, "C's bit cleared on the first pass");
        assert_eq!(evict(&mut q), 0);
        // CLOCK spends credit the same way.
        let clock_a = q.push_head(MAIN, 5, 1, 0, 1);
        let clock_b = q.push_head(MAIN, 6, 1, 0, 0);
        assert_eq!(q.next_victim_clock(MAIN, |_| false), Some(clock_b));
        assert_eq!(q.credit(clock_a), 0);
        q.remove(clock_b);
        let clock_c = q.push_head(MAIN, 7, 1, 0, 3);
        q.touch(clock_c, [1, 1]);
        q.remove(clock_a);
        assert_eq!(q.next_victim_clock(MAIN, |&i| i == 7), Some(clock_c));
        assert_eq!(
            (q.freq(clock_c), q.credit(clock_c)),
            (1, 3),
            "an expired node spends nothing"
        );
        q.validate();
    }

    #[test]
    fn nodes_move_between_lists_keeping_weights() {
        let mut q = Lists::new();
        let a = q.push_head(ListId::Small, 10, 7, 2, 0);
        let b = q.push_head(ListId::Small, 11, 5, 0, 0);
        assert_eq!(q.list_weight(ListId::Small), 12);
        q.move_to_head(a, MAIN);
        assert_eq!((q.list_of(a), q.freq(a)), (MAIN, 0));
        assert_eq!((q.list_weight(ListId::Small), q.list_weight(MAIN)), (5, 7));
        assert_eq!(q.tail(ListId::Small), Some(b));
        q.validate();
        assert_eq!(q.remove(b), (11, 5));
        assert_eq!((q.list_len(ListId::Small), q.len()), (0, 1));
        q.validate();
    }
}

//! A write transaction's view of the store's tables: adding and removing whole records (entry,
//! chunks, order row, label rows) with their accounting, and FIFO eviction.
//!
//! Entries are read here *before* their checksum is verified only to find what to remove. A
//! sequence number read from an unverified header is never trusted to name another key's order
//! row or chunks unless the order table confirms it, and labels are taken only from verified
//! entries; a rotten entry may leave label rows behind (a later invalidation of that label
//! removes the key's record, which is only a wasted miss) or chunks (counted in the footprint
//! until the store is rebuilt).

use redb::{AccessGuard, MultimapTable, ReadableTable, Table, WriteTransaction};

use crate::Result;
use crate::budget::{chunk_footprint, entry_footprint, label_footprint};
use crate::eviction::{EvictionPolicy, Hand, VisitedBits};
use crate::record::{self, accounted_size};
use crate::schema::{BLOBS, GENERATIONS, LABELS, ORDER, RECORDS};

/// Live bytes and footprint of the records in the store, kept as records come and go.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Totals {
    /// Accounted bytes ([`record::accounted_size`]).
    pub(crate) live: u64,
    /// Estimated file bytes ([`crate::budget`]).
    pub(crate) footprint: u64,
}

/// The chunks of the record with `header`, in index order (as many as there are, up to the
/// count the header gives; [`record::assemble`] checks them).
pub(crate) fn read_chunks<'a>(
    blobs: &'a impl ReadableTable<(u64, u32), &'static [u8]>,
    header: &record::Header,
) -> Result<Vec<AccessGuard<'a, &'static [u8]>>> {
    // Point gets, not a range: a full chunk fills its leaf, so a range cursor would also read
    // the next leaf (to find its end bound and to look past the last chunk), doubling the pages
    // a one-chunk get reads. A missing chunk ends the list; `assemble` rejects the short list.
    let seq = header.seq;
    let count = header.chunk_count();
    // The count comes from the header: it sizes nothing before the chunks are found.
    let mut out = Vec::with_capacity(count.min(16) as usize);
    for idx in 0..count {
        match blobs.get((seq, idx))? {
            Some(chunk) => out.push(chunk),
            None => break,
        }
    }
    Ok(out)
}

/// A record to add, encoded.
pub(crate) struct NewRecord<'a> {
    pub(crate) ns: &'a str,
    pub(crate) key: &'a [u8],
    pub(crate) seq: u64,
    pub(crate) encoded: &'a record::Encoded,
    /// Distinct labels, for the index.
    pub(crate) labels: &'a [Box<[u8]>],
}

impl NewRecord<'_> {
    /// The footprint the record will be charged.
    pub(crate) fn footprint(&self) -> u64 {
        entry_footprint(self.ns.len(), self.key.len(), self.encoded.entry.len())
            + self
                .encoded
                .chunks()
                .map(|c| chunk_footprint(c.len()))
                .sum::<u64>()
            + self
                .labels
                .iter()
                .map(|l| label_footprint(self.ns.len(), l.len(), self.key.len()))
                .sum::<u64>()
    }
}

/// The tables of one write transaction.
pub(crate) struct Tables<'t> {
    pub(crate) records: Table<'t, (&'static str, &'static [u8]), &'static [u8]>,
    pub(crate) blobs: Table<'t, (u64, u32), &'static [u8]>,
    pub(crate) order: Table<'t, u64, (&'static str, &'static [u8])>,
    pub(crate) labels: MultimapTable<'t, (&'static str, &'static [u8]), &'static [u8]>,
    pub(crate) generations: Table<'t, &'static str, u64>,
}

impl<'t> Tables<'t> {
    pub(crate) fn open(txn: &'t WriteTransaction) -> Result<Self> {
        Ok(Self {
            records: txn.open_table(RECORDS)?,
            blobs: txn.open_table(BLOBS)?,
            order: txn.open_table(ORDER)?,
            labels: txn.open_multimap_table(LABELS)?,
            generations: txn.open_table(GENERATIONS)?,
        })
    }

    /// The generation of `ns` (0 if never bumped).
    pub(crate) fn generation(&self, ns: &str) -> Result<u64> {
        Ok(self.generations.get(ns)?.map_or(0, |g| g.value()))
    }

    /// Adds `rec` (no record of its key may exist) and charges it to `totals`.
    pub(crate) fn insert(&mut self, rec: &NewRecord<'_>, totals: &mut Totals) -> Result<()> {
        let (ns, key) = (rec.ns, rec.key);
        self.records
            .insert((ns, key), rec.encoded.entry.as_slice())?;
        for (i, chunk) in (0u32..).zip(rec.encoded.chunks()) {
            self.blobs.insert((rec.seq, i), chunk)?;
        }
        self.order.insert(rec.seq, (ns, key))?;
        for label in rec.labels {
            self.labels.insert((ns, &**label), key)?;
        }
        totals.live += accounted_size(
            ns,
            key,
            rec.encoded.entry.len(),
            rec.encoded.chunked.len() as u64,
        );
        totals.footprint += rec.footprint();
        Ok(())
    }

    /// Removes the record of `(ns, key)` if there is one and `pred` holds for its entry; returns
    /// whether it did.
    pub(crate) fn remove(
        &mut self,
        ns: &str,
        key: &[u8],
        totals: &mut Totals,
        pred: impl FnOnce(&[u8]) -> bool,
    ) -> Result<bool> {
        let entry = self
            .records
            .get((ns, key))?
            .map(|e| e.value().to_vec())
            .filter(|e| pred(e));
        match entry {
            None => Ok(false),
            Some(entry) => self
                .remove_entry(ns, key, &entry, None, totals)
                .map(|()| true),
        }
    }

    /// Removes the record of `(ns, key)`, whose entry is `entry`, with its chunks, order row and
    /// label rows, and subtracts what it was charged. `order_seq` is the sequence number of an
    /// order row naming the key that the caller has removed already (eviction).
    fn remove_entry(
        &mut self,
        ns: &str,
        key: &[u8],
        entry: &[u8],
        order_seq: Option<u64>,
        totals: &mut Totals,
    ) -> Result<()> {
        self.records.remove((ns, key))?;
        let verified = record::verify_entry(ns, key, entry).ok();
        // The chunks' sequence number: the verified header's, or one the order table confirms.
        let seq = match (&verified, record::peek_header(entry)) {
            (Some(v), _) => Some(v.header.seq),
            (None, Ok(h)) if order_seq == Some(h.seq) || self.names(h.seq, ns, key)? => Some(h.seq),
            _ => order_seq,
        };
        if let Some(seq) = seq {
            if order_seq != Some(seq) && self.names(seq, ns, key)? {
                self.order.remove(seq)?;
            }
            self.remove_chunks(seq, totals)?;
        }
        let mut labels_footprint = 0;
        if let Some(view) = &verified {
            for label in view.labels() {
                if self.labels.remove((ns, label), key)? {
                    labels_footprint += label_footprint(ns.len(), label.len(), key.len());
                }
            }
        }
        let charged = entry_footprint(ns.len(), key.len(), entry.len()) + labels_footprint;
        totals.live = totals
            .live
            .saturating_sub(accounted_size(ns, key, entry.len(), 0));
        totals.footprint = totals.footprint.saturating_sub(charged);
        Ok(())
    }

    /// Removes the record of `(ns, key)` if it [`Tables::is_corrupt`]; returns whether it did.
    pub(crate) fn remove_if_corrupt(
        &mut self,
        ns: &str,
        key: &[u8],
        max_value: u64,
        totals: &mut Totals,
    ) -> Result<bool> {
        Ok(self.is_corrupt(ns, key, max_value)? && self.remove(ns, key, totals, |_| true)?)
    }

    /// Whether the record of `(ns, key)` exists and fails verification, chunks included, or
    /// declares a value over `max_value` bytes.
    pub(crate) fn is_corrupt(&self, ns: &str, key: &[u8], max_value: u64) -> Result<bool> {
        let Some(entry) = self.records.get((ns, key))? else {
            return Ok(false);
        };
        let Ok(view) = record::verify_entry(ns, key, entry.value()) else {
            return Ok(true);
        };
        if record::check_size(&view.header, max_value).is_err() {
            return Ok(true);
        }
        let chunks = read_chunks(&self.blobs, &view.header)?;
        Ok(record::assemble(&view, chunks.iter().map(AccessGuard::value)).is_err())
    }

    /// Removes the chunks of record `seq` and subtracts them from `totals`.
    fn remove_chunks(&mut self, seq: u64, totals: &mut Totals) -> Result<()> {
        for i in 0u32.. {
            let Some(chunk) = self.blobs.remove((seq, i))? else {
                break;
            };
            totals.live = totals.live.saturating_sub(chunk.value().len() as u64);
            totals.footprint = totals
                .footprint
                .saturating_sub(chunk_footprint(chunk.value().len()));
        }
        Ok(())
    }

    /// Whether order row `seq` names `(ns, key)`.
    fn names(&self, seq: u64, ns: &str, key: &[u8]) -> Result<bool> {
        Ok(self
            .order
            .get(seq)?
            .is_some_and(|row| row.value() == (ns, key)))
    }

    /// Removes records until `totals.footprint + incoming <= limit` or no record is left,
    /// choosing each by `hand`'s policy (SIEVE over insertion order with `visited`, or FIFO;
    /// see [`crate::eviction`]); calls `evicted` with each removed key and returns how many it
    /// removed.
    pub(crate) fn evict_until(
        &mut self,
        totals: &mut Totals,
        incoming: u64,
        limit: u64,
        hand: &mut Hand,
        visited: &VisitedBits,
        mut evicted: impl FnMut(&str, &[u8]),
    ) -> Result<u64> {
        let mut count = 0;
        while totals.footprint.saturating_add(incoming) > limit {
            let Some((ns, key)) = self.remove_victim(totals, hand, visited)? else {
                break;
            };
            evicted(&ns, &key);
            count += 1;
        }
        Ok(count)
    }

    /// The first order row at or after sequence number `from`.
    fn order_row_from(&self, from: u64) -> Result<Option<(u64, String, Vec<u8>)>> {
        let mut rows = self.order.range(from..)?;
        let Some(row) = rows.next() else {
            return Ok(None);
        };
        let (s, k) = row?;
        let (ns, key) = k.value();
        Ok(Some((s.value(), ns.to_owned(), key.to_vec())))
    }

    /// Removes the record the policy picks and returns its key, or `None` if there are no
    /// records. FIFO takes the oldest. SIEVE starts at the hand, clears and passes records
    /// marked visited, takes the first unmarked one and leaves the hand after it; past the
    /// newest record it wraps to the oldest (once: by then every mark it passed is cleared).
    ///
    /// An order row whose record is gone, or whose record carries another sequence number that
    /// has its own row (the key was rewritten since), is stale and is dropped, with any chunks
    /// of its sequence number (left behind if the record's header had rotted when it was
    /// removed). A record whose own row cannot be found (its header rotted) goes with whichever
    /// row names its key. If the order table runs dry while records remain, records go in key
    /// order.
    fn remove_victim(
        &mut self,
        totals: &mut Totals,
        hand: &mut Hand,
        visited: &VisitedBits,
    ) -> Result<Option<(String, Vec<u8>)>> {
        let sieve = hand.policy == EvictionPolicy::Sieve;
        let mut wrapped = false;
        loop {
            let from = if sieve { hand.at } else { 0 };
            let Some((seq, ns, key)) = self.order_row_from(from)? else {
                if from > 0 && !wrapped {
                    hand.at = 0;
                    wrapped = true;
                    continue;
                }
                break;
            };
            if sieve {
                hand.at = seq + 1;
                if visited.take(seq) {
                    continue;
                }
            }
            self.order.remove(seq)?;
            let entry = self
                .records
                .get((ns.as_str(), key.as_slice()))?
                .map(|e| e.value().to_vec());
            let Some(entry) = entry else {
                self.remove_chunks(seq, totals)?;
                continue;
            };
            if let Ok(h) = record::peek_header(&entry)
                && h.seq != seq
                && self.names(h.seq, &ns, &key)?
            {
                self.remove_chunks(seq, totals)?;
                continue;
            }
            self.remove_entry(&ns, &key, &entry, Some(seq), totals)?;
            return Ok(Some((ns, key)));
        }
        let first = self.records.first()?.map(|(k, v)| {
            let (ns, key) = k.value();
            (ns.to_owned(), key.to_vec(), v.value().to_vec())
        });
        let Some((ns, key, entry)) = first else {
            return Ok(None);
        };
        self.remove_entry(&ns, &key, &entry, None, totals)?;
        Ok(Some((ns, key)))
    }
}

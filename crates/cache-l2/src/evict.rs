//! The order table: FIFO eviction to keep the budget, and order-entry upkeep.
//!
//! Headers are read here *before* their checksum is verified (verifying means hashing the whole
//! payload), so a sequence number read from a header may be rotten. It is never trusted to name
//! another key's order entry: an entry is removed only if it names the record's own key.

use redb::{ReadableTable, Table};

use crate::Result;
use crate::record::{self, accounted_size};

type Records<'t> = Table<'t, (&'static str, &'static [u8]), &'static [u8]>;
type Order<'t> = Table<'t, u64, (&'static str, &'static [u8])>;

/// Whether order entry `seq` names `(namespace, key)`.
fn names(order: &Order<'_>, seq: u64, namespace: &str, key: &[u8]) -> Result<bool> {
    Ok(order
        .get(seq)?
        .is_some_and(|entry| entry.value() == (namespace, key)))
}

/// Removes order entry `seq` if it names `(namespace, key)`.
pub(crate) fn remove_order_entry(
    order: &mut Order<'_>,
    seq: u64,
    namespace: &str,
    key: &[u8],
) -> Result<()> {
    if names(order, seq, namespace, key)? {
        order.remove(seq)?;
    }
    Ok(())
}

/// Deletes records, oldest insertion first, until `*live + incoming <= max`; calls `evicted`
/// with each deleted key and returns how many it deleted. `*live` is kept up to date; if no
/// record is left, nothing is live.
pub(crate) fn evict_until(
    records: &mut Records<'_>,
    order: &mut Order<'_>,
    live: &mut u64,
    incoming: u64,
    max: u64,
    mut evicted: impl FnMut(&str, &[u8]),
) -> Result<u64> {
    let mut count = 0;
    while live.saturating_add(incoming) > max {
        let Some((ns, key, len)) = remove_oldest(records, order)? else {
            *live = 0;
            break;
        };
        *live = live.saturating_sub(accounted_size(&ns, &key, len));
        evicted(&ns, &key);
        count += 1;
    }
    Ok(count)
}

/// Removes the oldest record and returns its key and record length, or `None` if there are no
/// records.
///
/// An order entry whose record is gone, or whose record carries another sequence number that has
/// its own entry (the key was rewritten since), is stale and is dropped. A record whose own entry
/// cannot be found (its header rotted) goes with whichever entry names its key. If the order
/// table runs dry while records remain, records go in key order.
fn remove_oldest(
    records: &mut Records<'_>,
    order: &mut Order<'_>,
) -> Result<Option<(String, Vec<u8>, usize)>> {
    loop {
        let popped = order.pop_first()?.map(|(s, k)| {
            let (ns, key) = k.value();
            (s.value(), ns.to_owned(), key.to_vec())
        });
        let Some((seq, ns, key)) = popped else { break };
        let current = records.get((ns.as_str(), key.as_slice()))?.map(|r| {
            (
                record::peek_header(r.value()).map(|h| h.seq),
                r.value().len(),
            )
        });
        match current {
            None => {}
            Some((Ok(s), _)) if s != seq && names(order, s, &ns, &key)? => {}
            Some((_, len)) => {
                records.remove((ns.as_str(), key.as_slice()))?;
                return Ok(Some((ns, key, len)));
            }
        }
    }
    Ok(records.pop_first()?.map(|(k, v)| {
        let (ns, key) = k.value();
        (ns.to_owned(), key.to_vec(), v.value().len())
    }))
}

//! Keeping the store within its budget: FIFO eviction over the order table.

use redb::{ReadableTable, Table};

use crate::Result;
use crate::record::{self, accounted_size};

/// Deletes records from the oldest insertion on until `*live + incoming <= max`, and returns how
/// many it deleted. `*live` is kept up to date.
///
/// Order entries whose record is gone or carries another sequence number (the key was
/// rewritten since) are stale: they are dropped without counting.
pub(crate) fn evict_until(
    records: &mut Table<(&str, &[u8]), &[u8]>,
    order: &mut Table<u64, (&str, &[u8])>,
    live: &mut u64,
    incoming: u64,
    max: u64,
) -> Result<u64> {
    let mut evicted = 0;
    while *live + incoming > max {
        let Some((seq, (ns, key))) = order.pop_first()?.map(|(s, k)| {
            let (ns, key) = k.value();
            (s.value(), (ns.to_owned(), key.to_vec()))
        }) else {
            // Nothing left to evict: the counter drifted above the records (it is rebuilt by
            // `Store::validate` in tests). Let the caller's write proceed.
            *live = 0;
            break;
        };
        let current = records.get((ns.as_str(), key.as_slice()))?.map(|r| {
            (
                record::peek_header(r.value()).map(|h| h.seq),
                r.value().len(),
            )
        });
        match current {
            // Stale: the key was rewritten after this entry was made.
            Some((Ok(s), _)) if s != seq => {}
            // Current, or with an unreadable header (then no other order entry can name it).
            Some((_, len)) => {
                records.remove((ns.as_str(), key.as_slice()))?;
                *live = live.saturating_sub(accounted_size(&ns, &key, len));
                evicted += 1;
            }
            None => {}
        }
    }
    Ok(evicted)
}

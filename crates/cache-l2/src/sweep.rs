//! The background sweep: after a namespace flush (a generation bump), the idle writer thread
//! removes the namespace's dead records (older generation, or unreadable) a batch per
//! undurable commit. A crash can bring swept records back, dead as before.

use redb::{Database, ReadableTable};

use crate::Result;
use crate::budget::PAGE;
use crate::record;
use crate::store::Inner;
use crate::tables::{Tables, Totals};
use crate::writer::{WriterState, commit, write_meta};

/// A namespace whose records of older generations are being removed.
#[derive(Debug, Clone)]
pub(crate) struct Sweep {
    pub(crate) ns: String,
    /// Resume after this key.
    pub(crate) after: Option<Vec<u8>>,
}

/// Records of an older generation removed per sweep commit.
const SWEEP_BATCH: usize = 256;

/// Removes up to [`SWEEP_BATCH`] dead records (older generation, or unreadable) of the first
/// namespace being swept, in one undurable commit: a crash can bring them back, dead as
/// before. Returns whether there is more to do.
pub(crate) fn sweep_step(inner: &Inner) -> bool {
    let mut w = inner.writer.lock();
    let Some(sweep) = w.sweeps.first().cloned() else {
        return false;
    };
    match inner.with_db(|db| sweep_once(db, &w, &sweep)) {
        Ok((totals, next, removed)) => {
            w.totals = totals;
            let id = w.commit_id + 1;
            w.committed(id, false, removed * PAGE, 0);
            inner.totals_mirror(totals);
            inner.count_swept(removed);
            match next {
                Some(after) => w.sweeps[0].after = Some(after),
                None => {
                    w.sweeps.remove(0);
                }
            }
        }
        // Left for the next open; the failure itself shows in the next write's error.
        Err(_) => {
            w.sweeps.remove(0);
        }
    }
    !w.sweeps.is_empty()
}

/// One sweep commit: `(totals after, key to resume after or None if done, records removed)`.
fn sweep_once(
    db: &Database,
    w: &WriterState,
    sweep: &Sweep,
) -> Result<(Totals, Option<Vec<u8>>, u64)> {
    let mut totals = w.totals;
    let txn = db.begin_write()?;
    let (dead, next) = {
        let t = Tables::open(&txn)?;
        let current = t.generation(&sweep.ns)?;
        let ns = sweep.ns.as_str();
        let start = sweep.after.as_deref().unwrap_or(&[]);
        let mut dead = Vec::new();
        let mut resume = None;
        let mut scanned = 0;
        for row in t.records.range((ns, start)..)? {
            let (k, v) = row?;
            let (row_ns, key) = k.value();
            if row_ns != ns {
                break;
            }
            if sweep.after.as_deref() == Some(key) {
                continue;
            }
            let alive = record::peek_header(v.value()).is_ok_and(|h| h.generation >= current);
            if !alive {
                dead.push(key.to_vec());
            }
            scanned += 1;
            if dead.len() >= SWEEP_BATCH || scanned >= 16 * SWEEP_BATCH {
                resume = Some(key.to_vec());
                break;
            }
        }
        (dead, resume)
    };
    let mut removed = 0;
    {
        let mut t = Tables::open(&txn)?;
        for key in &dead {
            let gone = t.remove(&sweep.ns, key, &mut totals, |_| true)?;
            removed += u64::from(gone);
        }
        drop(t);
        write_meta(&txn, totals, None, w.commit_id + 1)?;
    }
    commit(txn, false)?;
    Ok((totals, next, removed))
}

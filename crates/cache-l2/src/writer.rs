//! The writer thread: group commit of queued writes.
//!
//! Every write (put, delete, flush) is a [`Request`] sent over a crossbeam channel to one
//! thread, which gathers what is queued into a batch, applies the batch in one redb write
//! transaction and commits it once, then answers every waiter of the batch. While it commits,
//! new requests queue up and form the next batch, so concurrent writers share commits (and
//! fsyncs) instead of taking turns.
//!
//! A batch is cut when it holds [`GroupCommitOptions::max_ops`] writes or
//! [`GroupCommitOptions::max_bytes`] of values, when the queue is empty and some request of the
//! batch has a caller waiting, or [`GroupCommitOptions::max_delay_ms`] after its first request.
//!
//! A commit is durable (`Durability::Immediate`) when anything in it must not be undone by a
//! crash: a delete, an overwrite, a write of a key that an undurable commit removed, a request
//! whose caller asked for durability, or a flush; and in any case after
//! [`MAX_UNSYNCED_COMMITS`] undurable commits or [`MAX_UNSYNCED_AGE`]. Otherwise it is
//! `Durability::None`, which a crash rolls back to the last durable commit: only fresh inserts
//! can be lost that way, and they come back as misses.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender, TryRecvError};
use redb::{Durability, ReadableTable, WriteTransaction};

use crate::evict::{evict_until, remove_order_entry};
use crate::record::{self, accounted_size};
use crate::schema::{META, META_LIVE_BYTES, META_NEXT_SEQ, ORDER, RECORDS};
use crate::store::{Inner, pending_key};
use crate::{GroupCommitOptions, L2Error, Result};

/// After this many undurable commits in a row, the next commit is durable. Bounds what a crash
/// can take back and lets redb reuse freed pages (it frees them at durable commits).
pub(crate) const MAX_UNSYNCED_COMMITS: u32 = 256;

/// The longest an undurable commit stays the newest before a durable one follows (checked at
/// the next batch).
pub(crate) const MAX_UNSYNCED_AGE: Duration = Duration::from_secs(1);

/// A durable commit follows once undurable ones have written this fraction (1/n) of the
/// budget, and a batch holds at most that much: freed pages are reused only after a durable
/// commit, so this bounds the file's growth between them.
pub(crate) const UNSYNCED_BYTES_DIVISOR: u64 = 16;

/// One write, as queued.
#[derive(Debug)]
pub(crate) enum Op {
    /// Store `record` (already encoded, with sequence number `seq`) under `(ns, key)`.
    Put {
        ns: Box<str>,
        key: Box<[u8]>,
        record: Vec<u8>,
        seq: u64,
        /// The value's length before compression, in bytes.
        value_len: u64,
        /// Bytes compression saved (0 if stored raw).
        saved: u64,
    },
    /// Remove `(ns, key)`.
    Delete { ns: Box<str>, key: Box<[u8]> },
    /// Remove `(ns, key)` if its record still fails verification (found corrupt by a get).
    DeleteIfCorrupt { ns: Box<str>, key: Box<[u8]> },
    /// Make everything before it durable.
    Flush,
}

impl Op {
    fn key(&self) -> Option<(&str, &[u8])> {
        match self {
            Self::Put { ns, key, .. }
            | Self::Delete { ns, key }
            | Self::DeleteIfCorrupt { ns, key } => Some((ns, key)),
            Self::Flush => None,
        }
    }

    /// Value bytes the op holds while queued.
    pub(crate) fn value_bytes(&self) -> u64 {
        match self {
            Self::Put { value_len, .. } => *value_len,
            _ => 0,
        }
    }
}

/// What applying one request did, as told to its waiter.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Applied {
    /// A put replaced a record, or a delete removed one.
    pub(crate) found: bool,
    /// Records evicted to make room for this put.
    pub(crate) evicted: u64,
    /// The commit was durable.
    pub(crate) durable: bool,
}

/// A waiter's answer: what happened, or why the batch failed (shared by all its waiters).
pub(crate) type Answer = std::result::Result<Applied, Arc<str>>;

/// A queued write.
#[derive(Debug)]
pub(crate) struct Request {
    pub(crate) op: Op,
    /// Matches the key's pending entry (see [`crate::store::Pending`]).
    pub(crate) id: u64,
    /// The caller waits for the commit and must not be answered before it is durable.
    pub(crate) durable: bool,
    /// Where the caller waits, if it does.
    pub(crate) reply: Option<Sender<Answer>>,
}

/// The writer thread's own state; [`Inner::writer`] guards it so `validate` can read it.
#[derive(Debug)]
pub(crate) struct WriterState {
    /// Accounted bytes of live records, as of the last commit.
    pub(crate) live_bytes: u64,
    /// One more than the highest sequence number committed.
    pub(crate) next_seq: u64,
    /// Commits since the last durable one.
    unsynced_commits: u32,
    /// When the first commit after the last durable one happened.
    unsynced_since: Option<Instant>,
    /// Record bytes written by commits since the last durable one.
    unsynced_bytes: u64,
}

impl WriterState {
    pub(crate) fn new(live_bytes: u64, next_seq: u64) -> Self {
        Self {
            live_bytes,
            next_seq,
            unsynced_commits: 0,
            unsynced_since: None,
            unsynced_bytes: 0,
        }
    }

    /// Whether the next commit must be durable whatever it holds. redb reuses the pages a
    /// commit frees only after a durable commit, so besides bounding what a crash can take back
    /// (count and age), this bounds how far the file grows between durable commits: to
    /// [`UNSYNCED_BYTES_DIVISOR`]ths of the budget.
    fn sync_due(&self, max_bytes: u64) -> bool {
        self.unsynced_commits + 1 >= MAX_UNSYNCED_COMMITS
            || self.unsynced_bytes >= max_bytes / UNSYNCED_BYTES_DIVISOR
            || self
                .unsynced_since
                .is_some_and(|t| t.elapsed() >= MAX_UNSYNCED_AGE)
    }
}

/// The writer thread's loop: gather, apply, commit, answer; until every sender is gone.
pub(crate) fn run(inner: &Inner, rx: &Receiver<Request>, options: GroupCommitOptions) {
    let max_delay = Duration::from_millis(options.max_delay_ms);
    // A full queue cannot grow: waiting for more would only keep its writers blocked.
    let max_ops = options.max_ops.min(options.queue_capacity);
    let max_bytes = options
        .max_bytes
        .as_u64()
        .min(options.queue_max_bytes.as_u64())
        .min(inner.max_bytes / UNSYNCED_BYTES_DIVISOR);
    while let Ok(first) = rx.recv() {
        let deadline = Instant::now() + max_delay;
        let mut bytes = first.op.value_bytes();
        let mut batch = vec![first];
        while batch.len() < max_ops && bytes < max_bytes {
            let next = match rx.try_recv() {
                Ok(r) => r,
                Err(TryRecvError::Disconnected) => break,
                Err(TryRecvError::Empty) => {
                    if batch.iter().any(|r| r.reply.is_some()) {
                        break;
                    }
                    match rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
                        Ok(r) => r,
                        Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => break,
                    }
                }
            };
            bytes += next.op.value_bytes();
            batch.push(next);
        }
        commit_batch(inner, batch);
    }
}

/// Applies `batch` in one transaction, commits it and answers its waiters.
fn commit_batch(inner: &Inner, batch: Vec<Request>) {
    let mut w = inner.writer.lock();
    let outcome = apply(inner, &mut w, &batch);
    let n = batch.len();
    let bytes = batch.iter().map(|r| r.op.value_bytes()).sum();
    match outcome {
        Ok(done) => {
            w.live_bytes = done.live;
            w.next_seq = done.next_seq;
            if done.durable {
                w.unsynced_commits = 0;
                w.unsynced_since = None;
                w.unsynced_bytes = 0;
            } else {
                w.unsynced_commits += 1;
                w.unsynced_since.get_or_insert_with(Instant::now);
                w.unsynced_bytes += done.written;
            }
            inner.live_bytes_mirror(done.live);
            drop(w);
            inner.finish_batch(&batch, done.durable);
            inner.count_commit(done.durable, &done.applied, &batch);
            // Before any waiter wakes, so what it reads next (stats, queue room) is settled.
            inner.release(n, bytes);
            for (req, applied) in batch.into_iter().zip(done.applied) {
                if let Some(reply) = req.reply {
                    // A waiter that gave up (its thread ended) is no error.
                    let _ = reply.send(Ok(applied));
                }
            }
        }
        Err(e) => {
            drop(w);
            let reason: Arc<str> = Arc::from(e.to_string());
            inner.fail_batch(&batch, &e);
            inner.release(n, bytes);
            for req in batch {
                if let Some(reply) = req.reply {
                    let _ = reply.send(Err(Arc::clone(&reason)));
                }
            }
        }
    }
}

/// What a successful batch did.
struct Done {
    applied: Vec<Applied>,
    live: u64,
    next_seq: u64,
    durable: bool,
    /// Record bytes the batch wrote.
    written: u64,
}

fn apply(inner: &Inner, w: &mut WriterState, batch: &[Request]) -> Result<Done> {
    let mut live = w.live_bytes;
    let mut next_seq = w.next_seq;
    let mut removed = Vec::new();
    let mut written = 0;
    let mut applied = Vec::with_capacity(batch.len());
    let mut durable =
        w.sync_due(inner.max_bytes) || batch.iter().any(|r| r.durable) || inner.any_unsynced(batch);
    let txn = inner.db.begin_write()?;
    {
        let mut records = txn.open_table(RECORDS)?;
        let mut order = txn.open_table(ORDER)?;
        for req in batch {
            let mut a = Applied::default();
            match &req.op {
                Op::Put {
                    ns,
                    key,
                    record,
                    seq,
                    ..
                } => {
                    let (ns, key) = (&**ns, &**key);
                    let size = accounted_size(ns, key, record.len());
                    if let Some((header, len)) = records
                        .remove((ns, key))?
                        .map(|r| (record::peek_header(r.value()).ok(), r.value().len()))
                    {
                        if let Some(h) = header {
                            remove_order_entry(&mut order, h.seq, ns, key)?;
                        }
                        live = live.saturating_sub(accounted_size(ns, key, len));
                        a.found = true;
                        // An overwrite must be durable: a crash must not bring the old value back.
                        durable = true;
                    }
                    a.evicted = evict_until(
                        &mut records,
                        &mut order,
                        &mut live,
                        size,
                        inner.max_bytes,
                        |ns, k| removed.push(inner.key_hash(ns, k)),
                    )?;
                    records.insert((ns, key), record.as_slice())?;
                    written += size;
                    order.insert(*seq, (ns, key))?;
                    live += size;
                    next_seq = next_seq.max(seq + 1);
                }
                Op::Delete { ns, key } => {
                    a.found = remove(&mut records, &mut order, &mut live, ns, key, |_| true)?;
                    durable = true;
                }
                Op::DeleteIfCorrupt { ns, key } => {
                    a.found = remove(&mut records, &mut order, &mut live, ns, key, |rec| {
                        record::verify(ns, key, rec).is_err()
                    })?;
                    if a.found {
                        removed.push(inner.key_hash(ns, key));
                    }
                }
                Op::Flush => durable = true,
            }
            applied.push(a);
        }
        let mut meta = txn.open_table(META)?;
        meta.insert(META_LIVE_BYTES, live)?;
        meta.insert(META_NEXT_SEQ, next_seq)?;
    }
    if !removed.is_empty() {
        // A key this batch evicted and also writes (say a put of K after another put evicted
        // K's durable record) looks like a fresh insert when its put is applied, yet an
        // undurable commit would let a crash bring K's old record back.
        let evicted: HashSet<u64> = removed.iter().copied().collect();
        durable |= writer_hashes(inner, batch).any(|h| evicted.contains(&h));
        if !durable {
            // Recorded before the commit makes the removals visible: an async put that finds
            // the record gone must also find it in the unsynced set.
            inner.note_unsynced_removals(&removed);
        }
    }
    commit(txn, durable)?;
    for a in &mut applied {
        a.durable = durable;
    }
    Ok(Done {
        applied,
        live,
        next_seq,
        durable,
        written,
    })
}

type Records<'t> = redb::Table<'t, (&'static str, &'static [u8]), &'static [u8]>;
type Order<'t> = redb::Table<'t, u64, (&'static str, &'static [u8])>;

/// Removes the record of `(ns, key)` if `pred` holds for its bytes, with its order entry;
/// returns whether it did.
fn remove(
    records: &mut Records<'_>,
    order: &mut Order<'_>,
    live: &mut u64,
    ns: &str,
    key: &[u8],
    pred: impl FnOnce(&[u8]) -> bool,
) -> Result<bool> {
    let target = records
        .get((ns, key))?
        .filter(|r| pred(r.value()))
        .map(|r| (record::peek_header(r.value()).ok(), r.value().len()));
    let Some((header, len)) = target else {
        return Ok(false);
    };
    records.remove((ns, key))?;
    if let Some(h) = header {
        remove_order_entry(order, h.seq, ns, key)?;
    }
    *live = live.saturating_sub(accounted_size(ns, key, len));
    Ok(true)
}

/// Commits `txn`, durably (`fsync` before returning) or not (a crash may take it back).
pub(crate) fn commit(mut txn: WriteTransaction, durable: bool) -> Result<()> {
    let level = if durable {
        Durability::Immediate
    } else {
        Durability::None
    };
    txn.set_durability(level)
        .map_err(|e| L2Error::Storage(redb::Error::from(e)))?;
    txn.commit()?;
    Ok(())
}

/// The pending-map keys of a batch's keyed requests, with their ids.
pub(crate) fn batch_keys(batch: &[Request]) -> impl Iterator<Item = (Vec<u8>, u64)> + '_ {
    batch
        .iter()
        .filter_map(|r| r.op.key().map(|(ns, k)| (pending_key(ns, k), r.id)))
}

/// Hashes of the keys a batch writes, for the unsynced-removal check.
pub(crate) fn writer_hashes<'b>(
    inner: &'b Inner,
    batch: &'b [Request],
) -> impl Iterator<Item = u64> + 'b {
    batch
        .iter()
        .filter(|r| !matches!(r.op, Op::DeleteIfCorrupt { .. }))
        .filter_map(|r| r.op.key().map(|(ns, k)| inner.key_hash(ns, k)))
}

//! The writer thread: group commit of queued writes.
//!
//! Every write (put, delete, label invalidation, namespace flush, flush) is a [`Request`] sent
//! over a crossbeam channel to one thread, which gathers what is queued into a batch, applies
//! the batch in one redb write transaction and commits it once, then answers every waiter of
//! the batch. While it commits, new requests queue up and form the next batch, so concurrent
//! writers share commits (and fsyncs) instead of taking turns. When the queue is empty it
//! sweeps dead records of flushed namespaces.
//!
//! A batch is cut when it holds [`GroupCommitOptions::max_ops`] writes,
//! [`GroupCommitOptions::max_bytes`] of values or 1/32 of the file capacity in footprint, when
//! the queue is empty and some request of the batch has a caller waiting, or
//! [`GroupCommitOptions::max_delay_ms`] after its first request.
//!
//! A commit is durable (`Durability::Immediate`) when anything in it must not be undone by a
//! crash: a delete, a label invalidation, a namespace flush, an overwrite, a write of a key that
//! an undurable commit removed, a request whose caller asked for durability, or a flush; and in
//! any case after [`MAX_UNSYNCED_COMMITS`] undurable commits, [`MAX_UNSYNCED_AGE`], or 1/32 of
//! the file capacity in footprint. Otherwise it is `Durability::None`, which a crash rolls back
//! to the last durable commit: only fresh inserts (and sweeps) can be lost that way, and they
//! come back as misses (dead records).

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender, TryRecvError};
use redb::{Database, Durability, ReadableTable, ReadableTableMetadata, WriteTransaction};

use crate::budget::{PAGE, footprint_limit, label_footprint, transient_limit};
use crate::eviction::{EvictionPolicy, Hand, OnFull};
use crate::record;
use crate::schema::{META, META_COMMIT_ID, META_FOOTPRINT, META_LIVE_BYTES, META_NEXT_SEQ};
use crate::store::{Inner, pending_key};
use crate::sweep::{Sweep, sweep_step};
use crate::tables::{NewRecord, Tables, Totals};
use crate::{GroupCommitOptions, L2Error, Result};

/// After this many undurable commits in a row, the next commit is durable. Bounds what a crash
/// can take back and lets redb reuse freed pages (it frees them at durable commits).
pub(crate) const MAX_UNSYNCED_COMMITS: u32 = 256;

/// The longest an undurable commit stays the newest before a durable one follows (checked at
/// the next batch).
pub(crate) const MAX_UNSYNCED_AGE: Duration = Duration::from_secs(1);

/// One write, as queued.
#[derive(Debug)]
pub(crate) enum Op {
    /// Store `encoded` (sequence number `seq`) under `(ns, key)`, replacing any record.
    Put {
        ns: Box<str>,
        key: Box<[u8]>,
        encoded: record::Encoded,
        seq: u64,
        /// The namespace generation it was written in: applied only if still current.
        generation: u64,
        /// Its distinct labels, for the index.
        labels: Vec<Box<[u8]>>,
        /// The value's length before compression, in bytes.
        value_len: u64,
        /// Bytes compression saved (0 if stored raw).
        saved: u64,
        /// The footprint it will be charged ([`crate::budget`]).
        footprint: u64,
    },
    /// Remove `(ns, key)`.
    Delete { ns: Box<str>, key: Box<[u8]> },
    /// Remove `(ns, key)` if its record still fails verification (found corrupt by a get).
    DeleteIfCorrupt { ns: Box<str>, key: Box<[u8]> },
    /// Remove every record of `ns` that carries one of `labels`.
    InvalidateLabels {
        ns: Box<str>,
        labels: Vec<Box<[u8]>>,
    },
    /// Remove every record of `ns` whose key starts with `prefix`.
    InvalidatePrefix { ns: Box<str>, prefix: Box<[u8]> },
    /// Start a new generation of `ns`: every record written before is dead.
    BumpGeneration { ns: Box<str> },
    /// Remove every record.
    Clear,
    /// Make everything before it durable.
    Flush,
}

impl Op {
    fn key(&self) -> Option<(&str, &[u8])> {
        match self {
            Self::Put { ns, key, .. }
            | Self::Delete { ns, key }
            | Self::DeleteIfCorrupt { ns, key } => Some((ns, key)),
            Self::InvalidateLabels { .. }
            | Self::InvalidatePrefix { .. }
            | Self::BumpGeneration { .. }
            | Self::Clear
            | Self::Flush => None,
        }
    }

    /// Value bytes the op holds while queued.
    pub(crate) fn value_bytes(&self) -> u64 {
        match self {
            Self::Put { value_len, .. } => *value_len,
            _ => 0,
        }
    }

    /// An upper bound of the file pages the op makes redb allocate before a durable commit
    /// lets it reuse what it frees: the put's footprint, and a copied leaf page either way.
    fn transient(&self) -> u64 {
        match self {
            Self::Put { footprint, .. } => footprint + PAGE,
            _ => PAGE,
        }
    }

    /// Whether a crash must not undo the op: it is acknowledged only once durable.
    fn needs_durable(&self) -> bool {
        matches!(
            self,
            Self::Delete { .. }
                | Self::InvalidateLabels { .. }
                | Self::InvalidatePrefix { .. }
                | Self::BumpGeneration { .. }
                | Self::Clear
                | Self::Flush
        )
    }
}

/// What applying one request did, as told to its waiter.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Applied {
    /// A put replaced a record, or a delete removed one.
    pub(crate) found: bool,
    /// Records evicted to make room for this put.
    pub(crate) evicted: u64,
    /// Records a label or prefix invalidation or a clear removed.
    pub(crate) removed: u64,
    /// The keys of the records a label or prefix invalidation removed.
    pub(crate) removed_keys: Vec<Box<[u8]>>,
    /// The namespace's new generation, after a bump.
    pub(crate) generation: u64,
    /// The commit was durable.
    pub(crate) durable: bool,
    /// A put refused because the store was full ([`OnFull::Reject`]).
    pub(crate) rejected: bool,
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
    /// Live bytes and footprint, as of the last commit.
    pub(crate) totals: Totals,
    /// One more than the highest sequence number committed.
    pub(crate) next_seq: u64,
    /// The id of the last commit (persisted with it, see [`META_COMMIT_ID`]).
    pub(crate) commit_id: u64,
    /// `(commit id, puts it applied)` of each commit since the last durable one that applied
    /// puts: what a reopen that rolls back to the last durable commit loses.
    unsynced_puts: Vec<(u64, u64)>,
    /// Commits since the last durable one.
    unsynced_commits: u32,
    /// When the first commit after the last durable one happened.
    unsynced_since: Option<Instant>,
    /// Transient footprint ([`Op::transient`]) of commits since the last durable one.
    unsynced_bytes: u64,
    /// Namespaces with dead records left to remove.
    pub(crate) sweeps: Vec<Sweep>,
    /// The eviction policy and the SIEVE hand.
    hand: Hand,
}

impl WriterState {
    pub(crate) fn new(
        totals: Totals,
        next_seq: u64,
        commit_id: u64,
        sweep: Vec<String>,
        policy: EvictionPolicy,
    ) -> Self {
        Self {
            hand: Hand { policy, at: 0 },
            totals,
            next_seq,
            commit_id,
            unsynced_puts: Vec::new(),
            unsynced_commits: 0,
            unsynced_since: None,
            unsynced_bytes: 0,
            sweeps: sweep
                .into_iter()
                .map(|ns| Sweep { ns, after: None })
                .collect(),
        }
    }

    /// Whether the next commit must be durable whatever it holds. redb reuses the pages a
    /// commit frees only after a durable commit, so besides bounding what a crash can take back
    /// (count and age), this bounds how far the file grows between durable commits.
    fn sync_due(&self, transient_limit: u64) -> bool {
        self.unsynced_commits + 1 >= MAX_UNSYNCED_COMMITS
            || self.unsynced_bytes >= transient_limit
            || self
                .unsynced_since
                .is_some_and(|t| t.elapsed() >= MAX_UNSYNCED_AGE)
    }

    /// Notes commit `commit_id`, which applied `puts` puts.
    pub(crate) fn committed(&mut self, commit_id: u64, durable: bool, transient: u64, puts: u64) {
        self.commit_id = commit_id;
        if durable {
            self.unsynced_commits = 0;
            self.unsynced_since = None;
            self.unsynced_bytes = 0;
            self.unsynced_puts.clear();
        } else {
            self.unsynced_commits += 1;
            self.unsynced_since.get_or_insert_with(Instant::now);
            self.unsynced_bytes += transient;
            if puts > 0 {
                self.unsynced_puts.push((commit_id, puts));
            }
        }
    }

    /// After a reopen whose file holds commits up to `kept`: the puts of later commits, which
    /// the reopen rolled back.
    pub(crate) fn rolled_back(&mut self, kept: u64) -> u64 {
        self.unsynced_puts
            .drain(..)
            .filter(|(id, _)| *id > kept)
            .map(|(_, puts)| puts)
            .sum()
    }

    /// Takes over the state of a reopened file (the hand and the eviction policy stay).
    pub(crate) fn reload(
        &mut self,
        totals: Totals,
        next_seq: u64,
        commit_id: u64,
        sweep: Vec<String>,
    ) {
        self.totals = totals;
        self.next_seq = next_seq;
        self.commit_id = commit_id;
        self.unsynced_puts.clear();
        self.unsynced_commits = 0;
        self.unsynced_since = None;
        self.unsynced_bytes = 0;
        self.sweeps = sweep
            .into_iter()
            .map(|ns| Sweep { ns, after: None })
            .collect();
    }
}

/// The writer thread's loop: gather, apply, commit, answer; sweep dead records while idle;
/// recover from faults (see [`crate::fault`]); until every sender is gone. `wake` carries the
/// faults readers note, so recovery starts at once.
pub(crate) fn run(
    inner: &Inner,
    rx: &Receiver<Request>,
    wake: &Receiver<()>,
    options: GroupCommitOptions,
) {
    let max_delay = Duration::from_millis(options.max_delay_ms);
    // A full queue cannot grow: waiting for more would only keep its writers blocked.
    let max_ops = options.max_ops.min(options.queue_capacity);
    let max_bytes = options
        .max_bytes
        .as_u64()
        .min(options.queue_max_bytes.as_u64());
    let max_transient = transient_limit(inner.max_bytes);
    // A rebuild that failed is retried only after the next commit, not in a busy loop.
    let mut rebuild_failed = false;
    loop {
        if let Some((kind, reopened)) = inner.health.due() {
            inner.recover(kind, reopened);
            continue;
        }
        let first = match rx.try_recv() {
            Ok(r) => r,
            Err(TryRecvError::Disconnected) => break,
            Err(TryRecvError::Empty) => {
                if !inner.health.is_degraded() {
                    if sweep_step(inner) {
                        continue;
                    }
                    if !rebuild_failed && inner.synopsis.saturated() {
                        rebuild_failed = inner.rebuild_synopsis().is_err();
                        continue;
                    }
                }
                // Wake for a request, a fault a reader noted, or the next reopen attempt.
                let next = if let Some(at) = inner.health.next_attempt() {
                    crossbeam_channel::select! {
                        recv(rx) -> r => r,
                        recv(wake) -> _ => continue,
                        default(at.saturating_duration_since(Instant::now())) => continue,
                    }
                } else {
                    crossbeam_channel::select! {
                        recv(rx) -> r => r,
                        recv(wake) -> _ => continue,
                    }
                };
                match next {
                    Ok(r) => r,
                    Err(_) => break,
                }
            }
        };
        if inner.health.is_degraded() {
            let mut batch = vec![first];
            while batch.len() < max_ops
                && let Ok(r) = rx.try_recv()
            {
                batch.push(r);
            }
            fail_fast(inner, batch);
            continue;
        }
        let deadline = Instant::now() + max_delay;
        let mut bytes = first.op.value_bytes();
        let mut transient = first.op.transient();
        let mut batch = vec![first];
        while batch.len() < max_ops && bytes < max_bytes && transient < max_transient {
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
            transient += next.op.transient();
            batch.push(next);
        }
        commit_batch(inner, batch);
        rebuild_failed = false;
    }
}

/// Answers every request of `batch` with the store's degraded error, without touching the
/// database (async inserts among them count as lost).
fn fail_fast(inner: &Inner, batch: Vec<Request>) {
    let reason: Arc<str> = Arc::from(inner.degraded_error().to_string());
    let bytes = batch.iter().map(|r| r.op.value_bytes()).sum();
    inner.fail_batch(&batch);
    inner.release(batch.len(), bytes);
    for req in batch {
        if let Some(reply) = req.reply {
            let _ = reply.send(Err(Arc::clone(&reason)));
        }
    }
}

/// Applies `batch` in one transaction, commits it and answers its waiters.
fn commit_batch(inner: &Inner, batch: Vec<Request>) {
    let mut w = inner.writer.lock();
    let outcome = inner.with_db(|db| apply(inner, db, &w, &batch));
    let n = batch.len();
    let bytes = batch.iter().map(|r| r.op.value_bytes()).sum();
    match outcome {
        Ok(done) => {
            w.totals = done.totals;
            w.next_seq = done.next_seq;
            w.hand = done.hand;
            w.committed(done.commit_id, done.durable, done.transient, done.puts);
            for (ns, generation) in done.bumped {
                w.sweeps.retain(|s| s.ns != ns);
                inner.set_generation(&ns, generation);
                w.sweeps.push(Sweep { ns, after: None });
            }
            inner.totals_mirror(done.totals);
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
            inner.fail_batch(&batch);
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
    /// The eviction hand after the batch.
    hand: Hand,
    applied: Vec<Applied>,
    totals: Totals,
    next_seq: u64,
    durable: bool,
    /// Transient footprint the batch added.
    transient: u64,
    /// Namespaces whose generation the batch bumped, with the new generation.
    bumped: Vec<(String, u64)>,
    /// The commit's id.
    commit_id: u64,
    /// Puts the batch stored.
    puts: u64,
}

fn apply(inner: &Inner, db: &Database, w: &WriterState, batch: &[Request]) -> Result<Done> {
    let mut totals = w.totals;
    let mut next_seq = w.next_seq;
    let mut removed = Vec::new();
    let mut transient = 0;
    let mut bumped = Vec::new();
    let mut applied = Vec::with_capacity(batch.len());
    // Moved back into `w` only if the batch commits: an aborted batch's evictions did not
    // happen, so the hand must not have moved past them.
    let mut hand = w.hand;
    let mut durable = w.sync_due(transient_limit(inner.max_bytes))
        || batch.iter().any(|r| r.durable || r.op.needs_durable())
        || inner.any_unsynced(batch);
    let commit_id = w.commit_id + 1;
    let mut puts = 0;
    let txn = db.begin_write()?;
    {
        let mut t = Tables::open(&txn)?;
        for req in batch {
            let mut a = Applied::default();
            transient += req.op.transient();
            match &req.op {
                Op::Put {
                    ns,
                    key,
                    encoded,
                    seq,
                    generation,
                    labels,
                    footprint,
                    ..
                } => {
                    next_seq = next_seq.max(seq + 1);
                    let put = PutRow {
                        ns,
                        key,
                        encoded,
                        seq: *seq,
                        generation: *generation,
                        labels,
                        footprint: *footprint,
                    };
                    a = apply_put(inner, &mut t, &put, &mut totals, &mut hand, &mut removed)?;
                    puts += u64::from(!a.rejected);
                    // An overwrite must be durable: a crash must not bring the old value back.
                    durable |= a.found;
                    transient += a.evicted * PAGE;
                }
                Op::Delete { ns, key } => {
                    a.found = remove_reporting_live(&mut t, ns, key, &mut totals)?;
                }
                Op::DeleteIfCorrupt { ns, key } => {
                    a.found = t.remove_if_corrupt(ns, key, inner.max_value_bytes, &mut totals)?;
                    removed.extend(a.found.then(|| inner.key_hash(ns, key)));
                }
                Op::InvalidateLabels { ns, labels } => {
                    a.removed_keys = invalidate_labels(&mut t, ns, labels, &mut totals)?;
                }
                Op::InvalidatePrefix { ns, prefix } => {
                    a.removed_keys = invalidate_prefix(&mut t, ns, prefix, &mut totals)?;
                }
                Op::Clear => {
                    a.removed = t.records.len()?;
                    drop(t);
                    t = clear_tables(&txn)?;
                    totals.live = 0;
                    totals.footprint = 0;
                }
                Op::BumpGeneration { ns } => {
                    a.generation = bump_generation(&mut t, ns)?;
                    bumped.push((ns.to_string(), a.generation));
                }
                Op::Flush => {}
            }
            a.removed = a.removed.max(a.removed_keys.len() as u64);
            applied.push(a);
        }
        drop(t);
        write_meta(&txn, totals, Some(next_seq), commit_id)?;
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
        hand,
        applied,
        totals,
        next_seq,
        durable,
        transient,
        bumped,
        commit_id,
        puts,
    })
}

/// A queued put's fields, for [`apply_put`].
struct PutRow<'a> {
    ns: &'a str,
    key: &'a [u8],
    encoded: &'a record::Encoded,
    seq: u64,
    generation: u64,
    labels: &'a [Box<[u8]>],
    footprint: u64,
}

/// Applies one put: drops it if its namespace was flushed since it was written, removes the
/// key's old record, refuses it if the store is full and [`OnFull::Reject`] is set, evicts by
/// `hand` until it fits (adding the hashes of evicted keys to `removed`) and inserts it.
fn apply_put(
    inner: &Inner,
    t: &mut Tables<'_>,
    put: &PutRow<'_>,
    totals: &mut Totals,
    hand: &mut Hand,
    removed: &mut Vec<u64>,
) -> Result<Applied> {
    let mut a = Applied::default();
    if put.generation < t.generation(put.ns)? {
        // Its namespace was flushed after it was written: it is dead already.
        return Ok(a);
    }
    a.found = t.remove(put.ns, put.key, totals, |_| true)?;
    let limit = footprint_limit(inner.max_bytes);
    if inner.on_full == OnFull::Reject && totals.footprint.saturating_add(put.footprint) > limit {
        a.rejected = true;
        return Ok(a);
    }
    a.evicted = t.evict_until(
        totals,
        put.footprint,
        limit,
        hand,
        &inner.visited,
        |ns, k| removed.push(inner.key_hash(ns, k)),
    )?;
    // A new record must not inherit the read of an older one sharing its bit.
    inner.visited.clear(put.seq);
    let rec = NewRecord {
        ns: put.ns,
        key: put.key,
        seq: put.seq,
        encoded: put.encoded,
        labels: put.labels,
    };
    t.insert(&rec, totals)?;
    Ok(a)
}

/// Moves `ns` to its next generation; returns it.
///
/// # Errors
///
/// [`L2Error::Storage`]; a generation that cannot advance (a file forged to hold the largest
/// one) fails the flush rather than leave the namespace's records alive.
fn bump_generation(t: &mut Tables<'_>, ns: &str) -> Result<u64> {
    let g = t.generation(ns)?.checked_add(1).ok_or_else(|| {
        L2Error::Storage(redb::Error::Corrupted(format!(
            "namespace {ns:?} is at the last generation"
        )))
    })?;
    t.generations.insert(ns, g)?;
    Ok(g)
}

/// Deletes the record tables and opens them again, empty. Generations stay.
fn clear_tables(txn: &redb::WriteTransaction) -> Result<Tables<'_>> {
    txn.delete_table(crate::schema::RECORDS)?;
    txn.delete_table(crate::schema::BLOBS)?;
    txn.delete_table(crate::schema::ORDER)?;
    txn.delete_multimap_table(crate::schema::LABELS)?;
    Tables::open(txn)
}

/// Removes every record of `ns` whose key starts with `prefix`; returns the keys of those of the
/// current generation (records a namespace flush killed are removed, not reported).
fn invalidate_prefix(
    t: &mut Tables<'_>,
    ns: &str,
    prefix: &[u8],
    totals: &mut Totals,
) -> Result<Vec<Box<[u8]>>> {
    let mut keys = Vec::new();
    for row in t.records.range((ns, prefix)..)? {
        let (k, _) = row?;
        let (row_ns, key) = k.value();
        if row_ns != ns || !key.starts_with(prefix) {
            break;
        }
        keys.push(Box::<[u8]>::from(key));
    }
    let mut live = Vec::with_capacity(keys.len());
    for key in keys {
        if remove_reporting_live(t, ns, &key, totals)? {
            live.push(key);
        }
    }
    Ok(live)
}

/// Removes the record of `(ns, key)` if any; returns whether it was live (of the namespace's
/// current generation, and verifiable): records a namespace flush killed are removed silently.
fn remove_reporting_live(
    t: &mut Tables<'_>,
    ns: &str,
    key: &[u8],
    totals: &mut Totals,
) -> Result<bool> {
    let current = t.generation(ns)?;
    let mut is_live = false;
    let pred = |e: &[u8]| {
        is_live = record::verify_entry(ns, key, e).is_ok_and(|v| v.header.generation >= current);
        true
    };
    Ok(t.remove(ns, key, totals, pred)? && is_live)
}

/// Removes every record of `ns` carrying one of `labels`, with the labels' index rows; returns
/// the keys of the records of the current generation it removed (records a namespace flush
/// killed are removed, not reported).
fn invalidate_labels(
    t: &mut Tables<'_>,
    ns: &str,
    labels: &[Box<[u8]>],
    totals: &mut Totals,
) -> Result<Vec<Box<[u8]>>> {
    let current = t.generation(ns)?;
    let mut removed = Vec::new();
    for label in labels {
        let keys: Vec<Vec<u8>> = t
            .labels
            .remove_all((ns, &**label))?
            .map(|k| k.map(|k| k.value().to_vec()))
            .collect::<std::result::Result<_, _>>()?;
        for key in keys {
            totals.footprint =
                totals
                    .footprint
                    .saturating_sub(label_footprint(ns.len(), label.len(), key.len()));
            // A row whose record no longer carries the label is stale (the record was
            // rewritten without it after its entry rotted): the record stays. An entry that
            // cannot be verified goes.
            let mut is_live = false;
            let carries = |e: &[u8]| {
                record::verify_entry(ns, &key, e).map_or(true, |v| {
                    is_live = v.header.generation >= current;
                    v.labels().contains(&&**label)
                })
            };
            if t.remove(ns, &key, totals, carries)? && is_live {
                removed.push(key.into_boxed_slice());
            }
        }
    }
    Ok(removed)
}

/// Writes the store's counters into `txn`: totals, the next sequence number (if it moved) and
/// the commit's id.
pub(crate) fn write_meta(
    txn: &WriteTransaction,
    totals: Totals,
    next_seq: Option<u64>,
    commit_id: u64,
) -> Result<()> {
    let mut meta = txn.open_table(META)?;
    meta.insert(META_LIVE_BYTES, totals.live)?;
    meta.insert(META_FOOTPRINT, totals.footprint)?;
    if let Some(next_seq) = next_seq {
        meta.insert(META_NEXT_SEQ, next_seq)?;
    }
    meta.insert(META_COMMIT_ID, commit_id)?;
    Ok(())
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

//! The store: open, get, put, delete, flush; writes go through the writer thread.

use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasher, RandomState};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::thread::JoinHandle;

use bytes::Bytes;
use crossbeam_channel::Sender;
use parking_lot::{Condvar, Mutex};
use redb::{Database, DatabaseError, ReadTransaction, ReadableDatabase, ReadableTable, TableError};

use crate::record::{self, FLAG_ZSTD, MAX_VALUE_LEN, accounted_size};
use crate::schema::{
    FORMAT, FORMAT_KEY, META, META_LIVE_BYTES, META_NEXT_SEQ, ORDER, RECORDS, STORE_FORMAT,
};
use crate::writer::{self, Answer, Applied, Op, Request, WriterState};
use crate::{CompressionOptions, KeyTooLong, L2Error, L2Options, Result, WriteMode};

/// The longest namespace a record may have, in bytes.
pub const MAX_NAMESPACE_LEN: usize = 1024;
/// The longest key a record may have, in bytes.
pub const MAX_KEY_LEN: usize = 64 << 10;

/// What a successful [`Store::put`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct PutOutcome {
    /// The put's batch had committed when `put` returned. `false` only in
    /// [`WriteMode::Async`] for a fresh insert, which returns once queued.
    pub committed: bool,
    /// The commit was durable (`fsync`ed): a crash cannot take the put back.
    pub durable: bool,
    /// The value is stored zstd-compressed.
    pub compressed: bool,
}

/// A snapshot of a store's counters and sizes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct L2Stats {
    /// Gets that returned a value.
    pub hits: u64,
    /// Gets that returned nothing (absent, or failed verification).
    pub misses: u64,
    /// Records that failed verification on read; each was counted as a miss and deleted.
    pub corrupt_records: u64,
    /// Records written (new keys and overwrites), counted at commit.
    pub insertions: u64,
    /// Records written zstd-compressed.
    pub compressed_insertions: u64,
    /// Bytes compression saved over the values' original lengths.
    pub bytes_saved: u64,
    /// Records evicted to keep the budget.
    pub evictions: u64,
    /// Records removed by [`Store::delete`].
    pub deletes: u64,
    /// Write transactions committed by the writer thread (group commits).
    pub commits: u64,
    /// Of those, durable ones (`fsync`ed).
    pub durable_commits: u64,
    /// Writes applied by those commits; `batched_writes / commits` is the mean batch size.
    pub batched_writes: u64,
    /// Writes whose commit failed. Their callers got the error, except for
    /// [`WriteMode::Async`] fresh inserts that had returned already: those are also in
    /// `lost_writes`.
    pub failed_writes: u64,
    /// Acknowledged [`WriteMode::Async`] inserts that a failed commit dropped (they read as
    /// misses afterwards).
    pub lost_writes: u64,
    /// Writes queued and not yet committed, now.
    pub queued_writes: u64,
    /// Accounted bytes of live records now (namespace + key + header + stored payload).
    pub live_bytes: u64,
    /// The budget `live_bytes` is held to.
    pub max_bytes: u64,
    /// Size of the database file on disk now, in bytes.
    pub file_bytes: u64,
}

#[derive(Debug, Default)]
struct Counters {
    hits: AtomicU64,
    misses: AtomicU64,
    corrupt: AtomicU64,
    insertions: AtomicU64,
    compressed: AtomicU64,
    bytes_saved: AtomicU64,
    evictions: AtomicU64,
    deletes: AtomicU64,
    commits: AtomicU64,
    durable_commits: AtomicU64,
    batched_writes: AtomicU64,
    failed_writes: AtomicU64,
    lost_writes: AtomicU64,
}

fn bump(c: &AtomicU64, n: u64) {
    c.fetch_add(n, Ordering::Relaxed);
}

/// The key of `(namespace, key)` in the pending map: `len(namespace) as u32 LE ‖ namespace ‖
/// key`, unambiguous for any pair.
pub(crate) fn pending_key(namespace: &str, key: &[u8]) -> Vec<u8> {
    let mut k = Vec::with_capacity(4 + namespace.len() + key.len());
    #[expect(
        clippy::cast_possible_truncation,
        reason = "namespaces are at most 1 KiB"
    )]
    k.extend_from_slice(&(namespace.len() as u32).to_le_bytes());
    k.extend_from_slice(namespace.as_bytes());
    k.extend_from_slice(key);
    k
}

/// The newest queued, not yet committed write of a key.
#[derive(Debug)]
struct PendingWrite {
    /// The request's id: only its own commit removes this entry.
    id: u64,
    /// The value a get returns meanwhile; `None` for a delete.
    value: Option<Bytes>,
}

/// Writes queued and not committed, and keys an undurable commit removed. One lock guards both
/// and the order of the queue, so a get sees a write from the moment it is queued.
#[derive(Debug, Default)]
struct Pending {
    writes: HashMap<Vec<u8>, PendingWrite>,
    /// Hashes of keys whose records undurable commits removed since the last durable one
    /// (evictions, corrupt-record deletes). A crash would bring those records back, so a later
    /// write of such a key must be durable before it is acknowledged. A hash collision only
    /// costs an extra durable commit.
    unsynced_removals: HashSet<u64>,
    next_id: u64,
}

/// What is queued for the writer.
#[derive(Debug, Default)]
struct Queued {
    ops: usize,
    bytes: u64,
}

/// State shared by the store's handle and its writer thread.
pub(crate) struct Inner {
    pub(crate) db: Database,
    path: PathBuf,
    pub(crate) max_bytes: u64,
    compression: CompressionOptions,
    write_mode: WriteMode,
    pub(crate) writer: Mutex<WriterState>,
    /// Mirror of `WriterState::live_bytes` for lock-free stats.
    live_bytes: AtomicU64,
    /// Sequence numbers for new records: the FIFO eviction order.
    next_seq: AtomicU64,
    pending: Mutex<Pending>,
    /// `pending.writes.len()`, mirrored for gets that find the map empty.
    pending_len: AtomicUsize,
    /// Writes queued and not yet committed, and their value bytes; bounded by `queue_capacity`
    /// and `queue_max_bytes` (backpressure).
    queued: Mutex<Queued>,
    queue_room: Condvar,
    queue_capacity: usize,
    queue_max_bytes: u64,
    key_hasher: RandomState,
    counters: Counters,
}

impl Inner {
    pub(crate) fn key_hash(&self, namespace: &str, key: &[u8]) -> u64 {
        self.key_hasher.hash_one((namespace, key))
    }

    pub(crate) fn live_bytes_mirror(&self, live: u64) {
        self.live_bytes.store(live, Ordering::Relaxed);
    }

    /// Whether a key that `batch` writes was removed by an undurable commit.
    pub(crate) fn any_unsynced(&self, batch: &[Request]) -> bool {
        let p = self.pending.lock();
        !p.unsynced_removals.is_empty()
            && writer::writer_hashes(self, batch).any(|h| p.unsynced_removals.contains(&h))
    }

    /// Before an undurable commit: remembers the keys whose records it removes, while the
    /// removals are not yet visible to readers.
    pub(crate) fn note_unsynced_removals(&self, removed: &[u64]) {
        self.pending
            .lock()
            .unsynced_removals
            .extend(removed.iter().copied());
    }

    /// After a commit: drops the batch's pending entries (unless a later write of the key
    /// replaced them), and after a durable one forgets the unsynced removals (a failed commit
    /// leaves them: that only costs an extra durable commit).
    pub(crate) fn finish_batch(&self, batch: &[Request], durable: bool) {
        let mut p = self.pending.lock();
        for (k, id) in writer::batch_keys(batch) {
            if p.writes.get(&k).is_some_and(|w| w.id == id) {
                p.writes.remove(&k);
            }
        }
        self.pending_len.store(p.writes.len(), Ordering::Release);
        if durable {
            p.unsynced_removals.clear();
        }
    }

    /// After a failed commit: nothing of the batch was written; its pending entries go, and
    /// acknowledged async inserts among them are counted lost.
    pub(crate) fn fail_batch(&self, batch: &[Request], error: &L2Error) {
        self.finish_batch(batch, false);
        let lost = batch.iter().filter(|r| r.reply.is_none()).count() as u64;
        bump(&self.counters.failed_writes, batch.len() as u64);
        bump(&self.counters.lost_writes, lost);
        // No logging framework in this crate yet; the stats and the waiters' errors say it.
        let _ = error;
    }

    pub(crate) fn count_commit(&self, durable: bool, applied: &[Applied], batch: &[Request]) {
        let c = &self.counters;
        bump(&c.commits, 1);
        bump(&c.durable_commits, u64::from(durable));
        bump(&c.batched_writes, batch.len() as u64);
        for (a, r) in applied.iter().zip(batch) {
            bump(&c.evictions, a.evicted);
            match &r.op {
                Op::Put { saved, .. } => {
                    bump(&c.insertions, 1);
                    if *saved > 0 {
                        bump(&c.compressed, 1);
                        bump(&c.bytes_saved, *saved);
                    }
                }
                Op::Delete { .. } => bump(&c.deletes, u64::from(a.found)),
                Op::DeleteIfCorrupt { .. } | Op::Flush => {}
            }
        }
    }

    /// Takes a queue slot for a write of `bytes` value bytes, waiting while the queue is full.
    fn acquire(&self, bytes: u64) {
        let mut q = self.queued.lock();
        while q.ops >= self.queue_capacity
            || (q.ops > 0 && q.bytes.saturating_add(bytes) > self.queue_max_bytes)
        {
            self.queue_room.wait(&mut q);
        }
        q.ops += 1;
        q.bytes += bytes;
    }

    /// Gives back the queue slots of `ops` writes of `bytes` value bytes in all.
    pub(crate) fn release(&self, ops: usize, bytes: u64) {
        let mut q = self.queued.lock();
        q.ops = q.ops.saturating_sub(ops);
        q.bytes = q.bytes.saturating_sub(bytes);
        drop(q);
        self.queue_room.notify_all();
    }

    /// Whether `(namespace, key)` has a committed record. Called under the pending lock, so no
    /// commit of the key can slip between this read and the caller's decision.
    fn has_record(&self, namespace: &str, key: &[u8]) -> Result<bool> {
        let txn = self.db.begin_read()?;
        let table = txn.open_table(RECORDS)?;
        Ok(table.get((namespace, key))?.is_some())
    }
}

/// A durable store of `(namespace, key) → value` records in one redb file.
///
/// Every record is checksummed and self-describing (see [`crate::record`]); a record that fails
/// verification is a miss, never data. Live bytes are held to [`L2Options::max_bytes`] by FIFO
/// eviction. The store is `Sync`: gets run concurrently on the calling threads; writes queue to
/// one writer thread that commits them in batches (group commit, see [`crate::WriteMode`] and
/// [`crate::GroupCommitOptions`]). Reads see queued writes.
pub struct Store {
    inner: Arc<Inner>,
    tx: Option<Sender<Request>>,
    thread: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("path", &self.inner.path)
            .field("max_bytes", &self.inner.max_bytes)
            .field("live_bytes", &self.inner.live_bytes.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

impl Store {
    /// Opens the store at `options.path`, creating it (and its parent directory) if missing,
    /// and starts its writer thread.
    ///
    /// # Errors
    ///
    /// - [`L2Error::InvalidOption`] for bad options;
    /// - [`L2Error::AlreadyOpen`] if the file is open already (this process or another);
    /// - [`L2Error::Foreign`] for a database that is not a cache-l2 store, and
    ///   [`L2Error::Corrupt`] for a file that is not a readable database; neither is modified;
    /// - [`L2Error::Io`] / [`L2Error::Storage`] for I/O failures, including failing to start
    ///   the writer thread.
    pub fn open(options: &L2Options) -> Result<Self> {
        options.validate()?;
        let path = options.path.clone();
        let io = |source| L2Error::Io {
            path: path.clone(),
            source,
        };
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(io)?;
        }
        refuse_symlink(&path)?;
        create_private(&path)?;
        let page_cache = usize::try_from(options.page_cache_bytes.as_u64()).unwrap_or(usize::MAX);
        let needs_repair = refuse_foreign(&path, page_cache)?;
        let db = redb::Builder::new()
            .set_cache_size(page_cache)
            .create(&path)
            .map_err(|e| open_error(&path, e))?;
        let (live_bytes, next_seq) = init_or_check(&db, &path).map_err(|e| match e {
            L2Error::Foreign { path, reason } if needs_repair => L2Error::Foreign {
                path,
                reason: format!(
                    "{reason} (its last writer did not shut down cleanly, so redb repaired the \
                     file's allocator metadata before the check could run; its data is unchanged)"
                ),
            },
            other => other,
        })?;
        Self::start(db, options, live_bytes, next_seq)
    }

    /// Opens a store on a caller-supplied redb storage backend instead of a file, e.g. one that
    /// injects I/O errors, for fault-injection tests. `options.path` only names the store in
    /// errors and stats (its file size is reported as 0 if there is no such file); no file
    /// checks run.
    ///
    /// # Errors
    ///
    /// As [`Store::open`], for what the backend holds.
    pub fn open_with_backend(
        options: &L2Options,
        backend: impl redb::StorageBackend,
    ) -> Result<Self> {
        options.validate()?;
        let page_cache = usize::try_from(options.page_cache_bytes.as_u64()).unwrap_or(usize::MAX);
        let db = redb::Builder::new()
            .set_cache_size(page_cache)
            .create_with_backend(backend)
            .map_err(|e| open_error(&options.path, e))?;
        let (live_bytes, next_seq) = init_or_check(&db, &options.path)?;
        Self::start(db, options, live_bytes, next_seq)
    }

    /// Wraps an opened, checked database and starts the writer thread.
    fn start(db: Database, options: &L2Options, live_bytes: u64, next_seq: u64) -> Result<Self> {
        let path = options.path.clone();
        let inner = Arc::new(Inner {
            db,
            path: path.clone(),
            max_bytes: options.max_bytes.as_u64(),
            compression: options.compression,
            write_mode: options.write_mode,
            writer: Mutex::new(WriterState::new(live_bytes, next_seq)),
            live_bytes: AtomicU64::new(live_bytes),
            next_seq: AtomicU64::new(next_seq),
            pending: Mutex::new(Pending::default()),
            pending_len: AtomicUsize::new(0),
            queued: Mutex::new(Queued::default()),
            queue_room: Condvar::new(),
            queue_capacity: options.group_commit.queue_capacity,
            queue_max_bytes: options.group_commit.queue_max_bytes.as_u64(),
            key_hasher: RandomState::new(),
            counters: Counters::default(),
        });
        let (tx, rx) = crossbeam_channel::unbounded();
        let group = options.group_commit;
        let thread = {
            let inner = Arc::clone(&inner);
            std::thread::Builder::new()
                .name("cache-l2-writer".into())
                .spawn(move || writer::run(&inner, &rx, group))
                .map_err(|source| L2Error::Io { path, source })?
        };
        Ok(Self {
            inner,
            tx: Some(tx),
            thread: Some(thread),
        })
    }

    /// The store's file.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// The value of `(namespace, key)`, verified (and decompressed), or `None`. Sees queued
    /// writes: a put or delete is visible here from the moment it is queued.
    ///
    /// A record that fails verification counts as a miss and in
    /// [`L2Stats::corrupt_records`], and is deleted.
    ///
    /// # Errors
    ///
    /// [`L2Error::Storage`] if redb fails to read.
    pub fn get(&self, namespace: &str, key: &[u8]) -> Result<Option<Bytes>> {
        let inner = &*self.inner;
        // Most gets find nothing queued: they skip the pending lock, which every reader would
        // otherwise take in turn. A write queued before this get began is counted here already
        // (the count is updated under the lock, before the write's caller is answered).
        if inner.pending_len.load(Ordering::Acquire) > 0 {
            let p = inner.pending.lock();
            if let Some(w) = p.writes.get(&pending_key(namespace, key)) {
                let value = w.value.clone();
                drop(p);
                let counter = if value.is_some() {
                    &inner.counters.hits
                } else {
                    &inner.counters.misses
                };
                bump(counter, 1);
                return Ok(value);
            }
        }
        let txn = inner.db.begin_read()?;
        let table = txn.open_table(RECORDS)?;
        let decoded = table
            .get((namespace, key))?
            .map(|guard| record::decode(namespace, key, guard.value()));
        drop(table);
        drop(txn);
        match decoded {
            Some(Ok((_, value))) => {
                bump(&inner.counters.hits, 1);
                Ok(Some(value))
            }
            None => {
                bump(&inner.counters.misses, 1);
                Ok(None)
            }
            Some(Err(_)) => {
                bump(&inner.counters.misses, 1);
                bump(&inner.counters.corrupt, 1);
                // Best effort, not waited for: the caller gets a miss whether or not the delete
                // happens, and a record still there fails verification again next time.
                let op = Op::DeleteIfCorrupt {
                    ns: namespace.into(),
                    key: key.into(),
                };
                let _ = self.enqueue(op, None, false, false);
                Ok(None)
            }
        }
    }

    /// Stores `value` under `(namespace, key)`, replacing any record, compressing it if the
    /// [`CompressionOptions`] say so; the writer evicts the oldest records if the budget
    /// requires.
    ///
    /// When it returns ([`L2Options::write_mode`]):
    /// - [`WriteMode::Sync`]: once the batch holding the put has committed. An overwrite, or a
    ///   write of a key an undurable commit removed, is then durable; a fresh insert may have
    ///   ridden an undurable commit that a crash can take back (the key is then a miss, never
    ///   another value); a durable commit follows within 256 commits or about a second.
    /// - [`WriteMode::Async`]: a fresh insert returns once queued (a crash or a failed commit
    ///   can lose it: a miss; see [`L2Stats::lost_writes`]); a put that would replace a record
    ///   (committed or queued) waits for a durable commit, as in sync mode.
    ///
    /// # Errors
    ///
    /// [`L2Error::KeyTooLong`], [`L2Error::TooLarge`] for records the store cannot hold;
    /// [`L2Error::WriteFailed`] if the commit failed; [`L2Error::Storage`] if redb fails a
    /// read. Nothing is written on error.
    pub fn put(&self, namespace: &str, key: &[u8], value: &[u8]) -> Result<PutOutcome> {
        check_key(namespace, key)?;
        let original_len = value.len() as u64;
        if original_len > MAX_VALUE_LEN {
            return Err(L2Error::TooLarge {
                size: original_len,
                max: MAX_VALUE_LEN,
            });
        }
        let compressed = self.inner.compression.compress(value);
        let (flags, payload) = match &compressed {
            Some(c) => (FLAG_ZSTD, c.as_slice()),
            None => (0, value),
        };
        let size = accounted_size(namespace, key, record::HEADER_V1_LEN + payload.len());
        if size > self.inner.max_bytes {
            return Err(L2Error::TooLarge {
                size,
                max: self.inner.max_bytes,
            });
        }
        let seq = self.inner.next_seq.fetch_add(1, Ordering::Relaxed);
        let rec = record::encode(namespace, key, seq, flags, original_len, payload);
        let saved = original_len - payload.len() as u64;
        let op = Op::Put {
            ns: namespace.into(),
            key: key.into(),
            record: rec,
            seq,
            value_len: original_len,
            saved,
        };
        let pending_value = Bytes::copy_from_slice(value);
        let async_mode = self.inner.write_mode == WriteMode::Async;
        let waited = self.enqueue(op, Some(pending_value), async_mode, true)?;
        Ok(PutOutcome {
            committed: waited.is_some(),
            durable: waited.is_some_and(|a| a.durable),
            compressed: compressed.is_some(),
        })
    }

    /// Removes the record of `(namespace, key)`; returns whether there was one (committed or
    /// queued). Durable when it returns: a crash cannot bring the record back.
    ///
    /// # Errors
    ///
    /// [`L2Error::KeyTooLong`]; [`L2Error::WriteFailed`] if the commit failed (nothing is
    /// removed then).
    pub fn delete(&self, namespace: &str, key: &[u8]) -> Result<bool> {
        check_key(namespace, key)?;
        let queued_value = {
            let p = self.inner.pending.lock();
            p.writes
                .get(&pending_key(namespace, key))
                .map(|w| w.value.is_some())
        };
        let op = Op::Delete {
            ns: namespace.into(),
            key: key.into(),
        };
        let applied = self.enqueue(op, None, false, true)?;
        Ok(applied.is_some_and(|a| a.found) || queued_value == Some(true))
    }

    /// Waits until every write queued before the call is committed, and makes it durable.
    ///
    /// # Errors
    ///
    /// [`L2Error::WriteFailed`] if the commit fails.
    pub fn flush(&self) -> Result<()> {
        self.enqueue(Op::Flush, None, false, true).map(|_| ())
    }

    /// Queues `op`. `pending` is the value reads see meanwhile (for keyed ops; `None` reads as
    /// a delete). If `wait`, blocks until the commit and returns what it did; otherwise returns
    /// `None` at once. With `async_put`, the put waits only if it would replace a record or the
    /// key was removed by an undurable commit (then it waits for a durable commit).
    fn enqueue(
        &self,
        op: Op,
        pending: Option<Bytes>,
        async_put: bool,
        wait: bool,
    ) -> Result<Option<Applied>> {
        let Some(tx) = &self.tx else {
            return Err(L2Error::WriteFailed {
                reason: "the store is closing".into(),
            });
        };
        let inner = &*self.inner;
        let bytes = op.value_bytes();
        inner.acquire(bytes);
        let (reply_tx, reply_rx) = crossbeam_channel::bounded::<Answer>(1);
        let sent = {
            let mut p = inner.pending.lock();
            let id = p.next_id;
            p.next_id += 1;
            let keyed = match &op {
                Op::Put { ns, key, .. } | Op::Delete { ns, key } => {
                    Some((pending_key(ns, key), inner.key_hash(ns, key), &**ns, &**key))
                }
                Op::DeleteIfCorrupt { .. } | Op::Flush => None,
            };
            let (mut wait, mut durable) = (wait, false);
            if async_put && let Some((pk, h, ns, key)) = &keyed {
                let replaces = p.writes.get(pk).is_some_and(|w| w.value.is_some())
                    || p.unsynced_removals.contains(h)
                    || match inner.has_record(ns, key) {
                        Ok(found) => found,
                        Err(e) => {
                            drop(p);
                            inner.release(1, bytes);
                            return Err(e);
                        }
                    };
                wait = replaces;
                durable = replaces;
            }
            match (&op, keyed) {
                (Op::DeleteIfCorrupt { ns, key }, None) => {
                    // Reads miss at once rather than finding the corrupt record again, unless a
                    // newer write of the key is queued (that one stands).
                    p.writes
                        .entry(pending_key(ns, key))
                        .or_insert(PendingWrite { id, value: None });
                }
                (_, Some((pk, ..))) => {
                    p.writes.insert(pk, PendingWrite { id, value: pending });
                }
                (_, None) => {}
            }
            inner.pending_len.store(p.writes.len(), Ordering::Release);
            let request = Request {
                op,
                id,
                durable,
                reply: wait.then_some(reply_tx),
            };
            let ok = tx.send(request).is_ok();
            (ok, wait)
        };
        let (ok, wait) = sent;
        if !ok {
            inner.release(1, bytes);
            return Err(L2Error::WriteFailed {
                reason: "the writer thread has stopped".into(),
            });
        }
        if !wait {
            return Ok(None);
        }
        match reply_rx.recv() {
            Ok(Ok(applied)) => Ok(Some(applied)),
            Ok(Err(reason)) => Err(L2Error::WriteFailed {
                reason: reason.to_string(),
            }),
            Err(_) => Err(L2Error::WriteFailed {
                reason: "the writer thread stopped before committing".into(),
            }),
        }
    }

    /// A snapshot of the counters and sizes.
    pub fn stats(&self) -> L2Stats {
        let inner = &*self.inner;
        let c = &inner.counters;
        let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
        L2Stats {
            hits: load(&c.hits),
            misses: load(&c.misses),
            corrupt_records: load(&c.corrupt),
            insertions: load(&c.insertions),
            compressed_insertions: load(&c.compressed),
            bytes_saved: load(&c.bytes_saved),
            evictions: load(&c.evictions),
            deletes: load(&c.deletes),
            commits: load(&c.commits),
            durable_commits: load(&c.durable_commits),
            batched_writes: load(&c.batched_writes),
            failed_writes: load(&c.failed_writes),
            lost_writes: load(&c.lost_writes),
            queued_writes: inner.queued.lock().ops as u64,
            live_bytes: load(&inner.live_bytes),
            max_bytes: inner.max_bytes,
            file_bytes: std::fs::metadata(&inner.path).map_or(0, |m| m.len()),
        }
    }

    /// Flushes, then recomputes the live-byte count and the order index from the records and
    /// compares them with the store's bookkeeping: live bytes (in memory and persisted) equal
    /// the sum of every record's accounted size and are within budget; every record that passes
    /// verification has a sequence number below the next one and an order entry naming its
    /// key. (Records that fail verification, e.g. after bit rot, are only counted.) For tests:
    /// it reads every record; writes queued meanwhile wait.
    ///
    /// # Errors
    ///
    /// [`L2Error::Storage`] if redb fails to read, [`L2Error::WriteFailed`] if the flush fails.
    ///
    /// # Panics
    ///
    /// On the first broken invariant, with a message naming it.
    pub fn validate(&self) -> Result<()> {
        self.flush()?;
        let inner = &*self.inner;
        let w = inner.writer.lock();
        let txn: ReadTransaction = inner.db.begin_read()?;
        let records = txn.open_table(RECORDS)?;
        let order = txn.open_table(ORDER)?;
        let mut live = 0u64;
        for item in records.iter()? {
            let (k, v) = item?;
            let (ns, key) = k.value();
            live += accounted_size(ns, key, v.value().len());
            let Ok((header, _)) = record::verify(ns, key, v.value()) else {
                continue;
            };
            let seq = header.seq;
            assert!(
                seq < w.next_seq,
                "record seq {seq} not below next_seq {}",
                w.next_seq
            );
            let names_key = order.get(seq)?.is_some_and(|e| e.value() == (ns, key));
            assert!(
                names_key,
                "order entry {seq} does not name its record's key"
            );
        }
        assert_eq!(
            live, w.live_bytes,
            "live-byte counter differs from the records"
        );
        assert!(
            live <= inner.max_bytes,
            "live bytes {live} above budget {}",
            inner.max_bytes
        );
        let meta = txn.open_table(META)?;
        let stored_live = meta.get(META_LIVE_BYTES)?.map(|g| g.value());
        assert_eq!(
            stored_live,
            Some(live),
            "persisted live-byte counter differs"
        );
        Ok(())
    }
}

impl Drop for Store {
    fn drop(&mut self) {
        // Make everything durable so a clean close loses nothing. An error here has no caller
        // to go to; a crash could have dropped the same writes.
        let _ = self.flush();
        drop(self.tx.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Checks `namespace` and `key` against [`MAX_NAMESPACE_LEN`] and [`MAX_KEY_LEN`]: what every
/// store operation accepts.
///
/// # Errors
///
/// [`KeyTooLong`] naming the part that is too long.
pub fn check_key(namespace: &str, key: &[u8]) -> std::result::Result<(), KeyTooLong> {
    let too_long = |what, len, max| Err(KeyTooLong { what, len, max });
    if namespace.len() > MAX_NAMESPACE_LEN {
        return too_long("namespace", namespace.len(), MAX_NAMESPACE_LEN);
    }
    if key.len() > MAX_KEY_LEN {
        return too_long("key", key.len(), MAX_KEY_LEN);
    }
    Ok(())
}

/// Refuses a store path that is a symbolic link: opening through one could make the cache
/// write into a file an attacker or a mistake pointed it at.
fn refuse_symlink(path: &Path) -> Result<()> {
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_symlink() => Err(L2Error::Symlink {
            path: path.to_owned(),
        }),
        _ => Ok(()),
    }
}

/// Creates the store file if it does not exist, readable and writable by its owner only
/// (mode 0600 on Unix): cached values may be private. An existing file is left as it is.
fn create_private(path: &Path) -> Result<()> {
    let mut o = std::fs::OpenOptions::new();
    o.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut o, 0o600);
    match o.open(path) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(source) => Err(L2Error::Io {
            path: path.to_owned(),
            source,
        }),
    }
}

fn open_error(path: &Path, e: DatabaseError) -> L2Error {
    match e {
        DatabaseError::DatabaseAlreadyOpen => L2Error::AlreadyOpen {
            path: path.to_owned(),
        },
        DatabaseError::UpgradeRequired(v) => L2Error::Foreign {
            path: path.to_owned(),
            reason: format!("a redb file of on-disk format {v}, which this redb cannot read"),
        },
        // redb reports a file that is not a redb database as invalid data.
        DatabaseError::Storage(redb::StorageError::Io(source))
            if source.kind() == std::io::ErrorKind::InvalidData =>
        {
            L2Error::Corrupt {
                path: path.to_owned(),
                reason: source.to_string(),
            }
        }
        DatabaseError::Storage(redb::StorageError::Io(source)) => L2Error::Io {
            path: path.to_owned(),
            source,
        },
        DatabaseError::Storage(redb::StorageError::Corrupted(reason)) => L2Error::Corrupt {
            path: path.to_owned(),
            reason,
        },
        other => L2Error::Storage(other.into()),
    }
}

/// Refuses a non-empty file that is not a cache-l2 store *before* redb opens it for writing
/// (a writable open rewrites the file's header even if we then walk away); such a file is left
/// byte for byte as it was. Returns whether the file needs crash repair: then it cannot be
/// opened read-only, and is checked after the writable open instead (repair rewrites redb's
/// allocator metadata, not the data).
fn refuse_foreign(path: &Path, page_cache: usize) -> Result<bool> {
    let non_empty = std::fs::metadata(path).is_ok_and(|m| m.len() > 0);
    if !non_empty {
        return Ok(false);
    }
    match redb::Builder::new()
        .set_cache_size(page_cache.min(16 << 20))
        .open_read_only(path)
    {
        Ok(db) => match check_format(&db.begin_read()?, path) {
            Ok(_) => Ok(false),
            Err(L2Error::Foreign { path, reason }) => Err(L2Error::Foreign {
                path,
                reason: format!("{reason} (the file was not modified)"),
            }),
            Err(e) => Err(e),
        },
        Err(DatabaseError::RepairAborted) => Ok(true),
        Err(e) => Err(open_error(path, e)),
    }
}

/// Whether the database read by `txn` is a cache-l2 store of the format this build reads:
/// `Some((live_bytes, next_seq))` if so, `None` if it has no tables at all (a new database).
fn check_format(txn: &ReadTransaction, path: &Path) -> Result<Option<(u64, u64)>> {
    let foreign = |reason: String| L2Error::Foreign {
        path: path.to_owned(),
        reason,
    };
    if txn.list_tables()?.next().is_none() && txn.list_multimap_tables()?.next().is_none() {
        return Ok(None);
    }
    let format = match txn.open_table(FORMAT) {
        Ok(t) => t.get(FORMAT_KEY)?.map(|g| g.value()),
        Err(TableError::TableDoesNotExist(_) | TableError::TableTypeMismatch { .. }) => None,
        Err(e) => return Err(e.into()),
    };
    match format {
        None => {
            return Err(foreign(
                "it has tables but no cache-l2 format marker".into(),
            ));
        }
        Some(v) if v != STORE_FORMAT => {
            return Err(foreign(format!(
                "store format {v}; this build reads format {STORE_FORMAT}"
            )));
        }
        Some(_) => {}
    }
    let meta = txn.open_table(META)?;
    let get = |k| -> Result<u64> { Ok(meta.get(k)?.map_or(0, |g| g.value())) };
    Ok(Some((get(META_LIVE_BYTES)?, get(META_NEXT_SEQ)?)))
}

/// Checks the opened database with [`check_format`], writing the format marker and counters
/// into it if it is new. Returns the persisted `(live_bytes, next_seq)`.
fn init_or_check(db: &Database, path: &Path) -> Result<(u64, u64)> {
    if let Some(state) = check_format(&db.begin_read()?, path)? {
        return Ok(state);
    }
    let txn = db.begin_write()?;
    txn.open_table(FORMAT)?.insert(FORMAT_KEY, STORE_FORMAT)?;
    txn.open_table(RECORDS)?;
    txn.open_table(ORDER)?;
    let mut meta = txn.open_table(META)?;
    meta.insert(META_LIVE_BYTES, 0)?;
    meta.insert(META_NEXT_SEQ, 0)?;
    drop(meta);
    txn.commit()?;
    Ok((0, 0))
}

//! The store: open, get, put, delete, flush; writes go through the writer thread.

use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasher, RandomState};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::thread::JoinHandle;

use bytes::Bytes;
use crossbeam_channel::Sender;
use parking_lot::{Condvar, Mutex, RwLock};
use redb::{
    AccessGuard, Database, DatabaseError, ReadTransaction, ReadableDatabase, ReadableMultimapTable,
    ReadableTable, ReadableTableMetadata, TableError,
};

use crate::backend::{Counting, FileIo};
use crate::budget::{
    chunk_footprint, entry_footprint, file_capacity, footprint_limit, label_footprint,
};
use crate::eviction::{OnFull, VisitedBits};
use crate::record::{self, FLAG_ZSTD, MAX_VALUE_LEN, RecordParts};
use crate::schema::{
    BLOBS, CHUNK_LEN_KEY, FORMAT, FORMAT_KEY, GENERATIONS, LABELS, META, META_FOOTPRINT,
    META_LIVE_BYTES, META_NEXT_SEQ, OLDEST_STORE_FORMAT, ORDER, RECORDS, STORE_FORMAT,
};
use crate::synopsis::{Filter, Synopsis};
use crate::tables::{Totals, read_chunks};
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
    /// Records removed by [`Store::invalidate_labels`].
    pub label_invalidations: u64,
    /// Records removed by [`Store::invalidate_prefix`].
    pub prefix_invalidations: u64,
    /// Records removed by [`Store::clear`].
    pub cleared: u64,
    /// Namespace flushes ([`Store::invalidate_namespace`]).
    pub namespace_flushes: u64,
    /// Dead records (written before their namespace's last flush) removed by the background
    /// sweep.
    pub swept: u64,
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
    /// Puts refused because the store was full ([`OnFull::Reject`]): those that returned
    /// [`L2Error::Full`], and [`WriteMode::Async`] inserts refused when their batch committed
    /// (they read as misses afterwards).
    pub rejected_writes: u64,
    /// Gets (and [`Store::may_contain`] checks) the synopsis answered without reading the
    /// file: the key was certainly absent.
    pub negative_skips: u64,
    /// Gets the synopsis let through that found no live record (the Bloom filter's false
    /// positives, including keys deleted or evicted since it was built).
    pub synopsis_false_positives: u64,
    /// Times the synopsis was rebuilt after taking more keys than it was sized for.
    pub synopsis_rebuilds: u64,
    /// Memory of the synopsis, in bytes.
    pub synopsis_bytes: u64,
    /// Writes queued and not yet committed, now.
    pub queued_writes: u64,
    /// Accounted bytes of live records now: namespace, key, entry (header, labels, metadata,
    /// inline payload) and payload chunks.
    pub live_bytes: u64,
    /// Estimated bytes of file the live records occupy (redb pages, index rows); eviction
    /// keeps it within `footprint_limit`. See `docs/operations.md`.
    pub footprint_bytes: u64,
    /// The footprint eviction keeps live records within: 13/16 of `file_capacity`, at most
    /// `max_bytes`.
    pub footprint_limit: u64,
    /// The largest file (usable bytes) the store lets redb grow to: redb's largest growth step
    /// within `max_bytes` plus 1/16.
    pub file_capacity: u64,
    /// The budget for the file, as configured.
    pub max_bytes: u64,
    /// Size of the database file on disk now, in bytes.
    pub file_bytes: u64,
    /// Bytes redb has read from the file since the store was opened (reads its page cache
    /// served are not counted; the OS page cache may still serve counted ones).
    pub file_read_bytes: u64,
    /// Bytes redb has written to the file since the store was opened.
    pub file_written_bytes: u64,
    /// `fsync`s (`fdatasync`) of the file since the store was opened.
    pub file_syncs: u64,
}

impl L2Stats {
    /// `live_bytes / file_bytes`: how much of the file is live data (0 without a file).
    #[expect(clippy::cast_precision_loss, reason = "a ratio")]
    pub fn live_to_file(&self) -> f64 {
        if self.file_bytes == 0 {
            0.0
        } else {
            self.live_bytes as f64 / self.file_bytes as f64
        }
    }
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
    label_invalidations: AtomicU64,
    prefix_invalidations: AtomicU64,
    cleared: AtomicU64,
    namespace_flushes: AtomicU64,
    swept: AtomicU64,
    commits: AtomicU64,
    durable_commits: AtomicU64,
    batched_writes: AtomicU64,
    failed_writes: AtomicU64,
    lost_writes: AtomicU64,
    rejected_writes: AtomicU64,
    negative_skips: AtomicU64,
    synopsis_false_positives: AtomicU64,
    synopsis_rebuilds: AtomicU64,
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
    /// What a get returns meanwhile (if its generation is still current); `None` for a delete.
    entry: Option<Arc<Entry>>,
    /// The key's synopsis hash (for a put: with the put's generation).
    synopsis_hash: u64,
}

/// A record as read back: its value, metadata and labels.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Entry {
    /// The value, decompressed.
    pub value: Bytes,
    /// The caller's metadata, as put (empty if none).
    pub meta: Bytes,
    /// The record's labels, distinct, in the order first given.
    pub labels: Vec<Bytes>,
    /// The namespace generation it was written in.
    pub generation: u64,
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
    /// Mirrors of `WriterState::totals` for lock-free stats.
    live_bytes: AtomicU64,
    footprint: AtomicU64,
    /// Current generation of every namespace ever flushed (others are at 0). Updated after the
    /// bump's durable commit.
    generations: RwLock<HashMap<String, u64>>,
    /// Whether `generations` has any entry: gets of a store whose namespaces were never
    /// flushed skip its lock (every reader taking it would bounce its cache line).
    any_generation: AtomicBool,
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
    /// Bytes redb read from and wrote to the file.
    file_io: Arc<FileIo>,
    /// What a put does when the store is full.
    pub(crate) on_full: OnFull,
    /// SIEVE's visited bits, set by gets (see [`crate::eviction`]).
    pub(crate) visited: VisitedBits,
    /// Which keys may be present (see [`crate::synopsis`]).
    pub(crate) synopsis: Synopsis,
}

impl Inner {
    pub(crate) fn key_hash(&self, namespace: &str, key: &[u8]) -> u64 {
        self.key_hasher.hash_one((namespace, key))
    }

    /// The synopsis hash of a key written in `generation` of its namespace.
    pub(crate) fn synopsis_hash(&self, namespace: &str, generation: u64, key: &[u8]) -> u64 {
        self.key_hasher.hash_one((namespace, generation, key))
    }

    /// Whether `(namespace, key)` may have a committed record of the namespace's current
    /// generation `generation` (`false`: it certainly has none).
    fn may_have_record(&self, namespace: &str, generation: u64, key: &[u8]) -> bool {
        self.synopsis
            .may_contain(self.synopsis_hash(namespace, generation, key))
    }

    /// Rebuilds the synopsis, sized for the records there are now (see [`crate::synopsis`]).
    /// Runs on the writer thread while it is idle, so no commit happens meanwhile.
    ///
    /// # Errors
    ///
    /// [`L2Error::Storage`] if the snapshot cannot be read; the old filter stays.
    pub(crate) fn rebuild_synopsis(&self) -> Result<()> {
        let generations = self.generations.read().clone();
        let records = order_len(&self.db)?;
        {
            let p = self.pending.lock();
            let next = Filter::new(Filter::capacity_for(records), self.synopsis.fp());
            for w in p.writes.values() {
                next.insert(w.synopsis_hash);
            }
            self.synopsis.begin_rebuild(next);
        }
        let mut built = Ok(0);
        self.synopsis.with_next(|next| {
            built = committed_keys(&self.db, &generations, |ns, key, generation| {
                next.insert(self.synopsis_hash(ns, generation, key));
            });
        });
        match built {
            Ok(items) => {
                self.synopsis.finish_rebuild(items);
                bump(&self.counters.synopsis_rebuilds, 1);
                Ok(())
            }
            Err(e) => {
                self.synopsis.abort_rebuild();
                Err(e)
            }
        }
    }

    pub(crate) fn totals_mirror(&self, totals: Totals) {
        self.live_bytes.store(totals.live, Ordering::Relaxed);
        self.footprint.store(totals.footprint, Ordering::Relaxed);
    }

    pub(crate) fn set_generation(&self, ns: &str, generation: u64) {
        self.generations.write().insert(ns.to_owned(), generation);
        self.any_generation.store(true, Ordering::Release);
    }

    fn generation(&self, ns: &str) -> u64 {
        if !self.any_generation.load(Ordering::Acquire) {
            return 0;
        }
        self.generations.read().get(ns).copied().unwrap_or(0)
    }

    pub(crate) fn count_swept(&self, n: u64) {
        bump(&self.counters.swept, n);
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
                Op::InvalidateLabels { .. } => bump(&c.label_invalidations, a.removed),
                Op::Put { .. } if a.rejected => bump(&c.rejected_writes, 1),
                Op::Put { saved, .. } => {
                    bump(&c.insertions, 1);
                    if *saved > 0 {
                        bump(&c.compressed, 1);
                        bump(&c.bytes_saved, *saved);
                    }
                }
                Op::Delete { .. } => bump(&c.deletes, u64::from(a.found)),
                Op::BumpGeneration { .. } => bump(&c.namespace_flushes, 1),
                Op::InvalidatePrefix { .. } => bump(&c.prefix_invalidations, a.removed),
                Op::Clear => bump(&c.cleared, a.removed),
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
        if !self.may_have_record(namespace, self.generation(namespace), key) {
            return Ok(false);
        }
        let txn = self.db.begin_read()?;
        let table = txn.open_table(RECORDS)?;
        Ok(table.get((namespace, key))?.is_some())
    }
}

/// A durable store of `(namespace, key) → value` records in one redb file.
///
/// Every record is checksummed and self-describing (see [`crate::record`]); a record that fails
/// verification is a miss, never data. The file is held to [`L2Options::max_bytes`] by
/// eviction (SIEVE by default, see [`crate::EvictionPolicy`]). The store is `Sync`: gets run concurrently on the calling threads; writes queue to
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
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(&path)
            .map_err(io)?;
        let backend = redb::backends::FileBackend::new(file).map_err(|e| open_error(&path, e))?;
        let (backend, file_io) = Counting::new(backend);
        let db = redb::Builder::new()
            .set_cache_size(page_cache)
            .create_with_backend(backend)
            .map_err(|e| open_error(&path, e))?;
        let state = init_or_check(&db, &path).map_err(|e| match e {
            L2Error::Foreign { path, reason } if needs_repair => L2Error::Foreign {
                path,
                reason: format!(
                    "{reason} (its last writer did not shut down cleanly, so redb repaired the \
                     file's allocator metadata before the check could run; its data is unchanged)"
                ),
            },
            other => other,
        })?;
        Self::start(db, options, state, file_io)
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
        let (backend, file_io) = Counting::new(backend);
        let db = redb::Builder::new()
            .set_cache_size(page_cache)
            .create_with_backend(backend)
            .map_err(|e| open_error(&options.path, e))?;
        let state = init_or_check(&db, &options.path)?;
        Self::start(db, options, state, file_io)
    }

    /// Wraps an opened, checked database and starts the writer thread.
    fn start(
        db: Database,
        options: &L2Options,
        state: Persisted,
        file_io: Arc<FileIo>,
    ) -> Result<Self> {
        let path = options.path.clone();
        let key_hasher = RandomState::new();
        let fp = options.synopsis_false_positive_rate;
        let filter = Filter::new(Filter::capacity_for(order_len(&db)?), fp);
        let items = committed_keys(&db, &state.generations, |ns, key, generation| {
            filter.insert(key_hasher.hash_one((ns, generation, key)));
        })?;
        let synopsis = Synopsis::new(filter, items, fp);
        let sweeps = state
            .generations
            .iter()
            .filter(|(_, g)| **g > 0)
            .map(|(ns, _)| ns.clone())
            .collect();
        let inner = Arc::new(Inner {
            db,
            path: path.clone(),
            max_bytes: options.max_bytes.as_u64(),
            compression: options.compression,
            write_mode: options.write_mode,
            writer: Mutex::new(WriterState::new(
                state.totals,
                state.next_seq,
                sweeps,
                options.eviction,
            )),
            live_bytes: AtomicU64::new(state.totals.live),
            footprint: AtomicU64::new(state.totals.footprint),
            any_generation: AtomicBool::new(!state.generations.is_empty()),
            generations: RwLock::new(state.generations),
            next_seq: AtomicU64::new(state.next_seq),
            pending: Mutex::new(Pending::default()),
            pending_len: AtomicUsize::new(0),
            queued: Mutex::new(Queued::default()),
            queue_room: Condvar::new(),
            queue_capacity: options.group_commit.queue_capacity,
            queue_max_bytes: options.group_commit.queue_max_bytes.as_u64(),
            key_hasher,
            counters: Counters::default(),
            on_full: options.on_full,
            visited: VisitedBits::for_budget(footprint_limit(options.max_bytes.as_u64())),
            synopsis,
            file_io,
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
    /// writes: a put or delete is visible here from the moment it is queued. A record written
    /// before its namespace's last [`Store::invalidate_namespace`] is a miss.
    ///
    /// A record that fails verification counts as a miss and in
    /// [`L2Stats::corrupt_records`], and is deleted.
    ///
    /// # Errors
    ///
    /// [`L2Error::Storage`] if redb fails to read.
    pub fn get(&self, namespace: &str, key: &[u8]) -> Result<Option<Bytes>> {
        Ok(self.get_entry(namespace, key)?.map(|e| e.value))
    }

    /// As [`Store::get`], with the record's metadata and labels.
    ///
    /// # Errors
    ///
    /// As [`Store::get`].
    pub fn get_entry(&self, namespace: &str, key: &[u8]) -> Result<Option<Entry>> {
        let inner = &*self.inner;
        let generation = inner.generation(namespace);
        // Most gets find nothing queued: they skip the pending lock, which every reader would
        // otherwise take in turn. A write queued before this get began is counted here already
        // (the count is updated under the lock, before the write's caller is answered).
        if inner.pending_len.load(Ordering::Acquire) > 0 {
            let p = inner.pending.lock();
            if let Some(w) = p.writes.get(&pending_key(namespace, key)) {
                let entry = w
                    .entry
                    .as_ref()
                    .filter(|e| e.generation >= generation)
                    .map(|e| Entry::clone(e));
                drop(p);
                let counter = if entry.is_some() {
                    &inner.counters.hits
                } else {
                    &inner.counters.misses
                };
                bump(counter, 1);
                return Ok(entry);
            }
        }
        if !inner.may_have_record(namespace, generation, key) {
            bump(&inner.counters.misses, 1);
            bump(&inner.counters.negative_skips, 1);
            return Ok(None);
        }
        match read_entry(&inner.db, namespace, key)? {
            Read::Found(entry, seq) if entry.generation >= generation => {
                bump(&inner.counters.hits, 1);
                inner.visited.mark(seq);
                Ok(Some(entry))
            }
            Read::Found(..) | Read::Absent => {
                bump(&inner.counters.misses, 1);
                bump(&inner.counters.synopsis_false_positives, 1);
                Ok(None)
            }
            Read::Corrupt => {
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

    /// Whether `(namespace, key)` may have a record: `false` means it certainly has none
    /// (never written, or written before its namespace's last flush, or deleted while queued);
    /// `true` means a get may find one. Reads no record: it asks the queue and the synopsis
    /// (a Bloom filter), so deleted and evicted keys can still answer `true`.
    pub fn may_contain(&self, namespace: &str, key: &[u8]) -> bool {
        let inner = &*self.inner;
        let generation = inner.generation(namespace);
        if inner.pending_len.load(Ordering::Acquire) > 0 {
            let p = inner.pending.lock();
            if let Some(w) = p.writes.get(&pending_key(namespace, key)) {
                return w.entry.as_ref().is_some_and(|e| e.generation >= generation);
            }
        }
        let maybe = inner.may_have_record(namespace, generation, key);
        if !maybe {
            bump(&inner.counters.negative_skips, 1);
        }
        maybe
    }

    /// Stores `value` under `(namespace, key)`, replacing any record, compressing it if the
    /// [`CompressionOptions`] say so; the writer evicts the oldest records if the budget
    /// requires. Same as [`Store::put_with`] with no metadata and no labels.
    ///
    /// # Errors
    ///
    /// As [`Store::put_with`].
    pub fn put(&self, namespace: &str, key: &[u8], value: &[u8]) -> Result<PutOutcome> {
        self.put_with(namespace, key, value, &[], &[])
    }

    /// Stores `value` under `(namespace, key)` with caller metadata `meta` (returned by
    /// [`Store::get_entry`]) and `labels` (tags, dependencies: [`Store::invalidate_labels`]
    /// removes every record of the namespace carrying one), replacing any record; the writer
    /// evicts the oldest records if the budget requires. The value is compressed if the
    /// [`CompressionOptions`] say so.
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
    /// A put that races with [`Store::invalidate_namespace`] of its namespace may be flushed
    /// by it.
    ///
    /// # Errors
    ///
    /// [`L2Error::KeyTooLong`] for a namespace, key, label or metadata over its limit
    /// ([`MAX_NAMESPACE_LEN`], [`MAX_KEY_LEN`], [`record::MAX_LABEL_LEN`],
    /// [`record::MAX_LABELS_LEN`], [`record::MAX_META_LEN`]); [`L2Error::TooLarge`] for a
    /// record the store cannot hold; [`L2Error::WriteFailed`] if the commit failed;
    /// [`L2Error::Storage`] if redb fails a read. Nothing is written on error.
    pub fn put_with(
        &self,
        namespace: &str,
        key: &[u8],
        value: &[u8],
        meta: &[u8],
        labels: &[&[u8]],
    ) -> Result<PutOutcome> {
        check_key(namespace, key)?;
        let labels = distinct(labels);
        check_sections(meta, &labels)?;
        let original_len = value.len() as u64;
        if original_len > MAX_VALUE_LEN {
            return Err(L2Error::TooLarge {
                size: original_len,
                max: MAX_VALUE_LEN,
            });
        }
        let inner = &*self.inner;
        let compressed = inner.compression.compress(value);
        let (flags, payload) = match &compressed {
            Some(c) => (FLAG_ZSTD, c.as_slice()),
            None => (0, value),
        };
        let generation = inner.generation(namespace);
        let seq = inner.next_seq.fetch_add(1, Ordering::Relaxed);
        let encoded = record::encode(
            namespace,
            key,
            &RecordParts {
                seq,
                generation,
                flags,
                original_len,
                labels: &labels,
                meta,
                payload,
            },
        );
        let owned_labels: Vec<Box<[u8]>> = labels.iter().map(|l| Box::from(*l)).collect();
        let rec = crate::tables::NewRecord {
            ns: namespace,
            key,
            seq,
            encoded: &encoded,
            labels: &owned_labels,
        };
        let footprint = rec.footprint();
        let limit = footprint_limit(inner.max_bytes);
        if footprint > limit {
            return Err(L2Error::TooLarge {
                size: footprint,
                max: limit,
            });
        }
        let saved = original_len - payload.len() as u64;
        let pending = Entry {
            value: Bytes::copy_from_slice(value),
            meta: Bytes::copy_from_slice(meta),
            labels: labels.iter().map(|l| Bytes::copy_from_slice(l)).collect(),
            generation,
        };
        let op = Op::Put {
            ns: namespace.into(),
            key: key.into(),
            encoded,
            seq,
            generation,
            labels: owned_labels,
            value_len: original_len,
            saved,
            footprint,
        };
        if inner.on_full == OnFull::Reject
            && inner
                .footprint
                .load(Ordering::Relaxed)
                .saturating_add(footprint)
                > limit
        {
            // Refused before queueing when the last commit left no room (a race only moves the
            // refusal to the commit). An overwrite still removes the old record.
            bump(&inner.counters.rejected_writes, 1);
            let queued = {
                let p = inner.pending.lock();
                p.writes
                    .get(&pending_key(namespace, key))
                    .is_some_and(|w| w.entry.is_some())
            };
            if queued || inner.has_record(namespace, key)? {
                self.delete(namespace, key)?;
            }
            return Err(L2Error::Full {
                needed: footprint,
                limit,
            });
        }
        let async_mode = inner.write_mode == WriteMode::Async;
        let waited = self.enqueue(op, Some(Arc::new(pending)), async_mode, true)?;
        if waited.as_ref().is_some_and(|a| a.rejected) {
            return Err(L2Error::Full {
                needed: footprint,
                limit,
            });
        }
        Ok(PutOutcome {
            committed: waited.is_some(),
            durable: waited.is_some_and(|a| a.durable),
            compressed: compressed.is_some(),
        })
    }

    /// Removes every record of `namespace` that carries one of `labels` (committed or queued
    /// before the call); returns how many live records it removed (records a namespace flush
    /// killed are removed, not counted). Durable when it returns: a crash cannot bring them
    /// back.
    ///
    /// # Errors
    ///
    /// [`L2Error::KeyTooLong`] for a namespace or label over its limit;
    /// [`L2Error::WriteFailed`] if the commit failed (nothing is removed then).
    pub fn invalidate_labels(&self, namespace: &str, labels: &[&[u8]]) -> Result<u64> {
        Ok(self.invalidate_labels_keys(namespace, labels)?.len() as u64)
    }

    /// As [`Store::invalidate_labels`], returning the keys of the records it removed (for
    /// callers that cascade, or keep other tiers in step).
    ///
    /// # Errors
    ///
    /// As [`Store::invalidate_labels`].
    pub fn invalidate_labels_keys(
        &self,
        namespace: &str,
        labels: &[&[u8]],
    ) -> Result<Vec<Box<[u8]>>> {
        check_key(namespace, b"")?;
        let labels = distinct(labels);
        check_sections(&[], &labels)?;
        let op = Op::InvalidateLabels {
            ns: namespace.into(),
            labels: labels.iter().map(|l| Box::from(*l)).collect(),
        };
        let applied = self.enqueue(op, None, false, true)?;
        Ok(applied.map(|a| a.removed_keys).unwrap_or_default())
    }

    /// Removes every record of `namespace` whose key starts with `prefix` (committed or queued
    /// before the call); returns their keys. Durable when it returns. Costs one ordered scan of
    /// the namespace's keys from `prefix` on.
    ///
    /// # Errors
    ///
    /// [`L2Error::KeyTooLong`] for a namespace or prefix over its limit;
    /// [`L2Error::WriteFailed`] if the commit failed (nothing is removed then).
    pub fn invalidate_prefix(&self, namespace: &str, prefix: &[u8]) -> Result<Vec<Box<[u8]>>> {
        check_key(namespace, prefix)?;
        let op = Op::InvalidatePrefix {
            ns: namespace.into(),
            prefix: prefix.into(),
        };
        let applied = self.enqueue(op, None, false, true)?;
        Ok(applied.map(|a| a.removed_keys).unwrap_or_default())
    }

    /// Removes every record (committed or queued before the call); returns how many committed
    /// records there were. Namespace generations are kept. Durable when it returns.
    ///
    /// # Errors
    ///
    /// [`L2Error::WriteFailed`] if the commit failed (nothing is removed then).
    pub fn clear(&self) -> Result<u64> {
        let applied = self.enqueue(Op::Clear, None, false, true)?;
        Ok(applied.map_or(0, |a| a.removed))
    }

    /// The current generation of `namespace`: 0 until its first
    /// [`Store::invalidate_namespace`], then one more per flush. Durable across restarts.
    pub fn generation(&self, namespace: &str) -> u64 {
        self.inner.generation(namespace)
    }

    /// Every namespace that has a committed record or has been flushed, in order. One seek per
    /// namespace.
    ///
    /// # Errors
    ///
    /// [`L2Error::Storage`] if redb fails to read.
    pub fn namespaces(&self) -> Result<Vec<String>> {
        let txn = self.inner.db.begin_read()?;
        let records = txn.open_table(RECORDS)?;
        let mut out: std::collections::BTreeSet<String> =
            self.inner.generations.read().keys().cloned().collect();
        let mut from = String::new();
        loop {
            let Some(row) = records.range((from.as_str(), &b""[..])..)?.next() else {
                break;
            };
            let (k, _) = row?;
            let ns = k.value().0.to_owned();
            // Every key of `ns` sorts before `(ns + "\0", _)`, and every later namespace at or
            // after it.
            from = format!("{ns}\0");
            out.insert(ns);
        }
        Ok(out.into_iter().collect())
    }

    /// Flushes `namespace` in O(1): bumps its generation, durably, so every record written
    /// before (committed or queued) is dead from the moment this returns, across restarts too.
    /// Dead records are removed by a background sweep. Returns the new generation.
    ///
    /// # Errors
    ///
    /// [`L2Error::KeyTooLong`] for a namespace over its limit; [`L2Error::WriteFailed`] if the
    /// commit failed (the namespace is not flushed then).
    pub fn invalidate_namespace(&self, namespace: &str) -> Result<u64> {
        check_key(namespace, b"")?;
        let op = Op::BumpGeneration {
            ns: namespace.into(),
        };
        let applied = self.enqueue(op, None, false, true)?;
        Ok(applied.map_or(0, |a| a.generation))
    }

    /// Removes the record of `(namespace, key)`; returns whether there was a live one
    /// (committed or queued; a record its namespace's flush killed is removed, not reported). Durable when it returns: a crash cannot bring the record back.
    ///
    /// # Errors
    ///
    /// [`L2Error::KeyTooLong`]; [`L2Error::WriteFailed`] if the commit failed (nothing is
    /// removed then).
    pub fn delete(&self, namespace: &str, key: &[u8]) -> Result<bool> {
        check_key(namespace, key)?;
        let generation = self.inner.generation(namespace);
        let queued_value = {
            let p = self.inner.pending.lock();
            p.writes
                .get(&pending_key(namespace, key))
                .map(|w| w.entry.as_ref().is_some_and(|e| e.generation >= generation))
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
        pending: Option<Arc<Entry>>,
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
                Op::DeleteIfCorrupt { .. }
                | Op::InvalidateLabels { .. }
                | Op::InvalidatePrefix { .. }
                | Op::BumpGeneration { .. }
                | Op::Clear
                | Op::Flush => None,
            };
            let (mut wait, mut durable) = (wait, false);
            if async_put && let Some((pk, h, ns, key)) = &keyed {
                let replaces = p.writes.get(pk).is_some_and(|w| w.entry.is_some())
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
                        .or_insert(PendingWrite {
                            id,
                            entry: None,
                            synopsis_hash: 0,
                        });
                }
                (op, Some((pk, _, ns, key))) => {
                    let generation = match op {
                        Op::Put { generation, .. } => *generation,
                        _ => inner.generation(ns),
                    };
                    let synopsis_hash = inner.synopsis_hash(ns, generation, key);
                    if matches!(op, Op::Put { .. }) {
                        // Before the put is queued, so no reader or async put that could see
                        // its record finds the synopsis without it.
                        inner.synopsis.insert(synopsis_hash);
                    }
                    p.writes.insert(
                        pk,
                        PendingWrite {
                            id,
                            entry: pending,
                            synopsis_hash,
                        },
                    );
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
        let (file_read_bytes, file_written_bytes, file_syncs) = inner.file_io.snapshot();
        L2Stats {
            hits: load(&c.hits),
            misses: load(&c.misses),
            corrupt_records: load(&c.corrupt),
            insertions: load(&c.insertions),
            compressed_insertions: load(&c.compressed),
            bytes_saved: load(&c.bytes_saved),
            evictions: load(&c.evictions),
            deletes: load(&c.deletes),
            label_invalidations: load(&c.label_invalidations),
            prefix_invalidations: load(&c.prefix_invalidations),
            cleared: load(&c.cleared),
            namespace_flushes: load(&c.namespace_flushes),
            swept: load(&c.swept),
            commits: load(&c.commits),
            durable_commits: load(&c.durable_commits),
            batched_writes: load(&c.batched_writes),
            failed_writes: load(&c.failed_writes),
            lost_writes: load(&c.lost_writes),
            rejected_writes: load(&c.rejected_writes),
            negative_skips: load(&c.negative_skips),
            synopsis_false_positives: load(&c.synopsis_false_positives),
            synopsis_rebuilds: load(&c.synopsis_rebuilds),
            synopsis_bytes: inner.synopsis.bytes() as u64,
            queued_writes: inner.queued.lock().ops as u64,
            live_bytes: load(&inner.live_bytes),
            footprint_bytes: load(&inner.footprint),
            footprint_limit: footprint_limit(inner.max_bytes),
            file_capacity: file_capacity(inner.max_bytes),
            max_bytes: inner.max_bytes,
            file_bytes: std::fs::metadata(&inner.path).map_or(0, |m| m.len()),
            file_read_bytes,
            file_written_bytes,
            file_syncs,
        }
    }

    /// Flushes, then recomputes the store's bookkeeping from its tables and compares: live
    /// bytes and footprint (in memory and persisted) equal the sums over records, chunks and
    /// label rows, and the footprint is within its limit; every record that passes
    /// verification has a sequence number below the next one, an order row naming its key,
    /// all its chunks, and an index row for each of its labels. (Records that fail
    /// verification, e.g. after bit rot, are only counted.) For tests: it reads every record;
    /// writes queued meanwhile wait.
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
        let blobs = txn.open_table(BLOBS)?;
        let labels = txn.open_multimap_table(LABELS)?;
        let mut totals = Totals::default();
        for row in records.iter()? {
            let (k, v) = row?;
            let (ns, key) = k.value();
            let entry = v.value();
            totals.live += (ns.len() + key.len() + entry.len()) as u64;
            totals.footprint += entry_footprint(ns.len(), key.len(), entry.len());
            let Ok(view) = record::verify_entry(ns, key, entry) else {
                continue;
            };
            let seq = view.header.seq;
            let generation = inner.generation(ns);
            assert!(
                view.header.generation < generation || inner.may_have_record(ns, generation, key),
                "record {seq} is live but missing from the synopsis"
            );
            assert!(
                seq < w.next_seq,
                "record seq {seq} not below next_seq {}",
                w.next_seq
            );
            let names_key = order.get(seq)?.is_some_and(|e| e.value() == (ns, key));
            assert!(names_key, "order row {seq} does not name its record's key");
            let count = view.header.chunk_count();
            let chunks = blobs.range((seq, 0)..(seq, count))?.count();
            assert_eq!(chunks, count as usize, "chunks of record {seq}");
            for label in view.labels() {
                let indexed = labels
                    .get((ns, label))?
                    .any(|k| k.is_ok_and(|k| k.value() == key));
                assert!(indexed, "label of record {seq} not indexed");
            }
        }
        for row in blobs.iter()? {
            let (_, chunk) = row?;
            totals.live += chunk.value().len() as u64;
            totals.footprint += chunk_footprint(chunk.value().len());
        }
        for row in labels.iter()? {
            let (k, keys) = row?;
            let (ns, label) = k.value();
            for key in keys {
                totals.footprint += label_footprint(ns.len(), label.len(), key?.value().len());
            }
        }
        assert_eq!(totals, w.totals, "bookkeeping differs from the tables");
        let limit = footprint_limit(inner.max_bytes);
        assert!(
            totals.footprint <= limit,
            "footprint {} above its limit {limit}",
            totals.footprint
        );
        let meta = txn.open_table(META)?;
        let persisted = Totals {
            live: meta.get(META_LIVE_BYTES)?.map_or(0, |g| g.value()),
            footprint: meta.get(META_FOOTPRINT)?.map_or(0, |g| g.value()),
        };
        assert_eq!(persisted, totals, "persisted bookkeeping differs");
        Ok(())
    }
}

/// What reading a record found.
enum Read {
    Absent,
    /// The record, and its sequence number.
    Found(Entry, u64),
    Corrupt,
}

/// Reads and verifies the record of `(namespace, key)` in one read transaction: the entry, then
/// its chunks.
fn read_entry(db: &Database, namespace: &str, key: &[u8]) -> Result<Read> {
    let txn = db.begin_read()?;
    let records = txn.open_table(RECORDS)?;
    let Some(guard) = records.get((namespace, key))? else {
        return Ok(Read::Absent);
    };
    let Ok(view) = record::verify_entry(namespace, key, guard.value()) else {
        return Ok(Read::Corrupt);
    };
    let count = view.header.chunk_count();
    let value = if count == 0 {
        record::assemble(&view, [])
    } else {
        let blobs = txn.open_table(BLOBS)?;
        let chunks = read_chunks(&blobs, &view.header)?;
        record::assemble(&view, chunks.iter().map(AccessGuard::value))
    };
    let Ok(value) = value else {
        return Ok(Read::Corrupt);
    };
    let seq = view.header.seq;
    Ok(Read::Found(
        Entry {
            value,
            meta: Bytes::copy_from_slice(view.meta),
            labels: view
                .labels()
                .into_iter()
                .map(Bytes::copy_from_slice)
                .collect(),
            generation: view.header.generation,
        },
        seq,
    ))
}

/// `labels` without repeats, in first-seen order.
fn distinct<'l>(labels: &[&'l [u8]]) -> Vec<&'l [u8]> {
    let mut seen = HashSet::with_capacity(labels.len());
    labels.iter().copied().filter(|l| seen.insert(*l)).collect()
}

/// Checks metadata and labels against the record format's limits.
fn check_sections(meta: &[u8], labels: &[&[u8]]) -> Result<()> {
    let too_long = |what, len, max| Err(KeyTooLong { what, len, max }.into());
    if meta.len() > record::MAX_META_LEN {
        return too_long("metadata", meta.len(), record::MAX_META_LEN);
    }
    if let Some(l) = labels.iter().find(|l| l.len() > record::MAX_LABEL_LEN) {
        return too_long("label", l.len(), record::MAX_LABEL_LEN);
    }
    let section: usize = labels.iter().map(|l| l.len() + 2).sum();
    if section > record::MAX_LABELS_LEN {
        return too_long("labels", section, record::MAX_LABELS_LEN);
    }
    Ok(())
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

/// What a store keeps across restarts besides its records.
struct Persisted {
    totals: Totals,
    next_seq: u64,
    generations: HashMap<String, u64>,
}

/// The store format of the database read by `txn`: `Some(format)` for a cache-l2 store this
/// build opens, `None` if it has no tables at all (a new database).
///
/// # Errors
///
/// [`L2Error::Foreign`] for anything else.
fn check_format(txn: &ReadTransaction, path: &Path) -> Result<Option<u64>> {
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
        None => Err(foreign(
            "it has tables but no cache-l2 format marker".into(),
        )),
        Some(v) if !(OLDEST_STORE_FORMAT..=STORE_FORMAT).contains(&v) => Err(foreign(format!(
            "store format {v}; this build reads formats {OLDEST_STORE_FORMAT} to {STORE_FORMAT}"
        ))),
        Some(v) => Ok(Some(v)),
    }
}

/// Checks the opened database with [`check_format`]; creates the tables of a new store and
/// migrates an older format (format 1 lacks the blob, label and generation tables and the
/// footprint counter, which is computed from its records). Returns what the store persisted.
fn init_or_check(db: &Database, path: &Path) -> Result<Persisted> {
    let format = check_format(&db.begin_read()?, path)?;
    if format != Some(STORE_FORMAT) {
        let txn = db.begin_write()?;
        let mut fmt = txn.open_table(FORMAT)?;
        fmt.insert(FORMAT_KEY, STORE_FORMAT)?;
        fmt.insert(CHUNK_LEN_KEY, record::CHUNK_LEN as u64)?;
        drop(fmt);
        let records = txn.open_table(RECORDS)?;
        let mut footprint = 0;
        for row in records.iter()? {
            let (k, v) = row?;
            let (ns, key) = k.value();
            footprint += entry_footprint(ns.len(), key.len(), v.value().len());
        }
        drop(records);
        txn.open_table(ORDER)?;
        txn.open_table(BLOBS)?;
        txn.open_table(GENERATIONS)?;
        txn.open_multimap_table(LABELS)?;
        let mut meta = txn.open_table(META)?;
        if format.is_none() {
            meta.insert(META_LIVE_BYTES, 0)?;
            meta.insert(META_NEXT_SEQ, 0)?;
        }
        meta.insert(META_FOOTPRINT, footprint)?;
        drop(meta);
        txn.commit()?;
    }
    let txn = db.begin_read()?;
    let meta = txn.open_table(META)?;
    let get = |k| -> Result<u64> { Ok(meta.get(k)?.map_or(0, |g| g.value())) };
    let totals = Totals {
        live: get(META_LIVE_BYTES)?,
        footprint: get(META_FOOTPRINT)?,
    };
    let next_seq = get(META_NEXT_SEQ)?;
    let mut generations = HashMap::new();
    for row in txn.open_table(GENERATIONS)?.iter()? {
        let (ns, g) = row?;
        generations.insert(ns.value().to_owned(), g.value());
    }
    Ok(Persisted {
        totals,
        next_seq,
        generations,
    })
}

/// Rows of the order table: about the number of records (stale rows included).
fn order_len(db: &Database) -> Result<usize> {
    let txn = db.begin_read()?;
    match txn.open_table(ORDER) {
        Ok(t) => Ok(usize::try_from(t.len()?).unwrap_or(usize::MAX)),
        Err(redb::TableError::TableDoesNotExist(_)) => Ok(0),
        Err(e) => Err(e.into()),
    }
}

/// Calls `f` with every `(namespace, key)` in the order table and its namespace's generation in
/// `generations` (0 if absent), and returns how many: the keys the synopsis starts from. The
/// order table holds a row for every record (stale rows only add false positives) and no
/// record bodies.
fn committed_keys(
    db: &Database,
    generations: &HashMap<String, u64>,
    mut f: impl FnMut(&str, &[u8], u64),
) -> Result<usize> {
    let txn = db.begin_read()?;
    let order = match txn.open_table(ORDER) {
        Ok(t) => t,
        Err(redb::TableError::TableDoesNotExist(_)) => return Ok(0),
        Err(e) => return Err(e.into()),
    };
    let mut n = 0;
    for row in order.iter()? {
        let (_, k) = row?;
        let (ns, key) = k.value();
        f(ns, key, generations.get(ns).copied().unwrap_or(0));
        n += 1;
    }
    Ok(n)
}

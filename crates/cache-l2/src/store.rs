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
    AccessGuard, Database, ReadTransaction, ReadableDatabase, ReadableMultimapTable, ReadableTable,
};

use crate::backend::FileIo;
use crate::budget::{
    chunk_footprint, entry_footprint, file_capacity, footprint_limit, label_footprint,
};
use crate::eviction::{OnFull, VisitedBits};
use crate::fault::{FaultKind, Health, contain, drop_contained, fault_kind};
use crate::open::{BackendFactory, Opened, Opener, Source, create_private, refuse_symlink};
use crate::record::{self, FLAG_ZSTD, MAX_VALUE_LEN, RecordParts};
use crate::schema::{BLOBS, LABELS, META, META_FOOTPRINT, META_LIVE_BYTES, ORDER, RECORDS};
use crate::stats::{Counters, L2Stats, bump};
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
    /// The open database; `None` while the writer thread reopens it after a fault, or after it
    /// gave up on a corrupt file. Readers and the writer thread hold the read side for one
    /// transaction; only the writer thread's recovery takes the write side (see
    /// [`crate::fault`]).
    db: RwLock<Option<Database>>,
    /// Opens the database again after a fault.
    opener: Mutex<Opener>,
    /// Degraded or not, and the fault counters.
    pub(crate) health: Arc<Health>,
    /// Wakes the idle writer thread when a reader notes a fault, so recovery starts at once.
    wake: Sender<()>,
    path: PathBuf,
    pub(crate) max_bytes: u64,
    /// The largest value a get decodes or a put stores, in bytes.
    pub(crate) max_value_bytes: u64,
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
    /// Runs on the writer thread while it is idle, so no commit happens meanwhile. The filter
    /// is sized by counting the order table's rows (a count no checksum covers is never
    /// trusted to size an allocation).
    ///
    /// # Errors
    ///
    /// [`L2Error::Storage`] (or a contained panic) if the snapshot cannot be read; the old
    /// filter stays.
    pub(crate) fn rebuild_synopsis(&self) -> Result<()> {
        let generations = self.generations.read().clone();
        let records = self.with_db(|db| {
            crate::open::committed_keys(&db.begin_read()?, &generations, |_, _, _| {})
        })?;
        {
            let p = self.pending.lock();
            let next = Filter::new(
                Filter::capacity_for(records + p.writes.len()),
                self.synopsis.fp(),
            );
            for w in p.writes.values() {
                next.insert(w.synopsis_hash);
            }
            self.synopsis.begin_rebuild(next);
        }
        let mut built = Ok(0);
        self.synopsis.with_next(|next| {
            built = self.with_db(|db| {
                crate::open::committed_keys(&db.begin_read()?, &generations, |ns, key, g| {
                    next.insert(self.synopsis_hash(ns, g, key));
                })
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

    /// Runs `f` on the open database, one transaction's worth, with any panic contained. An
    /// error that means a fault (I/O, corruption, a contained panic) degrades the store.
    ///
    /// # Errors
    ///
    /// [`L2Error::Degraded`] if no database is open; otherwise what `f` returned, or
    /// [`L2Error::Panicked`].
    pub(crate) fn with_db<T>(&self, f: impl FnOnce(&Database) -> Result<T>) -> Result<T> {
        let guard = self.db.read();
        let Some(db) = guard.as_ref() else {
            return Err(self.degraded_error());
        };
        let result = contain(|| f(db));
        drop(guard);
        if let Err(e) = &result {
            self.note_fault(e);
        }
        result
    }

    /// Degrades the store if `e` means a fault.
    pub(crate) fn note_fault(&self, e: &L2Error) {
        if matches!(e, L2Error::Panicked { .. }) {
            self.health.count_panic();
        }
        if let Some(kind) = fault_kind(e) {
            self.health.fault(kind, &e.to_string(), &self.path);
            let _ = self.wake.try_send(());
        }
    }

    /// Fails a write at once (counted) while the store is degraded.
    fn refuse_if_degraded(&self) -> Result<()> {
        if self.health.is_degraded() {
            bump(&self.counters.failed_writes, 1);
            return Err(self.degraded_error());
        }
        Ok(())
    }

    /// The error writes get while the store is degraded.
    pub(crate) fn degraded_error(&self) -> L2Error {
        L2Error::Degraded {
            path: self.path.clone(),
            reason: self
                .health
                .reason()
                .unwrap_or_else(|| "the store is closed".to_owned()),
        }
    }

    /// On the writer thread, after a fault: drops the database and opens the file again (with
    /// redb's integrity check after a corruption fault), so gets read the last durable state
    /// again; then, after an I/O fault, waits for the device to take writes
    /// ([`Opener::probe`]) before writes resume. On success the store's state is reloaded from
    /// the file (what the reopen rolled back counts in `lost_writes`); a failed attempt is
    /// retried after the backoff; a file refused as corrupt or foreign leaves the store
    /// degraded.
    pub(crate) fn recover(&self, kind: FaultKind, reopened: bool) {
        if !reopened {
            let old = self.db.write().take();
            if let Some(db) = old {
                drop_contained(db);
            }
            let mut opener = self.opener.lock();
            if matches!(opener.source, Source::Backends(None)) {
                drop(opener);
                self.health.give_up(
                    "the store was opened on a backend that cannot be opened again",
                    &self.path,
                );
                return;
            }
            let result = opener.open(&self.key_hasher, kind == FaultKind::Corrupt);
            drop(opener);
            match result {
                Ok(o) => {
                    self.install(o);
                    self.health.reopened();
                }
                Err(e @ (L2Error::Corrupt { .. } | L2Error::Foreign { .. })) => {
                    self.health.give_up(&e.to_string(), &self.path);
                    return;
                }
                Err(e) => {
                    self.health.attempt_failed(&e.to_string());
                    return;
                }
            }
        }
        if kind == FaultKind::Io
            && let Err(e) = self.opener.lock().probe()
        {
            // Gets read the reopened file meanwhile; writes wait for the device.
            self.health
                .attempt_failed(&format!("the device still refuses writes: {e}"));
            return;
        }
        self.health.recovered(&self.path);
    }

    /// Takes over a reopened database: reloads what the file persisted (counting the
    /// acknowledged inserts of commits it rolled back as lost), swaps in its synopsis (with the
    /// keys still queued), and makes it the open database.
    fn install(&self, o: Opened) {
        let mut w = self.writer.lock();
        let lost = w.rolled_back(o.persisted.commit_id);
        bump(&self.counters.lost_writes, lost);
        let next_seq = w.next_seq.max(o.persisted.next_seq);
        self.next_seq.fetch_max(next_seq, Ordering::Relaxed);
        let sweeps = o
            .persisted
            .generations
            .iter()
            .filter(|(_, g)| **g > 0)
            .map(|(ns, _)| ns.clone())
            .collect();
        w.reload(o.persisted.totals, next_seq, o.persisted.commit_id, sweeps);
        self.totals_mirror(o.persisted.totals);
        self.any_generation
            .store(!o.persisted.generations.is_empty(), Ordering::Release);
        *self.generations.write() = o.persisted.generations;
        {
            let p = self.pending.lock();
            for pw in p.writes.values() {
                o.filter.insert(pw.synopsis_hash);
            }
            self.synopsis.replace(o.filter, o.items);
        }
        drop(w);
        *self.db.write() = Some(o.db);
    }

    /// Takes the database out for closing (after the writer thread stopped).
    fn take_db(&self) -> Option<Database> {
        self.db.write().take()
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
    pub(crate) fn fail_batch(&self, batch: &[Request]) {
        self.finish_batch(batch, false);
        let lost = batch
            .iter()
            .filter(|r| matches!(r.op, Op::Put { .. }) && r.reply.is_none())
            .count() as u64;
        bump(&self.counters.failed_writes, batch.len() as u64);
        bump(&self.counters.lost_writes, lost);
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
        self.with_db(|db| {
            let txn = db.begin_read()?;
            let table = txn.open_table(RECORDS)?;
            Ok(table.get((namespace, key))?.is_some())
        })
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
    /// A file is checked through a read-only handle before redb opens it for writing, with any
    /// panic redb raises on a corrupt page contained (see `docs/reliability.md`); a file whose
    /// last writer did not shut down cleanly is repaired by redb, which verifies every page
    /// checksum first.
    ///
    /// # Errors
    ///
    /// - [`L2Error::InvalidOption`] for bad options;
    /// - [`L2Error::AlreadyOpen`] if the file is open already (this process or another);
    /// - [`L2Error::Foreign`] for a database that is not a cache-l2 store, and
    ///   [`L2Error::Corrupt`] for a file that is not a readable database or whose pages fail
    ///   (with [`crate::OnCorrupt::Recreate`] a corrupt file is moved aside instead and the
    ///   store starts empty); a refused file is left as it is;
    /// - [`L2Error::Io`] / [`L2Error::Storage`] for I/O failures, including failing to start
    ///   the writer thread.
    pub fn open(options: &L2Options) -> Result<Self> {
        options.validate()?;
        let path = options.path.clone();
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|source| L2Error::Io {
                path: path.clone(),
                source,
            })?;
        }
        refuse_symlink(&path)?;
        create_private(&path)?;
        Self::start(options, Source::File)
    }

    /// Opens a store on a caller-supplied redb storage backend instead of a file, e.g. one that
    /// injects I/O errors, for fault-injection tests. `options.path` only names the store in
    /// errors and stats (its file size is reported as 0 if there is no such file); no file
    /// checks run. The backend cannot be opened again, so a fault leaves the store degraded
    /// for good; [`Store::open_with_backends`] can recover.
    ///
    /// # Errors
    ///
    /// As [`Store::open`], for what the backend holds.
    pub fn open_with_backend(
        options: &L2Options,
        backend: impl redb::StorageBackend,
    ) -> Result<Self> {
        let mut once = Some(backend);
        let factory: BackendFactory = Box::new(move || {
            once.take()
                .map(|b| Box::new(b) as Box<dyn redb::StorageBackend>)
                .ok_or_else(|| std::io::Error::other("the backend was used already"))
        });
        let store = Self::start(options, Source::Backends(Some(factory)))?;
        store.inner.opener.lock().source = Source::Backends(None);
        Ok(store)
    }

    /// Opens a store on backends `make` returns: one for the first open, and a new one each
    /// time the writer thread reopens the store after a fault (they must all reach the same
    /// storage). For fault-injection tests of recovery.
    ///
    /// # Errors
    ///
    /// As [`Store::open`], for what the backend holds; [`L2Error::Io`] if `make` fails.
    pub fn open_with_backends<B: redb::StorageBackend>(
        options: &L2Options,
        mut make: impl FnMut() -> std::io::Result<B> + Send + 'static,
    ) -> Result<Self> {
        let factory: BackendFactory =
            Box::new(move || make().map(|b| Box::new(b) as Box<dyn redb::StorageBackend>));
        Self::start(options, Source::Backends(Some(factory)))
    }

    /// Opens the database and starts the writer thread.
    fn start(options: &L2Options, source: Source) -> Result<Self> {
        options.validate()?;
        let path = options.path.clone();
        let key_hasher = RandomState::new();
        let fp = options.synopsis_false_positive_rate;
        let health = Arc::new(Health::default());
        let file_io = Arc::new(FileIo::default());
        let mut opener = Opener {
            path: path.clone(),
            source,
            page_cache: usize::try_from(options.page_cache_bytes.as_u64()).unwrap_or(usize::MAX),
            on_corrupt: options.on_corrupt,
            fp,
            file_io: Arc::clone(&file_io),
            health: Arc::clone(&health),
        };
        let Opened {
            db,
            persisted: state,
            filter,
            items,
        } = opener.open(&key_hasher, false)?;
        let synopsis = Synopsis::new(filter, items, fp);
        let sweeps = state
            .generations
            .iter()
            .filter(|(_, g)| **g > 0)
            .map(|(ns, _)| ns.clone())
            .collect();
        let (wake, wake_rx) = crossbeam_channel::bounded(1);
        let inner = Arc::new(Inner {
            db: RwLock::new(Some(db)),
            opener: Mutex::new(opener),
            health,
            wake,
            path: path.clone(),
            max_bytes: options.max_bytes.as_u64(),
            max_value_bytes: options.max_value_bytes.as_u64().min(MAX_VALUE_LEN),
            compression: options.compression,
            write_mode: options.write_mode,
            writer: Mutex::new(WriterState::new(
                state.totals,
                state.next_seq,
                state.commit_id,
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
                .spawn(move || writer::run(&inner, &rx, &wake_rx, group))
        };
        let thread = match thread {
            Ok(t) => t,
            Err(source) => {
                if let Some(db) = inner.take_db() {
                    drop_contained(db);
                }
                return Err(L2Error::Io { path, source });
            }
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
    /// A record that fails verification, or declares a value longer than
    /// [`L2Options::max_value_bytes`], counts as a miss and in [`L2Stats::corrupt_records`],
    /// and is deleted. A read that fails (an I/O error, a page that makes redb panic) is a
    /// miss too, and degrades the store until its writer thread has reopened the file; so is a
    /// get while no database is open ([`L2Stats::unavailable_reads`]).
    ///
    /// # Errors
    ///
    /// None today: every failure is a counted miss. The `Result` leaves room for errors a
    /// caller must see.
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
        let max_value = inner.max_value_bytes;
        let read = match inner.with_db(|db| read_entry(db, namespace, key, max_value)) {
            Ok(read) => read,
            Err(e) => {
                // A fault (noted by `with_db`), or no database open: a miss either way.
                bump(&inner.counters.misses, 1);
                if matches!(e, L2Error::Degraded { .. }) {
                    bump(&inner.health.unavailable_reads, 1);
                }
                return Ok(None);
            }
        };
        match read {
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
            Read::Corrupt { oversized } => {
                bump(&inner.counters.misses, 1);
                bump(&inner.counters.corrupt, 1);
                bump(&inner.counters.oversized, u64::from(oversized));
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
        let inner = &*self.inner;
        let original_len = value.len() as u64;
        if original_len > inner.max_value_bytes {
            return Err(L2Error::TooLarge {
                size: original_len,
                max: inner.max_value_bytes,
            });
        }
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
        let mut out: std::collections::BTreeSet<String> =
            self.inner.generations.read().keys().cloned().collect();
        self.inner.with_db(|db| {
            let txn = db.begin_read()?;
            let records = txn.open_table(RECORDS)?;
            let mut from = String::new();
            loop {
                let Some(row) = records.range((from.as_str(), &b""[..])..)?.next() else {
                    break;
                };
                let (k, _) = row?;
                let ns = k.value().0.to_owned();
                // Every key of `ns` sorts before `(ns + "\0", _)`, and every later namespace
                // at or after it.
                from = format!("{ns}\0");
                out.insert(ns);
            }
            Ok(())
        })?;
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
        inner.refuse_if_degraded()?;
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

    /// Why the store is degraded ([`L2Stats::degraded`]), if it is: the fault that stopped its
    /// writes, or why its last reopen attempt failed.
    pub fn degraded_reason(&self) -> Option<String> {
        if self.inner.health.is_degraded() {
            self.inner.health.reason()
        } else {
            None
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
            oversized_records: load(&c.oversized),
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
            degraded: inner.health.is_degraded(),
            io_errors: load(&inner.health.io_errors),
            panics_contained: load(&inner.health.panics),
            corruption_faults: load(&inner.health.corruption_faults),
            reopens: load(&inner.health.reopens),
            reopen_failures: load(&inner.health.reopen_failures),
            recreated: load(&inner.health.recreated),
            unavailable_reads: load(&inner.health.unavailable_reads),
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
        // Not through `with_db`: a broken invariant must panic in the test that asked.
        let db = inner.db.read();
        let db = db.as_ref().ok_or_else(|| inner.degraded_error())?;
        let txn: ReadTransaction = db.begin_read()?;
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
    /// Failed verification; `oversized` if its header declared more than the reader accepts.
    Corrupt {
        oversized: bool,
    },
}

/// Reads and verifies the record of `(namespace, key)` in one read transaction: the entry, then
/// (if its declared size is within `max_value` bytes) its chunks.
fn read_entry(db: &Database, namespace: &str, key: &[u8], max_value: u64) -> Result<Read> {
    let txn = db.begin_read()?;
    let records = txn.open_table(RECORDS)?;
    let Some(guard) = records.get((namespace, key))? else {
        return Ok(Read::Absent);
    };
    let Ok(view) = record::verify_entry(namespace, key, guard.value()) else {
        return Ok(Read::Corrupt { oversized: false });
    };
    if record::check_size(&view.header, max_value).is_err() {
        return Ok(Read::Corrupt { oversized: true });
    }
    let count = view.header.chunk_count();
    let value = if count == 0 {
        record::assemble(&view, [])
    } else {
        let blobs = txn.open_table(BLOBS)?;
        let chunks = read_chunks(&blobs, &view.header)?;
        record::assemble(&view, chunks.iter().map(AccessGuard::value))
    };
    let Ok(value) = value else {
        return Ok(Read::Corrupt { oversized: false });
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
    Ok(record::check_labels(labels)?)
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
        // redb writes its shutdown header here; a database that a panic left half-updated may
        // panic again on the way out, which must not reach the caller either.
        if let Some(db) = self.inner.take_db() {
            drop_contained(db);
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

//! The store: open, get, put, delete.

use std::collections::HashSet;
use std::hash::{BuildHasher, RandomState};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use parking_lot::Mutex;
use redb::{
    Database, DatabaseError, Durability, ReadTransaction, ReadableDatabase, ReadableTable,
    TableError, WriteTransaction,
};

use crate::evict::{evict_until, remove_order_entry};
use crate::record::{self, FLAG_ZSTD, MAX_VALUE_LEN, accounted_size};
use crate::schema::{
    FORMAT, FORMAT_KEY, META, META_LIVE_BYTES, META_NEXT_SEQ, ORDER, RECORDS, STORE_FORMAT,
};
use crate::{CompressionOptions, KeyTooLong, L2Error, L2Options, Result};

/// The longest namespace a record may have, in bytes.
pub const MAX_NAMESPACE_LEN: usize = 1024;
/// The longest key a record may have, in bytes.
pub const MAX_KEY_LEN: usize = 64 << 10;

/// After this many non-durable commits in a row, the next commit is durable. Bounds what a crash
/// can take back (fresh inserts only, see the crate docs) and lets redb reuse freed pages.
const MAX_UNSYNCED_COMMITS: u32 = 256;

/// What a successful [`Store::put`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct PutOutcome {
    /// The key had a record, which this put replaced.
    pub replaced: bool,
    /// Records evicted (oldest first) to keep the budget.
    pub evicted: u64,
    /// The value was stored zstd-compressed.
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
    /// Records written (new keys and overwrites).
    pub insertions: u64,
    /// Records written zstd-compressed.
    pub compressed_insertions: u64,
    /// Bytes compression saved over the values' original lengths.
    pub bytes_saved: u64,
    /// Records evicted to keep the budget.
    pub evictions: u64,
    /// Records removed by [`Store::delete`].
    pub deletes: u64,
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
}

fn bump(c: &AtomicU64, n: u64) {
    c.fetch_add(n, Ordering::Relaxed);
}

/// State only writers touch; its mutex also serializes write transactions.
#[derive(Debug)]
struct WriterState {
    live_bytes: u64,
    next_seq: u64,
    /// Commits since the last durable one.
    unsynced_commits: u32,
    /// Hashes of keys whose records non-durable commits since the last durable one removed
    /// (evictions, corrupt-record deletes). A crash would bring those records back, so a later
    /// write or delete of such a key must be durable, or the crash would undo it. A hash
    /// collision only costs an extra durable commit.
    unsynced_removals: HashSet<u64>,
    key_hasher: RandomState,
}

impl WriterState {
    fn key_hash(&self, namespace: &str, key: &[u8]) -> u64 {
        self.key_hasher.hash_one((namespace, key))
    }

    /// Whether a commit that writes or deletes the key hashed `h` must be durable for a crash
    /// not to undo it (beyond what the caller requires).
    fn must_sync(&self, h: u64) -> bool {
        self.unsynced_removals.contains(&h) || self.unsynced_commits + 1 >= MAX_UNSYNCED_COMMITS
    }

    /// Records a commit and the keys it removed.
    fn committed(&mut self, durable: bool, removed: impl IntoIterator<Item = u64>) {
        if durable {
            self.unsynced_commits = 0;
            self.unsynced_removals.clear();
        } else {
            self.unsynced_commits += 1;
            self.unsynced_removals.extend(removed);
        }
    }
}

/// A durable store of `(namespace, key) → value` records in one redb file.
///
/// Every record is checksummed and self-describing (see [`crate::record`]); a record that fails
/// verification is a miss, never data. Live bytes are held to [`L2Options::max_bytes`] by FIFO
/// eviction. The store is `Sync`: gets run concurrently; writes are serialized.
pub struct Store {
    db: Database,
    path: PathBuf,
    max_bytes: u64,
    compression: CompressionOptions,
    writer: Mutex<WriterState>,
    /// Mirror of `WriterState::live_bytes` for lock-free stats.
    live_bytes: AtomicU64,
    counters: Counters,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("path", &self.path)
            .field("max_bytes", &self.max_bytes)
            .field("live_bytes", &self.live_bytes.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

impl Store {
    /// Opens the store at `options.path`, creating it (and its parent directory) if missing.
    ///
    /// # Errors
    ///
    /// - [`L2Error::InvalidOption`] for bad options;
    /// - [`L2Error::AlreadyOpen`] if the file is open already (this process or another);
    /// - [`L2Error::Foreign`] for a database that is not a cache-l2 store, and
    ///   [`L2Error::Corrupt`] for a file that is not a readable database; neither is modified;
    /// - [`L2Error::Io`] / [`L2Error::Storage`] for I/O failures.
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
        Ok(Self {
            db,
            path,
            max_bytes: options.max_bytes.as_u64(),
            compression: options.compression,
            writer: Mutex::new(WriterState {
                live_bytes,
                next_seq,
                unsynced_commits: 0,
                unsynced_removals: HashSet::new(),
                key_hasher: RandomState::new(),
            }),
            live_bytes: AtomicU64::new(live_bytes),
            counters: Counters::default(),
        })
    }

    /// The store's file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The value of `(namespace, key)`, verified (and decompressed), or `None`.
    ///
    /// A record that fails verification counts as a miss and in
    /// [`L2Stats::corrupt_records`], and is deleted.
    ///
    /// # Errors
    ///
    /// [`L2Error::Storage`] if redb fails to read.
    pub fn get(&self, namespace: &str, key: &[u8]) -> Result<Option<Bytes>> {
        let txn = self.db.begin_read()?;
        let table = txn.open_table(RECORDS)?;
        let decoded = table
            .get((namespace, key))?
            .map(|guard| record::decode(namespace, key, guard.value()));
        drop(table);
        drop(txn);
        match decoded {
            Some(Ok((_, value))) => {
                bump(&self.counters.hits, 1);
                Ok(Some(value))
            }
            None => {
                bump(&self.counters.misses, 1);
                Ok(None)
            }
            Some(Err(_)) => {
                bump(&self.counters.misses, 1);
                bump(&self.counters.corrupt, 1);
                // Best effort: the caller gets a miss whether or not the delete succeeds, and a
                // record that is still there fails verification again next time.
                let _ = self.delete_if_corrupt(namespace, key);
                Ok(None)
            }
        }
    }

    /// Stores `value` under `(namespace, key)`, replacing any record, compressing it if the
    /// [`CompressionOptions`] say so, and evicting the oldest records if the budget requires.
    ///
    /// Durability: an overwrite is durable when this returns (it can never be undone by a
    /// crash), and so is a write of a key whose record a not-yet-durable commit evicted. Any other
    /// fresh insert may ride a cheaper commit that a crash can take back (the key is then a miss,
    /// never another value); at most 255 such commits go by before a durable one.
    ///
    /// # Errors
    ///
    /// [`L2Error::KeyTooLong`], [`L2Error::TooLarge`] for records the store cannot hold;
    /// [`L2Error::Storage`] if redb fails. Nothing is written on error.
    pub fn put(&self, namespace: &str, key: &[u8], value: &[u8]) -> Result<PutOutcome> {
        check_key(namespace, key)?;
        let original_len = value.len() as u64;
        if original_len > MAX_VALUE_LEN {
            return Err(L2Error::TooLarge {
                size: original_len,
                max: MAX_VALUE_LEN,
            });
        }
        let compressed = self.compression.compress(value);
        let (flags, payload) = match &compressed {
            Some(c) => (FLAG_ZSTD, c.as_slice()),
            None => (0, value),
        };
        let mut w = self.writer.lock();
        let seq = w.next_seq;
        let rec = record::encode(namespace, key, seq, flags, original_len, payload);
        let size = accounted_size(namespace, key, rec.len());
        if size > self.max_bytes {
            return Err(L2Error::TooLarge {
                size,
                max: self.max_bytes,
            });
        }
        let mut live = w.live_bytes;
        let mut removed = Vec::new();
        let txn = self.db.begin_write()?;
        let (replaced, evicted) = {
            let mut records = txn.open_table(RECORDS)?;
            let mut order = txn.open_table(ORDER)?;
            let old = records
                .remove((namespace, key))?
                .map(|r| (record::peek_header(r.value()).ok(), r.value().len()));
            let replaced = old.is_some();
            if let Some((header, len)) = old {
                if let Some(h) = header {
                    remove_order_entry(&mut order, h.seq, namespace, key)?;
                }
                live = live.saturating_sub(accounted_size(namespace, key, len));
            }
            let evicted = evict_until(
                &mut records,
                &mut order,
                &mut live,
                size,
                self.max_bytes,
                |ns, k| removed.push(w.key_hash(ns, k)),
            )?;
            records.insert((namespace, key), rec.as_slice())?;
            order.insert(seq, (namespace, key))?;
            live += size;
            let mut meta = txn.open_table(META)?;
            meta.insert(META_LIVE_BYTES, live)?;
            meta.insert(META_NEXT_SEQ, seq + 1)?;
            (replaced, evicted)
        };
        // An overwrite must be durable (a crash must not bring the old value back), and so must a
        // write of a key whose record an unsynced commit evicted (the crash would restore it).
        let durable = replaced || w.must_sync(w.key_hash(namespace, key));
        commit(txn, durable)?;
        w.committed(durable, removed);
        w.live_bytes = live;
        w.next_seq = seq + 1;
        self.live_bytes.store(live, Ordering::Relaxed);
        drop(w);

        bump(&self.counters.insertions, 1);
        bump(&self.counters.evictions, evicted);
        if compressed.is_some() {
            bump(&self.counters.compressed, 1);
            bump(
                &self.counters.bytes_saved,
                original_len - payload.len() as u64,
            );
        }
        Ok(PutOutcome {
            replaced,
            evicted,
            compressed: compressed.is_some(),
        })
    }

    /// Removes the record of `(namespace, key)`; returns whether there was one. Durable when it
    /// returns: a crash cannot bring the record back (not even one that a not-yet-durable
    /// eviction had removed before this call).
    ///
    /// # Errors
    ///
    /// [`L2Error::Storage`] if redb fails; nothing is removed then.
    pub fn delete(&self, namespace: &str, key: &[u8]) -> Result<bool> {
        let removed = self.remove_where(namespace, key, true, |_| true)?;
        if removed {
            bump(&self.counters.deletes, 1);
        }
        Ok(removed)
    }

    /// Makes every commit so far durable.
    ///
    /// # Errors
    ///
    /// [`L2Error::Storage`] if the commit fails.
    pub fn flush(&self) -> Result<()> {
        let mut w = self.writer.lock();
        let txn = self.db.begin_write()?;
        commit(txn, true)?;
        w.committed(true, []);
        Ok(())
    }

    /// A snapshot of the counters and sizes.
    pub fn stats(&self) -> L2Stats {
        let c = &self.counters;
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
            live_bytes: load(&self.live_bytes),
            max_bytes: self.max_bytes,
            file_bytes: std::fs::metadata(&self.path).map_or(0, |m| m.len()),
        }
    }

    /// Recomputes the live-byte count and the order index from the records and compares them
    /// with the store's bookkeeping: live bytes (in memory and persisted) equal the sum of every
    /// record's accounted size and are within budget; every record that passes verification has
    /// a sequence number below the next one and an order entry naming its key. (Records that fail
    /// verification, e.g. after bit rot, are only counted.) For tests: it reads every record.
    ///
    /// # Errors
    ///
    /// [`L2Error::Storage`] if redb fails to read.
    ///
    /// # Panics
    ///
    /// On the first broken invariant, with a message naming it.
    pub fn validate(&self) -> Result<()> {
        let w = self.writer.lock();
        let txn: ReadTransaction = self.db.begin_read()?;
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
            live <= self.max_bytes,
            "live bytes {live} above budget {}",
            self.max_bytes
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

    /// Deletes the record of `(namespace, key)` if it still fails verification.
    fn delete_if_corrupt(&self, namespace: &str, key: &[u8]) -> Result<bool> {
        self.remove_where(namespace, key, false, |rec| {
            record::verify(namespace, key, rec).is_err()
        })
    }

    /// Removes the record of `(namespace, key)` if `pred` holds for its bytes, in one write
    /// transaction; durable before returning if `durable`.
    ///
    /// A durable removal that finds nothing still commits durably if an unsynced commit evicted
    /// the key: otherwise a crash would bring back the record the caller was told is gone.
    fn remove_where(
        &self,
        namespace: &str,
        key: &[u8],
        durable: bool,
        pred: impl FnOnce(&[u8]) -> bool,
    ) -> Result<bool> {
        check_key(namespace, key)?;
        let mut w = self.writer.lock();
        let h = w.key_hash(namespace, key);
        let mut live = w.live_bytes;
        let txn = self.db.begin_write()?;
        let removed = {
            let mut records = txn.open_table(RECORDS)?;
            let target = records
                .get((namespace, key))?
                .filter(|r| pred(r.value()))
                .map(|r| (record::peek_header(r.value()).ok(), r.value().len()));
            match target {
                None => false,
                Some((header, len)) => {
                    records.remove((namespace, key))?;
                    if let Some(hd) = header {
                        remove_order_entry(&mut txn.open_table(ORDER)?, hd.seq, namespace, key)?;
                    }
                    live = live.saturating_sub(accounted_size(namespace, key, len));
                    txn.open_table(META)?.insert(META_LIVE_BYTES, live)?;
                    true
                }
            }
        };
        let must_sync = w.must_sync(h);
        if !(removed || durable && must_sync) {
            txn.abort()?;
            return Ok(false);
        }
        let durable = durable || must_sync;
        commit(txn, durable)?;
        w.committed(durable, removed.then_some(h));
        w.live_bytes = live;
        self.live_bytes.store(live, Ordering::Relaxed);
        Ok(removed)
    }
}

impl Drop for Store {
    fn drop(&mut self) {
        // Make non-durable commits durable so a clean close loses nothing. An error here has no
        // caller to go to; the records it concerns are fresh inserts, which a crash may drop too.
        let _ = self.flush();
    }
}

/// Commits `txn`, durably (`fsync` before returning) or not (a crash may take it back).
fn commit(mut txn: WriteTransaction, durable: bool) -> Result<()> {
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

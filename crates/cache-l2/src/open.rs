//! Opening a store's database: the checks that leave a refused file untouched, crash repair,
//! `on_corrupt`, and opening again after a fault.
//!
//! A writable redb open rewrites the file's header (it marks the file as open), so everything
//! that can refuse a file runs first through a **read-only** handle: the format marker, the
//! persisted counters and generations, and one walk of the key index (the order table), which
//! also builds the synopsis. Every call into redb runs under [`crate::fault::contain`], so a
//! page that makes redb panic refuses the file instead of aborting the process. A file redb
//! cannot open read-only because its last writer did not shut down cleanly goes through redb's
//! crash repair instead, which verifies every page checksum before it writes anything.
//!
//! Sizes read from the file never size an allocation before they are counted: the synopsis is
//! sized by counting the order table's rows, not by the row count redb stores (which no
//! checksum covers on a cleanly closed file).

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use redb::{
    Database, DatabaseError, ReadTransaction, ReadableDatabase, ReadableTable, StorageBackend,
    TableError,
};

use crate::backend::{Counting, FileIo};
use crate::budget::entry_footprint;
use crate::fault::{Health, contain, drop_contained};
use crate::record;
use crate::schema::{
    CHUNK_LEN_KEY, FORMAT, FORMAT_KEY, GENERATIONS, LABELS, META, META_COMMIT_ID, META_FOOTPRINT,
    META_LIVE_BYTES, META_NEXT_SEQ, OLDEST_STORE_FORMAT, ORDER, RECORDS, STORE_FORMAT,
};
use crate::synopsis::Filter;
use crate::tables::Totals;
use crate::{L2Error, OnCorrupt, Result};

/// Makes a new backend for each (re)open of a store opened on a caller's backends.
pub(crate) type BackendFactory =
    Box<dyn FnMut() -> io::Result<Box<dyn StorageBackend>> + Send + 'static>;

/// Bytes [`Opener::probe`] writes.
const PROBE_BYTES: usize = 1 << 20;

/// Where a store's database lives.
pub(crate) enum Source {
    /// A file, opened afresh for every (re)open.
    File,
    /// A caller's backends (fault-injection tests); `None` once a one-shot backend is used.
    Backends(Option<BackendFactory>),
}

/// Opens (and reopens) one store's database.
pub(crate) struct Opener {
    pub(crate) path: PathBuf,
    pub(crate) source: Source,
    pub(crate) page_cache: usize,
    pub(crate) on_corrupt: OnCorrupt,
    pub(crate) fp: f64,
    pub(crate) file_io: Arc<FileIo>,
    pub(crate) health: Arc<Health>,
}

impl std::fmt::Debug for Opener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Opener")
            .field("path", &self.path)
            .field("on_corrupt", &self.on_corrupt)
            .finish_non_exhaustive()
    }
}

/// What a store keeps across restarts besides its records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Persisted {
    pub(crate) totals: Totals,
    pub(crate) next_seq: u64,
    /// The id of the last commit the file holds (0 for files written before commits were
    /// numbered).
    pub(crate) commit_id: u64,
    pub(crate) generations: HashMap<String, u64>,
}

/// An opened, checked database, with what it persisted and the synopsis of its keys.
pub(crate) struct Opened {
    pub(crate) db: Database,
    pub(crate) persisted: Persisted,
    pub(crate) filter: Filter,
    pub(crate) items: usize,
}

/// What the read-only pass found.
enum Pre {
    /// Nothing to check (an empty file, a new or older-format database) or no file at all.
    Nothing,
    /// The file needs crash repair, which only a writable open can do.
    NeedsRepair,
    /// Checked: what it persisted, and its synopsis.
    Checked(Persisted, Filter, usize),
}

impl Opener {
    /// Opens the database, checked. With `verify`, runs redb's integrity check (every page
    /// checksum) after opening. A corrupt file is moved aside and replaced by an empty one if
    /// `on_corrupt` says so (file stores only).
    ///
    /// # Errors
    ///
    /// [`L2Error::Corrupt`], [`L2Error::Foreign`], [`L2Error::AlreadyOpen`], [`L2Error::Io`],
    /// [`L2Error::Storage`].
    pub(crate) fn open(&mut self, hasher: &RandomState, verify: bool) -> Result<Opened> {
        match self.open_once(hasher, verify) {
            Err(L2Error::Corrupt { reason, .. })
                if self.on_corrupt == OnCorrupt::Recreate
                    && matches!(self.source, Source::File) =>
            {
                let aside = move_aside(&self.path)?;
                self.health
                    .recreated
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                tracing::warn!(
                    path = %self.path.display(),
                    moved_to = %aside.display(),
                    reason,
                    "corrupt L2 store moved aside; starting with an empty one"
                );
                self.open_once(hasher, false)
            }
            other => other,
        }
    }

    /// Whether the device takes writes again, asked before an I/O fault's reopen drops the
    /// database that still serves reads: for a file store, a 1 MiB file written and synced
    /// beside it (then removed). Stores on a caller's backends cannot be probed: `Ok`.
    ///
    /// # Errors
    ///
    /// The probe's I/O error (`ENOSPC` while the file system is still full).
    pub(crate) fn probe(&self) -> io::Result<()> {
        if !matches!(self.source, Source::File) {
            return Ok(());
        }
        let mut name = self.path.file_name().unwrap_or_default().to_owned();
        name.push(format!(".probe-{}", std::process::id()));
        let probe = self.path.with_file_name(name);
        let written = (|| {
            use std::io::Write as _;
            let mut f = std::fs::File::create(&probe)?;
            f.write_all(&vec![0u8; PROBE_BYTES])?;
            f.sync_all()
        })();
        let _ = std::fs::remove_file(&probe);
        written
    }

    fn open_once(&mut self, hasher: &RandomState, verify: bool) -> Result<Opened> {
        let (backend, pre) = match &mut self.source {
            Source::File => {
                let pre = precheck(&self.path, self.page_cache, hasher, self.fp)?;
                let file = std::fs::OpenOptions::new()
                    .read(true)
                    .write(true)
                    .open(&self.path)
                    .map_err(|source| L2Error::Io {
                        path: self.path.clone(),
                        source,
                    })?;
                let backend = redb::backends::FileBackend::new(file)
                    .map_err(|e| open_error(&self.path, e))?;
                (Box::new(backend) as Box<dyn StorageBackend>, pre)
            }
            Source::Backends(factory) => {
                let Some(make) = factory.as_mut() else {
                    return Err(L2Error::Io {
                        path: self.path.clone(),
                        source: io::Error::other("the store's backend cannot be opened again"),
                    });
                };
                let backend = make().map_err(|source| L2Error::Io {
                    path: self.path.clone(),
                    source,
                })?;
                (backend, Pre::Nothing)
            }
        };
        let repaired = matches!(pre, Pre::NeedsRepair);
        let path = self.path.clone();
        let counting = Counting::new(backend, Arc::clone(&self.file_io));
        let page_cache = self.page_cache;
        let db = contain(|| {
            redb::Builder::new()
                .set_cache_size(page_cache)
                .create_with_backend(counting)
                .map_err(|e| open_error(&path, e))
        })
        .map_err(|e| corrupt_at_open(&path, e, repaired))?;
        let fp = self.fp;
        contain(move || {
            let mut db = db;
            if verify {
                match db.check_integrity() {
                    Ok(_) => {}
                    Err(DatabaseError::Storage(redb::StorageError::Io(source))) => {
                        return Err(L2Error::Io { path, source });
                    }
                    Err(e) => {
                        return Err(L2Error::Corrupt {
                            path,
                            reason: format!("redb's integrity check failed: {e}"),
                        });
                    }
                }
            }
            let persisted = init_or_check(&db, &path)?;
            let (filter, items) = match pre {
                Pre::Checked(seen, filter, items) if seen == persisted => (filter, items),
                _ => build_synopsis(&db.begin_read()?, &persisted.generations, hasher, fp)?,
            };
            Ok(Opened {
                db,
                persisted,
                filter,
                items,
            })
        })
        .map_err(|e| match e {
            L2Error::Foreign { path, reason } if repaired => L2Error::Foreign {
                path,
                reason: format!(
                    "{reason} (its last writer did not shut down cleanly, so redb repaired the \
                     file's allocator metadata before the check could run; its data is unchanged)"
                ),
            },
            e => corrupt_at_open(&self.path, e, repaired),
        })
    }
}

/// An error from a redb call while opening: a contained panic or a corruption redb reported
/// means the file is corrupt.
fn corrupt_at_open(path: &Path, e: L2Error, repaired: bool) -> L2Error {
    let when = if repaired {
        " (after redb's crash repair)"
    } else {
        ""
    };
    match e {
        L2Error::Panicked { message } => L2Error::Corrupt {
            path: path.to_owned(),
            reason: format!("redb panicked reading it{when}: {message}"),
        },
        L2Error::Storage(
            redb::Error::Io(_) | redb::Error::PreviousIo | redb::Error::DatabaseAlreadyOpen,
        ) => e,
        L2Error::Storage(other) => L2Error::Corrupt {
            path: path.to_owned(),
            reason: format!("{other}{when}"),
        },
        other => other,
    }
}

/// Renames a corrupt store file to `<name>.corrupt-<unix ms>` beside it and creates an empty
/// one in its place; returns where it went.
fn move_aside(path: &Path) -> Result<PathBuf> {
    let ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis());
    let mut name = path.file_name().unwrap_or_default().to_owned();
    name.push(format!(".corrupt-{ms}"));
    let aside = path.with_file_name(name);
    let io = |source| L2Error::Io {
        path: path.to_owned(),
        source,
    };
    std::fs::rename(path, &aside).map_err(io)?;
    create_private(path)?;
    Ok(aside)
}

/// The read-only pass over an existing file (see the [module docs](self)). Leaves the file as it
/// was whatever it finds.
///
/// # Errors
///
/// [`L2Error::Foreign`] for a database that is not a cache-l2 store, [`L2Error::Corrupt`] for a
/// file that is not a readable database or whose pages fail (or make redb panic),
/// [`L2Error::Io`].
fn precheck(path: &Path, page_cache: usize, hasher: &RandomState, fp: f64) -> Result<Pre> {
    let non_empty = std::fs::metadata(path).is_ok_and(|m| m.len() > 0);
    if !non_empty {
        return Ok(Pre::Nothing);
    }
    let checked = contain(|| {
        let db = match redb::Builder::new()
            .set_cache_size(page_cache.min(16 << 20))
            .open_read_only(path)
        {
            Ok(db) => db,
            Err(DatabaseError::RepairAborted) => return Ok(Pre::NeedsRepair),
            Err(e) => return Err(open_error(path, e)),
        };
        let txn = db.begin_read()?;
        match check_format(&txn, path) {
            Ok(Some(STORE_FORMAT)) => {}
            // New, or an older format that the writable open migrates.
            Ok(_) => return Ok(Pre::Nothing),
            Err(L2Error::Foreign { path, reason }) => {
                return Err(L2Error::Foreign {
                    path,
                    reason: format!("{reason} (the file was not modified)"),
                });
            }
            Err(e) => return Err(e),
        }
        let persisted = read_persisted(&txn)?;
        let (filter, items) = build_synopsis(&txn, &persisted.generations, hasher, fp)?;
        drop(txn);
        drop_contained(db);
        Ok(Pre::Checked(persisted, filter, items))
    });
    checked.map_err(|e| match corrupt_at_open(path, e, false) {
        L2Error::Corrupt { path, reason } => L2Error::Corrupt {
            path,
            reason: format!("{reason} (the file was not modified)"),
        },
        e => e,
    })
}

/// Maps redb's open errors onto the store's.
pub(crate) fn open_error(path: &Path, e: DatabaseError) -> L2Error {
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
            if source.kind() == io::ErrorKind::InvalidData =>
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
        let mut footprint = 0u64;
        for row in records.iter()? {
            let (k, v) = row?;
            let (ns, key) = k.value();
            footprint =
                footprint.saturating_add(entry_footprint(ns.len(), key.len(), v.value().len()));
        }
        drop(records);
        txn.open_table(ORDER)?;
        txn.open_table(crate::schema::BLOBS)?;
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
    read_persisted(&db.begin_read()?)
}

/// The counters and generations a store persisted.
pub(crate) fn read_persisted(txn: &ReadTransaction) -> Result<Persisted> {
    let meta = txn.open_table(META)?;
    let get = |k| -> Result<u64> { Ok(meta.get(k)?.map_or(0, |g| g.value())) };
    let totals = Totals {
        live: get(META_LIVE_BYTES)?,
        footprint: get(META_FOOTPRINT)?,
    };
    let next_seq = get(META_NEXT_SEQ)?;
    let commit_id = get(META_COMMIT_ID)?;
    let mut generations = HashMap::new();
    for row in txn.open_table(GENERATIONS)?.iter()? {
        let (ns, g) = row?;
        generations.insert(ns.value().to_owned(), g.value());
    }
    Ok(Persisted {
        totals,
        next_seq,
        commit_id,
        generations,
    })
}

/// A synopsis of every key in the order table, sized by counting its rows first: `(filter,
/// keys inserted)`.
pub(crate) fn build_synopsis(
    txn: &ReadTransaction,
    generations: &HashMap<String, u64>,
    hasher: &RandomState,
    fp: f64,
) -> Result<(Filter, usize)> {
    let rows = committed_keys(txn, generations, |_, _, _| {})?;
    let filter = Filter::new(Filter::capacity_for(rows), fp);
    let items = committed_keys(txn, generations, |ns, key, generation| {
        filter.insert(hasher.hash_one((ns, generation, key)));
    })?;
    Ok((filter, items))
}

/// Calls `f` with every `(namespace, key)` in the order table and its namespace's generation in
/// `generations` (0 if absent), and returns how many: the keys the synopsis starts from. The
/// order table holds a row for every record (stale rows only add false positives) and no
/// record bodies.
pub(crate) fn committed_keys(
    txn: &ReadTransaction,
    generations: &HashMap<String, u64>,
    mut f: impl FnMut(&str, &[u8], u64),
) -> Result<usize> {
    let order = match txn.open_table(ORDER) {
        Ok(t) => t,
        Err(TableError::TableDoesNotExist(_)) => return Ok(0),
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

/// Refuses a store path that is a symbolic link: opening through one could make the cache
/// write into a file an attacker or a mistake pointed it at.
pub(crate) fn refuse_symlink(path: &Path) -> Result<()> {
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_symlink() => Err(L2Error::Symlink {
            path: path.to_owned(),
        }),
        _ => Ok(()),
    }
}

/// Creates the store file if it does not exist, readable and writable by its owner only
/// (mode 0600 on Unix): cached values may be private. An existing file is left as it is.
pub(crate) fn create_private(path: &Path) -> Result<()> {
    let mut o = std::fs::OpenOptions::new();
    o.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut o, 0o600);
    match o.open(path) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(()),
        Err(source) => Err(L2Error::Io {
            path: path.to_owned(),
            source,
        }),
    }
}

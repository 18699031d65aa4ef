//! Options of an L2 store.

use std::path::PathBuf;

use bytesize::ByteSize;
use serde::{Deserialize, Serialize};

use crate::compress::CompressionOptions;
use crate::eviction::{EvictionPolicy, OnFull};
use crate::record::MAX_VALUE_LEN;
use crate::{L2Error, Result};

/// How to open an L2 [`crate::Store`]. Loadable from TOML (as the `[l2]` table of the engine's
/// config); sizes accept integers (bytes) or strings such as `"64MiB"`.
///
/// ```
/// let opts: cache_l2::L2Options = toml::from_str(r#"
///     path = "/var/cache/app/l2.redb"
///     max_bytes = "4GiB"
///     [compression]
///     level = 6
/// "#)?;
/// assert_eq!(opts.max_bytes.as_u64(), 4 << 30);
/// assert!(opts.compression.enabled);
/// # Ok::<(), toml::de::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct L2Options {
    /// Path of the store file; created (with its parent directory) if missing. Required.
    pub path: PathBuf,
    /// Budget for the database file on disk, in bytes. Each record is charged an upper bound
    /// of the file pages it occupies (its footprint); when a put would take the footprint over
    /// [`crate::L2Stats::footprint_limit`], records are evicted (`eviction`) or the put is
    /// refused (`on_full`). The file stays within about 1.07 × this; see
    /// `docs/operations.md` for how redb's growth steps set the usable part. Default: 1 GiB;
    /// valid: 64 KiB ([`MIN_MAX_BYTES`]) to 1 PiB ([`MAX_MAX_BYTES`]).
    pub max_bytes: ByteSize,
    /// The largest value a put stores and a get decodes, in bytes (before compression). A
    /// record whose header declares more is treated as corrupt (a counted miss, removed)
    /// without decompressing it, so a forged record cannot make a get allocate more. In a
    /// `TieredCache` the smaller of this and `limits.max_blob_bytes` applies. Default and
    /// maximum: 1 GiB ([`crate::record::MAX_VALUE_LEN`]); minimum: 1.
    pub max_value_bytes: ByteSize,
    /// What opening does with a file that is corrupt (unreadable pages, checksums that fail,
    /// pages that make redb panic), and what the store does when it finds one at run time:
    /// `"refuse"` (the default) or `"recreate"`. See [`OnCorrupt`].
    pub on_corrupt: OnCorrupt,
    /// Which records are evicted when the store is full: `"sieve"` (the default) or
    /// `"fifo"`. See [`EvictionPolicy`].
    pub eviction: EvictionPolicy,
    /// What a put does when the store is full: `"evict"` (the default) or `"reject"`. See
    /// [`OnFull`].
    pub on_full: OnFull,
    /// False-positive rate of the synopsis, the Bloom filter that lets gets of keys never
    /// written skip the file (0 < r < 1). It takes about 1.44 × log2(1/r) bits per key,
    /// sized at twice the records held (10 bits per key at the default). Default: 0.01;
    /// valid: 0.000001 to 0.5.
    pub synopsis_false_positive_rate: f64,
    /// Memory redb may use to cache pages of the file, in bytes (allocated as pages are read,
    /// not up front). Default: 64 MiB; valid: 0 to 1 TiB.
    pub page_cache_bytes: ByteSize,
    /// Value compression. Default: zstd level 3 for values of at least 1 KiB that shrink by
    /// at least 10%.
    pub compression: CompressionOptions,
    /// When a put returns: after its batch commits (`"sync"`, the default) or once it is queued
    /// (`"async"`). See [`WriteMode`].
    pub write_mode: WriteMode,
    /// How the writer thread batches queued writes into commits.
    pub group_commit: GroupCommitOptions,
}

/// What happens to a store file that is corrupt: pages redb cannot read, B-tree checksums that
/// fail, or pages that make redb panic.
///
/// At open, a file is found corrupt by the checks that run before redb opens it for writing
/// (format, counters, namespaces and the key index read through a read-only handle), or by
/// redb's crash repair, which verifies every page checksum after an unclean shutdown. At run
/// time, a redb panic or corruption error degrades the store, and its writer thread reopens the
/// file with redb's integrity check (see `docs/reliability.md`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OnCorrupt {
    /// Refuse it: `open` returns [`L2Error::Corrupt`] and leaves the file as it is (crash
    /// repair, if the file needed it, has rewritten only allocator metadata); at run time the
    /// store stays degraded (gets miss, writes fail) until the application opens it again.
    #[default]
    Refuse,
    /// Move it aside (renamed to `<file name>.corrupt-<unix ms>` in the same directory, never
    /// deleted) and start with an empty store: a cache may forget, and an empty cache is
    /// better than none. Counted in [`crate::L2Stats::recreated`].
    Recreate,
}

/// When [`crate::Store::put`] returns.
///
/// Either way reads see a put as soon as it is queued, and writes that a crash must never undo
/// (overwrites, deletes, a put of a key whose record an undurable commit removed) return only
/// once durable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WriteMode {
    /// A put returns once the commit that holds it is done (sharing that commit with every write
    /// queued at the time: group commit). A crash after it returns may still take back a fresh
    /// insert (the key is then a miss) unless the commit was durable; see the crate docs.
    #[default]
    Sync,
    /// A fresh insert returns as soon as it is queued, and may be lost by a crash (a miss, never
    /// other bytes). A put that would replace a record still waits for a durable commit.
    Async,
}

/// Bounds of one group commit: the writer thread commits when a batch reaches `max_ops`
/// writes or `max_bytes` of values, or `max_delay_ms` after its first write, whichever comes
/// first. Loadable from TOML as `[l2.group_commit]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GroupCommitOptions {
    /// Most writes per commit. Default: 1000; valid: 1 to 1,048,576.
    pub max_ops: usize,
    /// Most value bytes per commit (before compression). Default: 64 MiB; valid: 1 byte to
    /// 4 GiB.
    pub max_bytes: ByteSize,
    /// Longest a queued write waits for more to join its commit, in milliseconds. Default: 2;
    /// valid: 0 to 60,000. The writer never waits when the queue is empty and a waiter is
    /// blocked on a commit it can make now; this bounds how long it keeps gathering while
    /// writes keep arriving.
    pub max_delay_ms: u64,
    /// Most writes queued and not yet committed; a write beyond it blocks until the writer
    /// catches up (backpressure, never a dropped write). Default: 4096; valid: 1 to 1,048,576.
    pub queue_capacity: usize,
    /// Most value bytes queued and not yet committed (a queued put holds its encoded record
    /// and a copy of its value for reads, so about twice this in memory); a write beyond it
    /// blocks like one beyond `queue_capacity`. A single larger value is let in when the queue
    /// is empty. Default: 64 MiB; valid: 1 byte to 4 GiB.
    pub queue_max_bytes: ByteSize,
}

impl Default for GroupCommitOptions {
    fn default() -> Self {
        Self {
            max_ops: 1000,
            max_bytes: ByteSize::mib(64),
            max_delay_ms: 2,
            queue_capacity: 4096,
            queue_max_bytes: ByteSize::mib(64),
        }
    }
}

impl Default for L2Options {
    fn default() -> Self {
        Self {
            path: PathBuf::new(),
            max_bytes: ByteSize::gib(1),
            max_value_bytes: ByteSize(MAX_VALUE_LEN),
            on_corrupt: OnCorrupt::default(),
            eviction: EvictionPolicy::default(),
            on_full: OnFull::default(),
            synopsis_false_positive_rate: 0.01,
            page_cache_bytes: ByteSize::mib(64),
            compression: CompressionOptions::default(),
            write_mode: WriteMode::default(),
            group_commit: GroupCommitOptions::default(),
        }
    }
}

impl L2Options {
    /// Options for a store at `path`, other fields at their defaults.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self {
            path: path.into(),
            ..Self::default()
        }
    }

    /// Checks the options.
    ///
    /// # Errors
    ///
    /// [`L2Error::InvalidOption`] naming the bad field.
    pub fn validate(&self) -> Result<()> {
        if self.path.as_os_str().is_empty() {
            return Err(L2Error::InvalidOption {
                field: "l2.path",
                reason: "a path is required".into(),
            });
        }
        let g = &self.group_commit;
        let ranges: [(&'static str, u64, u64, u64); 9] = [
            (
                "l2.max_bytes",
                self.max_bytes.as_u64(),
                MIN_MAX_BYTES,
                MAX_MAX_BYTES,
            ),
            (
                "l2.max_value_bytes",
                self.max_value_bytes.as_u64(),
                1,
                MAX_VALUE_LEN,
            ),
            (
                "l2.page_cache_bytes",
                self.page_cache_bytes.as_u64(),
                0,
                1 << 40,
            ),
            (
                "l2.group_commit.max_ops",
                g.max_ops as u64,
                1,
                MAX_QUEUE_OPS,
            ),
            (
                "l2.group_commit.max_bytes",
                g.max_bytes.as_u64(),
                1,
                4 << 30,
            ),
            ("l2.group_commit.max_delay_ms", g.max_delay_ms, 0, 60_000),
            (
                "l2.group_commit.queue_capacity",
                g.queue_capacity as u64,
                1,
                MAX_QUEUE_OPS,
            ),
            (
                "l2.group_commit.queue_max_bytes",
                g.queue_max_bytes.as_u64(),
                1,
                4 << 30,
            ),
            (
                "l2.compression.min_bytes",
                self.compression.min_bytes,
                0,
                MAX_VALUE_LEN,
            ),
        ];
        for (field, value, min, max) in ranges {
            check_range(field, value, min, max)?;
        }
        let fp = self.synopsis_false_positive_rate;
        if !(MIN_SYNOPSIS_FP..=MAX_SYNOPSIS_FP).contains(&fp) {
            return Err(L2Error::InvalidOption {
                field: "l2.synopsis_false_positive_rate",
                reason: format!("{fp} is not in {MIN_SYNOPSIS_FP}..={MAX_SYNOPSIS_FP}"),
            });
        }
        if usize::try_from(self.page_cache_bytes.as_u64()).is_err() {
            return Err(L2Error::InvalidOption {
                field: "l2.page_cache_bytes",
                reason: "does not fit in this platform's address space".into(),
            });
        }
        self.compression.validate()
    }
}

/// Refuses `value` outside `min..=max`, naming `field` and the range.
///
/// # Errors
///
/// [`L2Error::InvalidOption`].
pub(crate) fn check_range(field: &'static str, value: u64, min: u64, max: u64) -> Result<()> {
    if (min..=max).contains(&value) {
        Ok(())
    } else {
        Err(L2Error::InvalidOption {
            field,
            reason: format!("{value} is outside the valid range {min}..={max}"),
        })
    }
}

/// The largest accepted `max_bytes`: 1 PiB.
pub const MAX_MAX_BYTES: u64 = 1 << 50;

/// The most writes `group_commit.max_ops` and `group_commit.queue_capacity` accept: 2^20.
pub const MAX_QUEUE_OPS: u64 = 1 << 20;

/// The lowest accepted `synopsis_false_positive_rate` (about 29 bits per key).
pub const MIN_SYNOPSIS_FP: f64 = 1e-6;

/// The highest accepted `synopsis_false_positive_rate`.
pub const MAX_SYNOPSIS_FP: f64 = 0.5;

/// The smallest accepted `max_bytes`: 64 KiB.
pub const MIN_MAX_BYTES: u64 = 64 << 10;

//! Options of an L2 store.

use std::path::PathBuf;

use bytesize::ByteSize;
use serde::{Deserialize, Serialize};

use crate::compress::CompressionOptions;
use crate::eviction::{EvictionPolicy, OnFull};
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
    /// `docs/operations.md` for how redb's growth steps set the usable part. Default: 1 GiB.
    pub max_bytes: ByteSize,
    /// Which records are evicted when the store is full: `"sieve"` (the default) or
    /// `"fifo"`. See [`EvictionPolicy`].
    pub eviction: EvictionPolicy,
    /// What a put does when the store is full: `"evict"` (the default) or `"reject"`. See
    /// [`OnFull`].
    pub on_full: OnFull,
    /// False-positive rate of the synopsis, the Bloom filter that lets gets of keys never
    /// written skip the file (0 < r < 1). It takes about 1.44 × log2(1/r) bits per key,
    /// sized at twice the records held (10 bits per key at the default). Default: 0.01.
    pub synopsis_false_positive_rate: f64,
    /// Memory redb may use to cache pages of the file, in bytes. Default: 64 MiB.
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
    /// Most writes per commit. Default: 1000.
    pub max_ops: usize,
    /// Most value bytes per commit (before compression). Default: 64 MiB.
    pub max_bytes: ByteSize,
    /// Longest a queued write waits for more to join its commit, in milliseconds. Default: 2.
    /// The writer never waits when the queue is empty and a waiter is blocked on a commit it
    /// can make now; this bounds how long it keeps gathering while writes keep arriving.
    pub max_delay_ms: u64,
    /// Most writes queued and not yet committed; a write beyond it blocks until the writer
    /// catches up (backpressure, never a dropped write). Default: 4096.
    pub queue_capacity: usize,
    /// Most value bytes queued and not yet committed (a queued put holds its encoded record
    /// and a copy of its value for reads, so about twice this in memory); a write beyond it
    /// blocks like one beyond `queue_capacity`. A single larger value is let in when the queue
    /// is empty. Default: 64 MiB.
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
        if self.max_bytes.as_u64() < MIN_MAX_BYTES {
            return Err(L2Error::InvalidOption {
                field: "l2.max_bytes",
                reason: format!(
                    "{} is below the minimum of {}",
                    self.max_bytes,
                    ByteSize(MIN_MAX_BYTES)
                ),
            });
        }
        let fp = self.synopsis_false_positive_rate;
        if !(fp > 0.0 && fp < 1.0) {
            return Err(L2Error::InvalidOption {
                field: "l2.synopsis_false_positive_rate",
                reason: format!("{fp} is not in (0, 1)"),
            });
        }
        if usize::try_from(self.page_cache_bytes.as_u64()).is_err() {
            return Err(L2Error::InvalidOption {
                field: "l2.page_cache_bytes",
                reason: "does not fit in this platform's address space".into(),
            });
        }
        let g = &self.group_commit;
        for (field, zero) in [
            ("l2.group_commit.max_ops", g.max_ops == 0),
            ("l2.group_commit.max_bytes", g.max_bytes.as_u64() == 0),
            ("l2.group_commit.queue_capacity", g.queue_capacity == 0),
            (
                "l2.group_commit.queue_max_bytes",
                g.queue_max_bytes.as_u64() == 0,
            ),
        ] {
            if zero {
                return Err(L2Error::InvalidOption {
                    field,
                    reason: "must be at least 1".into(),
                });
            }
        }
        self.compression.validate()
    }
}

/// The smallest accepted `max_bytes`: 64 KiB.
pub const MIN_MAX_BYTES: u64 = 64 << 10;

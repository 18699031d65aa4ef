//! Errors of the L2 tier.

use std::path::PathBuf;

/// An L2 operation failed. Nothing was written by the failing call; data already acknowledged
/// is unaffected.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum L2Error {
    /// The store file is open already, by this process or another one (redb holds a file lock).
    #[error("the L2 store {path} is already open by this or another process")]
    AlreadyOpen {
        /// The store's path.
        path: PathBuf,
    },
    /// The store path is a symbolic link; the store refuses to follow it.
    #[error("the L2 store path {path} is a symbolic link; refusing to open it")]
    Symlink {
        /// The path.
        path: PathBuf,
    },
    /// The file is a database but not a cache-l2 store (or a store of an unknown format). Its data
    /// was not modified; `reason` says whether redb had to repair its metadata first.
    #[error("{path} is not a cache-l2 store: {reason}; refusing to open it")]
    Foreign {
        /// The file's path.
        path: PathBuf,
        /// What gave it away.
        reason: String,
    },
    /// The file is not a readable database (truncated, overwritten, not a redb file, or pages
    /// that fail their checksums or make redb panic). With `on_corrupt = "refuse"` it is left as
    /// it is; `reason` says whether redb's crash repair ran first (repair rewrites the file's
    /// allocator metadata, never its data).
    #[error("{path} is corrupt or not a database: {reason}; refusing to open it")]
    Corrupt {
        /// The file's path.
        path: PathBuf,
        /// What redb reported.
        reason: String,
    },
    /// A record's namespace or key is longer than the format allows.
    #[error(transparent)]
    KeyTooLong(#[from] KeyTooLong),
    /// The record alone is larger than the store's budget (or the format's value limit), so no
    /// amount of eviction can make room for it.
    #[error("record of {size} bytes exceeds the L2 limit of {max} bytes")]
    TooLarge {
        /// The record's accounted size in bytes.
        size: u64,
        /// The limit in bytes.
        max: u64,
    },
    /// The store is full and [`crate::OnFull::Reject`] is set: the put would take the records'
    /// footprint over its limit. Nothing was stored (an overwritten key's old record is gone:
    /// see [`crate::OnFull::Reject`]).
    #[error(
        "the L2 store is full: {needed} more bytes of footprint would exceed the limit of {limit} bytes"
    )]
    Full {
        /// The put's footprint in bytes.
        needed: u64,
        /// [`crate::L2Stats::footprint_limit`] in bytes.
        limit: u64,
    },
    /// The options are invalid.
    #[error("invalid L2 option `{field}`: {reason}")]
    InvalidOption {
        /// The option's name, as in the config file.
        field: &'static str,
        /// Why it is invalid.
        reason: String,
    },
    /// An I/O error on the store's file.
    #[error("I/O error on the L2 store {path}: {source}")]
    Io {
        /// The store's path.
        path: PathBuf,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// The commit that held this write failed (the writer thread reports redb's error as
    /// text, since one failure answers every write of the batch). Nothing of the batch was
    /// written.
    #[error("L2 write failed: {reason}")]
    WriteFailed {
        /// What went wrong.
        reason: String,
    },
    /// redb failed (I/O error, corruption found while reading, or a commit that did not happen).
    #[error("L2 storage error: {0}")]
    Storage(#[from] redb::Error),
    /// redb panicked (on a page it could not parse); the panic was contained at the store's
    /// redb boundary and the store is degraded (see [`L2Error::Degraded`]).
    #[error("redb panicked: {message}")]
    Panicked {
        /// The panic's message.
        message: String,
    },
    /// The store is degraded after an I/O error or a contained redb panic: writes fail with
    /// this error, gets are misses or read the last committed state, until the writer thread
    /// reopens the file (see [`crate::L2Stats::degraded`] and `docs/reliability.md`).
    #[error("the L2 store {path} is degraded ({reason}); writes resume once it is reopened")]
    Degraded {
        /// The store's path.
        path: PathBuf,
        /// The fault that degraded it.
        reason: String,
    },
}

/// A namespace or key longer than [`crate::MAX_NAMESPACE_LEN`] or [`crate::MAX_KEY_LEN`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{what} of {len} bytes exceeds the limit of {max} bytes")]
pub struct KeyTooLong {
    /// `"namespace"` or `"key"`.
    pub what: &'static str,
    /// Its length in bytes.
    pub len: usize,
    /// The limit in bytes.
    pub max: usize,
}

macro_rules! from_redb {
    ($($t:ty),*) => {$(
        impl From<$t> for L2Error {
            fn from(e: $t) -> Self {
                Self::Storage(e.into())
            }
        }
    )*};
}

from_redb!(
    redb::TransactionError,
    redb::TableError,
    redb::StorageError,
    redb::CommitError
);

/// Shorthand for results of this crate.
pub type Result<T, E = L2Error> = std::result::Result<T, E>;

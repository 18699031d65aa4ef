//! Options of an L2 store.

use std::path::PathBuf;

use bytesize::ByteSize;
use serde::{Deserialize, Serialize};

use crate::compress::CompressionOptions;
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
    /// Budget for live bytes: the sum, over records, of namespace + key + header + stored
    /// payload. When a put would exceed it, the oldest records are evicted (FIFO). The file on
    /// disk is larger than this (redb's pages and free space). Default: 1 GiB.
    pub max_bytes: ByteSize,
    /// Memory redb may use to cache pages of the file, in bytes. Default: 64 MiB.
    pub page_cache_bytes: ByteSize,
    /// Value compression. Default: zstd level 3 for values of at least 1 KiB that shrink by
    /// at least 10%.
    pub compression: CompressionOptions,
}

impl Default for L2Options {
    fn default() -> Self {
        Self {
            path: PathBuf::new(),
            max_bytes: ByteSize::gib(1),
            page_cache_bytes: ByteSize::mib(64),
            compression: CompressionOptions::default(),
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
        if usize::try_from(self.page_cache_bytes.as_u64()).is_err() {
            return Err(L2Error::InvalidOption {
                field: "l2.page_cache_bytes",
                reason: "does not fit in this platform's address space".into(),
            });
        }
        self.compression.validate()
    }
}

/// The smallest accepted `max_bytes`: 64 KiB.
pub const MIN_MAX_BYTES: u64 = 64 << 10;

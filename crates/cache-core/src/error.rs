//! Errors of the engine.

use std::path::PathBuf;

/// A [`crate::Config`] that cannot be used. Names the field at fault, as written in TOML.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// A field has a value outside its range.
    #[error("invalid config field `{field}`: {reason}")]
    Invalid {
        /// The field, as in TOML (`l1.shards`).
        field: &'static str,
        /// Why.
        reason: String,
    },
    /// Two fields that exclude each other are both set.
    #[error("config fields `{first}` and `{second}` exclude each other; set one")]
    Conflict {
        /// One field.
        first: &'static str,
        /// The other.
        second: &'static str,
    },
    /// The TOML text does not parse, or names unknown fields.
    #[error("config does not parse: {0}")]
    Parse(#[from] toml::de::Error),
    /// The config file could not be read.
    #[error("cannot read config file {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// The L2 options are invalid.
    #[error(transparent)]
    L2(cache_l2::L2Error),
}

/// An engine operation failed. Nothing acknowledged before is lost by a failing call.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The config is invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// A namespace or key is longer than allowed ([`crate::MAX_NAMESPACE_LEN`],
    /// [`crate::MAX_KEY_LEN`]).
    #[error(transparent)]
    KeyTooLong(#[from] cache_l2::KeyTooLong),
    /// The L2 tier failed (I/O, a file it refuses, a record it cannot hold).
    #[error(transparent)]
    L2(#[from] cache_l2::L2Error),
    /// The value is larger than allowed (`limits.max_blob_bytes` or the put's policy).
    #[error("value of {size} bytes is over the limit of {max} bytes")]
    BlobTooLarge {
        /// The value's size, in bytes.
        size: u64,
        /// The limit, in bytes.
        max: u64,
    },
    /// Without an L2, a put whose entry alone outweighs the largest entry L1 admits
    /// (`l1.max_entry_fraction` of its budget). Nothing was stored; the key's old value stays.
    #[error(
        "entry of weight {weight} is over the largest entry L1 holds ({max}), and there is no L2"
    )]
    TooLargeForL1 {
        /// The entry's weight, in the budget's unit (bytes, or 1 per entry).
        weight: u64,
        /// The largest weight L1 admits.
        max: u64,
    },
    /// Metadata over a limit: content metadata pairs or bytes, tags and dependencies, or the
    /// length of one.
    #[error("{what}: {size} is over the limit of {max}")]
    MetadataTooLarge {
        /// What is over.
        what: &'static str,
        /// Its count or size (bytes).
        size: u64,
        /// The limit.
        max: u64,
    },
    /// A put to a new namespace when `limits.max_namespaces` are known already.
    #[error("too many namespaces: the limit is {limit}")]
    TooManyNamespaces {
        /// The limit.
        limit: usize,
    },
    /// A CAS put whose version is not greater than the stored entry's.
    #[error("version {attempted} is not greater than the stored version {existing}")]
    VersionMismatch {
        /// The stored entry's version.
        existing: u64,
        /// The put's version.
        attempted: u64,
    },
    /// A policy field that cannot be honoured (a TTL of 0, an expiry in the past).
    #[error("invalid policy field `{field}`: {reason}")]
    InvalidPolicy {
        /// The field.
        field: &'static str,
        /// Why.
        reason: String,
    },
    /// An input file of [`crate::Put::validate_file`] could not be fingerprinted.
    #[error("cannot fingerprint input file {path}: {source}")]
    Validator {
        /// The file.
        path: PathBuf,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// [`crate::TieredCache::get_or_load`]: the loader (this caller's, or the one it waited
    /// for) failed or panicked, or its value could not be stored. Shared by every waiter.
    #[error("loading failed: {0}")]
    Load(std::sync::Arc<dyn std::error::Error + Send + Sync>),
}

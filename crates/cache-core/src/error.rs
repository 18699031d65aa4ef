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
}

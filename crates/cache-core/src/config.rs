//! The engine's one config struct, loadable from TOML.

use std::path::Path;

use bytesize::ByteSize;
use cache_l2::L2Options;
use serde::{Deserialize, Serialize};

use crate::error::ConfigError;

/// Everything a [`crate::TieredCache`] is built from. Every field has a default; unknown fields
/// are an error, so a typo does not silently fall back to a default.
///
/// ```
/// use cache_core::Config;
///
/// let config = Config::from_toml_str(r#"
///     [l1]
///     max_bytes = "256MiB"
///     shards = 16
///
///     [l2]
///     path = "/var/cache/app/l2.redb"
///     max_bytes = "8GiB"
///     compression = { enabled = true, level = 3, min_bytes = 1024 }
/// "#)?;
/// assert_eq!(config.l1.shards, Some(16));
/// assert_eq!(config.l2.unwrap().max_bytes.as_u64(), 8 << 30);
/// # Ok::<(), cache_core::ConfigError>(())
/// ```
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// The in-memory tier.
    pub l1: L1Config,
    /// The durable tier; `None` (no `[l2]` table) runs L1 alone. Default: `None`.
    pub l2: Option<L2Options>,
    /// Limits on what a put may carry and on namespaces.
    pub limits: Limits,
    /// How L2 hits are promoted into L1.
    pub promotion: PromotionConfig,
}

/// Limits on puts and namespaces; a put over one gets a typed error and changes nothing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    /// The most namespaces the cache knows at once (those with entries in L2 at open, plus
    /// those put since). A put to a new namespace past it gets
    /// [`crate::Error::TooManyNamespaces`]. Default: 1024.
    pub max_namespaces: usize,
    /// The largest value, in bytes (a put's policy may lower it). Default: 64 MiB.
    pub max_blob_bytes: ByteSize,
    /// The most content metadata pairs per entry. Default: 64.
    pub max_metadata_keys: u64,
    /// The largest encoded metadata section per entry (content metadata, validators, policy),
    /// in bytes. Default: 16 KiB; at most 64 KiB (L2's section limit).
    pub max_metadata_bytes: ByteSize,
    /// The most tags plus dependencies per entry (each at most 1,023 bytes). Default: 64.
    pub max_labels: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_namespaces: 1024,
            max_blob_bytes: ByteSize::mib(64),
            max_metadata_keys: 64,
            max_metadata_bytes: ByteSize::kib(16),
            max_labels: 64,
        }
    }
}

/// How L2 hits reach L1.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PromotionMode {
    /// The reading thread installs the entry before `get` returns.
    #[default]
    Inline,
    /// `get` returns at once and queues the entry for the promotion pool.
    Async,
}

/// The promotion pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PromotionConfig {
    /// `"inline"` (default) or `"async"`.
    pub mode: PromotionMode,
    /// Worker threads of the async pool. Default: 2.
    pub workers: usize,
    /// Promotions the async pool's queue holds; when full, further ones are dropped (counted
    /// in `promotions_dropped`). Default: 1024.
    pub queue_capacity: usize,
}

impl Default for PromotionConfig {
    fn default() -> Self {
        Self {
            mode: PromotionMode::Inline,
            workers: 2,
            queue_capacity: 1024,
        }
    }
}

/// The in-memory tier: a sharded SIEVE-family cache with a byte budget (or an entry count).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct L1Config {
    /// Byte budget: the sum over resident entries of namespace + key + value length + a fixed
    /// per-entry overhead ([`crate::L1_ENTRY_OVERHEAD`] bytes). Accepts `"64MiB"`-style strings.
    /// Default: 64 MiB (when `max_entries` is not set either).
    pub max_bytes: Option<ByteSize>,
    /// Entry budget instead of a byte budget: every entry weighs 1. Excludes `max_bytes`.
    /// Default: unset.
    pub max_entries: Option<u64>,
    /// Number of shards, each with its own lock and SIEVE queue over `1/shards` of the budget;
    /// 1 gives exactly the paper's SIEVE. Default: 32 per core, rounded up to a power of two
    /// (at most 4096), then halved until each shard expects at least 256 entries (counting
    /// [`ASSUMED_MEAN_ENTRY_BYTES`] per entry under a byte budget).
    pub shards: Option<usize>,
    /// The eviction policy: `"s3-fifo"` (scan-resistant, the default) or `"sieve"` (exactly
    /// the paper's SIEVE per shard).
    pub policy: L1Policy,
    /// The largest share of the budget one entry may use, in (0, 1]; heavier entries are not
    /// kept in L1 (counted in `l1_rejections`; with an L2 they are still served from there).
    /// Default: 0.25.
    pub max_entry_fraction: Option<f64>,
    /// Under [`crate::Admission::Auto`] (the default admission), a put offers its value to L1
    /// only if it is at most this many bytes; larger values go to L2 and enter L1 when an L2
    /// hit promotes them. Default: 1 MiB.
    pub auto_admit_max_bytes: ByteSize,
}

impl Default for L1Config {
    fn default() -> Self {
        Self {
            max_bytes: None,
            max_entries: None,
            shards: None,
            policy: L1Policy::default(),
            max_entry_fraction: None,
            auto_admit_max_bytes: ByteSize::mib(1),
        }
    }
}

/// The L1 eviction policy, as the config names it. See [`cache_l1::Policy`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum L1Policy {
    /// S3-FIFO with [`cache_l1::S3FifoParams::default`]: a small probationary FIFO and a ghost
    /// history in front of a CLOCK main queue. Scan-resistant; the lowest mean miss ratio on
    /// the shared traces.
    #[default]
    S3Fifo,
    /// SIEVE (Zhang et al., NSDI 2024): one queue, a visited bit, a hand. Not scan-resistant.
    Sieve,
}

impl L1Policy {
    /// The `cache-l1` policy this names.
    pub fn to_policy(self) -> cache_l1::Policy {
        match self {
            Self::S3Fifo => cache_l1::Policy::S3Fifo(cache_l1::S3FifoParams::default()),
            Self::Sieve => cache_l1::Policy::Sieve,
        }
    }
}

/// The mean entry size, in bytes, assumed under a byte budget to pick the default shard count.
pub const ASSUMED_MEAN_ENTRY_BYTES: u64 = 1024;

/// The default L1 byte budget: 64 MiB.
pub const DEFAULT_L1_MAX_BYTES: u64 = 64 << 20;

/// What the L1 budget counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum L1Capacity {
    /// Bytes: entries weigh namespace + key + value + [`crate::L1_ENTRY_OVERHEAD`].
    Bytes(u64),
    /// Entries: every entry weighs 1.
    Entries(u64),
}

impl L1Config {
    /// The budget this config asks for.
    ///
    /// # Errors
    ///
    /// [`ConfigError::Conflict`] if both `max_bytes` and `max_entries` are set.
    pub fn capacity(&self) -> Result<L1Capacity, ConfigError> {
        match (self.max_bytes, self.max_entries) {
            (Some(_), Some(_)) => Err(ConfigError::Conflict {
                first: "l1.max_bytes",
                second: "l1.max_entries",
            }),
            (None, Some(n)) => Ok(L1Capacity::Entries(n)),
            (Some(b), None) => Ok(L1Capacity::Bytes(b.as_u64())),
            (None, None) => Ok(L1Capacity::Bytes(DEFAULT_L1_MAX_BYTES)),
        }
    }
}

impl Config {
    /// Parses a TOML document and validates it.
    ///
    /// # Errors
    ///
    /// [`ConfigError::Parse`] for malformed TOML or unknown fields; otherwise as
    /// [`Config::validate`].
    pub fn from_toml_str(text: &str) -> Result<Self, ConfigError> {
        let config: Self = toml::from_str(text)?;
        config.validate()?;
        Ok(config)
    }

    /// Reads, parses and validates a TOML file.
    ///
    /// # Errors
    ///
    /// [`ConfigError::Io`] if the file cannot be read; otherwise as [`Config::from_toml_str`].
    pub fn load(path: impl AsRef<Path>) -> Result<Self, ConfigError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Io {
            path: path.to_owned(),
            source,
        })?;
        Self::from_toml_str(&text)
    }

    /// Checks every field.
    ///
    /// # Errors
    ///
    /// [`ConfigError`] naming the first bad field.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let units = match self.l1.capacity()? {
            L1Capacity::Bytes(0) => {
                return Err(ConfigError::Invalid {
                    field: "l1.max_bytes",
                    reason: "must be above 0".into(),
                });
            }
            L1Capacity::Entries(0) => {
                return Err(ConfigError::Invalid {
                    field: "l1.max_entries",
                    reason: "must be above 0".into(),
                });
            }
            L1Capacity::Bytes(n) | L1Capacity::Entries(n) => n,
        };
        match self.l1.shards {
            Some(0) => {
                return Err(ConfigError::Invalid {
                    field: "l1.shards",
                    reason: "must be at least 1".into(),
                });
            }
            Some(n) if n as u64 > units => {
                return Err(ConfigError::Invalid {
                    field: "l1.shards",
                    reason: format!("{n} shards cannot split a budget of {units}"),
                });
            }
            _ => {}
        }
        if let Some(f) = self.l1.max_entry_fraction
            && !(f > 0.0 && f <= 1.0)
        {
            return Err(ConfigError::Invalid {
                field: "l1.max_entry_fraction",
                reason: format!("{f} is not in (0, 1]"),
            });
        }
        if let Some(l2) = &self.l2 {
            l2.validate().map_err(ConfigError::L2)?;
        }
        self.validate_limits()?;
        if self.promotion.workers == 0 || self.promotion.workers > 256 {
            return Err(ConfigError::Invalid {
                field: "promotion.workers",
                reason: format!("{} is not in 1..=256", self.promotion.workers),
            });
        }
        if self.promotion.queue_capacity == 0 {
            return Err(ConfigError::Invalid {
                field: "promotion.queue_capacity",
                reason: "must be at least 1".into(),
            });
        }
        Ok(())
    }

    fn validate_limits(&self) -> Result<(), ConfigError> {
        let l = &self.limits;
        if l.max_namespaces == 0 {
            return Err(ConfigError::Invalid {
                field: "limits.max_namespaces",
                reason: "must be at least 1".into(),
            });
        }
        if l.max_blob_bytes.as_u64() > cache_l2::record::MAX_VALUE_LEN {
            return Err(ConfigError::Invalid {
                field: "limits.max_blob_bytes",
                reason: format!("at most {} bytes", cache_l2::record::MAX_VALUE_LEN),
            });
        }
        if l.max_metadata_bytes.as_u64() > cache_l2::record::MAX_META_LEN as u64 {
            return Err(ConfigError::Invalid {
                field: "limits.max_metadata_bytes",
                reason: format!("at most {} bytes", cache_l2::record::MAX_META_LEN),
            });
        }
        // 64 labels of 1,024 bytes each fill L2's 64 KiB label section.
        if l.max_labels > 64 {
            return Err(ConfigError::Invalid {
                field: "limits.max_labels",
                reason: "at most 64 (L2's label section holds 64 of the longest)".into(),
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_a_64_mib_l1_and_no_l2() {
        let c = Config::from_toml_str("").unwrap();
        assert_eq!(c.l1.capacity().unwrap(), L1Capacity::Bytes(64 << 20));
        assert!(c.l2.is_none());
    }

    /// `examples/cache.toml` parses, and every value it sets is the default except the three
    /// it says are not: the file cannot drift from the code.
    #[test]
    fn the_example_config_is_valid_and_documents_the_defaults() {
        let example = Config::from_toml_str(include_str!("../../../examples/cache.toml")).unwrap();
        let expected = Config {
            l1: L1Config {
                max_bytes: Some(ByteSize::mib(256)),
                ..L1Config::default()
            },
            l2: Some(L2Options {
                max_bytes: ByteSize::gib(8),
                ..L2Options::new("/var/cache/app/l2.redb")
            }),
            ..Config::default()
        };
        assert_eq!(example, expected);
    }

    #[test]
    fn bad_configs_name_the_field() {
        let cases = [
            (
                "[l1]\nmax_bytes = \"1MiB\"\nmax_entries = 10",
                "l1.max_entries",
            ),
            ("[l1]\nshards = 0", "l1.shards"),
            ("[l1]\nmax_entries = 4\nshards = 8", "l1.shards"),
            ("[l1]\nmax_entries = 0", "l1.max_entries"),
            ("[l2]\nmax_bytes = \"1GiB\"", "l2.path"),
            (
                "[l2]\npath = \"x\"\ncompression = { level = 40 }",
                "l2.compression.level",
            ),
            ("[l1]\nmax_byte = 5", "max_byte"),
            ("[l1]\nmax_entry_fraction = 1.5", "l1.max_entry_fraction"),
            ("[l1]\nmax_entry_fraction = 0.0", "l1.max_entry_fraction"),
        ];
        for (text, field) in cases {
            let err = Config::from_toml_str(text).unwrap_err().to_string();
            assert!(
                err.contains(field),
                "{text:?} gave {err:?}, which does not name {field}"
            );
        }
    }
}

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
    /// those whose puts succeeded since). A put to a new namespace past it gets
    /// [`crate::Error::TooManyNamespaces`]. Default: 1024; valid: 1 to 1,048,576.
    pub max_namespaces: usize,
    /// The largest value, in bytes (a put's policy may lower it). Also the largest value L2
    /// decodes: a record declaring more is a counted miss, refused before decompression.
    /// Default: 64 MiB; valid: 1 byte to 1 GiB.
    pub max_blob_bytes: ByteSize,
    /// The most content metadata pairs per entry. Default: 64; valid: 0 to 65,536.
    pub max_metadata_keys: u64,
    /// The largest encoded metadata section per entry (content metadata, validators, policy),
    /// in bytes. Default: 16 KiB; valid: 256 bytes to 64 KiB (L2's section limit).
    pub max_metadata_bytes: ByteSize,
    /// The most tags plus dependencies per entry (each at most 1,023 bytes, and all of them
    /// within L2's 64 KiB label section: [`cache_l2::record::check_labels`]). Default: 64;
    /// valid: 0 to 64.
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
    /// Worker threads of the async pool. Default: 2; valid: 1 to 256.
    pub workers: usize,
    /// Promotions the async pool's queue holds (allocated up front, about 64 bytes each);
    /// when full, further ones are dropped (counted in `promotions_dropped`). Default: 1024;
    /// valid: 1 to 1,048,576.
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
    /// Default: 64 MiB (when `max_entries` is not set either); valid: 1 KiB to 16 TiB.
    pub max_bytes: Option<ByteSize>,
    /// Entry budget instead of a byte budget: every entry weighs 1. Excludes `max_bytes`.
    /// Default: unset; valid: 1 to 2^40.
    pub max_entries: Option<u64>,
    /// Number of shards, each with its own lock and SIEVE queue over `1/shards` of the budget;
    /// 1 gives exactly the paper's SIEVE. Default: 32 per core, rounded up to a power of two
    /// (at most 4096), then halved until each shard expects at least 256 entries (counting
    /// [`ASSUMED_MEAN_ENTRY_BYTES`] per entry under a byte budget). Valid: 1 to 65,536, and
    /// at most the budget (in its unit).
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
    /// hit promotes them. Default: 1 MiB; valid: 0 to 1 GiB.
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

    /// Checks every field against its documented range (see each field, and
    /// `docs/operations.md`), so that opening allocates nothing proportional to a number
    /// that was not checked.
    ///
    /// # Errors
    ///
    /// [`ConfigError`] naming the first bad field.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let units = match self.l1.capacity()? {
            L1Capacity::Bytes(n) => {
                check_range("l1.max_bytes", n, MIN_L1_BYTES, MAX_L1_BYTES)?;
                n
            }
            L1Capacity::Entries(n) => {
                check_range("l1.max_entries", n, 1, MAX_L1_ENTRIES)?;
                n
            }
        };
        if let Some(n) = self.l1.shards {
            check_range("l1.shards", n as u64, 1, MAX_SHARDS as u64)?;
            if n as u64 > units {
                return Err(ConfigError::Invalid {
                    field: "l1.shards",
                    reason: format!("{n} shards cannot split a budget of {units}"),
                });
            }
        }
        if let Some(f) = self.l1.max_entry_fraction
            && !(f > 0.0 && f <= 1.0)
        {
            return Err(ConfigError::Invalid {
                field: "l1.max_entry_fraction",
                reason: format!("{f} is not in (0, 1]"),
            });
        }
        check_range(
            "l1.auto_admit_max_bytes",
            self.l1.auto_admit_max_bytes.as_u64(),
            0,
            MAX_VALUE_LEN,
        )?;
        if let Some(l2) = &self.l2 {
            l2.validate().map_err(ConfigError::L2)?;
        }
        self.validate_limits()?;
        let p = &self.promotion;
        check_range("promotion.workers", p.workers as u64, 1, 256)?;
        check_range(
            "promotion.queue_capacity",
            p.queue_capacity as u64,
            1,
            MAX_PROMOTION_QUEUE,
        )?;
        Ok(())
    }

    fn validate_limits(&self) -> Result<(), ConfigError> {
        let l = &self.limits;
        let ranges: [(&'static str, u64, u64, u64); 5] = [
            (
                "limits.max_namespaces",
                l.max_namespaces as u64,
                1,
                MAX_NAMESPACES,
            ),
            (
                "limits.max_blob_bytes",
                l.max_blob_bytes.as_u64(),
                1,
                MAX_VALUE_LEN,
            ),
            ("limits.max_metadata_keys", l.max_metadata_keys, 0, 1 << 16),
            (
                "limits.max_metadata_bytes",
                l.max_metadata_bytes.as_u64(),
                256,
                cache_l2::record::MAX_META_LEN as u64,
            ),
            // 64 labels of 1,024 bytes (with their kind prefix) fill L2's label section.
            ("limits.max_labels", l.max_labels, 0, 64),
        ];
        for (field, value, min, max) in ranges {
            check_range(field, value, min, max)?;
        }
        Ok(())
    }

    /// The L2 options as the engine opens them: `max_value_bytes` lowered to
    /// `limits.max_blob_bytes`, so L2 decodes nothing larger than a put may store.
    pub fn effective_l2(&self) -> Option<L2Options> {
        self.l2.clone().map(|mut l2| {
            let limit = l2
                .max_value_bytes
                .as_u64()
                .min(self.limits.max_blob_bytes.as_u64());
            l2.max_value_bytes = ByteSize(limit);
            l2
        })
    }
}

/// Refuses `value` outside `min..=max`, naming `field` and the range.
fn check_range(field: &'static str, value: u64, min: u64, max: u64) -> Result<(), ConfigError> {
    if (min..=max).contains(&value) {
        Ok(())
    } else {
        Err(ConfigError::Invalid {
            field,
            reason: format!("{value} is outside the valid range {min}..={max}"),
        })
    }
}

/// The smallest `l1.max_bytes`: 1 KiB.
pub const MIN_L1_BYTES: u64 = 1 << 10;
/// The largest `l1.max_bytes`: 16 TiB.
pub const MAX_L1_BYTES: u64 = 1 << 44;
/// The largest `l1.max_entries`: 2^40.
pub const MAX_L1_ENTRIES: u64 = 1 << 40;
/// The most `l1.shards`: 65,536 (each shard is a few hundred bytes allocated at open).
pub const MAX_SHARDS: usize = 1 << 16;
/// The most `promotion.queue_capacity`: 2^20 slots (allocated at open).
pub const MAX_PROMOTION_QUEUE: u64 = 1 << 20;
/// The most `limits.max_namespaces`: 2^20.
pub const MAX_NAMESPACES: u64 = 1 << 20;
/// The largest value any tier holds: 1 GiB ([`cache_l2::record::MAX_VALUE_LEN`]).
const MAX_VALUE_LEN: u64 = cache_l2::record::MAX_VALUE_LEN;

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

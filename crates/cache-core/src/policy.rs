//! What a put carries: the value, content metadata, tags, dependencies, file validators and the
//! entry's policy (expiry, admission, priority, CAS version).

use std::collections::BTreeMap;
use std::path::PathBuf;

use bytes::Bytes;

/// Whether a put (and a later promotion) places the entry in L1.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "kebab-case")]
pub enum Admission {
    /// Always offered to L1 (L1 may still refuse an entry over its largest entry weight).
    Always,
    /// Offered to L1 if the value is at most [`crate::L1Config::auto_admit_max_bytes`];
    /// larger values go to L2 only on put, and enter L1 when an L2 hit promotes them.
    #[default]
    Auto,
    /// Never in L1: the entry lives in L2 only and is not promoted. Without an L2 the entry
    /// goes to L1 all the same (it has nowhere else to live).
    Never,
}

/// Expiry refinements: idle timeout, stale-while-revalidate and jitter.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct ExtendedPolicy {
    /// Drop the entry once it has not been read for this long, in milliseconds. Idle clocks
    /// live in memory: a restart restarts them, so an entry never idles out early, and the
    /// TTL stays the bound on its age. Default: none.
    pub idle_ttl_ms: Option<u64>,
    /// After the entry expires, keep serving it for this long, in milliseconds, marked stale
    /// ([`crate::Hit::stale`]) so the caller can refresh it. Default: none (0).
    pub stale_while_revalidate_ms: Option<u64>,
    /// Shorten the expiry by a per-key amount in `[0, jitter_ms]` milliseconds (the same for
    /// the same key, every time), so keys written together do not all expire together. Never
    /// makes an entry expire before its put. Default: none.
    pub jitter_ms: Option<u64>,
}

/// An entry's policy. Every field is optional; the default is "never expires, admission
/// `Auto`, priority 0, no version".
///
/// ```
/// use cache_core::{Admission, Policy};
///
/// let policy = Policy::new()
///     .ttl_ms(60_000)
///     .stale_while_revalidate_ms(5_000)
///     .l1_admission(Admission::Always)
///     .version(7);
/// assert_eq!(policy.ttl_ms, Some(60_000));
/// assert_eq!(policy.extended.stale_while_revalidate_ms, Some(5_000));
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct Policy {
    /// Time to live from the put, in milliseconds (at least 1).
    pub ttl_ms: Option<u64>,
    /// Absolute expiry, in milliseconds since the Unix epoch (as the cache's clock counts);
    /// must be in the future. With `ttl_ms` too, the earlier wins.
    pub expires_at_unix_ms: Option<u64>,
    /// The largest value this put accepts, in bytes (at most the config's
    /// `limits.max_blob_bytes`, which applies when this is unset).
    pub max_blob_bytes: Option<u64>,
    /// Whether the entry goes to L1. Default: [`Admission::Auto`].
    pub l1_admission: Admission,
    /// L1 eviction bias, 0 (default) to [`cache_l1::MAX_PRIORITY`]: the entry survives that
    /// many extra passes of the eviction hand.
    pub priority: u8,
    /// A compare-and-set version: the put is refused with [`crate::Error::VersionMismatch`]
    /// unless it is greater than the stored entry's version (in L1 or L2). A put without a
    /// version always succeeds and stores an entry without one.
    pub version: Option<u64>,
    /// Idle timeout, stale-while-revalidate, jitter.
    pub extended: ExtendedPolicy,
}

impl Policy {
    /// The default policy.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets [`Policy::ttl_ms`].
    #[must_use]
    pub fn ttl_ms(mut self, ms: u64) -> Self {
        self.ttl_ms = Some(ms);
        self
    }

    /// Sets [`Policy::expires_at_unix_ms`].
    #[must_use]
    pub fn expires_at_unix_ms(mut self, at: u64) -> Self {
        self.expires_at_unix_ms = Some(at);
        self
    }

    /// Sets [`Policy::max_blob_bytes`].
    #[must_use]
    pub fn max_blob_bytes(mut self, bytes: u64) -> Self {
        self.max_blob_bytes = Some(bytes);
        self
    }

    /// Sets [`Policy::l1_admission`].
    #[must_use]
    pub fn l1_admission(mut self, admission: Admission) -> Self {
        self.l1_admission = admission;
        self
    }

    /// Sets [`Policy::priority`].
    #[must_use]
    pub fn priority(mut self, priority: u8) -> Self {
        self.priority = priority;
        self
    }

    /// Sets [`Policy::version`].
    #[must_use]
    pub fn version(mut self, version: u64) -> Self {
        self.version = Some(version);
        self
    }

    /// Sets [`ExtendedPolicy::idle_ttl_ms`].
    #[must_use]
    pub fn idle_ttl_ms(mut self, ms: u64) -> Self {
        self.extended.idle_ttl_ms = Some(ms);
        self
    }

    /// Sets [`ExtendedPolicy::stale_while_revalidate_ms`].
    #[must_use]
    pub fn stale_while_revalidate_ms(mut self, ms: u64) -> Self {
        self.extended.stale_while_revalidate_ms = Some(ms);
        self
    }

    /// Sets [`ExtendedPolicy::jitter_ms`].
    #[must_use]
    pub fn jitter_ms(mut self, ms: u64) -> Self {
        self.extended.jitter_ms = Some(ms);
        self
    }
}

/// A value with everything stored beside it, for [`crate::TieredCache::put_with`].
///
/// ```
/// use cache_core::{Policy, Put};
///
/// let put = Put::new("rows...")
///     .metadata("content-type", "application/json")
///     .tag("table:users")
///     .depends_on("schema:v3")
///     .policy(Policy::new().ttl_ms(30_000));
/// assert_eq!(put.tags.len(), 1);
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Put {
    /// The value.
    pub bytes: Bytes,
    /// Content metadata (content type, encoding, ...), returned with every hit. Limited by
    /// `limits.max_metadata_keys` and `limits.max_metadata_bytes`.
    pub content_metadata: BTreeMap<String, String>,
    /// Tags: [`crate::TieredCache::invalidate_tags`] removes every entry of the namespace
    /// carrying one.
    pub tags: Vec<Bytes>,
    /// Dependencies: [`crate::TieredCache::invalidate_dependencies`] removes every entry of the
    /// namespace depending on one. A dependency may name another key of the namespace, for
    /// transitive invalidation ([`crate::Cascade::Transitive`]).
    pub dependencies: Vec<Bytes>,
    /// Files the value was computed from: their blake3 fingerprints are taken at put time and
    /// checked by [`crate::TieredCache::get_revalidated`]. Paths must be UTF-8.
    pub validate_files: Vec<PathBuf>,
    /// Expiry, admission, priority, version.
    pub policy: Policy,
}

impl Put {
    /// A put of `bytes` with no metadata and the default policy.
    pub fn new(bytes: impl Into<Bytes>) -> Self {
        Self {
            bytes: bytes.into(),
            ..Self::default()
        }
    }

    /// Adds a content metadata pair (replacing an earlier value of `key`).
    #[must_use]
    pub fn metadata(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.content_metadata.insert(key.into(), value.into());
        self
    }

    /// Adds a tag.
    #[must_use]
    pub fn tag(mut self, tag: impl Into<Bytes>) -> Self {
        self.tags.push(tag.into());
        self
    }

    /// Adds a dependency.
    #[must_use]
    pub fn depends_on(mut self, dependency: impl Into<Bytes>) -> Self {
        self.dependencies.push(dependency.into());
        self
    }

    /// Records `path` as an input file, fingerprinted at put time.
    #[must_use]
    pub fn validate_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.validate_files.push(path.into());
        self
    }

    /// Sets the policy.
    #[must_use]
    pub fn policy(mut self, policy: Policy) -> Self {
        self.policy = policy;
        self
    }
}

/// How far [`crate::TieredCache::invalidate_dependencies`] reaches.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum Cascade {
    /// Only entries that list one of the given dependencies.
    #[default]
    Direct,
    /// Also entries that depend on the keys of removed entries, and so on, transitively
    /// (each key is followed once, so cycles end).
    Transitive,
}

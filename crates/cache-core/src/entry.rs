//! An entry's stored description ([`EntryInfo`]), its encoding in the L2 record's metadata
//! section, and the freshness rules (expiry, stale window, idle timeout).
//!
//! Metadata section layout (little-endian), format 1:
//!
//! | bytes | field |
//! |---|---|
//! | 1 | format (1) |
//! | 1 | flags: bit 0 has version, bit 1 has expiry, bit 2 has idle timeout |
//! | 1 | admission (0 always, 1 auto, 2 never) |
//! | 1 | priority |
//! | 8 | written at, ms |
//! | 8 | version (0 if none) |
//! | 8 | expires at, ms (0 if none) |
//! | 8 | stale-while-revalidate window, ms |
//! | 8 | idle timeout, ms (0 if none) |
//! | 4 + pairs | content metadata: count, then per pair `u32 len, key, u32 len, value` |
//! | 4 + files | validators: count, then per file `u32 len, UTF-8 path, 32-byte blake3` |
//!
//! Tags and dependencies are the record's L2 labels: `T` + tag and `D` + dependency, so the
//! store's durable label index finds them after a restart. The whole record is checksummed by
//! L2; a section that does not decode is treated like a corrupt record (a miss).

use std::collections::BTreeMap;

use bytes::Bytes;

use crate::policy::Admission;

/// Label prefix of tags in L2.
pub(crate) const TAG: u8 = b'T';
/// Label prefix of dependencies in L2.
pub(crate) const DEP: u8 = b'D';

const FORMAT: u8 = 1;
const HAS_VERSION: u8 = 1;
const HAS_EXPIRY: u8 = 2;
const HAS_IDLE: u8 = 4;

/// What is stored beside a value: metadata, labels and the resolved policy.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct EntryInfo {
    /// Content metadata, as put.
    pub content_metadata: BTreeMap<String, String>,
    /// Tags, distinct, in the order first given.
    pub tags: Vec<Bytes>,
    /// Dependencies, distinct, in the order first given.
    pub dependencies: Vec<Bytes>,
    /// The CAS version, if the put gave one.
    pub version: Option<u64>,
    /// When the put happened, in the cache clock's milliseconds.
    pub written_at_ms: u64,
    /// When the entry stops being fresh (TTL or absolute expiry, less jitter), if ever.
    pub expires_at_ms: Option<u64>,
    /// How long after `expires_at_ms` it is still served, stale, in milliseconds.
    pub stale_while_revalidate_ms: u64,
    /// The idle timeout, in milliseconds, if any.
    pub idle_ttl_ms: Option<u64>,
    /// L1 eviction priority.
    pub priority: u8,
    /// L1 admission.
    pub admission: Admission,
    /// Input files and their blake3 fingerprints at put time.
    pub validators: Vec<(String, [u8; 32])>,
}

/// Whether an entry may be served at `now`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Freshness {
    Fresh,
    /// Expired, within the stale-while-revalidate window; ms left in the window.
    Stale(u64),
    Expired,
    Idle,
}

impl EntryInfo {
    /// The entry's state at `now`, given when it was last read (or written).
    pub(crate) fn freshness(&self, now: u64, last_access: u64) -> Freshness {
        if let Some(at) = self.expires_at_ms
            && now >= at
        {
            let end = at.saturating_add(self.stale_while_revalidate_ms);
            if now >= end {
                return Freshness::Expired;
            }
            if self.idle_expired(now, last_access) {
                return Freshness::Idle;
            }
            return Freshness::Stale(end - now);
        }
        if self.idle_expired(now, last_access) {
            return Freshness::Idle;
        }
        Freshness::Fresh
    }

    fn idle_expired(&self, now: u64, last_access: u64) -> bool {
        self.idle_ttl_ms
            .is_some_and(|idle| now >= last_access.saturating_add(idle))
    }

    /// When L1 may drop the entry on its own: the end of its stale window.
    pub(crate) fn hard_expiry(&self) -> Option<u64> {
        self.expires_at_ms
            .map(|at| at.saturating_add(self.stale_while_revalidate_ms))
    }

    /// Whether freshness depends on the clock at all.
    pub(crate) fn timed(&self) -> bool {
        self.expires_at_ms.is_some() || self.idle_ttl_ms.is_some()
    }

    /// The L2 labels: tags and dependencies, prefixed.
    pub(crate) fn labels(&self) -> Vec<Vec<u8>> {
        let tags = self.tags.iter().map(|t| prefixed(TAG, t));
        let deps = self.dependencies.iter().map(|d| prefixed(DEP, d));
        tags.chain(deps).collect()
    }

    /// Bytes the entry's description adds to an L1 entry's weight.
    pub(crate) fn weight(&self) -> u64 {
        let meta: usize = self
            .content_metadata
            .iter()
            .map(|(k, v)| k.len() + v.len() + 48)
            .sum();
        let labels: usize = self
            .tags
            .iter()
            .chain(&self.dependencies)
            .map(|l| l.len() + 32)
            .sum();
        let files: usize = self.validators.iter().map(|(p, _)| p.len() + 56).sum();
        (meta + labels + files) as u64
    }

    /// The metadata section stored in L2.
    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(64);
        let flags = (if self.version.is_some() {
            HAS_VERSION
        } else {
            0
        }) | (if self.expires_at_ms.is_some() {
            HAS_EXPIRY
        } else {
            0
        }) | (if self.idle_ttl_ms.is_some() {
            HAS_IDLE
        } else {
            0
        });
        out.extend_from_slice(&[FORMAT, flags, admission_byte(self.admission), self.priority]);
        for n in [
            self.written_at_ms,
            self.version.unwrap_or(0),
            self.expires_at_ms.unwrap_or(0),
            self.stale_while_revalidate_ms,
            self.idle_ttl_ms.unwrap_or(0),
        ] {
            out.extend_from_slice(&n.to_le_bytes());
        }
        put_len(&mut out, self.content_metadata.len());
        for (k, v) in &self.content_metadata {
            put_bytes(&mut out, k.as_bytes());
            put_bytes(&mut out, v.as_bytes());
        }
        put_len(&mut out, self.validators.len());
        for (path, hash) in &self.validators {
            put_bytes(&mut out, path.as_bytes());
            out.extend_from_slice(hash);
        }
        out
    }

    /// Decodes a metadata section and the record's labels; `None` if they do not decode.
    pub(crate) fn decode(meta: &[u8], labels: &[Bytes]) -> Option<Self> {
        let mut r = Reader(meta);
        let [format, flags, admission, priority] = r.array::<4>()?;
        if format != FORMAT {
            return None;
        }
        let mut n = [0u64; 5];
        for v in &mut n {
            *v = u64::from_le_bytes(r.array()?);
        }
        let [written_at_ms, version, expires, stale, idle] = n;
        let mut info = Self {
            written_at_ms,
            version: (flags & HAS_VERSION != 0).then_some(version),
            expires_at_ms: (flags & HAS_EXPIRY != 0).then_some(expires),
            stale_while_revalidate_ms: stale,
            idle_ttl_ms: (flags & HAS_IDLE != 0).then_some(idle),
            priority,
            admission: match admission {
                0 => Admission::Always,
                1 => Admission::Auto,
                2 => Admission::Never,
                _ => return None,
            },
            ..Self::default()
        };
        for _ in 0..r.len()? {
            let k = String::from_utf8(r.bytes()?.to_vec()).ok()?;
            let v = String::from_utf8(r.bytes()?.to_vec()).ok()?;
            info.content_metadata.insert(k, v);
        }
        for _ in 0..r.len()? {
            let path = String::from_utf8(r.bytes()?.to_vec()).ok()?;
            info.validators.push((path, r.array()?));
        }
        if !r.0.is_empty() {
            return None;
        }
        for label in labels {
            match label.split_first() {
                Some((&TAG, t)) => info.tags.push(label.slice_ref(t)),
                Some((&DEP, d)) => info.dependencies.push(label.slice_ref(d)),
                _ => return None,
            }
        }
        Some(info)
    }
}

pub(crate) fn prefixed(prefix: u8, label: &[u8]) -> Vec<u8> {
    let mut l = Vec::with_capacity(label.len() + 1);
    l.push(prefix);
    l.extend_from_slice(label);
    l
}

fn admission_byte(a: Admission) -> u8 {
    match a {
        Admission::Always => 0,
        Admission::Auto => 1,
        Admission::Never => 2,
    }
}

fn put_len(out: &mut Vec<u8>, len: usize) {
    let len = u32::try_from(len).expect("lengths are limited far below 4 GiB");
    out.extend_from_slice(&len.to_le_bytes());
}

fn put_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    put_len(out, bytes.len());
    out.extend_from_slice(bytes);
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn array<const N: usize>(&mut self) -> Option<[u8; N]> {
        let (head, rest) = self.0.split_first_chunk::<N>()?;
        self.0 = rest;
        Some(*head)
    }

    fn len(&mut self) -> Option<usize> {
        usize::try_from(u32::from_le_bytes(self.array()?)).ok()
    }

    fn bytes(&mut self) -> Option<&'a [u8]> {
        let n = self.len()?;
        if n > self.0.len() {
            return None;
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Some(head)
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn info() -> impl Strategy<Value = EntryInfo> {
        (
            proptest::collection::btree_map(".{0,8}", ".{0,8}", 0..4),
            proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..6), 0..4),
            proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..6), 0..4),
            (any::<Option<u64>>(), any::<u64>(), any::<Option<u64>>()),
            (any::<u64>(), any::<Option<u64>>(), any::<u8>(), 0..3u8),
            proptest::collection::vec((".{0,12}", any::<[u8; 32]>()), 0..3),
        )
            .prop_map(
                |(
                    meta,
                    tags,
                    deps,
                    (version, written, expires),
                    (stale, idle, prio, adm),
                    files,
                )| {
                    EntryInfo {
                        content_metadata: meta,
                        tags: tags.into_iter().map(Bytes::from).collect(),
                        dependencies: deps.into_iter().map(Bytes::from).collect(),
                        version,
                        written_at_ms: written,
                        expires_at_ms: expires,
                        stale_while_revalidate_ms: stale,
                        idle_ttl_ms: idle,
                        priority: prio,
                        admission: [Admission::Always, Admission::Auto, Admission::Never]
                            [adm as usize],
                        validators: files,
                    }
                },
            )
    }

    proptest! {
        #[test]
        fn encoding_round_trips(info in info()) {
            let labels: Vec<Bytes> = info.labels().into_iter().map(Bytes::from).collect();
            prop_assert_eq!(EntryInfo::decode(&info.encode(), &labels), Some(info));
        }

        #[test]
        fn truncated_or_extended_sections_do_not_decode(info in info(), cut in 0usize..64) {
            let encoded = info.encode();
            let cut = cut.min(encoded.len() - 1);
            prop_assert_eq!(EntryInfo::decode(&encoded[..cut], &[]), None);
            let mut longer = encoded;
            longer.push(0);
            prop_assert_eq!(EntryInfo::decode(&longer, &[]), None);
        }
    }

    #[test]
    fn freshness_follows_expiry_stale_window_and_idle_timeout() {
        let info = EntryInfo {
            expires_at_ms: Some(100),
            stale_while_revalidate_ms: 50,
            idle_ttl_ms: Some(30),
            ..EntryInfo::default()
        };
        assert_eq!(info.freshness(99, 80), Freshness::Fresh);
        assert_eq!(info.freshness(100, 80), Freshness::Stale(50));
        assert_eq!(info.freshness(149, 140), Freshness::Stale(1));
        assert_eq!(info.freshness(150, 149), Freshness::Expired);
        assert_eq!(info.freshness(110, 80), Freshness::Idle);
        assert_eq!(info.freshness(90, 60), Freshness::Idle);
        assert_eq!(info.hard_expiry(), Some(150));
        let forever = EntryInfo::default();
        assert_eq!(forever.freshness(u64::MAX, 0), Freshness::Fresh);
        assert!(!forever.timed());
    }
}

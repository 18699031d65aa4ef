//! Cache keys: an owned `(namespace, key)` for L1 entries, and a borrowed form for lookups.

use std::hash::{Hash, Hasher};

use cache_l1::Equivalent;

/// An owned `(namespace, key)`, stored in one allocation: the namespace's bytes then the key's.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct CacheKey {
    bytes: Box<[u8]>,
    ns_len: u32,
}

impl CacheKey {
    /// Callers check lengths first (namespaces are at most [`cache_l2::MAX_NAMESPACE_LEN`]).
    pub(crate) fn new(namespace: &str, key: &[u8]) -> Self {
        let mut bytes = Vec::with_capacity(namespace.len() + key.len());
        bytes.extend_from_slice(namespace.as_bytes());
        bytes.extend_from_slice(key);
        Self {
            bytes: bytes.into_boxed_slice(),
            ns_len: u32::try_from(namespace.len()).expect("namespace length is checked"),
        }
    }

    pub(crate) fn namespace(&self) -> &[u8] {
        &self.bytes[..self.ns_len as usize]
    }

    /// The namespace as text (it was a `&str` when the key was made).
    pub(crate) fn namespace_str(&self) -> &str {
        std::str::from_utf8(self.namespace()).unwrap_or_default()
    }

    pub(crate) fn key(&self) -> &[u8] {
        &self.bytes[self.ns_len as usize..]
    }

    /// Heap bytes held by the key.
    pub(crate) fn len(&self) -> usize {
        self.bytes.len()
    }
}

impl std::fmt::Debug for CacheKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("CacheKey")
            .field(&String::from_utf8_lossy(self.namespace()))
            .field(&self.key())
            .finish()
    }
}

/// Hashes `(namespace, key)` identically for the owned and the borrowed form: the lookup path
/// depends on it.
fn hash_parts<H: Hasher>(namespace: &[u8], key: &[u8], state: &mut H) {
    state.write_usize(namespace.len());
    state.write(namespace);
    state.write(key);
}

impl Hash for CacheKey {
    fn hash<H: Hasher>(&self, state: &mut H) {
        hash_parts(self.namespace(), self.key(), state);
    }
}

/// A borrowed `(namespace, key)`: what `get` looks up with, so a hit allocates nothing.
#[derive(Debug, Clone, Copy)]
pub(crate) struct KeyRef<'a> {
    pub(crate) namespace: &'a str,
    pub(crate) key: &'a [u8],
}

impl Hash for KeyRef<'_> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        hash_parts(self.namespace.as_bytes(), self.key, state);
    }
}

impl Equivalent<CacheKey> for KeyRef<'_> {
    fn equivalent(&self, owned: &CacheKey) -> bool {
        self.namespace.as_bytes() == owned.namespace() && self.key == owned.key()
    }
}

#[cfg(test)]
mod tests {
    use std::hash::BuildHasher;

    use super::*;

    #[test]
    fn owned_and_borrowed_forms_hash_and_compare_alike() {
        let s = std::collections::hash_map::RandomState::new();
        for (ns, key) in [("a", &b"bc"[..]), ("ab", b"c"), ("", b"abc"), ("abc", b"")] {
            let owned = CacheKey::new(ns, key);
            let borrowed = KeyRef { namespace: ns, key };
            assert_eq!(s.hash_one(&owned), s.hash_one(borrowed));
            assert!(borrowed.equivalent(&owned));
        }
        // The namespace boundary matters: ("a", "bc") is not ("ab", "c").
        let owned = CacheKey::new("a", b"bc");
        assert!(
            !KeyRef {
                namespace: "ab",
                key: b"c"
            }
            .equivalent(&owned)
        );
        assert_ne!(
            s.hash_one(&owned),
            s.hash_one(KeyRef {
                namespace: "ab",
                key: b"c"
            })
        );
    }
}

//! How much of the budget an entry uses.

/// Computes the weight of an entry: how much of the cache's capacity it uses.
///
/// The unit is the cache's: bytes when the capacity is a byte budget, entries when it is an
/// entry count ([`UnitWeigher`]). A weight of 0 is counted as 1, so that every entry uses some
/// capacity and the cache stays bounded in length.
///
/// The weight of an entry must not change while it is resident: the cache computes it once on
/// insert and gives exactly that amount back on eviction or removal.
pub trait Weigher<K, V> {
    /// The weight of `key` with `value`, in the cache's capacity unit.
    fn weight(&self, key: &K, value: &V) -> u64;
}

/// Every entry weighs 1: the capacity is an entry count.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct UnitWeigher;

impl<K, V> Weigher<K, V> for UnitWeigher {
    #[inline]
    fn weight(&self, _key: &K, _value: &V) -> u64 {
        1
    }
}

impl<K, V, F> Weigher<K, V> for F
where
    F: Fn(&K, &V) -> u64,
{
    #[inline]
    fn weight(&self, key: &K, value: &V) -> u64 {
        self(key, value)
    }
}

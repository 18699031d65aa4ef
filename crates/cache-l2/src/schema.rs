//! Every redb table of a store, in one place.
//!
//! Table names carry a version suffix: a change to a table's key or value layout gets a new
//! name (and a migration), never a reinterpretation of old bytes.

use redb::TableDefinition;

/// `(namespace, key)` → record (header + payload, see [`crate::record`]).
pub(crate) const RECORDS: TableDefinition<(&str, &[u8]), &[u8]> =
    TableDefinition::new("records_v1");

/// Insertion sequence number → `(namespace, key)`: the FIFO eviction order. An entry whose
/// record is gone or carries another sequence number is stale and is skipped.
pub(crate) const ORDER: TableDefinition<u64, (&str, &[u8])> = TableDefinition::new("order_v1");

/// Named counters kept in the same transactions as the records they describe.
pub(crate) const META: TableDefinition<&str, u64> = TableDefinition::new("meta_v1");

/// Identifies the file as a cache-l2 store: `"format"` → the store format version.
pub(crate) const FORMAT: TableDefinition<&str, u64> = TableDefinition::new("cache_l2_format");

/// [`META`] key: accounted bytes of live records (see [`crate::record::accounted_size`]).
pub(crate) const META_LIVE_BYTES: &str = "live_bytes";
/// [`META`] key: the next insertion sequence number.
pub(crate) const META_NEXT_SEQ: &str = "next_seq";
/// [`FORMAT`] key.
pub(crate) const FORMAT_KEY: &str = "format";

/// The store format this build writes (the set of tables above).
pub(crate) const STORE_FORMAT: u64 = 1;

//! Every redb table of a store, in one place.
//!
//! Table names carry a version suffix: a change to a table's key or value layout gets a new
//! name (and a migration), never a reinterpretation of old bytes. Record *values* carry their
//! own format version (see [`crate::record`]), so the records table keeps its name while the
//! record format grows.

use redb::{MultimapTableDefinition, TableDefinition};

/// `(namespace, key)` → entry (header, labels, metadata and inline payload; see
/// [`crate::record`]).
pub(crate) const RECORDS: TableDefinition<(&str, &[u8]), &[u8]> =
    TableDefinition::new("records_v1");

/// `(sequence number, chunk index)` → payload chunk of the record with that sequence number
/// ([`crate::record::CHUNK_LEN`] bytes, the last one possibly shorter).
pub(crate) const BLOBS: TableDefinition<(u64, u32), &[u8]> = TableDefinition::new("blobs_v1");

/// Insertion sequence number → `(namespace, key)`: the FIFO eviction order. An entry whose
/// record is gone or carries another sequence number is stale and is skipped.
pub(crate) const ORDER: TableDefinition<u64, (&str, &[u8])> = TableDefinition::new("order_v1");

/// `(namespace, label)` → keys of the namespace's records that carry the label: the durable
/// tag and dependency index. Kept in the same transactions as the records.
pub(crate) const LABELS: MultimapTableDefinition<(&str, &[u8]), &[u8]> =
    MultimapTableDefinition::new("labels_v1");

/// Namespace → its generation. A record written in an older generation than its namespace's
/// is dead: a miss, removed lazily. Absent means 0.
pub(crate) const GENERATIONS: TableDefinition<&str, u64> = TableDefinition::new("generations_v1");

/// Named counters kept in the same transactions as the records they describe.
pub(crate) const META: TableDefinition<&str, u64> = TableDefinition::new("meta_v1");

/// Format information; identifies the file as a cache-l2 store: [`FORMAT_KEY`] → the store
/// format version, [`CHUNK_LEN_KEY`] → the chunk length records are written with.
pub(crate) const FORMAT: TableDefinition<&str, u64> = TableDefinition::new("cache_l2_format");

/// [`META`] key: accounted bytes of live records (see [`crate::record::accounted_size`]).
pub(crate) const META_LIVE_BYTES: &str = "live_bytes";
/// [`META`] key: estimated bytes of file the live records occupy (see [`crate::budget`]).
pub(crate) const META_FOOTPRINT: &str = "footprint_bytes";
/// [`META`] key: the next insertion sequence number.
pub(crate) const META_NEXT_SEQ: &str = "next_seq";
/// [`META`] key: the id of the last commit, one more per commit (absent, read as 0, in files
/// written before it existed). After a reopen it tells which commits the file kept.
pub(crate) const META_COMMIT_ID: &str = "commit_id";
/// [`FORMAT`] key.
pub(crate) const FORMAT_KEY: &str = "format";
/// [`FORMAT`] key.
pub(crate) const CHUNK_LEN_KEY: &str = "chunk_len";

/// The store format this build writes: the set of tables above. Format 1 (records, order,
/// meta and format tables, version-1 records only) is migrated on open.
pub(crate) const STORE_FORMAT: u64 = 2;
/// The oldest store format this build opens (and migrates).
pub(crate) const OLDEST_STORE_FORMAT: u64 = 1;

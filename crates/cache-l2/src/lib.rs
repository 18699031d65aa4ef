//! `cache-l2`: the durable tier, a checksummed record store on [redb].
//!
//! A [`Store`] maps `(namespace, key)` to a value, with optional caller metadata and labels,
//! inside one redb file. Each record is an entry (a versioned little-endian header, labels,
//! metadata, the payload's tail) plus page-sized payload chunks, with blake3 checksums over the
//! entry (bound to its namespace and key) and over the payload (see [`record`] and
//! `docs/l2-format.md`). Values may be zstd-compressed ([`CompressionOptions`]).
//!
//! Guarantees:
//!
//! - **Never wrong bytes.** A record that fails verification is a miss, counted in
//!   [`L2Stats::corrupt_records`] and deleted. Decompression never allocates more than the
//!   recorded (checksummed) original length.
//! - **Within budget.** The *file* stays within about 1.07 × [`L2Options::max_bytes`]: each
//!   record is charged an upper bound of the redb pages it occupies, and a put that needs room
//!   evicts records by SIEVE (or FIFO, or is refused: [`EvictionPolicy`], [`OnFull`]); see
//!   [`L2Stats::footprint_bytes`].
//! - **Cheap misses.** A Bloom filter over the keys the store may hold (the synopsis) answers
//!   gets of keys never written without reading the file ([`L2Stats::negative_skips`],
//!   [`Store::may_contain`]); it never hides a record.
//! - **Labels and namespace flushes.** [`Store::invalidate_labels`] removes every record of a
//!   namespace carrying a label (a durable index, so it reaches records written before a
//!   restart); [`Store::invalidate_namespace`] kills every record of a namespace in O(1) by
//!   bumping its durable generation, and a background sweep removes them.
//! - **Group commit.** Writes queue to one writer thread, which commits whatever is queued in
//!   one redb transaction ([`GroupCommitOptions`] bounds a batch), so concurrent writers share
//!   commits and fsyncs. Reads see a write from the moment it is queued.
//! - **Durable where it matters.** Overwrites, deletes, label invalidations and namespace
//!   flushes return only once durable, and so does a write of a key whose record a
//!   not-yet-durable commit removed. Fresh inserts may ride a
//!   non-durable commit that a crash can take back (a miss afterwards, never an older or
//!   foreign value); in [`WriteMode::Async`] they return once queued. Closing the store makes
//!   everything durable.
//! - **Foreign files are refused, not overwritten**, and a file open elsewhere is refused with
//!   [`L2Error::AlreadyOpen`].
//!
//! ```
//! use cache_l2::{L2Options, Store};
//!
//! let dir = tempfile::tempdir()?;
//! let store = Store::open(&L2Options::new(dir.path().join("l2.redb")))?;
//! store.put("users", b"42", b"{\"name\":\"Ada\"}")?;
//! assert_eq!(store.get("users", b"42")?.as_deref(), Some(&b"{\"name\":\"Ada\"}"[..]));
//! assert!(store.delete("users", b"42")?);
//! assert_eq!(store.get("users", b"42")?, None);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

#![forbid(unsafe_code)]
#![deny(clippy::host_endian_bytes, clippy::big_endian_bytes)]

mod backend;
mod budget;
mod compress;
mod error;
mod eviction;
mod fault;
mod open;
mod options;
pub mod record;
mod schema;
mod stats;
mod store;
mod sweep;
mod synopsis;
mod tables;
mod writer;

pub use compress::CompressionOptions;
pub use error::{KeyTooLong, L2Error, Result};
pub use eviction::{EvictionPolicy, OnFull};
pub use options::{
    GroupCommitOptions, L2Options, MAX_MAX_BYTES, MAX_QUEUE_OPS, MAX_SYNOPSIS_FP, MIN_MAX_BYTES,
    MIN_SYNOPSIS_FP, OnCorrupt, WriteMode,
};
pub use stats::L2Stats;
pub use store::{Entry, MAX_KEY_LEN, MAX_NAMESPACE_LEN, PutOutcome, Store, check_key};

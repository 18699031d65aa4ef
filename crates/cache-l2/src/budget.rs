//! How the store keeps its *file* within `max_bytes`.
//!
//! redb allocates 4 KiB pages (and power-of-two runs of them) in a file it grows on demand:
//! below 4 GiB it doubles the file's usable size (so a new store's file is 1, 2, 4, … MiB plus
//! about 0.4% of headers), above it adds 4 GiB regions. It never grows the file except to
//! satisfy an allocation, and it reuses freed pages only after a durable commit. So the file
//! stays within a size as long as the pages in use, plus those freed but not yet reusable, fit
//! in it. The store:
//!
//! 1. picks the largest size redb's growth steps reach within `max_bytes` plus 1/16
//!    ([`file_capacity`]);
//! 2. charges every record an estimate of the pages it occupies, its **footprint**
//!    ([`entry_footprint`], [`chunk_footprint`], [`label_footprint`]); the estimates are
//!    upper bounds measured against redb (a record's B-tree row costs at most twice its bytes,
//!    a chunk exactly the run of pages that holds it);
//! 3. evicts until live footprints fit in [`footprint_limit`]: 13/16 of the capacity, leaving
//!    3/16 for pages that commits free but redb cannot reuse yet, which the writer bounds by
//!    cutting batches and forcing a durable commit at 1/32 of the capacity each
//!    ([`transient_limit`]).
//!
//! Footprints are functions of lengths only (never of header fields), so removing a record
//! subtracts exactly what adding it charged, even if its bytes rotted meanwhile.

/// redb's page size, in bytes.
pub(crate) const PAGE: u64 = 4096;

/// Bytes of a chunk's leaf besides the chunk: redb's leaf header, the `(u64, u32)` key and one
/// value offset.
const CHUNK_LEAF_OVERHEAD: u64 = 20;

/// Footprint of a payload chunk of `len` bytes: it is a leaf by itself, in the power-of-two run
/// of pages that holds it (a full [`crate::record::CHUNK_LEN`] chunk fills 16 KiB exactly).
pub(crate) fn chunk_footprint(len: usize) -> u64 {
    (len as u64 + CHUNK_LEAF_OVERHEAD)
        .div_ceil(PAGE)
        .next_power_of_two()
        * PAGE
}

/// Bytes of B-tree bookkeeping per row (offsets, child pointers and checksums in branch pages),
/// rounded up.
const ROW_OVERHEAD: u64 = 32;

/// The smallest file redb makes: an empty database is 1 MiB plus headers.
const MIN_CAPACITY: u64 = 1 << 20;

/// Above this, redb grows the file by whole regions of this size.
const REGION: u64 = 4 << 30;

/// The usable bytes of the largest file redb's growth steps reach within `max_bytes * 17/16`
/// (the file itself is about 0.4% larger: headers). At least redb's minimum of 1 MiB.
pub(crate) fn file_capacity(max_bytes: u64) -> u64 {
    let allowed = max_bytes.saturating_add(max_bytes / 16);
    let cap = if allowed >= REGION {
        allowed / REGION * REGION
    } else {
        // The largest power of two at or below `allowed`.
        1 << allowed.max(1).ilog2()
    };
    cap.max(MIN_CAPACITY)
}

/// The footprint live records may reach: 13/16 of the capacity, and never more than
/// `max_bytes` itself.
pub(crate) fn footprint_limit(max_bytes: u64) -> u64 {
    (file_capacity(max_bytes) / 16 * 13).min(max_bytes)
}

/// How much footprint a batch may add, and undurable commits may add in a row, before a
/// durable commit lets redb reuse the pages they freed: 1/32 of the capacity.
pub(crate) fn transient_limit(max_bytes: u64) -> u64 {
    file_capacity(max_bytes) / 32
}

/// Footprint of a record's row in the records table (`ns_len + key_len + entry_len` bytes) and
/// its row in the order table. A row that shares leaves with others costs at most twice its
/// bytes (leaves are at least about half full); a row too large to share a page takes a
/// power-of-two run of pages by itself.
pub(crate) fn entry_footprint(ns_len: usize, key_len: usize, entry_len: usize) -> u64 {
    let row = (ns_len + key_len + entry_len) as u64 + ROW_OVERHEAD;
    let record = if row > PAGE / 2 {
        row.div_ceil(PAGE).next_power_of_two() * PAGE
    } else {
        2 * row
    };
    let order = 2 * ((ns_len + key_len) as u64 + 8 + ROW_OVERHEAD);
    record + order
}

/// Footprint of one row of the label index.
pub(crate) fn label_footprint(ns_len: usize, label_len: usize, key_len: usize) -> u64 {
    2 * ((ns_len + label_len + key_len) as u64 + ROW_OVERHEAD)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capacity_follows_redbs_growth_steps() {
        const MIB: u64 = 1 << 20;
        assert_eq!(file_capacity(64 * MIB), 64 * MIB);
        assert_eq!(file_capacity(68 * MIB), 64 * MIB);
        assert_eq!(file_capacity(100 * MIB), 64 * MIB);
        assert_eq!(file_capacity(121 * MIB), 128 * MIB);
        assert_eq!(file_capacity(64 << 10), MIB);
        assert_eq!(file_capacity(10 << 30), 8 << 30);
        assert_eq!(file_capacity(4 << 30), 4 << 30);
        assert!(footprint_limit(64 << 10) <= 64 << 10);
        assert_eq!(footprint_limit(64 * MIB), 52 * MIB);
    }

    #[test]
    fn footprints_bound_page_use() {
        // A small row shares a leaf; a row over half a page gets one or more pages of its own.
        assert_eq!(entry_footprint(2, 8, 100) - entry_footprint(2, 8, 0), 200);
        let big = entry_footprint(2, 8, 3000);
        assert!((PAGE..2 * PAGE).contains(&big), "{big}");
        let bigger = entry_footprint(2, 8, 5000);
        assert!(bigger >= 2 * PAGE, "{bigger}");
        assert_eq!(chunk_footprint(crate::record::CHUNK_LEN), 4 * PAGE);
        assert_eq!(chunk_footprint(4076), PAGE);
        assert_eq!(chunk_footprint(4077), 2 * PAGE);
        assert_eq!(chunk_footprint(9000), 4 * PAGE);
    }
}

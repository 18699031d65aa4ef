//! A store's counters and their snapshot.

use std::sync::atomic::{AtomicU64, Ordering};

/// A snapshot of a store's counters and sizes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct L2Stats {
    /// Gets that returned a value.
    pub hits: u64,
    /// Gets that returned nothing (absent, failed verification, or the store degraded).
    pub misses: u64,
    /// Records that failed verification on read (including those declaring a value over
    /// `max_value_bytes`); each was counted as a miss and deleted.
    pub corrupt_records: u64,
    /// Of `corrupt_records`, those whose header declared a value longer than
    /// [`crate::L2Options::max_value_bytes`]: refused before any decompression.
    pub oversized_records: u64,
    /// Records written (new keys and overwrites), counted at commit.
    pub insertions: u64,
    /// Records written zstd-compressed.
    pub compressed_insertions: u64,
    /// Bytes compression saved over the values' original lengths.
    pub bytes_saved: u64,
    /// Records evicted to keep the budget.
    pub evictions: u64,
    /// Records removed by [`crate::Store::delete`].
    pub deletes: u64,
    /// Records removed by [`crate::Store::invalidate_labels`].
    pub label_invalidations: u64,
    /// Records removed by [`crate::Store::invalidate_prefix`].
    pub prefix_invalidations: u64,
    /// Records removed by [`crate::Store::clear`].
    pub cleared: u64,
    /// Namespace flushes ([`crate::Store::invalidate_namespace`]).
    pub namespace_flushes: u64,
    /// Dead records (written before their namespace's last flush) removed by the background
    /// sweep.
    pub swept: u64,
    /// Write transactions committed by the writer thread (group commits).
    pub commits: u64,
    /// Of those, durable ones (`fsync`ed).
    pub durable_commits: u64,
    /// Writes applied by those commits; `batched_writes / commits` is the mean batch size.
    pub batched_writes: u64,
    /// Writes that failed: their commit failed, or the store was degraded. Their callers got
    /// the error, except for [`crate::WriteMode::Async`] fresh inserts that had returned
    /// already: those are also in `lost_writes`.
    pub failed_writes: u64,
    /// Acknowledged writes the store dropped without a crash: [`crate::WriteMode::Async`]
    /// inserts whose commit failed, and inserts (either mode) acknowledged after a commit that
    /// was not yet durable when an I/O error or a contained panic made the store reopen its
    /// file (the reopen rolls back to the last durable commit). They read as misses.
    pub lost_writes: u64,
    /// Puts refused because the store was full ([`crate::OnFull::Reject`]): those that returned
    /// [`crate::L2Error::Full`], and [`crate::WriteMode::Async`] inserts refused when their
    /// batch committed (they read as misses afterwards).
    pub rejected_writes: u64,
    /// Gets (and [`crate::Store::may_contain`] checks) the synopsis answered without reading the
    /// file: the key was certainly absent.
    pub negative_skips: u64,
    /// Gets the synopsis let through that found no live record (the Bloom filter's false
    /// positives, including keys deleted or evicted since it was built).
    pub synopsis_false_positives: u64,
    /// Times the synopsis was rebuilt after taking more keys than it was sized for.
    pub synopsis_rebuilds: u64,
    /// Memory of the synopsis, in bytes.
    pub synopsis_bytes: u64,
    /// Writes queued and not yet committed, now.
    pub queued_writes: u64,
    /// Accounted bytes of live records now: namespace, key, entry (header, labels, metadata,
    /// inline payload) and payload chunks.
    pub live_bytes: u64,
    /// Estimated bytes of file the live records occupy (redb pages, index rows); eviction
    /// keeps it within `footprint_limit`. See `docs/operations.md`.
    pub footprint_bytes: u64,
    /// The footprint eviction keeps live records within: 13/16 of `file_capacity`, at most
    /// `max_bytes`.
    pub footprint_limit: u64,
    /// The largest file (usable bytes) the store lets redb grow to: redb's largest growth step
    /// within `max_bytes` plus 1/16.
    pub file_capacity: u64,
    /// The budget for the file, as configured.
    pub max_bytes: u64,
    /// Size of the database file on disk now, in bytes.
    pub file_bytes: u64,
    /// Bytes redb has read from the file since the store was opened (reads its page cache
    /// served are not counted; the OS page cache may still serve counted ones).
    pub file_read_bytes: u64,
    /// Bytes redb has written to the file since the store was opened.
    pub file_written_bytes: u64,
    /// `fsync`s (`fdatasync`) of the file since the store was opened.
    pub file_syncs: u64,
    /// Whether the store is degraded now: an I/O error or a contained redb panic stopped its
    /// writes, which fail with [`crate::L2Error::Degraded`] until the writer thread reopens the
    /// file (see `docs/reliability.md`).
    pub degraded: bool,
    /// I/O errors that degraded the store (failed commits and reads).
    pub io_errors: u64,
    /// Panics raised inside redb (on pages it could not parse) and contained at the store's
    /// boundary instead of reaching the caller.
    pub panics_contained: u64,
    /// Faults that made the store check its file for corruption: contained panics and
    /// corruption redb reported.
    pub corruption_faults: u64,
    /// Times the writer thread reopened the file after a fault and writes resumed.
    pub reopens: u64,
    /// Reopen attempts that failed (retried with backoff).
    pub reopen_failures: u64,
    /// Corrupt files moved aside and replaced by an empty store (`on_corrupt = "recreate"`).
    pub recreated: u64,
    /// Gets answered as misses because no database was open (during a reopen, or after the
    /// store gave up on a corrupt file). Also counted in `misses`.
    pub unavailable_reads: u64,
}

impl L2Stats {
    /// `live_bytes / file_bytes`: how much of the file is live data (0 without a file).
    #[expect(clippy::cast_precision_loss, reason = "a ratio")]
    pub fn live_to_file(&self) -> f64 {
        if self.file_bytes == 0 {
            0.0
        } else {
            self.live_bytes as f64 / self.file_bytes as f64
        }
    }
}

/// The store's counters, bumped with relaxed atomics (see [`crate::L2Stats`] for each).
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) hits: AtomicU64,
    pub(crate) misses: AtomicU64,
    pub(crate) corrupt: AtomicU64,
    pub(crate) oversized: AtomicU64,
    pub(crate) insertions: AtomicU64,
    pub(crate) compressed: AtomicU64,
    pub(crate) bytes_saved: AtomicU64,
    pub(crate) evictions: AtomicU64,
    pub(crate) deletes: AtomicU64,
    pub(crate) label_invalidations: AtomicU64,
    pub(crate) prefix_invalidations: AtomicU64,
    pub(crate) cleared: AtomicU64,
    pub(crate) namespace_flushes: AtomicU64,
    pub(crate) swept: AtomicU64,
    pub(crate) commits: AtomicU64,
    pub(crate) durable_commits: AtomicU64,
    pub(crate) batched_writes: AtomicU64,
    pub(crate) failed_writes: AtomicU64,
    pub(crate) lost_writes: AtomicU64,
    pub(crate) rejected_writes: AtomicU64,
    pub(crate) negative_skips: AtomicU64,
    pub(crate) synopsis_false_positives: AtomicU64,
    pub(crate) synopsis_rebuilds: AtomicU64,
}

pub(crate) fn bump(c: &AtomicU64, n: u64) {
    c.fetch_add(n, Ordering::Relaxed);
}

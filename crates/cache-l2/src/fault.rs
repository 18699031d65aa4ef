//! What the store does when redb panics on a corrupt page or its file fails: the panic is
//! contained at the redb boundary, the store is **degraded**, and the writer thread reopens the
//! database to recover.
//!
//! redb trusts the pages of a cleanly closed file: a flipped byte in a B-tree page can make it
//! index out of range or reach an `unreachable!` while a get or a commit walks the page. Such a
//! panic must not take down the server embedding the cache, so every call into redb runs under
//! [`contain`], which turns a panic into an error. An I/O error (`ENOSPC`, `EIO`) is latched by
//! redb: every later write fails with "Previous I/O error" until the database is reopened.
//!
//! Either way the store records a fault ([`Health::fault`]):
//!
//! - **Degraded**: writes fail at once with [`crate::L2Error::Degraded`]; gets keep reading the
//!   database as it was (the last committed state) while one is open, and are misses while
//!   none is (during a reopen, or after a refused repair).
//! - **Recovery**: the writer thread drops the database and opens the file again, with
//!   exponential backoff ([`RETRY_FIRST`] to [`RETRY_MAX`]). After a corruption fault the reopen
//!   runs redb's integrity check, which verifies every page checksum; a file that fails it is
//!   handled as `on_corrupt` says (refused: the store stays degraded; recreated: moved aside and
//!   started cold). Once a reopen succeeds, writes resume. Commits a reopen rolls back (those
//!   not yet durable) count their puts in [`crate::L2Stats::lost_writes`].

use std::any::Any;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use crate::{L2Error, Result};

/// The first wait before a reopen is retried after it failed.
pub(crate) const RETRY_FIRST: Duration = Duration::from_millis(20);
/// The longest wait between reopen attempts.
pub(crate) const RETRY_MAX: Duration = Duration::from_secs(2);

/// What kind of fault stopped the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FaultKind {
    /// An I/O error on the file: reopen once the device takes writes again.
    Io,
    /// A page redb could not read (a contained panic, or a corruption redb reported): reopen
    /// with an integrity check.
    Corrupt,
}

/// Runs `f`, a call into redb, turning a panic into [`L2Error::Panicked`].
///
/// `AssertUnwindSafe`: after a contained panic the store never uses the database it was
/// reading again (it is degraded, and the writer thread drops the database before reopening
/// the file), so no state the panic may have left half-updated is observed.
pub(crate) fn contain<T>(f: impl FnOnce() -> Result<T>) -> Result<T> {
    catch_unwind(AssertUnwindSafe(f)).unwrap_or_else(|payload| {
        Err(L2Error::Panicked {
            message: panic_message(&*payload),
        })
    })
}

/// Drops `value` (a database handle) with any panic its drop raises contained.
pub(crate) fn drop_contained<T>(value: T) {
    let _ = catch_unwind(AssertUnwindSafe(move || drop(value)));
}

/// The text of a panic payload.
pub(crate) fn panic_message(payload: &(dyn Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "a panic without a message".to_owned()
    }
}

/// The kind of fault an error from a redb call means, if it means one: I/O errors (latched by
/// redb) and everything that says a page or table could not be read.
pub(crate) fn fault_kind(e: &L2Error) -> Option<FaultKind> {
    match e {
        L2Error::Storage(redb::Error::Io(_) | redb::Error::PreviousIo) => Some(FaultKind::Io),
        L2Error::Storage(_) | L2Error::Panicked { .. } => Some(FaultKind::Corrupt),
        _ => None,
    }
}

/// The store's fault state and counters, shared by readers, writers and the writer thread.
#[derive(Debug, Default)]
pub(crate) struct Health {
    /// Set from the fault until a reopen succeeds: writes fail at once.
    degraded: AtomicBool,
    state: Mutex<FaultState>,
    pub(crate) io_errors: AtomicU64,
    pub(crate) panics: AtomicU64,
    pub(crate) corruption_faults: AtomicU64,
    pub(crate) reopens: AtomicU64,
    pub(crate) reopen_failures: AtomicU64,
    pub(crate) recreated: AtomicU64,
    pub(crate) unavailable_reads: AtomicU64,
}

#[derive(Debug, Default)]
struct FaultState {
    /// Why the store is degraded (for errors and stats).
    reason: Option<String>,
    /// The fault recovery must handle: the strongest seen since the last reopen.
    pending: Option<FaultKind>,
    /// When the writer thread may try to reopen next.
    next_attempt: Option<Instant>,
    /// The wait after the next failed attempt.
    backoff: Duration,
    /// Recovery gave up: the file was refused (`on_corrupt = "refuse"`) or cannot be reopened.
    gave_up: bool,
    /// The file was reopened since the last fault; what is left is waiting for the device.
    reopened: bool,
    /// When the last episode ended, and the backoff it had reached: a fault soon after starts
    /// from there, so a device that keeps failing is not reopened in a tight loop.
    last_recovery: Option<(Instant, Duration)>,
}

impl Health {
    /// Whether writes fail now.
    pub(crate) fn is_degraded(&self) -> bool {
        self.degraded.load(Ordering::Acquire)
    }

    /// Why the store is degraded, if it is.
    pub(crate) fn reason(&self) -> Option<String> {
        self.state.lock().reason.clone()
    }

    /// Records a fault: the store is degraded until the writer thread reopens it. Counts it,
    /// and logs it the first time (later faults of the same episode are only counted).
    pub(crate) fn fault(&self, kind: FaultKind, reason: &str, path: &std::path::Path) {
        let counter = match kind {
            FaultKind::Io => &self.io_errors,
            FaultKind::Corrupt => &self.corruption_faults,
        };
        counter.fetch_add(1, Ordering::Relaxed);
        let mut s = self.state.lock();
        let first = s.pending.is_none() && !s.gave_up;
        if s.gave_up {
            return;
        }
        s.pending = Some(match (s.pending, kind) {
            (Some(FaultKind::Corrupt), _) | (_, FaultKind::Corrupt) => FaultKind::Corrupt,
            _ => FaultKind::Io,
        });
        s.reopened = false;
        if first {
            s.reason = Some(reason.to_owned());
            let recent = s
                .last_recovery
                .filter(|(at, _)| at.elapsed() < RETRY_MAX)
                .map(|(_, backoff)| backoff);
            s.next_attempt = Some(Instant::now() + recent.unwrap_or_default());
            s.backoff = recent.map_or(RETRY_FIRST, |b| (b * 2).min(RETRY_MAX));
            self.degraded.store(true, Ordering::Release);
            tracing::error!(
                path = %path.display(),
                kind = ?kind,
                reason,
                "L2 store degraded: writes fail and the database is reopened"
            );
        }
    }

    /// Counts a panic contained at the redb boundary.
    pub(crate) fn count_panic(&self) {
        self.panics.fetch_add(1, Ordering::Relaxed);
    }

    /// The fault to recover from, if an attempt is due now, and whether the file was reopened
    /// already in this episode.
    pub(crate) fn due(&self) -> Option<(FaultKind, bool)> {
        let s = self.state.lock();
        let due = s.next_attempt.is_some_and(|t| Instant::now() >= t);
        if due {
            s.pending.map(|k| (k, s.reopened))
        } else {
            None
        }
    }

    /// The file was reopened: gets read it; writes wait for [`Health::recovered`].
    pub(crate) fn reopened(&self) {
        self.reopens.fetch_add(1, Ordering::Relaxed);
        self.state.lock().reopened = true;
    }

    /// When the next reopen attempt is due, if one is pending.
    pub(crate) fn next_attempt(&self) -> Option<Instant> {
        let s = self.state.lock();
        s.pending.and(s.next_attempt)
    }

    /// A reopen attempt failed: try again after the backoff, doubled up to [`RETRY_MAX`].
    pub(crate) fn attempt_failed(&self, reason: &str) {
        self.reopen_failures.fetch_add(1, Ordering::Relaxed);
        let mut s = self.state.lock();
        s.reason = Some(reason.to_owned());
        s.next_attempt = Some(Instant::now() + s.backoff);
        s.backoff = (s.backoff * 2).min(RETRY_MAX);
    }

    /// Recovery stops: the store stays degraded (reads miss, writes fail) until it is opened
    /// again by the application.
    pub(crate) fn give_up(&self, reason: &str, path: &std::path::Path) {
        let mut s = self.state.lock();
        s.reason = Some(reason.to_owned());
        s.pending = None;
        s.next_attempt = None;
        s.gave_up = true;
        tracing::error!(
            path = %path.display(),
            reason,
            "L2 store stays degraded until it is opened again"
        );
    }

    /// The store recovered: writes resume.
    pub(crate) fn recovered(&self, path: &std::path::Path) {
        let mut s = self.state.lock();
        let backoff = s.backoff;
        *s = FaultState {
            last_recovery: Some((Instant::now(), backoff)),
            ..FaultState::default()
        };
        self.degraded.store(false, Ordering::Release);
        tracing::warn!(path = %path.display(), "L2 store reopened: writes resume");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panic_becomes_an_error_with_its_message() {
        let r: Result<()> = contain(|| panic!("page {} is garbage", 7));
        match r {
            Err(L2Error::Panicked { message }) => assert_eq!(message, "page 7 is garbage"),
            other => panic!("{other:?}"),
        }
        assert_eq!(contain(|| Ok(5)).unwrap(), 5);
    }

    #[test]
    fn faults_escalate_to_corruption_and_back_off() {
        let h = Health::default();
        let path = std::path::Path::new("x");
        assert!(!h.is_degraded());
        h.fault(FaultKind::Io, "ENOSPC", path);
        assert!(h.is_degraded());
        assert_eq!(h.due(), Some((FaultKind::Io, false)));
        h.fault(FaultKind::Corrupt, "page", path);
        assert_eq!(h.due(), Some((FaultKind::Corrupt, false)));
        assert_eq!(
            h.reason().as_deref(),
            Some("ENOSPC"),
            "the first reason stays"
        );
        h.attempt_failed("still full");
        assert_eq!(h.due(), None, "not before the backoff");
        assert!(h.next_attempt().is_some());
        h.reopened();
        assert_eq!(h.reopens.load(Ordering::Relaxed), 1);
        h.recovered(path);
        assert!(!h.is_degraded());
        assert_eq!(h.due(), None);
        // A fault right after a recovery waits for the backoff it had reached.
        h.fault(FaultKind::Io, "EIO", path);
        assert_eq!(h.due(), None, "not at once after a recent recovery");
        h.give_up("refused", path);
        assert!(h.is_degraded());
        assert_eq!(h.next_attempt(), None);
        h.fault(FaultKind::Io, "again", path);
        assert_eq!(h.due(), None, "no more attempts after giving up");
    }
}

//! The storage backend a store runs on: redb's own file backend, or a caller's, with the bytes
//! redb reads from and writes to it counted, so [`crate::L2Stats`] can report the tier's file
//! I/O (what a benchmark compares with another disk cache's device I/O).
//!
//! The counts are of calls into the backend: reads redb's page cache served never reach it,
//! and the operating system's page cache may still serve a counted read without touching the
//! device.

use std::io;
use std::ops::Bound;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use redb::{BackendError, StorageBackend};

/// Bytes read and written through a backend, shared with the store's stats.
#[derive(Debug, Default)]
pub(crate) struct FileIo {
    read_bytes: AtomicU64,
    written_bytes: AtomicU64,
    syncs: AtomicU64,
}

impl FileIo {
    /// `(bytes read, bytes written, syncs)` so far.
    pub(crate) fn snapshot(&self) -> (u64, u64, u64) {
        (
            self.read_bytes.load(Ordering::Relaxed),
            self.written_bytes.load(Ordering::Relaxed),
            self.syncs.load(Ordering::Relaxed),
        )
    }
}

/// `inner` with its reads, writes and syncs counted into a shared [`FileIo`] (shared across
/// reopens, so the counts cover the store's life). Every other call (length, locks, close) is
/// passed through unchanged, so file locking behaves exactly as `inner`'s.
#[derive(Debug)]
pub(crate) struct Counting {
    inner: Box<dyn StorageBackend>,
    io: Arc<FileIo>,
}

impl Counting {
    /// Wraps `inner`, counting into `io`.
    pub(crate) fn new(inner: Box<dyn StorageBackend>, io: Arc<FileIo>) -> Self {
        Self { inner, io }
    }
}

impl StorageBackend for Counting {
    fn len(&self) -> Result<u64, io::Error> {
        self.inner.len()
    }

    fn read(&self, offset: u64, out: &mut [u8]) -> Result<(), io::Error> {
        self.inner.read(offset, out)?;
        self.io
            .read_bytes
            .fetch_add(out.len() as u64, Ordering::Relaxed);
        Ok(())
    }

    fn set_len(&self, len: u64) -> Result<(), io::Error> {
        self.inner.set_len(len)
    }

    fn sync_data(&self) -> Result<(), io::Error> {
        self.inner.sync_data()?;
        self.io.syncs.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    fn write(&self, offset: u64, data: &[u8]) -> Result<(), io::Error> {
        self.inner.write(offset, data)?;
        self.io
            .written_bytes
            .fetch_add(data.len() as u64, Ordering::Relaxed);
        Ok(())
    }

    fn close(&self) -> Result<(), io::Error> {
        self.inner.close()
    }

    fn try_lock_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<bool, BackendError> {
        self.inner.try_lock_range(start, end)
    }

    fn try_lock_shared_range(
        &self,
        start: Bound<u64>,
        end: Bound<u64>,
    ) -> Result<bool, BackendError> {
        self.inner.try_lock_shared_range(start, end)
    }

    fn lock_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<(), BackendError> {
        self.inner.lock_range(start, end)
    }

    fn lock_shared_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<(), BackendError> {
        self.inner.lock_shared_range(start, end)
    }

    fn unlock_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<(), BackendError> {
        self.inner.unlock_range(start, end)
    }

    fn query_lock_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<bool, BackendError> {
        self.inner.query_lock_range(start, end)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_writes_and_syncs_are_counted_and_passed_through() {
        let dir = tempfile::tempdir().unwrap();
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(dir.path().join("f"))
            .unwrap();
        let io = Arc::new(FileIo::default());
        let b = Counting::new(
            Box::new(redb::backends::FileBackend::new(file).unwrap()),
            Arc::clone(&io),
        );
        b.set_len(64).unwrap();
        b.write(8, b"hello").unwrap();
        b.write(0, b"ab").unwrap();
        let mut out = [0u8; 5];
        b.read(8, &mut out).unwrap();
        assert_eq!(&out, b"hello");
        b.sync_data().unwrap();
        assert_eq!(io.snapshot(), (5, 7, 1));
        assert_eq!(b.len().unwrap(), 64);
        // A failed read (past the end) counts nothing.
        let mut big = [0u8; 16];
        let _ = b.read(60, &mut big);
        assert_eq!(io.snapshot().0, 5);
    }

    #[test]
    fn a_store_reports_the_bytes_it_wrote_and_read() {
        let dir = tempfile::tempdir().unwrap();
        let options = crate::L2Options::new(dir.path().join("l2.redb"));
        // Incompressible, so the file holds every byte of it.
        let value = crate::compress::noise(200_000);
        {
            let store = crate::Store::open(&options).unwrap();
            let before = store.stats();
            store.put("ns", b"k", &value).unwrap();
            store.flush().unwrap();
            let after = store.stats();
            assert!(
                after.file_written_bytes >= before.file_written_bytes + value.len() as u64,
                "{after:?}"
            );
            assert!(after.file_syncs > before.file_syncs, "{after:?}");
        }
        // Reopened, redb's page cache is cold: opening and the get read the value's pages from
        // the file.
        let store = crate::Store::open(&options).unwrap();
        assert_eq!(store.get("ns", b"k").unwrap().as_deref(), Some(&value[..]));
        let read = store.stats().file_read_bytes;
        assert!(read >= value.len() as u64, "{read}");
    }
}

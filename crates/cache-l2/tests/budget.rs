//! Guards the file budget: after writing ten times `max_bytes` through a store (distinct keys,
//! so everything old must be evicted), its file is at most 1.1 × `max_bytes`, at every sample
//! and after close, for 16 KiB values, 1 KiB values and mixed sizes with labels and metadata;
//! and the bookkeeping stays exact (`validate`).
//!
//! The bound comes from the store's page-footprint accounting (see `docs/operations.md`); if
//! redb changes how it grows files or lays out pages, this is what notices.

use cache_l2::{L2Options, Store, WriteMode};

const MAX_BYTES: u64 = 4 << 20;

/// An xorshift stream: incompressible bytes, and value sizes.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn fill(&mut self, buf: &mut [u8]) {
        for chunk in buf.chunks_mut(8) {
            let x = self.next().to_le_bytes();
            chunk.copy_from_slice(&x[..chunk.len()]);
        }
    }
}

/// Writes `10 × MAX_BYTES` of values with sizes from `size`, checking the file after every
/// `MAX_BYTES` written; returns the final stats.
fn churn(mode: WriteMode, mut size: impl FnMut(&mut Rng) -> usize, labels: bool) {
    let dir = tempfile::tempdir().unwrap();
    let mut o = L2Options::new(dir.path().join("l2.redb"));
    o.max_bytes = bytesize::ByteSize(MAX_BYTES);
    o.write_mode = mode;
    o.compression.enabled = false;
    let store = Store::open(&o).unwrap();
    let limit = MAX_BYTES + MAX_BYTES / 10;
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let mut buf = vec![0u8; 64 << 10];
    let (mut written, mut next_sample, mut i) = (0u64, MAX_BYTES, 0u64);
    while written < 10 * MAX_BYTES {
        let n = size(&mut rng);
        rng.fill(&mut buf[..n]);
        let key = i.to_be_bytes();
        if labels {
            let tag = format!("t{}", i % 7);
            store
                .put_with("ns", &key, &buf[..n], b"some metadata", &[tag.as_bytes()])
                .unwrap();
        } else {
            store.put("ns", &key, &buf[..n]).unwrap();
        }
        written += n as u64;
        i += 1;
        if written >= next_sample {
            next_sample += MAX_BYTES;
            store.flush().unwrap();
            let s = store.stats();
            assert!(
                s.file_bytes <= limit,
                "after {written} bytes: file {} > {limit}: {s:?}",
                s.file_bytes
            );
            assert!(s.live_bytes <= MAX_BYTES, "{s:?}");
        }
    }
    store.validate().unwrap();
    let s = store.stats();
    assert!(s.evictions > 0, "{s:?}");
    // Not a bound, a floor against a budget that keeps the file small by keeping it empty.
    assert!(
        s.live_bytes >= MAX_BYTES / 4,
        "live {} of {MAX_BYTES}: {s:?}",
        s.live_bytes
    );
    println!(
        "live {} footprint {} file {} (max_bytes {MAX_BYTES}, live/file {:.2})",
        s.live_bytes,
        s.footprint_bytes,
        s.file_bytes,
        s.live_to_file()
    );
    let path = store.path().to_owned();
    drop(store);
    let closed = std::fs::metadata(&path).unwrap().len();
    assert!(closed <= limit, "file after close {closed} > {limit}");
}

#[test]
fn sixteen_kib_values_async() {
    churn(WriteMode::Async, |_| 16 << 10, false);
}

#[test]
fn sixteen_kib_values_sync() {
    churn(WriteMode::Sync, |_| 16 << 10, false);
}

#[test]
fn one_kib_values_async() {
    churn(WriteMode::Async, |_| 1 << 10, false);
}

#[test]
fn mixed_sizes_with_labels_async() {
    churn(
        WriteMode::Async,
        |r| usize::try_from(r.next() % (40 << 10)).unwrap(),
        true,
    );
}

//! Guards "never wrong bytes" under I/O errors: a redb storage backend that fails every write
//! and sync from its Nth on, for many N, under puts, overwrites, deletes and gets. A get may
//! miss or fail, but bytes it returns must be the last value a put acknowledged for that key:
//! never the value of a put that failed, never one a later acknowledged put replaced, never
//! one an acknowledged delete removed. No failure may panic.

use std::collections::HashMap;
use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use cache_l2::{L2Options, Store};
use redb::StorageBackend;
use redb::backends::InMemoryBackend;

/// Fails every write and sync from the `fail_at`-th one on (a device that went bad), counting
/// both kinds together.
#[derive(Debug)]
struct Failing {
    inner: InMemoryBackend,
    ops: Arc<AtomicU64>,
    fail_at: u64,
}

impl Failing {
    fn tick(&self) -> io::Result<()> {
        let n = self.ops.fetch_add(1, Ordering::Relaxed) + 1;
        if n >= self.fail_at {
            Err(io::Error::other(format!(
                "injected failure at operation {n}"
            )))
        } else {
            Ok(())
        }
    }
}

impl StorageBackend for Failing {
    fn len(&self) -> io::Result<u64> {
        self.inner.len()
    }
    fn read(&self, offset: u64, out: &mut [u8]) -> io::Result<()> {
        self.inner.read(offset, out)
    }
    fn set_len(&self, len: u64) -> io::Result<()> {
        self.tick()?;
        self.inner.set_len(len)
    }
    fn sync_data(&self) -> io::Result<()> {
        self.tick()?;
        self.inner.sync_data()
    }
    fn write(&self, offset: u64, data: &[u8]) -> io::Result<()> {
        self.tick()?;
        self.inner.write(offset, data)
    }
}

fn options() -> L2Options {
    let mut o = L2Options::new("in-memory.redb");
    o.max_bytes = bytesize::ByteSize::kib(256);
    o.compression.min_bytes = 64;
    o
}

fn value(key: u8, version: u32) -> Vec<u8> {
    let mut v = format!("key {key} version {version} ").into_bytes();
    v.resize(200 + usize::from(key) * 37, b'x');
    v
}

/// Runs a fixed workload against a store whose device fails at operation `fail_at`; returns
/// how many operations failed.
fn run(fail_at: u64) -> u64 {
    let ops = Arc::new(AtomicU64::new(0));
    let backend = Failing {
        inner: InMemoryBackend::new(),
        ops: Arc::clone(&ops),
        fail_at,
    };
    // Failing while creating the database is a clean error too.
    let Ok(store) = Store::open_with_backend(&options(), backend) else {
        return 1;
    };
    // The last acknowledged state of each key: Some(version) or None (deleted or never put).
    let mut acked: HashMap<u8, Option<u32>> = HashMap::new();
    let mut failures = 0;
    let mut x = 0x2545_F491_4F6C_DD1Du64 ^ fail_at;
    for version in 1..=300u32 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let key = (x % 24) as u8;
        match x % 10 {
            0 => {
                // A failed delete may or may not have removed the key; either is allowed, and
                // a miss always is.
                if store.delete("ns", &[key]).is_ok() {
                    acked.insert(key, None);
                } else {
                    failures += 1;
                }
            }
            1..=3 => match store.get("ns", &[key]) {
                Ok(Some(bytes)) => {
                    let last = acked.get(&key).copied().flatten().map(|v| value(key, v));
                    assert_eq!(
                        Some(&bytes[..]),
                        last.as_deref(),
                        "fail_at {fail_at}: key {key} returned bytes that are not its last \
                         acknowledged value"
                    );
                }
                Ok(None) => {}
                Err(_) => failures += 1,
            },
            // A failed put must never be read back; the last acknowledged value still may be.
            _ => {
                if store.put("ns", &[key], &value(key, version)).is_ok() {
                    acked.insert(key, Some(version));
                } else {
                    failures += 1;
                }
            }
        }
    }
    failures
}

#[test]
fn an_injected_io_error_never_yields_wrong_bytes() {
    // A clean run, to know how many device operations the workload makes.
    let ops_total = {
        let ops = Arc::new(AtomicU64::new(0));
        let backend = Failing {
            inner: InMemoryBackend::new(),
            ops: Arc::clone(&ops),
            fail_at: u64::MAX,
        };
        let store = Store::open_with_backend(&options(), backend).unwrap();
        for i in 0..300u32 {
            store.put("ns", &[(i % 24) as u8], &value(0, i)).unwrap();
        }
        drop(store);
        ops.load(Ordering::Relaxed)
    };
    assert!(
        ops_total > 100,
        "the workload touches the device: {ops_total}"
    );
    let mut failing_runs = 0;
    for fail_at in (1..ops_total).step_by((ops_total / 60).max(1) as usize) {
        if run(fail_at) > 0 {
            failing_runs += 1;
        }
    }
    assert!(failing_runs > 10, "the injected errors reached the store");
}

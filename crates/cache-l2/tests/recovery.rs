//! Guards recovery from faults without a restart: a device that refuses every write with
//! `ENOSPC` for a while, then takes writes again, and a panic raised inside redb while it reads
//! a page. While the fault lasts, writes fail with a typed error and gets never return wrong
//! bytes; once it clears, the writer thread reopens the store and writes resume; the inserts
//! the reopen rolled back are exactly the ones `lost_writes` counts.

use std::collections::HashMap;
use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use cache_l2::{L2Error, L2Options, Store, WriteMode};
use redb::StorageBackend;
use redb::backends::InMemoryBackend;

/// One in-memory device shared by every backend the store opens on it, with switches for the
/// faults.
#[derive(Debug, Clone, Default)]
struct Device {
    mem: Arc<InMemoryBackend>,
    /// Every write, resize and sync fails with `ENOSPC`.
    full: Arc<AtomicBool>,
    /// This many reads from now on panic, as redb does on a page it cannot parse.
    panicking_reads: Arc<AtomicU64>,
}

impl Device {
    fn refuse(&self) -> io::Result<()> {
        if self.full.load(Ordering::SeqCst) {
            // ENOSPC on Linux.
            Err(io::Error::from_raw_os_error(28))
        } else {
            Ok(())
        }
    }
}

impl StorageBackend for Device {
    fn len(&self) -> io::Result<u64> {
        self.mem.len()
    }
    fn read(&self, offset: u64, out: &mut [u8]) -> io::Result<()> {
        let left = self.panicking_reads.load(Ordering::SeqCst);
        if left > 0 {
            self.panicking_reads.store(left - 1, Ordering::SeqCst);
            panic!("injected: a page redb cannot parse");
        }
        self.mem.read(offset, out)
    }
    fn set_len(&self, len: u64) -> io::Result<()> {
        self.refuse()?;
        self.mem.set_len(len)
    }
    fn sync_data(&self) -> io::Result<()> {
        self.refuse()?;
        self.mem.sync_data()
    }
    fn write(&self, offset: u64, data: &[u8]) -> io::Result<()> {
        self.refuse()?;
        self.mem.write(offset, data)
    }
}

fn options(mode: WriteMode) -> L2Options {
    let mut o = L2Options::new("device.redb");
    o.max_bytes = bytesize::ByteSize::mib(64);
    o.write_mode = mode;
    o
}

fn open(device: &Device, mode: WriteMode) -> Store {
    let d = device.clone();
    Store::open_with_backends(&options(mode), move || Ok(d.clone())).unwrap()
}

fn value(key: u32, version: u32) -> Vec<u8> {
    let mut v = format!("key {key} version {version} ").into_bytes();
    v.resize(300 + (key as usize % 7) * 500, b'.');
    v
}

/// Puts until `deadline`, returning whether one succeeded.
fn until_a_put_succeeds(store: &Store, key: &[u8], deadline: Duration) -> bool {
    let start = Instant::now();
    while start.elapsed() < deadline {
        if store.put("probe", key, b"resumed").is_ok() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    false
}

/// Every acknowledged key reads as its last value or as a miss; returns the misses.
fn check_reads(store: &Store, acked: &HashMap<u32, u32>) -> u64 {
    let mut misses = 0;
    for (&k, &version) in acked {
        match store.get("ns", &k.to_le_bytes()).unwrap() {
            Some(bytes) => assert_eq!(bytes[..], value(k, version)[..], "key {k}: wrong bytes"),
            None => misses += 1,
        }
    }
    misses
}

fn a_full_device_is_survived(mode: WriteMode) {
    let device = Device::default();
    let store = open(&device, mode);
    let mut acked = HashMap::new();
    // Durable first: these survive any reopen.
    for k in 0..200u32 {
        store.put("ns", &k.to_le_bytes(), &value(k, 1)).unwrap();
        acked.insert(k, 1);
    }
    store.flush().unwrap();
    // Then fresh inserts that ride commits which are not yet durable (sync mode), or only
    // queued (async mode): a reopen may take them back, and must count what it took.
    for k in 200..400u32 {
        store.put("ns", &k.to_le_bytes(), &value(k, 1)).unwrap();
        acked.insert(k, 1);
    }
    assert_eq!(store.stats().lost_writes, 0);

    device.full.store(true, Ordering::SeqCst);
    let mut failed = 0;
    for k in 400..600u32 {
        match store.put("ns", &k.to_le_bytes(), &value(k, 1)) {
            // Async mode may acknowledge a fresh insert before its commit fails: then it is
            // lost (counted), and reads as a miss.
            Ok(_) => {
                acked.insert(k, 1);
            }
            Err(L2Error::WriteFailed { .. } | L2Error::Degraded { .. }) => failed += 1,
            Err(e) => panic!("an untyped failure: {e:?}"),
        }
        // Overwrites wait for a durable commit in both modes: they must fail.
        let old = k - 400;
        assert!(
            store.put("ns", &old.to_le_bytes(), &value(old, 2)).is_err(),
            "an overwrite cannot be acknowledged while the device is full"
        );
    }
    assert!(failed > 0, "the full device refused puts");
    let during = store.stats();
    assert!(during.degraded, "{during:?}");
    assert!(during.io_errors >= 1, "{during:?}");
    check_reads(&store, &acked);

    device.full.store(false, Ordering::SeqCst);
    assert!(
        until_a_put_succeeds(&store, b"after", Duration::from_secs(20)),
        "writes resume without a restart: {:?}",
        store.stats()
    );
    let after = store.stats();
    assert!(!after.degraded, "{after:?}");
    assert!(after.reopens >= 1, "{after:?}");
    store.flush().unwrap();
    // Every key reads as its last acknowledged value or a miss, and the misses are exactly
    // the acknowledged writes the store says it lost.
    let misses = check_reads(&store, &acked);
    assert_eq!(
        misses, after.lost_writes,
        "lost_writes counts the acknowledged inserts that read as misses: {after:?}"
    );
    if mode == WriteMode::Sync {
        assert!(misses > 0, "the reopen rolled back undurable inserts");
    }
    // The durable ones all survived.
    for k in 0..200u32 {
        assert!(store.get("ns", &k.to_le_bytes()).unwrap().is_some(), "{k}");
    }
    store.validate().unwrap();
}

#[test]
fn writes_resume_after_a_full_device_frees_space_in_sync_mode() {
    a_full_device_is_survived(WriteMode::Sync);
}

#[test]
fn writes_resume_after_a_full_device_frees_space_in_async_mode() {
    a_full_device_is_survived(WriteMode::Async);
}

/// A store on `device` with no page cache, so every get reads the device; 100 records, durable.
fn filled(device: &Device) -> Store {
    let mut o = options(WriteMode::Sync);
    o.page_cache_bytes = bytesize::ByteSize::b(0);
    let d = device.clone();
    let store = Store::open_with_backends(&o, move || Ok(d.clone())).unwrap();
    for k in 0..100u32 {
        store.put("ns", &k.to_le_bytes(), &value(k, 1)).unwrap();
    }
    store.flush().unwrap();
    store
}

#[test]
fn a_transient_panic_inside_redb_is_contained_and_the_store_recovers() {
    let device = Device::default();
    let store = filled(&device);
    device.panicking_reads.store(1, Ordering::SeqCst);
    // Without containment this get would unwind into the test and fail it.
    let got = store.get("ns", &7u32.to_le_bytes()).unwrap();
    assert!(got.is_none(), "the read that panicked is a miss");
    assert_eq!(store.stats().panics_contained, 1);
    assert!(
        until_a_put_succeeds(&store, b"after", Duration::from_secs(20)),
        "{:?} {:?}",
        store.degraded_reason(),
        store.stats()
    );
    let after = store.stats();
    assert!(
        after.reopens >= 1 && after.corruption_faults >= 1,
        "{after:?}"
    );
    assert!(!after.degraded, "{after:?}");
    // redb's integrity check passed (the pages were fine): every record is back.
    for k in 0..100u32 {
        assert_eq!(
            store.get("ns", &k.to_le_bytes()).unwrap().as_deref(),
            Some(&value(k, 1)[..])
        );
    }
    store.validate().unwrap();
}

#[test]
fn a_file_that_keeps_panicking_is_refused_and_the_store_stays_degraded() {
    let device = Device::default();
    let store = filled(&device);
    device.panicking_reads.store(u64::MAX, Ordering::SeqCst);
    for k in 0..100u32 {
        assert_eq!(store.get("ns", &k.to_le_bytes()).unwrap(), None);
    }
    // The reopen finds the same panic, so `on_corrupt = "refuse"` leaves the store degraded
    // with no database open: gets are misses without reading.
    let refused = || {
        store
            .degraded_reason()
            .is_some_and(|r| r.contains("refusing"))
    };
    let start = Instant::now();
    while !refused() && start.elapsed() < Duration::from_secs(20) {
        assert_eq!(store.get("ns", &1u32.to_le_bytes()).unwrap(), None);
        std::thread::sleep(Duration::from_millis(5));
    }
    assert!(refused(), "{:?}", store.degraded_reason());
    assert_eq!(store.get("ns", &1u32.to_le_bytes()).unwrap(), None);
    let stats = store.stats();
    assert!(stats.unavailable_reads >= 1, "{stats:?}");
    assert!(stats.degraded && stats.reopens == 0, "{stats:?}");
    assert!(matches!(
        store.put("ns", b"x", b"y"),
        Err(L2Error::Degraded { .. })
    ));
    // Closing a degraded store does not panic either.
    drop(store);
    // Opened again by the application: refused while the pages still panic, fine once not.
    let d = device.clone();
    let refused = Store::open_with_backends(&options(WriteMode::Sync), move || Ok(d.clone()));
    assert!(
        matches!(refused, Err(L2Error::Corrupt { .. })),
        "{refused:?}"
    );
    device.panicking_reads.store(0, Ordering::SeqCst);
    let d = device.clone();
    let store =
        Store::open_with_backends(&options(WriteMode::Sync), move || Ok(d.clone())).unwrap();
    for k in 0..100u32 {
        assert_eq!(
            store.get("ns", &k.to_le_bytes()).unwrap().as_deref(),
            Some(&value(k, 1)[..])
        );
    }
}

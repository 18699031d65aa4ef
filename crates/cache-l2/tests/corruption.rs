//! Guards the integrity promises: a record whose bytes changed on disk is a miss (counted and
//! deleted), never data; a file that is not a cache-l2 store is refused and left untouched; a
//! store cannot be opened twice.

use cache_l2::{L2Error, L2Options, Store};
use redb::ReadableTable as _;

fn options(dir: &tempfile::TempDir) -> L2Options {
    let mut o = L2Options::new(dir.path().join("l2.redb"));
    o.compression.enabled = false;
    o
}

/// A 20,000-byte pattern that occurs nowhere else in the file.
fn pattern() -> Vec<u8> {
    let mut x = 0x2545_F491_4F6C_DD1Du64;
    (0..20_000)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x.to_le_bytes()[3]
        })
        .collect()
}

/// The value is 20,000 bytes: a 16,364-byte chunk and a 3,636-byte last chunk in the blobs
/// table.
#[test]
fn a_flipped_chunk_byte_on_disk_is_a_counted_miss() {
    let dir = tempfile::tempdir().unwrap();
    let value = pattern();
    {
        let store = Store::open(&options(&dir)).unwrap();
        store.put("ns", b"victim", &value).unwrap();
        store.put("ns", b"bystander", b"still fine").unwrap();
    }
    let path = dir.path().join("l2.redb");
    let mut file = std::fs::read(&path).unwrap();
    let mut flipped = 0;
    let mut at = 0;
    let head = &value[..2048];
    while let Some(pos) = file[at..].windows(head.len()).position(|w| w == head) {
        let hit = at + pos;
        file[hit + 1000] ^= 0x01;
        flipped += 1;
        at = hit + head.len();
    }
    assert!(
        flipped >= 1,
        "the chunk is stored verbatim somewhere in the file"
    );
    std::fs::write(&path, &file).unwrap();

    let store = Store::open(&options(&dir)).unwrap();
    assert_eq!(
        store.get("ns", b"victim").unwrap(),
        None,
        "never the flipped bytes"
    );
    let stats = store.stats();
    assert_eq!((stats.corrupt_records, stats.misses), (1, 1));
    // The corrupt record was deleted: the next get is a plain miss.
    assert_eq!(store.get("ns", b"victim").unwrap(), None);
    assert_eq!(store.stats().corrupt_records, 1);
    assert_eq!(
        store.get("ns", b"bystander").unwrap().as_deref(),
        Some(&b"still fine"[..])
    );
    store.validate().unwrap();
}

#[test]
fn a_foreign_redb_file_is_refused_and_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("l2.redb");
    {
        let db = redb::Database::create(&path).unwrap();
        let txn = db.begin_write().unwrap();
        let def: redb::TableDefinition<&str, u64> = redb::TableDefinition::new("accounts");
        txn.open_table(def).unwrap().insert("alice", 100).unwrap();
        txn.commit().unwrap();
    }
    let before = std::fs::read(&path).unwrap();
    let err = Store::open(&options(&dir)).unwrap_err();
    assert!(matches!(err, L2Error::Foreign { .. }), "{err}");
    assert!(
        std::fs::read(&path).unwrap() == before,
        "the file was modified"
    );
}

#[test]
fn a_file_that_is_not_a_database_is_refused_and_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("l2.redb");
    let junk = b"this is somebody's notes file, not a database\n".repeat(200);
    std::fs::write(&path, &junk).unwrap();
    let err = Store::open(&options(&dir)).unwrap_err();
    assert!(matches!(err, L2Error::Corrupt { .. }), "{err}");
    assert!(
        std::fs::read(&path).unwrap() == junk,
        "the file was modified"
    );
}

#[test]
fn a_truncated_store_is_refused_and_untouched() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = Store::open(&options(&dir)).unwrap();
        for i in 0..200u32 {
            store.put("ns", &i.to_le_bytes(), &pattern()).unwrap();
        }
    }
    let path = dir.path().join("l2.redb");
    let full = std::fs::read(&path).unwrap();
    let half = &full[..full.len() / 2];
    std::fs::write(&path, half).unwrap();
    let err = Store::open(&options(&dir)).unwrap_err();
    assert!(matches!(err, L2Error::Corrupt { .. }), "{err}");
    assert!(
        std::fs::read(&path).unwrap() == half,
        "the file was modified"
    );
}

#[test]
fn a_second_open_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let _first = Store::open(&options(&dir)).unwrap();
    let err = Store::open(&options(&dir)).unwrap_err();
    assert!(matches!(err, L2Error::AlreadyOpen { .. }), "{err}");
}

#[cfg(unix)]
#[test]
fn a_new_store_file_is_private_to_its_owner() {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&options(&dir)).unwrap();
    store.put("ns", b"k", b"v").unwrap();
    let mode = std::fs::metadata(store.path())
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "mode {mode:o}");
}

#[cfg(unix)]
#[test]
fn a_symlinked_store_path_is_refused_and_its_target_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("precious.txt");
    std::fs::write(&target, b"not a cache").unwrap();
    std::os::unix::fs::symlink(&target, dir.path().join("l2.redb")).unwrap();
    let err = Store::open(&options(&dir)).unwrap_err();
    assert!(matches!(err, L2Error::Symlink { .. }), "{err}");
    assert_eq!(std::fs::read(&target).unwrap(), b"not a cache");
    // A dangling link is refused too, and nothing is created at its target.
    let dangling = dir.path().join("gone.redb");
    std::fs::remove_file(dir.path().join("l2.redb")).unwrap();
    std::os::unix::fs::symlink(&dangling, dir.path().join("l2.redb")).unwrap();
    let err = Store::open(&options(&dir)).unwrap_err();
    assert!(matches!(err, L2Error::Symlink { .. }), "{err}");
    assert!(!dangling.exists());
}

/// A flipped byte in any part of a record's entry: each header field, a checksum, the labels,
/// the metadata, the inline payload. Each is a counted miss, and the bookkeeping survives the
/// record's deletion.
#[test]
fn a_flipped_byte_in_each_part_of_an_entry_is_a_counted_miss() {
    // Entry layout (docs/l2-format.md): header 0..120, labels 120..131 (two labels: "t:a",
    // "d:bcd"), metadata 131..135 ("meta"), inline payload 135..145 (10 bytes).
    let parts: [(&str, usize); 16] = [
        ("version", 0),
        ("flags", 1),
        ("header length", 2),
        ("chunk length", 4),
        ("sequence number", 8),
        ("original length", 16),
        ("stored length", 24),
        ("generation", 32),
        ("labels length", 40),
        ("metadata length", 44),
        ("inline length", 48),
        ("payload checksum", 60),
        ("entry checksum", 100),
        ("labels", 125),
        ("metadata", 132),
        ("inline payload", 140),
    ];
    for (part, at) in parts {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = Store::open(&options(&dir)).unwrap();
            store
                .put_with("ns", b"victim", b"0123456789", b"meta", &[b"t:a", b"d:bcd"])
                .unwrap();
            store.put("ns", b"bystander", b"still fine").unwrap();
        }
        patch_record(&dir, b"victim", at, |b| b ^ 0x10);
        let store = Store::open(&options(&dir)).unwrap();
        assert_eq!(store.get("ns", b"victim").unwrap(), None, "{part}");
        assert_eq!(store.stats().corrupt_records, 1, "{part}");
        assert_eq!(
            store.get("ns", b"bystander").unwrap().as_deref(),
            Some(&b"still fine"[..]),
            "{part}"
        );
        store.validate().unwrap();
        // The record is gone, labels and all: invalidating its labels finds nothing.
        assert_eq!(
            store.invalidate_labels("ns", &[b"t:a"]).unwrap(),
            0,
            "{part}"
        );
    }
}

/// Rewrites byte `at` of the raw record of `("ns", key)` with `f`, behind the store's back.
fn patch_record(dir: &tempfile::TempDir, key: &[u8], at: usize, f: impl Fn(u8) -> u8) {
    const RECORDS: redb::TableDefinition<(&str, &[u8]), &[u8]> =
        redb::TableDefinition::new("records_v1");
    let db = redb::Database::create(dir.path().join("l2.redb")).unwrap();
    let txn = db.begin_write().unwrap();
    {
        let mut t = txn.open_table(RECORDS).unwrap();
        let mut rec = t.get(("ns", key)).unwrap().unwrap().value().to_vec();
        rec[at] = f(rec[at]);
        t.insert(("ns", key), rec.as_slice()).unwrap();
    }
    txn.commit().unwrap();
}

#[test]
fn a_rotted_sequence_number_does_not_break_another_keys_bookkeeping() {
    let dir = tempfile::tempdir().unwrap();
    let mut opts = options(&dir);
    opts.max_bytes = bytesize::ByteSize::kib(64);
    {
        let store = Store::open(&opts).unwrap();
        store.put("ns", b"A", &[1u8; 10_000]).unwrap(); // sequence 0
        store.put("ns", b"B", &[2u8; 10_000]).unwrap(); // sequence 1
        store.put("ns", b"C", &[3u8; 10_000]).unwrap(); // sequence 2
    }
    // A's header now claims B's sequence number; C's claims one nobody has. Headers are read
    // before checksums when records are replaced or evicted, so those numbers must not be
    // trusted to name other keys' order entries.
    patch_record(&dir, b"A", 8, |b| b ^ 1);
    patch_record(&dir, b"C", 8, |b| b ^ 0x40);
    let store = Store::open(&opts).unwrap();
    store.put("ns", b"A", &[4u8; 10_000]).unwrap(); // an overwrite of the rotted record
    store.validate().unwrap(); // B kept its order entry

    // A value that needs almost the whole budget evicts everything else, orphan C included,
    // and the live-byte count stays exact.
    store.put("ns", b"big", &vec![5u8; 50_000]).unwrap();
    store.validate().unwrap();
    let stats = store.stats();
    assert!(
        stats.live_bytes <= 64 << 10,
        "live bytes {}",
        stats.live_bytes
    );
    for key in [&b"A"[..], b"B", b"C"] {
        assert_eq!(
            store.get("ns", key).unwrap(),
            None,
            "{key:?} should have been evicted"
        );
    }
    assert_eq!(
        store.get("ns", b"big").unwrap().map(|v| v.len()),
        Some(50_000)
    );
}

/// redb keeps each table's row count beside its root, and a cleanly closed file is opened
/// without verifying it. The store once sized its synopsis from the order table's count: a
/// forged 2^36 made `open` allocate 164 GB and abort. It now counts the rows it reads.
#[test]
fn a_forged_table_length_does_not_size_an_allocation() {
    let dir = tempfile::tempdir().unwrap();
    // Records and order rows alike: a count no other number in the file is likely to equal.
    let rows = 3001u64;
    {
        let store = Store::open(&options(&dir)).unwrap();
        for i in 0..rows {
            store.put("ns", &i.to_le_bytes(), b"v").unwrap();
        }
    }
    let path = dir.path().join("l2.redb");
    let mut file = std::fs::read(&path).unwrap();
    // The counts sit in the table tree's leaf (its values follow its keys, the table names):
    // forge every copy of the row count in each page that names the order table.
    let mut forged = 0;
    let pages: Vec<usize> = file
        .windows(8)
        .enumerate()
        .filter(|(_, w)| *w == b"order_v1")
        .map(|(i, _)| i / 4096 * 4096)
        .collect();
    for page in pages {
        let end = (page + 4096).min(file.len());
        for i in page..end - 8 {
            if file[i..i + 8] == rows.to_le_bytes() {
                file[i..i + 8].copy_from_slice(&(1u64 << 36).to_le_bytes());
                forged += 1;
            }
        }
    }
    assert!(forged >= 1, "found the tables' row counts");
    std::fs::write(&path, &file).unwrap();
    {
        // What redb now reports, and what the store used to trust.
        use redb::{ReadableDatabase as _, ReadableTableMetadata as _};
        let order: redb::TableDefinition<u64, (&str, &[u8])> =
            redb::TableDefinition::new("order_v1");
        let db = redb::Builder::new().open_read_only(&path).unwrap();
        let len = db
            .begin_read()
            .unwrap()
            .open_table(order)
            .unwrap()
            .len()
            .unwrap();
        assert_eq!(len, 1 << 36);
    }
    let store = Store::open(&options(&dir)).unwrap();
    let stats = store.stats();
    assert!(
        stats.synopsis_bytes < 1 << 20,
        "the synopsis is sized by the rows read: {stats:?}"
    );
    for i in 0..rows {
        assert_eq!(
            store.get("ns", &i.to_le_bytes()).unwrap().as_deref(),
            Some(&b"v"[..])
        );
    }
}

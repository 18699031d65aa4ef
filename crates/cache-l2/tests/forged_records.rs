//! Guards the read-side size limit: a record forged into the file (its checksums are public
//! key-derivation hashes, so anyone who can write the file can make them match) that declares a
//! 1 GiB value and carries a 30 KB zstd "bomb" is a counted miss, refused before anything is
//! decompressed, and removed; the get's peak allocation stays far below the declared size.
//! Before the limit, each get of it allocated 1 GiB and spent seconds decompressing.

use std::io::Read as _;

use cache_l2::record::{self, FLAG_ZSTD, RecordParts};
use cache_l2::{L2Options, Store};
use redb::TableDefinition;

const RECORDS: TableDefinition<(&str, &[u8]), &[u8]> = TableDefinition::new("records_v1");
const BLOBS: TableDefinition<(u64, u32), &[u8]> = TableDefinition::new("blobs_v1");
const ORDER: TableDefinition<u64, (&str, &[u8])> = TableDefinition::new("order_v1");

const GIB: u64 = 1 << 30;

/// A zstd frame of 1 GiB of zeros, compressed as a stream (never 1 GiB in memory).
fn bomb() -> Vec<u8> {
    let mut enc = zstd::stream::Encoder::new(Vec::new(), 1).unwrap();
    enc.set_pledged_src_size(Some(GIB)).unwrap();
    std::io::copy(&mut std::io::repeat(0).take(GIB), &mut enc).unwrap();
    enc.finish().unwrap()
}

#[test]
fn a_forged_decompression_bomb_is_a_counted_miss_with_bounded_memory() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("l2.redb");
    let mut options = L2Options::new(&path);
    // What a TieredCache with `limits.max_blob_bytes = 1 MiB` gives its L2.
    options.max_value_bytes = bytesize::ByteSize::mib(1);
    {
        let store = Store::open(&options).unwrap();
        store.put("ns", b"honest", b"value").unwrap();
    }
    let payload = bomb();
    assert!(payload.len() < 100 << 10, "{}", payload.len());
    let seq = 1 << 40;
    let encoded = record::encode(
        "ns",
        b"bomb",
        &RecordParts {
            seq,
            generation: 0,
            flags: FLAG_ZSTD,
            original_len: GIB,
            labels: &[],
            meta: &[],
            payload: &payload,
        },
    );
    {
        let db = redb::Database::open(&path).unwrap();
        let txn = db.begin_write().unwrap();
        txn.open_table(RECORDS)
            .unwrap()
            .insert(("ns", &b"bomb"[..]), encoded.entry.as_slice())
            .unwrap();
        let mut blobs = txn.open_table(BLOBS).unwrap();
        for (i, chunk) in (0u32..).zip(encoded.chunks()) {
            blobs.insert((seq, i), chunk).unwrap();
        }
        drop(blobs);
        txn.open_table(ORDER)
            .unwrap()
            .insert(seq, ("ns", &b"bomb"[..]))
            .unwrap();
        txn.commit().unwrap();
    }
    let store = Store::open(&options).unwrap();
    // Allocations of this thread, which reads and would decompress.
    let mut got = Some(vec![0u8]);
    let counted = allocation_counter::measure(|| {
        got = store.get("ns", b"bomb").unwrap().map(|b| b.to_vec());
    });
    assert_eq!(got, None);
    assert!(
        counted.bytes_max < 8 << 20,
        "a get of the forged record allocated {} bytes at its peak",
        counted.bytes_max
    );
    let stats = store.stats();
    assert_eq!((stats.corrupt_records, stats.oversized_records), (1, 1));
    // It was removed: the next get is a plain miss, and honest records are untouched.
    store.flush().unwrap();
    assert_eq!(store.get("ns", b"bomb").unwrap(), None);
    assert_eq!(store.stats().corrupt_records, 1);
    assert_eq!(
        store.get("ns", b"honest").unwrap().as_deref(),
        Some(&b"value"[..])
    );
}

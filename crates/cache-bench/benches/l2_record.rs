//! criterion benches of the durable tier's record format (`cache_l2::record`) and of zstd as
//! the store uses it, with no file involved: what a put and a get spend on the CPU besides
//! redb.
//!
//! - `l2_record/value=…`: `peek_header` (header parse, no checksum), `verify_entry` (header,
//!   section lengths and the blake3 entry checksum, which covers the header, labels and
//!   metadata but no payload byte), `encode` (the entry and its chunks, with both blake3
//!   checksums) and `decode` (`verify_entry`, then `assemble`: chunks reassembled and the
//!   payload's blake3 checksum checked). Values of at least the default compression threshold
//!   also get `decode,zstd=3`: a compressible value stored zstd-compressed, so `assemble`
//!   decompresses it too (the store's own decompression path, reached through the public API).
//!   Records are those `Store::put` writes: no labels, no metadata. `encode` and the decodes
//!   count the value's bytes as throughput; the other two do not read them.
//! - `l2_zstd/value=…,level=3`: zstd compression and decompression at the level of the default
//!   `CompressionOptions`, with one reused context each, as the store keeps one per thread
//!   (its compression helper is private to `cache-l2`). The setup asserts that compressible
//!   values pass the store's `max_ratio` gate and incompressible ones do not: the store keeps
//!   those raw, having paid for the attempt (`compress/incompressible`).
//!
//! ```sh
//! cargo bench -p cache-bench --bench l2_record                    # everything (a few minutes)
//! cargo bench -p cache-bench --bench l2_record -- --quick l2_zstd  # one group, under a minute
//! ```

use std::hint::black_box;

use cache_bench::load_l2::{ValueGen, key};
use cache_l2::CompressionOptions;
use cache_l2::record::{self, Encoded, FLAG_ZSTD, RecordParts};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};

const NAMESPACE: &str = "bench";
/// Seed of the values.
const SEED: u64 = 42;
/// Value sizes, as `l2_get`'s: inline in the entry; one short chunk; four chunks and an
/// inline tail.
const RECORD_VALUE_SIZES: [u32; 3] = [256, 4 << 10, 64 << 10];
/// Value sizes of `l2_zstd`.
const ZSTD_VALUE_SIZES: [u32; 2] = [4 << 10, 64 << 10];

/// The record `Store::put` writes for `payload` (compressed if `flags` says so) of a value of
/// `original_len` bytes.
fn encode(key: &[u8], flags: u8, original_len: usize, payload: &[u8]) -> Encoded {
    record::encode(
        NAMESPACE,
        key,
        &RecordParts {
            seq: 1,
            generation: 0,
            flags,
            original_len: original_len as u64,
            labels: &[],
            meta: &[],
            payload,
        },
    )
}

/// Verifies and decodes `encoded`, as a get does after reading it.
fn decode(key: &[u8], encoded: &Encoded) -> bytes::Bytes {
    let view = record::verify_entry(NAMESPACE, key, &encoded.entry).expect("valid entry");
    record::assemble(&view, encoded.chunks()).expect("valid payload")
}

/// The value of index 0 of `ValueGen::new(size, compressible, SEED)`.
fn value(size: u32, compressible: bool) -> Vec<u8> {
    let values = ValueGen::new(size, compressible, SEED).expect("valid value size");
    let mut buf = Vec::new();
    values.write(0, &mut buf);
    buf
}

fn records(c: &mut Criterion) {
    let options = CompressionOptions::default();
    let key = key(0);
    for size in RECORD_VALUE_SIZES {
        let raw = value(size, false);
        let encoded = encode(&key, 0, raw.len(), &raw);
        assert_eq!(decode(&key, &encoded), raw);

        let mut group = c.benchmark_group(format!("l2_record/value={size}B"));
        group.bench_function(BenchmarkId::from_parameter("peek_header"), |b| {
            b.iter(|| record::peek_header(black_box(&encoded.entry)).expect("valid header"));
        });
        group.bench_function(BenchmarkId::from_parameter("verify_entry"), |b| {
            b.iter(|| {
                record::verify_entry(NAMESPACE, &key, black_box(&encoded.entry))
                    .expect("valid entry")
                    .header
            });
        });
        group.throughput(Throughput::Bytes(u64::from(size)));
        group.bench_function(BenchmarkId::from_parameter("encode"), |b| {
            b.iter(|| encode(&key, 0, raw.len(), black_box(&raw)));
        });
        group.bench_function(BenchmarkId::from_parameter("decode"), |b| {
            b.iter(|| decode(&key, black_box(&encoded)));
        });
        if u64::from(size) >= options.min_bytes {
            let text = value(size, true);
            let packed = zstd::bulk::compress(&text, options.level).expect("compress");
            let zipped = encode(&key, FLAG_ZSTD, text.len(), &packed);
            assert_eq!(decode(&key, &zipped), text);
            group.bench_function(
                BenchmarkId::from_parameter(format!("decode,zstd={}", options.level)),
                |b| b.iter(|| decode(&key, black_box(&zipped))),
            );
        }
        group.finish();
    }
}

fn zstd_codec(c: &mut Criterion) {
    let options = CompressionOptions::default();
    let mut compressor = zstd::bulk::Compressor::new(options.level).expect("zstd context");
    let mut decompressor = zstd::bulk::Decompressor::new().expect("zstd context");
    for size in ZSTD_VALUE_SIZES {
        let mut group = c.benchmark_group(format!("l2_zstd/value={size}B,level={}", options.level));
        group.throughput(Throughput::Bytes(u64::from(size)));
        for compressible in [true, false] {
            let name = if compressible {
                "compressible"
            } else {
                "incompressible"
            };
            let input = value(size, compressible);
            let packed = compressor.compress(&input).expect("compress");
            #[expect(
                clippy::cast_precision_loss,
                reason = "a ratio, as the store's gate computes it"
            )]
            let ratio = packed.len() as f64 / input.len() as f64;
            assert_eq!(
                ratio <= options.max_ratio,
                compressible,
                "{name}: compressed to {ratio:.3} of its size"
            );
            group.bench_function(BenchmarkId::new("compress", name), |b| {
                b.iter(|| compressor.compress(black_box(&input)).expect("compress"));
            });
            if compressible {
                group.bench_function(BenchmarkId::new("decompress", name), |b| {
                    b.iter(|| {
                        decompressor
                            .decompress(black_box(&packed), input.len())
                            .expect("decompress")
                    });
                });
            }
        }
        group.finish();
    }
}

criterion_group!(benches, records, zstd_codec);
criterion_main!(benches);

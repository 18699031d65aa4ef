//! The record format: a fixed little-endian header, then the payload.
//!
//! ```text
//! offset size  field
//!      0    1  format version (1)
//!      1    1  flags: bit 0 = payload is zstd-compressed; other bits must be 0
//!      2    2  header length in bytes (64 for version 1), u16 LE
//!      4    4  reserved, 0
//!      8    8  insertion sequence number, u64 LE
//!     16    8  original (uncompressed) length in bytes, u64 LE
//!     24    8  stored (payload) length in bytes, u64 LE
//!     32   32  blake3 checksum (see below)
//!     64    …  payload: `stored length` bytes
//! ```
//!
//! The checksum is blake3 in key-derivation mode (context [`CHECKSUM_CONTEXT`]) over
//! `len(namespace) as u32 LE ‖ namespace ‖ len(key) as u32 LE ‖ key ‖ header[0..32] ‖ payload`.
//! It binds the record to its key (a record copied under another key fails), covers every header
//! field, and is checked before the payload is decompressed, so a corrupt or forged payload never
//! reaches zstd and never allocates more than the recorded original length.
//!
//! `docs/l2-format.md` holds the same diagram and the rules for growing the format.

use bytes::Bytes;

/// The record format version this build writes.
pub const FORMAT_V1: u8 = 1;
/// Header length of a version-1 record, in bytes.
pub const HEADER_V1_LEN: usize = 64;
/// Flag bit: the payload is zstd-compressed.
pub const FLAG_ZSTD: u8 = 1;
/// The flags this build understands.
const KNOWN_FLAGS: u8 = FLAG_ZSTD;
/// blake3 key-derivation context for record checksums.
pub const CHECKSUM_CONTEXT: &str = "cache-l2 record checksum v1";

/// The largest value a record may hold, in bytes (original length). Checked on write and on read,
/// so a header cannot ask decompression for more.
pub const MAX_VALUE_LEN: u64 = 1 << 30;

/// A decoded, verified header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// Format version.
    pub version: u8,
    /// Flag bits ([`FLAG_ZSTD`]).
    pub flags: u8,
    /// Insertion sequence number.
    pub seq: u64,
    /// Uncompressed value length, in bytes.
    pub original_len: u64,
    /// Payload length as stored, in bytes.
    pub stored_len: u64,
}

/// Why a stored record is not returned as data. Every variant means "treat it as a miss".
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RecordError {
    /// Shorter than its header, or than header + stored length.
    #[error("record is truncated")]
    Truncated,
    /// Longer than header + stored length.
    #[error("record has trailing bytes")]
    TrailingBytes,
    /// A format version this build cannot read.
    #[error("unknown record format version {0}")]
    UnknownVersion(u8),
    /// Flag bits this build does not know.
    #[error("unknown record flags {0:#04x}")]
    UnknownFlags(u8),
    /// The header length does not match the version.
    #[error("bad header length {0}")]
    BadHeaderLength(u16),
    /// The recorded lengths are impossible (uncompressed but lengths differ, or over the limit).
    #[error("inconsistent lengths: original {original}, stored {stored}")]
    BadLengths {
        /// Recorded original length.
        original: u64,
        /// Recorded stored length.
        stored: u64,
    },
    /// The checksum does not match: some byte of the key, header or payload changed.
    #[error("checksum mismatch")]
    ChecksumMismatch,
    /// The payload passed the checksum but does not decompress to the recorded length.
    #[error("payload does not decompress to its recorded length")]
    Decompress,
}

/// The bytes a record accounts for in the store's budget: namespace, key and record.
pub fn accounted_size(namespace: &str, key: &[u8], record_len: usize) -> u64 {
    (namespace.len() + key.len() + record_len) as u64
}

fn checksum(namespace: &str, key: &[u8], header_fields: &[u8], payload: &[u8]) -> [u8; 32] {
    let mut h = blake3::Hasher::new_derive_key(CHECKSUM_CONTEXT);
    // Lengths are bounded by the store (namespace and key limits), so they fit in u32.
    #[expect(
        clippy::cast_possible_truncation,
        reason = "store limits keys far below 4 GiB"
    )]
    {
        h.update(&(namespace.len() as u32).to_le_bytes());
        h.update(namespace.as_bytes());
        h.update(&(key.len() as u32).to_le_bytes());
    }
    h.update(key);
    h.update(header_fields);
    h.update(payload);
    *h.finalize().as_bytes()
}

/// Encodes a version-1 record for `(namespace, key)`. `payload` is the stored form (compressed
/// if `flags` has [`FLAG_ZSTD`]); `original_len` is the value's length before compression.
pub fn encode(
    namespace: &str,
    key: &[u8],
    seq: u64,
    flags: u8,
    original_len: u64,
    payload: &[u8],
) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER_V1_LEN + payload.len());
    out.push(FORMAT_V1);
    out.push(flags);
    #[expect(clippy::cast_possible_truncation, reason = "HEADER_V1_LEN is 64")]
    out.extend_from_slice(&(HEADER_V1_LEN as u16).to_le_bytes());
    out.extend_from_slice(&0u32.to_le_bytes());
    out.extend_from_slice(&seq.to_le_bytes());
    out.extend_from_slice(&original_len.to_le_bytes());
    out.extend_from_slice(&(payload.len() as u64).to_le_bytes());
    let sum = checksum(namespace, key, &out, payload);
    out.extend_from_slice(&sum);
    out.extend_from_slice(payload);
    out
}

fn u64_at(bytes: &[u8], at: usize) -> u64 {
    let mut b = [0u8; 8];
    b.copy_from_slice(&bytes[at..at + 8]);
    u64::from_le_bytes(b)
}

/// Parses the header of `record` without checking the checksum. Enough to find the sequence
/// number of a record that is about to be replaced or evicted.
///
/// # Errors
///
/// [`RecordError`] if the header is truncated or of an unknown version or layout.
pub fn peek_header(record: &[u8]) -> Result<Header, RecordError> {
    if record.len() < HEADER_V1_LEN {
        return Err(RecordError::Truncated);
    }
    let version = record[0];
    if version != FORMAT_V1 {
        return Err(RecordError::UnknownVersion(version));
    }
    let header_len = u16::from_le_bytes([record[2], record[3]]);
    if usize::from(header_len) != HEADER_V1_LEN {
        return Err(RecordError::BadHeaderLength(header_len));
    }
    let flags = record[1];
    if flags & !KNOWN_FLAGS != 0 {
        return Err(RecordError::UnknownFlags(flags));
    }
    Ok(Header {
        version,
        flags,
        seq: u64_at(record, 8),
        original_len: u64_at(record, 16),
        stored_len: u64_at(record, 24),
    })
}

/// Verifies `record` as stored under `(namespace, key)` and returns its header and payload
/// (still compressed if the header says so).
///
/// # Errors
///
/// [`RecordError`] if any check fails; the record must then be treated as a miss.
pub fn verify<'r>(
    namespace: &str,
    key: &[u8],
    record: &'r [u8],
) -> Result<(Header, &'r [u8]), RecordError> {
    let header = peek_header(record)?;
    let payload = &record[HEADER_V1_LEN..];
    let stored = payload.len() as u64;
    if stored < header.stored_len {
        return Err(RecordError::Truncated);
    }
    if stored > header.stored_len {
        return Err(RecordError::TrailingBytes);
    }
    let compressed = header.flags & FLAG_ZSTD != 0;
    if header.original_len > MAX_VALUE_LEN || (!compressed && header.original_len != stored) {
        return Err(RecordError::BadLengths {
            original: header.original_len,
            stored,
        });
    }
    let expected = checksum(namespace, key, &record[..32], payload);
    if expected[..] != record[32..64] {
        return Err(RecordError::ChecksumMismatch);
    }
    Ok((header, payload))
}

/// Verifies `record` and returns its value, decompressed if needed. Allocates at most the
/// recorded original length (itself at most [`MAX_VALUE_LEN`]).
///
/// # Errors
///
/// As [`verify`], and [`RecordError::Decompress`] if a compressed payload does not expand to
/// exactly its recorded length.
pub fn decode(namespace: &str, key: &[u8], record: &[u8]) -> Result<(Header, Bytes), RecordError> {
    let (header, payload) = verify(namespace, key, record)?;
    let value = if header.flags & FLAG_ZSTD != 0 {
        let limit = usize::try_from(header.original_len).map_err(|_| RecordError::Decompress)?;
        let out = crate::compress::decompress(payload, limit).ok_or(RecordError::Decompress)?;
        Bytes::from(out)
    } else {
        Bytes::copy_from_slice(payload)
    };
    Ok((header, value))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_binds_the_key() {
        let rec = encode("ns", b"k", 7, 0, 5, b"hello");
        let (h, v) = decode("ns", b"k", &rec).expect("valid");
        assert_eq!((h.seq, h.original_len, h.stored_len), (7, 5, 5));
        assert_eq!(&v[..], b"hello");
        assert_eq!(decode("ns", b"j", &rec), Err(RecordError::ChecksumMismatch));
        assert_eq!(decode("nt", b"k", &rec), Err(RecordError::ChecksumMismatch));
    }

    #[test]
    fn every_flipped_byte_is_caught() {
        let rec = encode("ns", b"key", 3, 0, 9, b"some data");
        for i in 0..rec.len() {
            let mut bad = rec.clone();
            bad[i] ^= 0x40;
            assert!(
                decode("ns", b"key", &bad).is_err(),
                "flip at byte {i} went unnoticed"
            );
        }
        assert_eq!(
            decode("ns", b"key", &rec[..rec.len() - 1]),
            Err(RecordError::Truncated)
        );
        let mut long = rec.clone();
        long.push(0);
        assert_eq!(decode("ns", b"key", &long), Err(RecordError::TrailingBytes));
    }
}

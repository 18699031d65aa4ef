//! The record format: what a store keeps for one `(namespace, key)`.
//!
//! A record is an **entry** in the records table (a fixed little-endian header, the labels, the
//! caller's metadata and the tail of the payload) plus, for a payload longer than
//! [`INLINE_MAX`], **chunks** of exactly [`CHUNK_LEN`] bytes (the last one may be shorter) in
//! the blobs table, keyed by `(sequence number, chunk index)`. A full chunk fills a 16 KiB redb
//! leaf by itself, so a 16 KiB value costs 16 KiB of pages and a few hundred bytes of entry
//! instead of a 32 KiB run of its own, and reading an entry's metadata reads no payload.
//!
//! Version 2 (written by this build):
//!
//! ```text
//! offset size  field
//!      0    1  format version (2)
//!      1    1  flags: bit 0 = payload is zstd-compressed; other bits must be 0
//!      2    2  header length in bytes (120), u16 LE
//!      4    4  chunk length in bytes (CHUNK_LEN, or 0 if the payload has no chunks), u32 LE
//!      8    8  insertion sequence number, u64 LE (also the chunks' blob id)
//!     16    8  original (uncompressed) length in bytes, u64 LE
//!     24    8  stored (payload) length in bytes, u64 LE: chunk bytes + inline bytes
//!     32    8  namespace generation the record was written in, u64 LE
//!     40    4  labels section length in bytes, u32 LE
//!     44    4  metadata length in bytes, u32 LE
//!     48    4  inline payload length in bytes, u32 LE
//!     52    4  reserved, 0
//!     56   32  payload checksum
//!     88   32  entry checksum
//!    120    …  labels section, then metadata, then the inline payload
//! ```
//!
//! The labels section is a sequence of `u16 LE length ‖ label bytes`. The payload is the chunks
//! in index order followed by the inline bytes.
//!
//! Checksums are blake3 in key-derivation mode. The **payload checksum** (context
//! [`PAYLOAD_CONTEXT`]) is over the stored payload. The **entry checksum** (context
//! [`ENTRY_CONTEXT`]) is over `len(namespace) as u32 LE ‖ namespace ‖ len(key) as u32 LE ‖ key
//! ‖ header[0..88] ‖ labels section ‖ metadata`: it binds the entry to its key (an entry copied
//! under another key fails) and covers every header field, including the payload checksum, so
//! chunks from another record, or a changed inline byte, fail too. Metadata can be verified
//! without reading the chunks; the payload is verified before it is decompressed, so a corrupt
//! or forged payload never reaches zstd and never allocates more than the recorded original
//! length.
//!
//! Version 1 (still read, no longer written): a 64-byte header (version, flags, header length
//! 64, reserved u32, seq, original length, stored length, then a blake3 checksum with context
//! [`CHECKSUM_CONTEXT_V1`] over `len(ns) ‖ ns ‖ len(key) ‖ key ‖ header[0..32] ‖ payload`) and
//! the whole payload inline; no labels, no metadata, generation 0.
//!
//! `docs/l2-format.md` holds the same diagrams and the rules for growing the format.

use bytes::{Bytes, BytesMut};

/// The record format version this build writes.
pub const FORMAT_V2: u8 = 2;
/// The first record format version; still read.
pub const FORMAT_V1: u8 = 1;
/// Header length of a version-2 record, in bytes.
pub const HEADER_V2_LEN: usize = 120;
/// Header length of a version-1 record, in bytes.
pub const HEADER_V1_LEN: usize = 64;
/// Flag bit: the payload is zstd-compressed.
pub const FLAG_ZSTD: u8 = 1;
/// The flags this build understands.
const KNOWN_FLAGS: u8 = FLAG_ZSTD;
/// blake3 key-derivation context of a version-2 entry checksum.
pub const ENTRY_CONTEXT: &str = "cache-l2 entry checksum v2";
/// blake3 key-derivation context of a version-2 payload checksum.
pub const PAYLOAD_CONTEXT: &str = "cache-l2 payload checksum v2";
/// blake3 key-derivation context of a version-1 record checksum.
pub const CHECKSUM_CONTEXT_V1: &str = "cache-l2 record checksum v1";

/// Bytes per payload chunk: a chunk and its `(u64, u32)` key exactly fill a 16 KiB redb leaf
/// (a run of four 4 KiB pages; redb's leaf header, the key and one value offset take the other
/// 20 bytes), so a 16 KiB value is one page-run read.
pub const CHUNK_LEN: usize = 16_364;
/// A payload (or the tail of one, after whole chunks) of at most this many bytes is stored
/// inline in the entry; a longer one goes to chunks.
pub const INLINE_MAX: usize = 2048;

/// The largest value a record may hold, in bytes (original length). Checked on write and on read,
/// so a header cannot ask decompression for more.
pub const MAX_VALUE_LEN: u64 = 1 << 30;
/// The longest label, in bytes.
pub const MAX_LABEL_LEN: usize = 1024;
/// The most bytes all labels of one record may take in its labels section (each label costs
/// its length + 2).
pub const MAX_LABELS_LEN: usize = 64 << 10;
/// The longest metadata a record may carry, in bytes.
pub const MAX_META_LEN: usize = 64 << 10;

/// A decoded header (version 1 or 2; fields version 1 lacks are 0).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// Format version.
    pub version: u8,
    /// Flag bits ([`FLAG_ZSTD`]).
    pub flags: u8,
    /// Insertion sequence number; also the id of the record's chunks.
    pub seq: u64,
    /// Uncompressed value length, in bytes.
    pub original_len: u64,
    /// Payload length as stored (chunks + inline), in bytes.
    pub stored_len: u64,
    /// Namespace generation the record was written in.
    pub generation: u64,
    /// Bytes per chunk (0 when there are no chunks).
    pub chunk_len: u32,
    /// Labels section length, in bytes.
    pub labels_len: u32,
    /// Metadata length, in bytes.
    pub meta_len: u32,
    /// Inline payload length, in bytes.
    pub inline_len: u32,
}

impl Header {
    /// Payload bytes held in chunks.
    pub fn chunked_len(&self) -> u64 {
        self.stored_len - u64::from(self.inline_len)
    }

    /// How many chunks the record has.
    pub fn chunk_count(&self) -> u32 {
        if self.chunk_len == 0 {
            return 0;
        }
        let n = self.chunked_len().div_ceil(u64::from(self.chunk_len));
        u32::try_from(n).unwrap_or(u32::MAX)
    }

    /// Whether the payload is zstd-compressed.
    pub fn compressed(&self) -> bool {
        self.flags & FLAG_ZSTD != 0
    }
}

/// Why a stored record is not returned as data. Every variant means "treat it as a miss".
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RecordError {
    /// Shorter than its header, or than its sections.
    #[error("record is truncated")]
    Truncated,
    /// Longer than its sections.
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
    /// The recorded lengths are impossible (uncompressed but lengths differ, over a limit, or
    /// chunks that do not add up).
    #[error("inconsistent lengths: original {original}, stored {stored}")]
    BadLengths {
        /// Recorded original length.
        original: u64,
        /// Recorded stored length.
        stored: u64,
    },
    /// The labels section is malformed.
    #[error("malformed labels section")]
    BadLabels,
    /// A chunk is missing or has the wrong length.
    #[error("chunk {0} is missing or has the wrong length")]
    BadChunk(u32),
    /// The entry checksum does not match: some byte of the key, header, labels or metadata
    /// changed.
    #[error("entry checksum mismatch")]
    ChecksumMismatch,
    /// The payload checksum does not match: some payload byte changed.
    #[error("payload checksum mismatch")]
    PayloadMismatch,
    /// The payload passed the checksum but does not decompress to the recorded length.
    #[error("payload does not decompress to its recorded length")]
    Decompress,
    /// The header declares a value (or a stored payload) longer than the reader accepts
    /// ([`check_size`]); nothing was read or decompressed.
    #[error("record declares {declared} bytes, over the limit of {max}")]
    TooLarge {
        /// The declared length, in bytes.
        declared: u64,
        /// The limit, in bytes.
        max: u64,
    },
}

/// The bytes a record accounts for as live data: namespace, key, entry and chunk bytes.
pub fn accounted_size(namespace: &str, key: &[u8], entry_len: usize, chunked_len: u64) -> u64 {
    (namespace.len() + key.len() + entry_len) as u64 + chunked_len
}

/// What to encode: everything of a record but its key.
#[derive(Debug, Clone, Copy)]
pub struct RecordParts<'a> {
    /// Insertion sequence number (and blob id of the chunks).
    pub seq: u64,
    /// The namespace's generation at the write.
    pub generation: u64,
    /// Flag bits ([`FLAG_ZSTD`] if `payload` is compressed).
    pub flags: u8,
    /// The value's length before compression, in bytes.
    pub original_len: u64,
    /// Labels (at most [`MAX_LABEL_LEN`] bytes each, [`MAX_LABELS_LEN`] in all).
    pub labels: &'a [&'a [u8]],
    /// Caller metadata (at most [`MAX_META_LEN`] bytes).
    pub meta: &'a [u8],
    /// The stored payload (compressed if `flags` says so).
    pub payload: &'a [u8],
}

/// An encoded version-2 record: the entry, and the payload bytes that go to chunks.
#[derive(Debug, Clone)]
pub struct Encoded {
    /// The records-table value.
    pub entry: Vec<u8>,
    /// Payload bytes stored in chunks: split it with `chunks(CHUNK_LEN)`, chunk `i` under
    /// `(seq, i)`.
    pub chunked: Bytes,
}

impl Encoded {
    /// The chunks, in index order.
    pub fn chunks(&self) -> impl Iterator<Item = &[u8]> {
        self.chunked.chunks(CHUNK_LEN)
    }
}

/// How a payload of `stored_len` bytes splits: `(chunked, inline)` byte counts. Whole chunks
/// first; a tail of at most [`INLINE_MAX`] bytes stays inline, a longer one is a last, short
/// chunk.
pub fn split(stored_len: usize) -> (usize, usize) {
    if stored_len <= INLINE_MAX {
        return (0, stored_len);
    }
    let tail = stored_len % CHUNK_LEN;
    if tail <= INLINE_MAX {
        (stored_len - tail, tail)
    } else {
        (stored_len, 0)
    }
}

/// Checks `labels` (distinct, as stored) against the format's limits: each at most
/// [`MAX_LABEL_LEN`] bytes, and all of them, at their length + 2 each, at most
/// [`MAX_LABELS_LEN`]. What [`crate::Store::put_with`] accepts: a caller that stores labels
/// of its own making (say, prefixed by kind) checks those with this before writing anything.
///
/// # Errors
///
/// [`crate::KeyTooLong`] naming the `"label"` or the `"labels"` section that is over.
pub fn check_labels(labels: &[&[u8]]) -> Result<(), crate::KeyTooLong> {
    if let Some(l) = labels.iter().find(|l| l.len() > MAX_LABEL_LEN) {
        return Err(crate::KeyTooLong {
            what: "label",
            len: l.len(),
            max: MAX_LABEL_LEN,
        });
    }
    let section: usize = labels.iter().map(|l| l.len() + 2).sum();
    if section > MAX_LABELS_LEN {
        return Err(crate::KeyTooLong {
            what: "labels",
            len: section,
            max: MAX_LABELS_LEN,
        });
    }
    Ok(())
}

/// The labels section of `labels`, or `None` if a label or the section is over its limit.
pub fn labels_section(labels: &[&[u8]]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    for label in labels {
        let len = u16::try_from(label.len())
            .ok()
            .filter(|&l| usize::from(l) <= MAX_LABEL_LEN)?;
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(label);
    }
    (out.len() <= MAX_LABELS_LEN).then_some(out)
}

/// The labels of a labels section, or `None` if it is malformed.
pub fn parse_labels(section: &[u8]) -> Option<Vec<&[u8]>> {
    let mut out = Vec::new();
    let mut rest = section;
    while !rest.is_empty() {
        let (len, tail) = rest.split_first_chunk::<2>()?;
        let len = usize::from(u16::from_le_bytes(*len));
        if len > tail.len() {
            return None;
        }
        let (label, tail) = tail.split_at(len);
        out.push(label);
        rest = tail;
    }
    Some(out)
}

#[expect(
    clippy::cast_possible_truncation,
    reason = "the store limits namespaces and keys far below 4 GiB"
)]
fn key_prefix(h: &mut blake3::Hasher, namespace: &str, key: &[u8]) {
    h.update(&(namespace.len() as u32).to_le_bytes());
    h.update(namespace.as_bytes());
    h.update(&(key.len() as u32).to_le_bytes());
    h.update(key);
}

fn entry_checksum(namespace: &str, key: &[u8], fields: &[u8], sections: &[u8]) -> [u8; 32] {
    let mut h = blake3::Hasher::new_derive_key(ENTRY_CONTEXT);
    key_prefix(&mut h, namespace, key);
    h.update(fields);
    h.update(sections);
    *h.finalize().as_bytes()
}

fn payload_checksum<'p>(parts: impl IntoIterator<Item = &'p [u8]>) -> [u8; 32] {
    let mut h = blake3::Hasher::new_derive_key(PAYLOAD_CONTEXT);
    for p in parts {
        h.update(p);
    }
    *h.finalize().as_bytes()
}

/// Encodes a version-2 record for `(namespace, key)`.
///
/// # Panics
///
/// If a section is over its limit ([`MAX_META_LEN`], [`MAX_LABELS_LEN`], [`MAX_LABEL_LEN`]):
/// the store checks them first.
#[expect(
    clippy::cast_possible_truncation,
    reason = "section lengths are checked against limits far below 4 GiB"
)]
pub fn encode(namespace: &str, key: &[u8], parts: &RecordParts<'_>) -> Encoded {
    let labels = labels_section(parts.labels).expect("labels within limits");
    assert!(parts.meta.len() <= MAX_META_LEN, "metadata within limits");
    let (chunked_len, inline_len) = split(parts.payload.len());
    let chunk_len = if chunked_len > 0 { CHUNK_LEN } else { 0 };
    let (chunked, inline) = parts.payload.split_at(chunked_len);
    let mut out =
        Vec::with_capacity(HEADER_V2_LEN + labels.len() + parts.meta.len() + inline.len());
    out.push(FORMAT_V2);
    out.push(parts.flags);
    out.extend_from_slice(&(HEADER_V2_LEN as u16).to_le_bytes());
    out.extend_from_slice(&(chunk_len as u32).to_le_bytes());
    out.extend_from_slice(&parts.seq.to_le_bytes());
    out.extend_from_slice(&parts.original_len.to_le_bytes());
    out.extend_from_slice(&(parts.payload.len() as u64).to_le_bytes());
    out.extend_from_slice(&parts.generation.to_le_bytes());
    out.extend_from_slice(&(labels.len() as u32).to_le_bytes());
    out.extend_from_slice(&(parts.meta.len() as u32).to_le_bytes());
    out.extend_from_slice(&(inline_len as u32).to_le_bytes());
    out.extend_from_slice(&0u32.to_le_bytes());
    out.extend_from_slice(&payload_checksum([parts.payload]));
    let sections_start = out.len() + 32;
    out.extend_from_slice(&labels);
    out.extend_from_slice(parts.meta);
    let sum = entry_checksum(namespace, key, &out[..88], &out[88..]);
    out.splice(88..88, sum);
    debug_assert_eq!(sections_start, HEADER_V2_LEN);
    out.extend_from_slice(inline);
    Encoded {
        entry: out,
        chunked: Bytes::copy_from_slice(chunked),
    }
}

/// Encodes a version-1 record (inline payload, no labels or metadata). This build never writes
/// one; it exists so tests can check that old records stay readable.
#[doc(hidden)]
pub fn encode_v1(
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
    out.extend_from_slice(&[64, 0]);
    out.extend_from_slice(&0u32.to_le_bytes());
    out.extend_from_slice(&seq.to_le_bytes());
    out.extend_from_slice(&original_len.to_le_bytes());
    out.extend_from_slice(&(payload.len() as u64).to_le_bytes());
    let mut h = blake3::Hasher::new_derive_key(CHECKSUM_CONTEXT_V1);
    key_prefix(&mut h, namespace, key);
    h.update(&out);
    h.update(payload);
    out.extend_from_slice(h.finalize().as_bytes());
    out.extend_from_slice(payload);
    out
}

fn u64_at(bytes: &[u8], at: usize) -> u64 {
    let mut b = [0u8; 8];
    b.copy_from_slice(&bytes[at..at + 8]);
    u64::from_le_bytes(b)
}

fn u32_at(bytes: &[u8], at: usize) -> u32 {
    let mut b = [0u8; 4];
    b.copy_from_slice(&bytes[at..at + 4]);
    u32::from_le_bytes(b)
}

/// Parses the header of an entry without checking any checksum. Enough to find the sequence
/// number and labels of a record that is about to be replaced or evicted; nothing read this way
/// is returned as data.
///
/// # Errors
///
/// [`RecordError`] if the header is truncated, of an unknown version or layout, or its lengths
/// are impossible.
pub fn peek_header(entry: &[u8]) -> Result<Header, RecordError> {
    let version = *entry.first().ok_or(RecordError::Truncated)?;
    let expected_len = match version {
        FORMAT_V1 => HEADER_V1_LEN,
        FORMAT_V2 => HEADER_V2_LEN,
        v => return Err(RecordError::UnknownVersion(v)),
    };
    if entry.len() < expected_len {
        return Err(RecordError::Truncated);
    }
    let header_len = u16::from_le_bytes([entry[2], entry[3]]);
    if usize::from(header_len) != expected_len {
        return Err(RecordError::BadHeaderLength(header_len));
    }
    let flags = entry[1];
    if flags & !KNOWN_FLAGS != 0 {
        return Err(RecordError::UnknownFlags(flags));
    }
    let mut h = Header {
        version,
        flags,
        seq: u64_at(entry, 8),
        original_len: u64_at(entry, 16),
        stored_len: u64_at(entry, 24),
        generation: 0,
        chunk_len: 0,
        labels_len: 0,
        meta_len: 0,
        inline_len: 0,
    };
    if version == FORMAT_V1 {
        h.inline_len = u32::try_from(h.stored_len).unwrap_or(u32::MAX);
    } else {
        h.chunk_len = u32_at(entry, 4);
        h.generation = u64_at(entry, 32);
        h.labels_len = u32_at(entry, 40);
        h.meta_len = u32_at(entry, 44);
        h.inline_len = u32_at(entry, 48);
    }
    let bad = RecordError::BadLengths {
        original: h.original_len,
        stored: h.stored_len,
    };
    let chunked_ok = match (
        h.chunk_len,
        h.stored_len.checked_sub(u64::from(h.inline_len)),
    ) {
        (_, None) => false,
        (0, Some(chunked)) => chunked == 0,
        (c, Some(chunked)) => usize::try_from(c).is_ok_and(|c| c == CHUNK_LEN) && chunked > 0,
    };
    if !chunked_ok
        || h.original_len > MAX_VALUE_LEN
        || h.stored_len > MAX_VALUE_LEN.saturating_mul(2)
        || (!h.compressed() && h.original_len != h.stored_len)
    {
        return Err(bad);
    }
    Ok(h)
}

/// Refuses a record whose header declares a value longer than `max_value` bytes, or a stored
/// payload longer than zstd's worst case for such a value: what a reader checks before it reads
/// chunks or decompresses, so a forged header cannot make it allocate more than it accepts.
///
/// # Errors
///
/// [`RecordError::TooLarge`].
pub fn check_size(header: &Header, max_value: u64) -> Result<(), RecordError> {
    // zstd's compress bound: the size of an incompressible value, framed.
    let max_stored = max_value
        .saturating_add(max_value / 255)
        .saturating_add(128 << 10);
    if header.original_len > max_value {
        return Err(RecordError::TooLarge {
            declared: header.original_len,
            max: max_value,
        });
    }
    if header.stored_len > max_stored {
        return Err(RecordError::TooLarge {
            declared: header.stored_len,
            max: max_stored,
        });
    }
    Ok(())
}

/// A verified entry: its header and the sections it holds, borrowed from the entry bytes.
#[derive(Debug, Clone)]
pub struct EntryView<'r> {
    /// The header.
    pub header: Header,
    /// The labels section (see [`parse_labels`]).
    pub labels: &'r [u8],
    /// The caller's metadata.
    pub meta: &'r [u8],
    /// The inline part of the payload.
    pub inline: &'r [u8],
    /// The payload checksum (version 2) to check the chunks and inline bytes against; `None`
    /// for version 1, whose single checksum already covered the payload.
    payload_sum: Option<[u8; 32]>,
}

impl EntryView<'_> {
    /// The labels.
    pub fn labels(&self) -> Vec<&[u8]> {
        // Checked by `verify_entry`.
        parse_labels(self.labels).unwrap_or_default()
    }
}

/// Verifies the entry of `(namespace, key)`: its header, its sections' lengths and its entry
/// checksum (for version 1, the whole record). The payload's chunks are checked by
/// [`assemble`].
///
/// # Errors
///
/// [`RecordError`] if any check fails; the record must then be treated as a miss.
pub fn verify_entry<'r>(
    namespace: &str,
    key: &[u8],
    entry: &'r [u8],
) -> Result<EntryView<'r>, RecordError> {
    let header = peek_header(entry)?;
    if header.version == FORMAT_V1 {
        let payload = &entry[HEADER_V1_LEN..];
        check_len(payload.len() as u64, header.stored_len)?;
        let mut h = blake3::Hasher::new_derive_key(CHECKSUM_CONTEXT_V1);
        key_prefix(&mut h, namespace, key);
        h.update(&entry[..32]);
        h.update(payload);
        if h.finalize().as_bytes()[..] != entry[32..64] {
            return Err(RecordError::ChecksumMismatch);
        }
        return Ok(EntryView {
            header,
            labels: &[],
            meta: &[],
            inline: payload,
            payload_sum: None,
        });
    }
    let body = &entry[HEADER_V2_LEN..];
    let sections =
        u64::from(header.labels_len) + u64::from(header.meta_len) + u64::from(header.inline_len);
    check_len(body.len() as u64, sections)?;
    let (labels, rest) = body.split_at(header.labels_len as usize);
    let (meta, inline) = rest.split_at(header.meta_len as usize);
    let sum = entry_checksum(
        namespace,
        key,
        &entry[..88],
        &entry[HEADER_V2_LEN..entry.len() - inline.len()],
    );
    if sum[..] != entry[88..120] {
        return Err(RecordError::ChecksumMismatch);
    }
    if parse_labels(labels).is_none() {
        return Err(RecordError::BadLabels);
    }
    let mut payload_sum = [0u8; 32];
    payload_sum.copy_from_slice(&entry[56..88]);
    Ok(EntryView {
        header,
        labels,
        meta,
        inline,
        payload_sum: Some(payload_sum),
    })
}

fn check_len(actual: u64, expected: u64) -> Result<(), RecordError> {
    match actual.cmp(&expected) {
        std::cmp::Ordering::Less => Err(RecordError::Truncated),
        std::cmp::Ordering::Greater => Err(RecordError::TrailingBytes),
        std::cmp::Ordering::Equal => Ok(()),
    }
}

/// Checks a verified entry's chunks (in index order, as read) and inline bytes against its
/// payload checksum, and returns the value, decompressed if needed. Allocates what the chunks
/// hold plus at most the recorded original length ([`MAX_VALUE_LEN`]-bounded; a reader that
/// accepts less calls [`check_size`] first).
///
/// # Errors
///
/// [`RecordError::BadChunk`] for a missing, extra or wrongly sized chunk,
/// [`RecordError::PayloadMismatch`] if the bytes differ from what was written, and
/// [`RecordError::Decompress`] if a compressed payload does not expand to exactly its recorded
/// length.
pub fn assemble<'c>(
    view: &EntryView<'_>,
    chunks: impl IntoIterator<Item = &'c [u8]>,
) -> Result<Bytes, RecordError> {
    let h = &view.header;
    let count = h.chunk_count();
    let chunked_len = h.chunked_len();
    let mut payload = if count == 0 {
        None
    } else {
        // The header's length is not trusted to size the buffer before the chunks are seen:
        // up to one chunk is reserved, and the buffer grows with the bytes that arrive.
        let cap = usize::try_from(h.stored_len.min(CHUNK_LEN as u64)).unwrap_or(CHUNK_LEN);
        Some(BytesMut::with_capacity(cap))
    };
    let mut seen = 0u32;
    for chunk in chunks {
        let Some(buf) = payload.as_mut() else {
            return Err(RecordError::BadChunk(0));
        };
        let remaining = chunked_len - buf.len() as u64;
        let want = remaining.min(u64::from(h.chunk_len));
        if seen >= count || chunk.len() as u64 != want {
            return Err(RecordError::BadChunk(seen));
        }
        buf.extend_from_slice(chunk);
        seen += 1;
    }
    if seen != count {
        return Err(RecordError::BadChunk(seen));
    }
    let stored: Bytes = match payload {
        None => Bytes::copy_from_slice(view.inline),
        Some(mut buf) => {
            buf.extend_from_slice(view.inline);
            buf.freeze()
        }
    };
    if let Some(expected) = view.payload_sum
        && payload_checksum([&stored[..]]) != expected
    {
        return Err(RecordError::PayloadMismatch);
    }
    if !h.compressed() {
        return Ok(stored);
    }
    let limit = usize::try_from(h.original_len).map_err(|_| RecordError::Decompress)?;
    let out = crate::compress::decompress(&stored, limit).ok_or(RecordError::Decompress)?;
    Ok(Bytes::from(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts<'a>(payload: &'a [u8], labels: &'a [&'a [u8]], meta: &'a [u8]) -> RecordParts<'a> {
        RecordParts {
            seq: 7,
            generation: 3,
            flags: 0,
            original_len: payload.len() as u64,
            labels,
            meta,
            payload,
        }
    }

    fn decode(ns: &str, key: &[u8], e: &Encoded) -> Result<Bytes, RecordError> {
        let view = verify_entry(ns, key, &e.entry)?;
        assemble(&view, e.chunks())
    }

    fn pattern(n: usize) -> Vec<u8> {
        (0..n)
            .map(|i| u8::try_from(i * 31 % 251).unwrap())
            .collect()
    }

    #[test]
    fn round_trips_every_layout_and_binds_the_key() {
        let labels: [&[u8]; 2] = [b"tag:a", b"dep:b"];
        for n in [
            0,
            5,
            INLINE_MAX,
            INLINE_MAX + 1,
            CHUNK_LEN,
            CHUNK_LEN + 100,
            CHUNK_LEN + INLINE_MAX + 1,
            16 << 10,
            3 * CHUNK_LEN,
        ] {
            let value = pattern(n);
            let e = encode("ns", b"k", &parts(&value, &labels, b"meta"));
            let (chunked, inline) = split(n);
            assert_eq!(e.chunked.len(), chunked, "{n}");
            assert!(inline <= INLINE_MAX, "{n}");
            let view = verify_entry("ns", b"k", &e.entry).expect("valid");
            assert_eq!(view.labels(), labels, "{n}");
            assert_eq!(view.meta, b"meta");
            assert_eq!(view.header.generation, 3);
            assert_eq!(
                &decode("ns", b"k", &e).expect("valid")[..],
                &value[..],
                "{n}"
            );
            assert_eq!(
                decode("ns", b"j", &e).err(),
                Some(RecordError::ChecksumMismatch)
            );
            assert_eq!(
                decode("nt", b"k", &e).err(),
                Some(RecordError::ChecksumMismatch)
            );
        }
    }

    #[test]
    fn every_flipped_byte_of_entry_or_chunk_is_caught() {
        let value = pattern(CHUNK_LEN + 300);
        let e = encode("ns", b"key", &parts(&value, &[b"l"], b"m"));
        assert_eq!(e.chunks().count(), 1);
        for i in 0..e.entry.len() {
            let mut bad = e.clone();
            bad.entry[i] ^= 0x40;
            assert!(decode("ns", b"key", &bad).is_err(), "entry flip at {i}");
        }
        for i in (0..e.chunked.len()).step_by(7) {
            let mut chunk = e.chunked.to_vec();
            chunk[i] ^= 0x01;
            let view = verify_entry("ns", b"key", &e.entry).expect("entry intact");
            assert_eq!(
                assemble(&view, [&chunk[..]]),
                Err(RecordError::PayloadMismatch),
                "chunk flip at {i}"
            );
        }
        let view = verify_entry("ns", b"key", &e.entry).expect("entry intact");
        assert_eq!(assemble(&view, []), Err(RecordError::BadChunk(0)));
        assert_eq!(
            assemble(&view, [&e.chunked[..10]]),
            Err(RecordError::BadChunk(0))
        );
        assert_eq!(
            assemble(&view, [&e.chunked[..], &e.chunked[..]]),
            Err(RecordError::BadChunk(1))
        );
        let short = &e.entry[..e.entry.len() - 1];
        assert_eq!(
            verify_entry("ns", b"key", short).err(),
            Some(RecordError::Truncated)
        );
        let mut long = e.entry.clone();
        long.push(0);
        assert_eq!(
            verify_entry("ns", b"key", &long).err(),
            Some(RecordError::TrailingBytes)
        );
    }

    #[test]
    fn a_version_1_record_stays_readable_and_checked() {
        let rec = encode_v1("ns", b"k", 9, 0, 5, b"hello");
        let view = verify_entry("ns", b"k", &rec).expect("valid v1");
        assert_eq!((view.header.version, view.header.seq), (1, 9));
        assert_eq!(view.header.chunk_count(), 0);
        assert_eq!(&assemble(&view, []).expect("valid")[..], b"hello");
        for i in 0..rec.len() {
            let mut bad = rec.clone();
            bad[i] ^= 0x40;
            let r = verify_entry("ns", b"k", &bad).and_then(|v| assemble(&v, []));
            assert!(r.is_err(), "v1 flip at {i}");
        }
    }

    #[test]
    fn labels_sections_are_bounded_and_parsed_strictly() {
        let long = vec![0u8; MAX_LABEL_LEN + 1];
        assert!(labels_section(&[&long]).is_none());
        let s = labels_section(&[b"a", b"", b"bc"]).expect("within limits");
        assert_eq!(parse_labels(&s), Some(vec![&b"a"[..], b"", b"bc"]));
        assert_eq!(parse_labels(&s[..s.len() - 1]), None);
        assert_eq!(parse_labels(&[1]), None);
    }
}

//! Shared code of the fuzz targets: the input formats (so `examples/gen-corpus.rs` writes seeds
//! the targets parse the same way), the record-decoding oracle, the store-damage operations and
//! the panic hook of `store_open`.
//!
//! Every multi-byte number in an input is little-endian; a number or field cut short by the end
//! of the input reads as if zero-padded / shortened, so every byte string is a valid input.

use std::backtrace::Backtrace;
use std::cell::RefCell;
use std::collections::HashSet;
use std::sync::{Mutex, Once};

use cache_l2::record::{self, CHUNK_LEN, FLAG_ZSTD, INLINE_MAX, RecordParts};

// ---------------------------------------------------------------------------------------------
// Input reader
// ---------------------------------------------------------------------------------------------

/// A cursor over a fuzz input.
#[derive(Debug)]
pub struct Reader<'a> {
    data: &'a [u8],
}

impl<'a> Reader<'a> {
    /// Reads `data` from its start.
    pub fn new(data: &'a [u8]) -> Self {
        Self { data }
    }

    /// Whether every byte was consumed.
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// Up to `n` bytes.
    pub fn bytes(&mut self, n: usize) -> &'a [u8] {
        let n = n.min(self.data.len());
        let (head, tail) = self.data.split_at(n);
        self.data = tail;
        head
    }

    fn fixed<const N: usize>(&mut self) -> [u8; N] {
        let mut out = [0u8; N];
        let b = self.bytes(N);
        out[..b.len()].copy_from_slice(b);
        out
    }

    /// A byte (0 past the end).
    pub fn u8(&mut self) -> u8 {
        self.fixed::<1>()[0]
    }

    /// A u16 LE.
    pub fn u16(&mut self) -> u16 {
        u16::from_le_bytes(self.fixed())
    }

    /// A u32 LE.
    pub fn u32(&mut self) -> u32 {
        u32::from_le_bytes(self.fixed())
    }

    /// A u64 LE.
    pub fn u64(&mut self) -> u64 {
        u64::from_le_bytes(self.fixed())
    }

    /// A field: `u32 LE length ‖ bytes` (shortened by the end of the input).
    pub fn field(&mut self) -> &'a [u8] {
        let n = self.u32() as usize;
        self.bytes(n)
    }
}

/// Appends a field (`u32 LE length ‖ bytes`) to `out`.
pub fn put_field(out: &mut Vec<u8>, bytes: &[u8]) {
    out.extend_from_slice(&u32::try_from(bytes.len()).expect("field < 4 GiB").to_le_bytes());
    out.extend_from_slice(bytes);
}

/// `bytes` as a namespace: lossy UTF-8, cut to at most 1024 bytes on a character boundary.
pub fn namespace_of(bytes: &[u8]) -> String {
    let mut s = String::from_utf8_lossy(bytes).into_owned();
    let mut end = s.len().min(1024);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s.truncate(end);
    s
}

// ---------------------------------------------------------------------------------------------
// record_decode
// ---------------------------------------------------------------------------------------------
//
// Input: `mode: u8` then
//
// - mode odd ("raw"): `field ns ‖ field key ‖ field entry ‖ field chunk*` (at most 64 chunks);
//   the bytes are decoded as they are.
// - mode even ("valid"): `field ns ‖ field key ‖ ctl: u8 ‖ payload_len: u32 ‖ field seed ‖
//   seq: u64 ‖ generation: u64 ‖ nlabels: u8 ‖ field label* ‖ field meta ‖ [lie: u64 if ctl
//   bit 1] ‖ edit*`. A valid record is built with `record::encode` (or `encode_v1`) from those
//   parts, the edits are applied to its entry and chunks, and the result decoded. `ctl` bits:
//   0 zstd-compress the payload (FLAG_ZSTD), 1 record `lie` as the original length, 2 version-1
//   record, 3 pseudo-random (incompressible) payload instead of the repeated seed, 4 decode under
//   another key, 5 re-sign the checksums after the edits (a forged but checksum-valid record: it
//   reaches the header checks and `assemble` with impossible lengths).

/// Bit of `ctl`: compress the payload.
pub const CTL_ZSTD: u8 = 1;
/// Bit of `ctl`: record a made-up original length.
pub const CTL_LIE: u8 = 2;
/// Bit of `ctl`: a version-1 record.
pub const CTL_V1: u8 = 4;
/// Bit of `ctl`: an incompressible payload.
pub const CTL_NOISE: u8 = 8;
/// Bit of `ctl`: decode under a different key.
pub const CTL_OTHER_KEY: u8 = 16;
/// Bit of `ctl`: recompute the checksums after the edits.
pub const CTL_RESIGN: u8 = 32;

/// Longest generated payload: enough for three full chunks and a long tail.
pub const MAX_GEN_PAYLOAD: u32 = (3 * CHUNK_LEN + INLINE_MAX + 2) as u32;

/// The parts of a "valid"-mode input, for the corpus generator.
#[derive(Debug, Clone, Default)]
pub struct ValidInput<'a> {
    /// Namespace bytes.
    pub ns: &'a [u8],
    /// Key bytes.
    pub key: &'a [u8],
    /// `CTL_*` bits.
    pub ctl: u8,
    /// Payload length (taken modulo `MAX_GEN_PAYLOAD + 1`).
    pub payload_len: u32,
    /// Seed of the payload pattern.
    pub seed: &'a [u8],
    /// Sequence number.
    pub seq: u64,
    /// Namespace generation.
    pub generation: u64,
    /// Labels (at most 7 are read).
    pub labels: Vec<&'a [u8]>,
    /// Metadata.
    pub meta: &'a [u8],
    /// The lie (read only with `CTL_LIE`).
    pub lie: u64,
    /// Raw edit bytes (see [`apply_record_edits`]).
    pub edits: Vec<u8>,
}

impl ValidInput<'_> {
    /// The input bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = vec![0u8];
        put_field(&mut out, self.ns);
        put_field(&mut out, self.key);
        out.push(self.ctl);
        out.extend_from_slice(&self.payload_len.to_le_bytes());
        put_field(&mut out, self.seed);
        out.extend_from_slice(&self.seq.to_le_bytes());
        out.extend_from_slice(&self.generation.to_le_bytes());
        out.push(u8::try_from(self.labels.len()).expect("few labels"));
        for l in &self.labels {
            put_field(&mut out, l);
        }
        put_field(&mut out, self.meta);
        if self.ctl & CTL_LIE != 0 {
            out.extend_from_slice(&self.lie.to_le_bytes());
        }
        out.extend_from_slice(&self.edits);
        out
    }
}

/// A "raw"-mode input.
pub fn raw_input(ns: &str, key: &[u8], entry: &[u8], chunks: &[&[u8]]) -> Vec<u8> {
    let mut out = vec![1u8];
    put_field(&mut out, ns.as_bytes());
    put_field(&mut out, key);
    put_field(&mut out, entry);
    for c in chunks {
        put_field(&mut out, c);
    }
    out
}

/// A deterministic payload: `seed` repeated (compressible), or xorshift noise seeded by it.
pub fn payload(len: usize, seed: &[u8], noise: bool) -> Vec<u8> {
    if noise {
        let mut x = 0x9E37_79B9_7F4A_7C15_u64;
        for (i, b) in seed.iter().enumerate() {
            x ^= u64::from(*b) << ((i % 8) * 8);
            x = x.rotate_left(5).wrapping_mul(0x100_0000_01B3);
        }
        x |= 1;
        (0..len)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x.to_le_bytes()[0]
            })
            .collect()
    } else if seed.is_empty() {
        vec![0u8; len]
    } else {
        seed.iter().copied().cycle().take(len).collect()
    }
}

/// Byte offsets and widths of the version-2 header fields an edit of kind 7 can overwrite.
const HEADER_FIELDS: [(usize, usize); 12] = [
    (0, 1),  // version
    (1, 1),  // flags
    (2, 2),  // header length
    (4, 4),  // chunk length
    (8, 8),  // seq
    (16, 8), // original length
    (24, 8), // stored length
    (32, 8), // generation
    (40, 4), // labels length
    (44, 4), // metadata length
    (48, 4), // inline length
    (52, 4), // reserved
];

fn write_le(buf: &mut [u8], at: usize, width: usize, value: u64) {
    if buf.is_empty() {
        return;
    }
    let width = width.min(buf.len());
    let at = at.min(buf.len() - width);
    buf[at..at + width].copy_from_slice(&value.to_le_bytes()[..width]);
}

/// Applies the edit operations in `r` to an entry and its chunks (at most 64 edits). Each edit
/// is `op: u8` then arguments, by `op % 8`:
///
/// 0. `off: u32, x: u8`: entry byte `off % len` ^= x
/// 1. `i: u8, off: u32, x: u8`: byte `off % len` of chunk `i % n` ^= x
/// 2. `off: u32, v: u64`: write v at entry offset `off % len` (clamped to fit)
/// 3. `off: u32, v: u32`: likewise, 4 bytes
/// 4. `len: u32`: truncate the entry to `len % (len + 1)` bytes
/// 5. `n: u8, bytes`: append n bytes to the entry
/// 6. `sub: u8, i: u8, j: u8, len: u32`: chunk list: drop i / duplicate i / swap i,j / truncate
///    i to `len` / push an empty chunk / append 1 byte to i
/// 7. `field: u8, v: u64`: overwrite header field `field % 12` with v (its own width)
pub fn apply_record_edits(r: &mut Reader<'_>, entry: &mut Vec<u8>, chunks: &mut Vec<Vec<u8>>) {
    let mut n = 0;
    while !r.is_empty() && n < 64 {
        n += 1;
        let op = r.u8();
        match op % 8 {
            0 => {
                let off = r.u32() as usize;
                let x = r.u8();
                if !entry.is_empty() {
                    let len = entry.len();
                    entry[off % len] ^= x;
                }
            }
            1 => {
                let i = r.u8() as usize;
                let off = r.u32() as usize;
                let x = r.u8();
                if !chunks.is_empty() {
                    let nc = chunks.len();
                    let c = &mut chunks[i % nc];
                    if !c.is_empty() {
                        let len = c.len();
                        c[off % len] ^= x;
                    }
                }
            }
            2 => {
                let off = r.u32() as usize;
                let v = r.u64();
                let at = if entry.is_empty() { 0 } else { off % entry.len() };
                write_le(entry, at, 8, v);
            }
            3 => {
                let off = r.u32() as usize;
                let v = r.u32();
                let at = if entry.is_empty() { 0 } else { off % entry.len() };
                write_le(entry, at, 4, u64::from(v));
            }
            4 => {
                let len = r.u32() as usize;
                entry.truncate(len % (entry.len() + 1));
            }
            5 => {
                let n = r.u8() as usize;
                entry.extend_from_slice(r.bytes(n));
            }
            6 => {
                let sub = r.u8();
                let i = r.u8() as usize;
                let j = r.u8() as usize;
                let len = r.u32() as usize;
                let nc = chunks.len();
                match sub % 6 {
                    4 => chunks.push(Vec::new()),
                    _ if nc == 0 => {}
                    0 => {
                        chunks.remove(i % nc);
                    }
                    1 => {
                        let c = chunks[i % nc].clone();
                        chunks.insert(i % nc, c);
                    }
                    2 => chunks.swap(i % nc, j % nc),
                    3 => chunks[i % nc].truncate(len),
                    _ => chunks[i % nc].push(j as u8),
                }
            }
            _ => {
                let (at, width) = HEADER_FIELDS[r.u8() as usize % HEADER_FIELDS.len()];
                let v = r.u64();
                if entry.len() >= at + width {
                    write_le(entry, at, width, v);
                }
            }
        }
    }
}

fn key_prefix(h: &mut blake3::Hasher, ns: &str, key: &[u8]) {
    h.update(&(ns.len() as u32).to_le_bytes());
    h.update(ns.as_bytes());
    h.update(&(key.len() as u32).to_le_bytes());
    h.update(key);
}

fn le_u32(b: &[u8], at: usize) -> u64 {
    u64::from(u32::from_le_bytes(b[at..at + 4].try_into().expect("4 bytes")))
}

/// Recomputes the checksums of an (edited) entry as a writer would, so that a record with
/// impossible header fields still passes the checksum checks. Follows `docs/l2-format.md`
/// (see `cache_l2::record`): version 1 checksums `key ‖ header[0..32] ‖ payload`; version 2 the
/// payload (chunks ‖ inline) and `key ‖ header[0..88] ‖ labels ‖ meta`.
pub fn resign(ns: &str, key: &[u8], entry: &mut [u8], chunks: &[Vec<u8>]) {
    match entry.first() {
        Some(1) if entry.len() >= 64 => {
            let mut h = blake3::Hasher::new_derive_key(record::CHECKSUM_CONTEXT_V1);
            key_prefix(&mut h, ns, key);
            h.update(&entry[..32]);
            h.update(&entry[64..]);
            let sum = *h.finalize().as_bytes();
            entry[32..64].copy_from_slice(&sum);
        }
        Some(2) if entry.len() >= 120 => {
            let body = entry.len() - 120;
            let sections = (le_u32(entry, 40) + le_u32(entry, 44)).min(body as u64) as usize;
            let inline_start = 120 + sections;
            let mut p = blake3::Hasher::new_derive_key(record::PAYLOAD_CONTEXT);
            for c in chunks {
                p.update(c);
            }
            p.update(&entry[inline_start..]);
            let psum = *p.finalize().as_bytes();
            entry[56..88].copy_from_slice(&psum);
            let mut h = blake3::Hasher::new_derive_key(record::ENTRY_CONTEXT);
            key_prefix(&mut h, ns, key);
            h.update(&entry[..88]);
            h.update(&entry[120..inline_start]);
            let sum = *h.finalize().as_bytes();
            entry[88..120].copy_from_slice(&sum);
        }
        _ => {}
    }
}

/// Decodes `entry` and `chunks` as the store would and checks the invariants: no panic, and a
/// returned value has the header's original length. With `expect`, the record is known to be
/// `Some(value)` (the untouched record: decoding must succeed with exactly that value) or
/// `None` (a changed, unsigned record or another key: decoding must fail).
pub fn decode_and_check(
    ns: &str,
    key: &[u8],
    entry: &[u8],
    chunks: &[Vec<u8>],
    expect: Option<Option<&[u8]>>,
) {
    let _ = record::peek_header(entry);
    let result = record::verify_entry(ns, key, entry).and_then(|view| {
        let _ = view.labels();
        let out = record::assemble(&view, chunks.iter().map(|c| &c[..]));
        if let Ok(value) = &out {
            assert_eq!(
                value.len() as u64,
                view.header.original_len,
                "assemble returned a value of another length than the header's original_len"
            );
        }
        out
    });
    match expect {
        None => {}
        Some(Some(value)) => match &result {
            Ok(v) => assert!(&v[..] == value, "an intact record decoded to other bytes"),
            Err(e) => panic!("an intact record failed to decode: {e}"),
        },
        Some(None) => assert!(
            result.is_err(),
            "a changed record (or one read under another key) decoded"
        ),
    }
}

/// The whole `record_decode` target.
pub fn record_decode(data: &[u8]) {
    let mut r = Reader::new(data);
    let mode = r.u8();
    let ns = namespace_of(r.field());
    let key = r.field();
    if mode & 1 == 1 {
        let entry = r.field();
        let mut chunks = Vec::new();
        while !r.is_empty() && chunks.len() < 64 {
            chunks.push(r.field().to_vec());
        }
        decode_and_check(&ns, key, entry, &chunks, None);
        return;
    }
    let ctl = r.u8();
    let payload_len = r.u32() % (MAX_GEN_PAYLOAD + 1);
    let seed = r.field();
    let seq = r.u64();
    let generation = r.u64();
    let nlabels = r.u8() % 8;
    let mut labels: Vec<&[u8]> = Vec::new();
    for _ in 0..nlabels {
        let l = r.field();
        labels.push(&l[..l.len().min(record::MAX_LABEL_LEN)]);
    }
    let meta = r.field();
    let meta = &meta[..meta.len().min(4096)];
    let value = payload(payload_len as usize, seed, ctl & CTL_NOISE != 0);
    let (stored, flags) = if ctl & CTL_ZSTD != 0 {
        let level = i32::from(seed.first().copied().unwrap_or(0) % 4) + 1;
        (
            zstd::bulk::compress(&value, level).expect("zstd compresses"),
            FLAG_ZSTD,
        )
    } else {
        (value.clone(), 0)
    };
    let original_len = if ctl & CTL_LIE != 0 {
        r.u64()
    } else {
        value.len() as u64
    };
    let (mut entry, mut chunks) = if ctl & CTL_V1 != 0 {
        (
            record::encode_v1(&ns, key, seq, flags, original_len, &stored),
            Vec::new(),
        )
    } else {
        let parts = RecordParts {
            seq,
            generation,
            flags,
            original_len,
            labels: &labels,
            meta,
            payload: &stored,
        };
        let e = record::encode(&ns, key, &parts);
        let chunks: Vec<Vec<u8>> = e.chunks().map(<[u8]>::to_vec).collect();
        (e.entry, chunks)
    };
    let (entry0, chunks0) = (entry.clone(), chunks.clone());
    apply_record_edits(&mut r, &mut entry, &mut chunks);
    let resigned = ctl & CTL_RESIGN != 0;
    if resigned {
        resign(&ns, key, &mut entry, &chunks);
    }
    let changed = entry != entry0 || chunks != chunks0;
    let other_key = ctl & CTL_OTHER_KEY != 0;
    let mut read_key = key.to_vec();
    if other_key {
        read_key.push(0);
    }
    let expect = if resigned && changed {
        // A forged record: anything but a panic or a wrong-length value goes.
        None
    } else if changed || other_key {
        Some(None)
    } else if original_len == value.len() as u64 {
        Some(Some(&value[..]))
    } else {
        // A lying original length: decoding must fail (uncompressed: lengths differ; compressed:
        // zstd expands to another length).
        Some(None)
    };
    decode_and_check(&ns, &read_key, &entry, &chunks, expect);
}

// ---------------------------------------------------------------------------------------------
// store_open
// ---------------------------------------------------------------------------------------------

/// One damage operation of `store_open` (its input is a list of them).
#[derive(Debug, Clone, Copy)]
pub enum Damage<'a> {
    /// XOR the byte at `offset % len` with `mask`.
    Flip {
        /// Offset (modulo the file length; under 4096 if `head`).
        offset: u32,
        /// XOR mask.
        mask: u8,
    },
    /// Set the byte at `offset % len`.
    Set {
        /// Offset.
        offset: u32,
        /// New value.
        value: u8,
    },
    /// Zero the 4 KiB page holding `offset % len`.
    ZeroPage {
        /// Offset.
        offset: u32,
    },
    /// Truncate to `len % (file length + 1)` bytes.
    Truncate {
        /// New length.
        len: u32,
    },
    /// Append bytes (at most 255).
    Append(&'a [u8]),
    /// Write a u64 LE at `offset % len` (a forged length or count).
    PutU64 {
        /// Offset.
        offset: u32,
        /// Value.
        value: u64,
    },
    /// Write a u32 LE at `offset % len` (redb's page numbers, lengths and counts are mostly
    /// 32-bit).
    PutU32 {
        /// Offset.
        offset: u32,
        /// Value.
        value: u32,
    },
    /// Copy the 4 KiB page holding `from % len` over the one holding `to % len` (a misdirected
    /// or stale write).
    CopyPage {
        /// Source offset.
        from: u32,
        /// Destination offset.
        to: u32,
    },
}

/// Flag on an op byte: the offsets of this op are taken modulo 4096 (the redb header page)
/// instead of modulo the file length.
pub const DAMAGE_HEAD: u8 = 0x80;

impl Damage<'_> {
    /// The op's bytes; `head` confines its offsets to the first page.
    pub fn encode(&self, head: bool, out: &mut Vec<u8>) {
        let h = if head { DAMAGE_HEAD } else { 0 };
        match *self {
            Damage::Flip { offset, mask } => {
                out.push(h);
                out.extend_from_slice(&offset.to_le_bytes());
                out.push(mask);
            }
            Damage::Set { offset, value } => {
                out.push(1 | h);
                out.extend_from_slice(&offset.to_le_bytes());
                out.push(value);
            }
            Damage::ZeroPage { offset } => {
                out.push(2 | h);
                out.extend_from_slice(&offset.to_le_bytes());
            }
            Damage::Truncate { len } => {
                out.push(3 | h);
                out.extend_from_slice(&len.to_le_bytes());
            }
            Damage::Append(bytes) => {
                out.push(4 | h);
                out.push(u8::try_from(bytes.len()).expect("at most 255 bytes"));
                out.extend_from_slice(bytes);
            }
            Damage::PutU64 { offset, value } => {
                out.push(5 | h);
                out.extend_from_slice(&offset.to_le_bytes());
                out.extend_from_slice(&value.to_le_bytes());
            }
            Damage::PutU32 { offset, value } => {
                out.push(6 | h);
                out.extend_from_slice(&offset.to_le_bytes());
                out.extend_from_slice(&value.to_le_bytes());
            }
            Damage::CopyPage { from, to } => {
                out.push(7 | h);
                out.extend_from_slice(&from.to_le_bytes());
                out.extend_from_slice(&to.to_le_bytes());
            }
        }
    }
}

/// Applies the damage list `ops` to `file` (at most 32 ops). Op byte: `kind = op & 7` as in
/// [`Damage`] (in declaration order), [`DAMAGE_HEAD`] bit as described there.
pub fn apply_damage(file: &mut Vec<u8>, ops: &[u8]) {
    const PAGE: usize = 4096;
    let mut r = Reader::new(ops);
    let mut n = 0;
    while !r.is_empty() && n < 32 {
        n += 1;
        let op = r.u8();
        let head = op & DAMAGE_HEAD != 0;
        let at = |off: u32, len: usize| -> usize {
            if len == 0 {
                0
            } else if head {
                off as usize % PAGE.min(len)
            } else {
                off as usize % len
            }
        };
        match op & 7 {
            0 => {
                let off = r.u32();
                let mask = r.u8();
                if !file.is_empty() {
                    let i = at(off, file.len());
                    file[i] ^= mask;
                }
            }
            1 => {
                let off = r.u32();
                let v = r.u8();
                if !file.is_empty() {
                    let i = at(off, file.len());
                    file[i] = v;
                }
            }
            2 => {
                let off = r.u32();
                if !file.is_empty() {
                    let start = at(off, file.len()) / PAGE * PAGE;
                    let end = (start + PAGE).min(file.len());
                    file[start..end].fill(0);
                }
            }
            3 => {
                let len = r.u32() as usize;
                let len = if head { len % PAGE.min(file.len() + 1) } else { len % (file.len() + 1) };
                file.truncate(len);
            }
            4 => {
                let n = r.u8() as usize;
                file.extend_from_slice(r.bytes(n));
            }
            5 => {
                let off = r.u32();
                let v = r.u64();
                let i = at(off, file.len());
                write_le(file, i, 8, v);
            }
            6 => {
                let off = r.u32();
                let v = r.u32();
                let i = at(off, file.len());
                write_le(file, i, 4, u64::from(v));
            }
            _ => {
                let from = r.u32();
                let to = r.u32();
                if file.len() >= PAGE {
                    let pages = file.len() / PAGE;
                    let src = (from as usize % pages) * PAGE;
                    let dst = if head { 0 } else { (to as usize % pages) * PAGE };
                    file.copy_within(src..src + PAGE, dst);
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Panic hook of store_open
// ---------------------------------------------------------------------------------------------

thread_local! {
    static LAST_PANIC: RefCell<Option<String>> = const { RefCell::new(None) };
}

static SEEN_PANICS: Mutex<Option<HashSet<String>>> = Mutex::new(None);

/// Replaces libfuzzer-sys's panic hook (which aborts on every panic, even one the code under
/// test catches) with one that only remembers the panic (and logs each new location once), so
/// a panic the store contains does not count as a crash. Panics that escape the target are
/// still crashes: see [`run_guarded`] (and libfuzzer-sys's own `catch_unwind` + abort).
///
/// With `FUZZ_ANY_PANIC_IS_CRASH` set in the environment, the hook is left alone: every panic,
/// contained or not, on any thread, aborts (useful to hunt redb panics the store swallows).
pub fn install_contained_panic_hook() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        if std::env::var_os("FUZZ_ANY_PANIC_IS_CRASH").is_some() {
            return;
        }
        std::panic::set_hook(Box::new(|info| {
            let msg = if let Some(s) = info.payload().downcast_ref::<&str>() {
                (*s).to_owned()
            } else if let Some(s) = info.payload().downcast_ref::<String>() {
                s.clone()
            } else {
                "<non-string panic payload>".to_owned()
            };
            let loc = info
                .location()
                .map_or_else(|| "<unknown>".to_owned(), |l| format!("{}:{}", l.file(), l.line()));
            let thread = std::thread::current().name().unwrap_or("<unnamed>").to_owned();
            let new = SEEN_PANICS
                .lock()
                .map(|mut s| s.get_or_insert_with(HashSet::new).insert(loc.clone()))
                .unwrap_or(false);
            if new {
                eprintln!(
                    "fuzz: panic (first at this location; contained unless reported as escaping) \
                     on thread '{thread}' at {loc}: {msg}"
                );
            }
            let bt = Backtrace::force_capture();
            LAST_PANIC.with_borrow_mut(|p| {
                *p = Some(format!("thread '{thread}' panicked at {loc}:\n{msg}\n{bt}"));
            });
        }));
    });
}

/// Runs `f`; a panic escaping it is reported (message, location, backtrace) and the process
/// aborts, which libFuzzer records as a crash.
pub fn run_guarded(f: impl FnOnce()) {
    LAST_PANIC.with_borrow_mut(|p| *p = None);
    if std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).is_err() {
        let report = LAST_PANIC
            .with_borrow_mut(Option::take)
            .unwrap_or_else(|| "<no panic info captured>".to_owned());
        eprintln!("fuzz: a panic escaped the API:\n{report}");
        std::process::abort();
    }
}

// ---------------------------------------------------------------------------------------------
// Scratch directories
// ---------------------------------------------------------------------------------------------

/// A scratch directory for this process, `/dev/shm/cache-fuzz-<target>-<pid>` (or under the
/// system temp directory if there is no `/dev/shm`). libFuzzer exits without running
/// destructors and a crash leaves its files behind, so each call first removes the directories
/// of earlier processes (of any target) that are no longer running.
pub fn scratch_dir(target: &str) -> std::path::PathBuf {
    let root = std::path::Path::new("/dev/shm");
    let root = if root.is_dir() {
        root.to_path_buf()
    } else {
        std::env::temp_dir()
    };
    if let Ok(entries) = std::fs::read_dir(&root) {
        for e in entries.flatten() {
            let name = e.file_name();
            let Some(rest) = name.to_str().and_then(|n| n.strip_prefix("cache-fuzz-")) else {
                continue;
            };
            let Some(pid) = rest.rsplit('-').next().and_then(|p| p.parse::<u32>().ok()) else {
                continue;
            };
            if pid != std::process::id() && !std::path::Path::new(&format!("/proc/{pid}")).exists()
            {
                let _ = std::fs::remove_dir_all(e.path());
            }
        }
    }
    let dir = root.join(format!("cache-fuzz-{target}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("create the scratch directory");
    dir
}

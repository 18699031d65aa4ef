//! zstd compression of record payloads, and its gates.

use std::cell::RefCell;

use serde::{Deserialize, Serialize};

/// When and how hard to compress values.
///
/// A value is stored compressed only if compression is enabled, the value is at least
/// `min_bytes` long, and the compressed form is at most `max_ratio` of the original; otherwise it
/// is stored raw. Decompression never allocates more than the recorded original length.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CompressionOptions {
    /// Whether to try compressing values at all. Default: `true`.
    pub enabled: bool,
    /// zstd level, 1 (fastest) to 22 (smallest). Default: 3; valid: 1 to 22.
    pub level: i32,
    /// Values shorter than this many bytes are stored raw. Default: 1024; valid: 0 to 1 GiB.
    pub min_bytes: u64,
    /// Keep the compressed form only if `compressed / original` is at most this (0 < r ≤ 1).
    /// Default: 0.9 (it must save at least 10%).
    pub max_ratio: f64,
}

impl Default for CompressionOptions {
    fn default() -> Self {
        Self {
            enabled: true,
            level: 3,
            min_bytes: 1024,
            max_ratio: 0.9,
        }
    }
}

impl CompressionOptions {
    /// Checks the options.
    ///
    /// # Errors
    ///
    /// [`crate::L2Error::InvalidOption`] naming the bad field.
    pub fn validate(&self) -> crate::Result<()> {
        if !(1..=22).contains(&self.level) {
            return Err(crate::L2Error::InvalidOption {
                field: "l2.compression.level",
                reason: format!("{} is outside 1..=22", self.level),
            });
        }
        if !(self.max_ratio > 0.0 && self.max_ratio <= 1.0) {
            return Err(crate::L2Error::InvalidOption {
                field: "l2.compression.max_ratio",
                reason: format!("{} is not in (0, 1]", self.max_ratio),
            });
        }
        Ok(())
    }

    /// The compressed form of `value`, or `None` if it should be stored raw.
    pub(crate) fn compress(&self, value: &[u8]) -> Option<Vec<u8>> {
        if !self.enabled || (value.len() as u64) < self.min_bytes {
            return None;
        }
        let out = COMPRESSOR.with_borrow_mut(|c| {
            if c.as_ref().is_none_or(|(level, _)| *level != self.level) {
                *c = Some((self.level, zstd::bulk::Compressor::new(self.level).ok()?));
            }
            let (_, compressor) = c.as_mut()?;
            compressor.compress(value).ok()
        })?;
        #[expect(
            clippy::cast_precision_loss,
            reason = "a ratio; precision loss is harmless"
        )]
        let ratio = out.len() as f64 / value.len() as f64;
        (ratio <= self.max_ratio).then_some(out)
    }
}

thread_local! {
    /// This thread's zstd compression context and the level it was made for. A context holds
    /// some hundred KiB of tables: making one per value cost more than compressing 16 KiB.
    static COMPRESSOR: RefCell<Option<(i32, zstd::bulk::Compressor<'static>)>> =
        const { RefCell::new(None) };
    /// This thread's zstd decompression context (see `COMPRESSOR`).
    static DECOMPRESSOR: RefCell<Option<zstd::bulk::Decompressor<'static>>> =
        const { RefCell::new(None) };
}

/// Decompresses `payload`, which must expand to exactly `original_len` bytes. Returns `None` if
/// it is not valid zstd or expands to any other length; never allocates more than
/// `original_len` bytes.
pub(crate) fn decompress(payload: &[u8], original_len: usize) -> Option<Vec<u8>> {
    match zstd::zstd_safe::get_frame_content_size(payload) {
        // What this crate writes: the frame declares its size, which must be the record's.
        Ok(Some(declared)) if declared == original_len as u64 => {}
        // Another size: refused before the output buffer is allocated.
        Ok(Some(_)) | Err(_) => return None,
        // No declared size (not written by this crate): decompressed as a stream, so the
        // buffer grows with the bytes that come out, stopping past `original_len`.
        Ok(None) => return decompress_streaming(payload, original_len),
    }
    let out = DECOMPRESSOR.with_borrow_mut(|d| {
        if d.is_none() {
            *d = Some(zstd::bulk::Decompressor::new().ok()?);
        }
        d.as_mut()?.decompress(payload, original_len).ok()
    })?;
    (out.len() == original_len).then_some(out)
}

/// Decompresses a frame that does not declare its size, growing the output as it comes and
/// refusing it once it exceeds `original_len`.
fn decompress_streaming(payload: &[u8], original_len: usize) -> Option<Vec<u8>> {
    use std::io::Read as _;
    let decoder = zstd::stream::read::Decoder::new(payload).ok()?;
    let mut out = Vec::new();
    decoder
        .take(original_len as u64 + 1)
        .read_to_end(&mut out)
        .ok()?;
    (out.len() == original_len).then_some(out)
}

/// `len` pseudo-random bytes (xorshift, fixed seed), which zstd cannot shrink: for tests.
#[cfg(test)]
pub(crate) fn noise(len: usize) -> Vec<u8> {
    let mut x = 0x9E37_79B9_7F4A_7C15_u64;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x.to_le_bytes()[0]
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gates_small_and_incompressible_values() {
        let opts = CompressionOptions::default();
        assert!(opts.compress(&[b'a'; 100]).is_none(), "below min_bytes");
        let text = b"the quick brown fox ".repeat(200);
        let packed = opts.compress(&text).expect("compressible");
        assert!(packed.len() < text.len() / 4);
        assert_eq!(decompress(&packed, text.len()).as_deref(), Some(&text[..]));
        // Pseudo-random bytes do not pass the ratio gate.
        assert!(opts.compress(&noise(4096)).is_none());
    }

    #[test]
    fn decompression_is_bounded_by_the_recorded_length() {
        // A "bomb": 64 MiB of zeros compresses to a few KiB.
        let zeros = vec![0u8; 64 << 20];
        let bomb = zstd::bulk::compress(&zeros, 3).expect("compress");
        assert!(bomb.len() < 64 << 10);
        assert!(
            decompress(&bomb, 1024).is_none(),
            "a lying length is refused"
        );
        assert!(decompress(b"not zstd at all", 100).is_none());
        // A frame without a declared size is bounded by the recorded length too.
        let mut enc = zstd::stream::Encoder::new(Vec::new(), 3).unwrap();
        enc.include_contentsize(false).unwrap();
        std::io::Write::write_all(&mut enc, &zeros).unwrap();
        let undeclared = enc.finish().unwrap();
        assert!(matches!(
            zstd::zstd_safe::get_frame_content_size(&undeclared),
            Ok(None)
        ));
        assert!(decompress(&undeclared, 1024).is_none());
        assert_eq!(
            decompress(&undeclared, zeros.len()).map(|v| v.len()),
            Some(zeros.len())
        );
    }
}

//! The keys and values of `load --cache l2`, and the check of what a get returns.

use std::fmt::Write as _;

use rand::rngs::StdRng;
use rand::{RngExt as _, SeedableRng as _};

/// Bytes of the seeded window values are sliced from, beyond the value's own length.
const WINDOW: usize = 1 << 20;

/// The key of `index`: `index * K` (a bijection on `u64` for odd `K`) as 8 big-endian bytes, so
/// consecutive indices land far apart in key order.
pub fn key(index: u64) -> [u8; 8] {
    index.wrapping_mul(0x9E37_79B9_7F4A_7C15).to_be_bytes()
}

/// Why a get's result is not the value that was put.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GetMismatch {
    /// Nothing came back for a key that was put (and that nothing should have evicted).
    #[error("key index {index}: missing, though it was put")]
    Missing {
        /// The key's index.
        index: u64,
    },
    /// Other bytes came back.
    #[error(
        "key index {index}: got {len} bytes that differ from the {expected_len} put, first at \
         byte {first_difference}"
    )]
    WrongBytes {
        /// The key's index.
        index: u64,
        /// Length of what came back.
        len: usize,
        /// Length of what was put.
        expected_len: usize,
        /// Offset of the first byte that differs (the shorter length if one is a prefix of the
        /// other).
        first_difference: usize,
    },
}

/// The values of a run: the value of each key index, made on demand from a seeded window.
#[derive(Debug, Clone)]
pub struct ValueGen {
    value_size: usize,
    /// `value_size - 8 + WINDOW` bytes; a value's tail is a slice of it.
    window: Vec<u8>,
}

impl ValueGen {
    /// Values of `value_size` bytes (at least 8), random bytes or, if `compressible`, JSON-like
    /// text, drawn from `seed`.
    ///
    /// # Errors
    ///
    /// If `value_size` is below 8.
    pub fn new(value_size: u32, compressible: bool, seed: u64) -> anyhow::Result<Self> {
        anyhow::ensure!(
            value_size >= 8,
            "--value-size must be at least 8 (values start with their key index)"
        );
        let value_size = value_size as usize;
        let len = value_size - 8 + WINDOW;
        let mut rng = StdRng::seed_from_u64(seed);
        let window = if compressible {
            json_like(&mut rng, len)
        } else {
            let mut w = vec![0u8; len];
            rng.fill(&mut w[..]);
            w
        };
        Ok(Self { value_size, window })
    }

    /// Bytes per value.
    pub fn value_size(&self) -> usize {
        self.value_size
    }

    /// The value of `index` after its 8-byte prefix.
    fn tail(&self, index: u64) -> &[u8] {
        // The top 20 bits of a multiplicative hash: an offset in 0..WINDOW.
        let offset = (index.wrapping_mul(0xD6E8_FEB8_6659_FD93) >> (64 - 20)) as usize;
        &self.window[offset..offset + self.value_size - 8]
    }

    /// Writes the value of `index` into `out`, replacing its contents.
    pub fn write(&self, index: u64, out: &mut Vec<u8>) {
        out.clear();
        out.extend_from_slice(&index.to_le_bytes());
        out.extend_from_slice(self.tail(index));
    }

    /// Checks that `got`, what a get of `index`'s key returned, is the value of `index`.
    ///
    /// # Errors
    ///
    /// [`GetMismatch`] saying what is wrong.
    pub fn check(&self, index: u64, got: Option<&[u8]>) -> Result<(), GetMismatch> {
        let Some(got) = got else {
            return Err(GetMismatch::Missing { index });
        };
        let prefix = index.to_le_bytes();
        let expected = prefix.iter().chain(self.tail(index));
        if got.len() == self.value_size && got[..8] == prefix && got[8..] == *self.tail(index) {
            return Ok(());
        }
        let first_difference = got
            .iter()
            .zip(expected)
            .position(|(a, b)| a != b)
            .unwrap_or_else(|| got.len().min(self.value_size));
        Err(GetMismatch::WrongBytes {
            index,
            len: got.len(),
            expected_len: self.value_size,
            first_difference,
        })
    }
}

/// `len` bytes of newline-separated JSON records with varied fields: text that zstd level 3
/// shrinks several times, as it does API responses.
fn json_like(rng: &mut StdRng, len: usize) -> Vec<u8> {
    const WORDS: [&str; 16] = [
        "alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel", "india",
        "juliet", "kilo", "lima", "mike", "november", "oscar", "papa",
    ];
    const CITIES: [&str; 8] = [
        "Lisbon", "Osaka", "Nairobi", "Lima", "Oslo", "Austin", "Pune", "Leeds",
    ];
    let mut text = String::with_capacity(len + 512);
    while text.len() < len {
        let id: u32 = rng.random_range(0..1_000_000);
        let user: u32 = rng.random_range(0..10_000);
        let cents: u32 = rng.random_range(0..10_000);
        let _ = writeln!(
            text,
            r#"{{"id":{id},"user":"user-{user}","email":"user-{user}@example.com","active":{},"score":{}.{:02},"tags":["{}","{}"],"city":"{}","created":"2024-{:02}-{:02}T{:02}:{:02}:00Z"}},"#,
            rng.random_bool(0.5),
            cents / 100,
            cents % 100,
            WORDS[rng.random_range(0..WORDS.len())],
            WORDS[rng.random_range(0..WORDS.len())],
            CITIES[rng.random_range(0..CITIES.len())],
            rng.random_range(1..=12),
            rng.random_range(1..=28),
            rng.random_range(0..24),
            rng.random_range(0..60),
        );
    }
    let mut bytes = text.into_bytes();
    bytes.truncate(len);
    bytes
}

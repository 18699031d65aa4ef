//! Synthetic workloads, as streams of [`Request`]s like a trace, and the values every workload
//! stores: how big each key's value is ([`ValueSizes`]) and how well its bytes compress
//! ([`compressible_bytes`]), both drawn from a seed ([`ValueSpec`]).

use std::collections::HashSet;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context as _;
use bytesize::ByteSize;
use rand::rngs::{SmallRng, StdRng};
use rand::{Rng, RngExt as _, SeedableRng};
use rand_distr::{Distribution, Zipf};

use crate::trace::{Request, TraceReader};

/// `requests` draws of a Zipf(`s`) distribution over `keys` object ids (rank 1 is the most
/// popular; ids are ranks - 1; `s = 0` is uniform), each with the size `values` gives its key.
/// Seeded: the same arguments give the same stream.
///
/// # Errors
///
/// If `keys` is 0 or `s` is negative or not finite.
pub fn zipf(
    keys: u64,
    s: f64,
    requests: u64,
    values: ValueSpec,
    seed: u64,
) -> anyhow::Result<impl Iterator<Item = Request>> {
    anyhow::ensure!(keys > 0, "--keys must be at least 1");
    #[expect(clippy::cast_precision_loss, reason = "key counts far below 2^53")]
    let dist = Zipf::new(keys as f64, s)
        .map_err(|e| anyhow::anyhow!("bad Zipf parameters (keys {keys}, s {s}): {e}"))?;
    let mut rng = StdRng::seed_from_u64(seed);
    Ok((0..requests).map(move |_| {
        #[expect(
            clippy::cast_possible_truncation,
            clippy::cast_sign_loss,
            reason = "Zipf samples are integers in 1..=keys"
        )]
        let rank = dist.sample(&mut rng) as u64;
        let key = rank - 1;
        Request {
            key,
            size: Some(values.size_of(key)),
        }
    }))
}

/// Distinct objects [`ValueSizes::from_trace`] reads sizes from at most: the first this many
/// of the trace (2^20), so a trace larger than memory costs a bounded sample.
pub const TRACE_SIZE_OBJECTS: usize = 1 << 20;

/// Requests [`ValueSizes::from_trace`] reads at most (2^24), so a long trace of few objects
/// costs a bounded time.
pub const TRACE_SIZE_REQUESTS: usize = 1 << 24;

/// The value-size distribution of a workload, in bytes. Each key draws its size once, from a
/// generator seeded by the key and [`ValueSpec::seed`], so a key keeps its size for the whole
/// run and the same seed gives the same sizes.
///
/// Parsed from the command line ([`std::str::FromStr`]) as:
///
/// - `512` or `4KiB`: every value that many bytes ([`ValueSizes::Fixed`]);
/// - `100..4KiB`: uniform between the two bounds, both included ([`ValueSizes::Uniform`]);
/// - `trace:PATH`: the object sizes of a sized trace (text `time id size` or oracleGeneral,
///   plain or `.zst`), one per distinct object of its first [`TRACE_SIZE_OBJECTS`]
///   ([`ValueSizes::Trace`]).
///
/// ```
/// use cache_bench::workload::ValueSizes;
///
/// assert_eq!("4KiB".parse::<ValueSizes>()?, ValueSizes::Fixed(4096));
/// assert_eq!(
///     "100..1KiB".parse::<ValueSizes>()?,
///     ValueSizes::Uniform { min: 100, max: 1024 }
/// );
/// # Ok::<(), anyhow::Error>(())
/// ```
#[derive(Clone, PartialEq, Eq)]
pub enum ValueSizes {
    /// Every value this many bytes.
    Fixed(u32),
    /// Uniform in `min..=max` bytes.
    Uniform {
        /// Smallest size, in bytes.
        min: u32,
        /// Largest size, in bytes (at least `min`).
        max: u32,
    },
    /// The empirical distribution of a trace's object sizes: a key's size is one of `sizes`,
    /// each equally likely.
    Trace {
        /// The trace the sizes were read from.
        path: PathBuf,
        /// One size per distinct object, in bytes, sorted; never empty.
        sizes: Arc<[u32]>,
    },
}

impl fmt::Debug for ValueSizes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Trace { path, sizes } => f
                .debug_struct("Trace")
                .field("path", path)
                .field("objects", &sizes.len())
                .finish(),
            other => write!(f, "{other}"),
        }
    }
}

impl fmt::Display for ValueSizes {
    /// The form [`std::str::FromStr`] reads: `512`, `100..4096` or `trace:PATH`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Fixed(n) => write!(f, "{n}"),
            Self::Uniform { min, max } => write!(f, "{min}..{max}"),
            Self::Trace { path, .. } => write!(f, "trace:{}", path.display()),
        }
    }
}

impl std::str::FromStr for ValueSizes {
    type Err = anyhow::Error;

    fn from_str(s: &str) -> anyhow::Result<Self> {
        if let Some(path) = s.strip_prefix("trace:") {
            // Flattened: clap shows an error with `{}`, which would drop anyhow's causes.
            return Self::from_trace(Path::new(path)).map_err(|e| anyhow::anyhow!("{e:#}"));
        }
        if let Some((min, max)) = s.split_once("..") {
            let (min, max) = (bytes_u32(min)?, bytes_u32(max)?);
            anyhow::ensure!(
                min <= max,
                "value sizes {s}: the smallest ({min}) is above the largest ({max})"
            );
            return Ok(if min == max {
                Self::Fixed(min)
            } else {
                Self::Uniform { min, max }
            });
        }
        bytes_u32(s).map(Self::Fixed)
    }
}

/// A byte count of at most `u32::MAX` (`512`, `4KiB`), for value sizes.
fn bytes_u32(s: &str) -> anyhow::Result<u32> {
    let bytes: ByteSize = s.trim().parse().map_err(|e| {
        anyhow::anyhow!(
            "bad value size {s:?} ({e}); give bytes (512, 4KiB), a range (100..4KiB) or \
             trace:PATH"
        )
    })?;
    u32::try_from(bytes.as_u64())
        .map_err(|_| anyhow::anyhow!("value size {s} is over the 4 GiB a value may have"))
}

impl ValueSizes {
    /// The sizes of the distinct objects among the first [`TRACE_SIZE_OBJECTS`] of the sized
    /// trace at `path`, within its first [`TRACE_SIZE_REQUESTS`] requests (the size of an
    /// object's first request; objects of size 0 skipped).
    /// Reads the trace as a stream: memory grows with the objects sampled, not the trace.
    ///
    /// # Errors
    ///
    /// If the trace cannot be read, records no sizes (ARC, LIRS), or has no object over 0 bytes.
    pub fn from_trace(path: &Path) -> anyhow::Result<Self> {
        let reader = TraceReader::open(path, None)
            .with_context(|| format!("reading value sizes from {}", path.display()))?;
        let format = reader.format();
        anyhow::ensure!(
            format.is_sized(),
            "{} is a {format:?} trace, which records no sizes: value sizes need a text \
             (time id size) or oracleGeneral trace",
            path.display()
        );
        let mut seen = HashSet::new();
        let mut sizes = Vec::new();
        for request in reader.take(TRACE_SIZE_REQUESTS) {
            let request =
                request.with_context(|| format!("reading value sizes from {}", path.display()))?;
            if seen.len() >= TRACE_SIZE_OBJECTS {
                break;
            }
            if seen.insert(request.key)
                && let Some(size) = request.size.filter(|&s| s > 0)
            {
                sizes.push(size);
            }
        }
        anyhow::ensure!(
            !sizes.is_empty(),
            "{} has no object of more than 0 bytes to take value sizes from",
            path.display()
        );
        sizes.sort_unstable();
        Ok(Self::Trace {
            path: path.to_owned(),
            sizes: sizes.into(),
        })
    }

    /// The size of `key`'s value, in bytes, under `seed`.
    pub fn size_of(&self, key: u64, seed: u64) -> u32 {
        match self {
            Self::Fixed(n) => *n,
            Self::Uniform { min, max } => key_rng(key, seed).random_range(*min..=*max),
            Self::Trace { sizes, .. } => sizes[key_rng(key, seed).random_range(0..sizes.len())],
        }
    }

    /// The smallest size the distribution can give, in bytes.
    pub fn min(&self) -> u32 {
        match self {
            Self::Fixed(n) | Self::Uniform { min: n, .. } => *n,
            Self::Trace { sizes, .. } => sizes[0],
        }
    }

    /// The largest size the distribution can give, in bytes.
    pub fn max(&self) -> u32 {
        match self {
            Self::Fixed(n) | Self::Uniform { max: n, .. } => *n,
            Self::Trace { sizes, .. } => sizes[sizes.len() - 1],
        }
    }

    /// The mean size, in bytes.
    pub fn mean(&self) -> f64 {
        match self {
            Self::Fixed(n) => f64::from(*n),
            Self::Uniform { min, max } => f64::midpoint(f64::from(*min), f64::from(*max)),
            #[expect(clippy::cast_precision_loss, reason = "a mean")]
            Self::Trace { sizes, .. } => {
                sizes.iter().map(|&s| u64::from(s)).sum::<u64>() as f64 / sizes.len() as f64
            }
        }
    }
}

/// A generator for `key`'s draws under `seed`: cheap to seed (`SmallRng` seeds through
/// `SplitMix64`), so one can be made per request.
fn key_rng(key: u64, seed: u64) -> SmallRng {
    SmallRng::seed_from_u64(seed ^ key.wrapping_mul(0x9E37_79B9_7F4A_7C15))
}

/// Bytes of each piece [`compressible_bytes`] builds its output from.
pub const COMPRESSIBLE_PIECE: usize = 128;

/// The smallest compression ratio values can be built for: one random byte per
/// [`COMPRESSIBLE_PIECE`].
#[expect(clippy::cast_precision_loss, reason = "128 is exact")]
pub const MIN_COMPRESSION_RATIO: f64 = 1.0 / COMPRESSIBLE_PIECE as f64;

/// `len` bytes from `rng` that a general-purpose compressor (zstd, LZ4) shrinks to about
/// `ratio` of their size when it sees a few hundred bytes or more: pieces of
/// [`COMPRESSIBLE_PIECE`] bytes, each `ratio * 128` random bytes repeated to fill it. This is
/// the scheme of `RocksDB`'s `db_bench --compression_ratio`; a `ratio` of 1 gives random bytes,
/// which do not compress. Measured with zstd level 3 on 4 KiB slices
/// (`compressible_bytes_shrink_to_about_their_ratio`):
/// 0.75 gives 0.76, 0.5 gives 0.51, 0.25 gives 0.26 and 0.1 gives 0.11 (each piece's repeat
/// costs a byte or two).
///
/// # Panics
///
/// If `ratio` is not in `(0, 1]` ([`ValueSpec::check`] refuses such ratios first).
pub fn compressible_bytes(len: usize, ratio: f64, rng: &mut impl Rng) -> Vec<u8> {
    assert!(
        ratio > 0.0 && ratio <= 1.0,
        "compression ratio {ratio} is not in (0, 1]"
    );
    let mut out = vec![0u8; len];
    #[expect(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        clippy::cast_precision_loss,
        reason = "a share of a 128-byte piece"
    )]
    let raw = ((ratio * COMPRESSIBLE_PIECE as f64).round() as usize).clamp(1, COMPRESSIBLE_PIECE);
    for piece in out.chunks_mut(COMPRESSIBLE_PIECE) {
        let head = raw.min(piece.len());
        rng.fill(&mut piece[..head]);
        for i in head..piece.len() {
            piece[i] = piece[i % raw];
        }
    }
    out
}

/// The values of a workload: each key's size, how well the bytes compress, and the seed of
/// both.
#[derive(Debug, Clone, PartialEq)]
pub struct ValueSpec {
    /// The size of each key's value. Sizes a trace records win over it; it sizes the values of
    /// synthetic workloads and of traces without sizes (ARC, LIRS).
    pub sizes: ValueSizes,
    /// What a compressor shrinks values to, as a fraction of their size, in
    /// `[MIN_COMPRESSION_RATIO, 1]` ([`compressible_bytes`]); 1 (the command line's default)
    /// is random bytes, which do not compress.
    pub compression_ratio: f64,
    /// Seed of the sizes and of the bytes (the command line's default: 42).
    pub seed: u64,
}

impl ValueSpec {
    /// Values of `size` bytes that do not compress, seed 42.
    pub fn fixed(size: u32) -> Self {
        Self {
            sizes: ValueSizes::Fixed(size),
            compression_ratio: 1.0,
            seed: 42,
        }
    }

    /// The size of `key`'s value, in bytes.
    pub fn size_of(&self, key: u64) -> u32 {
        self.sizes.size_of(key, self.seed)
    }

    /// Checks the compression ratio and the sizes.
    ///
    /// # Errors
    ///
    /// If the ratio is not in `[MIN_COMPRESSION_RATIO, 1]`, a uniform range is empty, or a
    /// trace's sizes are empty.
    pub fn check(&self) -> anyhow::Result<()> {
        anyhow::ensure!(
            (MIN_COMPRESSION_RATIO..=1.0).contains(&self.compression_ratio),
            "--compression-ratio must be in [1/128, 1] (1 = random bytes; each 128-byte piece \
             keeps at least one random byte), not {}",
            self.compression_ratio
        );
        match &self.sizes {
            ValueSizes::Uniform { min, max } => {
                anyhow::ensure!(min <= max, "value sizes {min}..{max}: an empty range");
            }
            ValueSizes::Trace { path, sizes } => anyhow::ensure!(
                !sizes.is_empty(),
                "no value sizes taken from {}",
                path.display()
            ),
            ValueSizes::Fixed(_) => {}
        }
        Ok(())
    }

    /// The figures a report records.
    pub fn report(&self) -> ValueReport {
        ValueReport {
            sizes: self.sizes.to_string(),
            min_bytes: self.sizes.min(),
            max_bytes: self.sizes.max(),
            mean_bytes: self.sizes.mean(),
            compression_ratio: self.compression_ratio,
            seed: self.seed,
        }
    }
}

/// The values of a run, as reports and JSON give them.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ValueReport {
    /// The distribution as given: `512`, `100..4096` or `trace:PATH`.
    pub sizes: String,
    /// Smallest size, in bytes.
    pub min_bytes: u32,
    /// Largest size, in bytes.
    pub max_bytes: u32,
    /// Mean size, in bytes.
    pub mean_bytes: f64,
    /// Target compressed size over size.
    pub compression_ratio: f64,
    /// Seed of sizes and bytes.
    pub seed: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_from_bytes_ranges_and_units() {
        assert_eq!("512".parse::<ValueSizes>().unwrap(), ValueSizes::Fixed(512));
        assert_eq!(
            "64..4KiB".parse::<ValueSizes>().unwrap(),
            ValueSizes::Uniform { min: 64, max: 4096 }
        );
        assert_eq!("8..8".parse::<ValueSizes>().unwrap(), ValueSizes::Fixed(8));
        for bad in ["", "big", "9..3", "5GiB", "1..x"] {
            assert!(bad.parse::<ValueSizes>().is_err(), "{bad:?} parsed");
        }
        let sizes = ValueSizes::Uniform { min: 3, max: 9 };
        assert_eq!(sizes.to_string().parse::<ValueSizes>().unwrap(), sizes);
    }

    #[test]
    fn uniform_sizes_stay_in_range_cover_it_and_keep_per_key() {
        let sizes = ValueSizes::Uniform { min: 10, max: 19 };
        let mut counts = [0u32; 10];
        for key in 0..10_000 {
            let s = sizes.size_of(key, 7);
            assert!((10..=19).contains(&s), "{s}");
            assert_eq!(sizes.size_of(key, 7), s, "key {key} changed size");
            counts[(s - 10) as usize] += 1;
        }
        // 1,000 expected per size; a fair draw is far inside 800..1200.
        assert!(
            counts.iter().all(|&c| (800..1200).contains(&c)),
            "{counts:?}"
        );
        let mean = (0..10_000)
            .map(|k| f64::from(sizes.size_of(k, 7)))
            .sum::<f64>()
            / 1e4;
        assert!((mean - sizes.mean()).abs() < 0.2, "{mean}");
        // Another seed gives other sizes.
        assert!((0..100).any(|k| sizes.size_of(k, 8) != sizes.size_of(k, 7)));
    }

    #[test]
    fn trace_sizes_draw_only_sizes_the_trace_has() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.txt");
        // Object 1 is 100 bytes, 2 is 300 (its second request's size is ignored), 3 is 0.
        std::fs::write(&path, "1 1 100\n2 2 300\n3 2 999\n4 3 0\n5 1 100\n").unwrap();
        let sizes = ValueSizes::from_trace(&path).unwrap();
        assert_eq!((sizes.min(), sizes.max(), sizes.mean()), (100, 300, 200.0));
        let drawn: HashSet<u32> = (0..1000).map(|k| sizes.size_of(k, 1)).collect();
        assert_eq!(drawn, HashSet::from([100, 300]));
        assert_eq!(
            format!("trace:{}", path.display())
                .parse::<ValueSizes>()
                .unwrap(),
            sizes
        );

        let unsized_trace = dir.path().join("u.lis");
        std::fs::write(&unsized_trace, "1 2 0 1\n").unwrap();
        let e = ValueSizes::from_trace(&unsized_trace).unwrap_err();
        assert!(format!("{e:#}").contains("records no sizes"), "{e:#}");
    }

    #[test]
    fn compressible_bytes_shrink_to_about_their_ratio() {
        let mut rng = StdRng::seed_from_u64(1);
        for ratio in [1.0, 0.75, 0.5, 0.25, 0.1] {
            let bytes = compressible_bytes(1 << 16, ratio, &mut rng);
            let mut sizes = Vec::new();
            for slice in bytes.chunks(4096) {
                let packed = zstd::bulk::compress(slice, 3).unwrap();
                #[expect(clippy::cast_precision_loss, reason = "a ratio")]
                sizes.push(packed.len() as f64 / slice.len() as f64);
            }
            #[expect(clippy::cast_precision_loss, reason = "a mean")]
            let got = sizes.iter().sum::<f64>() / sizes.len() as f64;
            let (low, high) = if ratio >= 1.0 {
                (0.99, 1.01)
            } else {
                (ratio, ratio + 0.06)
            };
            assert!((low..=high).contains(&got), "ratio {ratio}: got {got}");
        }
    }

    #[test]
    fn a_bad_compression_ratio_is_refused() {
        for ratio in [0.0, -1.0, 0.005, 1.5, f64::NAN] {
            let spec = ValueSpec {
                compression_ratio: ratio,
                ..ValueSpec::fixed(8)
            };
            assert!(spec.check().is_err(), "{ratio}");
        }
        assert!(ValueSpec::fixed(8).check().is_ok());
        let empty = ValueSpec {
            sizes: ValueSizes::Uniform { min: 9, max: 3 },
            ..ValueSpec::fixed(8)
        };
        assert!(empty.check().is_err());
    }
}

//! Synthetic workloads, as streams of [`Request`]s like a trace.

use rand::SeedableRng;
use rand::rngs::StdRng;
use rand_distr::{Distribution, Zipf};

use crate::trace::Request;

/// `requests` draws of a Zipf(`s`) distribution over `keys` object ids (rank 1 is the most
/// popular; ids are ranks - 1), each of `value_size` bytes. Seeded: the same arguments give the
/// same stream.
///
/// # Errors
///
/// If `keys` is 0 or `s` is negative or not finite.
pub fn zipf(
    keys: u64,
    s: f64,
    requests: u64,
    value_size: u32,
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
        Request {
            key: rank - 1,
            size: Some(value_size),
        }
    }))
}

//! Choosing the next token from processed scores: greedy (argmax) or multinomial sampling
//! with a seeded random number generator.
//!
//! Sampling draws from ChaCha8 streams, one per batch row (stream `r` for row `r`), seeded
//! with `GenerationConfig::seed`: the same seed gives the same tokens on every platform, and
//! row 0 of a batch gets the tokens it would get alone. The draws cannot match
//! `torch.multinomial` under `torch.manual_seed`: torch's generator is a different algorithm.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use autocandle_core::{Error, Result};

use super::logits::{argmax, softmax};

/// How the next token is chosen.
#[derive(Debug, Clone)]
pub(crate) enum TokenSelector {
    Greedy,
    Sample(Vec<ChaCha8Rng>),
}

impl TokenSelector {
    /// Sampling for `rows` rows with `seed`, or a fresh random seed.
    pub fn sampling(rows: usize, seed: Option<u64>) -> Self {
        let seed = seed.unwrap_or_else(|| rand::rng().random());
        let rngs = (0..rows)
            .map(|row| {
                let mut rng = ChaCha8Rng::seed_from_u64(seed);
                rng.set_stream(row as u64);
                rng
            })
            .collect();
        TokenSelector::Sample(rngs)
    }

    /// The next token of `row` from its processed scores.
    pub fn select(&mut self, row: usize, scores: &[f32]) -> Result<u32> {
        match self {
            TokenSelector::Greedy => Ok(argmax(scores) as u32),
            TokenSelector::Sample(rngs) => {
                let rng = rngs.get_mut(row).ok_or_else(|| Error::input(format!("no sampler for batch row {row}")))?;
                sample(&softmax(scores), rng).map(|i| i as u32)
            }
        }
    }
}

/// Draw an index with probability `probs[i]` (`torch.multinomial(probs, 1)`).
pub(crate) fn sample(probs: &[f32], rng: &mut impl Rng) -> Result<usize> {
    let total: f64 = probs.iter().map(|&p| f64::from(p)).sum();
    if !(total > 0.0 && total.is_finite()) || probs.iter().any(|p| p.is_nan() || *p < 0.0) {
        return Err(Error::input(
            "every token was filtered out or the scores hold NaN/inf: no token can be sampled; \
             loosen top_k/top_p/min_p or check the model's logits",
        ));
    }
    let target = rng.random::<f64>() * total;
    let mut cum = 0f64;
    let mut last_possible = 0;
    for (i, &p) in probs.iter().enumerate() {
        if p > 0.0 {
            cum += f64::from(p);
            last_possible = i;
            if target < cum {
                return Ok(i);
            }
        }
    }
    Ok(last_possible)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sampling_follows_the_probabilities() {
        let mut rng = ChaCha8Rng::seed_from_u64(0);
        let probs = [0.0, 0.25, 0.0, 0.75];
        let mut counts = [0usize; 4];
        for _ in 0..4000 {
            counts[sample(&probs, &mut rng).unwrap()] += 1;
        }
        assert_eq!((counts[0], counts[2]), (0, 0));
        assert!((850..1150).contains(&counts[1]), "{counts:?}");
    }

    #[test]
    fn nothing_to_sample_is_an_error() {
        let mut rng = ChaCha8Rng::seed_from_u64(0);
        assert!(sample(&[f32::NAN, f32::NAN], &mut rng).is_err());
        assert!(sample(&[0.0, 0.0], &mut rng).is_err());
    }
}

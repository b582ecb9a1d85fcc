//! Sampling-rate conversion: a polyphase windowed-sinc resampler with libswresample's defaults.

use autocandle_core::{Error, Result};

/// The lowest sampling rate autocandle accepts, in Hz.
pub const MIN_SAMPLING_RATE: u32 = 1_000;
/// The highest sampling rate autocandle accepts, in Hz.
pub const MAX_SAMPLING_RATE: u32 = 768_000;

/// An error unless `rate` lies in [`MIN_SAMPLING_RATE`]..=[`MAX_SAMPLING_RATE`].
pub(crate) fn check_rate(rate: u32, what: &str) -> Result<()> {
    if !(MIN_SAMPLING_RATE..=MAX_SAMPLING_RATE).contains(&rate) {
        return Err(Error::input(format!(
            "{what}: a sampling rate of {rate} Hz is not supported: give one from {MIN_SAMPLING_RATE} to \
             {MAX_SAMPLING_RATE} Hz"
        )));
    }
    Ok(())
}

/// Taps of the filter at a 1:1 ratio (ffmpeg's `filter_size`); downsampling widens it.
const FILTER_SIZE: f64 = 32.0;
/// The cutoff relative to the lower Nyquist frequency (ffmpeg's `cutoff`).
const CUTOFF: f64 = 0.97;
/// The Kaiser window's beta (ffmpeg's `kaiser_beta`).
const KAISER_BETA: f64 = 9.0;
/// The most filter phases kept in the table (rates with a large reduced ratio share phases).
const MAX_PHASES: u64 = 8192;
/// The most weights in the phase table.
const MAX_TABLE: usize = 1 << 22;

/// Resample mono `samples` from `from` Hz to `to` Hz.
///
/// A polyphase windowed-sinc filter with ffmpeg's (libswresample's) defaults: 32 taps at 1:1
/// (widened by the ratio when downsampling), cutoff 0.97 of the lower Nyquist frequency, a
/// Kaiser window with beta 9, each phase normalised to unit gain. The output has
/// `ceil(len * to / from)` samples aligned with the input (sample `j` sits at input time
/// `j * from / to`), like `ffmpeg -ar`; equal rates return the samples unchanged.
pub fn resample(samples: &[f32], from: u32, to: u32) -> Result<Vec<f32>> {
    check_rate(from, "the input")?;
    check_rate(to, "the output")?;
    if let Some(i) = samples.iter().position(|x| !x.is_finite()) {
        return Err(Error::input(format!(
            "cannot resample: sample {i} is {} (not a finite number); clean the audio first",
            samples[i]
        )));
    }
    if from == to || samples.is_empty() {
        return Ok(samples.to_vec());
    }
    let (from64, to64) = (u64::from(from), u64::from(to));
    let out_len = (samples.len() as u64 * to64).div_ceil(from64) as usize;
    let g = gcd(from64, to64);
    // Input step per output sample: `from / to` = `whole + num / den`.
    let (num_total, den) = (from64 / g, to64 / g);
    let scale = (f64::from(to) / f64::from(from)).min(1.0);
    let fc = CUTOFF * scale; // cutoff in cycles per input sample, times 2
    let half = (FILTER_SIZE / 2.0 / scale).ceil() as i64; // taps each side
    let taps = (2 * half) as usize;
    // At most MAX_TABLE weights (16 MiB), whatever the rates.
    let phases = den.min(MAX_PHASES).min((MAX_TABLE / taps).max(1) as u64) as usize;
    // table[p][t]: weight of input sample `base - half + 1 + t` for fractional position p / phases.
    let i0_beta = bessel_i0(KAISER_BETA);
    let mut table = vec![0f32; phases * taps];
    for p in 0..phases {
        let frac = p as f64 / phases as f64;
        let row = &mut table[p * taps..(p + 1) * taps];
        let mut sum = 0.0;
        let mut weights = vec![0f64; taps];
        for (t, w) in weights.iter_mut().enumerate() {
            let u = (t as i64 - half + 1) as f64 - frac; // distance from the output position
            let x = u / half as f64;
            let window = if x.abs() >= 1.0 { 0.0 } else { bessel_i0(KAISER_BETA * (1.0 - x * x).sqrt()) / i0_beta };
            *w = sinc(fc * u) * window;
            sum += *w;
        }
        for (dst, w) in row.iter_mut().zip(&weights) {
            *dst = (w / sum) as f32;
        }
    }
    let n = samples.len() as i64;
    let mut out = Vec::with_capacity(out_len);
    for j in 0..out_len as u64 {
        // Exact position: j * from / to = base + rem / den.
        let pos = j * num_total;
        let base = (pos / den) as i64;
        let rem = pos % den;
        let p = ((rem * phases as u64 + den / 2) / den) as usize;
        let (base, p) = if p == phases { (base + 1, 0) } else { (base, p) };
        let row = &table[p * taps..(p + 1) * taps];
        let start = base - half + 1;
        let acc = if start >= 0 && start + taps as i64 <= n {
            let window = &samples[start as usize..start as usize + taps];
            row.iter().zip(window).map(|(w, x)| w * x).sum::<f32>()
        } else {
            (0..taps as i64)
                .filter(|&t| (0..n).contains(&(start + t)))
                .map(|t| row[t as usize] * samples[(start + t) as usize])
                .sum()
        };
        out.push(acc);
    }
    Ok(out)
}

fn gcd(a: u64, b: u64) -> u64 {
    if b == 0 {
        a
    } else {
        gcd(b, a % b)
    }
}

/// `sin(pi x) / (pi x)` scaled to the cutoff: the ideal low-pass at `fc` (of Nyquist).
fn sinc(x: f64) -> f64 {
    if x == 0.0 {
        1.0
    } else {
        let px = std::f64::consts::PI * x;
        px.sin() / px
    }
}

/// The modified Bessel function of the first kind, order 0 (series).
fn bessel_i0(x: f64) -> f64 {
    let (mut sum, mut term, q) = (1.0, 1.0, x * x / 4.0);
    for k in 1..64 {
        term *= q / (k * k) as f64;
        sum += term;
        if term < sum * 1e-17 {
            break;
        }
    }
    sum
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_length_and_sine() {
        let from = 44_100;
        let to = 16_000;
        let x: Vec<f32> =
            (0..44_100).map(|i| (2.0 * std::f32::consts::PI * 440.0 * i as f32 / from as f32).sin()).collect();
        let y = resample(&x, from, to).unwrap();
        assert_eq!(y.len(), 16_000);
        let err = (100..15_900)
            .map(|i| (y[i] - (2.0 * std::f32::consts::PI * 440.0 * i as f32 / to as f32).sin()).abs())
            .fold(0.0f32, f32::max);
        assert!(err < 1e-3, "{err}");
    }

    #[test]
    fn rejects_bad_rates_and_nan() {
        assert!(resample(&[0.0; 10], 0, 16_000).unwrap_err().to_string().contains("0 Hz"));
        assert!(resample(&[0.0; 10], 16_000, 10_000_000).is_err());
        assert!(resample(&[0.0, f32::NAN], 8_000, 16_000).unwrap_err().to_string().contains("NaN"));
        assert_eq!(resample(&[0.5; 3], 16_000, 16_000).unwrap(), vec![0.5; 3]);
    }
}

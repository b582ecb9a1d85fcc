//! Sampling-rate conversion with rubato's synchronous FFT resampler (band-limited, exact ratio).

use rubato::{FftFixedIn, Resampler};

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

/// Resample mono `samples` from `from` Hz to `to` Hz.
///
/// The output has `ceil(len * to / from)` samples, aligned with the input (the resampler's
/// delay is removed), like `ffmpeg -ar`; equal rates return the samples unchanged. Rubato's
/// FFT resampler filters out what lies above the lower Nyquist frequency.
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
    let out_len = (samples.len() as u64 * u64::from(to)).div_ceil(u64::from(from)) as usize;
    let failed = |e: &dyn std::fmt::Display| Error::input(format!("cannot resample from {from} to {to} Hz: {e}"));
    let mut resampler = FftFixedIn::<f32>::new(from as usize, to as usize, 1024, 1, 1).map_err(|e| failed(&e))?;
    let delay = resampler.output_delay();
    let mut out = Vec::with_capacity(out_len + delay + resampler.output_frames_max());
    let mut buffer = resampler.output_buffer_allocate(true);
    let mut pos = 0;
    while out.len() < out_len + delay {
        let need = resampler.input_frames_next();
        let (_, written) = if pos + need <= samples.len() {
            resampler.process_into_buffer(&[&samples[pos..pos + need]], &mut buffer, None)
        } else if pos < samples.len() {
            resampler.process_partial_into_buffer(Some(&[&samples[pos..]]), &mut buffer, None)
        } else {
            resampler.process_partial_into_buffer(None::<&[&[f32]]>, &mut buffer, None)
        }
        .map_err(|e| failed(&e))?;
        pos += need;
        out.extend_from_slice(&buffer[0][..written]);
    }
    out.drain(..delay);
    out.truncate(out_len);
    Ok(out)
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

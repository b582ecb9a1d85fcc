//! `WhisperFeatureExtractor`: log-mel spectrograms as `transformers`' numpy implementation
//! computes them (`audio_utils.spectrogram` with a periodic Hann window, centred reflect
//! padding, power 2, Slaney mel filters, log10, 8.0 dynamic range, `(x + 4) / 4`).

use std::fmt;
use std::sync::Arc;

use candle_core::{Device, Tensor};
use realfft::num_complex::Complex;
use realfft::{RealFftPlanner, RealToComplex};
use serde::{Deserialize, Serialize};

use autocandle_core::{Error, Result};

use super::{check_batch, mask_tensor, normalize, plan_padding, AudioFeatureOptions, AudioFeatures, AudioPadding};

const CLASS: &str = "WhisperFeatureExtractor";

/// `preprocessor_config.json` of a `WhisperFeatureExtractor`, with `transformers`' defaults
/// (those of `openai/whisper-tiny`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct WhisperFeatureExtractorConfig {
    /// Mel bins (`num_mel_bins` of the model): 80, or 128 for large-v3.
    pub feature_size: usize,
    /// Expected sampling rate in Hz.
    pub sampling_rate: u32,
    /// Samples between STFT frames.
    pub hop_length: usize,
    /// Seconds per input window (`n_samples = chunk_length * sampling_rate`).
    pub chunk_length: usize,
    /// FFT size (and window length).
    pub n_fft: usize,
    /// The sample value padding is filled with.
    pub padding_value: f32,
    /// Standard deviation of Gaussian noise added to each frame before the window (0: none).
    pub dither: f32,
    /// Whether calls return the attention mask by default.
    pub return_attention_mask: bool,
    /// Where padding goes; only `"right"` is supported.
    pub padding_side: String,
}

impl Default for WhisperFeatureExtractorConfig {
    fn default() -> Self {
        Self {
            feature_size: 80,
            sampling_rate: 16_000,
            hop_length: 160,
            chunk_length: 30,
            n_fft: 400,
            padding_value: 0.0,
            dither: 0.0,
            return_attention_mask: false,
            padding_side: "right".to_owned(),
        }
    }
}

/// One mel filter's non-zero weights, starting at FFT bin `start`.
#[derive(Debug, Clone)]
struct SparseFilter {
    start: usize,
    weights: Vec<f64>,
}

/// A planned real FFT (shared, immutable).
#[derive(Clone)]
struct FftPlan(Arc<dyn RealToComplex<f64>>);

impl fmt::Debug for FftPlan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "FftPlan({})", self.0.len())
    }
}

/// `transformers`' `WhisperFeatureExtractor`: audio to `input_features` `[batch, mel, frames]`.
#[derive(Debug, Clone)]
pub struct WhisperFeatureExtractor {
    config: WhisperFeatureExtractorConfig,
    window: Vec<f64>,
    filters: Vec<SparseFilter>,
    fft: FftPlan,
}

/// The longest input window, in seconds, that a config may ask for (each is padded to it).
const MAX_CHUNK_LENGTH: usize = 3600;

impl WhisperFeatureExtractor {
    /// Build the extractor (window, mel filters, FFT plan) from its config; errors name what is
    /// wrong with the config.
    pub fn new(config: WhisperFeatureExtractorConfig) -> Result<Self> {
        let bad = |m: String| Err(Error::config(CLASS, m));
        if config.n_fft < 2 || config.n_fft > 65_536 {
            return bad(format!("`n_fft` is {}: give a value from 2 to 65536 (Whisper uses 400)", config.n_fft));
        }
        if config.hop_length == 0 {
            return bad("`hop_length` is 0: give a positive hop (Whisper uses 160)".to_owned());
        }
        if config.feature_size == 0 || config.feature_size > 1024 {
            return bad(format!("`feature_size` is {}: give 1 to 1024 mel bins (80 or 128)", config.feature_size));
        }
        if config.chunk_length == 0 {
            return bad("`chunk_length` is 0: give the window length in seconds (Whisper uses 30)".to_owned());
        }
        super::resample::check_rate(config.sampling_rate, "`sampling_rate` of the feature extractor")?;
        // The window is padded to `chunk_length` seconds before anything else: bound it.
        if config.chunk_length > MAX_CHUNK_LENGTH {
            return bad(format!(
                "`chunk_length` is {} seconds, more than autocandle's limit of {MAX_CHUNK_LENGTH} (Whisper uses 30)",
                config.chunk_length
            ));
        }
        if config.padding_side != "right" {
            return bad(format!("`padding_side` is `{}`: only `right` is supported", config.padding_side));
        }
        if !config.dither.is_finite() || config.dither < 0.0 {
            return bad(format!("`dither` is {}: give 0 (no noise) or a small positive value", config.dither));
        }
        let n_fft = config.n_fft;
        // np.hanning(n + 1)[:-1]: the periodic Hann window.
        let window =
            (0..n_fft).map(|i| 0.5 - 0.5 * (2.0 * std::f64::consts::PI * i as f64 / n_fft as f64).cos()).collect();
        let bank = mel_filter_bank(1 + n_fft / 2, config.feature_size, 0.0, 8000.0, config.sampling_rate);
        let filters = (0..config.feature_size)
            .map(|m| {
                let nonzero: Vec<usize> = (0..bank.len()).filter(|&k| bank[k][m] != 0.0).collect();
                match (nonzero.first(), nonzero.last()) {
                    (Some(&a), Some(&b)) => SparseFilter { start: a, weights: (a..=b).map(|k| bank[k][m]).collect() },
                    _ => SparseFilter { start: 0, weights: Vec::new() },
                }
            })
            .collect();
        let fft = FftPlan(RealFftPlanner::<f64>::new().plan_fft_forward(n_fft));
        Ok(Self { config, window, filters, fft })
    }

    /// The config.
    pub fn config(&self) -> &WhisperFeatureExtractorConfig {
        &self.config
    }

    /// Samples per input window: `chunk_length * sampling_rate` (480000).
    pub fn n_samples(&self) -> usize {
        self.config.chunk_length * self.config.sampling_rate as usize
    }

    /// Frames per input window: `n_samples / hop_length` (3000).
    pub fn nb_max_frames(&self) -> usize {
        self.n_samples() / self.config.hop_length
    }

    /// `feature_extractor(audio, sampling_rate=..., ...)`: pad or truncate each clip (to 30 s
    /// by default) and compute its log-mel spectrogram.
    ///
    /// The attention mask, when asked for (or when the config's `return_attention_mask` is set),
    /// is the frame-level one (`transformers` rescales the sample mask by `hop_length` when the
    /// call asks for it).
    pub fn extract(&self, audio: &[&[f32]], opts: &AudioFeatureOptions) -> Result<AudioFeatures> {
        check_batch(audio, opts, self.config.sampling_rate, CLASS)?;
        let padding = match opts.padding {
            AudioPadding::ExtractorDefault => AudioPadding::MaxLength,
            p => p,
        };
        let max_length = Some(opts.max_length.unwrap_or(self.n_samples()));
        let truncation = opts.truncation.unwrap_or(true);
        let plan = plan_padding(audio, padding, max_length, truncation, opts.pad_to_multiple_of, CLASS)?;
        let (len, n_fft, hop, mels) =
            (plan.target, self.config.n_fft, self.config.hop_length, self.config.feature_size);
        let pad = n_fft / 2;
        let padded_len = len + 2 * pad;
        if padded_len < n_fft + hop {
            return Err(Error::input(format!(
                "{CLASS}: {len} samples make no frame (n_fft {n_fft}, hop {hop}): give a longer clip or pad it"
            )));
        }
        let frames = (padded_len - n_fft) / hop; // 1 + (padded - n_fft) / hop, less the dropped last frame
        let do_normalize = opts.do_normalize.unwrap_or(false);
        let mut out = vec![0f32; audio.len() * mels * frames];
        // One clip per task; a batch spreads over the cores (each worker reuses its buffers), a
        // single clip splits its frames over them.
        let cores = std::thread::available_parallelism().map_or(1, usize::from);
        let threads_per_clip = if audio.len() == 1 { cores } else { 1 };
        let run = |clips: &mut dyn Iterator<Item = (usize, &mut [f32])>| -> Result<()> {
            let mut work = Work::new(&self.fft, n_fft, padded_len);
            let mut samples = vec![0f32; len];
            for (b, out) in clips {
                let real = plan.lengths[b];
                samples[..real].copy_from_slice(&audio[b][..real]);
                samples[real..].fill(self.config.padding_value);
                if do_normalize {
                    normalize(&mut samples, real, self.config.padding_value);
                }
                let mut noise = Noise::new(0x5eed_a11d ^ b as u64);
                self.log_mel(&samples, frames, threads_per_clip, &mut work, &mut noise, out)?;
            }
            Ok(())
        };
        let workers = cores.min(audio.len());
        if workers <= 1 {
            run(&mut out.chunks_mut(mels * frames).enumerate())?;
        } else {
            let per = audio.len().div_ceil(workers);
            std::thread::scope(|scope| {
                let handles: Vec<_> = out
                    .chunks_mut(mels * frames * per)
                    .enumerate()
                    .map(|(w, group)| {
                        let run = &run;
                        scope.spawn(move || {
                            run(&mut group.chunks_mut(mels * frames).enumerate().map(|(i, o)| (w * per + i, o)))
                        })
                    })
                    .collect();
                handles.into_iter().try_for_each(|h| {
                    h.join().map_err(|_| Error::input(format!("{CLASS}: a worker thread panicked")))?
                })
            })?;
        }
        let input_features = Tensor::from_vec(out, (audio.len(), mels, frames), &Device::Cpu)?;
        let attention_mask = if opts.return_attention_mask.unwrap_or(self.config.return_attention_mask) {
            Some(mask_tensor(&plan.lengths, frames, hop)?)
        } else {
            None
        };
        Ok(AudioFeatures { input_features: Some(input_features), input_values: None, attention_mask })
    }

    /// The log-mel spectrogram of one padded clip into `out` (`[mel, frames]`). With
    /// `threads` > 1 (a single clip, no dither) the frames are split over that many threads.
    fn log_mel(
        &self,
        samples: &[f32],
        frames: usize,
        threads: usize,
        work: &mut Work,
        noise: &mut Noise,
        out: &mut [f32],
    ) -> Result<()> {
        let (n_fft, mels) = (self.config.n_fft, self.config.feature_size);
        let pad = n_fft / 2;
        let n = samples.len() as i64;
        work.padded.clear();
        work.padded.extend((-(pad as i64)..n + pad as i64).map(|i| f64::from(samples[reflect(i, n)])));
        // Frame-major values `[frames, mel]`, transposed into `out` once the maximum is known.
        let mut values = vec![0f32; frames * mels];
        let threads = if self.config.dither != 0.0 { 1 } else { threads.clamp(1, frames.max(1)) };
        let mut max = f32::NEG_INFINITY;
        if threads == 1 {
            let padded = std::mem::take(&mut work.padded);
            let result = self.frame_values(&padded, 0, &mut work.fft, Some(noise), &mut values);
            work.padded = padded;
            max = result?;
        } else {
            let per = frames.div_ceil(threads);
            let padded = &work.padded;
            let maxima = std::thread::scope(|scope| {
                let handles: Vec<_> = values
                    .chunks_mut(per * mels)
                    .enumerate()
                    .map(|(i, chunk)| {
                        scope.spawn(move || {
                            let mut fft = FftWork::new(&self.fft, n_fft);
                            self.frame_values(padded, i * per, &mut fft, None, chunk)
                        })
                    })
                    .collect();
                handles
                    .into_iter()
                    .map(|h| h.join().map_err(|_| Error::input(format!("{CLASS}: a worker thread panicked")))?)
                    .collect::<Result<Vec<f32>>>()
            })?;
            for m in maxima {
                max = max.max(m);
            }
        }
        let floor = max - 8.0;
        for (f, row) in values.chunks(mels).enumerate() {
            for (m, &v) in row.iter().enumerate() {
                out[m * frames + f] = (v.max(floor) + 4.0) / 4.0;
            }
        }
        Ok(())
    }

    /// `log10` mel energies of the frames `first..first + dst.len() / mel` of `padded` into
    /// `dst` (`[frames, mel]`); returns their maximum. `noise` adds the dither.
    fn frame_values(
        &self,
        padded: &[f64],
        first: usize,
        fft: &mut FftWork,
        mut noise: Option<&mut Noise>,
        dst: &mut [f32],
    ) -> Result<f32> {
        let (n_fft, hop, mels) = (self.config.n_fft, self.config.hop_length, self.config.feature_size);
        let dither = f64::from(self.config.dither);
        let mut max = f32::NEG_INFINITY;
        for (i, row) in dst.chunks_mut(mels).enumerate() {
            let start = (first + i) * hop;
            let frame = padded
                .get(start..start + n_fft)
                .ok_or_else(|| Error::input(format!("{CLASS}: frame {} runs past the padded clip", first + i)))?;
            for ((dst, &x), &w) in fft.input.iter_mut().zip(frame).zip(&self.window) {
                let x = match noise.as_deref_mut() {
                    Some(noise) if dither != 0.0 => x + dither * noise.gaussian(),
                    _ => x,
                };
                *dst = x * w;
            }
            self.fft
                .0
                .process_with_scratch(&mut fft.input, &mut fft.spectrum, &mut fft.scratch)
                .map_err(|e| Error::input(format!("{CLASS}: FFT failed: {e}")))?;
            // numpy stores the FFT as complex64, then takes |.|^2 in f64.
            for (p, c) in fft.power.iter_mut().zip(&fft.spectrum) {
                let (re, im) = (f64::from(c.re as f32), f64::from(c.im as f32));
                *p = re * re + im * im;
            }
            for (v, filter) in row.iter_mut().zip(&self.filters) {
                let bins = &fft.power[filter.start..filter.start + filter.weights.len()];
                let energy: f64 = filter.weights.iter().zip(bins).map(|(w, p)| w * p).sum();
                *v = energy.max(1e-10).log10() as f32;
                max = max.max(*v);
            }
        }
        Ok(max)
    }
}

/// Buffers reused across clips: the padded clip and one thread's FFT buffers.
struct Work {
    padded: Vec<f64>,
    fft: FftWork,
}

impl Work {
    fn new(fft: &FftPlan, n_fft: usize, padded_len: usize) -> Self {
        Self { padded: Vec::with_capacity(padded_len), fft: FftWork::new(fft, n_fft) }
    }
}

/// One thread's FFT buffers, reused across frames.
struct FftWork {
    input: Vec<f64>,
    spectrum: Vec<Complex<f64>>,
    scratch: Vec<Complex<f64>>,
    power: Vec<f64>,
}

impl FftWork {
    fn new(fft: &FftPlan, n_fft: usize) -> Self {
        Self {
            input: fft.0.make_input_vec(),
            spectrum: fft.0.make_output_vec(),
            scratch: fft.0.make_scratch_vec(),
            power: vec![0.0; n_fft / 2 + 1],
        }
    }
}

/// numpy's `reflect` padding index: `[a b c d]` extends to `... c b | a b c d | c b a ...`.
fn reflect(i: i64, n: i64) -> usize {
    if n <= 1 {
        return 0;
    }
    let period = 2 * (n - 1);
    let m = i.rem_euclid(period);
    (if m >= n { period - m } else { m }) as usize
}

/// Gaussian noise for `dither` (xorshift64* with Box-Muller); `transformers` draws from numpy's
/// global generator, so dithered features match it only in distribution.
struct Noise(u64);

impl Noise {
    fn new(seed: u64) -> Self {
        Self(seed)
    }

    fn uniform(&mut self) -> f64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        let bits = self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 11;
        (bits as f64 + 0.5) / (1u64 << 53) as f64
    }

    fn gaussian(&mut self) -> f64 {
        let (u, v) = (self.uniform(), self.uniform());
        (-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos()
    }
}

fn hertz_to_mel(freq: f64) -> f64 {
    let (min_log_hertz, min_log_mel, logstep) = (1000.0, 15.0, 27.0 / 6.4f64.ln());
    if freq >= min_log_hertz {
        min_log_mel + (freq / min_log_hertz).ln() * logstep
    } else {
        3.0 * freq / 200.0
    }
}

fn mel_to_hertz(mels: f64) -> f64 {
    let (min_log_hertz, min_log_mel, logstep) = (1000.0, 15.0, 6.4f64.ln() / 27.0);
    if mels >= min_log_mel {
        min_log_hertz * (logstep * (mels - min_log_mel)).exp()
    } else {
        200.0 * mels / 3.0
    }
}

/// numpy's `linspace(start, stop, num)` (endpoint included).
fn linspace(start: f64, stop: f64, num: usize) -> Vec<f64> {
    if num == 1 {
        return vec![start];
    }
    let step = (stop - start) / (num - 1) as f64;
    let mut v: Vec<f64> = (0..num).map(|i| i as f64 * step + start).collect();
    if let Some(last) = v.last_mut() {
        *last = stop;
    }
    v
}

/// `transformers`' `mel_filter_bank(..., norm="slaney", mel_scale="slaney")`: triangular
/// filters, `[num_frequency_bins][num_mel_filters]`, each scaled to unit area (Slaney).
pub fn mel_filter_bank(
    num_frequency_bins: usize,
    num_mel_filters: usize,
    min_frequency: f64,
    max_frequency: f64,
    sampling_rate: u32,
) -> Vec<Vec<f64>> {
    let mel_freqs = linspace(hertz_to_mel(min_frequency), hertz_to_mel(max_frequency), num_mel_filters + 2);
    let filter_freqs: Vec<f64> = mel_freqs.iter().map(|&m| mel_to_hertz(m)).collect();
    let fft_freqs = linspace(0.0, f64::from(sampling_rate / 2), num_frequency_bins);
    let diff: Vec<f64> = filter_freqs.windows(2).map(|w| w[1] - w[0]).collect();
    fft_freqs
        .iter()
        .map(|&f| {
            (0..num_mel_filters)
                .map(|j| {
                    let down = -(filter_freqs[j] - f) / diff[j];
                    let up = (filter_freqs[j + 2] - f) / diff[j + 1];
                    let enorm = 2.0 / (filter_freqs[j + 2] - filter_freqs[j]);
                    0f64.max(down.min(up)) * enorm
                })
                .collect()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reflect_matches_numpy() {
        // np.pad([0, 1, 2, 3], 5, mode="reflect")
        let got: Vec<usize> = (-5..9).map(|i| reflect(i, 4)).collect();
        assert_eq!(got, vec![1, 2, 3, 2, 1, 0, 1, 2, 3, 2, 1, 0, 1, 2]);
    }

    #[test]
    fn a_single_clip_split_over_threads_equals_the_same_clip_in_a_batch() {
        let fe = WhisperFeatureExtractor::new(WhisperFeatureExtractorConfig::default()).unwrap();
        let clip: Vec<f32> = (0..48_000).map(|i| ((i as f32) * 0.013).sin() * (1.0 + (i % 97) as f32 / 97.0)).collect();
        let quiet = vec![0.01f32; 48_000];
        let opts = AudioFeatureOptions::default();
        let alone = fe.extract(&[&clip], &opts).unwrap().input_features.unwrap();
        let batch = fe.extract(&[&clip, &quiet], &opts).unwrap().input_features.unwrap();
        let alone: Vec<f32> = alone.flatten_all().unwrap().to_vec1().unwrap();
        let first: Vec<f32> = batch.get(0).unwrap().flatten_all().unwrap().to_vec1().unwrap();
        assert_eq!(alone, first);
    }

    #[test]
    fn shape_of_default_config() {
        let fe = WhisperFeatureExtractor::new(WhisperFeatureExtractorConfig::default()).unwrap();
        let clip = vec![0.1f32; 16_000];
        let out = fe.extract(&[&clip], &AudioFeatureOptions::default()).unwrap();
        assert_eq!(out.input_features.unwrap().dims(), &[1, 80, 3000]);
        assert!(out.attention_mask.is_none());
    }

    #[test]
    fn bad_configs_and_inputs() {
        let cfg = |f: fn(&mut WhisperFeatureExtractorConfig)| {
            let mut c = WhisperFeatureExtractorConfig::default();
            f(&mut c);
            WhisperFeatureExtractor::new(c).unwrap_err().to_string()
        };
        assert!(cfg(|c| c.hop_length = 0).contains("hop_length"));
        assert!(cfg(|c| c.sampling_rate = 0).contains("0 Hz"));
        assert!(cfg(|c| c.n_fft = 0).contains("n_fft"));
        let fe = WhisperFeatureExtractor::new(WhisperFeatureExtractorConfig::default()).unwrap();
        let opts = AudioFeatureOptions::default();
        assert!(fe.extract(&[], &opts).unwrap_err().to_string().contains("empty"));
        assert!(fe.extract(&[&[]], &opts).unwrap_err().to_string().contains("empty"));
        assert!(fe.extract(&[&[0.0, f32::NAN]], &opts).unwrap_err().to_string().contains("NaN"));
        let wrong_rate = AudioFeatureOptions::default().sampling_rate(44_100);
        assert!(fe.extract(&[&[0.0; 100]], &wrong_rate).unwrap_err().to_string().contains("44100 Hz"));
    }
}

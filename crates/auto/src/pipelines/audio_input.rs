//! What the audio pipelines take: an audio file (decoded, mixed to mono and resampled to the
//! feature extractor's rate, as `transformers`' `ffmpeg_read` does), or mono samples at a
//! given rate (resampled like the `{"raw", "sampling_rate"}` dict input).

use std::path::{Path, PathBuf};

use autocandle_core::{Error, Result};

use crate::audio::{load_audio, resample};

/// Audio for [`AudioClassificationPipeline`](super::AudioClassificationPipeline) and
/// [`AutomaticSpeechRecognitionPipeline`](super::AutomaticSpeechRecognitionPipeline).
///
/// ```
/// use autocandle::pipelines::AudioInput;
/// let file = AudioInput::from("clip.flac");
/// let raw = AudioInput::samples(vec![0.0; 8000], 8000);
/// # let _ = (file, raw);
/// ```
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum AudioInput {
    /// An audio file (WAV, FLAC, MP3, Ogg Vorbis): decoded, mixed to mono and resampled to
    /// the feature extractor's rate.
    File(PathBuf),
    /// Mono samples at `sampling_rate` Hz, resampled to the feature extractor's rate when
    /// they differ.
    Samples {
        /// The waveform, one channel, in [-1, 1].
        samples: Vec<f32>,
        /// Its rate in Hz.
        sampling_rate: u32,
    },
}

impl AudioInput {
    /// Mono `samples` at `sampling_rate` Hz.
    pub fn samples(samples: Vec<f32>, sampling_rate: u32) -> Self {
        Self::Samples { samples, sampling_rate }
    }

    /// The file's path, or `None` for samples.
    pub fn path(&self) -> Option<&Path> {
        match self {
            Self::File(path) => Some(path),
            Self::Samples { .. } => None,
        }
    }

    /// The mono waveform at `sampling_rate` Hz: decoded (a file) or resampled (samples), and
    /// checked: not empty, every sample finite.
    pub fn load(&self, sampling_rate: u32) -> Result<Vec<f32>> {
        let samples = match self {
            Self::File(path) => load_audio(path, sampling_rate)?,
            Self::Samples { samples, sampling_rate: rate } => {
                if *rate == 0 {
                    return Err(Error::input(
                        "the audio's sampling rate is 0 Hz: give the rate the samples were taken at",
                    ));
                }
                check_samples(samples)?;
                if *rate == sampling_rate {
                    samples.clone()
                } else {
                    resample(samples, *rate, sampling_rate)?
                }
            }
        };
        check_samples(&samples)?;
        Ok(samples)
    }
}

/// Empty audio and NaN or infinite samples are refused with a clear error.
fn check_samples(samples: &[f32]) -> Result<()> {
    if samples.is_empty() {
        return Err(Error::input("the audio is empty (no samples): give a clip with sound in it"));
    }
    if let Some(i) = samples.iter().position(|s| !s.is_finite()) {
        return Err(Error::input(format!(
            "the audio has a NaN or infinite sample (at index {i}): give finite samples, normally in [-1, 1]"
        )));
    }
    Ok(())
}

impl From<&str> for AudioInput {
    fn from(path: &str) -> Self {
        Self::File(PathBuf::from(path))
    }
}

impl From<String> for AudioInput {
    fn from(path: String) -> Self {
        Self::File(PathBuf::from(path))
    }
}

impl From<&Path> for AudioInput {
    fn from(path: &Path) -> Self {
        Self::File(path.to_path_buf())
    }
}

impl From<PathBuf> for AudioInput {
    fn from(path: PathBuf) -> Self {
        Self::File(path)
    }
}

impl From<&PathBuf> for AudioInput {
    fn from(path: &PathBuf) -> Self {
        Self::File(path.clone())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn bad_samples_are_clear_errors() {
        let empty = AudioInput::samples(vec![], 16000).load(16000).unwrap_err().to_string();
        assert!(empty.contains("empty"), "{empty}");
        let nan = AudioInput::samples(vec![0.0, f32::NAN], 16000).load(16000).unwrap_err().to_string();
        assert!(nan.contains("NaN") && nan.contains("index 1"), "{nan}");
        let zero = AudioInput::samples(vec![0.0; 4], 0).load(16000).unwrap_err().to_string();
        assert!(zero.contains("0 Hz"), "{zero}");
        assert_eq!(AudioInput::samples(vec![0.5; 4], 16000).load(16000).unwrap(), vec![0.5; 4]);
        assert_eq!(AudioInput::from("a.wav").path(), Some(Path::new("a.wav")));
    }
}

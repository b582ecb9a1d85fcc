//! `Wav2Vec2FeatureExtractor`: raw samples, padded and (optionally) normalised per clip, as
//! `transformers` computes them for wav2vec2, HuBERT, WavLM, data2vec-audio, ...

use candle_core::{Device, Tensor};
use serde::{Deserialize, Serialize};

use autocandle_core::{Error, Result};

use super::{check_batch, mask_tensor, normalize, plan_padding, AudioFeatureOptions, AudioFeatures, AudioPadding};

const CLASS: &str = "Wav2Vec2FeatureExtractor";

/// `preprocessor_config.json` of a `Wav2Vec2FeatureExtractor`, with `transformers`' defaults.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Wav2Vec2FeatureExtractorConfig {
    /// Values per sample (1: mono samples).
    pub feature_size: usize,
    /// Expected sampling rate in Hz.
    pub sampling_rate: u32,
    /// The value padding is filled with.
    pub padding_value: f32,
    /// Whether calls return the attention mask by default (true for models trained with one,
    /// like wav2vec2-large-lv60 or WavLM).
    pub return_attention_mask: bool,
    /// Zero-mean unit-variance normalisation of each clip.
    pub do_normalize: bool,
    /// Where padding goes; only `"right"` is supported.
    pub padding_side: String,
}

impl Default for Wav2Vec2FeatureExtractorConfig {
    fn default() -> Self {
        Self {
            feature_size: 1,
            sampling_rate: 16_000,
            padding_value: 0.0,
            return_attention_mask: false,
            do_normalize: true,
            padding_side: "right".to_owned(),
        }
    }
}

/// `transformers`' `Wav2Vec2FeatureExtractor`: audio to `input_values` `[batch, samples]`.
#[derive(Debug, Clone)]
pub struct Wav2Vec2FeatureExtractor {
    config: Wav2Vec2FeatureExtractorConfig,
}

impl Wav2Vec2FeatureExtractor {
    /// Build the extractor from its config; errors name what is wrong with the config.
    pub fn new(config: Wav2Vec2FeatureExtractorConfig) -> Result<Self> {
        if config.feature_size != 1 {
            return Err(Error::config(
                CLASS,
                format!("`feature_size` is {}: only mono samples (1) are supported", config.feature_size),
            ));
        }
        if config.padding_side != "right" {
            return Err(Error::config(
                CLASS,
                format!("`padding_side` is `{}`: only `right` is supported", config.padding_side),
            ));
        }
        super::resample::check_rate(config.sampling_rate, "`sampling_rate` of the feature extractor")?;
        Ok(Self { config })
    }

    /// The config.
    pub fn config(&self) -> &Wav2Vec2FeatureExtractorConfig {
        &self.config
    }

    /// `feature_extractor(audio, sampling_rate=..., padding=..., ...)`.
    ///
    /// As in `transformers`, normalisation uses each clip's real samples only when there is an
    /// attention mask (`return_attention_mask`) and padding; without one, a padded clip is
    /// normalised over its padding too. The default padding (`padding=False` in `transformers`)
    /// pads a batch of unequal clips to the longest, since the result is one tensor.
    pub fn extract(&self, audio: &[&[f32]], opts: &AudioFeatureOptions) -> Result<AudioFeatures> {
        check_batch(audio, opts, self.config.sampling_rate, CLASS)?;
        let truncation = opts.truncation.unwrap_or(false);
        let plan = plan_padding(audio, opts.padding, opts.max_length, truncation, opts.pad_to_multiple_of, CLASS)?;
        let return_mask = opts.return_attention_mask.unwrap_or(self.config.return_attention_mask);
        let do_normalize = opts.do_normalize.unwrap_or(self.config.do_normalize);
        let padded = opts.padding != AudioPadding::DoNotPad;
        let len = plan.target;
        let mut out = vec![self.config.padding_value; audio.len() * len];
        for (b, clip) in audio.iter().enumerate() {
            let real = plan.lengths[b];
            let row = &mut out[b * len..(b + 1) * len];
            row[..real].copy_from_slice(&clip[..real]);
            if do_normalize {
                let stats_len = if return_mask && padded { real } else { len };
                normalize(row, stats_len, self.config.padding_value);
            }
        }
        let input_values = Tensor::from_vec(out, (audio.len(), len), &Device::Cpu)?;
        let attention_mask = if return_mask { Some(mask_tensor(&plan.lengths, len, 1)?) } else { None };
        Ok(AudioFeatures { input_features: None, input_values: Some(input_values), attention_mask })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalises_over_real_samples_with_a_mask() {
        let fe = Wav2Vec2FeatureExtractor::new(Wav2Vec2FeatureExtractorConfig {
            return_attention_mask: true,
            ..Default::default()
        })
        .unwrap();
        let (a, b) = ([1.0f32, 2.0, 3.0, 4.0], [1.0f32, 3.0]);
        let out = fe.extract(&[&a, &b], &AudioFeatureOptions::default().padding(AudioPadding::Longest)).unwrap();
        let v: Vec<Vec<f32>> = out.input_values.unwrap().to_vec2().unwrap();
        assert!((v[1][0] + 1.0).abs() < 1e-6 && (v[1][1] - 1.0).abs() < 1e-6 && v[1][2] == 0.0);
        let m: Vec<Vec<u32>> = out.attention_mask.unwrap().to_vec2().unwrap();
        assert_eq!(m[1], vec![1, 1, 0, 0]);
    }

    #[test]
    fn unequal_clips_without_padding_fail() {
        let fe = Wav2Vec2FeatureExtractor::new(Wav2Vec2FeatureExtractorConfig::default()).unwrap();
        let err = fe.extract(&[&[0.0; 3], &[0.0; 2]], &AudioFeatureOptions::default().padding(AudioPadding::DoNotPad));
        assert!(err.unwrap_err().to_string().contains("different lengths"));
        let err = fe.extract(&[&[0.0; 3]], &AudioFeatureOptions::default().padding(AudioPadding::MaxLength));
        assert!(err.unwrap_err().to_string().contains("max_length"));
    }
}

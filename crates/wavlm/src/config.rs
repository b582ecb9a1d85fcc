//! `WavLMConfig`, as `transformers`' `configuration_wavlm.WavLMConfig` (5.25): the
//! [`Wav2Vec2Config`] fields (WavLM has the same names and defaults) plus the relative position
//! buckets.

use autocandle_core::{AutoRegister, Error, Result};
use autocandle_wav2vec2::Wav2Vec2Config;
use serde::{Deserialize, Serialize};

/// The model type in error messages.
pub(crate) const MODEL_TYPE: &str = "wavlm";

/// The config of a WavLM model (`WavLMConfig`), with the `transformers` defaults (those of
/// microsoft/wavlm-base). A field `config.json` leaves out takes its default; fields used only
/// in training (dropouts, SpecAugment, the quantizer, the CTC loss settings) are ignored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, AutoRegister)]
#[auto(config, model_type = "wavlm")]
#[serde(default)]
pub struct WavLMConfig {
    /// Buckets of the relative position bias: half for keys after the query, half for keys
    /// at or before it; in each half, offsets below `num_buckets / 4` have a bucket each.
    pub num_buckets: usize,
    /// The offset (in frames) where the logarithmic buckets end: farther keys share the last bucket.
    pub max_bucket_distance: usize,
    /// The fields WavLM shares with wav2vec2 (sizes, convolutions, `do_stable_layer_norm`, the
    /// adapter, the heads' settings, labels).
    #[serde(flatten)]
    pub wav2vec2: Wav2Vec2Config,
}

impl Default for WavLMConfig {
    /// `WavLMConfig()` in `transformers`: the WavLM-Base shape.
    fn default() -> Self {
        Self { num_buckets: 320, max_bucket_distance: 800, wav2vec2: Wav2Vec2Config::default() }
    }
}

impl WavLMConfig {
    /// `num_buckets / 4`: offsets below this many frames have a bucket each.
    pub fn max_exact_distance(&self) -> usize {
        self.num_buckets / 4
    }

    /// Check what the network needs of the config: errors are `InvalidConfig` naming the
    /// field and what to change.
    pub fn validate(&self) -> Result<()> {
        self.wav2vec2.validate_as(MODEL_TYPE)?;
        let max_exact = self.max_exact_distance();
        if max_exact == 0 {
            return Err(Error::config(
                MODEL_TYPE,
                format!(
                    "`num_buckets` must be at least 4 (half the buckets for each direction, the first half of \
                     those one per offset), got {}",
                    self.num_buckets
                ),
            ));
        }
        if self.max_bucket_distance <= max_exact {
            return Err(Error::config(
                MODEL_TYPE,
                format!(
                    "`max_bucket_distance` ({}) must be larger than `num_buckets / 4` ({max_exact}), where the \
                     logarithmic buckets start",
                    self.max_bucket_distance
                ),
            ));
        }
        Ok(())
    }
}

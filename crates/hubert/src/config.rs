//! `HubertConfig`, as `transformers`' `configuration_hubert.HubertConfig` (5.25): the
//! [`Wav2Vec2Config`] fields (HuBERT has the same names and defaults) plus HuBERT's own.

use autocandle_core::{AutoRegister, Result};
use autocandle_wav2vec2::Wav2Vec2Config;
use serde::{Deserialize, Serialize};

/// The config of a HuBERT model (`HubertConfig`), with the `transformers` defaults (those of
/// facebook/hubert-base-ls960). A field `config.json` leaves out takes its default; fields
/// used only in training are ignored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, AutoRegister)]
#[auto(config, model_type = "hubert")]
#[serde(default)]
pub struct HubertConfig {
    /// Whether the feature projection normalises the features before projecting them.
    pub feat_proj_layer_norm: bool,
    /// `true`: the positional convolution is preceded by a batch norm and has no weight norm.
    pub conv_pos_batch_norm: bool,
    /// The fields HuBERT shares with wav2vec2 (sizes, convolutions, `do_stable_layer_norm`,
    /// the classifier's, labels); the x-vector and adapter fields are unused.
    #[serde(flatten)]
    pub wav2vec2: Wav2Vec2Config,
}

impl Default for HubertConfig {
    /// `HubertConfig()` in `transformers`.
    fn default() -> Self {
        Self { feat_proj_layer_norm: true, conv_pos_batch_norm: false, wav2vec2: Wav2Vec2Config::default() }
    }
}

impl HubertConfig {
    /// Check what the network needs of the config.
    pub fn validate(&self) -> Result<()> {
        self.wav2vec2.validate_as("hubert")
    }

    /// The [`Wav2Vec2Config`] the shared building blocks read (HuBERT has no adapter).
    pub fn to_wav2vec2(&self) -> Wav2Vec2Config {
        Wav2Vec2Config { add_adapter: false, ..self.wav2vec2.clone() }
    }
}

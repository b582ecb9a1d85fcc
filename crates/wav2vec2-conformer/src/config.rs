//! `Wav2Vec2ConformerConfig`, as `transformers`' `configuration_wav2vec2_conformer`
//! (5.25): the [`Wav2Vec2Config`] fields (same names and defaults) plus the conformer's own.

use autocandle_core::{AutoRegister, Error, Result};
use autocandle_wav2vec2::Wav2Vec2Config;
use serde::{Deserialize, Serialize};

/// The model type in error messages.
pub(crate) const MODEL_TYPE: &str = "wav2vec2-conformer";

/// How the self-attention knows positions (`position_embeddings_type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PositionEmbeddingsType {
    /// `relative`: Transformer-XL relative positions (`linear_pos`, `pos_bias_u`, `pos_bias_v`).
    Relative,
    /// `rotary`: rotary embeddings applied to the input of the query and key projections.
    Rotary,
    /// `null`: none.
    None,
}

/// The config of a Wav2Vec2-Conformer model (`Wav2Vec2ConformerConfig`), with the
/// `transformers` defaults. A field `config.json` leaves out takes its default; fields used
/// only in training are ignored. (`vocab_size`, `None` in `transformers`' defaults, takes
/// wav2vec2's 32 when `config.json` leaves it out.)
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, AutoRegister)]
#[auto(config, model_type = "wav2vec2-conformer")]
#[serde(default)]
pub struct Wav2Vec2ConformerConfig {
    /// `relative`, `rotary` or `null` (see [`PositionEmbeddingsType`]).
    pub position_embeddings_type: Option<String>,
    /// The base of the rotary embeddings' frequencies.
    pub rotary_embedding_base: f64,
    /// Positions the relative embeddings are made for at first (longer inputs extend them).
    pub max_source_positions: usize,
    /// Kernel size of the depthwise convolution of each conformer block (odd).
    pub conv_depthwise_kernel_size: usize,
    /// The fields the conformer shares with wav2vec2 (sizes, convolutions, the adapter, the
    /// heads' settings, labels).
    #[serde(flatten)]
    pub wav2vec2: Wav2Vec2Config,
}

impl Default for Wav2Vec2ConformerConfig {
    /// `Wav2Vec2ConformerConfig()` in `transformers`.
    fn default() -> Self {
        Self {
            position_embeddings_type: Some("relative".to_owned()),
            rotary_embedding_base: 10000.0,
            max_source_positions: 5000,
            conv_depthwise_kernel_size: 31,
            wav2vec2: Wav2Vec2Config::default(),
        }
    }
}

impl Wav2Vec2ConformerConfig {
    /// `position_embeddings_type`, checked.
    pub fn position_embeddings(&self) -> Result<PositionEmbeddingsType> {
        match self.position_embeddings_type.as_deref() {
            Some("relative") => Ok(PositionEmbeddingsType::Relative),
            Some("rotary") => Ok(PositionEmbeddingsType::Rotary),
            None => Ok(PositionEmbeddingsType::None),
            Some(other) => Err(Error::config(
                MODEL_TYPE,
                format!("`position_embeddings_type` is `{other}`, but has to be `relative`, `rotary` or null"),
            )),
        }
    }

    /// Check what the network needs of the config: errors are `InvalidConfig` naming the
    /// field and what to change.
    pub fn validate(&self) -> Result<()> {
        self.wav2vec2.validate_as(MODEL_TYPE)?;
        let kind = self.position_embeddings()?;
        let kernel = self.conv_depthwise_kernel_size;
        if kernel.is_multiple_of(2) {
            return Err(Error::config(
                MODEL_TYPE,
                format!("`conv_depthwise_kernel_size` must be odd for 'same' padding, got {kernel}"),
            ));
        }
        let head_dim = self.wav2vec2.head_dim();
        if kind == PositionEmbeddingsType::Rotary && !head_dim.is_multiple_of(2) {
            return Err(Error::config(
                MODEL_TYPE,
                format!("rotary position embeddings need an even head size, got {head_dim}"),
            ));
        }
        if kind == PositionEmbeddingsType::Relative && !self.wav2vec2.hidden_size.is_multiple_of(2) {
            return Err(Error::config(
                MODEL_TYPE,
                format!(
                    "relative position embeddings need an even `hidden_size` (sine and cosine pairs), got {}",
                    self.wav2vec2.hidden_size
                ),
            ));
        }
        if kind == PositionEmbeddingsType::Rotary
            && self.rotary_embedding_base.partial_cmp(&0.0) != Some(std::cmp::Ordering::Greater)
        {
            return Err(Error::config(
                MODEL_TYPE,
                format!("`rotary_embedding_base` must be positive, got {}", self.rotary_embedding_base),
            ));
        }
        Ok(())
    }
}

//! `SiglipTextConfig`, `SiglipVisionConfig` and `SiglipConfig`, field for field as
//! `transformers`' `configuration_siglip` (5.23).

use autocandle_clip::layers::check_sizes;
use autocandle_clip::{tower_config, validate_vision, TokenIds};
use autocandle_core::{Activation, AutoRegister, LabelConfig, Result};
use serde::{Deserialize, Serialize};

/// The config of SigLIP's text tower (`SiglipTextConfig`, model type `siglip_text_model`),
/// with the `transformers` defaults (those of google/siglip-base-patch16-224).
///
/// `transformers` has no Auto model class for `siglip_text_model`, so this config is not
/// registered; [`SiglipTextModel::from_pretrained`](crate::SiglipTextModel::from_pretrained)
/// reads it. Fields `config.json` may hold that `SiglipTextConfig` does not declare are ignored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct SiglipTextConfig {
    /// Number of tokens in the vocabulary: the rows of the token embedding `[vocab_size, hidden_size]`.
    pub vocab_size: usize,
    /// Width of the hidden states, `[batch, seq, hidden_size]`.
    pub hidden_size: usize,
    /// Width of the feed-forward (MLP) layer inside each block.
    pub intermediate_size: usize,
    /// Number of transformer blocks.
    pub num_hidden_layers: usize,
    /// Number of attention heads in each block (query heads where keys and values have fewer).
    pub num_attention_heads: usize,
    /// Longest sequence, in tokens, the model was trained for: the size of the position table, or the context of the rotary embedding.
    pub max_position_embeddings: usize,
    /// Activation of the feed-forward layer (`hidden_act`: `silu`, `gelu`, `gelu_pytorch_tanh`, ...).
    pub hidden_act: Activation,
    /// Epsilon added to the variance in every LayerNorm.
    pub layer_norm_eps: f64,
    /// Training only: dropout is a no-op here.
    pub attention_dropout: f64,
    /// Id of the padding token, if the vocabulary has one.
    pub pad_token_id: Option<i64>,
    /// Id of the beginning-of-sequence token, if any.
    pub bos_token_id: Option<i64>,
    /// Unused by the model: SigLIP pools the last position, whatever token it holds.
    pub eos_token_id: Option<TokenIds>,
    /// Width of the text `head`; `None` is `hidden_size`.
    pub projection_size: Option<usize>,
}

impl Default for SiglipTextConfig {
    /// `SiglipTextConfig()` in `transformers`.
    fn default() -> Self {
        Self {
            vocab_size: 32000,
            hidden_size: 768,
            intermediate_size: 3072,
            num_hidden_layers: 12,
            num_attention_heads: 12,
            max_position_embeddings: 64,
            hidden_act: Activation::GeluTanh,
            layer_norm_eps: 1e-6,
            attention_dropout: 0.0,
            pad_token_id: Some(1),
            bos_token_id: Some(49406),
            eos_token_id: Some(TokenIds::One(49407)),
            projection_size: None,
        }
    }
}

tower_config!(SiglipTextConfig);

impl SiglipTextConfig {
    /// `projection_size`, or `hidden_size`.
    pub fn projection_size(&self) -> usize {
        self.projection_size.unwrap_or(self.hidden_size)
    }

    /// Check what the model needs of the config.
    pub fn validate(&self) -> Result<()> {
        self.encoder_spec().validate("siglip_text_model")?;
        check_sizes(
            "siglip_text_model",
            &[
                ("vocab_size", self.vocab_size),
                ("max_position_embeddings", self.max_position_embeddings),
                ("projection_size", self.projection_size()),
            ],
        )
    }
}

/// The config of SigLIP's vision tower (`SiglipVisionConfig`, model type
/// `siglip_vision_model`), with the `transformers` defaults (those of
/// google/siglip-base-patch16-224).
///
/// Fields `config.json` may hold that `SiglipVisionConfig` does not declare are ignored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, AutoRegister)]
#[auto(config, model_type = "siglip_vision_model")]
#[serde(default)]
pub struct SiglipVisionConfig {
    /// Width of the hidden states, `[batch, seq, hidden_size]`.
    pub hidden_size: usize,
    /// Width of the feed-forward (MLP) layer inside each block.
    pub intermediate_size: usize,
    /// Number of transformer blocks.
    pub num_hidden_layers: usize,
    /// Number of attention heads in each block (query heads where keys and values have fewer).
    pub num_attention_heads: usize,
    /// Channels of the input images (3 for RGB).
    pub num_channels: usize,
    /// Side of the square images the model takes (its position embeddings are fixed to it).
    pub image_size: usize,
    /// Side, in pixels, of the square patches the image is cut into.
    pub patch_size: usize,
    /// Activation of the feed-forward layer (`hidden_act`: `silu`, `gelu`, `gelu_pytorch_tanh`, ...).
    pub hidden_act: Activation,
    /// Epsilon added to the variance in every LayerNorm.
    pub layer_norm_eps: f64,
    /// Training only: dropout is a no-op here.
    pub attention_dropout: f64,
    /// Whether the tower pools with its attention-pooling `head` (`pooler_output`).
    pub vision_use_head: bool,
}

impl Default for SiglipVisionConfig {
    /// `SiglipVisionConfig()` in `transformers`.
    fn default() -> Self {
        Self {
            hidden_size: 768,
            intermediate_size: 3072,
            num_hidden_layers: 12,
            num_attention_heads: 12,
            num_channels: 3,
            image_size: 224,
            patch_size: 16,
            hidden_act: Activation::GeluTanh,
            layer_norm_eps: 1e-6,
            attention_dropout: 0.0,
            vision_use_head: true,
        }
    }
}

tower_config!(vision SiglipVisionConfig);

impl SiglipVisionConfig {
    /// Check what the model needs of the config.
    pub fn validate(&self) -> Result<()> {
        validate_vision(
            "siglip_vision_model",
            &self.encoder_spec(),
            self.num_channels,
            self.image_size,
            self.patch_size,
        )
    }
}

/// The config of a SigLIP model (`SiglipConfig`): the two towers' configs.
///
/// `text_config` and `vision_config` may be partial, absent or `null`: missing fields take the
/// `SiglipTextConfig` / `SiglipVisionConfig` defaults.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, AutoRegister)]
#[auto(config, model_type = "siglip")]
#[serde(from = "RawSiglipConfig")]
pub struct SiglipConfig {
    /// The text tower's config (`text_config` in `config.json`).
    pub text_config: SiglipTextConfig,
    /// The vision tower's config (`vision_config` in `config.json`).
    pub vision_config: SiglipVisionConfig,
    /// Initialisation only; unused at inference.
    pub initializer_factor: f64,
    /// `id2label`, `label2id`, `num_labels`, `problem_type` (`SiglipForImageClassification`).
    #[serde(flatten)]
    pub labels: LabelConfig,
}

impl Default for SiglipConfig {
    /// `SiglipConfig()` in `transformers`.
    fn default() -> Self {
        RawSiglipConfig::default().into()
    }
}

impl SiglipConfig {
    /// Check both towers.
    pub fn validate(&self) -> Result<()> {
        self.text_config.validate()?;
        self.vision_config.validate()
    }
}

/// `SiglipConfig` as `config.json` spells it, before the sub-configs are resolved.
#[derive(Deserialize)]
#[serde(default)]
struct RawSiglipConfig {
    text_config: Option<SiglipTextConfig>,
    vision_config: Option<SiglipVisionConfig>,
    initializer_factor: f64,
    #[serde(flatten)]
    labels: LabelConfig,
}

impl Default for RawSiglipConfig {
    fn default() -> Self {
        Self { text_config: None, vision_config: None, initializer_factor: 1.0, labels: LabelConfig::default() }
    }
}

impl From<RawSiglipConfig> for SiglipConfig {
    fn from(raw: RawSiglipConfig) -> Self {
        Self {
            text_config: raw.text_config.unwrap_or_default(),
            vision_config: raw.vision_config.unwrap_or_default(),
            initializer_factor: raw.initializer_factor,
            labels: raw.labels,
        }
    }
}

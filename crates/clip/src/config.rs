//! `CLIPTextConfig`, `CLIPVisionConfig` and `CLIPConfig`, field for field as `transformers`'
//! `configuration_clip` (5.23).

use autocandle_core::{Activation, AutoRegister, Error, LabelConfig, Result};
use serde::{Deserialize, Serialize};

use crate::layers::{check_sizes, EncoderSpec};

pub use autocandle_core::TokenIds;

/// The config of CLIP's text tower (`CLIPTextConfig`, model type `clip_text_model`), with the
/// `transformers` defaults (those of openai/clip-vit-base-patch32).
///
/// Fields `config.json` may hold that `CLIPTextConfig` does not declare are ignored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, AutoRegister)]
#[auto(config, model_type = "clip_text_model")]
#[serde(default)]
pub struct CLIPTextConfig {
    /// Number of tokens in the vocabulary: the rows of the token embedding `[vocab_size, hidden_size]`.
    pub vocab_size: usize,
    /// Width of the hidden states, `[batch, seq, hidden_size]`.
    pub hidden_size: usize,
    /// Width of the feed-forward (MLP) layer inside each block.
    pub intermediate_size: usize,
    /// Width of `text_projection` in `CLIPTextModelWithProjection`.
    pub projection_dim: usize,
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
    /// Initialisation only; unused at inference.
    pub initializer_range: f64,
    /// Initialisation only; unused at inference.
    pub initializer_factor: f64,
    /// Id of the padding token, if the vocabulary has one.
    pub pad_token_id: Option<i64>,
    /// Id of the beginning-of-sequence token, if any.
    pub bos_token_id: Option<i64>,
    /// The text is pooled at the first `eos_token_id`; `2` selects the legacy rule (the
    /// position of the largest id), as `transformers` does for checkpoints made before the
    /// eos id was fixed.
    pub eos_token_id: Option<TokenIds>,
}

impl Default for CLIPTextConfig {
    /// `CLIPTextConfig()` in `transformers`.
    fn default() -> Self {
        Self {
            vocab_size: 49408,
            hidden_size: 512,
            intermediate_size: 2048,
            projection_dim: 512,
            num_hidden_layers: 12,
            num_attention_heads: 8,
            max_position_embeddings: 77,
            hidden_act: Activation::QuickGelu,
            layer_norm_eps: 1e-5,
            attention_dropout: 0.0,
            initializer_range: 0.02,
            initializer_factor: 1.0,
            pad_token_id: Some(1),
            bos_token_id: Some(49406),
            eos_token_id: Some(TokenIds::One(49407)),
        }
    }
}

crate::tower_config!(CLIPTextConfig);

impl CLIPTextConfig {
    /// Check what the model needs of the config.
    pub fn validate(&self) -> Result<()> {
        self.encoder_spec().validate("clip_text_model")?;
        check_sizes(
            "clip_text_model",
            &[("vocab_size", self.vocab_size), ("max_position_embeddings", self.max_position_embeddings)],
        )
    }
}

/// The config of CLIP's vision tower (`CLIPVisionConfig`, model type `clip_vision_model`), with
/// the `transformers` defaults (those of openai/clip-vit-base-patch32).
///
/// Fields `config.json` may hold that `CLIPVisionConfig` does not declare are ignored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, AutoRegister)]
#[auto(config, model_type = "clip_vision_model")]
#[serde(default)]
pub struct CLIPVisionConfig {
    /// Width of the hidden states, `[batch, seq, hidden_size]`.
    pub hidden_size: usize,
    /// Width of the feed-forward (MLP) layer inside each block.
    pub intermediate_size: usize,
    /// Width of `visual_projection` in `CLIPVisionModelWithProjection`.
    pub projection_dim: usize,
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
    /// Initialisation only; unused at inference.
    pub initializer_range: f64,
    /// Initialisation only; unused at inference.
    pub initializer_factor: f64,
}

impl Default for CLIPVisionConfig {
    /// `CLIPVisionConfig()` in `transformers`.
    fn default() -> Self {
        Self {
            hidden_size: 768,
            intermediate_size: 3072,
            projection_dim: 512,
            num_hidden_layers: 12,
            num_attention_heads: 12,
            num_channels: 3,
            image_size: 224,
            patch_size: 32,
            hidden_act: Activation::QuickGelu,
            layer_norm_eps: 1e-5,
            attention_dropout: 0.0,
            initializer_range: 0.02,
            initializer_factor: 1.0,
        }
    }
}

crate::tower_config!(vision CLIPVisionConfig);

impl CLIPVisionConfig {
    /// Check what the model needs of the config.
    pub fn validate(&self) -> Result<()> {
        validate_vision("clip_vision_model", &self.encoder_spec(), self.num_channels, self.image_size, self.patch_size)
    }
}

/// Implements `encoder_spec()`, the [`EncoderSpec`] of the fields of the same names, on the
/// config of a tower of the CLIP family (CLIP's, SigLIP's), and with `vision` also `grid()`, the
/// patches per side of its `image_size` and `patch_size`.
///
/// ```text
/// autocandle_clip::tower_config!(SiglipTextConfig);
/// autocandle_clip::tower_config!(vision SiglipVisionConfig);
/// ```
#[macro_export]
macro_rules! tower_config {
    (vision $config:ident) => {
        $crate::tower_config!($config);

        impl $config {
            /// Patches per side (`image_size // patch_size`).
            pub fn grid(&self) -> usize {
                self.image_size / self.patch_size.max(1)
            }
        }
    };
    ($config:ident) => {
        impl $config {
            /// The encoder sizes.
            pub fn encoder_spec(&self) -> $crate::layers::EncoderSpec {
                $crate::layers::EncoderSpec {
                    hidden_size: self.hidden_size,
                    intermediate_size: self.intermediate_size,
                    num_hidden_layers: self.num_hidden_layers,
                    num_attention_heads: self.num_attention_heads,
                    hidden_act: self.hidden_act,
                    layer_norm_eps: self.layer_norm_eps,
                }
            }
        }
    };
}

/// The checks every vision tower of the CLIP family needs.
pub fn validate_vision(
    model_type: &str,
    spec: &EncoderSpec,
    num_channels: usize,
    image_size: usize,
    patch_size: usize,
) -> Result<()> {
    spec.validate(model_type)?;
    check_sizes(model_type, &[("num_channels", num_channels), ("image_size", image_size), ("patch_size", patch_size)])?;
    if patch_size > image_size {
        return Err(Error::config(
            model_type,
            format!("`patch_size` ({patch_size}) is larger than `image_size` ({image_size})"),
        ));
    }
    Ok(())
}

/// The config of a CLIP model (`CLIPConfig`): the two towers' configs and the projection.
///
/// `text_config` and `vision_config` may be partial or absent: missing fields take the
/// `CLIPTextConfig` / `CLIPVisionConfig` defaults. The legacy `text_config_dict` /
/// `vision_config_dict` replace them when present, as in `transformers`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, AutoRegister)]
#[auto(config, model_type = "clip")]
#[serde(from = "RawCLIPConfig")]
pub struct CLIPConfig {
    /// The text tower's config (`text_config` in `config.json`).
    pub text_config: CLIPTextConfig,
    /// The vision tower's config (`vision_config` in `config.json`).
    pub vision_config: CLIPVisionConfig,
    /// Width of the shared embedding space (`text_projection`, `visual_projection`).
    pub projection_dim: usize,
    /// Initialisation of `logit_scale`; the checkpoint's value is used.
    pub logit_scale_init_value: f64,
    /// Initialisation only; unused at inference.
    pub initializer_factor: f64,
    /// `id2label`, `label2id`, `num_labels`, `problem_type` (`CLIPForImageClassification`).
    #[serde(flatten)]
    pub labels: LabelConfig,
}

impl Default for CLIPConfig {
    /// `CLIPConfig()` in `transformers`.
    fn default() -> Self {
        RawCLIPConfig::default().into()
    }
}

impl CLIPConfig {
    /// Check both towers.
    pub fn validate(&self) -> Result<()> {
        self.text_config.validate()?;
        self.vision_config.validate()
    }
}

/// `CLIPConfig` as `config.json` spells it, before the sub-configs are resolved.
#[derive(Deserialize)]
#[serde(default)]
struct RawCLIPConfig {
    text_config: Option<CLIPTextConfig>,
    vision_config: Option<CLIPVisionConfig>,
    text_config_dict: Option<CLIPTextConfig>,
    vision_config_dict: Option<CLIPVisionConfig>,
    projection_dim: usize,
    logit_scale_init_value: f64,
    initializer_factor: f64,
    #[serde(flatten)]
    labels: LabelConfig,
}

impl Default for RawCLIPConfig {
    fn default() -> Self {
        Self {
            text_config: None,
            vision_config: None,
            text_config_dict: None,
            vision_config_dict: None,
            projection_dim: 512,
            logit_scale_init_value: 2.6592,
            initializer_factor: 1.0,
            labels: LabelConfig::default(),
        }
    }
}

impl From<RawCLIPConfig> for CLIPConfig {
    fn from(raw: RawCLIPConfig) -> Self {
        Self {
            text_config: raw.text_config_dict.or(raw.text_config).unwrap_or_default(),
            vision_config: raw.vision_config_dict.or(raw.vision_config).unwrap_or_default(),
            projection_dim: raw.projection_dim,
            logit_scale_init_value: raw.logit_scale_init_value,
            initializer_factor: raw.initializer_factor,
            labels: raw.labels,
        }
    }
}

//! `Idefics3VisionConfig` and `Idefics3Config`, field for field as `transformers`'
//! `configuration_idefics3` (5.25).

use autocandle_clip::layers::EncoderSpec;
use autocandle_clip::validate_vision;
use autocandle_core::{Activation, AutoRegister, Error, Result};
use autocandle_decoder::DecoderSpec;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The config of Idefics3's vision transformer (`Idefics3VisionConfig`, model type
/// `idefics3_vision`; the `vision_config` of an Idefics3 or SmolVLM config), with the
/// `transformers` defaults.
///
/// `image_size` and `patch_size` are single numbers (square images and patches), as every
/// published checkpoint has them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, AutoRegister)]
#[auto(config, model_type = "idefics3_vision")]
#[serde(default)]
pub struct Idefics3VisionConfig {
    /// Width of the hidden states, `[images, patches, hidden_size]`.
    pub hidden_size: usize,
    /// Width of the feed-forward (MLP) layer inside each block.
    pub intermediate_size: usize,
    /// Number of transformer blocks.
    pub num_hidden_layers: usize,
    /// Number of attention heads in each block.
    pub num_attention_heads: usize,
    /// Channels of the input images (3 for RGB).
    pub num_channels: usize,
    /// Side of the largest image (tile): `(image_size / patch_size)^2` position embeddings.
    pub image_size: usize,
    /// Side, in pixels, of the square patches the image is cut into.
    pub patch_size: usize,
    /// Activation of the feed-forward layer.
    pub hidden_act: Activation,
    /// Epsilon added to the variance in every LayerNorm.
    pub layer_norm_eps: f64,
    /// Training only: dropout is a no-op here.
    pub attention_dropout: f64,
    /// Standard deviation of the initialisation in `transformers`; unused at inference.
    pub initializer_range: f64,
}

impl Default for Idefics3VisionConfig {
    /// `Idefics3VisionConfig()` in `transformers`.
    fn default() -> Self {
        Self {
            hidden_size: 1152,
            intermediate_size: 3072,
            num_hidden_layers: 12,
            num_attention_heads: 16,
            num_channels: 3,
            image_size: 224,
            patch_size: 32,
            hidden_act: Activation::GeluTanh,
            layer_norm_eps: 1e-6,
            attention_dropout: 0.0,
            initializer_range: 0.02,
        }
    }
}

impl Idefics3VisionConfig {
    /// The sizes of the encoder (shared with CLIP's layers).
    pub fn encoder_spec(&self) -> EncoderSpec {
        EncoderSpec {
            hidden_size: self.hidden_size,
            intermediate_size: self.intermediate_size,
            num_hidden_layers: self.num_hidden_layers,
            num_attention_heads: self.num_attention_heads,
            hidden_act: self.hidden_act,
            layer_norm_eps: self.layer_norm_eps,
        }
    }

    /// Patches per side of the largest image: `image_size / patch_size`.
    pub fn num_patches_per_side(&self) -> usize {
        self.image_size / self.patch_size.max(1)
    }

    /// Check what the model needs of the config; errors name `model_type`.
    pub fn validate(&self, model_type: &str) -> Result<()> {
        validate_vision(model_type, &self.encoder_spec(), self.num_channels, self.image_size, self.patch_size)?;
        // The position table has (image_size / patch_size)^2 rows: keep it allocatable.
        if self.num_patches_per_side() > 4096 {
            return Err(Error::config(
                model_type,
                format!(
                    "`image_size / patch_size` ({} / {}) is more than 4096 patches per side",
                    self.image_size, self.patch_size
                ),
            ));
        }
        Ok(())
    }
}

/// The config of an Idefics3 model (`Idefics3Config`): the vision transformer's config, the
/// language model's (`text_config`, a llama config by default, any text model type that
/// [`autocandle_vlm::text_decoder_spec`] knows), the pixel-shuffle `scale_factor` of the
/// connector and the image token.
///
/// SmolVLM's config (`autocandle-smolvlm`) has the same fields and defaults.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, AutoRegister)]
#[auto(config, model_type = "idefics3")]
#[serde(default)]
pub struct Idefics3Config {
    /// Generation only: autocandle's cache is passed explicitly.
    pub use_cache: bool,
    /// The token that stands for one image feature in `input_ids`.
    pub image_token_id: u32,
    /// Whether `lm_head` is the text model's token embedding.
    pub tie_word_embeddings: bool,
    /// The vision transformer's config; missing fields take the defaults.
    #[serde(deserialize_with = "vision_or_default")]
    pub vision_config: Idefics3VisionConfig,
    /// The language model's config, as `config.json` has it (`null`: a default llama config
    /// with `rms_norm_eps` 1e-5).
    pub text_config: Option<Value>,
    /// The connector's pixel shuffle: `scale_factor^2` neighbouring patches become one image
    /// token.
    pub scale_factor: usize,
}

fn vision_or_default<'de, D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Idefics3VisionConfig, D::Error> {
    Ok(Option::<Idefics3VisionConfig>::deserialize(d)?.unwrap_or_default())
}

impl Default for Idefics3Config {
    /// `Idefics3Config()` in `transformers`.
    fn default() -> Self {
        Self {
            use_cache: true,
            image_token_id: 128257,
            tie_word_embeddings: false,
            vision_config: Idefics3VisionConfig::default(),
            text_config: None,
            scale_factor: 2,
        }
    }
}

impl Idefics3Config {
    /// The language model's [`DecoderSpec`] for the model type `owner` (`idefics3`,
    /// `smolvlm`): `text_config` (a llama config when it names no `model_type`; when absent,
    /// the `LlamaConfig(rms_norm_eps=1e-5)` `transformers` builds), tied to the token
    /// embedding as the composite config's `tie_word_embeddings` says.
    pub fn text_spec(&self, owner: &str) -> Result<DecoderSpec> {
        let text = match &self.text_config {
            // `transformers` builds the default text config as `LlamaConfig(rms_norm_eps=1e-5)`.
            None | Some(Value::Null) => serde_json::Map::from_iter([("rms_norm_eps".to_owned(), Value::from(1e-5))]),
            Some(Value::Object(m)) => m.clone(),
            Some(other) => {
                return Err(Error::config(
                    owner.to_owned(),
                    format!("`text_config` must be a JSON object, found {other}"),
                ))
            }
        };
        autocandle_vlm::text_decoder_spec(
            Some(&Value::Object(text)),
            "llama",
            owner,
            &[("tie_word_embeddings", Value::Bool(self.tie_word_embeddings))],
        )
    }

    /// Check what the model needs of the config; errors name `owner`.
    pub fn validate(&self, owner: &str) -> Result<()> {
        self.vision_config.validate(owner)?;
        if self.scale_factor == 0 || self.scale_factor > 64 {
            return Err(Error::config(
                owner.to_owned(),
                format!("`scale_factor` must be between 1 and 64, got {}", self.scale_factor),
            ));
        }
        Ok(())
    }
}

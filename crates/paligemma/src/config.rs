//! `PaliGemmaConfig`, as `transformers`' `configuration_paligemma.PaliGemmaConfig` (5.25).

use autocandle_core::{AutoRegister, Error, Result};
use autocandle_decoder::DecoderSpec;
use autocandle_siglip::SiglipVisionConfig;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

/// The config of a PaliGemma model (`PaliGemmaConfig`): a SigLIP vision tower
/// (`vision_config`), a linear projector to `projection_dim`, and a Gemma (or Gemma 2: PaliGemma
/// 2) language model (`text_config`).
///
/// Sub-configs left out (`null`) take the defaults `PaliGemmaConfig` gives them (those of
/// google/paligemma-3b-pt-224); a sub-config given as an object takes its own class's defaults
/// for the fields it leaves out, as in `transformers`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, AutoRegister)]
#[auto(config, model_type = "paligemma")]
#[serde(default)]
pub struct PaliGemmaConfig {
    /// The SigLIP vision tower's config (`siglip_vision_model`); `null` for the PaliGemma default.
    pub vision_config: Option<Value>,
    /// The language model's config (`model_type` `gemma` by default, or `gemma2`); `null` for
    /// the PaliGemma default.
    pub text_config: Option<Value>,
    /// The id of the `<image>` token, one per image feature in `input_ids` (`image_token_id`).
    #[serde(alias = "image_token_id")]
    pub image_token_index: u32,
    /// The vocabulary of the whole model (the language model's is `text_config.vocab_size`).
    pub vocab_size: usize,
    /// Width of the projected image features (`vision_config.projection_dim`): the language
    /// model's `hidden_size`.
    pub projection_dim: usize,
    /// Width of the language model (informational; `text_config.hidden_size` is used).
    pub hidden_size: usize,
    /// Whether the LM head shares the token embedding's weight.
    pub tie_word_embeddings: bool,
}

impl Default for PaliGemmaConfig {
    /// `PaliGemmaConfig()` in `transformers`.
    fn default() -> Self {
        Self {
            vision_config: None,
            text_config: None,
            image_token_index: 256000,
            vocab_size: 257152,
            projection_dim: 2048,
            hidden_size: 2048,
            tie_word_embeddings: true,
        }
    }
}

/// `sub_configs_defaults["vision_config"].init_kwargs`.
fn default_vision_config() -> Value {
    json!({
        "intermediate_size": 4096, "hidden_size": 1152, "patch_size": 14, "image_size": 224,
        "num_hidden_layers": 27, "num_attention_heads": 16, "vocab_size": 257152, "vision_use_head": false,
    })
}

/// `sub_configs_defaults["text_config"].init_kwargs`.
fn default_text_config() -> Value {
    json!({
        "model_type": "gemma", "hidden_size": 2048, "num_hidden_layers": 18, "intermediate_size": 16384,
        "num_attention_heads": 8, "num_key_value_heads": 1, "is_encoder_decoder": false, "vocab_size": 257152,
    })
}

impl PaliGemmaConfig {
    /// The vision tower's config. PaliGemma uses every patch state (`last_hidden_state`), never
    /// the pooling head, so the tower is built without it (`vision_use_head` false; weights of a
    /// head in the checkpoint are left unused).
    pub fn vision(&self) -> Result<SiglipVisionConfig> {
        let value = match &self.vision_config {
            None | Some(Value::Null) => default_vision_config(),
            Some(v @ Value::Object(_)) => v.clone(),
            Some(other) => {
                return Err(Error::config("paligemma", format!("`vision_config` must be a JSON object, found {other}")))
            }
        };
        if let Some(t) = value.get("model_type").and_then(Value::as_str) {
            if t != "siglip_vision_model" {
                return Err(Error::Unsupported(format!(
                    "`paligemma` with a `{t}` vision tower: only `siglip_vision_model` is supported"
                )));
            }
        }
        let mut config: SiglipVisionConfig = serde_json::from_value(value).map_err(|e| {
            Error::config("paligemma", format!("`vision_config` is not a valid SigLIP vision config: {e}"))
        })?;
        config.vision_use_head = false;
        config.validate()?;
        Ok(config)
    }

    /// The language model's [`DecoderSpec`] from `text_config`. `transformers` sets
    /// `use_bidirectional_attention` on it, which only changes its attention when no mask is
    /// built; here the mask is always built (causal, with the bidirectional prefix of
    /// `token_type_ids`), so the flag is dropped. Embeddings are scaled in the embedding layer
    /// (`GemmaTextScaledWordEmbedding`), so image features are not scaled.
    pub fn text_spec(&self) -> Result<DecoderSpec> {
        let default = default_text_config();
        let text = match &self.text_config {
            None | Some(Value::Null) => Some(&default),
            Some(v) => Some(v),
        };
        let mut spec = autocandle_vlm::text_decoder_spec(
            text,
            "gemma",
            "paligemma",
            &[("use_bidirectional_attention", Value::Null)],
        )?;
        spec.options.scaled_embedding_layer = true;
        Ok(spec)
    }

    /// Check the parts fit: the projector's output is the language model's width.
    pub fn validate(&self) -> Result<(SiglipVisionConfig, DecoderSpec)> {
        let (vision, text) = (self.vision()?, self.text_spec()?);
        if self.projection_dim != text.hidden_size {
            return Err(Error::config(
                "paligemma",
                format!(
                    "`projection_dim` ({}) must equal the language model's `hidden_size` ({}): the projected image \
                     features replace token embeddings",
                    self.projection_dim, text.hidden_size
                ),
            ));
        }
        Ok((vision, text))
    }

    /// Image tokens per image: `(image_size / patch_size)^2`.
    pub fn num_image_tokens(&self) -> Result<usize> {
        let v = self.vision()?;
        Ok((v.image_size / v.patch_size).pow(2))
    }
}

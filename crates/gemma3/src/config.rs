//! `Gemma3Config`, field for field as `transformers`' `configuration_gemma3.Gemma3Config` (5.25).

use autocandle_core::{AutoRegister, Error, LabelConfig, Result};
use autocandle_decoder::DecoderSpec;
use autocandle_siglip::SiglipVisionConfig;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The config of a Gemma 3 vision-language model (`Gemma3Config`, model type `gemma3`), with
/// the `transformers` defaults (those of gemma-3-4b).
///
/// `text_config` is kept as JSON and read as the language model's config by
/// [`Gemma3Config::text_spec`] (a `gemma3_text` config unless it names another text model
/// type); `vision_config` is a SigLIP vision tower's (`SiglipVisionConfig()` when absent).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, AutoRegister)]
#[auto(config, model_type = "gemma3")]
#[serde(default)]
pub struct Gemma3Config {
    /// The language model's config (`Gemma3TextConfig`), as JSON.
    pub text_config: Option<Value>,
    /// The vision tower's config (`SiglipVisionConfig`).
    pub vision_config: Option<SiglipVisionConfig>,
    /// Image tokens per image: the vision tower's patch grid is average-pooled to a square
    /// grid of this many tokens.
    pub mm_tokens_per_image: usize,
    /// Begin-of-image token (`<start_of_image>`), `boi_token_id`.
    #[serde(alias = "boi_token_id")]
    pub boi_token_index: u32,
    /// End-of-image token (`<end_of_image>`), `eoi_token_id`.
    #[serde(alias = "eoi_token_id")]
    pub eoi_token_index: u32,
    /// The token each image feature replaces (`<image_soft_token>`), `image_token_id`.
    #[serde(alias = "image_token_id")]
    pub image_token_index: u32,
    /// Standard deviation of the initialisation in `transformers`; unused at inference.
    pub initializer_range: f64,
    /// Whether `lm_head` shares the language model's token embedding.
    pub tie_word_embeddings: bool,
    /// `id2label`, `label2id`, `num_labels`, `problem_type` (`Gemma3ForSequenceClassification`).
    #[serde(flatten)]
    pub labels: LabelConfig,
}

impl Default for Gemma3Config {
    /// `Gemma3Config()` in `transformers`.
    fn default() -> Self {
        Self {
            text_config: None,
            vision_config: None,
            mm_tokens_per_image: 256,
            boi_token_index: 255_999,
            eoi_token_index: 256_000,
            image_token_index: 262_144,
            initializer_range: 0.02,
            tie_word_embeddings: true,
            labels: LabelConfig::default(),
        }
    }
}

/// The sizes of the multimodal projector, derived from the config.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct PoolSizes {
    /// Patches per side of the vision tower's grid (`image_size // patch_size`).
    pub patches_per_image: usize,
    /// Image tokens per side (`sqrt(mm_tokens_per_image)`).
    pub tokens_per_side: usize,
    /// The average-pooling kernel and stride.
    pub kernel: usize,
}

impl Gemma3Config {
    /// The vision tower's config.
    pub fn vision(&self) -> SiglipVisionConfig {
        self.vision_config.clone().unwrap_or_default()
    }

    /// The language model's [`DecoderSpec`] from `text_config` (`gemma3_text` by default), with
    /// the top-level `tie_word_embeddings` (the one `Gemma3ForConditionalGeneration` ties by)
    /// and without `final_logit_softcapping`: `Gemma3ForConditionalGeneration` applies
    /// `lm_head` alone (only the text-only `Gemma3ForCausalLM` soft-caps).
    pub fn text_spec(&self) -> Result<DecoderSpec> {
        autocandle_vlm::text_decoder_spec(
            self.text_config.as_ref(),
            "gemma3_text",
            "gemma3",
            &[("tie_word_embeddings", Value::Bool(self.tie_word_embeddings)), ("final_logit_softcapping", Value::Null)],
        )
    }

    /// The language model's `pad_token_id` (`Gemma3TextConfig`'s default is 0).
    pub fn text_pad_token_id(&self) -> Option<i64> {
        match self.text_config.as_ref().and_then(|t| t.get("pad_token_id")) {
            None => Some(0),
            Some(v) => v.as_i64(),
        }
    }

    /// Check the projector's sizes: the patch grid must pool evenly to a square grid of
    /// `mm_tokens_per_image` tokens.
    pub(crate) fn pool_sizes(&self) -> Result<PoolSizes> {
        let vision = self.vision();
        vision.validate()?;
        let patches_per_image = vision.image_size / vision.patch_size.max(1);
        let tokens_per_side = (self.mm_tokens_per_image as f64).sqrt() as usize;
        let bad = |why: String| Err(Error::config("gemma3", why));
        if tokens_per_side == 0 || tokens_per_side * tokens_per_side != self.mm_tokens_per_image {
            return bad(format!(
                "`mm_tokens_per_image` ({}) must be a positive square number",
                self.mm_tokens_per_image
            ));
        }
        if !patches_per_image.is_multiple_of(tokens_per_side) || patches_per_image < tokens_per_side {
            return bad(format!(
                "the vision tower's {patches_per_image}x{patches_per_image} patch grid (`image_size` / `patch_size`) \
                 does not pool evenly to {tokens_per_side}x{tokens_per_side} image tokens (`mm_tokens_per_image` {})",
                self.mm_tokens_per_image
            ));
        }
        Ok(PoolSizes { patches_per_image, tokens_per_side, kernel: patches_per_image / tokens_per_side })
    }
}

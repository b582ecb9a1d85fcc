//! Qwen3-VL for autocandle, after `transformers`' `modeling_qwen3_vl` (5.25): [`Qwen3VLConfig`],
//! the base model [`Qwen3VLModel`] and [`Qwen3VLForConditionalGeneration`] (`image-text-to-text`;
//! [`Qwen3VLForMultimodalLm`] is the same model for `multimodal-lm`).
//!
//! - The vision tower ([`VisionTower`]) embeds `pixel_values` `[patches, C * temporal_patch *
//!   patch^2]` with the Conv3d (with bias) as one matrix, adds learned position embeddings
//!   resampled bilinearly (`align_corners`) from a square table to each image's grid, rotates
//!   queries and keys with a 2D rope, attends within each frame, and merges each
//!   `spatial_merge_size`^2 square of patches into one feature. The outputs of the
//!   `deepstack_visual_indexes` blocks go through their own mergers (DeepStack features).
//! - The features replace the image tokens; the language model is the Qwen3 decoder (q/k norm)
//!   of `autocandle-decoder` on those embeddings with interleaved M-RoPE (three position rows
//!   from Qwen2-VL's `get_rope_index`, frequencies interleaved t, h, w by `mrope_section`).
//!   After text layer `i`, DeepStack feature `i` is added at the image tokens
//!   ([`DecoderExtras::layer_residuals`](autocandle_decoder::DecoderExtras)).
//! - Generation: as Qwen2-VL (`autocandle-qwen2-vl`): the prefill keeps each row's
//!   `rope_deltas` in the cache; later tokens sit at their text position plus the delta.
//!   `mm_token_type_ids` are read when given, else derived from the image token (where
//!   `transformers` asks for them). Videos are not supported.

#![warn(missing_docs)]

mod config;
mod model;
mod vision;

#[cfg(test)]
mod tests;

pub use config::{text_settings, Qwen3VLConfig, Qwen3VLVisionConfig, Settings, DEFAULT_MROPE_SECTION};
pub use model::{interleaved_mrope_cos_sin, Qwen3VlCore, VlOutput};
pub use vision::{VisionOutput, VisionSettings, VisionTower};

#[doc = "`Qwen3VLModel`: the vision tower and the language model without a head; "]
#[doc = "`last_hidden_state`, plus `image_hidden_states` (the merged image features) when images are given."]
#[derive(Debug, Clone, ::autocandle_core::AutoRegister)]
#[auto(task = "base", class = "Qwen3VLModel")]
pub struct Qwen3VLModel {
    core: crate::Qwen3VlCore,
}

impl Qwen3VLModel {
    /// The model body.
    pub fn core(&self) -> &crate::Qwen3VlCore {
        &self.core
    }
}

impl ::autocandle_core::LoadModel for Qwen3VLModel {
    type Config = Qwen3VLConfig;
    const BASE_MODEL_PREFIX: &'static str = "model";

    fn load(vb: candle_nn::VarBuilder<'_>, config: &Qwen3VLConfig) -> ::autocandle_core::Result<Self> {
        Ok(Self { core: crate::Qwen3VlCore::load_base(vb, &config.settings()?)? })
    }
}

impl ::autocandle_core::PreTrainedModel for Qwen3VLModel {
    fn device(&self) -> &candle_core::Device {
        self.core.decoder().device()
    }

    fn dtype(&self) -> candle_core::DType {
        self.core.decoder().dtype()
    }
}

impl ::autocandle_core::Model for Qwen3VLModel {
    fn forward(
        &self,
        inputs: &::autocandle_core::ModelInputs,
    ) -> ::autocandle_core::Result<::autocandle_core::BaseModelOutput> {
        let out = self.core.run(inputs, None)?;
        let mut result = ::autocandle_core::BaseModelOutput::new(out.output, None);
        if let Some(features) = out.image_features {
            result = result.with_extra("image_hidden_states", features);
        }
        Ok(result)
    }
}

#[doc = "`Qwen3VLForConditionalGeneration`: the model and `lm_head` (tied to the token embedding with "]
#[doc = "`tie_word_embeddings`); logits, with a cache for generation (images on the prefill pass)."]
#[derive(Debug, Clone, ::autocandle_core::AutoRegister)]
#[auto(task = "image-text-to-text", class = "Qwen3VLForConditionalGeneration")]
pub struct Qwen3VLForConditionalGeneration {
    core: crate::Qwen3VlCore,
}

impl Qwen3VLForConditionalGeneration {
    /// The model body.
    pub fn core(&self) -> &crate::Qwen3VlCore {
        &self.core
    }
}

impl ::autocandle_core::LoadModel for Qwen3VLForConditionalGeneration {
    type Config = Qwen3VLConfig;
    const BASE_MODEL_PREFIX: &'static str = "model";

    fn load(vb: candle_nn::VarBuilder<'_>, config: &Qwen3VLConfig) -> ::autocandle_core::Result<Self> {
        Ok(Self { core: crate::Qwen3VlCore::load_with_head(vb, &config.settings()?)? })
    }
}

impl ::autocandle_core::PreTrainedModel for Qwen3VLForConditionalGeneration {
    fn device(&self) -> &candle_core::Device {
        self.core.decoder().device()
    }

    fn dtype(&self) -> candle_core::DType {
        self.core.decoder().dtype()
    }
}

impl ::autocandle_core::ForImageTextToText for Qwen3VLForConditionalGeneration {
    fn forward(
        &self,
        inputs: &::autocandle_core::ModelInputs,
    ) -> ::autocandle_core::Result<::autocandle_core::ImageTextToTextOutput> {
        let out = self.core.run(inputs, None)?;
        Ok(::autocandle_core::ImageTextToTextOutput::new(out.output, out.image_features))
    }

    fn forward_with_cache(
        &self,
        inputs: &::autocandle_core::ModelInputs,
        cache: &mut ::autocandle_core::KvCache,
    ) -> ::autocandle_core::Result<::autocandle_core::ImageTextToTextOutput> {
        let out = self.core.run(inputs, Some(cache))?;
        Ok(::autocandle_core::ImageTextToTextOutput::new(out.output, out.image_features))
    }

    fn supports_cache(&self) -> bool {
        true
    }

    fn max_positions(&self) -> Option<usize> {
        self.core.decoder().max_positions()
    }

    fn image_token_id(&self) -> Option<u32> {
        Some(self.core.settings().image_token_id)
    }

    /// `mm_token_type_ids` of generated tokens are 0 (text), as `generate` extends them.
    fn generated_token_type_id(&self, name: &str, last: u32) -> u32 {
        if name == "mm_token_type_ids" {
            0
        } else {
            last
        }
    }
}

#[doc = "`Qwen3VLForConditionalGeneration` as `AutoModelForMultimodalLM` finds it: the same model."]
#[derive(Debug, Clone, ::autocandle_core::AutoRegister)]
#[auto(task = "multimodal-lm", class = "Qwen3VLForConditionalGeneration")]
pub struct Qwen3VLForMultimodalLm(pub Qwen3VLForConditionalGeneration);

impl ::autocandle_core::LoadModel for Qwen3VLForMultimodalLm {
    type Config = Qwen3VLConfig;
    const BASE_MODEL_PREFIX: &'static str = "model";

    fn load(vb: candle_nn::VarBuilder<'_>, config: &Qwen3VLConfig) -> ::autocandle_core::Result<Self> {
        Ok(Self(<Qwen3VLForConditionalGeneration as ::autocandle_core::LoadModel>::load(vb, config)?))
    }
}

impl ::autocandle_core::PreTrainedModel for Qwen3VLForMultimodalLm {
    fn device(&self) -> &candle_core::Device {
        ::autocandle_core::PreTrainedModel::device(&self.0)
    }

    fn dtype(&self) -> candle_core::DType {
        ::autocandle_core::PreTrainedModel::dtype(&self.0)
    }
}

impl ::autocandle_core::ForImageTextToText for Qwen3VLForMultimodalLm {
    fn forward(
        &self,
        inputs: &::autocandle_core::ModelInputs,
    ) -> ::autocandle_core::Result<::autocandle_core::ImageTextToTextOutput> {
        ::autocandle_core::ForImageTextToText::forward(&self.0, inputs)
    }

    fn forward_with_cache(
        &self,
        inputs: &::autocandle_core::ModelInputs,
        cache: &mut ::autocandle_core::KvCache,
    ) -> ::autocandle_core::Result<::autocandle_core::ImageTextToTextOutput> {
        ::autocandle_core::ForImageTextToText::forward_with_cache(&self.0, inputs, cache)
    }

    fn supports_cache(&self) -> bool {
        true
    }

    fn max_positions(&self) -> Option<usize> {
        ::autocandle_core::ForImageTextToText::max_positions(&self.0)
    }

    fn image_token_id(&self) -> Option<u32> {
        ::autocandle_core::ForImageTextToText::image_token_id(&self.0)
    }

    fn generated_token_type_id(&self, name: &str, last: u32) -> u32 {
        ::autocandle_core::ForImageTextToText::generated_token_type_id(&self.0, name, last)
    }
}

impl ::autocandle_core::ForMultimodalLm for Qwen3VLForMultimodalLm {}

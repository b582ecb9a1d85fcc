//! SmolVLM for autocandle, after `transformers`' `modeling_smolvlm` (5.25), which its
//! `modular_smolvlm` derives from Idefics3: this crate reuses `autocandle-idefics3` and says
//! what differs.
//!
//! - [`SmolVLMConfig`] (model type `smolvlm`): `Idefics3Config`'s fields and defaults;
//! - [`SmolVLMVisionConfig`] and [`SmolVLMVisionTransformer`] (model type `smolvlm_vision`);
//! - [`SmolVLMModel`] (`base`), [`SmolVLMForConditionalGeneration`] (`image-text-to-text`)
//!   and the same class as [`SmolVLMForMultimodalLm`] (`multimodal-lm`).
//!
//! The one difference in what the models compute: when every image slot of the batch is
//! padding (all pixels 0), SmolVLM keeps the first image (`real_images_inds[0] |= ~any(...)`)
//! where Idefics3 drops them all ([`Flavor::SmolVlm`]). The processor differs more (video
//! frames, the image-splitting defaults); that is `autocandle`'s `vlm_processor`.

#![warn(missing_docs)]

use autocandle_core::{
    AutoRegister, BaseModelOutput, ForImageTextToText, ImageTextToTextOutput, KvCache, LoadModel, Model, ModelInputs,
    PreTrainedModel, Result,
};
use autocandle_idefics3::{
    Flavor, Idefics3Config, Idefics3ForConditionalGeneration, Idefics3Model, Idefics3VisionConfig,
    Idefics3VisionTransformer,
};
use candle_core::{DType, Device};
use candle_nn::VarBuilder;
use serde::{Deserialize, Serialize};

/// The config of SmolVLM's vision transformer (`SmolVLMVisionConfig`, model type
/// `smolvlm_vision`): [`Idefics3VisionConfig`]'s fields and defaults.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, AutoRegister)]
#[auto(config, model_type = "smolvlm_vision")]
#[serde(transparent)]
pub struct SmolVLMVisionConfig(pub Idefics3VisionConfig);

/// A saved `SmolVLMVisionTransformer` (the base model of `smolvlm_vision`): Idefics3's
/// [`Idefics3VisionTransformer`].
#[derive(Debug, AutoRegister)]
#[auto(task = "base", class = "SmolVLMVisionTransformer")]
pub struct SmolVLMVisionTransformer(pub Idefics3VisionTransformer);

impl LoadModel for SmolVLMVisionTransformer {
    type Config = SmolVLMVisionConfig;
    const BASE_MODEL_PREFIX: &'static str = "model";

    fn load(vb: VarBuilder<'_>, config: &SmolVLMVisionConfig) -> Result<Self> {
        config.0.validate("smolvlm_vision")?;
        Ok(Self(Idefics3VisionTransformer::load(vb, &config.0)?))
    }
}

impl Model for SmolVLMVisionTransformer {
    fn forward(&self, inputs: &ModelInputs) -> Result<BaseModelOutput> {
        Model::forward(&self.0, inputs)
    }
}

impl PreTrainedModel for SmolVLMVisionTransformer {
    fn device(&self) -> &Device {
        PreTrainedModel::device(&self.0)
    }

    fn dtype(&self) -> DType {
        PreTrainedModel::dtype(&self.0)
    }
}

/// The config of a SmolVLM model (`SmolVLMConfig`): the fields and defaults of
/// [`Idefics3Config`] (`vision_config`, `text_config`, `scale_factor`, `image_token_id`,
/// `tie_word_embeddings`, `use_cache`), under the model type `smolvlm`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, AutoRegister)]
#[auto(config, model_type = "smolvlm")]
#[serde(transparent)]
pub struct SmolVLMConfig(pub Idefics3Config);

impl std::ops::Deref for SmolVLMConfig {
    type Target = Idefics3Config;

    fn deref(&self) -> &Idefics3Config {
        &self.0
    }
}

/// The SmolVLM base model (`SmolVLMModel`): Idefics3's ([`Idefics3Model`]) with SmolVLM's
/// handling of all-padding image batches.
#[derive(Debug, AutoRegister)]
#[auto(task = "base", class = "SmolVLMModel")]
pub struct SmolVLMModel(pub Idefics3Model);

impl LoadModel for SmolVLMModel {
    type Config = SmolVLMConfig;
    const BASE_MODEL_PREFIX: &'static str = "model";

    fn load(vb: VarBuilder<'_>, config: &SmolVLMConfig) -> Result<Self> {
        Ok(Self(Idefics3Model::load_as(vb, config, Flavor::SmolVlm)?))
    }
}

impl Model for SmolVLMModel {
    fn forward(&self, inputs: &ModelInputs) -> Result<BaseModelOutput> {
        Model::forward(&self.0, inputs)
    }
}

impl PreTrainedModel for SmolVLMModel {
    fn device(&self) -> &Device {
        self.0.device()
    }

    fn dtype(&self) -> DType {
        PreTrainedModel::dtype(&self.0)
    }
}

/// SmolVLM with its language-modelling head (`SmolVLMForConditionalGeneration`):
/// [`Idefics3ForConditionalGeneration`] with SmolVLM's handling of all-padding image batches.
#[derive(Debug, AutoRegister)]
#[auto(task = "image-text-to-text", class = "SmolVLMForConditionalGeneration")]
pub struct SmolVLMForConditionalGeneration(pub Idefics3ForConditionalGeneration);

impl LoadModel for SmolVLMForConditionalGeneration {
    type Config = SmolVLMConfig;
    const BASE_MODEL_PREFIX: &'static str = "model";

    fn load(vb: VarBuilder<'_>, config: &SmolVLMConfig) -> Result<Self> {
        Ok(Self(Idefics3ForConditionalGeneration::load_as(vb, config, Flavor::SmolVlm)?))
    }
}

impl PreTrainedModel for SmolVLMForConditionalGeneration {
    fn device(&self) -> &Device {
        self.0.device()
    }

    fn dtype(&self) -> DType {
        PreTrainedModel::dtype(&self.0)
    }
}

impl ForImageTextToText for SmolVLMForConditionalGeneration {
    fn forward(&self, inputs: &ModelInputs) -> Result<ImageTextToTextOutput> {
        ForImageTextToText::forward(&self.0, inputs)
    }

    fn forward_with_cache(&self, inputs: &ModelInputs, cache: &mut KvCache) -> Result<ImageTextToTextOutput> {
        self.0.forward_with_cache(inputs, cache)
    }

    fn supports_cache(&self) -> bool {
        true
    }

    fn max_positions(&self) -> Option<usize> {
        ForImageTextToText::max_positions(&self.0)
    }

    fn image_token_id(&self) -> Option<u32> {
        ForImageTextToText::image_token_id(&self.0)
    }
}

/// `SmolVLMForConditionalGeneration` as `AutoModelForMultimodalLM` loads it.
#[derive(Debug, AutoRegister)]
#[auto(task = "multimodal-lm", class = "SmolVLMForConditionalGeneration")]
pub struct SmolVLMForMultimodalLm(pub SmolVLMForConditionalGeneration);

autocandle_idefics3::same_class_heads!(
    multimodal_lm SmolVLMForMultimodalLm, SmolVLMForConditionalGeneration, SmolVLMConfig
);

#[cfg(test)]
mod tests;

//! LLaVA for autocandle, after `transformers`' `modeling_llava` (5.25).
//!
//! - [`LlavaConfig`] (model type `llava`): a CLIP `vision_config`, a `text_config` of any
//!   text model type `autocandle_vlm` knows (`llama` by default; `mistral`, `qwen2`, `gemma`,
//!   ...), `vision_feature_layer` (one index or a list, concatenated),
//!   `vision_feature_select_strategy`, the projector's activation and bias;
//! - [`LlavaModel`] (`base`): the CLIP vision tower's selected hidden states (before
//!   `post_layernorm`; the class token dropped with the `default` strategy), projected by
//!   `multi_modal_projector` (`linear_1`, activation, `linear_2`) into the language model's
//!   embedding space, where they replace the prompt's image tokens;
//! - [`LlavaForConditionalGeneration`] (`image-text-to-text`, and the same class as
//!   [`LlavaForMultimodalLm`], [`LlavaForVision2Seq`] and [`LlavaForPreTraining`]): with the
//!   language-modelling head, and a key/value cache for generation (images on the first pass).
//!
//! Weight names: `transformers` 5 keeps the model as `model.vision_tower.*`,
//! `model.multi_modal_projector.*`, `model.language_model.*` and `lm_head.*`, and saves it as
//! `vision_tower.*`, `multi_modal_projector.*`, `language_model.model.*` and
//! `language_model.lm_head.*` (its conversion mapping for `llava`); checkpoints of 4.x have
//! the CLIP tower under `vision_tower.vision_model.*`. All of these load.

#![warn(missing_docs)]

mod config;
mod model;

pub use config::{LlavaConfig, SelectStrategy, VisionFeatureLayer};
pub use model::{
    LlavaForConditionalGeneration, LlavaForMultimodalLm, LlavaForPreTraining, LlavaForVision2Seq, LlavaModel,
};

#[cfg(test)]
mod tests;

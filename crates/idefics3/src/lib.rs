//! Idefics3 for autocandle, after `transformers`' `modeling_idefics3` (5.25).
//!
//! - [`Idefics3Config`] (model type `idefics3`) with its [`Idefics3VisionConfig`] (model type
//!   `idefics3_vision`, whose base model is [`Idefics3VisionTransformer`]);
//! - [`Idefics3Model`] (`base`): the vision transformer, the connector and the text model;
//! - [`Idefics3ForConditionalGeneration`] (`image-text-to-text`), and the same class as
//!   [`Idefics3ForMultimodalLm`] (`multimodal-lm`) and [`Idefics3ForPreTraining`]
//!   (`pretraining`).
//!
//! The vision transformer is SigLIP's, made for images of any size up to `image_size`:
//! `pixel_values` `[batch, images, 3, height, width]` (images padded to the batch's largest,
//! image slots padded with all-zero images, which are dropped) with `pixel_attention_mask`
//! `[batch, images, height, width]` marking the real pixels; a patch is real when any of its
//! pixels is, padded patches are masked as keys and take position 0, and real patches take
//! bucketized positions ([`Idefics3VisionTransformer::position_ids`]); an image with no real
//! patch at all attends to nothing (a context of 0, as PyTorch's SDPA gives). The layers'
//! MLP and attention arithmetic are CLIP's (`autocandle_clip::layers`). The
//! connector pixel-shuffles `scale_factor^2` neighbouring patches into one token and projects
//! it to the text model's width; those features replace the prompt's image tokens
//! (`image_token_id`) in reading order. The text model is any llama-like decoder
//! `autocandle_vlm::text_decoder_spec` knows (llama by default).
//!
//! `autocandle-smolvlm` reuses all of this ([`Flavor::SmolVlm`]).

#![warn(missing_docs)]

mod config;
mod model;
mod vision;

pub use config::{Idefics3Config, Idefics3VisionConfig};
pub use model::{
    Flavor, Idefics3ForConditionalGeneration, Idefics3ForMultimodalLm, Idefics3ForPreTraining, Idefics3Model,
    ImageEncoder,
};
pub use vision::{Idefics3Connector, Idefics3VisionTransformer};

#[doc(hidden)]
pub mod __private {
    pub use autocandle_core::{
        ForImageTextToText, ForMultimodalLm, ForPreTraining, ImageTextToTextOutput, KvCache, LoadModel, ModelInputs,
        PreTrainedModel, PreTrainingOutput, Result,
    };
    pub use candle_core::{DType, Device};
    pub use candle_nn::VarBuilder;
}

#[cfg(test)]
mod tests;

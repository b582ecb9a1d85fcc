//! CLIP for autocandle, after `transformers`' `modeling_clip` (5.23).
//!
//! - [`CLIPConfig`] (model type `clip`) with its [`CLIPTextConfig`] (`clip_text_model`) and
//!   [`CLIPVisionConfig`] (`clip_vision_model`);
//! - [`CLIPModel`]: the base model and zero-shot image classifier of `clip`;
//!   [`CLIPForImageClassification`];
//! - the towers [`CLIPTextModel`] and [`CLIPVisionModel`] (the base models of
//!   `clip_text_model` / `clip_vision_model`, and loadable from a `clip` checkpoint with their
//!   `from_pretrained`), and [`CLIPTextModelWithProjection`] / [`CLIPVisionModelWithProjection`]
//!   (no Auto class in `transformers`; `from_pretrained` loads them);
//! - [`layers`]: the encoder, embeddings and masks, shared with SigLIP; [`load::Tower`], the
//!   loader of one tower of a dual encoder; [`dual`]: the dual-encoder plumbing above the layers
//!   (the [`dual::DualEncoder`] trait and its outputs, the classifier head), also shared with
//!   SigLIP, with the macros that implement the autocandle traits ([`dual_encoder_model!`],
//!   [`tower_model!`], [`pretrained_model!`], [`tower_config!`]).
//!
//! Weight names read as the `transformers` state dict (`text_model.encoder.layers.N.self_attn.q_proj.weight`,
//! `vision_model.embeddings.class_embedding`, `visual_projection.weight`, `logit_scale`).
//! Images must be `image_size` square (the position embeddings are not interpolated): make
//! `pixel_values` with the model's `AutoImageProcessor`, and `input_ids` with its tokenizer.

#![warn(missing_docs)]

mod config;
pub mod dual;
pub mod layers;
pub mod load;
mod model;
mod text;
mod vision;

pub use config::{validate_vision, CLIPConfig, CLIPTextConfig, CLIPVisionConfig, TokenIds};
pub use model::{__heads, CLIPForImageClassification, CLIPImageClassifier, CLIPModel};
pub use text::{CLIPTextModel, CLIPTextModelOutput, CLIPTextModelWithProjection};
pub use vision::{CLIPVisionModel, CLIPVisionModelOutput, CLIPVisionModelWithProjection};

#[cfg(test)]
mod tests;

/// Re-exports for the code that this crate's macros generate. Not public API.
#[doc(hidden)]
pub mod __private {
    pub use autocandle_core;
    pub use candle_core::{DType, Device};
    pub use candle_nn::VarBuilder;
}

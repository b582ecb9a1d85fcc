//! SigLIP for autocandle, after `transformers`' `modeling_siglip` (5.23).
//!
//! - [`SiglipConfig`] (model type `siglip`) with its [`SiglipTextConfig`] and
//!   [`SiglipVisionConfig`] (`siglip_vision_model`);
//! - [`SiglipModel`]: the base model and zero-shot image classifier of `siglip`;
//!   [`SiglipForImageClassification`];
//! - the towers [`SiglipVisionModel`] (the base model of `siglip_vision_model`) and
//!   [`SiglipTextModel`] (no Auto class in `transformers`); both load from a `siglip`
//!   checkpoint with their `from_pretrained`.
//!
//! SigLIP is CLIP's architecture with these differences, and reuses its layers
//! (`autocandle_clip::layers`): no class token and a bias on the patch embedding; no
//! LayerNorm before the vision encoder, one after it on every patch; images pooled by an
//! attention-pooling head with a learned probe; a bidirectional text encoder pooled at the
//! last position through a linear `head`; no projections; logits with a learned bias. The
//! dual-encoder plumbing is CLIP's too (`autocandle_clip::dual`: the contrastive forward, the
//! Auto trait impls and the zero-shot registration).
//!
//! Weight names read as the `transformers` state dict (`vision_model.head.attention.in_proj_weight`,
//! `text_model.head.weight`, `logit_bias`). Make `pixel_values` with the model's
//! `AutoImageProcessor`, and `input_ids` with its tokenizer, padded to `max_length`.

#![warn(missing_docs)]

mod config;
mod model;
mod towers;

pub use config::{SiglipConfig, SiglipTextConfig, SiglipVisionConfig};
pub use model::{__heads, SiglipForImageClassification, SiglipImageClassifier, SiglipModel};
pub use towers::{SiglipTextModel, SiglipVisionModel};

#[cfg(test)]
mod tests;

//! DPT for autocandle, after `transformers`' `modeling_dpt` (5.25): [`DPTConfig`], [`DPTModel`]
//! (its ViT), [`DPTForDepthEstimation`] and [`DPTForSemanticSegmentation`], and the neck
//! ([`DPTNeck`]: reassemble and fusion stages) that Depth Anything shares.
//!
//! Weight names read as the `transformers` state dict (`dpt.embeddings.position_embeddings`,
//! `dpt.encoder.layer.N.attention.attention.query.weight`, `neck.reassemble_stage.layers.N.resize.weight`,
//! `neck.fusion_stage.layers.N.residual_layer1.convolution1.weight`, `head.head.0.weight`).
//! The position embeddings are resized (bilinearly) to every input's patch grid, as
//! `transformers` does. DPTForDepthEstimation with a DINOv2 `backbone_config` runs
//! `autocandle_dinov2::Dinov2Backbone` in place of the ViT; DPT-Hybrid (`is_hybrid`, a BiT
//! backbone) and other backbones are refused with an error that says so.

#![warn(missing_docs)]

mod config;
mod heads;
mod neck;
mod vit;

pub use config::{DPTConfig, Readout};
pub use heads::{DPTForDepthEstimation, DPTForSemanticSegmentation};
pub use neck::{python_index, DPTNeck, NeckSpec};
pub use vit::{DPTFeatures, DPTModel};

#[cfg(test)]
mod tests;

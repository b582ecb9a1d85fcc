//! ResNet for autocandle, after `transformers`' `modeling_resnet` (5.25): [`ResNetConfig`],
//! [`ResNetModel`], the head [`ResNetForImageClassification`] and [`ResNetBackbone`] (the
//! feature maps of chosen stages, for DETR and other detectors).
//!
//! Weight names read as the `transformers` state dict (`resnet.embedder.embedder.convolution.weight`,
//! `resnet.encoder.stages.N.layers.M.layer.K.normalization.running_var`, `classifier.1.weight`).
//! Any image size works; make `pixel_values` with the model's `AutoImageProcessor`.

#![warn(missing_docs)]

mod config;
mod model;

pub use config::{out_stage_indices, LayerType, ResNetConfig};
pub use model::{ResNetBackbone, ResNetForImageClassification, ResNetModel};

#[cfg(test)]
mod tests;

//! DETR for autocandle, after `transformers`' `modeling_detr` (5.25): [`DetrConfig`],
//! [`DetrModel`] and the head [`DetrForObjectDetection`].
//!
//! The backbone is `transformers`' ResNet ([`autocandle_resnet::ResNetBackbone`], its
//! BatchNorms frozen: eval-mode statistics, `eps` 1e-5), built from `backbone_config`
//! (`use_timm_backbone: false`). A timm backbone (`use_timm_backbone: true`, `backbone:
//! "resnet50"`, as most Hub configs have it) is the same network under timm's weight names,
//! which are mapped ([`timm_resnet_name`]) for `resnet18`, `resnet34`, `resnet50`,
//! `resnet101` and `resnet152`; other timm models and the dilated (DC5) variants are
//! `Error::Unsupported`.
//!
//! Weight names read as the `transformers` checkpoints (`model.backbone.conv_encoder.model.*`,
//! `model.input_projection`, `model.encoder.layers.N.self_attn.out_proj`, `...fc1`,
//! `model.query_position_embeddings`, `class_labels_classifier`, `bbox_predictor.layers.N`).
//! `pixel_mask` (`[B, H, W]`, 1 = real pixel) marks the padding of batched images of
//! different sizes; without it every pixel is real. `DetrForSegmentation` is not implemented.

#![warn(missing_docs)]

mod config;
mod model;
mod position;

pub use config::{timm_resnet_name, DetrBackboneSpec, DetrConfig};
pub use model::{DetrForObjectDetection, DetrModel};

#[cfg(test)]
mod tests;

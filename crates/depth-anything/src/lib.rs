//! Depth Anything for autocandle, after `transformers`' `modeling_depth_anything` (5.25):
//! [`DepthAnythingConfig`] and [`DepthAnythingForDepthEstimation`]: a DINOv2 backbone
//! (`autocandle_dinov2::Dinov2Backbone`), the DPT-style neck (`autocandle_dpt::DPTNeck` with
//! Depth Anything's switches: the `[CLS]` token dropped, biased residual units, each fusion
//! layer upsampled to the next map's size) and the depth head (relative: ReLU; metric:
//! sigmoid times `max_depth`).
//!
//! Weight names read as the `transformers` state dict (`backbone.embeddings.cls_token`,
//! `backbone.encoder.layer.N.*`, `neck.reassemble_stage.layers.N.projection.weight`,
//! `neck.fusion_stage.layers.N.residual_layer1.convolution1.weight`, `head.conv1.weight`).

#![warn(missing_docs)]

mod config;
mod model;

pub use config::{DepthAnythingConfig, DepthEstimationType};
pub use model::DepthAnythingForDepthEstimation;

#[cfg(test)]
mod tests;

//! Swin Transformer for autocandle, after `transformers`' `modeling_swin` (5.25): [`SwinConfig`],
//! [`SwinModel`], the heads [`SwinForImageClassification`] and [`SwinForMaskedImageModeling`],
//! and [`SwinBackbone`] (feature maps of chosen stages, for detection and segmentation models).
//!
//! Weight names read as the `transformers` checkpoints (`swin.embeddings.patch_embeddings.projection.weight`,
//! `swin.encoder.layers.N.blocks.M.attention.self.query.weight`,
//! `...attention.self.relative_position_bias_table`, `swin.encoder.layers.N.downsample.reduction.weight`,
//! `classifier.weight`, `decoder.0.weight`).
//!
//! Images of any size of at least one patch run when the model has no absolute position
//! embeddings: the image is zero-padded to whole patches, each stage's grid to whole windows,
//! and odd grids before patch merging, as in `transformers`. A stage whose grid is no larger
//! than the window attends without the shift; one smaller than the window is an error, as it
//! fails in `transformers` 5 (its relative position bias is fixed to the configured window).
//! `transformers` also keeps the shrunk window and shift on the layer for later calls; here
//! every call decides afresh.
//!
//! The window machinery ([`window`]), the embeddings ([`SwinEmbeddings`]) and the heads over
//! [`SwinBody`] are shared with `autocandle-swinv2`.

#![warn(missing_docs)]

mod config;
mod embeddings;
mod heads;
mod model;
pub mod window;

pub use config::{Size2, SwinConfig, MAX_WINDOW_SIZE};
pub use embeddings::{SwinEmbeddings, TORCH_LAYER_NORM_EPS};
pub use heads::{
    __heads, SwinBody, SwinClassifier, SwinForImageClassification, SwinForMaskedImageModeling, SwinHead,
    SwinMaskedImageModel,
};
pub use model::{SwinBackbone, SwinModel};

#[doc(hidden)]
pub use model::window_softmax;

#[cfg(test)]
mod tests;

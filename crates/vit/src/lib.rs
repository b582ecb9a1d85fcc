//! ViT for autocandle, after `transformers`' `modeling_vit` (5.23): [`ViTConfig`],
//! [`ViTModel`] and the heads [`ViTForImageClassification`] and [`ViTForMaskedImageModeling`].
//!
//! Weight names read as the `transformers` state dict (`vit.embeddings.patch_embeddings.projection.weight`,
//! `vit.encoder.layer.N.attention.attention.query.weight`, `classifier.weight`, `decoder.0.weight`).
//! Images must have the model's `image_size`, unless `ModelInputs::interpolate_pos_encoding` is
//! set: the position embeddings are then resized bicubically to the image's patch grid, as
//! `transformers` does with `interpolate_pos_encoding=True`. Make `pixel_values` with the model's
//! `AutoImageProcessor`.

#![warn(missing_docs)]

mod config;
mod heads;
mod layer;
mod model;

pub use config::{Size2, ViTConfig};
pub use heads::{
    __heads, ViTClassifier, ViTForImageClassification, ViTForMaskedImageModeling, ViTHead, ViTMaskedImageModel,
};
pub use layer::{ViTAttention, ViTLayer, ViTLayerSpec};
pub use model::ViTModel;

#[cfg(test)]
mod tests;

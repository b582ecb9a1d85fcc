//! ConvNeXT for autocandle, after `transformers`' `modeling_convnext` (5.25): [`ConvNextConfig`],
//! [`ConvNextModel`], the head [`ConvNextForImageClassification`] and [`ConvNextBackbone`];
//! [`ConvNextNetwork`] is shared with ConvNeXT V2 (`autocandle-convnextv2`).
//!
//! Weight names read as the `transformers` state dict (`convnext.embeddings.patch_embeddings.weight`,
//! `convnext.encoder.stages.N.layers.M.dwconv.weight`, `classifier.weight`). Any image of at
//! least `patch_size * 2^(num_stages - 1)` pixels a side works; make `pixel_values` with the
//! model's `AutoImageProcessor`.

#![warn(missing_docs)]

mod config;
mod depthwise;
mod model;

pub use config::{out_stage_indices, ConvNextConfig, Size2};
pub use model::{
    to_channels_first, ConvNextBackbone, ConvNextForImageClassification, ConvNextModel, ConvNextNetwork, Variant,
};

#[cfg(test)]
mod tests;

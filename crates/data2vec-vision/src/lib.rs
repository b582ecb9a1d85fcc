//! data2vec-vision for autocandle, after `transformers`' `modeling_data2vec_vision` (5.25):
//! [`Data2VecVisionConfig`], [`Data2VecVisionModel`] and the heads
//! [`Data2VecVisionForImageClassification`] and [`Data2VecVisionForSemanticSegmentation`].
//!
//! The network is BEiT's (relative position biases, layer scale, mean pooling), built with
//! `autocandle-beit` under the `data2vec_vision` prefix. What differs: `Data2VecVisionModel`
//! (the `AutoModel` class) has no pooler, so `pooler_output` is absent; the segmentation head
//! reads the hidden states whose index + 1 is in `out_indices` and reshapes them to the
//! config's `image_size // patch_size` grid (images must have that size); its decode heads
//! name their weights `convolution` / `normalization` / `psp_bottleneck` /
//! `psp_modules.blocks.N.conv`, as `transformers` 5.25 does.

#![warn(missing_docs)]

mod config;
mod model;

pub use config::Data2VecVisionConfig;
pub use model::{Data2VecVisionForImageClassification, Data2VecVisionForSemanticSegmentation, Data2VecVisionModel};

#[cfg(test)]
mod tests;

//! SegFormer for autocandle, after `transformers`' `modeling_segformer` (5.25): [`SegformerConfig`],
//! [`SegformerModel`] (the Mix Transformer encoder), [`SegformerForImageClassification`] and
//! [`SegformerForSemanticSegmentation`] (the all-MLP decode head).
//!
//! Weight names read as the checkpoints on the Hub (and as `transformers`' `save_pretrained`
//! writes them): `segformer.encoder.patch_embeddings.N.proj.weight`,
//! `segformer.encoder.block.N.M.attention.self.query.weight`, `decode_head.linear_c.N.proj.weight`.
//! Images of any size of at least one patch work: there are no position embeddings (the Mix-FFN's
//! depthwise convolution carries the positions).

#![warn(missing_docs)]

mod config;
mod heads;
mod model;

pub use config::SegformerConfig;
pub use heads::{SegformerForImageClassification, SegformerForSemanticSegmentation};
pub use model::{SegformerEncoder, SegformerModel};

#[cfg(test)]
mod tests;

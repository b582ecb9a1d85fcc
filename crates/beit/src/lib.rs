//! BEiT for autocandle, after `transformers`' `modeling_beit` (5.25): [`BeitConfig`],
//! [`BeitModel`] and the heads [`BeitForImageClassification`] and
//! [`BeitForSemanticSegmentation`].
//!
//! Weight names read as the `transformers` state dict (`beit.embeddings.patch_embeddings.projection.weight`,
//! `beit.encoder.layer.N.attention.attention.query.weight`, `beit.encoder.layer.N.lambda_1`,
//! `beit.encoder.relative_position_bias.relative_position_bias_table`, `decode_head.psp_modules.0.1.conv.weight`).
//! Images of any size of at least one patch are taken: the relative position bias tables and
//! the absolute position embeddings are resized to the input's patch grid as `transformers`
//! does (so `interpolate_pos_encoding` changes nothing). `BeitForMaskedImageModeling` (visual
//! token prediction) is not implemented: no Auto class of `transformers` maps it.
//!
//! The encoder block ([`EncoderLayer`]) and the relative position bias are public: DeiT and
//! data2vec-vision build on them (resizing is `autocandle_core::resize`).

#![warn(missing_docs)]

mod config;
mod heads;
mod layer;
mod model;

pub use config::BeitConfig;
pub use heads::{BeitForImageClassification, BeitForSemanticSegmentation, HeadNames, SegmentationOptions};
pub use layer::{
    apply_mask_token, interpolate_positions, EncoderLayer, LayerSpec, PatchProjection, RelativePositionBias,
};
pub use model::BeitModel;

#[cfg(test)]
mod tests;

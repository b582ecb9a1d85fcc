//! DeiT for autocandle, after `transformers`' `modeling_deit` (5.25): [`DeiTConfig`],
//! [`DeiTModel`] and the heads [`DeiTForImageClassification`] (which is
//! [`DeiTForImageClassificationWithTeacher`] when `architectures` names it) and
//! [`DeiTForMaskedImageModeling`].
//!
//! DeiT is ViT with a distillation token beside `[CLS]`; the blocks are BEiT's public
//! [`autocandle_beit::EncoderLayer`] (ViT's block when layer scale and relative position bias are
//! off). Weight names read as the `transformers` state dict (`deit.embeddings.distillation_token`,
//! `deit.encoder.layer.N.attention.attention.query.weight`, `cls_classifier.weight`,
//! `distillation_classifier.weight`, `decoder.0.weight`). Images must have the model's
//! `image_size` unless `interpolate_pos_encoding` is set (the position embeddings are then
//! resized bicubically as `transformers` does).

#![warn(missing_docs)]

mod config;
mod heads;
mod model;

pub use config::DeiTConfig;
pub use heads::{
    DeiTClassifier, DeiTForImageClassification, DeiTForImageClassificationWithTeacher, DeiTForMaskedImageModeling,
};
pub use model::DeiTModel;

#[cfg(test)]
mod tests;

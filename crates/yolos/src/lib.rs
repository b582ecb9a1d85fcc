//! YOLOS for autocandle, after `transformers`' `modeling_yolos` (5.25): [`YolosConfig`],
//! [`YolosModel`] and the head [`YolosForObjectDetection`].
//!
//! Weight names read as the `transformers` state dict (`vit.embeddings.detection_tokens`,
//! `vit.encoder.mid_position_embeddings`, `vit.encoder.layer.N.attention.attention.query.weight`,
//! `class_labels_classifier.layers.N.weight`, `bbox_predictor.layers.N.weight`). Images may have
//! any size of at least one patch: the position embeddings (and the mid-layer ones) are
//! interpolated bicubically from the config's `image_size` grid to the input's, as
//! `transformers` always does. Make `pixel_values` with the model's `AutoImageProcessor`.

#![warn(missing_docs)]

mod config;
mod model;

pub use config::{Size2, YolosConfig};
pub use model::{MlpHead, YolosForObjectDetection, YolosModel};

#[cfg(test)]
mod tests;

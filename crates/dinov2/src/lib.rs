//! DINOv2 for autocandle, after `transformers`' `modeling_dinov2` (5.25): [`Dinov2Config`],
//! [`Dinov2Model`], the head [`Dinov2ForImageClassification`] and [`Dinov2Backbone`] (feature
//! maps of chosen stages, for Depth Anything and other dense heads).
//!
//! The network ([`Dinov2Encoder`]) is shared with `autocandle-dinov2-with-registers`, which
//! builds it from its own config through [`Dinov2LikeConfig`].
//!
//! Weight names read as the `transformers` checkpoints (`dinov2.embeddings.patch_embeddings.projection.weight`,
//! `dinov2.encoder.layer.N.attention.attention.query.weight`, `...mlp.fc1.weight` or, with
//! SwiGLU, `...mlp.weights_in.weight`, `...layer_scale1.lambda1`, `classifier.weight`).
//! Images of any size of at least one patch are accepted: the position embeddings are always
//! interpolated bicubically to the image's patch grid, as `transformers` does; make
//! `pixel_values` with the model's `AutoImageProcessor`.

#![warn(missing_docs)]

mod backbone;
mod config;
mod heads;
mod model;

pub use backbone::Dinov2Backbone;
pub use config::{Dinov2Config, Dinov2LikeConfig, Dinov2Spec, Size2};
pub use heads::{__heads, Dinov2Base, Dinov2Classifier, Dinov2Head};
pub use model::Dinov2Encoder;

autocandle_core::register_heads! {
    family: crate, config: Dinov2Config, prefix: "dinov2";
    base: Dinov2Model;
    /// A linear classifier on the `[CLS]` state concatenated with the mean patch state (none
    /// with `num_labels = 0`).
    image_classification: Dinov2ForImageClassification;
}

#[cfg(test)]
mod tests;

//! Swin Transformer V2 for autocandle, after `transformers`' `modeling_swinv2` (5.25), on
//! `autocandle-swin` (embeddings, window machinery and heads): [`Swinv2Config`],
//! [`Swinv2Model`], the heads [`Swinv2ForImageClassification`] and
//! [`Swinv2ForMaskedImageModeling`], and [`Swinv2Backbone`] (feature maps of chosen stages).
//!
//! What differs from Swin: cosine attention scaled by `exp(min(logit_scale, log 100))`, the
//! relative position bias made by a small MLP (`continuous_position_bias_mlp`) from
//! log-spaced relative coordinates (scaled by `pretrained_window_sizes`), `16 sigmoid` of it
//! added, no bias on the key projection, the norms after attention and MLP (res-post-norm),
//! and patch merging that reduces before it normalises. Each stage's window and shift are
//! fixed from the config's `image_size` as `transformers` builds them (other image sizes are
//! padded to that window), and the shifted-window mask is added twice, as there.
//!
//! Weight names read as the `transformers` checkpoints (`swinv2.embeddings.patch_embeddings.projection.weight`,
//! `swinv2.encoder.layers.N.blocks.M.attention.self.logit_scale`,
//! `...attention.self.continuous_position_bias_mlp.0.weight`, `classifier.weight`, `decoder.0.weight`).

#![warn(missing_docs)]

mod config;
mod model;

pub use config::Swinv2Config;
pub use model::{Swinv2Backbone, Swinv2Model};

use autocandle_core::Result;
use autocandle_swin::{SwinClassifier, SwinHead, SwinMaskedImageModel};
use candle_nn::VarBuilder;

/// The heads `autocandle_core::register_heads!` builds the Swin v2 registered types from (Swin's
/// heads over [`Swinv2Model`]). Not public API.
#[doc(hidden)]
pub mod __heads {
    use super::*;

    pub type ImageClassification = SwinClassifier<Swinv2Model>;
    pub type MaskedImageModeling = SwinMaskedImageModel<Swinv2Model>;

    /// Load the head `H`.
    pub fn load<H: SwinHead<Swinv2Model>>(
        vb: VarBuilder<'_>,
        config: &Swinv2Config,
        _prefix: &str,
        _class: &str,
    ) -> Result<H> {
        H::load(vb, config)
    }
}

// `Swinv2Model` (the base) is registered in `model.rs`.
autocandle_core::register_heads! {
    family: crate, config: Swinv2Config, prefix: "swinv2";
    /// A linear classifier on the mean of the last stage's states (none with `num_labels = 0`).
    image_classification: Swinv2ForImageClassification;
    /// The SimMIM decoder: a 1x1 convolution to `encoder_stride² * num_channels` channels and a
    /// pixel shuffle, reconstructing the image from the last stage; `bool_masked_pos` replaces
    /// masked patches by the mask token.
    masked_image_modeling: Swinv2ForMaskedImageModeling;
}

#[cfg(test)]
mod tests;

//! DINOv2 with registers for autocandle, after `transformers`' `modeling_dinov2_with_registers`
//! (5.25): [`Dinov2WithRegistersConfig`], [`Dinov2WithRegistersModel`], the head
//! [`Dinov2WithRegistersForImageClassification`] and [`Dinov2WithRegistersBackbone`].
//!
//! The network is `autocandle-dinov2`'s ([`autocandle_dinov2::Dinov2Encoder`]), built from
//! [`Dinov2WithRegistersConfig`] through [`Dinov2LikeConfig`](autocandle_dinov2::Dinov2LikeConfig).
//! What differs from DINOv2: `num_register_tokens` learned tokens (`embeddings.register_tokens`)
//! go after `[CLS]` once the position embeddings are added; the position embeddings are
//! interpolated with antialiased bicubic resampling; the mask token is always there; the
//! classifier's mean and the backbone's feature maps leave the register tokens out.

#![warn(missing_docs)]

mod config;

pub use config::Dinov2WithRegistersConfig;

use autocandle_core::Result;
use autocandle_dinov2::Dinov2Backbone;
use candle_core::Tensor;
use candle_nn::VarBuilder;

autocandle_core::register_heads! {
    family: autocandle_dinov2, config: Dinov2WithRegistersConfig, prefix: "dinov2_with_registers";
    base: Dinov2WithRegistersModel;
    /// A linear classifier on the `[CLS]` state concatenated with the mean patch state (register
    /// tokens left out; none with `num_labels = 0`).
    image_classification: Dinov2WithRegistersForImageClassification;
}

/// DINOv2 with registers as a backbone (`Dinov2WithRegistersBackbone`): as
/// [`Dinov2Backbone`], the feature maps leaving out the `[CLS]` and register tokens.
#[derive(Debug)]
pub struct Dinov2WithRegistersBackbone {
    inner: Dinov2Backbone,
}

impl Dinov2WithRegistersBackbone {
    /// Load from `vb` (the backbone's root: `embeddings.*`, `encoder.*`, `layernorm.*`).
    pub fn load(config: &Dinov2WithRegistersConfig, vb: VarBuilder<'_>) -> Result<Self> {
        let spec = autocandle_dinov2::Dinov2LikeConfig::dinov2_spec(config)?;
        Ok(Self { inner: Dinov2Backbone::load_spec(&spec, vb)? })
    }

    /// The backbone this wraps (stage indices, patch size, device).
    pub fn inner(&self) -> &Dinov2Backbone {
        &self.inner
    }

    /// The feature maps of the selected stages; see [`Dinov2Backbone::forward`].
    pub fn forward(&self, pixel_values: &Tensor) -> Result<Vec<Tensor>> {
        self.inner.forward(pixel_values)
    }
}

#[cfg(test)]
mod tests;

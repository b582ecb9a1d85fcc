//! The registered models on top of [`Dinov2Encoder`]: the base model and the image classifier,
//! which `autocandle_core::register_heads!` turns into registered types (for `dinov2` here and
//! for `dinov2_with_registers` in its crate).

use autocandle_core::nn::{linear, Linear};
use candle_core::{DType, Device, Module, Tensor, D};
use candle_nn::VarBuilder;

use autocandle_core::{
    BaseModelOutput, ForImageClassification, ImageClassifierOutput, Model, ModelInputs, PreTrainedModel, Result,
};

use crate::config::{Dinov2LikeConfig, Dinov2Spec};
use crate::model::Dinov2Encoder;

/// A head built from a [`Dinov2Spec`].
pub trait Dinov2Head: Sized {
    /// Load the head and the network under it from the checkpoint root `vb`; `prefix` is the base
    /// model's (`dinov2`, `dinov2_with_registers`). Errors: `TensorNotFound` / `TensorShape`
    /// when a weight is missing or misshapen, `InvalidConfig` when the config is inconsistent.
    fn load(vb: VarBuilder<'_>, spec: &Dinov2Spec, prefix: &str) -> Result<Self>;
}

/// The network without a head (`Dinov2Model`): `last_hidden_state` `[B, 1 + registers + patches,
/// hidden]` after the final LayerNorm and `pooler_output` `[B, hidden]`, its `[CLS]` state.
#[derive(Debug)]
pub struct Dinov2Base {
    encoder: Dinov2Encoder,
}

impl Dinov2Head for Dinov2Base {
    fn load(vb: VarBuilder<'_>, spec: &Dinov2Spec, _prefix: &str) -> Result<Self> {
        Ok(Self { encoder: Dinov2Encoder::load(vb, spec)? })
    }
}

impl Dinov2Base {
    /// The network.
    pub fn encoder(&self) -> &Dinov2Encoder {
        &self.encoder
    }
}

impl Model for Dinov2Base {
    fn forward(&self, inputs: &ModelInputs) -> Result<BaseModelOutput> {
        let sequence = self.encoder.forward_inputs(inputs)?;
        let pooled = sequence.narrow(1, 0, 1)?.squeeze(1)?;
        Ok(BaseModelOutput::new(sequence, Some(pooled)))
    }
}

/// The image classifier (`Dinov2ForImageClassification`): a linear layer on the `[CLS]` state
/// concatenated with the mean of the patch states (register tokens left out), `[B, 2 * hidden]`.
#[derive(Debug)]
pub struct Dinov2Classifier {
    encoder: Dinov2Encoder,
    /// `None` with `num_labels = 0` (`nn.Identity`).
    classifier: Option<Linear>,
}

impl Dinov2Head for Dinov2Classifier {
    fn load(vb: VarBuilder<'_>, spec: &Dinov2Spec, prefix: &str) -> Result<Self> {
        let encoder = Dinov2Encoder::load(vb.pp(prefix), spec)?;
        let num_labels = spec.config.labels.num_labels();
        let classifier = if num_labels > 0 {
            Some(linear(2 * spec.config.hidden_size, num_labels, vb.pp("classifier"))?)
        } else {
            None
        };
        Ok(Self { encoder, classifier })
    }
}

impl ForImageClassification for Dinov2Classifier {
    fn forward(&self, inputs: &ModelInputs) -> Result<ImageClassifierOutput> {
        // transformers passes extra keyword arguments (`bool_masked_pos`) on to the base model.
        let sequence = self.encoder.forward_inputs(inputs)?;
        let skip = 1 + self.encoder.num_register_tokens();
        let patches = sequence.dim(1)? - skip;
        let cls = sequence.narrow(1, 0, 1)?.squeeze(1)?;
        let mean = sequence.narrow(1, skip, patches)?.mean(1)?;
        let features = Tensor::cat(&[&cls, &mean], D::Minus1)?;
        let logits = match &self.classifier {
            Some(classifier) => classifier.forward(&features)?,
            None => features,
        };
        Ok(ImageClassifierOutput::new(logits))
    }
}

macro_rules! through_encoder {
    ($($head:ty),*) => {$(
        impl PreTrainedModel for $head {
            fn device(&self) -> &Device {
                self.encoder.device()
            }

            fn dtype(&self) -> DType {
                self.encoder.dtype()
            }
        }
    )*};
}

through_encoder!(Dinov2Base, Dinov2Classifier);

/// The heads `autocandle_core::register_heads!` builds the DINOv2 registered types from (here and
/// in `autocandle-dinov2-with-registers`). Not public API.
#[doc(hidden)]
pub mod __heads {
    use super::*;

    pub type Base = Dinov2Base;
    pub type ImageClassification = Dinov2Classifier;

    /// Resolve `config` and load the head `H` with the base model under `prefix`.
    pub fn load<H: Dinov2Head, C: Dinov2LikeConfig>(
        vb: VarBuilder<'_>,
        config: &C,
        prefix: &str,
        _class: &str,
    ) -> Result<H> {
        H::load(vb, &config.dinov2_spec()?, prefix)
    }
}

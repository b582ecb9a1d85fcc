//! The task heads on top of [`ViTModel`], which `autocandle_core::register_heads!`
//! (`family: crate`) turns into registered types.

use autocandle_core::nn::{linear, Linear};
use candle_core::{DType, Device, Module};
use candle_nn::VarBuilder;

use autocandle_core::{
    Error, ForImageClassification, ForMaskedImageModeling, ImageClassifierOutput, MaskedImageModelingOutput,
    ModelInputs, PreTrainedModel, Result,
};

use crate::config::ViTConfig;
use crate::model::ViTModel;

/// ViT with a linear classifier on the final `[CLS]` state.
#[derive(Debug)]
pub struct ViTClassifier {
    vit: ViTModel,
    /// `None` with `num_labels = 0` (`nn.Identity`).
    classifier: Option<Linear>,
}

/// A head built from a [`ViTConfig`].
pub trait ViTHead: Sized {
    /// Load the head and the model under it from the checkpoint root `vb`; errors:
    /// `TensorNotFound` / `TensorShape` when a weight is missing or misshapen, `InvalidConfig` when the config is inconsistent.
    fn load(vb: VarBuilder<'_>, config: &ViTConfig) -> Result<Self>;
}

impl ViTHead for ViTClassifier {
    fn load(vb: VarBuilder<'_>, config: &ViTConfig) -> Result<Self> {
        let vit = ViTModel::new(vb.pp("vit"), config, false, false)?;
        let num_labels = config.labels.num_labels();
        let classifier =
            if num_labels > 0 { Some(linear(config.hidden_size, num_labels, vb.pp("classifier"))?) } else { None };
        Ok(Self { vit, classifier })
    }
}

impl ForImageClassification for ViTClassifier {
    fn forward(&self, inputs: &ModelInputs) -> Result<ImageClassifierOutput> {
        let cls = self.vit.sequence_output(inputs)?.narrow(1, 0, 1)?.squeeze(1)?;
        let logits = match &self.classifier {
            Some(classifier) => classifier.forward(&cls)?,
            None => cls,
        };
        Ok(ImageClassifierOutput::new(logits))
    }
}

/// ViT with the SimMIM decoder: a 1x1 convolution to `encoder_stride² * num_channels`
/// channels and a pixel shuffle, reconstructing the image from the patch states.
#[derive(Debug)]
pub struct ViTMaskedImageModel {
    vit: ViTModel,
    /// `decoder.0`, the 1x1 convolution, as a linear map over the hidden size.
    decoder: Linear,
    stride: usize,
    num_channels: usize,
    patch_matches_stride: bool,
}

impl ViTHead for ViTMaskedImageModel {
    fn load(vb: VarBuilder<'_>, config: &ViTConfig) -> Result<Self> {
        let vit = ViTModel::new(vb.pp("vit"), config, false, true)?;
        let (h, c, r) = (config.hidden_size, config.num_channels, config.encoder_stride);
        if r == 0 {
            return Err(Error::config("vit", "`encoder_stride` must be at least 1, got 0"));
        }
        let conv = vb.pp("decoder.0");
        let weight = conv.get((r * r * c, h, 1, 1), "weight")?.reshape((r * r * c, h))?;
        let bias = conv.get(r * r * c, "bias")?;
        let (ph, pw) = config.patch_size.hw();
        Ok(Self {
            vit,
            decoder: Linear::new(weight, Some(bias)),
            stride: r,
            num_channels: c,
            patch_matches_stride: ph == r && pw == r,
        })
    }
}

impl ForMaskedImageModeling for ViTMaskedImageModel {
    fn forward(&self, inputs: &ModelInputs) -> Result<MaskedImageModelingOutput> {
        if inputs.bool_masked_pos.is_some() && !self.patch_matches_stride {
            return Err(Error::input(
                "with `bool_masked_pos`, `patch_size` must equal `encoder_stride` so that the reconstruction \
                 covers the masked patches exactly",
            ));
        }
        let sequence = self.vit.sequence_output(inputs)?;
        let (batch, len, _) = sequence.dims3()?;
        let patches = len - 1;
        let side = (patches as f64).sqrt().floor() as usize;
        if side * side != patches {
            return Err(Error::Unsupported(format!(
                "masked image modeling reshapes the {patches} patches into a square grid; use a square patch grid"
            )));
        }
        let (r, c) = (self.stride, self.num_channels);
        let y = self.decoder.forward(&sequence.narrow(1, 1, patches)?)?;
        // `PixelShuffle(r)` of the `[B, C r², h, w]` convolution output: out[b, c, i r + a, j r + b']
        // = in[b, c r² + a r + b', i, j].
        let reconstruction = y
            .reshape(vec![batch, side, side, c, r, r])?
            .permute(vec![0, 3, 1, 4, 2, 5])?
            .reshape((batch, c, side * r, side * r))?;
        Ok(MaskedImageModelingOutput::new(reconstruction))
    }
}

macro_rules! through_vit {
    ($($head:ty),*) => {$(
        impl PreTrainedModel for $head {
            fn device(&self) -> &Device {
                self.vit.device()
            }

            fn dtype(&self) -> DType {
                self.vit.dtype()
            }
        }
    )*};
}

through_vit!(ViTClassifier, ViTMaskedImageModel);

/// The heads `autocandle_core::register_heads!` builds the ViT registered types from. Not
/// public API.
#[doc(hidden)]
pub mod __heads {
    use super::*;

    pub type ImageClassification = ViTClassifier;
    pub type MaskedImageModeling = ViTMaskedImageModel;

    /// Load the head `H`.
    pub fn load<H: ViTHead>(vb: VarBuilder<'_>, config: &ViTConfig, _prefix: &str, _class: &str) -> Result<H> {
        H::load(vb, config)
    }
}

// `ViTModel` (the base) is registered in `model.rs`.
autocandle_core::register_heads! {
    family: crate, config: ViTConfig, prefix: "vit";
    /// A linear classifier on the final `[CLS]` state (none with `num_labels = 0`).
    image_classification: ViTForImageClassification;
    /// The SimMIM decoder: a 1x1 convolution to `encoder_stride² * num_channels` channels and
    /// a pixel shuffle, reconstructing the image from the patch states; `bool_masked_pos`
    /// replaces masked patches by the mask token.
    masked_image_modeling: ViTForMaskedImageModeling;
}

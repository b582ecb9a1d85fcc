//! The task heads of Swin and Swin v2, generic over the network ([`SwinBody`]):
//! image classification (a linear layer on the mean of the last stage) and SimMIM masked
//! image modeling (a 1x1 convolution and a pixel shuffle). `autocandle_core::register_heads!`
//! turns them into the registered types of each model type.

use autocandle_core::nn::{linear, Linear};
use candle_core::{DType, Device, Module, Tensor};
use candle_nn::VarBuilder;

use autocandle_core::{
    Error, ForImageClassification, ForMaskedImageModeling, ImageClassifierOutput, MaskedImageModelingOutput,
    ModelInputs, PreTrainedModel, RegisteredConfig, Result,
};

use crate::config::SwinConfig;
use crate::model::SwinModel;

/// A Swin-style network the shared heads run on (`SwinModel`, `Swinv2Model`).
pub trait SwinBody: PreTrainedModel + Sized {
    /// Its config.
    type Config: RegisteredConfig;
    /// `base_model_prefix`: where the network sits in head checkpoints (`swin`, `swinv2`).
    const PREFIX: &'static str;

    /// Build the network from its root `vb`, with or without the pooler and the mask token.
    fn load_body(
        vb: VarBuilder<'_>,
        config: &Self::Config,
        add_pooling_layer: bool,
        use_mask_token: bool,
    ) -> Result<Self>;

    /// The settings Swin v1 and v2 share.
    fn swin_config(config: &Self::Config) -> &SwinConfig;

    /// The normalised output of the last stage, `[batch, patches, num_features]`.
    fn sequence_output(&self, inputs: &ModelInputs) -> Result<Tensor>;
}

/// A head built from the config of its [`SwinBody`].
pub trait SwinHead<B: SwinBody>: Sized {
    /// Load the head and the network under it from the checkpoint root `vb`; errors:
    /// `TensorNotFound` / `TensorShape` when a weight is missing or misshapen, `InvalidConfig`
    /// when the config is inconsistent.
    fn load(vb: VarBuilder<'_>, config: &B::Config) -> Result<Self>;
}

/// The network with a linear classifier on the mean of the last stage's states (the pooler).
#[derive(Debug)]
pub struct SwinClassifier<B> {
    body: B,
    /// `None` with `num_labels = 0` (`nn.Identity`).
    classifier: Option<Linear>,
}

impl<B: SwinBody> SwinHead<B> for SwinClassifier<B> {
    fn load(vb: VarBuilder<'_>, config: &B::Config) -> Result<Self> {
        let body = B::load_body(vb.pp(B::PREFIX), config, true, false)?;
        let cfg = B::swin_config(config);
        let num_labels = cfg.labels.num_labels();
        let classifier =
            if num_labels > 0 { Some(linear(cfg.num_features(), num_labels, vb.pp("classifier"))?) } else { None };
        Ok(Self { body, classifier })
    }
}

impl<B: SwinBody> ForImageClassification for SwinClassifier<B> {
    fn forward(&self, inputs: &ModelInputs) -> Result<ImageClassifierOutput> {
        let pooled = self.body.sequence_output(inputs)?.mean(1)?;
        let logits = match &self.classifier {
            Some(classifier) => classifier.forward(&pooled)?,
            None => pooled,
        };
        Ok(ImageClassifierOutput::new(logits))
    }
}

/// The network with the SimMIM decoder: a 1x1 convolution of the last stage's states to
/// `encoder_stride² * num_channels` channels and a pixel shuffle (`decoder.0`).
#[derive(Debug)]
pub struct SwinMaskedImageModel<B> {
    body: B,
    /// `decoder.0`, the 1x1 convolution, as a linear map over the channels.
    decoder: Linear,
    stride: usize,
    num_channels: usize,
}

impl<B: SwinBody> SwinHead<B> for SwinMaskedImageModel<B> {
    fn load(vb: VarBuilder<'_>, config: &B::Config) -> Result<Self> {
        let body = B::load_body(vb.pp(B::PREFIX), config, false, true)?;
        let cfg = B::swin_config(config);
        let (f, c, r) = (cfg.num_features(), cfg.num_channels, cfg.encoder_stride);
        if r == 0 {
            return Err(Error::config(B::Config::MODEL_TYPE, "`encoder_stride` must be at least 1, got 0"));
        }
        let conv = vb.pp("decoder.0");
        let weight = conv.get((r * r * c, f, 1, 1), "weight")?.reshape((r * r * c, f))?;
        let bias = conv.get(r * r * c, "bias")?;
        Ok(Self { body, decoder: Linear::new(weight, Some(bias)), stride: r, num_channels: c })
    }
}

impl<B: SwinBody> ForMaskedImageModeling for SwinMaskedImageModel<B> {
    fn forward(&self, inputs: &ModelInputs) -> Result<MaskedImageModelingOutput> {
        let sequence = self.body.sequence_output(inputs)?;
        let (batch, len, _) = sequence.dims3()?;
        let side = (len as f64).sqrt().floor() as usize;
        if side * side != len {
            return Err(Error::Unsupported(format!(
                "masked image modeling reshapes the last stage's {len} patches into a square grid, as transformers \
                 does; use a square image"
            )));
        }
        let (r, c) = (self.stride, self.num_channels);
        let y = self.decoder.forward(&sequence)?;
        // `PixelShuffle(r)` of the `[B, C r², h, w]` convolution output: out[b, c, i r + a, j r + b']
        // = in[b, c r² + a r + b', i, j].
        let reconstruction = y
            .reshape(vec![batch, side, side, c, r, r])?
            .permute(vec![0, 3, 1, 4, 2, 5])?
            .reshape((batch, c, side * r, side * r))?;
        Ok(MaskedImageModelingOutput::new(reconstruction))
    }
}

impl<B: SwinBody> PreTrainedModel for SwinClassifier<B> {
    fn device(&self) -> &Device {
        self.body.device()
    }

    fn dtype(&self) -> DType {
        self.body.dtype()
    }
}

impl<B: SwinBody> PreTrainedModel for SwinMaskedImageModel<B> {
    fn device(&self) -> &Device {
        self.body.device()
    }

    fn dtype(&self) -> DType {
        self.body.dtype()
    }
}

/// The heads `autocandle_core::register_heads!` builds the Swin registered types from. Not
/// public API.
#[doc(hidden)]
pub mod __heads {
    use super::*;

    pub type ImageClassification = SwinClassifier<SwinModel>;
    pub type MaskedImageModeling = SwinMaskedImageModel<SwinModel>;

    /// Load the head `H`.
    pub fn load<H: SwinHead<SwinModel>>(
        vb: VarBuilder<'_>,
        config: &SwinConfig,
        _prefix: &str,
        _class: &str,
    ) -> Result<H> {
        H::load(vb, config)
    }
}

// `SwinModel` (the base) is registered in `model.rs`.
autocandle_core::register_heads! {
    family: crate, config: SwinConfig, prefix: "swin";
    /// A linear classifier on the mean of the last stage's states (none with `num_labels = 0`).
    image_classification: SwinForImageClassification;
    /// The SimMIM decoder: a 1x1 convolution to `encoder_stride² * num_channels` channels and a
    /// pixel shuffle, reconstructing the image from the last stage; `bool_masked_pos` replaces
    /// masked patches by the mask token.
    masked_image_modeling: SwinForMaskedImageModeling;
}

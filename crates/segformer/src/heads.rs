//! The SegFormer heads: [`SegformerForImageClassification`] (mean of the last stage, linear
//! classifier) and [`SegformerForSemanticSegmentation`] (the all-MLP decode head).

use autocandle_core::nn::{linear, Linear};
use autocandle_core::spatial::{resize_bilinear, BatchNorm2d, Conv2d, ConvSpec};
use candle_core::{DType, Device, Module, Tensor};
use candle_nn::VarBuilder;

use autocandle_core::{
    AutoRegister, Error, ForImageClassification, ForSemanticSegmentation, ImageClassifierOutput, LoadModel,
    ModelInputs, PreTrainedModel, Result, SemanticSegmenterOutput,
};

use crate::config::SegformerConfig;
use crate::model::SegformerModel;

/// PyTorch's `nn.BatchNorm2d` default epsilon.
const BATCH_NORM_EPS: f64 = 1e-5;

/// SegFormer with a linear classifier on the mean of the last stage's states
/// (`SegformerForImageClassification`).
#[derive(Debug, AutoRegister)]
#[auto(task = "image-classification", class = "SegformerForImageClassification")]
pub struct SegformerForImageClassification {
    segformer: SegformerModel,
    /// `None` with `num_labels = 0` (the pooled states are returned).
    classifier: Option<Linear>,
}

impl LoadModel for SegformerForImageClassification {
    type Config = SegformerConfig;
    const BASE_MODEL_PREFIX: &'static str = "segformer";

    fn load(vb: VarBuilder<'_>, config: &SegformerConfig) -> Result<Self> {
        let segformer = SegformerModel::new(vb.pp("segformer"), config)?;
        let hidden = config.hidden_sizes.last().copied().unwrap_or_default();
        let num_labels = config.labels.num_labels();
        let classifier = if num_labels > 0 { Some(linear(hidden, num_labels, vb.pp("classifier"))?) } else { None };
        Ok(Self { segformer, classifier })
    }
}

impl ForImageClassification for SegformerForImageClassification {
    fn forward(&self, inputs: &ModelInputs) -> Result<ImageClassifierOutput> {
        let last =
            self.segformer.hidden_states(inputs)?.pop().ok_or_else(|| Error::input("the encoder has no stage"))?;
        let pooled = last.flatten_from(2)?.mean(2)?;
        let logits = match &self.classifier {
            Some(classifier) => classifier.forward(&pooled)?,
            None => pooled,
        };
        Ok(ImageClassifierOutput::new(logits))
    }
}

/// `SegformerDecodeHead`: every stage projected to `decoder_hidden_size` (`linear_c.N.proj`),
/// resized to the first stage's size, concatenated from the last stage to the first, fused by a
/// 1x1 convolution, BatchNorm (eval mode) and ReLU, and classified per pixel.
#[derive(Debug)]
struct DecodeHead {
    linear_c: Vec<Linear>,
    linear_fuse: Conv2d,
    batch_norm: BatchNorm2d,
    classifier: Conv2d,
}

impl DecodeHead {
    fn load(vb: VarBuilder<'_>, cfg: &SegformerConfig) -> Result<Self> {
        let d = cfg.decoder_hidden_size;
        let n = cfg.num_encoder_blocks;
        let num_labels = cfg.labels.num_labels();
        if num_labels == 0 {
            return Err(Error::config("segformer", "the semantic segmentation head needs at least one label"));
        }
        Ok(Self {
            linear_c: (0..n)
                .map(|i| linear(cfg.hidden_sizes[i], d, vb.pp(format!("linear_c.{i}.proj"))))
                .collect::<candle_core::Result<_>>()?,
            linear_fuse: Conv2d::load(d * n, d, ConvSpec::new(1), false, vb.pp("linear_fuse"))?,
            batch_norm: BatchNorm2d::load(d, BATCH_NORM_EPS, vb.pp("batch_norm"))?,
            classifier: Conv2d::load(d, num_labels, ConvSpec::new(1), true, vb.pp("classifier"))?,
        })
    }

    fn forward(&self, states: &[Tensor]) -> Result<Tensor> {
        let (_, _, h0, w0) = states[0].dims4()?;
        let mut projected = Vec::with_capacity(states.len());
        for (state, proj) in states.iter().zip(&self.linear_c).rev() {
            let (b, c, h, w) = state.dims4()?;
            let seq = state.reshape((b, c, h * w))?.transpose(1, 2)?.contiguous()?;
            let y = proj.forward(&seq)?.transpose(1, 2)?.reshape((b, (), h, w))?;
            projected.push(resize_bilinear(&y, h0, w0, false)?);
        }
        let fused = self.linear_fuse.forward(&Tensor::cat(&projected, 1)?)?;
        let fused = self.batch_norm.forward(&fused)?.relu()?;
        self.classifier.forward(&fused)
    }
}

/// SegFormer with the all-MLP decode head (`SegformerForSemanticSegmentation`): `logits`
/// `[b, num_labels, h / 4, w / 4]` (the first stage's resolution).
#[derive(Debug, AutoRegister)]
#[auto(task = "semantic-segmentation", class = "SegformerForSemanticSegmentation")]
pub struct SegformerForSemanticSegmentation {
    segformer: SegformerModel,
    decode_head: DecodeHead,
}

impl LoadModel for SegformerForSemanticSegmentation {
    type Config = SegformerConfig;
    const BASE_MODEL_PREFIX: &'static str = "segformer";

    fn load(vb: VarBuilder<'_>, config: &SegformerConfig) -> Result<Self> {
        let segformer = SegformerModel::new(vb.pp("segformer"), config)?;
        Ok(Self { segformer, decode_head: DecodeHead::load(vb.pp("decode_head"), config)? })
    }
}

impl ForSemanticSegmentation for SegformerForSemanticSegmentation {
    fn forward(&self, inputs: &ModelInputs) -> Result<SemanticSegmenterOutput> {
        let states = self.segformer.hidden_states(inputs)?;
        let logits = self.decode_head.forward(&states)?;
        Ok(SemanticSegmenterOutput::new(logits))
    }
}

macro_rules! through_segformer {
    ($($head:ty),*) => {$(
        impl PreTrainedModel for $head {
            fn device(&self) -> &Device {
                self.segformer.device()
            }

            fn dtype(&self) -> DType {
                self.segformer.dtype()
            }
        }
    )*};
}

through_segformer!(SegformerForImageClassification, SegformerForSemanticSegmentation);

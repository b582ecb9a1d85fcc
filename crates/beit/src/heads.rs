//! The task heads on [`BeitModel`]: image classification (a linear layer on the pooled output)
//! and semantic segmentation (the feature pyramid, the UperNet decode head and the FCN
//! auxiliary head, as `transformers`' `BeitForSemanticSegmentation`).

use autocandle_core::nn::{linear, Linear};
use autocandle_core::{
    AutoRegister, Error, ForImageClassification, ForSemanticSegmentation, ImageClassifierOutput, LoadModel,
    ModelInputs, PreTrainedModel, Result, SemanticSegmenterOutput,
};
use candle_core::{DType, Device, Module, Tensor};
use candle_nn::VarBuilder;

use crate::config::BeitConfig;
use crate::interpolate::{adaptive_avg_pool, bilinear, spatial};
use crate::model::BeitModel;

/// PyTorch's `BatchNorm2d` epsilon.
const BATCH_NORM_EPS: f64 = 1e-5;

/// BEiT with a linear classifier on the pooled output (the mean-pooled patch states, or the
/// `[CLS]` state); none with `num_labels = 0`.
#[derive(Debug, AutoRegister)]
#[auto(task = "image-classification", class = "BeitForImageClassification")]
pub struct BeitForImageClassification {
    beit: BeitModel,
    classifier: Option<Linear>,
}

impl LoadModel for BeitForImageClassification {
    type Config = BeitConfig;
    const BASE_MODEL_PREFIX: &'static str = "beit";

    fn load(vb: VarBuilder<'_>, config: &BeitConfig) -> Result<Self> {
        let beit = BeitModel::new(vb.pp("beit"), config, true)?;
        let n = config.labels.num_labels();
        let classifier = if n > 0 { Some(linear(config.hidden_size, n, vb.pp("classifier"))?) } else { None };
        Ok(Self { beit, classifier })
    }
}

impl ForImageClassification for BeitForImageClassification {
    fn forward(&self, inputs: &ModelInputs) -> Result<ImageClassifierOutput> {
        let (_, pooled) = self.beit.sequence_and_pooled(inputs)?;
        let pooled = pooled.ok_or_else(|| Error::config("beit", "the classifier needs the pooler"))?;
        let logits = match &self.classifier {
            Some(c) => c.forward(&pooled)?,
            None => pooled,
        };
        Ok(ImageClassifierOutput::new(logits))
    }
}

/// A convolution without bias, an eval-mode `BatchNorm2d` and an optional ReLU
/// (`BeitConvLayer`: `conv`, `bn`; `fpn1.1` is a bare BatchNorm).
#[derive(Debug)]
struct ConvBn {
    weight: Option<Tensor>,
    padding: usize,
    scale: Tensor,
    shift: Tensor,
    relu: bool,
}

/// Fold an eval-mode `BatchNorm2d` at `vb` into `[1, C, 1, 1]` scale and shift.
fn batch_norm(vb: &VarBuilder<'_>, channels: usize) -> Result<(Tensor, Tensor)> {
    let weight = vb.get(channels, "weight")?;
    let bias = vb.get(channels, "bias")?;
    let mean = vb.get(channels, "running_mean")?;
    let var = vb.get(channels, "running_var")?;
    // A training counter; read so that the loading report stays clean.
    if vb.contains_tensor("num_batches_tracked") {
        vb.get((), "num_batches_tracked")?;
    }
    let scale = weight.div(&(var + BATCH_NORM_EPS)?.sqrt()?)?;
    let shift = (bias - mean.mul(&scale)?)?;
    Ok((scale.reshape((1, channels, 1, 1))?, shift.reshape((1, channels, 1, 1))?))
}

impl ConvBn {
    fn load(vb: VarBuilder<'_>, input: usize, output: usize, kernel: usize) -> Result<Self> {
        let weight = vb.pp("conv").get((output, input, kernel, kernel), "weight")?;
        let (scale, shift) = batch_norm(&vb.pp("bn"), output)?;
        Ok(Self { weight: Some(weight), padding: kernel / 2, scale, shift, relu: true })
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let x = match &self.weight {
            Some(w) => x.conv2d(w, self.padding, 1, 1, 1)?,
            None => x.clone(),
        };
        let x = x.broadcast_mul(&self.scale)?.broadcast_add(&self.shift)?;
        Ok(if self.relu { x.relu()? } else { x })
    }
}

/// A 1x1 convolution with bias (the classifiers).
#[derive(Debug)]
struct Conv1x1 {
    weight: Tensor,
    bias: Tensor,
}

impl Conv1x1 {
    fn load(vb: VarBuilder<'_>, input: usize, output: usize) -> Result<Self> {
        Ok(Self { weight: vb.get((output, input, 1, 1), "weight")?, bias: vb.get(output, "bias")? })
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let c = self.bias.dim(0)?;
        Ok(x.conv2d(&self.weight, 0, 1, 1, 1)?.broadcast_add(&self.bias.reshape((1, c, 1, 1))?)?)
    }
}

/// A 2x2 stride-2 transposed convolution with bias.
#[derive(Debug)]
struct UpConv {
    weight: Tensor,
    bias: Tensor,
}

impl UpConv {
    fn load(vb: VarBuilder<'_>, channels: usize) -> Result<Self> {
        Ok(Self { weight: vb.get((channels, channels, 2, 2), "weight")?, bias: vb.get(channels, "bias")? })
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let c = self.bias.dim(0)?;
        Ok(x.conv_transpose2d(&self.weight, 0, 0, 2, 1)?.broadcast_add(&self.bias.reshape((1, c, 1, 1))?)?)
    }
}

/// `BeitUperHead`: pyramid pooling on the coarsest map, a top-down feature pyramid, and a
/// classifier on their concatenation at the finest map's resolution.
#[derive(Debug)]
struct UperHead {
    pool_scales: Vec<usize>,
    psp_modules: Vec<ConvBn>,
    bottleneck: ConvBn,
    lateral_convs: Vec<ConvBn>,
    fpn_convs: Vec<ConvBn>,
    fpn_bottleneck: ConvBn,
    classifier: Conv1x1,
}

impl UperHead {
    fn load(vb: VarBuilder<'_>, cfg: &BeitConfig) -> Result<Self> {
        let c = cfg.hidden_size;
        let n = cfg.labels.num_labels();
        let psp_modules = (0..cfg.pool_scales.len())
            .map(|i| ConvBn::load(vb.pp(format!("psp_modules.{i}.1")), c, c, 1))
            .collect::<Result<_>>()?;
        Ok(Self {
            pool_scales: cfg.pool_scales.clone(),
            psp_modules,
            bottleneck: ConvBn::load(vb.pp("bottleneck"), c + cfg.pool_scales.len() * c, c, 3)?,
            lateral_convs: (0..3)
                .map(|i| ConvBn::load(vb.pp(format!("lateral_convs.{i}")), c, c, 1))
                .collect::<Result<_>>()?,
            fpn_convs: (0..3).map(|i| ConvBn::load(vb.pp(format!("fpn_convs.{i}")), c, c, 3)).collect::<Result<_>>()?,
            fpn_bottleneck: ConvBn::load(vb.pp("fpn_bottleneck"), 4 * c, c, 3)?,
            classifier: Conv1x1::load(vb.pp("classifier"), c, n)?,
        })
    }

    fn forward(&self, features: &[Tensor; 4]) -> Result<Tensor> {
        let top = &features[3];
        let size = spatial(top)?;
        let mut psp = vec![top.clone()];
        for (scale, conv) in self.pool_scales.iter().zip(&self.psp_modules) {
            let pooled = conv.forward(&adaptive_avg_pool(top, (*scale, *scale))?)?;
            psp.push(bilinear(&pooled, size)?);
        }
        let mut laterals = self
            .lateral_convs
            .iter()
            .zip(features.iter())
            .map(|(conv, f)| conv.forward(f))
            .collect::<Result<Vec<_>>>()?;
        laterals.push(self.bottleneck.forward(&Tensor::cat(&psp, 1)?)?);
        for i in (1..laterals.len()).rev() {
            let up = bilinear(&laterals[i], spatial(&laterals[i - 1])?)?;
            laterals[i - 1] = (&laterals[i - 1] + up)?;
        }
        let mut outs = Vec::with_capacity(laterals.len());
        for (conv, lateral) in self.fpn_convs.iter().zip(&laterals) {
            outs.push(conv.forward(lateral)?);
        }
        let finest = spatial(&outs[0])?;
        for lateral in laterals.iter().skip(outs.len()) {
            outs.push(lateral.clone());
        }
        let outs = outs.iter().map(|o| bilinear(o, finest)).collect::<Result<Vec<_>>>()?;
        self.classifier.forward(&self.fpn_bottleneck.forward(&Tensor::cat(&outs, 1)?)?)
    }
}

/// `BeitFCNHead`, the auxiliary head: loaded so that the checkpoint's weights are accounted
/// for; its logits are a training signal and are not computed.
#[derive(Debug)]
#[allow(dead_code)]
struct FcnHead {
    convs: Vec<ConvBn>,
    conv_cat: Option<ConvBn>,
    classifier: Conv1x1,
}

impl FcnHead {
    fn load(vb: VarBuilder<'_>, cfg: &BeitConfig) -> Result<Self> {
        let (input, c) = (cfg.hidden_size, cfg.auxiliary_channels);
        let convs = (0..cfg.auxiliary_num_convs)
            .map(|i| ConvBn::load(vb.pp(format!("convs.{i}")), if i == 0 { input } else { c }, c, 3))
            .collect::<Result<_>>()?;
        let conv_cat =
            if cfg.auxiliary_concat_input { Some(ConvBn::load(vb.pp("conv_cat"), input + c, c, 3)?) } else { None };
        let width = if cfg.auxiliary_num_convs == 0 { input } else { c };
        Ok(Self { convs, conv_cat, classifier: Conv1x1::load(vb.pp("classifier"), width, cfg.labels.num_labels())? })
    }
}

/// BEiT for semantic segmentation (`BeitForSemanticSegmentation`): the hidden states of the
/// four `out_indices` stages as patch-grid maps, a feature pyramid over them (4x and 2x
/// transposed-convolution upsampling, identity, 2x max pooling) and the UperNet decode head.
/// `logits` are `[batch, num_labels, 4·h, 4·w]` for an `h x w` patch grid (a quarter of the
/// input's resolution with 16 px patches), as `transformers` returns them.
#[derive(Debug, AutoRegister)]
#[auto(task = "semantic-segmentation", class = "BeitForSemanticSegmentation")]
pub struct BeitForSemanticSegmentation {
    beit: BeitModel,
    stages: Vec<usize>,
    fpn1: (UpConv, ConvBn, UpConv),
    fpn2: UpConv,
    decode_head: UperHead,
    #[allow(dead_code)]
    auxiliary_head: Option<FcnHead>,
}

impl BeitForSemanticSegmentation {
    /// Build from the model root `vb` (`beit`, `fpn1`, `decode_head`, ...) and its config
    /// (errors: `InvalidConfig` unless `out_indices` names four stages).
    pub fn new(vb: VarBuilder<'_>, config: &BeitConfig, model_type: &str) -> Result<Self> {
        let stages = config.stage_indices()?;
        if stages.len() != 4 {
            return Err(Error::config(
                model_type,
                format!(
                    "semantic segmentation needs `out_indices` to name 4 stages (e.g. [3, 5, 7, 11] for a base-sized \
                     model), got {stages:?}"
                ),
            ));
        }
        if config.labels.num_labels() == 0 {
            return Err(Error::config(model_type, "semantic segmentation needs `num_labels` of at least 1"));
        }
        let beit = BeitModel::new(vb.pp(model_type_prefix(model_type)), config, false)?;
        let c = config.hidden_size;
        let (scale, shift) = batch_norm(&vb.pp("fpn1.1"), c)?;
        let bn = ConvBn { weight: None, padding: 0, scale, shift, relu: false };
        Ok(Self {
            beit,
            // A stage `i` reads the hidden states `i - 1` of `transformers`' tuple, whose
            // first entry is the embeddings: stage 0 wraps around to the last layer's output.
            stages: stages.iter().map(|&s| if s == 0 { config.num_hidden_layers } else { s - 1 }).collect(),
            fpn1: (UpConv::load(vb.pp("fpn1.0"), c)?, bn, UpConv::load(vb.pp("fpn1.3"), c)?),
            fpn2: UpConv::load(vb.pp("fpn2.0"), c)?,
            decode_head: UperHead::load(vb.pp("decode_head"), config)?,
            auxiliary_head: if config.use_auxiliary_head {
                Some(FcnHead::load(vb.pp("auxiliary_head"), config)?)
            } else {
                None
            },
        })
    }
}

/// The attribute holding the base model: `beit`, or `data2vec_vision`.
fn model_type_prefix(model_type: &str) -> &'static str {
    if model_type == "data2vec-vision" {
        "data2vec_vision"
    } else {
        "beit"
    }
}

impl LoadModel for BeitForSemanticSegmentation {
    type Config = BeitConfig;
    const BASE_MODEL_PREFIX: &'static str = "beit";

    fn load(vb: VarBuilder<'_>, config: &BeitConfig) -> Result<Self> {
        Self::new(vb, config, "beit")
    }
}

impl ForSemanticSegmentation for BeitForSemanticSegmentation {
    fn forward(&self, inputs: &ModelInputs) -> Result<SemanticSegmenterOutput> {
        let (_, hidden, (gh, gw)) = self.beit.encode(inputs, &self.stages)?;
        let maps = hidden
            .iter()
            .map(|h| -> Result<Tensor> {
                let (batch, len, c) = h.dims3()?;
                Ok(h.narrow(1, 1, len - 1)?.transpose(1, 2)?.reshape((batch, c, gh, gw))?)
            })
            .collect::<Result<Vec<_>>>()?;
        let (up1, bn, up2) = &self.fpn1;
        let f0 = up2.forward(&autocandle_core::Activation::Gelu.forward(&bn.forward(&up1.forward(&maps[0])?)?)?)?;
        let f1 = self.fpn2.forward(&maps[1])?;
        let f3 = maps[3].max_pool2d_with_stride((2, 2), (2, 2))?;
        let logits = self.decode_head.forward(&[f0, f1, maps[2].clone(), f3])?;
        Ok(SemanticSegmenterOutput::new(logits))
    }
}

macro_rules! through_beit {
    ($($head:ty),*) => {$(
        impl PreTrainedModel for $head {
            fn device(&self) -> &Device {
                self.beit.device()
            }

            fn dtype(&self) -> DType {
                self.beit.dtype()
            }
        }
    )*};
}

through_beit!(BeitForImageClassification, BeitForSemanticSegmentation);

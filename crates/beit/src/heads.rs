//! The task heads on [`BeitModel`]: image classification (a linear layer on the pooled output)
//! and semantic segmentation (the feature pyramid, the UperNet decode head and the FCN
//! auxiliary head, as `transformers`' `BeitForSemanticSegmentation`).

use autocandle_core::nn::{linear, Linear};
use autocandle_core::resize::{resize_2d, Resample};
use autocandle_core::{
    AutoRegister, Error, ForImageClassification, ForSemanticSegmentation, ImageClassifierOutput, LoadModel,
    ModelInputs, PreTrainedModel, Result, SemanticSegmenterOutput,
};
use candle_core::{DType, Device, Module, Tensor, D};
use candle_nn::VarBuilder;

use crate::config::BeitConfig;
use crate::model::BeitModel;

/// `F.interpolate(x, size, mode="bilinear", align_corners=False)` on the last two axes.
fn bilinear(x: &Tensor, size: (usize, usize)) -> Result<Tensor> {
    resize_2d(x, size, Resample::Bilinear { align_corners: false })
}

/// `F.adaptive_avg_pool2d(x, size)` on the last two axes.
fn adaptive_avg_pool(x: &Tensor, size: (usize, usize)) -> Result<Tensor> {
    resize_2d(x, size, Resample::AdaptiveAvgPool)
}

/// The last two axes of `x` as `(height, width)`.
fn spatial(x: &Tensor) -> Result<(usize, usize)> {
    Ok((x.dim(D::Minus2)?, x.dim(D::Minus1)?))
}

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
        Self::new(vb, config, "beit")
    }
}

impl BeitForImageClassification {
    /// Build from the model root `vb`, the base model under `prefix` (`beit`, or
    /// `data2vec_vision` for data2vec-vision, which has the same classifier).
    pub fn new(vb: VarBuilder<'_>, config: &BeitConfig, prefix: &str) -> Result<Self> {
        let beit = BeitModel::new(vb.pp(prefix), config, true)?;
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

/// The weight names of the decode heads: BEiT's checkpoints (`conv`, `bn`,
/// `decode_head.bottleneck`, `psp_modules.N.1`) or data2vec-vision's as `transformers` 5.25
/// names them (`convolution`, `normalization`, `psp_bottleneck`, `psp_modules.blocks.N.conv`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeadNames {
    /// BEiT's checkpoint names.
    Beit,
    /// data2vec-vision's names.
    Data2VecVision,
}

impl HeadNames {
    fn conv(self) -> &'static str {
        match self {
            Self::Beit => "conv",
            Self::Data2VecVision => "convolution",
        }
    }

    fn bn(self) -> &'static str {
        match self {
            Self::Beit => "bn",
            Self::Data2VecVision => "normalization",
        }
    }

    fn bottleneck(self) -> &'static str {
        match self {
            Self::Beit => "bottleneck",
            Self::Data2VecVision => "psp_bottleneck",
        }
    }

    fn psp(self, i: usize) -> String {
        match self {
            Self::Beit => format!("psp_modules.{i}.1"),
            Self::Data2VecVision => format!("psp_modules.blocks.{i}.conv"),
        }
    }
}

impl ConvBn {
    fn load(vb: VarBuilder<'_>, names: HeadNames, input: usize, output: usize, kernel: usize) -> Result<Self> {
        let weight = vb.pp(names.conv()).get((output, input, kernel, kernel), "weight")?;
        let (scale, shift) = batch_norm(&vb.pp(names.bn()), output)?;
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
    fn load(vb: VarBuilder<'_>, cfg: &BeitConfig, names: HeadNames) -> Result<Self> {
        let c = cfg.hidden_size;
        let n = cfg.labels.num_labels();
        let psp_modules = (0..cfg.pool_scales.len())
            .map(|i| ConvBn::load(vb.pp(names.psp(i)), names, c, c, 1))
            .collect::<Result<_>>()?;
        let convs = |name: &str, kernel: usize| -> Result<Vec<ConvBn>> {
            (0..3).map(|i| ConvBn::load(vb.pp(format!("{name}.{i}")), names, c, c, kernel)).collect()
        };
        Ok(Self {
            pool_scales: cfg.pool_scales.clone(),
            psp_modules,
            bottleneck: ConvBn::load(vb.pp(names.bottleneck()), names, c + cfg.pool_scales.len() * c, c, 3)?,
            lateral_convs: convs("lateral_convs", 1)?,
            fpn_convs: convs("fpn_convs", 3)?,
            fpn_bottleneck: ConvBn::load(vb.pp("fpn_bottleneck"), names, 4 * c, c, 3)?,
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
    fn load(vb: VarBuilder<'_>, cfg: &BeitConfig, names: HeadNames) -> Result<Self> {
        let (input, c) = (cfg.hidden_size, cfg.auxiliary_channels);
        let convs = (0..cfg.auxiliary_num_convs)
            .map(|i| ConvBn::load(vb.pp(format!("convs.{i}")), names, if i == 0 { input } else { c }, c, 3))
            .collect::<Result<_>>()?;
        let conv_cat = if cfg.auxiliary_concat_input {
            Some(ConvBn::load(vb.pp("conv_cat"), names, input + c, c, 3)?)
        } else {
            None
        };
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
    fixed_grid: Option<(usize, usize)>,
    fpn1: (UpConv, ConvBn, UpConv),
    fpn2: UpConv,
    decode_head: UperHead,
    #[allow(dead_code)]
    auxiliary_head: Option<FcnHead>,
}

/// What differs between BEiT's and data2vec-vision's semantic segmentation models.
#[derive(Debug, Clone)]
pub struct SegmentationOptions {
    /// The model type, for error messages.
    pub model_type: &'static str,
    /// The attribute holding the base model (`beit`, `data2vec_vision`).
    pub prefix: &'static str,
    /// The decode heads' weight names.
    pub names: HeadNames,
    /// The four hidden states read, as indices of `transformers`' `hidden_states` tuple
    /// (`0` the embeddings, `i` the output of layer `i`).
    pub hidden_states: Vec<usize>,
    /// The patch grid the maps are reshaped to, when fixed by the config (data2vec-vision's
    /// `image_size // patch_size`); `None`: the input's.
    pub fixed_grid: Option<(usize, usize)>,
}

impl BeitForSemanticSegmentation {
    /// Build from the model root `vb` (`beit`, `fpn1`, `decode_head`, ...) and its config
    /// (errors: `InvalidConfig` unless `options.hidden_states` names four stages).
    pub fn new(vb: VarBuilder<'_>, config: &BeitConfig, options: SegmentationOptions) -> Result<Self> {
        let model_type = options.model_type;
        if options.hidden_states.len() != 4 {
            return Err(Error::config(
                model_type,
                format!(
                    "semantic segmentation needs `out_indices` to name 4 stages (e.g. [3, 5, 7, 11] for a base-sized \
                     model), got {:?}",
                    config.out_indices
                ),
            ));
        }
        if config.labels.num_labels() == 0 {
            return Err(Error::config(model_type, "semantic segmentation needs `num_labels` of at least 1"));
        }
        let beit = BeitModel::new(vb.pp(options.prefix), config, false)?;
        let c = config.hidden_size;
        let (scale, shift) = batch_norm(&vb.pp("fpn1.1"), c)?;
        let bn = ConvBn { weight: None, padding: 0, scale, shift, relu: false };
        Ok(Self {
            beit,
            stages: options.hidden_states,
            fixed_grid: options.fixed_grid,
            fpn1: (UpConv::load(vb.pp("fpn1.0"), c)?, bn, UpConv::load(vb.pp("fpn1.3"), c)?),
            fpn2: UpConv::load(vb.pp("fpn2.0"), c)?,
            decode_head: UperHead::load(vb.pp("decode_head"), config, options.names)?,
            auxiliary_head: if config.use_auxiliary_head {
                Some(FcnHead::load(vb.pp("auxiliary_head"), config, options.names)?)
            } else {
                None
            },
        })
    }
}

impl LoadModel for BeitForSemanticSegmentation {
    type Config = BeitConfig;
    const BASE_MODEL_PREFIX: &'static str = "beit";

    fn load(vb: VarBuilder<'_>, config: &BeitConfig) -> Result<Self> {
        // A stage `i` reads the hidden states `i - 1` of `transformers`' tuple, whose first
        // entry is the embeddings: stage 0 wraps around to the last layer's output.
        let last = config.num_hidden_layers;
        let hidden_states = config.stage_indices()?.iter().map(|&s| if s == 0 { last } else { s - 1 }).collect();
        let options = SegmentationOptions {
            model_type: "beit",
            prefix: "beit",
            names: HeadNames::Beit,
            hidden_states,
            fixed_grid: None,
        };
        Self::new(vb, config, options)
    }
}

impl ForSemanticSegmentation for BeitForSemanticSegmentation {
    fn forward(&self, inputs: &ModelInputs) -> Result<SemanticSegmenterOutput> {
        let (_, hidden, grid) = self.beit.encode(inputs, &self.stages)?;
        let (gh, gw) = match self.fixed_grid {
            Some(fixed) if fixed != grid => {
                return Err(Error::input(format!(
                    "the model reshapes the patches into its config's {}x{} grid, but the input has {}x{} patches: \
                     resize the images to the config's `image_size`",
                    fixed.0, fixed.1, grid.0, grid.1
                )))
            }
            _ => grid,
        };
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

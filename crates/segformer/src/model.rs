//! [`SegformerModel`]: the Mix Transformer encoder of `transformers`' `modeling_segformer`:
//! overlapping patch embeddings, efficient self-attention with sequence reduction, the Mix-FFN
//! with its depthwise convolution, and a LayerNorm after each stage.

use autocandle_core::nn::{linear, Linear};
use autocandle_core::spatial::{Conv2d, ConvSpec};
use candle_core::{DType, Device, Module, Tensor};
use candle_nn::{layer_norm, LayerNorm, VarBuilder};

use autocandle_core::{
    Activation, AutoRegister, BaseModelOutput, Error, LoadModel, Model, ModelInputs, PreTrainedModel, Result,
};

use crate::config::SegformerConfig;

/// PyTorch's `nn.LayerNorm` default: SegFormer's norms do not read `layer_norm_eps`.
const TORCH_LAYER_NORM_EPS: f64 = 1e-5;

/// `[b, h w, c]` -> `[b, c, h, w]`.
fn to_map(x: &Tensor, h: usize, w: usize) -> Result<Tensor> {
    let (b, _, c) = x.dims3()?;
    Ok(x.transpose(1, 2)?.reshape((b, c, h, w))?)
}

/// `[b, c, h, w]` -> `[b, h w, c]`.
fn to_sequence(x: &Tensor) -> Result<Tensor> {
    let (b, c, h, w) = x.dims4()?;
    Ok(x.reshape((b, c, h * w))?.transpose(1, 2)?.contiguous()?)
}

/// `SegformerOverlapPatchEmbeddings`: a strided convolution with padding `patch // 2` and a
/// LayerNorm.
#[derive(Debug)]
struct PatchEmbeddings {
    proj: Conv2d,
    layer_norm: LayerNorm,
}

impl PatchEmbeddings {
    fn load(vb: VarBuilder<'_>, patch: usize, stride: usize, channels: usize, hidden: usize) -> Result<Self> {
        let spec = ConvSpec::new(patch).stride(stride).padding(patch / 2);
        Ok(Self {
            proj: Conv2d::load(channels, hidden, spec, true, vb.pp("proj"))?,
            layer_norm: layer_norm(hidden, TORCH_LAYER_NORM_EPS, vb.pp("layer_norm"))?,
        })
    }

    /// `[b, c, H, W]` -> (`[b, h w, hidden]`, h, w).
    fn forward(&self, x: &Tensor) -> Result<(Tensor, usize, usize)> {
        let y = self.proj.forward(x)?;
        let (_, _, h, w) = y.dims4()?;
        Ok((self.layer_norm.forward(&to_sequence(&y)?)?, h, w))
    }
}

/// `SegformerEfficientSelfAttention` and its output projection: keys and values come from the
/// sequence reduced by a `sr_ratio`-strided convolution and a LayerNorm.
#[derive(Debug)]
struct Attention {
    query: Linear,
    key: Linear,
    value: Linear,
    /// `sr` and `layer_norm`, with `sr_ratio` > 1.
    reduction: Option<(Conv2d, LayerNorm)>,
    output: Linear,
    num_heads: usize,
    head_dim: usize,
}

impl Attention {
    fn load(vb: VarBuilder<'_>, hidden: usize, num_heads: usize, sr_ratio: usize) -> Result<Self> {
        let own = vb.pp("self");
        let reduction = if sr_ratio > 1 {
            let spec = ConvSpec::new(sr_ratio).stride(sr_ratio);
            Some((
                Conv2d::load(hidden, hidden, spec, true, own.pp("sr"))?,
                layer_norm(hidden, TORCH_LAYER_NORM_EPS, own.pp("layer_norm"))?,
            ))
        } else {
            None
        };
        Ok(Self {
            query: linear(hidden, hidden, own.pp("query"))?,
            key: linear(hidden, hidden, own.pp("key"))?,
            value: linear(hidden, hidden, own.pp("value"))?,
            reduction,
            output: linear(hidden, hidden, vb.pp("output.dense"))?,
            num_heads,
            head_dim: hidden / num_heads,
        })
    }

    fn forward(&self, x: &Tensor, h: usize, w: usize) -> Result<Tensor> {
        let (batch, seq, hidden) = x.dims3()?;
        let kv = match &self.reduction {
            Some((sr, norm)) => norm.forward(&to_sequence(&sr.forward(&to_map(x, h, w)?)?)?)?,
            None => x.clone(),
        };
        let heads = |proj: &Linear, input: &Tensor| -> Result<Tensor> {
            let len = input.dim(1)?;
            Ok(proj
                .forward(input)?
                .reshape((batch, len, self.num_heads, self.head_dim))?
                .transpose(1, 2)?
                .contiguous()?)
        };
        let (q, k, v) = (heads(&self.query, x)?, heads(&self.key, &kv)?, heads(&self.value, &kv)?);
        let dtype = q.dtype();
        let scale = (self.head_dim as f64).powf(-0.5);
        let probs =
            autocandle_core::kernels::masked_softmax(&autocandle_core::kernels::matmul(&q, &k.t()?)?, scale, None)?
                .to_dtype(dtype)?;
        let context = autocandle_core::kernels::matmul(&probs, &v)?.transpose(1, 2)?.reshape((batch, seq, hidden))?;
        Ok(self.output.forward(&context)?)
    }
}

/// `SegformerMixFFN`: dense, 3x3 depthwise convolution, activation, dense.
#[derive(Debug)]
struct MixFfn {
    dense1: Linear,
    dwconv: Conv2d,
    activation: Activation,
    dense2: Linear,
}

impl MixFfn {
    fn load(vb: VarBuilder<'_>, hidden: usize, inner: usize, activation: Activation) -> Result<Self> {
        Ok(Self {
            dense1: linear(hidden, inner, vb.pp("dense1"))?,
            dwconv: Conv2d::load(
                inner,
                inner,
                ConvSpec::new(3).padding(1).groups(inner),
                true,
                vb.pp("dwconv.dwconv"),
            )?,
            activation,
            dense2: linear(inner, hidden, vb.pp("dense2"))?,
        })
    }

    fn forward(&self, x: &Tensor, h: usize, w: usize) -> Result<Tensor> {
        let y = self.dense1.forward(x)?;
        let y = to_sequence(&self.dwconv.forward(&to_map(&y, h, w)?)?)?;
        Ok(self.dense2.forward(&self.activation.forward(&y)?)?)
    }
}

/// `SegformerLayer`: pre-norm efficient attention and Mix-FFN, each with a residual.
#[derive(Debug)]
struct Block {
    layer_norm_1: LayerNorm,
    attention: Attention,
    layer_norm_2: LayerNorm,
    mlp: MixFfn,
}

impl Block {
    fn load(vb: VarBuilder<'_>, cfg: &SegformerConfig, stage: usize) -> Result<Self> {
        let hidden = cfg.hidden_sizes[stage];
        Ok(Self {
            layer_norm_1: layer_norm(hidden, TORCH_LAYER_NORM_EPS, vb.pp("layer_norm_1"))?,
            attention: Attention::load(
                vb.pp("attention"),
                hidden,
                cfg.num_attention_heads[stage],
                cfg.sr_ratios[stage],
            )?,
            layer_norm_2: layer_norm(hidden, TORCH_LAYER_NORM_EPS, vb.pp("layer_norm_2"))?,
            mlp: MixFfn::load(vb.pp("mlp"), hidden, hidden * cfg.mlp_ratios[stage], cfg.hidden_act)?,
        })
    }

    fn forward(&self, x: &Tensor, h: usize, w: usize) -> Result<Tensor> {
        let x = (self.attention.forward(&self.layer_norm_1.forward(x)?, h, w)? + x)?;
        Ok((self.mlp.forward(&self.layer_norm_2.forward(&x)?, h, w)? + x)?)
    }
}

/// One stage: its patch embedding, blocks and closing LayerNorm.
#[derive(Debug)]
struct Stage {
    patch_embeddings: PatchEmbeddings,
    blocks: Vec<Block>,
    layer_norm: LayerNorm,
}

/// The Mix Transformer encoder (`SegformerEncoder`): every stage's output, as feature maps.
#[derive(Debug)]
pub struct SegformerEncoder {
    stages: Vec<Stage>,
    num_channels: usize,
}

impl SegformerEncoder {
    /// `vb` is the encoder (`segformer.encoder`).
    pub fn load(vb: VarBuilder<'_>, cfg: &SegformerConfig) -> Result<Self> {
        cfg.validate()?;
        let stages = (0..cfg.num_encoder_blocks)
            .map(|i| {
                let channels = if i == 0 { cfg.num_channels } else { cfg.hidden_sizes[i - 1] };
                let patch_embeddings = PatchEmbeddings::load(
                    vb.pp(format!("patch_embeddings.{i}")),
                    cfg.patch_sizes[i],
                    cfg.strides[i],
                    channels,
                    cfg.hidden_sizes[i],
                )?;
                let blocks = (0..cfg.depths[i])
                    .map(|j| Block::load(vb.pp(format!("block.{i}.{j}")), cfg, i))
                    .collect::<Result<_>>()?;
                let layer_norm =
                    layer_norm(cfg.hidden_sizes[i], TORCH_LAYER_NORM_EPS, vb.pp(format!("layer_norm.{i}")))?;
                Ok(Stage { patch_embeddings, blocks, layer_norm })
            })
            .collect::<Result<_>>()?;
        Ok(Self { stages, num_channels: cfg.num_channels })
    }

    /// The output of every stage as a feature map, `[b, hidden_i, h_i, w_i]` (the heads read
    /// these; `reshape_last_stage` only shapes [`SegformerModel`]'s `last_hidden_state`).
    pub fn forward(&self, pixel_values: &Tensor) -> Result<Vec<Tensor>> {
        let (_, _, height, width) = autocandle_core::pixels::check_pixel_values(pixel_values, self.num_channels)?;
        if height == 0 || width == 0 {
            return Err(Error::input(format!("the images are empty ({height}x{width})")));
        }
        let mut x = pixel_values.clone();
        let mut out = Vec::with_capacity(self.stages.len());
        for stage in &self.stages {
            let (mut seq, h, w) = stage.patch_embeddings.forward(&x)?;
            for block in &stage.blocks {
                seq = block.forward(&seq, h, w)?;
            }
            x = to_map(&stage.layer_norm.forward(&seq)?, h, w)?.contiguous()?;
            out.push(x.clone());
        }
        Ok(out)
    }
}

/// The SegFormer encoder without a head (`SegformerModel`): `last_hidden_state` is the last
/// stage's output, `[b, hidden, h, w]` (`[b, h w, hidden]` without `reshape_last_stage`).
#[derive(Debug, AutoRegister)]
#[auto(task = "base", class = "SegformerModel")]
pub struct SegformerModel {
    encoder: SegformerEncoder,
    reshape_last_stage: bool,
    device: Device,
    dtype: DType,
}

impl SegformerModel {
    /// `vb` is the model root (`segformer` in head models).
    pub fn new(vb: VarBuilder<'_>, cfg: &SegformerConfig) -> Result<Self> {
        Ok(Self {
            encoder: SegformerEncoder::load(vb.pp("encoder"), cfg)?,
            reshape_last_stage: cfg.reshape_last_stage,
            device: vb.device().clone(),
            dtype: vb.dtype(),
        })
    }

    /// Every stage's output for the `pixel_values` of `inputs` (see [`SegformerEncoder::forward`]).
    pub fn hidden_states(&self, inputs: &ModelInputs) -> Result<Vec<Tensor>> {
        let pixel_values = inputs.pixel_values()?.to_device(&self.device)?.to_dtype(self.dtype)?;
        self.encoder.forward(&pixel_values)
    }
}

impl LoadModel for SegformerModel {
    type Config = SegformerConfig;
    const BASE_MODEL_PREFIX: &'static str = "segformer";

    fn load(vb: VarBuilder<'_>, config: &SegformerConfig) -> Result<Self> {
        Self::new(vb, config)
    }
}

impl PreTrainedModel for SegformerModel {
    fn device(&self) -> &Device {
        &self.device
    }

    fn dtype(&self) -> DType {
        self.dtype
    }
}

impl Model for SegformerModel {
    fn forward(&self, inputs: &ModelInputs) -> Result<BaseModelOutput> {
        let mut states = self.hidden_states(inputs)?;
        let last = states.pop().ok_or_else(|| Error::input("the encoder has no stage"))?;
        let last = if self.reshape_last_stage { last } else { to_sequence(&last)? };
        Ok(BaseModelOutput::new(last, None))
    }
}

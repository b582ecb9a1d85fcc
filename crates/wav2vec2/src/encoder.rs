//! The transformer encoder of wav2vec2 (`Wav2Vec2Encoder` / `Wav2Vec2EncoderStableLayerNorm`):
//! the positional convolution (weight-normed, HuBERT's batch-norm form, Data2VecAudio's stack),
//! self-attention, the feed-forward block, post-norm and pre-norm ("stable layer norm")
//! layers, and the convolutional adapter.

use autocandle_core::nn::{linear, Linear};
use autocandle_core::{Activation, Error, Result};
use candle_core::{DType, Module, Tensor, D};
use candle_nn::{layer_norm, LayerNorm, VarBuilder};

use crate::config::Wav2Vec2Config;
use crate::feature::{conv1d, TORCH_NORM_EPS};

/// Which positional convolution an encoder has (`encoder.pos_conv_embed`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PosConvKind {
    /// wav2vec2 and HuBERT: one grouped convolution with weight norm over the kernel axis
    /// (`conv.weight_g` / `conv.weight_v`, or `conv.parametrizations.weight.original0/1`, or a
    /// plain `conv.weight` already folded), then the activation.
    WeightNorm,
    /// HuBERT with `conv_pos_batch_norm`: a batch norm (`batch_norm`), then a plain grouped
    /// convolution and the activation.
    BatchNorm,
    /// Data2VecAudio: `layers` convolutions of kernel `kernel_size`, each followed by a layer
    /// norm without parameters and the activation (`layers.N.conv`).
    Stacked {
        /// Number of convolutions (`num_conv_pos_embeddings` of Data2VecAudio).
        layers: usize,
        /// Their kernel size (`conv_pos_kernel_size`).
        kernel_size: usize,
    },
}

/// One grouped "same" convolution over time: padding `k / 2` on both sides, the last frame
/// dropped for an even kernel (`Wav2Vec2SamePadLayer`).
#[derive(Debug, Clone)]
struct SameConv {
    weight: Tensor,
    bias: Tensor,
    kernel: usize,
    groups: usize,
}

impl SameConv {
    /// `[batch, hidden, frames]` -> same shape.
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let y = conv1d(x, &self.weight, Some(&self.bias), self.kernel / 2, 1, 1, self.groups)?;
        if self.kernel.is_multiple_of(2) {
            let t = y.dim(2)?;
            Ok(y.narrow(2, 0, t - 1)?)
        } else {
            Ok(y)
        }
    }
}

/// Load the weight of a weight-normed convolution: `weight = g * v / ||v||` with the norm over
/// every axis but the kernel axis (`weight_norm(dim=2)`).
fn weight_norm_weight(vb: &VarBuilder<'_>, shape: (usize, usize, usize)) -> Result<Tensor> {
    let (g, v) = if vb.contains_tensor("weight_g") {
        (vb.get((1, 1, shape.2), "weight_g")?, vb.get(shape, "weight_v")?)
    } else if vb.contains_tensor("parametrizations.weight.original0") {
        (
            vb.get((1, 1, shape.2), "parametrizations.weight.original0")?,
            vb.get(shape, "parametrizations.weight.original1")?,
        )
    } else {
        return Ok(vb.get(shape, "weight")?);
    };
    let dtype = v.dtype();
    let vf = v.to_dtype(DType::F32)?;
    let norm = vf.sqr()?.sum_keepdim(0)?.sum_keepdim(1)?.sqrt()?;
    Ok(vf.broadcast_mul(&g.to_dtype(DType::F32)?.broadcast_div(&norm)?)?.to_dtype(dtype)?)
}

/// The positional convolution (`Wav2Vec2PositionalConvEmbedding` and its HuBERT and
/// Data2VecAudio forms, under `encoder.pos_conv_embed`).
#[derive(Debug, Clone)]
pub struct PositionalConvEmbedding {
    /// `(weight, bias, running_mean, running_var)` of HuBERT's batch norm.
    batch_norm: Option<(Tensor, Tensor, Tensor, Tensor)>,
    convs: Vec<SameConv>,
    /// Data2VecAudio's parameter-free layer norm after each convolution.
    layer_norm: Option<LayerNorm>,
    activation: Activation,
}

impl PositionalConvEmbedding {
    /// Load the `kind` of positional convolution under `vb` (`encoder.pos_conv_embed`).
    pub fn load(vb: VarBuilder<'_>, cfg: &Wav2Vec2Config, kind: PosConvKind) -> Result<Self> {
        let h = cfg.hidden_size;
        let groups = cfg.num_conv_pos_embedding_groups;
        let per_group = h / groups;
        let plain = |vb: VarBuilder<'_>, kernel: usize| -> Result<SameConv> {
            Ok(SameConv { weight: vb.get((h, per_group, kernel), "weight")?, bias: vb.get(h, "bias")?, kernel, groups })
        };
        let k = cfg.num_conv_pos_embeddings;
        let mut batch_norm = None;
        let mut layer_norm = None;
        let convs = match kind {
            PosConvKind::WeightNorm => {
                let conv = vb.pp("conv");
                vec![SameConv {
                    weight: weight_norm_weight(&conv, (h, per_group, k))?,
                    bias: conv.get(h, "bias")?,
                    kernel: k,
                    groups,
                }]
            }
            PosConvKind::BatchNorm => {
                let bn = vb.pp("batch_norm");
                batch_norm = Some((
                    bn.get(h, "weight")?,
                    bn.get(h, "bias")?,
                    bn.get(h, "running_mean")?,
                    bn.get(h, "running_var")?,
                ));
                vec![plain(vb.pp("conv"), k)?]
            }
            PosConvKind::Stacked { layers, kernel_size } => {
                if kernel_size == 0 {
                    return Err(Error::config("data2vec-audio", "`conv_pos_kernel_size` must be at least 1, got 0"));
                }
                let ones = Tensor::ones(h, vb.dtype(), vb.device())?;
                layer_norm = Some(LayerNorm::new_no_bias(ones, TORCH_NORM_EPS));
                (0..layers).map(|i| plain(vb.pp(format!("layers.{i}.conv")), kernel_size)).collect::<Result<_>>()?
            }
        };
        Ok(Self { batch_norm, convs, layer_norm, activation: cfg.feat_extract_activation })
    }

    /// `[batch, frames, hidden]` -> the position embeddings, same shape.
    pub fn forward(&self, hidden_states: &Tensor) -> Result<Tensor> {
        let mut x = hidden_states.transpose(1, 2)?;
        if let Some((w, b, mean, var)) = &self.batch_norm {
            let r = |t: &Tensor| t.reshape((1, t.dim(0)?, 1));
            x = x.broadcast_sub(&r(mean)?)?.broadcast_div(&(r(var)? + TORCH_NORM_EPS)?.sqrt()?)?;
            x = x.broadcast_mul(&r(w)?)?.broadcast_add(&r(b)?)?;
        }
        for conv in &self.convs {
            x = conv.forward(&x)?;
            if let Some(ln) = &self.layer_norm {
                x = ln.forward(&x.transpose(1, 2)?)?.transpose(1, 2)?;
            }
            x = self.activation.forward(&x)?;
        }
        Ok(x.transpose(1, 2)?.contiguous()?)
    }
}

/// Multi-head self-attention (`Wav2Vec2Attention`, under `attention`): `q_proj`, `k_proj`,
/// `v_proj`, `out_proj`, all with biases.
#[derive(Debug, Clone)]
pub struct Attention {
    q_proj: Linear,
    k_proj: Linear,
    v_proj: Linear,
    out_proj: Linear,
    num_heads: usize,
    head_dim: usize,
}

impl Attention {
    /// Load the four projections under `vb`.
    pub fn load(vb: VarBuilder<'_>, cfg: &Wav2Vec2Config) -> Result<Self> {
        let h = cfg.hidden_size;
        Ok(Self {
            q_proj: linear(h, h, vb.pp("q_proj"))?,
            k_proj: linear(h, h, vb.pp("k_proj"))?,
            v_proj: linear(h, h, vb.pp("v_proj"))?,
            out_proj: linear(h, h, vb.pp("out_proj"))?,
            num_heads: cfg.num_attention_heads,
            head_dim: cfg.head_dim(),
        })
    }

    /// `[batch, frames, hidden]`, with `bias` `[batch, 1, 1, frames]` added to the scores
    /// (0 for real frames, a large negative for padding; see [`attention_bias`]).
    pub fn forward(&self, x: &Tensor, bias: Option<&Tensor>) -> Result<Tensor> {
        let (b, t, _) = x.dims3()?;
        let split = |y: Tensor| -> Result<Tensor> {
            Ok(y.reshape((b, t, self.num_heads, self.head_dim))?.transpose(1, 2)?.contiguous()?)
        };
        let q = split((self.q_proj.forward(x)? * (self.head_dim as f64).powf(-0.5))?)?;
        let k = split(self.k_proj.forward(x)?)?;
        let v = split(self.v_proj.forward(x)?)?;
        let mut scores = q.matmul(&k.t()?)?;
        if let Some(bias) = bias {
            scores = scores.broadcast_add(bias)?;
        }
        let probs = candle_nn::ops::softmax_last_dim(&scores)?;
        let out = probs.matmul(&v)?.transpose(1, 2)?.reshape((b, t, self.num_heads * self.head_dim))?;
        Ok(self.out_proj.forward(&out)?)
    }
}

/// The additive attention bias `[batch, 1, 1, frames]` of a `[batch, frames]` frame mask
/// (1 real, 0 padding): 0 where real, the dtype's lowest value where padding.
pub fn attention_bias(frame_mask: &Tensor, dtype: DType) -> Result<Tensor> {
    let (b, t) = frame_mask.dims2()?;
    let min = match dtype {
        DType::F16 => -65504.0,
        DType::BF16 => -3.389_531_4e38,
        _ => f32::MIN as f64,
    };
    let keep = frame_mask.to_dtype(DType::F32)?.ge(0.5)?;
    let zeros = Tensor::zeros((b, t), dtype, frame_mask.device())?;
    let neg = Tensor::full(min as f32, (b, t), frame_mask.device())?.to_dtype(dtype)?;
    Ok(keep.where_cond(&zeros, &neg)?.reshape((b, 1, 1, t))?)
}

/// The feed-forward block (`Wav2Vec2FeedForward`, under `feed_forward`): `intermediate_dense`,
/// `hidden_act`, `output_dense`.
#[derive(Debug, Clone)]
pub struct FeedForward {
    intermediate_dense: Linear,
    output_dense: Linear,
    activation: Activation,
}

impl FeedForward {
    /// Load the two linear maps under `vb`.
    pub fn load(vb: VarBuilder<'_>, cfg: &Wav2Vec2Config) -> Result<Self> {
        Ok(Self {
            intermediate_dense: linear(cfg.hidden_size, cfg.intermediate_size, vb.pp("intermediate_dense"))?,
            output_dense: linear(cfg.intermediate_size, cfg.hidden_size, vb.pp("output_dense"))?,
            activation: cfg.hidden_act,
        })
    }

    /// `[batch, frames, hidden]` -> same shape.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let y = self.activation.forward(&self.intermediate_dense.forward(x)?)?;
        Ok(self.output_dense.forward(&y)?)
    }
}

/// The attention adapter of MMS checkpoints (`Wav2Vec2AttnAdapterLayer`, under `adapter_layer`):
/// layer norm, `linear_1`, ReLU, `linear_2`, added to the layer's output.
#[derive(Debug, Clone)]
pub struct AttnAdapterLayer {
    norm: LayerNorm,
    linear_1: Linear,
    linear_2: Linear,
}

impl AttnAdapterLayer {
    /// Load under `vb` with the bottleneck width `dim` (`adapter_attn_dim`).
    pub fn load(vb: VarBuilder<'_>, cfg: &Wav2Vec2Config, dim: usize) -> Result<Self> {
        Ok(Self {
            norm: layer_norm(cfg.hidden_size, TORCH_NORM_EPS, vb.pp("norm"))?,
            linear_1: linear(cfg.hidden_size, dim, vb.pp("linear_1"))?,
            linear_2: linear(dim, cfg.hidden_size, vb.pp("linear_2"))?,
        })
    }

    /// `[batch, frames, hidden]` -> the adapter's contribution, same shape.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let y = self.linear_1.forward(&self.norm.forward(x)?)?.relu()?;
        Ok(self.linear_2.forward(&y)?)
    }
}

/// One encoder layer (`Wav2Vec2EncoderLayer` post-norm, or
/// `Wav2Vec2EncoderLayerStableLayerNorm` pre-norm), under `encoder.layers.N`.
#[derive(Debug, Clone)]
pub struct EncoderLayer {
    attention: Attention,
    layer_norm: LayerNorm,
    feed_forward: FeedForward,
    final_layer_norm: LayerNorm,
    adapter_layer: Option<AttnAdapterLayer>,
    pre_norm: bool,
}

impl EncoderLayer {
    /// Load a layer; `pre_norm` is `do_stable_layer_norm` (only that form has the MMS
    /// attention adapter, when `adapter_attn_dim` is set).
    pub fn load(vb: VarBuilder<'_>, cfg: &Wav2Vec2Config, pre_norm: bool) -> Result<Self> {
        let adapter_layer = match cfg.adapter_attn_dim {
            Some(dim) if pre_norm && dim > 0 => Some(AttnAdapterLayer::load(vb.pp("adapter_layer"), cfg, dim)?),
            _ => None,
        };
        Ok(Self {
            attention: Attention::load(vb.pp("attention"), cfg)?,
            layer_norm: layer_norm(cfg.hidden_size, cfg.layer_norm_eps, vb.pp("layer_norm"))?,
            feed_forward: FeedForward::load(vb.pp("feed_forward"), cfg)?,
            final_layer_norm: layer_norm(cfg.hidden_size, cfg.layer_norm_eps, vb.pp("final_layer_norm"))?,
            adapter_layer,
            pre_norm,
        })
    }

    /// `[batch, frames, hidden]` -> same shape; `bias` as [`Attention::forward`].
    pub fn forward(&self, x: &Tensor, bias: Option<&Tensor>) -> Result<Tensor> {
        if self.pre_norm {
            let h = (x + self.attention.forward(&self.layer_norm.forward(x)?, bias)?)?;
            let mut h = (&h + self.feed_forward.forward(&self.final_layer_norm.forward(&h)?)?)?;
            if let Some(adapter) = &self.adapter_layer {
                h = (&h + adapter.forward(&h)?)?;
            }
            Ok(h)
        } else {
            let h = self.layer_norm.forward(&(x + self.attention.forward(x, bias)?)?)?;
            let h = (&h + self.feed_forward.forward(&h)?)?;
            Ok(self.final_layer_norm.forward(&h)?)
        }
    }
}

/// What an encoder returns.
#[derive(Debug, Clone)]
pub struct EncoderOutput {
    /// `[batch, frames, hidden]`
    pub last_hidden_state: Tensor,
    /// With `output_hidden_states`: the input of the first layer and the output of each layer
    /// (`num_hidden_layers + 1` tensors, as `transformers`' `hidden_states`; for the stable
    /// layer norm form the last one is before the final layer norm); else empty.
    pub hidden_states: Vec<Tensor>,
}

/// The transformer encoder (`Wav2Vec2Encoder`, or `Wav2Vec2EncoderStableLayerNorm` with
/// `do_stable_layer_norm`), under `encoder`.
#[derive(Debug, Clone)]
pub struct Encoder {
    pos_conv_embed: PositionalConvEmbedding,
    layer_norm: LayerNorm,
    layers: Vec<EncoderLayer>,
    stable_layer_norm: bool,
}

impl Encoder {
    /// Load `pos_conv_embed` (of `pos_conv`), `layer_norm` and `layers.N` under `vb`.
    pub fn load(vb: VarBuilder<'_>, cfg: &Wav2Vec2Config, pos_conv: PosConvKind) -> Result<Self> {
        let stable = cfg.do_stable_layer_norm;
        Ok(Self {
            pos_conv_embed: PositionalConvEmbedding::load(vb.pp("pos_conv_embed"), cfg, pos_conv)?,
            layer_norm: layer_norm(cfg.hidden_size, cfg.layer_norm_eps, vb.pp("layer_norm"))?,
            layers: (0..cfg.num_hidden_layers)
                .map(|i| EncoderLayer::load(vb.pp(format!("layers.{i}")), cfg, stable))
                .collect::<Result<_>>()?,
            stable_layer_norm: stable,
        })
    }

    /// Run the encoder on the projected features `[batch, frames, hidden]`. With `frame_mask`
    /// (`[batch, frames]`, 1 real, 0 padding) padded frames are zeroed first and masked out of
    /// the attention, as `transformers` does.
    pub fn forward(
        &self,
        hidden_states: &Tensor,
        frame_mask: Option<&Tensor>,
        output_hidden_states: bool,
    ) -> Result<EncoderOutput> {
        let mut x = hidden_states.clone();
        let mut bias = None;
        if let Some(mask) = frame_mask {
            x = x.broadcast_mul(&mask.to_dtype(x.dtype())?.unsqueeze(D::Minus1)?)?;
            bias = Some(attention_bias(mask, x.dtype())?);
        }
        x = (&x + self.pos_conv_embed.forward(&x)?)?;
        if !self.stable_layer_norm {
            x = self.layer_norm.forward(&x)?;
        }
        let mut all = Vec::new();
        if output_hidden_states {
            all.push(x.clone());
        }
        for layer in &self.layers {
            x = layer.forward(&x, bias.as_ref())?;
            if output_hidden_states {
                all.push(x.clone());
            }
        }
        if self.stable_layer_norm {
            x = self.layer_norm.forward(&x)?;
        }
        Ok(EncoderOutput { last_hidden_state: x, hidden_states: all })
    }
}

/// The convolutional adapter after the encoder (`Wav2Vec2Adapter`, under `adapter`): an
/// optional projection to `output_hidden_size` with its layer norm, then
/// `num_adapter_layers` strided convolutions with a GLU each.
#[derive(Debug, Clone)]
pub struct Adapter {
    proj: Option<(Linear, LayerNorm)>,
    layers: Vec<(Tensor, Tensor)>,
    stride: usize,
}

impl Adapter {
    /// Load under `vb`.
    pub fn load(vb: VarBuilder<'_>, cfg: &Wav2Vec2Config) -> Result<Self> {
        let out = cfg.output_hidden_size();
        let proj = if out != cfg.hidden_size {
            Some((
                linear(cfg.hidden_size, out, vb.pp("proj"))?,
                layer_norm(out, TORCH_NORM_EPS, vb.pp("proj_layer_norm"))?,
            ))
        } else {
            None
        };
        let layers = (0..cfg.num_adapter_layers)
            .map(|i| {
                let conv = vb.pp(format!("layers.{i}.conv"));
                Ok((conv.get((2 * out, out, cfg.adapter_kernel_size), "weight")?, conv.get(2 * out, "bias")?))
            })
            .collect::<Result<_>>()?;
        Ok(Self { proj, layers, stride: cfg.adapter_stride })
    }

    /// `[batch, frames, hidden]` -> `[batch, frames', output_hidden_size]`.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let mut x = match &self.proj {
            Some((proj, ln)) => ln.forward(&proj.forward(x)?)?,
            None => x.clone(),
        };
        x = x.transpose(1, 2)?;
        for (weight, bias) in &self.layers {
            let y = conv1d(&x, weight, Some(bias), 1, self.stride, 1, 1)?;
            let half = y.dim(1)? / 2;
            x = (y.narrow(1, 0, half)? * candle_nn::ops::sigmoid(&y.narrow(1, half, half)?)?)?;
        }
        Ok(x.transpose(1, 2)?.contiguous()?)
    }
}

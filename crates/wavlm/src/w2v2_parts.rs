//! The wav2vec2 building blocks WavLM shares with `modeling_wav2vec2` (the feature encoder,
//! the feature projection, the positional convolution, the feed-forward layer, the
//! frame-mask downsampling and the heads' pieces).
//!
//! TEMPORARY: these duplicate what the `autocandle-wav2vec2` crate makes public; this module
//! goes once that crate is merged (the WavLM code then uses its types instead).

use autocandle_core::nn::{linear, Linear};
use autocandle_core::{Activation, Error, Result};
use candle_core::{DType, Module, Tensor, D};
use candle_nn::{group_norm, layer_norm, GroupNorm, LayerNorm, VarBuilder};

/// `Wav2Vec2FeedForward`: `intermediate_dense`, the activation, `output_dense`.
#[derive(Debug)]
pub struct FeedForward {
    intermediate_dense: Linear,
    output_dense: Linear,
    act: Activation,
}

impl FeedForward {
    /// Load from `vb` (`encoder.layers.N.feed_forward`).
    pub fn load(vb: VarBuilder<'_>, hidden: usize, intermediate: usize, act: Activation) -> Result<Self> {
        Ok(Self {
            intermediate_dense: linear(hidden, intermediate, vb.pp("intermediate_dense"))?,
            output_dense: linear(intermediate, hidden, vb.pp("output_dense"))?,
            act,
        })
    }

    /// `[.., hidden]` -> `[.., hidden]`.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let x = self.act.forward(&self.intermediate_dense.forward(x)?)?;
        Ok(self.output_dense.forward(&x)?)
    }
}

/// The weight of a weight-normed convolution (`weight_norm(conv, dim=2)`): `g * v / ‖v‖`,
/// the norm taken over the output and input channels for each kernel position. Reads
/// `parametrizations.weight.original0/1` (PyTorch's parametrization) or the older
/// `weight_g` / `weight_v`.
fn weight_norm(vb: &VarBuilder<'_>, shape: (usize, usize, usize)) -> Result<Tensor> {
    let (g, v) = if vb.contains_tensor("weight_g") {
        (vb.get((1, 1, shape.2), "weight_g")?, vb.get(shape, "weight_v")?)
    } else {
        let p = vb.pp("parametrizations.weight");
        (p.get((1, 1, shape.2), "original0")?, p.get(shape, "original1")?)
    };
    let norm = v.to_dtype(DType::F32)?.sqr()?.sum_keepdim(0)?.sum_keepdim(1)?.sqrt()?.to_dtype(v.dtype())?;
    Ok(v.broadcast_mul(&g.broadcast_div(&norm)?)?)
}

/// `Wav2Vec2PositionalConvEmbedding`: a grouped, weight-normed convolution over time with
/// "same" padding (one frame dropped for an even kernel) and the activation.
#[derive(Debug)]
pub struct PositionalConvEmbedding {
    weight: Tensor,
    bias: Tensor,
    kernel: usize,
    groups: usize,
    act: Activation,
}

impl PositionalConvEmbedding {
    /// Load from `vb` (`encoder.pos_conv_embed`).
    pub fn load(vb: VarBuilder<'_>, hidden: usize, kernel: usize, groups: usize, act: Activation) -> Result<Self> {
        let conv = vb.pp("conv");
        Ok(Self {
            weight: weight_norm(&conv, (hidden, hidden / groups, kernel))?,
            bias: conv.get(hidden, "bias")?,
            kernel,
            groups,
            act,
        })
    }

    /// `[batch, frames, hidden]` -> the position embeddings, same shape.
    pub fn forward(&self, hidden: &Tensor) -> Result<Tensor> {
        let frames = hidden.dim(1)?;
        let x = hidden.transpose(1, 2)?.contiguous()?;
        let y = x.conv1d(&self.weight, self.kernel / 2, 1, 1, self.groups)?;
        let y = y.narrow(2, 0, frames)?.broadcast_add(&self.bias.reshape((1, (), 1))?)?;
        Ok(self.act.forward(&y)?.transpose(1, 2)?)
    }
}

#[derive(Debug)]
enum ConvNorm {
    None,
    Group(GroupNorm),
    Layer(LayerNorm),
}

#[derive(Debug)]
struct ConvLayer {
    weight: Tensor,
    bias: Option<Tensor>,
    stride: usize,
    norm: ConvNorm,
    act: Activation,
}

impl ConvLayer {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let mut y = x.conv1d(&self.weight, 0, self.stride, 1, 1)?;
        if let Some(bias) = &self.bias {
            y = y.broadcast_add(&bias.reshape((1, (), 1))?)?;
        }
        y = match &self.norm {
            ConvNorm::None => y,
            ConvNorm::Group(norm) => norm.forward(&y)?,
            ConvNorm::Layer(norm) => norm.forward(&y.transpose(1, 2)?)?.transpose(1, 2)?,
        };
        Ok(self.act.forward(&y)?)
    }
}

/// The settings of the feature encoder, from the model's config.
#[derive(Debug, Clone)]
pub struct FeatureEncoderConfig<'a> {
    /// `conv_dim`.
    pub conv_dim: &'a [usize],
    /// `conv_kernel`.
    pub conv_kernel: &'a [usize],
    /// `conv_stride`.
    pub conv_stride: &'a [usize],
    /// `conv_bias`.
    pub conv_bias: bool,
    /// `feat_extract_norm == "layer"`.
    pub layer_norm: bool,
    /// `feat_extract_activation`.
    pub act: Activation,
}

/// `Wav2Vec2FeatureEncoder`: the convolution stack from raw samples to frames.
#[derive(Debug)]
pub struct FeatureEncoder {
    layers: Vec<ConvLayer>,
    kernels: Vec<usize>,
    strides: Vec<usize>,
}

impl FeatureEncoder {
    /// Load from `vb` (`feature_extractor`).
    pub fn load(vb: VarBuilder<'_>, config: &FeatureEncoderConfig<'_>) -> Result<Self> {
        let mut layers = Vec::with_capacity(config.conv_dim.len());
        let mut in_dim = 1;
        for (i, ((&out, &kernel), &stride)) in
            config.conv_dim.iter().zip(config.conv_kernel).zip(config.conv_stride).enumerate()
        {
            let vb = vb.pp(format!("conv_layers.{i}"));
            let conv = vb.pp("conv");
            let norm = if config.layer_norm {
                ConvNorm::Layer(layer_norm(out, 1e-5, vb.pp("layer_norm"))?)
            } else if i == 0 {
                ConvNorm::Group(group_norm(out, out, 1e-5, vb.pp("layer_norm"))?)
            } else {
                ConvNorm::None
            };
            layers.push(ConvLayer {
                weight: conv.get((out, in_dim, kernel), "weight")?,
                bias: if config.conv_bias { Some(conv.get(out, "bias")?) } else { None },
                stride,
                norm,
                act: config.act,
            });
            in_dim = out;
        }
        Ok(Self { layers, kernels: config.conv_kernel.to_vec(), strides: config.conv_stride.to_vec() })
    }

    /// `input_values` `[batch, samples]` -> `[batch, frames, conv_dim[-1]]`.
    pub fn forward(&self, input_values: &Tensor) -> Result<Tensor> {
        let (_, samples) = input_values.dims2().map_err(|_| {
            Error::input(format!("`input_values` must be [batch, samples], got shape {:?}", input_values.dims()))
        })?;
        if self.output_length(samples) == 0 {
            let needed = self.kernels.iter().zip(&self.strides).rev().fold(1, |len, (&k, &s)| (len - 1) * s + k);
            return Err(Error::input(format!(
                "the clips are too short: {samples} samples, the feature encoder needs at least {needed}"
            )));
        }
        let mut x = input_values.unsqueeze(1)?;
        for layer in &self.layers {
            x = layer.forward(&x)?;
        }
        Ok(x.transpose(1, 2)?)
    }

    /// Frames the encoder makes of `samples` samples (`_get_feat_extract_output_lengths`); 0 when too short.
    pub fn output_length(&self, samples: usize) -> usize {
        let mut len = samples;
        for (&k, &s) in self.kernels.iter().zip(&self.strides) {
            if len < k {
                return 0;
            }
            len = (len - k) / s + 1;
        }
        len
    }

    /// The frames of each clip from the sample-level `attention_mask` `[batch, samples]`
    /// (`_get_feature_vector_attention_mask`: the mask's sum, downsampled).
    pub fn frame_lengths(&self, attention_mask: &Tensor) -> Result<Vec<usize>> {
        let sums = attention_mask.to_dtype(DType::F64)?.sum(D::Minus1)?.to_vec1::<f64>()?;
        Ok(sums.into_iter().map(|s| self.output_length(s.max(0.0) as usize)).collect())
    }
}

/// `[batch, frames]` mask (`dtype`): 1 on the first `lengths[b]` frames of each row.
pub fn lengths_mask(lengths: &[usize], frames: usize, dtype: DType, device: &candle_core::Device) -> Result<Tensor> {
    let mut data = Vec::with_capacity(lengths.len() * frames);
    for &len in lengths {
        data.extend((0..frames).map(|f| if f < len { 1f32 } else { 0f32 }));
    }
    Ok(Tensor::from_vec(data, (lengths.len(), frames), device)?.to_dtype(dtype)?)
}

/// `Wav2Vec2FeatureProjection`: LayerNorm then the linear projection to `hidden_size`.
#[derive(Debug)]
pub struct FeatureProjection {
    layer_norm: LayerNorm,
    projection: Linear,
}

impl FeatureProjection {
    /// Load from `vb` (`feature_projection`).
    pub fn load(vb: VarBuilder<'_>, conv_out: usize, hidden: usize, eps: f64) -> Result<Self> {
        Ok(Self {
            layer_norm: layer_norm(conv_out, eps, vb.pp("layer_norm"))?,
            projection: linear(conv_out, hidden, vb.pp("projection"))?,
        })
    }

    /// `(projected [batch, frames, hidden], normed features [batch, frames, conv_out])`.
    pub fn forward(&self, features: &Tensor) -> Result<(Tensor, Tensor)> {
        let normed = self.layer_norm.forward(features)?;
        Ok((self.projection.forward(&normed)?, normed))
    }
}

/// The softmax-weighted sum of `states` (`layer_weights`), as the classification heads take it.
pub fn weighted_layer_sum(states: &[Tensor], layer_weights: &Tensor) -> Result<Tensor> {
    let stacked = Tensor::stack(states, 0)?;
    let weights = candle_nn::ops::softmax_last_dim(layer_weights)?.to_dtype(stacked.dtype())?;
    Ok(stacked.broadcast_mul(&weights.reshape(((), 1, 1, 1))?)?.sum(0)?)
}

/// `TDNNLayer`: a dilated convolution stored as a linear `kernel` `[out, in * k]`, then ReLU.
#[derive(Debug)]
pub struct TdnnLayer {
    weight: Tensor,
    bias: Tensor,
    dilation: usize,
}

impl TdnnLayer {
    /// Load from `vb` (`tdnn.N`).
    pub fn load(vb: VarBuilder<'_>, in_dim: usize, out_dim: usize, kernel: usize, dilation: usize) -> Result<Self> {
        let k = vb.pp("kernel");
        let weight = k.get((out_dim, in_dim * kernel), "weight")?;
        // [out, k * in] viewed [out, k, in] -> conv weight [out, in, k].
        let weight = weight.reshape((out_dim, kernel, in_dim))?.transpose(1, 2)?.contiguous()?;
        Ok(Self { weight, bias: k.get(out_dim, "bias")?, dilation })
    }

    /// `[batch, frames, in]` -> `[batch, frames - dilation * (k - 1), out]`.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let y = x.transpose(1, 2)?.contiguous()?.conv1d(&self.weight, 0, 1, self.dilation, 1)?;
        let y = y.broadcast_add(&self.bias.reshape((1, (), 1))?)?;
        Ok(y.relu()?.transpose(1, 2)?)
    }
}

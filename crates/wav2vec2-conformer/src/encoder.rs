//! The conformer encoder (`Wav2Vec2ConformerEncoder`): position embeddings (relative,
//! rotary or none), conformer blocks (two half-step feed-forward blocks around
//! self-attention and the convolution module) and a final LayerNorm. The feed-forward blocks
//! and the padding bias are `autocandle-wav2vec2`'s.

use autocandle_core::nn::{linear, linear_no_bias, Linear};
use autocandle_core::{Activation, Error, Result};
use autocandle_wav2vec2::{
    attention_bias, conv1d, EncoderOutput, FeedForward, PosConvKind, PositionalConvEmbedding, TORCH_NORM_EPS,
};
use candle_core::{Device, Module, Tensor, D};
use candle_nn::{layer_norm, LayerNorm, VarBuilder};

use crate::config::{PositionEmbeddingsType, Wav2Vec2ConformerConfig};

/// The sinusoidal embeddings of the relative positions `T-1, T-2, ..., -(T-1)`
/// (`Wav2Vec2ConformerRelPositionalEmbedding`), `[1, 2T - 1, hidden]`: even channels the
/// sine, odd ones the cosine of `position * 10000^(-2i / hidden)`, computed in `f32` as
/// `transformers` does.
pub fn relative_position_embeddings(frames: usize, hidden: usize, device: &Device) -> Result<Tensor> {
    if frames == 0 {
        return Err(Error::input("relative position embeddings need at least one frame"));
    }
    let scale = -(10000f64.ln() / hidden as f64) as f32;
    let div: Vec<f32> = (0..hidden).step_by(2).map(|i| (i as f32 * scale).exp()).collect();
    let rows = 2 * frames - 1;
    let mut data = Vec::with_capacity(rows * hidden);
    for row in 0..rows {
        let position = frames as f32 - 1.0 - row as f32;
        for &d in &div {
            let angle = position * d;
            data.push(angle.sin());
            data.push(angle.cos());
        }
    }
    Ok(Tensor::from_vec(data, (1, rows, hidden), device)?)
}

/// `(cos, sin)` `[frames, head_dim]` of the rotary embeddings
/// (`Wav2Vec2ConformerRotaryPositionalEmbedding`), in `f32`.
pub fn rotary_embeddings(frames: usize, head_dim: usize, base: f64, device: &Device) -> Result<(Tensor, Tensor)> {
    let base = base as f32;
    let inv_freq: Vec<f32> = (0..head_dim).step_by(2).map(|i| 1.0 / base.powf(i as f32 / head_dim as f32)).collect();
    let half = inv_freq.len();
    let (mut cos, mut sin) = (Vec::with_capacity(frames * head_dim), Vec::with_capacity(frames * head_dim));
    for t in 0..frames {
        for _ in 0..2 {
            for &f in &inv_freq {
                let angle = t as f32 * f;
                cos.push(angle.cos());
                sin.push(angle.sin());
            }
        }
    }
    let shape = (frames, 2 * half);
    Ok((Tensor::from_vec(cos, shape, device)?, Tensor::from_vec(sin, shape, device)?))
}

/// The position information the layers share.
#[derive(Debug)]
enum Positions {
    /// `[1, 2T - 1, hidden]`.
    Relative(Tensor),
    /// `cos`, `sin` `[T, head_dim]`.
    Rotary(Tensor, Tensor),
    None,
}

/// `Wav2Vec2ConformerSelfAttention` (`linear_q/k/v/out`, and for relative positions
/// `linear_pos`, `pos_bias_u`, `pos_bias_v`).
#[derive(Debug)]
struct SelfAttention {
    linear_q: Linear,
    linear_k: Linear,
    linear_v: Linear,
    linear_out: Linear,
    /// `linear_pos`, `pos_bias_u` `[heads, head_dim]`, `pos_bias_v`.
    relative: Option<(Linear, Tensor, Tensor)>,
    heads: usize,
    head_dim: usize,
}

impl SelfAttention {
    fn load(vb: VarBuilder<'_>, config: &Wav2Vec2ConformerConfig, kind: PositionEmbeddingsType) -> Result<Self> {
        let cfg = &config.wav2vec2;
        let (d, heads, hd) = (cfg.hidden_size, cfg.num_attention_heads, cfg.head_dim());
        let relative = if kind == PositionEmbeddingsType::Relative {
            Some((
                linear_no_bias(d, d, vb.pp("linear_pos"))?,
                vb.get((heads, hd), "pos_bias_u")?,
                vb.get((heads, hd), "pos_bias_v")?,
            ))
        } else {
            None
        };
        Ok(Self {
            linear_q: linear(d, d, vb.pp("linear_q"))?,
            linear_k: linear(d, d, vb.pp("linear_k"))?,
            linear_v: linear(d, d, vb.pp("linear_v"))?,
            linear_out: linear(d, d, vb.pp("linear_out"))?,
            relative,
            heads,
            head_dim: hd,
        })
    }

    fn forward(&self, x: &Tensor, positions: &Positions, mask: Option<&Tensor>) -> Result<Tensor> {
        let (batch, frames, d) = x.dims3()?;
        let (heads, hd) = (self.heads, self.head_dim);
        let split =
            |t: Tensor| -> Result<Tensor> { Ok(t.reshape((batch, frames, heads, hd))?.transpose(1, 2)?.contiguous()?) };
        let query_key_input = match positions {
            Positions::Rotary(cos, sin) => {
                let per_head = x.reshape((batch, frames, heads, hd))?;
                let cos = cos.to_dtype(x.dtype())?.reshape((1, frames, 1, hd))?;
                let sin = sin.to_dtype(x.dtype())?.reshape((1, frames, 1, hd))?;
                let first = per_head.narrow(D::Minus1, 0, hd / 2)?;
                let second = per_head.narrow(D::Minus1, hd / 2, hd - hd / 2)?;
                let rotated = Tensor::cat(&[&second.neg()?, &first], D::Minus1)?;
                (per_head.broadcast_mul(&cos)? + rotated.broadcast_mul(&sin)?)?.reshape((batch, frames, d))?
            }
            _ => x.clone(),
        };
        let q = split(self.linear_q.forward(&query_key_input)?)?;
        let k = split(self.linear_k.forward(&query_key_input)?)?;
        let v = split(self.linear_v.forward(x)?)?;
        let scale = (hd as f64).powf(-0.5);
        let mut scores = match (&self.relative, positions) {
            (Some((linear_pos, bias_u, bias_v)), Positions::Relative(pe)) => {
                let rows = pe.dim(1)?;
                // [1, 2T-1, D] -> [1, H, hd, 2T-1]
                let p = linear_pos
                    .forward(&pe.to_dtype(x.dtype())?)?
                    .reshape((1, rows, heads, hd))?
                    .permute((0, 2, 3, 1))?;
                let q_v = q.broadcast_add(&bias_v.reshape((1, heads, 1, hd))?)?;
                let rel = q_v.broadcast_matmul(&p.contiguous()?)?; // [B, H, T, 2T-1]
                                                                   // The Transformer-XL shift: out[i, j] = rel[i, T - 1 - i + j].
                let rel = rel.pad_with_zeros(D::Minus1, 1, 0)?.reshape((batch, heads, rows + 1, frames))?;
                let rel = rel.narrow(2, 1, rows)?.contiguous()?.reshape((batch, heads, frames, rows))?;
                let rel = rel.narrow(D::Minus1, 0, frames)?;
                let q_u = q.broadcast_add(&bias_u.reshape((1, heads, 1, hd))?)?;
                ((q_u.matmul(&k.t()?)? * scale)? + (rel * scale)?)?
            }
            _ => (q.matmul(&k.t()?)? * scale)?,
        };
        if let Some(mask) = mask {
            scores = scores.broadcast_add(mask)?;
        }
        let probs = candle_nn::ops::softmax_last_dim(&scores)?;
        let context = probs.matmul(&v)?.transpose(1, 2)?.reshape((batch, frames, d))?;
        Ok(self.linear_out.forward(&context)?)
    }
}

/// `Wav2Vec2ConformerConvolutionModule`: LayerNorm, pointwise convolution to twice the
/// channels, GLU, depthwise convolution, batch norm (running statistics), the activation,
/// pointwise convolution.
#[derive(Debug)]
struct ConvolutionModule {
    layer_norm: LayerNorm,
    pointwise_conv1: Linear,
    depthwise_weight: Tensor,
    /// The batch norm folded into a scale and a shift per channel, `[1, channels, 1]`.
    bn_scale: Tensor,
    bn_shift: Tensor,
    pointwise_conv2: Linear,
    kernel: usize,
    act: Activation,
}

impl ConvolutionModule {
    fn load(vb: VarBuilder<'_>, config: &Wav2Vec2ConformerConfig) -> Result<Self> {
        let d = config.wav2vec2.hidden_size;
        let k = config.conv_depthwise_kernel_size;
        let pointwise = |name: &str, out: usize| -> Result<Linear> {
            Ok(Linear::new(vb.pp(name).get((out, d, 1), "weight")?.reshape((out, d))?, None))
        };
        let bn = vb.pp("batch_norm");
        let weight = bn.get(d, "weight")?;
        let bias = bn.get(d, "bias")?;
        let mean = bn.get(d, "running_mean")?;
        let var = bn.get(d, "running_var")?;
        // A training counter; read so that the loading report stays clean.
        if bn.contains_tensor("num_batches_tracked") {
            bn.get((), "num_batches_tracked")?;
        }
        let scale = weight.div(&(var + TORCH_NORM_EPS)?.sqrt()?)?;
        let shift = (bias - mean.mul(&scale)?)?;
        Ok(Self {
            layer_norm: layer_norm(d, TORCH_NORM_EPS, vb.pp("layer_norm"))?,
            pointwise_conv1: pointwise("pointwise_conv1", 2 * d)?,
            depthwise_weight: vb.pp("depthwise_conv").get((d, 1, k), "weight")?,
            bn_scale: scale.reshape((1, d, 1))?,
            bn_shift: shift.reshape((1, d, 1))?,
            pointwise_conv2: pointwise("pointwise_conv2", d)?,
            kernel: k,
            act: config.wav2vec2.hidden_act,
        })
    }

    /// `[batch, frames, hidden]` -> same shape.
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let d = x.dim(D::Minus1)?;
        let y = self.pointwise_conv1.forward(&self.layer_norm.forward(x)?)?;
        let y = (y.narrow(D::Minus1, 0, d)? * candle_nn::ops::sigmoid(&y.narrow(D::Minus1, d, d)?)?)?;
        let y = conv1d(&y.transpose(1, 2)?, &self.depthwise_weight, None, (self.kernel - 1) / 2, 1, 1, d)?;
        let y = y.broadcast_mul(&self.bn_scale)?.broadcast_add(&self.bn_shift)?;
        // Contiguous before the linear map: candle's strided matmul fallback gets batch rows
        // after the first wrong on a transposed view.
        let y = self.act.forward(&y)?.transpose(1, 2)?.contiguous()?;
        Ok(self.pointwise_conv2.forward(&y)?)
    }
}

/// `Wav2Vec2ConformerEncoderLayer`: the conformer block.
#[derive(Debug)]
struct ConformerLayer {
    ffn1_layer_norm: LayerNorm,
    ffn1: FeedForward,
    self_attn_layer_norm: LayerNorm,
    self_attn: SelfAttention,
    conv_module: ConvolutionModule,
    ffn2_layer_norm: LayerNorm,
    ffn2: FeedForward,
    final_layer_norm: LayerNorm,
}

impl ConformerLayer {
    fn load(vb: VarBuilder<'_>, config: &Wav2Vec2ConformerConfig, kind: PositionEmbeddingsType) -> Result<Self> {
        let cfg = &config.wav2vec2;
        let norm = |name: &str| layer_norm(cfg.hidden_size, TORCH_NORM_EPS, vb.pp(name));
        Ok(Self {
            ffn1_layer_norm: norm("ffn1_layer_norm")?,
            ffn1: FeedForward::load(vb.pp("ffn1"), cfg)?,
            self_attn_layer_norm: norm("self_attn_layer_norm")?,
            self_attn: SelfAttention::load(vb.pp("self_attn"), config, kind)?,
            conv_module: ConvolutionModule::load(vb.pp("conv_module"), config)?,
            ffn2_layer_norm: norm("ffn2_layer_norm")?,
            ffn2: FeedForward::load(vb.pp("ffn2"), cfg)?,
            final_layer_norm: norm("final_layer_norm")?,
        })
    }

    fn forward(&self, x: &Tensor, positions: &Positions, mask: Option<&Tensor>) -> Result<Tensor> {
        let x = ((self.ffn1.forward(&self.ffn1_layer_norm.forward(x)?)? * 0.5)? + x)?;
        let attn = self.self_attn.forward(&self.self_attn_layer_norm.forward(&x)?, positions, mask)?;
        let x = (attn + &x)?;
        let x = (&x + self.conv_module.forward(&x)?)?;
        let x = ((self.ffn2.forward(&self.ffn2_layer_norm.forward(&x)?)? * 0.5)? + &x)?;
        Ok(self.final_layer_norm.forward(&x)?)
    }
}

/// The conformer encoder under `wav2vec2_conformer.encoder`. (`transformers` builds a
/// positional convolution `pos_conv_embed` too but never runs it: its weights are read, when
/// present, and dropped.)
#[derive(Debug)]
pub struct ConformerEncoder {
    layer_norm: LayerNorm,
    layers: Vec<ConformerLayer>,
    kind: PositionEmbeddingsType,
    hidden: usize,
    head_dim: usize,
    rotary_base: f64,
}

impl ConformerEncoder {
    /// Load from `vb` (`wav2vec2_conformer.encoder`).
    pub fn load(vb: VarBuilder<'_>, config: &Wav2Vec2ConformerConfig) -> Result<Self> {
        let cfg = &config.wav2vec2;
        let kind = config.position_embeddings()?;
        // `transformers` builds `pos_conv_embed` but never runs it; read its weights when the
        // checkpoint has them, so the loading report stays clean.
        if vb.contains_tensor("pos_conv_embed.conv.bias") {
            PositionalConvEmbedding::load(vb.pp("pos_conv_embed"), cfg, PosConvKind::WeightNorm)?;
        }
        // The rotary frequencies are a saved buffer; they are recomputed (the same values).
        if kind == PositionEmbeddingsType::Rotary && vb.contains_tensor("embed_positions.inv_freq") {
            vb.get(cfg.head_dim() / 2, "embed_positions.inv_freq")?;
        }
        Ok(Self {
            layer_norm: layer_norm(cfg.hidden_size, cfg.layer_norm_eps, vb.pp("layer_norm"))?,
            layers: (0..cfg.num_hidden_layers)
                .map(|i| ConformerLayer::load(vb.pp(format!("layers.{i}")), config, kind))
                .collect::<Result<_>>()?,
            kind,
            hidden: cfg.hidden_size,
            head_dim: cfg.head_dim(),
            rotary_base: config.rotary_embedding_base,
        })
    }

    /// Run the encoder on the projected features `[batch, frames, hidden]`; `frame_mask`
    /// `[batch, frames]` (1 real, 0 padding) zeroes the padded frames first and masks them
    /// out as keys. `output_hidden_states`: also the input of the first layer and every
    /// layer's output (the last before the final LayerNorm).
    pub fn forward(
        &self,
        hidden: &Tensor,
        frame_mask: Option<&Tensor>,
        output_hidden_states: bool,
    ) -> Result<EncoderOutput> {
        let frames = hidden.dim(1)?;
        let dtype = hidden.dtype();
        let mut x = hidden.clone();
        let mut mask = None;
        if let Some(m) = frame_mask {
            x = x.broadcast_mul(&m.to_dtype(dtype)?.unsqueeze(D::Minus1)?)?;
            mask = Some(attention_bias(m, dtype)?);
        }
        let device = x.device();
        let positions = match self.kind {
            PositionEmbeddingsType::Relative => {
                Positions::Relative(relative_position_embeddings(frames, self.hidden, device)?.to_dtype(dtype)?)
            }
            PositionEmbeddingsType::Rotary => {
                let (cos, sin) = rotary_embeddings(frames, self.head_dim, self.rotary_base, device)?;
                Positions::Rotary(cos.to_dtype(dtype)?, sin.to_dtype(dtype)?)
            }
            PositionEmbeddingsType::None => Positions::None,
        };
        let mut all = Vec::new();
        if output_hidden_states {
            all.push(x.clone());
        }
        for layer in &self.layers {
            x = layer.forward(&x, &positions, mask.as_ref())?;
            if output_hidden_states {
                all.push(x.clone());
            }
        }
        let x = self.layer_norm.forward(&x)?;
        Ok(EncoderOutput { last_hidden_state: x, hidden_states: all })
    }
}

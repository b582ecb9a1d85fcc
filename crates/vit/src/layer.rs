//! [`ViTLayer`]: the pre-norm encoder block of ViT (`ViTLayer`: self-attention with
//! `attention.attention.{query,key,value}` and `attention.output.dense`, `layernorm_before` /
//! `layernorm_after`, `intermediate.dense` / `output.dense`), public for the models that reuse
//! it under the same weight names (DPT, YOLOS), and its [`ViTAttention`] (also DINOv2's).

use autocandle_core::nn::{linear, linear_b, Linear};
use autocandle_core::{Activation, Result};
use candle_core::{Module, Tensor};
use candle_nn::{layer_norm, LayerNorm, VarBuilder};

/// The sizes and switches of a [`ViTLayer`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ViTLayerSpec {
    /// `hidden_size`.
    pub hidden: usize,
    /// `num_attention_heads` (divides `hidden`).
    pub heads: usize,
    /// `intermediate_size`.
    pub intermediate: usize,
    /// `qkv_bias`: biases on the query, key and value projections.
    pub qkv_bias: bool,
    /// `hidden_act` of the MLP.
    pub activation: Activation,
    /// `layer_norm_eps`.
    pub eps: f64,
}

/// `ViTAttention`: self-attention (`attention.{query,key,value}`) and its output projection
/// (`output.dense`), read under the layer's `attention`.
#[derive(Debug)]
pub struct ViTAttention {
    query: Linear,
    key: Linear,
    value: Linear,
    output: Linear,
    num_heads: usize,
    head_dim: usize,
}

impl ViTAttention {
    /// Read the attention of width `hidden` with `heads` heads under `vb` (the layer's
    /// `attention`); `qkv_bias`: biases on the query, key and value projections.
    pub fn load(vb: VarBuilder<'_>, hidden: usize, heads: usize, qkv_bias: bool) -> Result<Self> {
        let h = hidden;
        let attn = vb.pp("attention");
        Ok(Self {
            query: linear_b(h, h, qkv_bias, attn.pp("query"))?,
            key: linear_b(h, h, qkv_bias, attn.pp("key"))?,
            value: linear_b(h, h, qkv_bias, attn.pp("value"))?,
            output: linear(h, h, vb.pp("output.dense"))?,
            num_heads: heads,
            head_dim: h / heads.max(1),
        })
    }

    /// `[B, seq, hidden]` -> `[B, seq, hidden]`.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let (batch, seq, hidden) = x.dims3()?;
        let heads = |proj: &Linear| -> Result<Tensor> {
            Ok(proj.forward(x)?.reshape((batch, seq, self.num_heads, self.head_dim))?.transpose(1, 2)?.contiguous()?)
        };
        let (q, k, v) = (heads(&self.query)?, heads(&self.key)?, heads(&self.value)?);
        let dtype = q.dtype();
        let scale = (self.head_dim as f64).powf(-0.5);
        let probs =
            autocandle_core::kernels::masked_softmax(&autocandle_core::kernels::matmul(&q, &k.t()?)?, scale, None)?
                .to_dtype(dtype)?;
        let context = autocandle_core::kernels::matmul(&probs, &v)?.transpose(1, 2)?.reshape((batch, seq, hidden))?;
        Ok(self.output.forward(&context)?)
    }
}

/// `ViTLayer`: pre-norm attention and MLP, each with a residual.
#[derive(Debug)]
pub struct ViTLayer {
    layernorm_before: LayerNorm,
    attention: ViTAttention,
    layernorm_after: LayerNorm,
    intermediate: Linear,
    output: Linear,
    activation: Activation,
}

impl ViTLayer {
    /// Read the layer under `vb` (`encoder.layer.N` of the model).
    pub fn load(vb: VarBuilder<'_>, spec: &ViTLayerSpec) -> Result<Self> {
        let (h, i) = (spec.hidden, spec.intermediate);
        Ok(Self {
            layernorm_before: layer_norm(h, spec.eps, vb.pp("layernorm_before"))?,
            attention: ViTAttention::load(vb.pp("attention"), h, spec.heads, spec.qkv_bias)?,
            layernorm_after: layer_norm(h, spec.eps, vb.pp("layernorm_after"))?,
            intermediate: linear(h, i, vb.pp("intermediate.dense"))?,
            output: linear(i, h, vb.pp("output.dense"))?,
            activation: spec.activation,
        })
    }

    /// `[B, seq, hidden]` -> `[B, seq, hidden]`.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let x = (self.attention.forward(&self.layernorm_before.forward(x)?)? + x)?;
        let y = self.activation.forward(&self.intermediate.forward(&self.layernorm_after.forward(&x)?)?)?;
        Ok((self.output.forward(&y)? + x)?)
    }
}

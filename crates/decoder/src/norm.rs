//! RMSNorm, in Llama's and in Gemma's `(1 + weight)` form (and OLMo-2's, Llama's weight
//! applied in f32), LayerNorm (with or without bias, one per head where the weight says so),
//! and [`Norm`], the one a decoder's options choose.

use candle_core::{DType, Module, Tensor, D};
use candle_nn::{Init, VarBuilder};

use autocandle_core::Result;

use crate::spec::{DecoderSpec, NormKind, NormStyle, QkLayerNorm};

/// `LlamaRMSNorm` / `GemmaRMSNorm`: `x / sqrt(mean(x^2) + eps)` computed in f32, times the
/// weight (Llama: `weight * normed.to(dtype)`; Gemma: `(normed * (1 + weight)).to(dtype)`
/// in f32).
#[derive(Debug, Clone)]
pub struct RmsNorm {
    /// The weight as stored (Llama), `1 + weight` in f32 (Gemma), or the weight in f32 (OLMo-2).
    scale: Tensor,
    eps: f64,
    style: NormStyle,
}

impl RmsNorm {
    /// A norm over the last `size` dimensions from `weight`.
    pub fn new(weight: Tensor, eps: f64, style: NormStyle) -> Result<Self> {
        let scale = match style {
            NormStyle::Weight => weight,
            NormStyle::WeightInF32 => weight.to_dtype(DType::F32)?,
            NormStyle::OnePlusWeight => (weight.to_dtype(DType::F32)? + 1.0)?,
        };
        Ok(Self { scale, eps, style })
    }

    /// Load `weight` (`[size]`) from `vb`; fresh weights start as `transformers` initialises
    /// them (ones for Llama, zeros for Gemma).
    pub fn load(vb: VarBuilder<'_>, size: usize, eps: f64, style: NormStyle) -> Result<Self> {
        let init = match style {
            NormStyle::Weight | NormStyle::WeightInF32 => Init::Const(1.0),
            NormStyle::OnePlusWeight => Init::Const(0.0),
        };
        Self::new(vb.get_with_hints(size, "weight", init)?, eps, style)
    }

    /// Normalise `x` over its last dimension.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let dtype = x.dtype();
        let x32 = x.to_dtype(DType::F32)?;
        let variance = x32.sqr()?.mean_keepdim(D::Minus1)?;
        let normed = x32.broadcast_mul(&(variance + self.eps)?.sqrt()?.recip()?)?;
        Ok(match self.style {
            NormStyle::Weight => normed.to_dtype(dtype)?.broadcast_mul(&self.scale)?,
            NormStyle::OnePlusWeight | NormStyle::WeightInF32 => normed.broadcast_mul(&self.scale)?.to_dtype(dtype)?,
        })
    }
}

impl Module for RmsNorm {
    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        RmsNorm::forward(self, x).map_err(|e| candle_core::Error::Msg(e.to_string()))
    }
}

/// `nn.LayerNorm` (with or without bias) and Cohere's `CohereLayerNorm`:
/// `(x - mean) / sqrt(var + eps)` over the last dimension, computed in f32, times the weight
/// (plus the bias), then cast to the input dtype.
///
/// The weight may have more dimensions than the one normalised: a `[heads, head_dim]` weight
/// on `[batch, seq, heads, head_dim]` states is one norm per head (Cohere's `q_norm`, StableLM's
/// `q_layernorm.norms`).
#[derive(Debug, Clone)]
pub struct LayerNorm {
    /// The weight in f32.
    weight: Tensor,
    /// The bias in f32, if any.
    bias: Option<Tensor>,
    eps: f64,
}

impl LayerNorm {
    /// A norm from its weight and optional bias (any dtype; kept in f32).
    pub fn new(weight: Tensor, bias: Option<Tensor>, eps: f64) -> Result<Self> {
        let bias = bias.map(|b| b.to_dtype(DType::F32)).transpose()?;
        Ok(Self { weight: weight.to_dtype(DType::F32)?, bias, eps })
    }

    /// Load `weight` (and `bias` when `bias`) of shape `shape` from `vb`; fresh weights start
    /// as `transformers` initialises them (weight ones, bias zeros).
    pub fn load(vb: VarBuilder<'_>, shape: &[usize], eps: f64, bias: bool) -> Result<Self> {
        let weight = vb.get_with_hints(shape, "weight", Init::Const(1.0))?;
        let bias = if bias { Some(vb.get_with_hints(shape, "bias", Init::Const(0.0))?) } else { None };
        Self::new(weight, bias, eps)
    }

    /// Normalise `x` over its last dimension.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let dtype = x.dtype();
        let x32 = x.to_dtype(DType::F32)?;
        let centred = x32.broadcast_sub(&x32.mean_keepdim(D::Minus1)?)?;
        let variance = centred.sqr()?.mean_keepdim(D::Minus1)?;
        let normed = centred.broadcast_mul(&(variance + self.eps)?.sqrt()?.recip()?)?;
        let mut out = normed.broadcast_mul(&self.weight)?;
        if let Some(bias) = &self.bias {
            out = out.broadcast_add(bias)?;
        }
        Ok(out.to_dtype(dtype)?)
    }
}

/// The norm of a decoder: Llama's RMSNorm or a LayerNorm, as [`DecoderOptions::norm_kind`](crate::DecoderOptions::norm_kind) says.
#[derive(Debug, Clone)]
pub enum Norm {
    /// [`RmsNorm`].
    Rms(RmsNorm),
    /// [`LayerNorm`].
    Layer(LayerNorm),
}

impl Norm {
    /// Load a norm over `size` features from `vb` with the kind, style and epsilon of `spec`.
    pub fn load(vb: VarBuilder<'_>, size: usize, spec: &DecoderSpec) -> Result<Self> {
        let (eps, o) = (spec.rms_norm_eps, &spec.options);
        Ok(match o.norm_kind {
            NormKind::Rms => Self::Rms(RmsNorm::load(vb, size, eps, o.norm_style)?),
            NormKind::LayerNorm { bias } => Self::Layer(LayerNorm::load(vb, &[size], eps, bias)?),
        })
    }

    /// The query or key norm `name` (`q` or `k`) of one attention layer, over `heads` heads of
    /// `head_dim` features: [`DecoderOptions::qk_layernorm`](crate::DecoderOptions::qk_layernorm) when set, else the per-head RMSNorm
    /// `{name}_norm` when [`DecoderOptions::qk_norm`](crate::DecoderOptions::qk_norm), else none.
    pub fn load_qk(vb: &VarBuilder<'_>, name: &str, heads: usize, spec: &DecoderSpec) -> Result<Option<Self>> {
        let (d, eps, o) = (spec.head_dim, spec.rms_norm_eps, &spec.options);
        Ok(match o.qk_layernorm {
            Some(QkLayerNorm::Shared) => {
                Some(Self::Layer(LayerNorm::load(vb.pp(format!("{name}_layernorm")), &[d], eps, true)?))
            }
            Some(QkLayerNorm::PerHead) => {
                Some(Self::Layer(LayerNorm::load(vb.pp(format!("{name}_norm")), &[heads, d], eps, false)?))
            }
            Some(QkLayerNorm::PerHeadList) => {
                let list = vb.pp(format!("{name}_layernorm.norms"));
                let weights = (0..heads)
                    .map(|i| Ok(list.pp(i.to_string()).get_with_hints(d, "weight", Init::Const(1.0))?))
                    .collect::<Result<Vec<_>>>()?;
                Some(Self::Layer(LayerNorm::new(Tensor::stack(&weights, 0)?, None, eps)?))
            }
            None if o.qk_norm => Some(Self::Rms(RmsNorm::load(vb.pp(format!("{name}_norm")), d, eps, o.norm_style)?)),
            None => None,
        })
    }

    /// Normalise `x` over its last dimension.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        match self {
            Self::Rms(n) => n.forward(x),
            Self::Layer(n) => n.forward(x),
        }
    }
}

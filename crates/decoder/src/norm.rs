//! RMSNorm, in Llama's and in Gemma's `(1 + weight)` form (and OLMo-2's, Llama's weight
//! applied in f32).

use candle_core::{DType, Module, Tensor, D};
use candle_nn::{Init, VarBuilder};

use autocandle_core::Result;

use crate::spec::NormStyle;

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

//! Quantized matrix products on the CPU: `x · Wᵀ` with `W` a ggml-quantized [`QTensor`].
//!
//! Placeholder entry point: returns `None` where candle's own `QMatMul` is used.

use candle_core::quantized::QTensor;
use candle_core::{Result, Tensor};

/// `x · wᵀ` for a contiguous f32 `x` (`[.., k]`) and a quantized `w` (`[n, k]`), or `None`
/// where this crate has no faster kernel than candle's `QMatMul` (the caller uses candle's).
pub fn matmul(x: &Tensor, w: &QTensor) -> Result<Option<Tensor>> {
    let _ = (x, w);
    Ok(None)
}

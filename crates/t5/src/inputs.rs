//! Checking forward inputs, and the additive masks (padding, causal) the attention adds.

use candle_core::{DType, Device, Tensor};

use autocandle_core::Result;

pub(crate) use autocandle_core::inputs::{dims2_int, ids_in_range, require_shape};

/// `torch.finfo(dtype).min`, exactly representable in f32 for the float dtypes.
pub(crate) fn dtype_min(dtype: DType) -> f64 {
    match dtype {
        DType::F16 => -65504.0,
        // -(2 - 2^-7) * 2^127: converting f32::MIN to bf16 would round to -inf.
        DType::BF16 => f64::from(-f32::from_bits(0x7f7f_0000)),
        DType::F64 => f64::MIN,
        _ => f64::from(f32::MIN),
    }
}

/// The dtype attention scores, position biases and masks are added and softmaxed in: f32 for
/// half-precision models, else the model's own.
pub(crate) fn score_dtype(dtype: DType) -> DType {
    match dtype {
        DType::F16 | DType::BF16 => DType::F32,
        other => other,
    }
}

/// `[batch, 1, 1, seq]`: 0 where `mask` (`[batch, seq]`, any dtype) is non-zero, the dtype's
/// minimum where it is zero, in `dtype`.
pub(crate) fn padding_mask(mask: &Tensor, dtype: DType) -> Result<Tensor> {
    let (batch, seq) = mask.dims2()?;
    let keep = mask.to_dtype(DType::F32)?.ne(0f32)?.reshape((batch, 1, 1, seq))?;
    select_min(&keep, dtype)
}

/// 0 where `keep` (u8) is non-zero, `torch.finfo(dtype).min` elsewhere, in `dtype`.
fn select_min(keep: &Tensor, dtype: DType) -> Result<Tensor> {
    let zeros = Tensor::zeros(keep.dims(), dtype, keep.device())?;
    let mins = Tensor::full(dtype_min(dtype), keep.dims(), keep.device())?.to_dtype(dtype)?;
    Ok(keep.where_cond(&zeros, &mins)?)
}

/// `[1, 1, new, past + new]`: 0 where query `past + i` may see key `j` (`j <= past + i`), the
/// dtype's minimum elsewhere, in `dtype`.
pub(crate) fn causal_mask(new: usize, past: usize, dtype: DType, device: &Device) -> Result<Tensor> {
    let total = past + new;
    let keep: Vec<u8> = (0..new).flat_map(|q| (0..total).map(move |k| u8::from(k <= past + q))).collect();
    select_min(&Tensor::from_vec(keep, (1, 1, new, total), device)?, dtype)
}

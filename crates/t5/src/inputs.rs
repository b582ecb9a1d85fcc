//! Checking forward inputs, and the additive masks (padding, causal) the attention adds.

use candle_core::{DType, Device, Tensor};

use autocandle_core::{Error, Result};

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

/// `[batch, seq]` of a rank-2 integer input, or an error naming `name`.
pub(crate) fn dims2_int(t: &Tensor, name: &str) -> Result<(usize, usize)> {
    let dims = t.dims();
    let &[batch, seq] = dims else {
        return Err(Error::input(format!("`{name}` must have shape [batch, seq], got {dims:?}")));
    };
    if !t.dtype().is_int() {
        return Err(Error::input(format!("`{name}` must hold integers (u32 or i64), got {:?}", t.dtype())));
    }
    if batch == 0 || seq == 0 {
        return Err(Error::input(format!("`{name}` is empty (shape {dims:?}): give at least one token")));
    }
    Ok((batch, seq))
}

/// An error unless `t` has exactly `dims`.
pub(crate) fn require_shape(t: &Tensor, name: &str, dims: &[usize], like: &str) -> Result<()> {
    if t.dims() == dims {
        Ok(())
    } else {
        Err(Error::input(format!("`{name}` has shape {:?} but {like} has shape {dims:?}; they must match", t.dims())))
    }
}

/// Check that every id of `ids` lies in `0..limit` and return them as `u32` for lookups.
///
/// A violation is [`Error::TokenIdOutOfRange`] naming `input` and the offending id.
pub(crate) fn ids_in_range(ids: &Tensor, input: &'static str, limit: usize) -> Result<Tensor> {
    let ids64 = ids.to_dtype(DType::I64)?;
    let min = ids64.min_all()?.to_scalar::<i64>()?;
    let max = ids64.max_all()?.to_scalar::<i64>()?;
    let out_of_range = |id| Error::TokenIdOutOfRange { input, id, vocab_size: limit };
    if min < 0 {
        return Err(out_of_range(min));
    }
    if usize::try_from(max).map_or(true, |m| m >= limit) {
        return Err(out_of_range(max));
    }
    Ok(ids.to_dtype(DType::U32)?)
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

//! Checking forward inputs, `shift_tokens_right`, and the additive attention masks (padding
//! and causal).

use candle_core::{DType, Device, Tensor};

use autocandle_core::Result;

pub(crate) use autocandle_core::inputs::{dims2_int, ids_in_range, require_shape};

/// `shift_tokens_right`: `[start, ids[:, :-1]]` per row, `-100` (an ignored label) replaced
/// by `pad`. `ids` is `[batch, seq]`, already checked; the result is `i64`.
pub(crate) fn shift_tokens_right(ids: &Tensor, pad: i64, start: i64) -> Result<Tensor> {
    let (batch, seq) = ids.dims2()?;
    let ids = ids.to_dtype(DType::I64)?;
    let first = Tensor::full(start, (batch, 1), ids.device())?;
    let shifted = Tensor::cat(&[&first, &ids.narrow(1, 0, seq - 1)?], 1)?;
    let ignored = shifted.eq(-100i64)?;
    Ok(ignored.where_cond(&Tensor::full(pad, (batch, seq), ids.device())?, &shifted)?)
}

/// The additive padding mask of a 0/1 `mask` `[batch, keys]` (non-zero = attend):
/// `[batch, 1, 1, keys]` with 0 where a key may be attended to and `f32::MIN` elsewhere
/// (`torch.finfo(dtype).min`, as `transformers`' eager masks), in f32.
pub(crate) fn padding_mask(mask: &Tensor) -> Result<Tensor> {
    let (batch, keys) = mask.dims2()?;
    // keep * f32::MAX + f32::MIN is exactly 0 for keep = 1 and f32::MIN for keep = 0.
    let keep = mask.ne(0f64)?.to_dtype(DType::F32)?;
    Ok(keep.affine(f64::from(f32::MAX), f64::from(f32::MIN))?.reshape((batch, 1, 1, keys))?)
}

/// The additive mask of decoder self-attention for `new` queries at positions
/// `past..past + new` over `past + new` keys: causal (a query sees the keys at or before its
/// own position) and, when given, the decoder padding mask `[batch, past + new]`. `None`
/// when nothing is masked (one new token and no padding mask). f32, broadcastable to
/// `[batch, heads, new, past + new]`.
pub(crate) fn decoder_self_mask(
    padding: Option<&Tensor>,
    past: usize,
    new: usize,
    device: &Device,
) -> Result<Option<Tensor>> {
    let causal = if new > 1 { Some(causal_mask(past, new, device)?) } else { None };
    let padding = padding.map(padding_mask).transpose()?;
    Ok(match (padding, causal) {
        // Both are 0 or MIN, so the minimum is their intersection (a sum would overflow).
        (Some(p), Some(c)) => Some(p.broadcast_minimum(&c)?),
        (p, c) => p.or(c),
    })
}

/// `[1, 1, new, past + new]`: 0 where key `k <= past + q`, `f32::MIN` after it.
fn causal_mask(past: usize, new: usize, device: &Device) -> Result<Tensor> {
    let total = past + new;
    let values: Vec<f32> =
        (0..new).flat_map(|q| (0..total).map(move |k| if k <= past + q { 0.0 } else { f32::MIN })).collect();
    Ok(Tensor::from_vec(values, (1, 1, new, total), device)?)
}

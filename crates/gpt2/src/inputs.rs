//! Checking forward inputs, and the additive causal + padding attention mask.

use candle_core::{DType, Device, Tensor};

use autocandle_core::Result;

pub(crate) use autocandle_core::inputs::{checked_position_ids, dims2_int, ids_in_range, require_int, require_shape};

/// The additive attention mask of `new` queries at positions `past..past + new` over
/// `past + new` keys: 0 where a query may attend to a key, `f32::MIN` elsewhere
/// (`torch.finfo(dtype).min`, as `transformers`' eager masks), in `dtype`.
///
/// A query attends to the keys at or before its own position (`create_causal_mask`) whose
/// `attention_mask` entry is non-zero. `mask` is `[batch, past + new]`, already checked.
/// The result broadcasts to `[batch, heads, new, past + new]`; `None` when nothing is
/// masked (no padding mask and a single new token).
pub(crate) fn additive_mask(
    mask: Option<&Tensor>,
    (batch, past, new): (usize, usize, usize),
    dtype: DType,
    device: &Device,
) -> Result<Option<Tensor>> {
    let total = past + new;
    let padding = match mask {
        Some(mask) => {
            // keep * f32::MAX + f32::MIN is exactly 0 for keep = 1 and f32::MIN for keep = 0.
            let keep = mask.ne(0u32)?.to_dtype(DType::F32)?;
            let additive = keep.affine(f64::from(f32::MAX), f64::from(f32::MIN))?;
            Some(additive.reshape((batch, 1, 1, total))?)
        }
        None => None,
    };
    // One new token sees every key: the causal part masks nothing.
    let causal = if new > 1 { Some(causal_mask(past, new, device)?) } else { None };
    let combined = match (padding, causal) {
        // Both are 0 or MIN, so the minimum is their intersection (a sum would overflow).
        (Some(p), Some(c)) => Some(p.broadcast_minimum(&c)?),
        (p, c) => p.or(c),
    };
    Ok(match combined {
        Some(m) => Some(m.to_dtype(dtype)?),
        None => None,
    })
}

/// `[1, 1, new, past + new]`: 0 where key `k <= past + q`, `f32::MIN` after it.
fn causal_mask(past: usize, new: usize, device: &Device) -> Result<Tensor> {
    let total = past + new;
    let values: Vec<f32> =
        (0..new).flat_map(|q| (0..total).map(move |k| if k <= past + q { 0.0 } else { f32::MIN })).collect();
    Ok(Tensor::from_vec(values, (1, 1, new, total), device)?)
}

//! Checking forward inputs, and the additive causal + padding attention mask.

use candle_core::{DType, Device, Tensor};

use autocandle_core::{Error, Result};

/// `[batch, seq]` of a rank-2 integer input, or an error naming `name`.
pub(crate) fn dims2_int(t: &Tensor, name: &str) -> Result<(usize, usize)> {
    let dims = t.dims();
    let &[batch, seq] = dims else {
        return Err(Error::input(format!("`{name}` must have shape [batch, seq], got {dims:?}")));
    };
    require_int(t, name)?;
    if batch == 0 || seq == 0 {
        return Err(Error::input(format!("`{name}` is empty (shape {dims:?}): give at least one token")));
    }
    Ok((batch, seq))
}

/// An error unless `t` has an integer dtype.
pub(crate) fn require_int(t: &Tensor, name: &str) -> Result<()> {
    if t.dtype().is_int() {
        Ok(())
    } else {
        Err(Error::input(format!("`{name}` must hold integers (u32 or i64), got {:?}", t.dtype())))
    }
}

/// An error unless `t` has exactly `dims`.
pub(crate) fn require_shape(t: &Tensor, name: &str, dims: &[usize], like: &str) -> Result<()> {
    if t.dims() == dims {
        Ok(())
    } else {
        Err(Error::input(format!("`{name}` has shape {:?} but {like} has shape {dims:?}; they must match", t.dims())))
    }
}

/// The smallest and largest value of a non-empty integer tensor.
fn min_max(t: &Tensor) -> Result<(i64, i64)> {
    let scalar = |t: Tensor| -> Result<i64> { Ok(t.to_dtype(DType::I64)?.to_scalar::<i64>()?) };
    Ok((scalar(t.min_all()?)?, scalar(t.max_all()?)?))
}

/// Check that every id of `ids` lies in `0..limit` and return them as `u32` for lookups.
///
/// A violation is [`Error::TokenIdOutOfRange`] naming `input` and the offending id.
pub(crate) fn ids_in_range(ids: &Tensor, input: &'static str, limit: usize) -> Result<Tensor> {
    let (min, max) = min_max(ids)?;
    let out_of_range = |id| Error::TokenIdOutOfRange { input, id, vocab_size: limit };
    if min < 0 {
        return Err(out_of_range(min));
    }
    if usize::try_from(max).map_or(true, |m| m >= limit) {
        return Err(out_of_range(max));
    }
    Ok(ids.to_dtype(DType::U32)?)
}

/// Check that every position of `position_ids` lies in `0..n_positions`; return them as `u32`.
pub(crate) fn positions_in_range(position_ids: &Tensor, n_positions: usize) -> Result<Tensor> {
    let (min, max) = min_max(position_ids)?;
    for id in [min, max] {
        if usize::try_from(id).map_or(true, |p| p >= n_positions) {
            return Err(Error::input(format!(
                "position {id} in `position_ids` is out of range: the model has {n_positions} positions \
                 (`n_positions`)"
            )));
        }
    }
    Ok(position_ids.to_dtype(DType::U32)?)
}

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

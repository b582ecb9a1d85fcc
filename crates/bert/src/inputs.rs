//! Checking forward inputs and turning the 0/1 attention mask into an additive one.

use candle_core::{DType, Device, Tensor};

use autocandle_core::Result;

pub(crate) use autocandle_core::inputs::{checked_position_ids, dims2_int, ids_in_range, require_int, require_shape};

/// The additive attention mask: 0 where a query may attend to a key, `f32::MIN` elsewhere
/// (`torch.finfo(dtype).min`, as `transformers`' eager masks), in `dtype`.
///
/// `mask` is `[batch, seq]` with non-zero for tokens to attend to; the result is
/// `[batch, 1, 1, seq]`, or `[batch, 1, seq, seq]` when `causal` (padding and causal masks
/// combined, as `create_causal_mask`). `None` when nothing is masked.
pub(crate) fn additive_mask(
    mask: Option<&Tensor>,
    (batch, seq): (usize, usize),
    causal: bool,
    dtype: DType,
    device: &Device,
) -> Result<Option<Tensor>> {
    let padding = match mask {
        Some(mask) => {
            require_shape(mask, "attention_mask", &[batch, seq], "`input_ids`")?;
            // keep * f32::MAX + f32::MIN is exactly 0 for keep = 1 and f32::MIN for keep = 0.
            let keep = mask.ne(0u32)?.to_dtype(DType::F32)?;
            let additive = keep.affine(f64::from(f32::MAX), f64::from(f32::MIN))?;
            Some(additive.reshape((batch, 1, 1, seq))?)
        }
        None => None,
    };
    let combined = if causal {
        let causal = causal_mask(seq, device)?;
        match padding {
            // Both are 0 or MIN, so the minimum is their intersection (a sum would overflow).
            Some(p) => Some(p.broadcast_minimum(&causal)?),
            None => Some(causal),
        }
    } else {
        padding
    };
    Ok(match combined {
        Some(m) => Some(m.to_dtype(dtype)?),
        None => None,
    })
}

/// `[1, 1, seq, seq]`: 0 on and below the diagonal, `f32::MIN` above it.
fn causal_mask(seq: usize, device: &Device) -> Result<Tensor> {
    let values: Vec<f32> = (0..seq).flat_map(|q| (0..seq).map(move |k| if k <= q { 0.0 } else { f32::MIN })).collect();
    Ok(Tensor::from_vec(values, (1, 1, seq, seq), device)?)
}

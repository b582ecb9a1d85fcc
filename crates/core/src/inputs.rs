//! Checks of forward inputs that every architecture makes the same way: shapes, integer
//! dtypes, token ids and positions in range. Each failure is a clear [`Error`] naming the
//! input, never a panic in an embedding lookup.

use candle_core::{DType, Tensor};

use crate::error::{Error, Result};

/// `[batch, seq]` of a rank-2 integer input, or an error naming `name` (wrong rank, a float
/// dtype, or an empty batch or sequence).
pub fn dims2_int(t: &Tensor, name: &str) -> Result<(usize, usize)> {
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
pub fn require_int(t: &Tensor, name: &str) -> Result<()> {
    if t.dtype().is_int() {
        Ok(())
    } else {
        Err(Error::input(format!("`{name}` must hold integers (u32 or i64), got {:?}", t.dtype())))
    }
}

/// An error unless `t` has exactly `dims`, the shape of the input described by `like`
/// (for example "`input_ids`").
pub fn require_shape(t: &Tensor, name: &str, dims: &[usize], like: &str) -> Result<()> {
    if t.dims() == dims {
        Ok(())
    } else {
        Err(Error::input(format!("`{name}` has shape {:?} but {like} has shape {dims:?}; they must match", t.dims())))
    }
}

/// The smallest and largest value of a non-empty integer tensor.
fn min_max(t: &Tensor) -> Result<(i64, i64)> {
    let t = t.to_dtype(DType::I64)?;
    Ok((t.min_all()?.to_scalar::<i64>()?, t.max_all()?.to_scalar::<i64>()?))
}

/// Check that every id of `ids` lies in `0..limit` and return them as `u32` for lookups.
///
/// A violation is [`Error::TokenIdOutOfRange`] naming `input` and the offending id.
pub fn ids_in_range(ids: &Tensor, input: &'static str, limit: usize) -> Result<Tensor> {
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

/// Check `position_ids` given with `input_ids` of shape `[batch, seq]`: integers, of shape
/// `[batch, seq]` or `[1, seq]` (one row for every sequence).
pub fn require_position_ids_shape(position_ids: &Tensor, batch: usize, seq: usize) -> Result<()> {
    require_int(position_ids, "position_ids")?;
    if position_ids.dims() != [batch, seq] && position_ids.dims() != [1, seq] {
        return Err(Error::input(format!(
            "`position_ids` has shape {:?} but `input_ids` has shape {:?}; they must match (or have a batch of 1)",
            position_ids.dims(),
            [batch, seq]
        )));
    }
    Ok(())
}

/// The checked `position_ids` of `input_ids` `[batch, seq]`, as `u32`: their dtype and shape
/// ([`require_position_ids_shape`]) and every position in `0..max_positions`
/// ([`positions_in_range`]; `field` names the config field that sets `max_positions`).
pub fn checked_position_ids(
    position_ids: &Tensor,
    (batch, seq): (usize, usize),
    max_positions: usize,
    field: &str,
) -> Result<Tensor> {
    require_position_ids_shape(position_ids, batch, seq)?;
    positions_in_range(position_ids, max_positions, field)
}

/// Check that every position of `position_ids` lies in `0..max_positions` (the config field
/// `field` says how many there are); return them as `u32`.
pub fn positions_in_range(position_ids: &Tensor, max_positions: usize, field: &str) -> Result<Tensor> {
    let (min, max) = min_max(position_ids)?;
    for id in [min, max] {
        if usize::try_from(id).map_or(true, |p| p >= max_positions) {
            return Err(Error::input(format!(
                "position {id} in `position_ids` is out of range: the model has {max_positions} positions (`{field}`)"
            )));
        }
    }
    Ok(position_ids.to_dtype(DType::U32)?)
}

#[cfg(test)]
mod tests {
    use candle_core::Device;

    use super::*;

    #[test]
    fn checks() {
        let ids = Tensor::new(&[[1i64, 5, 2]], &Device::Cpu).unwrap();
        assert_eq!(dims2_int(&ids, "input_ids").unwrap(), (1, 3));
        assert!(dims2_int(&ids.to_dtype(DType::F32).unwrap(), "input_ids").is_err());
        assert!(dims2_int(&Tensor::zeros((1, 0), DType::U32, &Device::Cpu).unwrap(), "input_ids").is_err());
        assert_eq!(ids_in_range(&ids, "input_ids", 6).unwrap().dtype(), DType::U32);
        let err = ids_in_range(&ids, "input_ids", 5).unwrap_err();
        assert!(matches!(err, Error::TokenIdOutOfRange { id: 5, vocab_size: 5, .. }), "{err}");
        let negative = Tensor::new(&[[-1i64]], &Device::Cpu).unwrap();
        assert!(matches!(ids_in_range(&negative, "input_ids", 5), Err(Error::TokenIdOutOfRange { id: -1, .. })));
        let err = positions_in_range(&ids, 5, "n_positions").unwrap_err().to_string();
        assert!(err.contains("position 5") && err.contains("`n_positions`"), "{err}");
        assert!(require_shape(&ids, "attention_mask", &[1, 4], "`input_ids`").is_err());
        let positions = Tensor::new(&[[0u32, 1, 2]], &Device::Cpu).unwrap();
        assert!(checked_position_ids(&positions, (2, 3), 3, "n_positions").is_ok());
        let err = checked_position_ids(&positions, (2, 4), 8, "n_positions").unwrap_err().to_string();
        assert!(err.contains("`position_ids` has shape [1, 3] but `input_ids` has shape [2, 4]"), "{err}");
        let err = checked_position_ids(&positions.to_dtype(DType::F32).unwrap(), (1, 3), 8, "n").unwrap_err();
        assert!(err.to_string().contains("must hold integers"), "{err}");
        assert!(checked_position_ids(&positions, (1, 3), 2, "n_positions").is_err());
    }
}

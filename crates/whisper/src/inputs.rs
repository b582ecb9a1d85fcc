//! Checking the decoder's inputs: token ids and the decoder padding mask.

use autocandle_core::inputs::{dims2_int, ids_in_range, require_shape};
use autocandle_core::Result;
use candle_core::Tensor;

/// Check `decoder_input_ids` (`[batch, new]` integers, each below `vocab_size`): the ids as
/// `u32`, the batch and the number of new tokens.
pub(crate) fn check_decoder_ids(ids: &Tensor, vocab_size: usize) -> Result<(Tensor, usize, usize)> {
    let (batch, new) = dims2_int(ids, "decoder_input_ids")?;
    let ids = ids_in_range(ids, "decoder_input_ids", vocab_size)?;
    Ok((ids, batch, new))
}

/// Which decoder keys may be attended to, `[batch * seq]`, from a `decoder_attention_mask`
/// that must be `[batch, seq]` (`None` without one).
pub(crate) fn decoder_keep(mask: Option<&Tensor>, batch: usize, seq: usize) -> Result<Option<Vec<bool>>> {
    let Some(mask) = mask else { return Ok(None) };
    require_shape(mask, "decoder_attention_mask", &[batch, seq], "`decoder_input_ids`")?;
    let keep = mask.ne(0u32)?.flatten_all()?.to_vec1::<u8>()?;
    Ok(Some(keep.into_iter().map(|k| k != 0).collect()))
}

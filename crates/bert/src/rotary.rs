//! RoFormer's rotary position embeddings (`RoFormerSinusoidalPositionalEmbedding` and
//! `RoFormerSelfAttention.apply_rotary_position_embeddings`), which a [`BertLayer`](crate::BertLayer)
//! applies in its self-attention when built [`with_rotary`](crate::BertLayer::with_rotary).

use candle_core::{DType, Device, Tensor, D};

use autocandle_core::{Error, Result};

/// RoFormer's rotary position embeddings. The table (`encoder.embed_positions.weight` in a
/// RoFormer checkpoint, `[max_positions, head_dim]`) holds, for position `p`, the sines of the
/// angles `p / 10000^(2j / head_dim)` in its first half and their cosines in its second half;
/// dimensions `2j` and `2j + 1` of a head rotate together by angle `j`
/// (`x * cos + rotate_half(x) * sin`, `rotate_half` mapping `(x0, x1, x2, x3, ...)` to
/// `(-x1, x0, -x3, x2, ...)`). Positions are `0..seq`.
#[derive(Debug, Clone)]
pub struct SinusoidalRotary {
    /// `[max_positions, head_dim]`, each value repeated for both members of its pair.
    sin: Tensor,
    cos: Tensor,
    rotate_values: bool,
}

impl SinusoidalRotary {
    /// The table `RoFormerSinusoidalPositionalEmbedding.create_weight` computes, for
    /// `max_positions` positions and heads of `head_dim` (even), in `dtype`; `rotate_values`
    /// rotates the values too (`rotary_value`).
    pub fn new(
        max_positions: usize,
        head_dim: usize,
        rotate_values: bool,
        dtype: DType,
        device: &Device,
    ) -> Result<Self> {
        if head_dim == 0 || !head_dim.is_multiple_of(2) {
            return Err(Error::input(format!(
                "rotary position embeddings need an even head size, got {head_dim}: the config's \
                 `hidden_size / num_attention_heads` must be even"
            )));
        }
        let len = max_positions.checked_mul(head_dim).ok_or_else(|| {
            Error::input(format!("a rotary table of {max_positions} positions x {head_dim} is too large"))
        })?;
        let half = head_dim / 2;
        let mut table = vec![0f32; len];
        for (p, row) in table.chunks_exact_mut(head_dim).enumerate() {
            for j in 0..half {
                // numpy computes the table in f64, then `torch.FloatTensor` rounds it to f32.
                let angle = p as f64 / 10000f64.powf((2 * j) as f64 / head_dim as f64);
                row[j] = angle.sin() as f32;
                row[half + j] = angle.cos() as f32;
            }
        }
        let table = Tensor::from_vec(table, (max_positions, head_dim), device)?.to_dtype(dtype)?;
        Self::from_table(&table, rotate_values)
    }

    /// From a table `[max_positions, head_dim]` (sines, then cosines), as a checkpoint holds
    /// it; `rotate_values` rotates the values too.
    pub fn from_table(table: &Tensor, rotate_values: bool) -> Result<Self> {
        let (positions, head_dim) = table.dims2()?;
        if head_dim == 0 || !head_dim.is_multiple_of(2) {
            return Err(Error::input(format!("a rotary table needs an even head size, got {head_dim}")));
        }
        let half = head_dim / 2;
        let interleave = |t: Tensor| -> Result<Tensor> {
            Ok(Tensor::stack(&[&t, &t], 2)?.reshape((positions, head_dim))?.contiguous()?)
        };
        Ok(Self {
            sin: interleave(table.narrow(1, 0, half)?)?,
            cos: interleave(table.narrow(1, half, half)?)?,
            rotate_values,
        })
    }

    /// The most positions the table covers.
    pub fn max_positions(&self) -> usize {
        self.sin.dims()[0]
    }

    pub(crate) fn check_head_dim(&self, head_dim: usize) -> Result<()> {
        let own = self.sin.dims()[1];
        if own != head_dim {
            return Err(Error::input(format!(
                "a rotary table for heads of {own} does not fit a layer whose heads have {head_dim}"
            )));
        }
        Ok(())
    }

    /// `q`, `k`, `v` `[B, heads, T, head_dim]`, rotated (`v` only with `rotate_values`).
    pub(crate) fn apply(&self, q: Tensor, k: Tensor, v: Tensor) -> Result<(Tensor, Tensor, Tensor)> {
        let seq = q.dim(2)?;
        if seq > self.max_positions() {
            return Err(Error::SequenceTooLong { len: seq, max: self.max_positions() });
        }
        let sin = self.sin.narrow(0, 0, seq)?.to_dtype(q.dtype())?;
        let cos = self.cos.narrow(0, 0, seq)?.to_dtype(q.dtype())?;
        let rotate = |x: &Tensor| -> Result<Tensor> {
            let dims = x.dims().to_vec();
            let pairs = x.reshape((dims[0], dims[1], dims[2], dims[3] / 2, 2))?;
            let (even, odd) = (pairs.narrow(D::Minus1, 0, 1)?, pairs.narrow(D::Minus1, 1, 1)?);
            let half = Tensor::cat(&[&odd.neg()?, &even], D::Minus1)?.reshape(dims)?;
            Ok((x.broadcast_mul(&cos)? + half.broadcast_mul(&sin)?)?)
        };
        let v = if self.rotate_values { rotate(&v)? } else { v };
        Ok((rotate(&q)?, rotate(&k)?, v))
    }
}

//! `WavLMAttention`: self-attention with the gated relative position bias.
//!
//! The first layer owns `rel_attn_embed` (`[num_buckets, num_heads]`) and computes the bias
//! `[heads, T, T]` from bucketed key-minus-query offsets; every layer gates that same
//! (ungated) bias per head and query with `gru_rel_pos_linear` over the head's slice of the
//! layer's input and `gru_rel_pos_const`, and adds it to the attention scores, as
//! `torch.nn.functional.multi_head_attention_forward` does with a float `attn_mask`.

use autocandle_core::nn::{linear, Linear};
use autocandle_core::{Error, Result};
use candle_core::{DType, Device, Module, Tensor, D};
use candle_nn::{embedding, Embedding, VarBuilder};

use crate::config::{WavLMConfig, MODEL_TYPE};

/// The bucket of the offset `relative` (key position minus query position), as
/// `WavLMAttention._relative_positions_bucket`: `num_buckets / 2` buckets per direction
/// (positive offsets take the upper half); in each, offsets below `num_buckets / 4` have one
/// bucket each and the others share logarithmically wider buckets up to `max_distance`, past
/// which they all fall in the last one.
///
/// The logarithm is taken in `f32`, as `transformers` does, so the bucket borders agree.
/// Needs `num_buckets >= 4` and `max_distance > num_buckets / 4` (`WavLMConfig::validate`);
/// otherwise the result is clamped to a valid bucket.
pub fn relative_position_bucket(relative: i64, num_buckets: usize, max_distance: usize) -> usize {
    let half = num_buckets / 2;
    let base = if relative > 0 { half } else { 0 };
    let distance = relative.unsigned_abs() as usize;
    let max_exact = half / 2;
    if distance < max_exact {
        return base + distance;
    }
    let scaled = (distance as f32 / max_exact as f32).ln();
    let scaled = scaled / (max_distance as f32 / max_exact as f32).ln();
    let scaled = scaled * (half - max_exact) as f32;
    let large = (max_exact as f32 + scaled).max(0.0) as usize;
    base + large.min(half.saturating_sub(1))
}

/// The bucket of every (query, key) pair of a `len`-frame sequence, `[len, len]` as `u32`:
/// one bucket per offset `-(len - 1)..=len - 1`, then the grid.
fn bucket_grid(len: usize, num_buckets: usize, max_distance: usize, device: &Device) -> Result<Tensor> {
    let span = len as i64 - 1;
    let per_offset: Vec<u32> =
        (-span..=span).map(|offset| relative_position_bucket(offset, num_buckets, max_distance) as u32).collect();
    let mut buckets = Vec::with_capacity(len * len);
    for query in 0..len {
        // key - query runs from -query: index (key - query) + span.
        let start = len - 1 - query;
        buckets.extend_from_slice(&per_offset[start..start + len]);
    }
    Ok(Tensor::from_vec(buckets, (len, len), device)?)
}

/// One layer's attention: `q_proj`, `k_proj`, `v_proj`, `out_proj`, the gate
/// (`gru_rel_pos_linear`, `gru_rel_pos_const`) and, in the first layer, `rel_attn_embed`.
#[derive(Debug)]
pub struct WavLMAttention {
    q_proj: Linear,
    k_proj: Linear,
    v_proj: Linear,
    out_proj: Linear,
    gru_rel_pos_linear: Linear,
    /// `[1, heads, 1, 1]`.
    gru_rel_pos_const: Tensor,
    rel_attn_embed: Option<Embedding>,
    num_heads: usize,
    head_dim: usize,
    num_buckets: usize,
    max_distance: usize,
}

impl WavLMAttention {
    /// Load from `vb` (`encoder.layers.N.attention`); `has_relative_position_bias` for the first layer.
    pub fn load(vb: VarBuilder<'_>, config: &WavLMConfig, has_relative_position_bias: bool) -> Result<Self> {
        let (d, heads) = (config.wav2vec2.hidden_size, config.wav2vec2.num_attention_heads);
        let head_dim = config.wav2vec2.head_dim();
        let rel_attn_embed = if has_relative_position_bias {
            Some(embedding(config.num_buckets, heads, vb.pp("rel_attn_embed"))?)
        } else {
            None
        };
        Ok(Self {
            q_proj: linear(d, d, vb.pp("q_proj"))?,
            k_proj: linear(d, d, vb.pp("k_proj"))?,
            v_proj: linear(d, d, vb.pp("v_proj"))?,
            out_proj: linear(d, d, vb.pp("out_proj"))?,
            gru_rel_pos_linear: linear(head_dim, 8, vb.pp("gru_rel_pos_linear"))?,
            gru_rel_pos_const: vb.get((1, heads, 1, 1), "gru_rel_pos_const")?,
            rel_attn_embed,
            num_heads: heads,
            head_dim,
            num_buckets: config.num_buckets,
            max_distance: config.max_bucket_distance,
        })
    }

    /// The ungated relative position bias `[1, heads, len, len]` (`compute_bias`); only the
    /// first layer has the embedding it reads.
    pub fn position_bias(&self, len: usize, dtype: DType) -> Result<Tensor> {
        let embed = self.rel_attn_embed.as_ref().ok_or_else(|| {
            Error::config(MODEL_TYPE, "only the first WavLM layer has `rel_attn_embed` to compute the position bias")
        })?;
        let device = embed.embeddings().device();
        let buckets = bucket_grid(len, self.num_buckets, self.max_distance, device)?;
        // [len, len, heads] -> [1, heads, len, len]
        let values = embed.forward(&buckets)?.permute((2, 0, 1))?.unsqueeze(0)?;
        Ok(values.to_dtype(dtype)?.contiguous()?)
    }

    /// Attend over `hidden` `[batch, T, hidden]` with the ungated `position_bias`
    /// `[1, heads, T, T]` and the additive key mask `key_mask` `[batch, 1, 1, T]` (0 for
    /// frames to attend to, a very negative value for padding, as
    /// `autocandle_wav2vec2::attention_bias` makes it).
    pub fn forward(&self, hidden: &Tensor, position_bias: &Tensor, key_mask: Option<&Tensor>) -> Result<Tensor> {
        let (batch, len, d) = hidden.dims3()?;
        let (heads, hd) = (self.num_heads, self.head_dim);
        // The gate, from the head slices of the layer's input: [B, H, T, hd] -> [B, H, T, 8]
        // -> [B, H, T, 2, 4].sum -> sigmoid -> (a, b).
        let per_head = hidden.reshape((batch, len, heads, hd))?.transpose(1, 2)?.contiguous()?;
        let proj = self.gru_rel_pos_linear.forward(&per_head)?;
        let proj = proj.reshape((batch, heads, len, 2, 4))?.sum(D::Minus1)?;
        let gates = candle_nn::ops::sigmoid(&proj)?;
        let gate_a = gates.narrow(D::Minus1, 0, 1)?;
        let gate_b = gates.narrow(D::Minus1, 1, 1)?;
        let gate = ((gate_a * (gate_b.broadcast_mul(&self.gru_rel_pos_const)? - 1.0)?)? + 2.0)?;
        let mut bias = gate.broadcast_mul(position_bias)?;
        if let Some(mask) = key_mask {
            bias = bias.broadcast_add(mask)?;
        }

        let split =
            |x: Tensor| -> Result<Tensor> { Ok(x.reshape((batch, len, heads, hd))?.transpose(1, 2)?.contiguous()?) };
        let scale = (hd as f64).powf(-0.5);
        let q = split((self.q_proj.forward(hidden)? * scale)?)?;
        let k = split(self.k_proj.forward(hidden)?)?;
        let v = split(self.v_proj.forward(hidden)?)?;
        let scores = (q.matmul(&k.t()?)? + bias)?;
        let probs = candle_nn::ops::softmax_last_dim(&scores)?;
        let context = probs.matmul(&v)?.transpose(1, 2)?.reshape((batch, len, d))?;
        Ok(self.out_proj.forward(&context)?)
    }
}

#[cfg(test)]
mod tests {
    use super::relative_position_bucket;

    #[test]
    fn small_offsets_have_their_own_bucket() {
        // 320 buckets: 160 per direction, offsets below 80 exact.
        assert_eq!(relative_position_bucket(0, 320, 800), 0);
        assert_eq!(relative_position_bucket(-79, 320, 800), 79);
        assert_eq!(relative_position_bucket(79, 320, 800), 160 + 79);
        assert_eq!(relative_position_bucket(1, 320, 800), 161);
    }

    #[test]
    fn far_offsets_share_the_last_bucket() {
        assert_eq!(relative_position_bucket(-100_000, 320, 800), 159);
        assert_eq!(relative_position_bucket(100_000, 320, 800), 319);
        assert_eq!(relative_position_bucket(i64::MIN, 320, 800), 159);
    }
}

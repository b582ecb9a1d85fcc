//! Attention masks as `transformers`' `masking_utils` builds them for eager attention: a
//! boolean pattern (causal, optionally a sliding window, padding, packed sequences) turned
//! into an additive mask of 0 and the dtype's minimum.
//!
//! Query `q` and key `kv` are indices into the cached + new sequence (not position ids):
//! queries are `past..past + q_len`, keys `0..past + q_len`.

use candle_core::{DType, Device, Tensor};

use autocandle_core::Result;

/// `torch.finfo(dtype).min`, exactly representable in f32 for the float dtypes.
pub fn dtype_min(dtype: DType) -> f64 {
    match dtype {
        DType::F16 => -65504.0,
        // -(2 - 2^-7) * 2^127: converting f32::MIN to bf16 would round to -inf.
        DType::BF16 => f64::from(-f32::from_bits(0x7f7f_0000)),
        DType::F64 => f64::MIN,
        _ => f64::from(f32::MIN),
    }
}

/// Packed sequences found in `position_ids` (`find_packed_sequence_indices`): several
/// sequences in one row, each restarting its positions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackedSequences {
    /// `[batch * seq]`: the index of the sequence each token belongs to.
    pub sequence: Vec<i64>,
    /// `[batch * seq]`: the position ids, which replace the indices in the mask pattern.
    pub positions: Vec<i64>,
}

impl PackedSequences {
    /// Detect packing in `positions` (`[batch * seq]`, row-major): a new sequence starts
    /// wherever a position is not its predecessor plus one. `None` when every row holds one
    /// sequence.
    pub fn detect(positions: &[i64], batch: usize, seq: usize) -> Option<Self> {
        let mut sequence = Vec::with_capacity(batch * seq);
        let mut packed = false;
        for row in positions.chunks(seq.max(1)).take(batch) {
            let mut index = 0i64;
            for (i, &p) in row.iter().enumerate() {
                if i > 0 && p - row[i - 1] != 1 {
                    index += 1;
                }
                sequence.push(index);
            }
            packed |= index != 0;
        }
        packed.then(|| Self { sequence, positions: positions.to_vec() })
    }
}

/// What the masks of one forward pass share: sizes, padding and packing.
#[derive(Debug, Clone)]
pub struct MaskBuilder {
    batch: usize,
    q_len: usize,
    past: usize,
    /// `[batch * (past + q_len)]`: whether each key position may be attended to.
    padding: Option<Vec<bool>>,
    packed: Option<PackedSequences>,
    /// `[batch * (past + q_len)]`: `block_sequence_ids` (bidirectional blocks, `-1` outside).
    blocks: Option<Vec<i64>>,
    /// Whether the blocks reach past a sliding window (see [`MaskBuilder::with_blocks_past_window`]).
    blocks_past_window: bool,
}

impl MaskBuilder {
    /// Masks for `q_len` new queries after `past` cached positions. `padding`, when given,
    /// has `batch * (past + q_len)` entries; `packed` only applies without a cache.
    pub fn new(
        batch: usize,
        q_len: usize,
        past: usize,
        padding: Option<Vec<bool>>,
        packed: Option<PackedSequences>,
    ) -> Self {
        Self { batch, q_len, past, padding, packed, blocks: None, blocks_past_window: false }
    }

    /// The same masks with bidirectional attention inside each block of `blocks`
    /// (`[batch * (past + q_len)]`, `masking_utils`' `block_sequence_ids`: tokens with the same
    /// id `>= 0` see each other; `-1` is causal).
    pub fn with_block_sequence_ids(mut self, blocks: Vec<i64>) -> Self {
        self.blocks = Some(blocks);
        self
    }

    /// Let the blocks reach past a sliding window: `OR(AND(sliding_window, causal), blockwise)`,
    /// as PaliGemma's masks compose them (`create_sliding_window_causal_mask` with
    /// `block_sequence_ids`), instead of Gemma 3's `AND(sliding_window, OR(causal, blockwise))`.
    pub fn with_blocks_past_window(mut self, past_window: bool) -> Self {
        self.blocks_past_window = past_window;
        self
    }

    /// The number of key positions.
    pub fn kv_len(&self) -> usize {
        self.past + self.q_len
    }

    /// Whether query `q` of row `b` may attend to key `kv` (indices into the whole
    /// sequence) under a causal mask with an optional `sliding_window`.
    pub fn allowed(&self, b: usize, q: usize, kv: usize, sliding_window: Option<usize>) -> bool {
        let in_block = self.blocks.as_ref().is_some_and(|blocks| {
            let row = b * self.kv_len();
            let group = blocks[row + q];
            group >= 0 && group == blocks[row + kv]
        });
        // `AND(sliding_window, OR(causal, blockwise))`, as Gemma 3's masks compose them, or
        // `OR(AND(sliding_window, causal), blockwise)` (PaliGemma's).
        let past_window = self.blocks_past_window;
        let pattern = |q: i64, kv: i64| {
            let window = sliding_window.is_none_or(|w| kv > q - w as i64);
            if past_window {
                (kv <= q && window) || in_block
            } else {
                (kv <= q || in_block) && window
            }
        };
        let base = match &self.packed {
            // Packing is only detected without a cache, so `q` and `kv` index the row.
            Some(p) => {
                let row = b * self.q_len;
                p.sequence[row + q] == p.sequence[row + kv] && pattern(p.positions[row + q], p.positions[row + kv])
            }
            None => pattern(q as i64, kv as i64),
        };
        base && self.padding.as_ref().is_none_or(|pad| pad[b * self.kv_len() + kv])
    }

    /// The additive mask `[batch, 1, q_len, kv_len]` in `dtype` (0 where allowed, the
    /// dtype's minimum elsewhere), or `None` when everything is allowed.
    pub fn build(&self, sliding_window: Option<usize>, dtype: DType, device: &Device) -> Result<Option<Tensor>> {
        let kv_len = self.kv_len();
        let masked = dtype_min(dtype);
        let mut values = Vec::with_capacity(self.batch * self.q_len * kv_len);
        let mut any_masked = false;
        for b in 0..self.batch {
            for i in 0..self.q_len {
                let q = self.past + i;
                for kv in 0..kv_len {
                    let ok = self.allowed(b, q, kv, sliding_window);
                    any_masked |= !ok;
                    values.push(if ok { 0.0 } else { masked });
                }
            }
        }
        if !any_masked {
            return Ok(None);
        }
        let shape = (self.batch, 1, self.q_len, kv_len);
        let mask = match dtype {
            DType::F64 => Tensor::from_vec(values, shape, device)?,
            _ => {
                let values: Vec<f32> = values.into_iter().map(|v| v as f32).collect();
                Tensor::from_vec(values, shape, device)?.to_dtype(dtype)?
            }
        };
        Ok(Some(mask))
    }
}

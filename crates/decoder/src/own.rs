//! Pieces for decoders with networks of their own (GPT-NeoX, GPT-BigCode, Falcon, ...):
//! the checked inputs of one forward pass with their positions and masks ([`prepare_inputs`]),
//! attention over grouped key/value heads ([`grouped_attention`]) and the language-modelling
//! head tied as `transformers` ties it ([`load_tied_lm_head`]).

use autocandle_core::inputs::{dims2_int, ids_in_range, positions_in_range, require_position_ids_shape};
use autocandle_core::nn::{linear_no_bias, Embedding, Linear};
use autocandle_core::{Error, KvCache, ModelInputs, Result};
use candle_core::{Device, Tensor};
use candle_nn::VarBuilder;

use crate::heads::same_layer_values;
use crate::mask::MaskBuilder;

/// The checked inputs of one forward pass: ids, positions and the mask pattern.
#[derive(Debug, Clone)]
pub struct PreparedInputs {
    /// `input_ids` `[batch, seq]` as `u32`, every id below the vocabulary size.
    pub input_ids: Tensor,
    /// Rows of the batch.
    pub batch: usize,
    /// New tokens of each row.
    pub seq: usize,
    /// Positions already in the cache (0 without one).
    pub past: usize,
    /// Position ids of the new tokens, `u32` `[batch or 1, seq]`: the given ones, else
    /// `past..past + seq`.
    pub positions: Tensor,
    /// The largest position id.
    pub max_position: usize,
    /// `[batch * (past + seq)]`: whether each key may be attended to (`attention_mask != 0`);
    /// `None` without an `attention_mask`.
    pub keep: Option<Vec<bool>>,
    /// The causal + padding mask pattern of the call.
    pub masks: MaskBuilder,
}

/// Check `inputs` for a decoder with `vocab_size` tokens and `max_positions` positions (the
/// config field that sets it is `field`), after the positions in `cache`: `input_ids`
/// integers `[batch, seq]` in range, `position_ids` `[batch or 1, seq]` in range, an
/// `attention_mask` over the cached and the new tokens, a cache filled for `batch` rows, and
/// `past + seq <= max_positions`.
pub fn prepare_inputs(
    inputs: &ModelInputs,
    cache: Option<&KvCache>,
    vocab_size: usize,
    (max_positions, field): (usize, &str),
    device: &Device,
) -> Result<PreparedInputs> {
    let input_ids = inputs.input_ids()?;
    let (batch, seq) = dims2_int(input_ids, "input_ids")?;
    let past = cache.map_or(0, KvCache::seq_len);
    if let Some((k, _)) = cache.and_then(|c| c.get(0)) {
        let cached = k.dim(0)?;
        if cached != batch {
            return Err(Error::input(format!(
                "the key/value cache holds {cached} rows but `input_ids` has {batch}; continue a cache with the \
                 batch it was filled with (or `KvCache::select_rows`)"
            )));
        }
    }
    let total = past + seq;
    let (positions, max_position) = match &inputs.position_ids {
        Some(p) => {
            require_position_ids_shape(p, batch, seq)?;
            let p = positions_in_range(p, max_positions, field)?;
            let hi = p.flatten_all()?.max(0)?.to_scalar::<u32>()? as usize;
            (p, hi)
        }
        None if total > max_positions => return Err(Error::SequenceTooLong { len: total, max: max_positions }),
        None => {
            let range: Vec<u32> = (past..total).map(|p| p as u32).collect();
            (Tensor::from_vec(range, (1, seq), device)?, total.saturating_sub(1))
        }
    };
    let input_ids = ids_in_range(input_ids, "input_ids", vocab_size)?;
    let keep = match &inputs.attention_mask {
        Some(mask) => {
            if mask.dims() != [batch, total] {
                let like = if past > 0 {
                    format!("[batch, cached + new] = {:?} ({past} cached and {seq} new tokens)", [batch, total])
                } else {
                    format!("{:?}, the shape of `input_ids`", [batch, seq])
                };
                return Err(Error::input(format!(
                    "`attention_mask` has shape {:?} but must have shape {like}",
                    mask.dims()
                )));
            }
            let keep = mask.ne(0u32)?.flatten_all()?.to_vec1::<u8>()?;
            Some(keep.into_iter().map(|k| k != 0).collect::<Vec<bool>>())
        }
        None => None,
    };
    let masks = MaskBuilder::new(batch, seq, past, keep.clone(), None);
    Ok(PreparedInputs { input_ids, batch, seq, past, positions, max_position, keep, masks })
}

/// Scaled dot-product attention of `q` `[batch, heads, seq, head_dim]` over `k` and `v`
/// `[batch, kv_heads, keys, head_dim]` (`heads` a multiple of `kv_heads`: the query heads of
/// one group are consecutive, `repeat_kv`'s order), with an additive `mask` that broadcasts
/// to `[batch, heads, seq, keys]`; softmax in f32 as `transformers`' eager attention does.
/// Returns the context `[batch, seq, heads * head_dim]`.
pub fn grouped_attention(q: &Tensor, k: &Tensor, v: &Tensor, scale: f64, mask: Option<&Tensor>) -> Result<Tensor> {
    let (b, h, t, d) = q.dims4()?;
    let kvh = k.dim(1)?;
    let s = k.dim(2)?;
    if kvh == 0 || !h.is_multiple_of(kvh) {
        return Err(Error::input(format!("{h} query heads cannot share {kvh} key/value heads")));
    }
    let n_rep = h / kvh;
    let dtype = q.dtype();
    // The `n_rep` query heads of one key/value head share its keys without copying them.
    let q = q.contiguous()?.reshape((b, kvh, n_rep * t, d))?;
    let scores = autocandle_core::kernels::matmul(&q, &k.t()?)?.reshape((b, h, t, s))?;
    let probs = autocandle_core::kernels::masked_softmax(&scores, scale, mask)?.to_dtype(dtype)?;
    let out = autocandle_core::kernels::matmul(&probs.reshape((b, kvh, n_rep * t, s))?, v)?;
    Ok(out.reshape((b, h, t, d))?.transpose(1, 2)?.reshape((b, t, h * d))?)
}

/// Where a language-modelling head and the embedding it may be tied to live.
#[derive(Debug, Clone, Copy)]
pub struct LmHeadNames<'a> {
    /// The head's module names in the checkpoint, the current one first (`lm_head`), then
    /// legacy ones (`embed_out`); a fresh model takes the first.
    pub head: &'a [&'a str],
    /// The base model's prefix (`transformer`).
    pub base: &'a str,
    /// The token embedding's weight under the base (`wte.weight`).
    pub embedding: &'a str,
}

/// Load a base model and its language-modelling head (no bias, `[vocab, hidden]`) with
/// `transformers`' weight tying at load: with `tie` the head is the token embedding (a saved
/// model usually has no head weight), unless the checkpoint holds a head with other values
/// (then they stay apart); a checkpoint with a head and no embedding ties the other way
/// round. `load_base` builds the base from its `VarBuilder` and, when given, the embedding to
/// use; `embedding_of` returns the base's token embedding.
pub fn load_tied_lm_head<M>(
    vb: VarBuilder<'_>,
    names: LmHeadNames<'_>,
    tie: bool,
    (vocab, hidden): (usize, usize),
    load_base: impl FnOnce(VarBuilder<'_>, Option<Embedding>) -> Result<M>,
    embedding_of: impl Fn(&M) -> &Embedding,
) -> Result<(M, Linear)> {
    let head_name = names
        .head
        .iter()
        .find(|name| vb.contains_tensor(&format!("{name}.weight")))
        .or(names.head.first())
        .copied()
        .unwrap_or("lm_head");
    let has_head = vb.contains_tensor(&format!("{head_name}.weight"));
    let base_vb = vb.pp(names.base);
    if !tie {
        let model = load_base(base_vb, None)?;
        return Ok((model, linear_no_bias(hidden, vocab, vb.pp(head_name))?));
    }
    if has_head && !base_vb.contains_tensor(names.embedding) {
        let head = linear_no_bias(hidden, vocab, vb.pp(head_name))?;
        let embedding = Embedding::tied_to(&head)?;
        return Ok((load_base(base_vb, Some(embedding))?, head));
    }
    let model = load_base(base_vb, None)?;
    let tied = Linear::tied_to(embedding_of(&model))?;
    let head = if has_head {
        let own = linear_no_bias(hidden, vocab, vb.pp(head_name))?;
        if same_layer_values(&own, &tied)? {
            tied
        } else {
            own
        }
    } else {
        tied
    };
    Ok((model, head))
}

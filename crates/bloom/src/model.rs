//! The BLOOM decoder (`BloomModel`): token embeddings and their layer norm, blocks of causal
//! self-attention with ALiBi biases (fused `query_key_value` laid out per head) and a GELU
//! MLP, the final LayerNorm, with an optional key/value cache.

use candle_core::{DType, Device, Module, Tensor};
use candle_nn::{LayerNorm, VarBuilder};

use autocandle_core::inputs::{dims2_int, ids_in_range};
use autocandle_core::nn::{embedding, linear, Embedding, Linear};
use autocandle_core::{AutoRegister, BaseModelOutput, KvCache, ModelInputs, Result};
pub use autocandle_decoder::alibi_slopes;
use autocandle_decoder::{attention_keep, cached_kv, cached_len, grouped_attention, MaskBuilder};

use crate::config::BloomConfig;

/// `bloom_gelu_forward`: `x * 0.5 * (1 + tanh(0.79788456 * x * (1 + 0.044715 * x * x)))`, with
/// BLOOM's own rounded constant, in the dtype of `x`.
pub fn bloom_gelu(x: &Tensor) -> Result<Tensor> {
    let inner = ((x * 0.79788456)? * (x.sqr()?.affine(0.044715, 1.0)?))?;
    Ok(((x * 0.5)? * (inner.tanh()? + 1.0)?)?)
}

/// `BloomAttention`: causal multi-head self-attention with the fused projection
/// `query_key_value` (`[heads, 3, head_dim]` per token) and the output projection `dense`.
#[derive(Debug, Clone)]
struct BloomAttention {
    query_key_value: Linear,
    dense: Linear,
    num_heads: usize,
    head_dim: usize,
    layer_idx: usize,
}

impl BloomAttention {
    fn load(vb: VarBuilder<'_>, cfg: &BloomConfig, layer_idx: usize) -> Result<Self> {
        let h = cfg.hidden_size;
        Ok(Self {
            query_key_value: linear(h, 3 * h, vb.pp("query_key_value"))?,
            dense: linear(h, h, vb.pp("dense"))?,
            num_heads: cfg.n_head,
            head_dim: cfg.head_dim(),
            layer_idx,
        })
    }

    /// `bias` is ALiBi plus the causal and padding masks, additive, broadcastable to
    /// `[batch, heads, seq, past + seq]`.
    fn forward(&self, x: &Tensor, bias: &Tensor, cache: Option<&mut KvCache>) -> Result<Tensor> {
        let (batch, seq, _) = x.dims3()?;
        let fused = self.query_key_value.forward(x)?.reshape((batch, seq, self.num_heads, 3, self.head_dim))?;
        let part =
            |i: usize| -> Result<Tensor> { Ok(fused.narrow(3, i, 1)?.squeeze(3)?.transpose(1, 2)?.contiguous()?) };
        let (q, k, v) = (part(0)?, part(1)?, part(2)?);
        let (k, v) = cached_kv(cache, self.layer_idx, k, v)?;
        let context = grouped_attention(&q, &k, &v, (self.head_dim as f64).powf(-0.5), Some(bias))?;
        Ok(self.dense.forward(&context)?)
    }
}

/// `BloomBlock`: `input_layernorm`, attention, `post_attention_layernorm`, MLP, each
/// sub-layer adding its residual: the sub-layer's input, or its layer-normed input with
/// `apply_residual_connection_post_layernorm`.
#[derive(Debug, Clone)]
struct BloomBlock {
    input_layernorm: LayerNorm,
    self_attention: BloomAttention,
    post_attention_layernorm: LayerNorm,
    dense_h_to_4h: Linear,
    dense_4h_to_h: Linear,
    residual_post_norm: bool,
}

impl BloomBlock {
    fn load(vb: VarBuilder<'_>, cfg: &BloomConfig, layer_idx: usize) -> Result<Self> {
        let (h, eps) = (cfg.hidden_size, cfg.layer_norm_epsilon);
        Ok(Self {
            input_layernorm: candle_nn::layer_norm(h, eps, vb.pp("input_layernorm"))?,
            self_attention: BloomAttention::load(vb.pp("self_attention"), cfg, layer_idx)?,
            post_attention_layernorm: candle_nn::layer_norm(h, eps, vb.pp("post_attention_layernorm"))?,
            dense_h_to_4h: linear(h, 4 * h, vb.pp("mlp.dense_h_to_4h"))?,
            dense_4h_to_h: linear(4 * h, h, vb.pp("mlp.dense_4h_to_h"))?,
            residual_post_norm: cfg.apply_residual_connection_post_layernorm,
        })
    }

    fn forward(&self, x: &Tensor, bias: &Tensor, cache: Option<&mut KvCache>) -> Result<Tensor> {
        let normed = self.input_layernorm.forward(x)?;
        let residual = if self.residual_post_norm { &normed } else { x };
        let attended = (self.self_attention.forward(&normed, bias, cache)? + residual)?;
        let normed = self.post_attention_layernorm.forward(&attended)?;
        let residual = if self.residual_post_norm { &normed } else { &attended };
        let fed = self.dense_4h_to_h.forward(&bloom_gelu(&self.dense_h_to_4h.forward(&normed)?)?)?;
        Ok((fed + residual)?)
    }
}

/// The BLOOM decoder (`transformers`' `BloomModel`), the base of every head.
///
/// Inputs: `input_ids` and an optional `attention_mask` (padding, combined with the causal
/// mask; ALiBi counts positions over the attended tokens only, `(cumsum(mask) - 1) * mask`).
/// BLOOM has no position embeddings: `position_ids` and `token_type_ids` are ignored, as
/// `transformers`' forward does not take them, and sequences have no length limit.
#[derive(Debug, Clone, AutoRegister)]
#[auto(task = "base", class = "BloomModel")]
pub struct BloomModel {
    word_embeddings: Embedding,
    word_embeddings_layernorm: LayerNorm,
    h: Vec<BloomBlock>,
    ln_f: LayerNorm,
    slopes: Tensor,
    config: BloomConfig,
    device: Device,
    dtype: DType,
}

impl BloomModel {
    /// Build the decoder from weights named as `transformers`' `BloomModel` state dict
    /// (`word_embeddings`, `word_embeddings_layernorm`, `h.N.*`, `ln_f`). `word_embeddings`,
    /// when given, is the token embedding to use instead of reading one (a tied LM head whose
    /// checkpoint holds only `lm_head.weight`).
    pub fn new(vb: VarBuilder<'_>, config: &BloomConfig, word_embeddings: Option<Embedding>) -> Result<Self> {
        config.validate()?;
        let (h, eps) = (config.hidden_size, config.layer_norm_epsilon);
        let word_embeddings =
            word_embeddings.map_or_else(|| embedding(config.vocab_size, h, vb.pp("word_embeddings")), Ok)?;
        let blocks = (0..config.n_layer)
            .map(|i| BloomBlock::load(vb.pp(format!("h.{i}")), config, i))
            .collect::<Result<Vec<_>>>()?;
        let slopes = alibi_slopes(config.n_head);
        Ok(Self {
            word_embeddings,
            word_embeddings_layernorm: candle_nn::layer_norm(h, eps, vb.pp("word_embeddings_layernorm"))?,
            h: blocks,
            ln_f: candle_nn::layer_norm(h, eps, vb.pp("ln_f"))?,
            slopes: Tensor::from_vec(slopes, (1, config.n_head, 1, 1), vb.device())?,
            config: config.clone(),
            device: vb.device().clone(),
            dtype: vb.dtype(),
        })
    }

    /// The config the model was built from.
    pub fn config(&self) -> &BloomConfig {
        &self.config
    }

    /// The token embedding `word_embeddings`, `[vocab_size, hidden_size]`.
    pub fn word_embeddings(&self) -> &Embedding {
        &self.word_embeddings
    }

    /// Run on new tokens only: the past keys and values are read from `cache` and this
    /// step's appended to it. `attention_mask`, when given, covers the cached and the new
    /// positions `[batch, past + new]`.
    pub fn forward_with_cache(&self, inputs: &ModelInputs, cache: &mut KvCache) -> Result<BaseModelOutput> {
        Ok(BaseModelOutput::new(self.run(inputs, Some(cache))?, None))
    }

    /// `build_alibi_tensor` plus the causal and padding masks: `[batch or 1, heads, seq or 1,
    /// past + seq]`, additive, in f32. `keep` is the padding mask `[batch * (past + seq)]`.
    fn attention_bias(&self, keep: Option<Vec<bool>>, (batch, past, seq): (usize, usize, usize)) -> Result<Tensor> {
        let total = past + seq;
        let positions: Vec<f32> = match &keep {
            // `(cumsum(mask) - 1) * mask`: 0 on padding.
            Some(keep) => keep
                .chunks(total)
                .flat_map(|row| {
                    let mut seen = 0u32;
                    row.iter()
                        .map(move |&k| {
                            seen += u32::from(k);
                            if k {
                                (seen - 1) as f32
                            } else {
                                0.0
                            }
                        })
                        .collect::<Vec<_>>()
                })
                .collect(),
            None => (0..total).map(|p| p as f32).collect(),
        };
        let rows = if keep.is_some() { batch } else { 1 };
        let positions = Tensor::from_vec(positions, (rows, 1, 1, total), &self.device)?;
        // In the model dtype, as `transformers` casts the ALiBi tensor.
        let alibi = self.slopes.broadcast_mul(&positions)?.to_dtype(self.dtype)?.to_dtype(DType::F32)?;
        let mask = MaskBuilder::new(batch, seq, past, keep, None).build(None, DType::F32, &self.device)?;
        Ok(match mask {
            Some(mask) => alibi.broadcast_add(&mask)?,
            None => alibi,
        })
    }

    /// The checked forward pass shared by every head: the final hidden states `[B, T, H]`.
    pub(crate) fn run(&self, inputs: &ModelInputs, mut cache: Option<&mut KvCache>) -> Result<Tensor> {
        let cfg = &self.config;
        let input_ids = inputs.input_ids()?;
        let (batch, seq) = dims2_int(input_ids, "input_ids")?;
        let past = cached_len(cache.as_deref(), batch)?;
        let input_ids = ids_in_range(input_ids, "input_ids", cfg.vocab_size)?;
        let keep = attention_keep(inputs.attention_mask.as_ref(), batch, past, seq)?;
        let bias = self.attention_bias(keep, (batch, past, seq))?;

        let embedded = self.word_embeddings.forward(&input_ids)?;
        let mut hidden = self.word_embeddings_layernorm.forward(&embedded)?;
        for block in &self.h {
            hidden = block.forward(&hidden, &bias, cache.as_deref_mut())?;
        }
        Ok(self.ln_f.forward(&hidden)?)
    }
}

autocandle_decoder::own_base_model!(
    BloomModel, config: BloomConfig, prefix: "transformer", hidden_size: |model| model.config().hidden_size
);

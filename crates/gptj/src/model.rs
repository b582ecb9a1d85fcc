//! The GPT-J decoder (`GPTJModel`): token embeddings, blocks whose attention and MLP both read
//! one `ln_1` and add to the same residual, rotary embeddings applied interleaved
//! (`rotate_every_two`) on the first `rotary_dim` dimensions of each head, the final
//! LayerNorm, with an optional key/value cache.

use candle_core::{DType, Device, Module, Tensor, D};
use candle_nn::{LayerNorm, VarBuilder};

use autocandle_core::inputs::{checked_position_ids, dims2_int, ids_in_range, require_int, require_shape};
use autocandle_core::nn::{embedding, linear, linear_no_bias, Embedding, Linear};
use autocandle_core::{Activation, AutoRegister, BaseModelOutput, Error, KvCache, ModelInputs, Result};
use autocandle_decoder::{
    attention_keep, cached_kv, cached_len, CosSin, MaskBuilder, PackedSequences, RopeConfig, RopeContext,
    RotaryEmbedding,
};

use crate::config::GPTJConfig;

/// GPT-J's `create_sinusoidal_positions` base.
const ROPE_THETA: f64 = 10000.0;

/// The rotary embedding of GPT-J: the frequencies of the `default` rope over `rotary_dim`
/// dimensions, applied to interleaved pairs (`x[2i]`, `x[2i + 1]`) rather than to halves.
#[derive(Debug, Clone)]
struct InterleavedRotary {
    rotary: RotaryEmbedding,
    rotary_dim: usize,
    head_dim: usize,
}

impl InterleavedRotary {
    fn new(cfg: &GPTJConfig, device: &Device) -> Result<Self> {
        let rotary_dim = cfg.rotary_dims();
        let spec = RopeConfig::with_theta(ROPE_THETA).resolve(&RopeContext {
            model_type: "gptj",
            head_dim: rotary_dim,
            max_position_embeddings: cfg.n_positions,
            original_max_position_embeddings: None,
            partial_rotary: false,
        })?;
        Ok(Self { rotary: RotaryEmbedding::new(spec, cfg.head_dim(), device)?, rotary_dim, head_dim: cfg.head_dim() })
    }

    /// `apply_rotary_pos_emb` on `x` `[batch, heads, seq, head_dim]`: the first `rotary_dim`
    /// dimensions rotate in pairs, the rest pass.
    fn apply(&self, x: &Tensor, cs: &CosSin) -> Result<Tensor> {
        let batch = x.dim(0)?;
        let (cos, sin) = if cs.cos.dim(0)? == batch {
            (cs.cos.clone(), cs.sin.clone())
        } else {
            (cs.cos.squeeze(0)?, cs.sin.squeeze(0)?)
        };
        if self.rotary_dim == self.head_dim {
            return Ok(candle_nn::rotary_emb::rope_i(&x.contiguous()?, &cos, &sin)?);
        }
        let rot = x.narrow(D::Minus1, 0, self.rotary_dim)?.contiguous()?;
        let pass = x.narrow(D::Minus1, self.rotary_dim, self.head_dim - self.rotary_dim)?;
        let rot = candle_nn::rotary_emb::rope_i(&rot, &cos, &sin)?;
        Ok(Tensor::cat(&[&rot, &pass], D::Minus1)?.contiguous()?)
    }
}

/// `GPTJAttention`: causal multi-head self-attention without biases; scores in f32.
#[derive(Debug, Clone)]
struct GptjAttention {
    q_proj: Linear,
    k_proj: Linear,
    v_proj: Linear,
    out_proj: Linear,
    num_heads: usize,
    head_dim: usize,
    layer_idx: usize,
}

impl GptjAttention {
    fn load(vb: VarBuilder<'_>, cfg: &GPTJConfig, layer_idx: usize) -> Result<Self> {
        let h = cfg.n_embd;
        Ok(Self {
            q_proj: linear_no_bias(h, h, vb.pp("q_proj"))?,
            k_proj: linear_no_bias(h, h, vb.pp("k_proj"))?,
            v_proj: linear_no_bias(h, h, vb.pp("v_proj"))?,
            out_proj: linear_no_bias(h, h, vb.pp("out_proj"))?,
            num_heads: cfg.n_head,
            head_dim: cfg.head_dim(),
            layer_idx,
        })
    }

    fn forward(
        &self,
        x: &Tensor,
        rotary: &InterleavedRotary,
        cos_sin: &CosSin,
        mask: Option<&Tensor>,
        cache: Option<&mut KvCache>,
    ) -> Result<Tensor> {
        let (batch, seq, hidden) = x.dims3()?;
        let heads = |t: Tensor| -> Result<Tensor> {
            Ok(t.reshape((batch, seq, self.num_heads, self.head_dim))?.transpose(1, 2)?.contiguous()?)
        };
        let q = rotary.apply(&heads(self.q_proj.forward(x)?)?, cos_sin)?;
        let k = rotary.apply(&heads(self.k_proj.forward(x)?)?, cos_sin)?;
        let v = heads(self.v_proj.forward(x)?)?;
        let (k, v) = cached_kv(cache, self.layer_idx, k, v)?;
        let dtype = q.dtype();
        // `eager_attention_forward` multiplies queries and keys in f32.
        let scores = autocandle_core::kernels::matmul(&q.to_dtype(DType::F32)?, &k.to_dtype(DType::F32)?.t()?)?;
        let scale = (self.head_dim as f64).powf(-0.5);
        let probs = autocandle_core::kernels::masked_softmax(&scores, scale, mask)?.to_dtype(dtype)?;
        let context = autocandle_core::kernels::matmul(&probs, &v)?.transpose(1, 2)?.reshape((batch, seq, hidden))?;
        Ok(self.out_proj.forward(&context)?)
    }
}

/// `GPTJBlock`: `x + attn(ln_1(x)) + mlp(ln_1(x))`.
#[derive(Debug, Clone)]
struct GptjBlock {
    ln_1: LayerNorm,
    attn: GptjAttention,
    fc_in: Linear,
    fc_out: Linear,
    activation: Activation,
}

impl GptjBlock {
    fn load(vb: VarBuilder<'_>, cfg: &GPTJConfig, layer_idx: usize) -> Result<Self> {
        let (h, inner) = (cfg.n_embd, cfg.inner_dim());
        // Old checkpoints also hold the buffers `attn.bias` and `attn.masked_bias`, which
        // `transformers` ignores; so does this.
        Ok(Self {
            ln_1: candle_nn::layer_norm(h, cfg.layer_norm_epsilon, vb.pp("ln_1"))?,
            attn: GptjAttention::load(vb.pp("attn"), cfg, layer_idx)?,
            fc_in: linear(h, inner, vb.pp("mlp.fc_in"))?,
            fc_out: linear(inner, h, vb.pp("mlp.fc_out"))?,
            activation: cfg.activation_function,
        })
    }

    fn forward(
        &self,
        x: &Tensor,
        rotary: &InterleavedRotary,
        cos_sin: &CosSin,
        mask: Option<&Tensor>,
        cache: Option<&mut KvCache>,
    ) -> Result<Tensor> {
        let normed = self.ln_1.forward(x)?;
        let attended = self.attn.forward(&normed, rotary, cos_sin, mask, cache)?;
        let fed = self.fc_out.forward(&self.activation.forward(&self.fc_in.forward(&normed)?)?)?;
        Ok(((attended + fed)? + x)?)
    }
}

/// The GPT-J decoder (`transformers`' `GPTJModel`), the base of every head.
///
/// Inputs: `input_ids`, optional `attention_mask` (padding, combined with the causal mask),
/// `position_ids` (`None` is `0..seq`, after the cached positions when there is a cache) and
/// `token_type_ids` (embedded with the token embeddings `wte`, as `transformers` does).
#[derive(Debug, Clone, AutoRegister)]
#[auto(task = "base", class = "GPTJModel")]
pub struct GPTJModel {
    wte: Embedding,
    h: Vec<GptjBlock>,
    ln_f: LayerNorm,
    rotary: InterleavedRotary,
    config: GPTJConfig,
    device: Device,
    dtype: DType,
}

impl GPTJModel {
    /// Build the decoder from weights named as `transformers`' `GPTJModel` state dict (`wte`,
    /// `h.N.*`, `ln_f`). `wte`, when given, is the token embedding to use instead of reading
    /// one (a tied LM head whose checkpoint holds only `lm_head.weight`).
    pub fn new(vb: VarBuilder<'_>, config: &GPTJConfig, wte: Option<Embedding>) -> Result<Self> {
        config.validate()?;
        let h = config.n_embd;
        let wte = wte.map_or_else(|| embedding(config.vocab_size, h, vb.pp("wte")), Ok)?;
        let blocks = (0..config.n_layer)
            .map(|i| GptjBlock::load(vb.pp(format!("h.{i}")), config, i))
            .collect::<Result<Vec<_>>>()?;
        Ok(Self {
            wte,
            h: blocks,
            ln_f: candle_nn::layer_norm(h, config.layer_norm_epsilon, vb.pp("ln_f"))?,
            rotary: InterleavedRotary::new(config, vb.device())?,
            config: config.clone(),
            device: vb.device().clone(),
            dtype: vb.dtype(),
        })
    }

    /// The config the model was built from.
    pub fn config(&self) -> &GPTJConfig {
        &self.config
    }

    /// The token embedding `wte`, `[vocab_size, n_embd]`.
    pub fn word_embeddings(&self) -> &Embedding {
        &self.wte
    }

    /// Run on new tokens only: the past keys and values are read from `cache` and this
    /// step's appended to it. `attention_mask`, when given, covers the cached and the new
    /// positions `[batch, past + new]`; `position_ids`, when given, the new ones (`None`
    /// continues from `cache.seq_len()`).
    pub fn forward_with_cache(&self, inputs: &ModelInputs, cache: &mut KvCache) -> Result<BaseModelOutput> {
        Ok(BaseModelOutput::new(self.run(inputs, Some(cache))?, None))
    }

    /// The checked forward pass shared by every head: the final hidden states `[B, T, H]`.
    pub(crate) fn run(&self, inputs: &ModelInputs, mut cache: Option<&mut KvCache>) -> Result<Tensor> {
        let cfg = &self.config;
        let input_ids = inputs.input_ids()?;
        let (batch, seq) = dims2_int(input_ids, "input_ids")?;
        let past = cached_len(cache.as_deref(), batch)?;
        let total = past + seq;
        let (positions, explicit) = match &inputs.position_ids {
            Some(p) => (checked_position_ids(p, (batch, seq), cfg.n_positions, "n_positions")?, true),
            None if total > cfg.n_positions => return Err(Error::SequenceTooLong { len: total, max: cfg.n_positions }),
            None => {
                let range: Vec<u32> = (past..total).map(|p| p as u32).collect();
                (Tensor::from_vec(range, (1, seq), &self.device)?, false)
            }
        };
        let input_ids = ids_in_range(input_ids, "input_ids", cfg.vocab_size)?;
        let token_type_ids = match &inputs.token_type_ids {
            Some(t) => {
                require_int(t, "token_type_ids")?;
                require_shape(t, "token_type_ids", &[batch, seq], "`input_ids`")?;
                Some(ids_in_range(t, "token_type_ids", cfg.vocab_size)?)
            }
            None => None,
        };
        let keep = attention_keep(inputs.attention_mask.as_ref(), batch, past, seq)?;
        // `create_causal_mask` looks for packed sequences only without a mask and a cache (the
        // forward pass makes one unless `use_cache` is false).
        let packed = if cache.is_none() && !cfg.use_cache && explicit && keep.is_none() {
            let flat = positions.to_dtype(DType::I64)?.broadcast_as((batch, seq))?.flatten_all()?.to_vec1::<i64>()?;
            PackedSequences::detect(&flat, batch, seq)
        } else {
            None
        };
        let mask = MaskBuilder::new(batch, seq, past, keep, packed).build(None, DType::F32, &self.device)?;
        let max_position = positions.max_all()?.to_dtype(DType::U32)?.to_scalar::<u32>()? as usize;
        let cos_sin = self.rotary.rotary.cos_sin(&positions, max_position, self.dtype)?;

        let mut hidden = self.wte.forward(&input_ids)?;
        if let Some(types) = token_type_ids {
            hidden = (hidden + self.wte.forward(&types)?)?;
        }
        for block in &self.h {
            hidden = block.forward(&hidden, &self.rotary, &cos_sin, mask.as_ref(), cache.as_deref_mut())?;
        }
        Ok(self.ln_f.forward(&hidden)?)
    }
}

autocandle_decoder::own_base_model!(
    GPTJModel, config: GPTJConfig, prefix: "transformer", hidden_size: |model| model.config().n_embd
);

/// What the unit tests reach inside the model.
#[cfg(test)]
pub(crate) mod tests_support {
    #![allow(clippy::unwrap_used)]

    use super::*;

    /// A fixed `[1, 1, 3, head_dim]` input.
    pub(crate) fn input(cfg: &GPTJConfig) -> Tensor {
        let d = cfg.head_dim();
        let values: Vec<f32> = (0..3 * d).map(|i| ((i * 7 % 11) as f32 - 5.0) / 3.0).collect();
        Tensor::from_vec(values, (1, 1, 3, d), &Device::Cpu).unwrap()
    }

    /// [`input`] rotated to `positions` (3 of them).
    pub(crate) fn rotate(cfg: &GPTJConfig, positions: &[u32]) -> Tensor {
        let rotary = InterleavedRotary::new(cfg, &Device::Cpu).unwrap();
        let p = Tensor::new(positions, &Device::Cpu).unwrap().unsqueeze(0).unwrap();
        let max = positions.iter().copied().max().unwrap_or(0) as usize;
        let cs = rotary.rotary.cos_sin(&p, max, DType::F32).unwrap();
        rotary.apply(&input(cfg), &cs).unwrap()
    }
}

//! The GPT-2 decoder: token and position embeddings, pre-LayerNorm blocks of causal
//! self-attention and MLP, final LayerNorm (`GPT2Model`), with an optional key/value cache.

use candle_core::{DType, Device, Module, Tensor, D};
use candle_nn::{embedding, layer_norm, Embedding, Init, LayerNorm, VarBuilder};

use autocandle_core::{Activation, AutoRegister, BaseModelOutput, Error, KvCache, ModelInputs, Result};

use autocandle_decoder::{cached_kv, cached_len};

use crate::config::GPT2Config;
use crate::inputs::{additive_mask, checked_position_ids, dims2_int, ids_in_range, require_int, require_shape};

/// The dtype attention scores are softmaxed in: f32 for half-precision models, else the
/// model's own.
fn softmax_dtype(dtype: DType) -> DType {
    match dtype {
        DType::F16 | DType::BF16 => DType::F32,
        other => other,
    }
}

/// `transformers`' `Conv1D`: a linear layer whose weight is stored `[in, out]` (transposed
/// compared to `nn.Linear`), `y = x @ weight + bias`.
#[derive(Debug)]
struct Conv1D {
    weight: Tensor,
    bias: Tensor,
}

impl Conv1D {
    /// `vb` holds `weight` `[in_dim, out_dim]` and `bias` `[out_dim]`; fresh weights are
    /// drawn as `transformers` does, N(0, `std`) and zeros.
    fn load(vb: VarBuilder<'_>, in_dim: usize, out_dim: usize, std: f64) -> Result<Self> {
        let weight = vb.get_with_hints((in_dim, out_dim), "weight", Init::Randn { mean: 0.0, stdev: std })?;
        let bias = vb.get_with_hints(out_dim, "bias", Init::Const(0.0))?;
        Ok(Self { weight, bias })
    }

    /// `x` `[..., in_dim]` to `[..., out_dim]`.
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let dims = x.dims();
        let in_dim = x.dim(D::Minus1)?;
        let rows = x.elem_count() / in_dim.max(1);
        let y = x.contiguous()?.reshape((rows, in_dim))?.matmul(&self.weight)?.broadcast_add(&self.bias)?;
        let mut out_dims = dims.to_vec();
        if let Some(last) = out_dims.last_mut() {
            *last = self.weight.dim(1)?;
        }
        Ok(y.reshape(out_dims)?)
    }
}

/// `GPT2Attention`: causal multi-head self-attention with fused `c_attn` (query, key,
/// value) and the output projection `c_proj`.
#[derive(Debug)]
struct GPT2Attention {
    c_attn: Conv1D,
    c_proj: Conv1D,
    num_heads: usize,
    head_dim: usize,
    scaling: f64,
    upcast: bool,
    layer_idx: usize,
}

impl GPT2Attention {
    fn load(vb: VarBuilder<'_>, cfg: &GPT2Config, layer_idx: usize) -> Result<Self> {
        let h = cfg.n_embd;
        let head_dim = cfg.head_dim();
        let mut scaling = 1.0;
        if cfg.scale_attn_weights {
            scaling = (head_dim as f64).powf(-0.5);
        }
        if cfg.scale_attn_by_inverse_layer_idx {
            scaling /= (layer_idx + 1) as f64;
        }
        // `transformers` scales the residual projections down by sqrt(2 * n_layer) at init.
        let proj_std = cfg.initializer_range / (2.0 * cfg.n_layer.max(1) as f64).sqrt();
        Ok(Self {
            c_attn: Conv1D::load(vb.pp("c_attn"), h, 3 * h, cfg.initializer_range)?,
            c_proj: Conv1D::load(vb.pp("c_proj"), h, h, proj_std)?,
            num_heads: cfg.n_head,
            head_dim,
            scaling,
            upcast: cfg.reorder_and_upcast_attn,
            layer_idx,
        })
    }

    /// `x` `[B, T, H]`; `mask` additive, broadcastable to `[B, heads, T, past + T]`; with a
    /// cache, this step's keys and values are appended to it and the past ones read from it.
    fn forward(&self, x: &Tensor, mask: Option<&Tensor>, cache: Option<&mut KvCache>) -> Result<Tensor> {
        let (batch, seq, hidden) = x.dims3()?;
        let qkv = self.c_attn.forward(x)?;
        let heads = |i: usize| -> Result<Tensor> {
            Ok(qkv
                .narrow(2, i * hidden, hidden)?
                .reshape((batch, seq, self.num_heads, self.head_dim))?
                .transpose(1, 2)?
                .contiguous()?)
        };
        let (q, k, v) = (heads(0)?, heads(1)?, heads(2)?);
        let (k, v) = cached_kv(cache, self.layer_idx, k, v)?;
        let dtype = q.dtype();
        let score_dtype = softmax_dtype(dtype);
        let product = if self.upcast && score_dtype != dtype {
            // `_upcast_and_reordered_attn`: the product itself in f32.
            q.to_dtype(score_dtype)?.matmul(&k.to_dtype(score_dtype)?.t()?)?
        } else {
            autocandle_core::kernels::matmul(&q, &k.t()?)?
        };
        let probs = autocandle_core::kernels::masked_softmax(&product, self.scaling, mask)?.to_dtype(dtype)?;
        let context = autocandle_core::kernels::matmul(&probs, &v)?.transpose(1, 2)?.reshape((batch, seq, hidden))?;
        self.c_proj.forward(&context)
    }
}

/// `GPT2MLP`: `c_fc`, activation, `c_proj`.
#[derive(Debug)]
struct GPT2Mlp {
    c_fc: Conv1D,
    c_proj: Conv1D,
    activation: Activation,
}

impl GPT2Mlp {
    fn load(vb: VarBuilder<'_>, cfg: &GPT2Config) -> Result<Self> {
        let (h, inner) = (cfg.n_embd, cfg.inner_dim());
        let proj_std = cfg.initializer_range / (2.0 * cfg.n_layer.max(1) as f64).sqrt();
        Ok(Self {
            c_fc: Conv1D::load(vb.pp("c_fc"), h, inner, cfg.initializer_range)?,
            c_proj: Conv1D::load(vb.pp("c_proj"), inner, h, proj_std)?,
            activation: cfg.activation_function,
        })
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let inner = self.activation.forward(&self.c_fc.forward(x)?)?;
        self.c_proj.forward(&inner)
    }
}

/// `GPT2Block`: `x + attn(ln_1(x))`, then `x + mlp(ln_2(x))`.
#[derive(Debug)]
struct GPT2Block {
    ln_1: LayerNorm,
    attn: GPT2Attention,
    ln_2: LayerNorm,
    mlp: GPT2Mlp,
}

impl GPT2Block {
    fn load(vb: VarBuilder<'_>, cfg: &GPT2Config, layer_idx: usize) -> Result<Self> {
        let (h, eps) = (cfg.n_embd, cfg.layer_norm_epsilon);
        // Old checkpoints also hold the buffers `attn.bias` (the causal mask) and
        // `attn.masked_bias`; `transformers` ignores them and so does this.
        Ok(Self {
            ln_1: layer_norm(h, eps, vb.pp("ln_1"))?,
            attn: GPT2Attention::load(vb.pp("attn"), cfg, layer_idx)?,
            ln_2: layer_norm(h, eps, vb.pp("ln_2"))?,
            mlp: GPT2Mlp::load(vb.pp("mlp"), cfg)?,
        })
    }

    fn forward(&self, x: &Tensor, mask: Option<&Tensor>, cache: Option<&mut KvCache>) -> Result<Tensor> {
        let attended = (self.attn.forward(&self.ln_1.forward(x)?, mask, cache)? + x)?;
        let fed = self.mlp.forward(&self.ln_2.forward(&attended)?)?;
        Ok((attended + fed)?)
    }
}

/// The GPT-2 decoder (`transformers`' `GPT2Model`), the base of every head.
///
/// Inputs: `input_ids`, optional `attention_mask` (padding, combined with the causal mask),
/// `position_ids` (`None` is `0..seq`, after the cached positions when there is a cache)
/// and `token_type_ids` (embedded with the token embeddings `wte`, as `transformers` does).
#[derive(Debug, AutoRegister)]
#[auto(task = "base", class = "GPT2Model")]
pub struct GPT2Model {
    wte: Embedding,
    wpe: Embedding,
    h: Vec<GPT2Block>,
    ln_f: LayerNorm,
    config: GPT2Config,
    device: Device,
    dtype: DType,
}

impl GPT2Model {
    /// Build the decoder from weights named as `transformers`' `GPT2Model` state dict (`wte`,
    /// `wpe`, `h.N.*`, `ln_f`). `wte`, when given, is the token embedding matrix to use
    /// instead of `vb`'s `wte.weight` (a tied LM head whose checkpoint holds only
    /// `lm_head.weight`).
    pub fn new(vb: VarBuilder<'_>, config: &GPT2Config, wte: Option<Tensor>) -> Result<Self> {
        config.validate()?;
        let h = config.n_embd;
        let wte = match wte {
            Some(weight) => Embedding::new(weight, h),
            None => embedding(config.vocab_size, h, vb.pp("wte"))?,
        };
        let blocks = (0..config.n_layer)
            .map(|i| GPT2Block::load(vb.pp(format!("h.{i}")), config, i))
            .collect::<Result<Vec<_>>>()?;
        Ok(Self {
            wte,
            wpe: embedding(config.n_positions, h, vb.pp("wpe"))?,
            h: blocks,
            ln_f: layer_norm(h, config.layer_norm_epsilon, vb.pp("ln_f"))?,
            config: config.clone(),
            device: vb.device().clone(),
            dtype: vb.dtype(),
        })
    }

    /// The config the model was built from.
    pub fn config(&self) -> &GPT2Config {
        &self.config
    }

    /// The token embedding matrix `wte`, `[vocab_size, n_embd]`.
    pub fn word_embeddings(&self) -> &Tensor {
        self.wte.embeddings()
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
        let position_ids = match &inputs.position_ids {
            Some(p) => Some(checked_position_ids(p, (batch, seq), cfg.n_positions, "n_positions")?),
            None if total > cfg.n_positions => return Err(Error::SequenceTooLong { len: total, max: cfg.n_positions }),
            None => None,
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
        if let Some(mask) = &inputs.attention_mask {
            let like = if past > 0 { "the cached plus the new tokens" } else { "`input_ids`" };
            require_shape(mask, "attention_mask", &[batch, total], like)?;
        }
        let mask =
            additive_mask(inputs.attention_mask.as_ref(), (batch, past, seq), softmax_dtype(self.dtype), &self.device)?;

        let positions = match position_ids {
            Some(ids) => self.wpe.forward(&ids)?,
            None => self.wpe.embeddings().narrow(0, past, seq)?,
        };
        // Summed in the order of `transformers`: (tokens + positions) + token types.
        let mut hidden = self.wte.forward(&input_ids)?.broadcast_add(&positions)?;
        if let Some(types) = token_type_ids {
            hidden = (hidden + self.wte.forward(&types)?)?;
        }
        for block in &self.h {
            hidden = block.forward(&hidden, mask.as_ref(), cache.as_deref_mut())?;
        }
        Ok(self.ln_f.forward(&hidden)?)
    }
}

autocandle_decoder::own_base_model!(
    GPT2Model, config: GPT2Config, prefix: "transformer", hidden_size: |model| model.config().n_embd
);

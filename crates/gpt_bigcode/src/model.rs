//! The GPTBigCode decoder (`GPTBigCodeModel`): token and learned position embeddings,
//! pre-LayerNorm blocks of causal self-attention (multi-query or multi-head) and MLP, and the
//! final LayerNorm.

use autocandle_core::inputs::{ids_in_range, require_int, require_shape};
use autocandle_core::nn::{embedding, linear, Embedding, Linear};
use autocandle_core::{AutoRegister, KvCache, ModelInputs, Result};
use autocandle_decoder::{cached_kv, grouped_attention, prepare_inputs, DenseMlp};
use candle_core::{DType, Device, Module, Tensor, D};
use candle_nn::{layer_norm, LayerNorm, VarBuilder};

use crate::config::GPTBigCodeConfig;

/// `GPTBigCodeAttention`: `c_attn` projects to the queries, keys and values, `c_proj` back.
///
/// With `multi_query` the projection is `[queries (n_embd) | key (head_dim) | value
/// (head_dim)]`: one key/value head for every query head. Without it, it is laid out per head,
/// `[heads, 3, head_dim]` (each head's query, key and value side by side).
#[derive(Debug, Clone)]
struct Attention {
    c_attn: Linear,
    c_proj: Linear,
    num_heads: usize,
    head_dim: usize,
    multi_query: bool,
    scaling: f64,
    layer_idx: usize,
}

impl Attention {
    fn load(vb: VarBuilder<'_>, cfg: &GPTBigCodeConfig, layer_idx: usize) -> Result<Self> {
        let (h, d) = (cfg.n_embd, cfg.head_dim());
        let kv_dim = cfg.kv_heads() * d;
        Ok(Self {
            c_attn: linear(h, h + 2 * kv_dim, vb.pp("c_attn"))?,
            c_proj: linear(h, h, vb.pp("c_proj"))?,
            num_heads: cfg.n_head,
            head_dim: d,
            multi_query: cfg.multi_query,
            scaling: if cfg.scale_attn_weights { (d as f64).powf(-0.5) } else { 1.0 },
            layer_idx,
        })
    }

    fn forward(&self, x: &Tensor, mask: Option<&Tensor>, cache: Option<&mut KvCache>) -> Result<Tensor> {
        let (b, t, hidden) = x.dims3()?;
        let (h, d) = (self.num_heads, self.head_dim);
        let qkv = self.c_attn.forward(x)?;
        let (q, k, v) = if self.multi_query {
            let heads = |t_: Tensor, n: usize| -> Result<Tensor> {
                Ok(t_.reshape((b, t, n, d))?.transpose(1, 2)?.contiguous()?)
            };
            (
                heads(qkv.narrow(D::Minus1, 0, hidden)?, h)?,
                heads(qkv.narrow(D::Minus1, hidden, d)?, 1)?,
                heads(qkv.narrow(D::Minus1, hidden + d, d)?, 1)?,
            )
        } else {
            let qkv = qkv.reshape((b, t, h, 3 * d))?;
            let part =
                |i: usize| -> Result<Tensor> { Ok(qkv.narrow(D::Minus1, i * d, d)?.transpose(1, 2)?.contiguous()?) };
            (part(0)?, part(1)?, part(2)?)
        };
        let (k, v) = cached_kv(cache, self.layer_idx, k, v)?;
        let context = grouped_attention(&q, &k, &v, self.scaling, mask)?;
        Ok(self.c_proj.forward(&context)?)
    }
}

/// `GPTBigCodeBlock`: `x + attn(ln_1(x))`, then `x + mlp(ln_2(x))`.
#[derive(Debug, Clone)]
struct Block {
    ln_1: LayerNorm,
    attn: Attention,
    ln_2: LayerNorm,
    /// `GPTBigCodeMLP`: `c_fc`, activation, `c_proj`.
    mlp: DenseMlp,
}

impl Block {
    fn load(vb: VarBuilder<'_>, cfg: &GPTBigCodeConfig, layer_idx: usize) -> Result<Self> {
        let (h, eps) = (cfg.n_embd, cfg.layer_norm_epsilon);
        Ok(Self {
            ln_1: layer_norm(h, eps, vb.pp("ln_1"))?,
            attn: Attention::load(vb.pp("attn"), cfg, layer_idx)?,
            ln_2: layer_norm(h, eps, vb.pp("ln_2"))?,
            mlp: DenseMlp::load(
                vb.pp("mlp"),
                (cfg.n_embd, cfg.inner_dim()),
                true,
                cfg.activation_function,
                ("c_fc", "c_proj"),
            )?,
        })
    }

    fn forward(&self, x: &Tensor, mask: Option<&Tensor>, cache: Option<&mut KvCache>) -> Result<Tensor> {
        let x = (self.attn.forward(&self.ln_1.forward(x)?, mask, cache)? + x)?;
        Ok((&x + self.mlp.forward(&self.ln_2.forward(&x)?)?)?)
    }
}

/// `GPTBigCodeModel`: the decoder without a head, weights under `transformer.` in a
/// checkpoint with a head (`wte`, `wpe`, `h.N.*`, `ln_f`). `token_type_ids`, when given, are
/// embedded with the token embeddings `wte`, as `transformers` does.
#[derive(Debug, Clone, AutoRegister)]
#[auto(task = "base", class = "GPTBigCodeModel")]
pub struct GPTBigCodeModel {
    wte: Embedding,
    wpe: Embedding,
    h: Vec<Block>,
    ln_f: LayerNorm,
    config: GPTBigCodeConfig,
    device: Device,
    dtype: DType,
}

impl GPTBigCodeModel {
    /// Build the decoder from `vb` (the base's weights at its root); `wte`, when given,
    /// replaces `wte.weight` (a tied head whose checkpoint holds only `lm_head.weight`).
    pub fn new(vb: VarBuilder<'_>, config: &GPTBigCodeConfig, wte: Option<Embedding>) -> Result<Self> {
        config.validate()?;
        let h = config.n_embd;
        let wte = wte.map_or_else(|| embedding(config.vocab_size, h, vb.pp("wte")), Ok)?;
        let blocks =
            (0..config.n_layer).map(|i| Block::load(vb.pp(format!("h.{i}")), config, i)).collect::<Result<Vec<_>>>()?;
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
    pub fn config(&self) -> &GPTBigCodeConfig {
        &self.config
    }

    /// The token embedding `wte`.
    pub fn wte(&self) -> &Embedding {
        &self.wte
    }

    /// The device of the weights.
    pub fn device(&self) -> &Device {
        &self.device
    }

    /// The dtype of the weights.
    pub fn dtype(&self) -> DType {
        self.dtype
    }

    /// The final hidden states `[batch, seq, n_embd]` of the new tokens; with a cache, the
    /// past keys and values are read from it and this step's appended.
    pub fn run(&self, inputs: &ModelInputs, mut cache: Option<&mut KvCache>) -> Result<Tensor> {
        let cfg = &self.config;
        let prepared =
            prepare_inputs(inputs, cache.as_deref(), cfg.vocab_size, (cfg.n_positions, "n_positions"), &self.device)?;
        let token_type_ids = match &inputs.token_type_ids {
            Some(t) => {
                require_int(t, "token_type_ids")?;
                require_shape(t, "token_type_ids", &[prepared.batch, prepared.seq], "`input_ids`")?;
                Some(ids_in_range(t, "token_type_ids", cfg.vocab_size)?)
            }
            None => None,
        };
        let mask = prepared.masks.build(None, self.dtype, &self.device)?;
        // Summed in the order of `transformers`: (tokens + positions) + token types.
        let positions = self.wpe.forward(&prepared.positions)?;
        let mut hidden = self.wte.forward(&prepared.input_ids)?.broadcast_add(&positions)?;
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
    GPTBigCodeModel, config: GPTBigCodeConfig, prefix: "transformer", hidden_size: |model| model.config().n_embd
);

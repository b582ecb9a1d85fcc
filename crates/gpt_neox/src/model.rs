//! The GPT-NeoX decoder (`GPTNeoXModel`): token embeddings `embed_in`, pre-LayerNorm blocks
//! of rotary self-attention (fused `query_key_value`, partial rotation) and MLP, with a
//! parallel or sequential residual, and the final LayerNorm.

use autocandle_core::nn::{embedding, linear_b, Embedding, Linear};
use autocandle_core::{AutoRegister, KvCache, ModelInputs, Result};
use autocandle_decoder::{cached_kv, grouped_attention, prepare_inputs, CosSin, DenseMlp, RotaryEmbedding};
use candle_core::{DType, Device, Module, Tensor, D};
use candle_nn::{layer_norm, LayerNorm, VarBuilder};

use crate::config::GPTNeoXConfig;

/// `GPTNeoXAttention`: `query_key_value` projects to `[heads, 3, head_dim]` per token (each
/// head's query, key and value side by side), the first `rotary_dim` dimensions of queries
/// and keys rotate, and `dense` projects the context back.
#[derive(Debug, Clone)]
struct Attention {
    query_key_value: Linear,
    dense: Linear,
    num_heads: usize,
    head_dim: usize,
    layer_idx: usize,
}

impl Attention {
    fn load(vb: VarBuilder<'_>, cfg: &GPTNeoXConfig, layer_idx: usize) -> Result<Self> {
        let h = cfg.hidden_size;
        Ok(Self {
            query_key_value: linear_b(h, 3 * h, cfg.attention_bias, vb.pp("query_key_value"))?,
            dense: linear_b(h, h, cfg.attention_bias, vb.pp("dense"))?,
            num_heads: cfg.num_attention_heads,
            head_dim: cfg.head_dim(),
            layer_idx,
        })
    }

    fn forward(
        &self,
        x: &Tensor,
        rotary: &RotaryEmbedding,
        cos_sin: &CosSin,
        mask: Option<&Tensor>,
        cache: Option<&mut KvCache>,
    ) -> Result<Tensor> {
        let (b, t, _) = x.dims3()?;
        let (h, d) = (self.num_heads, self.head_dim);
        let qkv = self.query_key_value.forward(x)?.reshape((b, t, h, 3 * d))?;
        let part = |i: usize| -> Result<Tensor> { Ok(qkv.narrow(D::Minus1, i * d, d)?.transpose(1, 2)?.contiguous()?) };
        let q = rotary.apply(&part(0)?, cos_sin)?;
        let k = rotary.apply(&part(1)?, cos_sin)?;
        let v = part(2)?;
        let (k, v) = cached_kv(cache, self.layer_idx, k, v)?;
        let context = grouped_attention(&q, &k, &v, (d as f64).powf(-0.5), mask)?;
        Ok(self.dense.forward(&context)?)
    }
}

/// `GPTNeoXLayer`.
#[derive(Debug, Clone)]
struct Layer {
    input_layernorm: LayerNorm,
    post_attention_layernorm: LayerNorm,
    attention: Attention,
    /// `GPTNeoXMLP`: `dense_h_to_4h`, activation, `dense_4h_to_h`.
    mlp: DenseMlp,
    parallel: bool,
}

impl Layer {
    fn load(vb: VarBuilder<'_>, cfg: &GPTNeoXConfig, layer_idx: usize) -> Result<Self> {
        let (h, eps) = (cfg.hidden_size, cfg.layer_norm_eps);
        // Old checkpoints also hold the buffers `attention.bias` and `attention.masked_bias`
        // (and `attention.rotary_emb.inv_freq`); `transformers` ignores them and so does this.
        Ok(Self {
            input_layernorm: layer_norm(h, eps, vb.pp("input_layernorm"))?,
            post_attention_layernorm: layer_norm(h, eps, vb.pp("post_attention_layernorm"))?,
            attention: Attention::load(vb.pp("attention"), cfg, layer_idx)?,
            mlp: DenseMlp::load(
                vb.pp("mlp"),
                (cfg.hidden_size, cfg.intermediate_size),
                true,
                cfg.hidden_act,
                ("dense_h_to_4h", "dense_4h_to_h"),
            )?,
            parallel: cfg.use_parallel_residual,
        })
    }

    fn forward(
        &self,
        x: &Tensor,
        rotary: &RotaryEmbedding,
        cos_sin: &CosSin,
        mask: Option<&Tensor>,
        cache: Option<&mut KvCache>,
    ) -> Result<Tensor> {
        let attn = self.attention.forward(&self.input_layernorm.forward(x)?, rotary, cos_sin, mask, cache)?;
        if self.parallel {
            // mlp_output + attn_output + hidden_states, in that order.
            let mlp = self.mlp.forward(&self.post_attention_layernorm.forward(x)?)?;
            Ok(((mlp + attn)? + x)?)
        } else {
            let attn = (attn + x)?;
            let mlp = self.mlp.forward(&self.post_attention_layernorm.forward(&attn)?)?;
            Ok((mlp + attn)?)
        }
    }
}

/// `GPTNeoXModel`: the decoder without a head, weights under `gpt_neox.` in a checkpoint
/// with a head (`embed_in`, `layers.N.*`, `final_layer_norm`).
#[derive(Debug, Clone, AutoRegister)]
#[auto(task = "base", class = "GPTNeoXModel")]
pub struct GPTNeoXModel {
    embed_in: Embedding,
    layers: Vec<Layer>,
    final_layer_norm: LayerNorm,
    rotary: RotaryEmbedding,
    max_positions: usize,
    config: GPTNeoXConfig,
    device: Device,
    dtype: DType,
}

impl GPTNeoXModel {
    /// Build the decoder from `vb` (the base's weights at its root); `embed_in`, when given,
    /// replaces `embed_in.weight` (a tied head whose checkpoint holds only the head).
    pub fn new(vb: VarBuilder<'_>, config: &GPTNeoXConfig, embed_in: Option<Embedding>) -> Result<Self> {
        config.validate()?;
        let spec = config.rope_spec()?;
        let max_positions = if spec.extends_context() { usize::MAX } else { config.max_position_embeddings };
        let h = config.hidden_size;
        let embed_in = embed_in.map_or_else(|| embedding(config.vocab_size, h, vb.pp("embed_in")), Ok)?;
        let layers = (0..config.num_hidden_layers)
            .map(|i| Layer::load(vb.pp(format!("layers.{i}")), config, i))
            .collect::<Result<Vec<_>>>()?;
        Ok(Self {
            embed_in,
            layers,
            final_layer_norm: layer_norm(h, config.layer_norm_eps, vb.pp("final_layer_norm"))?,
            rotary: RotaryEmbedding::new(spec, config.head_dim(), vb.device())?,
            max_positions,
            config: config.clone(),
            device: vb.device().clone(),
            dtype: vb.dtype(),
        })
    }

    /// The config the model was built from.
    pub fn config(&self) -> &GPTNeoXConfig {
        &self.config
    }

    /// The token embedding `embed_in`.
    pub fn embed_in(&self) -> &Embedding {
        &self.embed_in
    }

    /// The device of the weights.
    pub fn device(&self) -> &Device {
        &self.device
    }

    /// The dtype of the weights.
    pub fn dtype(&self) -> DType {
        self.dtype
    }

    /// The longest sequence the model takes (`max_position_embeddings`; unbounded with
    /// `dynamic` rope).
    pub fn max_positions(&self) -> usize {
        self.max_positions
    }

    /// The final hidden states `[batch, seq, hidden]` of the new tokens; with a cache, the
    /// past keys and values are read from it and this step's appended.
    pub fn run(&self, inputs: &ModelInputs, mut cache: Option<&mut KvCache>) -> Result<Tensor> {
        let cfg = &self.config;
        let prepared = prepare_inputs(
            inputs,
            cache.as_deref(),
            cfg.vocab_size,
            (self.max_positions, "max_position_embeddings"),
            &self.device,
        )?;
        let mask = prepared.masks.build(None, self.dtype, &self.device)?;
        let cos_sin = self.rotary.cos_sin(&prepared.positions, prepared.max_position, self.dtype)?;
        let mut hidden = self.embed_in.forward(&prepared.input_ids)?;
        for layer in &self.layers {
            hidden = layer.forward(&hidden, &self.rotary, &cos_sin, mask.as_ref(), cache.as_deref_mut())?;
        }
        Ok(self.final_layer_norm.forward(&hidden)?)
    }
}

autocandle_decoder::own_base_model!(
    GPTNeoXModel, config: GPTNeoXConfig, prefix: "gpt_neox", hidden_size: |model| model.config().hidden_size
);

//! The OPT decoder (`OPTModel` / `OPTDecoder`): token embeddings (optionally projected in),
//! learned positions offset by 2 and counted from the attention mask, pre- or post-norm
//! layers of causal self-attention and a ReLU feed-forward network, the final layer norm and
//! the projection out, with an optional key/value cache.

use candle_core::{DType, Device, Module, Tensor};
use candle_nn::{LayerNorm, VarBuilder};

use autocandle_core::inputs::{dims2_int, ids_in_range, require_position_ids_shape};
use autocandle_core::nn::{embedding, linear_b, linear_no_bias, Embedding, Linear};
use autocandle_core::{Activation, AutoRegister, BaseModelOutput, Error, KvCache, ModelInputs, Result};
use autocandle_decoder::{attention_keep, cached_kv, cached_len, grouped_attention, MaskBuilder};

use crate::config::{OPTConfig, LAYER_NORM_EPS, POSITION_OFFSET};

/// `nn.LayerNorm(size, elementwise_affine=affine)`: with `affine`, `weight` and `bias` read
/// from `vb`; without, plain normalisation (no tensors read).
fn layer_norm(size: usize, affine: bool, vb: VarBuilder<'_>) -> Result<LayerNorm> {
    if affine {
        return Ok(candle_nn::layer_norm(size, LAYER_NORM_EPS, vb)?);
    }
    let ones = Tensor::ones(size, vb.dtype(), vb.device())?;
    let zeros = Tensor::zeros(size, vb.dtype(), vb.device())?;
    Ok(LayerNorm::new(ones, zeros, LAYER_NORM_EPS))
}

/// `OPTAttention`: causal multi-head self-attention; the queries are scaled before the
/// product, as `transformers` does.
#[derive(Debug, Clone)]
struct OptAttention {
    q_proj: Linear,
    k_proj: Linear,
    v_proj: Linear,
    out_proj: Linear,
    num_heads: usize,
    head_dim: usize,
    scaling: f64,
    layer_idx: usize,
}

impl OptAttention {
    fn load(vb: VarBuilder<'_>, cfg: &OPTConfig, layer_idx: usize) -> Result<Self> {
        let (h, bias) = (cfg.hidden_size, cfg.enable_bias);
        Ok(Self {
            q_proj: linear_b(h, h, bias, vb.pp("q_proj"))?,
            k_proj: linear_b(h, h, bias, vb.pp("k_proj"))?,
            v_proj: linear_b(h, h, bias, vb.pp("v_proj"))?,
            out_proj: linear_b(h, h, bias, vb.pp("out_proj"))?,
            num_heads: cfg.num_attention_heads,
            head_dim: cfg.head_dim(),
            scaling: (cfg.head_dim() as f64).powf(-0.5),
            layer_idx,
        })
    }

    fn forward(&self, x: &Tensor, mask: Option<&Tensor>, cache: Option<&mut KvCache>) -> Result<Tensor> {
        let (batch, seq, _) = x.dims3()?;
        let heads = |t: Tensor| -> Result<Tensor> {
            Ok(t.reshape((batch, seq, self.num_heads, self.head_dim))?.transpose(1, 2)?.contiguous()?)
        };
        let q = heads((self.q_proj.forward(x)? * self.scaling)?)?;
        let k = heads(self.k_proj.forward(x)?)?;
        let v = heads(self.v_proj.forward(x)?)?;
        let (k, v) = cached_kv(cache, self.layer_idx, k, v)?;
        let context = grouped_attention(&q, &k, &v, 1.0, mask)?;
        Ok(self.out_proj.forward(&context)?)
    }
}

/// `OPTDecoderLayer`: attention and feed-forward network, each with its residual, the layer
/// norms before them (`do_layer_norm_before`) or after the residual sums.
#[derive(Debug, Clone)]
struct OptLayer {
    self_attn: OptAttention,
    self_attn_layer_norm: LayerNorm,
    fc1: Linear,
    fc2: Linear,
    final_layer_norm: LayerNorm,
    activation: Activation,
    pre_norm: bool,
}

impl OptLayer {
    fn load(vb: VarBuilder<'_>, cfg: &OPTConfig, layer_idx: usize) -> Result<Self> {
        let (h, affine, bias) = (cfg.hidden_size, cfg.layer_norm_elementwise_affine, cfg.enable_bias);
        Ok(Self {
            self_attn: OptAttention::load(vb.pp("self_attn"), cfg, layer_idx)?,
            self_attn_layer_norm: layer_norm(h, affine, vb.pp("self_attn_layer_norm"))?,
            fc1: linear_b(h, cfg.ffn_dim, bias, vb.pp("fc1"))?,
            fc2: linear_b(cfg.ffn_dim, h, bias, vb.pp("fc2"))?,
            final_layer_norm: layer_norm(h, affine, vb.pp("final_layer_norm"))?,
            activation: cfg.activation_function,
            pre_norm: cfg.do_layer_norm_before,
        })
    }

    fn forward(&self, x: &Tensor, mask: Option<&Tensor>, cache: Option<&mut KvCache>) -> Result<Tensor> {
        let normed = if self.pre_norm { self.self_attn_layer_norm.forward(x)? } else { x.clone() };
        let mut hidden = (x + self.self_attn.forward(&normed, mask, cache)?)?;
        if !self.pre_norm {
            hidden = self.self_attn_layer_norm.forward(&hidden)?;
        }
        let normed = if self.pre_norm { self.final_layer_norm.forward(&hidden)? } else { hidden.clone() };
        let fed = self.fc2.forward(&self.activation.forward(&self.fc1.forward(&normed)?)?)?;
        let mut out = (hidden + fed)?;
        if !self.pre_norm {
            out = self.final_layer_norm.forward(&out)?;
        }
        Ok(out)
    }
}

/// The OPT decoder (`transformers`' `OPTModel`, whose weights sit under `decoder.`), the base
/// of every head.
///
/// Inputs: `input_ids`, optional `attention_mask` (padding, combined with the causal mask;
/// positions count only the attended tokens: `cumsum(mask) * mask - 1`) and `position_ids`
/// (the new tokens' positions before OPT's offset of 2; `None` derives them from the mask).
/// `token_type_ids` are ignored, as `transformers`' forward does not take them.
#[derive(Debug, Clone, AutoRegister)]
#[auto(task = "base", class = "OPTModel")]
pub struct OPTModel {
    embed_tokens: Embedding,
    embed_positions: Embedding,
    project_in: Option<Linear>,
    project_out: Option<Linear>,
    layers: Vec<OptLayer>,
    final_layer_norm: Option<LayerNorm>,
    config: OPTConfig,
    device: Device,
    dtype: DType,
}

impl OPTModel {
    /// Build the model from weights named as `transformers`' `OPTModel` state dict
    /// (`decoder.embed_tokens`, `decoder.embed_positions`, `decoder.layers.N.*`, ...).
    /// `embed_tokens`, when given, is the token embedding to use instead of reading one (a
    /// tied LM head whose checkpoint holds only `lm_head.weight`).
    pub fn new(vb: VarBuilder<'_>, config: &OPTConfig, embed_tokens: Option<Embedding>) -> Result<Self> {
        config.validate()?;
        let vb = vb.pp("decoder");
        let (h, e) = (config.hidden_size, config.embed_dim());
        let embed_tokens = embed_tokens.map_or_else(|| embedding(config.vocab_size, e, vb.pp("embed_tokens")), Ok)?;
        let rows = config.max_position_embeddings + POSITION_OFFSET;
        let (project_in, project_out) = if e != h {
            (Some(linear_no_bias(e, h, vb.pp("project_in"))?), Some(linear_no_bias(h, e, vb.pp("project_out"))?))
        } else {
            (None, None)
        };
        let layers = (0..config.num_hidden_layers)
            .map(|i| OptLayer::load(vb.pp(format!("layers.{i}")), config, i))
            .collect::<Result<Vec<_>>>()?;
        let final_layer_norm = if config.has_final_layer_norm() {
            Some(layer_norm(h, config.layer_norm_elementwise_affine, vb.pp("final_layer_norm"))?)
        } else {
            None
        };
        Ok(Self {
            embed_tokens,
            embed_positions: embedding(rows, h, vb.pp("embed_positions"))?,
            project_in,
            project_out,
            layers,
            final_layer_norm,
            config: config.clone(),
            device: vb.device().clone(),
            dtype: vb.dtype(),
        })
    }

    /// The config the model was built from.
    pub fn config(&self) -> &OPTConfig {
        &self.config
    }

    /// The token embedding `decoder.embed_tokens` (`[vocab_size, word_embed_proj_dim]`).
    pub fn embed_tokens(&self) -> &Embedding {
        &self.embed_tokens
    }

    /// Run on new tokens only: the past keys and values are read from `cache` and this
    /// step's appended to it. `attention_mask`, when given, covers the cached and the new
    /// positions `[batch, past + new]`.
    pub fn forward_with_cache(&self, inputs: &ModelInputs, cache: &mut KvCache) -> Result<BaseModelOutput> {
        Ok(BaseModelOutput::new(self.run(inputs, Some(cache))?, None))
    }

    /// The position rows of the new tokens (`position_ids + 2`), `[batch or 1, seq]` u32.
    fn position_rows(
        &self,
        inputs: &ModelInputs,
        keep: Option<&[bool]>,
        dims: (usize, usize, usize),
    ) -> Result<Tensor> {
        let (batch, past, seq) = dims;
        let max = self.config.max_position_embeddings;
        let rows: Vec<u32> = match &inputs.position_ids {
            Some(p) => {
                require_position_ids_shape(p, batch, seq)?;
                let values = p.to_dtype(DType::I64)?.flatten_all()?.to_vec1::<i64>()?;
                let rows = values
                    .iter()
                    .map(|&v| match v.checked_add(POSITION_OFFSET as i64) {
                        Some(row) if (0..(max + POSITION_OFFSET) as i64).contains(&row) => Ok(row as u32),
                        _ => Err(Error::input(format!(
                            "position {v} in `position_ids` is out of range: OPT positions run from -2 to {} \
                             (`max_position_embeddings` {max}, offset 2)",
                            max - 1
                        ))),
                    })
                    .collect::<Result<Vec<_>>>()?;
                return Ok(Tensor::from_vec(rows, (p.dim(0)?, seq), &self.device)?);
            }
            None => {
                let total = past + seq;
                let mut rows = Vec::with_capacity(batch * seq);
                for b in 0..batch {
                    // `cumsum(mask) * mask - 1`, plus the offset: 1 on padding.
                    let mut seen = 0usize;
                    for t in 0..total {
                        let kept = keep.is_none_or(|k| k[b * total + t]);
                        seen += usize::from(kept);
                        if t >= past {
                            rows.push(if kept { (seen - 1 + POSITION_OFFSET) as u32 } else { 1 });
                        }
                    }
                }
                rows
            }
        };
        Ok(Tensor::from_vec(rows, (batch, seq), &self.device)?)
    }

    /// The checked forward pass shared by every head: the final hidden states
    /// `[batch, seq, word_embed_proj_dim]`.
    pub(crate) fn run(&self, inputs: &ModelInputs, mut cache: Option<&mut KvCache>) -> Result<Tensor> {
        let cfg = &self.config;
        let input_ids = inputs.input_ids()?;
        let (batch, seq) = dims2_int(input_ids, "input_ids")?;
        let past = cached_len(cache.as_deref(), batch)?;
        let total = past + seq;
        if inputs.position_ids.is_none() && total > cfg.max_position_embeddings {
            return Err(Error::SequenceTooLong { len: total, max: cfg.max_position_embeddings });
        }
        let input_ids = ids_in_range(input_ids, "input_ids", cfg.vocab_size)?;
        let keep = attention_keep(inputs.attention_mask.as_ref(), batch, past, seq)?;
        let positions = self.position_rows(inputs, keep.as_deref(), (batch, past, seq))?;
        let mask = MaskBuilder::new(batch, seq, past, keep, None).build(None, self.dtype, &self.device)?;

        let mut hidden = self.embed_tokens.forward(&input_ids)?;
        if let Some(project_in) = &self.project_in {
            hidden = project_in.forward(&hidden)?;
        }
        hidden = hidden.broadcast_add(&self.embed_positions.forward(&positions)?)?;
        for layer in &self.layers {
            hidden = layer.forward(&hidden, mask.as_ref(), cache.as_deref_mut())?;
        }
        if let Some(norm) = &self.final_layer_norm {
            hidden = norm.forward(&hidden)?;
        }
        if let Some(project_out) = &self.project_out {
            hidden = project_out.forward(&hidden)?;
        }
        Ok(hidden)
    }
}

autocandle_decoder::own_base_model!(
    OPTModel, config: OPTConfig, prefix: "model", hidden_size: |model| model.config().embed_dim()
);

//! The Falcon decoder (`FalconModel`): token embeddings, blocks of attention (rotary or
//! ALiBi, fused `query_key_value` in one of three layouts) and MLP in parallel or in sequence,
//! and the final LayerNorm.

use autocandle_core::nn::{embedding, linear_b, Embedding, Linear};
use autocandle_core::{AutoRegister, KvCache, ModelInputs, Result};
pub use autocandle_decoder::alibi_slopes;
use autocandle_decoder::{
    cached_kv, dtype_min, grouped_attention, prepare_inputs, CosSin, DenseMlp, MaskBuilder, RotaryEmbedding,
};
use candle_core::{DType, Device, Module, Tensor};
use candle_nn::{layer_norm, LayerNorm, VarBuilder};

use crate::config::{BlockLayout, FalconConfig, QkvLayout};

/// `FalconAttention`: the fused `query_key_value` projection split as [`QkvLayout`] says,
/// rotary embeddings on whole heads (none with ALiBi, whose bias comes with the mask), and
/// `dense`.
#[derive(Debug, Clone)]
struct Attention {
    query_key_value: Linear,
    dense: Linear,
    layout: QkvLayout,
    num_heads: usize,
    kv_heads: usize,
    head_dim: usize,
    layer_idx: usize,
}

impl Attention {
    fn load(vb: VarBuilder<'_>, cfg: &FalconConfig, layer_idx: usize) -> Result<Self> {
        let h = cfg.hidden();
        Ok(Self {
            query_key_value: linear_b(h, cfg.qkv_dim(), cfg.bias, vb.pp("query_key_value"))?,
            dense: linear_b(h, h, cfg.bias, vb.pp("dense"))?,
            layout: cfg.qkv_layout(),
            num_heads: cfg.num_attention_heads,
            kv_heads: cfg.kv_heads(),
            head_dim: cfg.head_dim(),
            layer_idx,
        })
    }

    fn forward(
        &self,
        x: &Tensor,
        rotary: Option<(&RotaryEmbedding, &CosSin)>,
        mask: Option<&Tensor>,
        cache: Option<&mut KvCache>,
    ) -> Result<Tensor> {
        let (b, t, _) = x.dims3()?;
        let (h, kv, d) = (self.num_heads, self.kv_heads, self.head_dim);
        let fused = self.query_key_value.forward(x)?;
        // Each as [batch, seq, heads, head_dim].
        let (q, k, v) = match self.layout {
            QkvLayout::Grouped => {
                let per_group = h / kv + 2;
                let grouped = fused.reshape((b, t, kv, per_group, d))?;
                let q = grouped.narrow(3, 0, per_group - 2)?.reshape((b, t, h, d))?;
                (q, grouped.narrow(3, per_group - 2, 1)?.squeeze(3)?, grouped.narrow(3, per_group - 1, 1)?.squeeze(3)?)
            }
            QkvLayout::MultiQuery => {
                let all = fused.reshape((b, t, h + 2, d))?;
                (all.narrow(2, 0, h)?, all.narrow(2, h, 1)?, all.narrow(2, h + 1, 1)?)
            }
            QkvLayout::Interleaved => {
                let all = fused.reshape((b, t, h, 3, d))?;
                let part = |i: usize| -> Result<Tensor> { Ok(all.narrow(3, i, 1)?.squeeze(3)?) };
                (part(0)?, part(1)?, part(2)?)
            }
        };
        let heads = |t_: Tensor| -> Result<Tensor> { Ok(t_.transpose(1, 2)?.contiguous()?) };
        let (mut q, mut k, v) = (heads(q)?, heads(k)?, heads(v)?);
        if let Some((rotary, cos_sin)) = rotary {
            q = rotary.apply(&q, cos_sin)?;
            k = rotary.apply(&k, cos_sin)?;
        }
        let (k, v) = cached_kv(cache, self.layer_idx, k, v)?;
        let context = grouped_attention(&q, &k, &v, (d as f64).powf(-0.5), mask)?;
        Ok(self.dense.forward(&context)?)
    }
}

/// The LayerNorms of one block.
#[derive(Debug, Clone)]
enum Norms {
    /// `ln_attn`, `ln_mlp`.
    Two { ln_attn: LayerNorm, ln_mlp: LayerNorm },
    /// `input_layernorm` for both.
    Shared { input_layernorm: LayerNorm },
    /// `input_layernorm`, then `post_attention_layernorm` on the attention's residual sum.
    Sequential { input_layernorm: LayerNorm, post_attention_layernorm: LayerNorm },
}

/// `FalconDecoderLayer`.
#[derive(Debug, Clone)]
struct Layer {
    norms: Norms,
    self_attention: Attention,
    /// `FalconMLP`: `dense_h_to_4h`, activation, `dense_4h_to_h`.
    mlp: DenseMlp,
}

impl Layer {
    fn load(vb: VarBuilder<'_>, cfg: &FalconConfig, layer_idx: usize) -> Result<Self> {
        let (h, eps) = (cfg.hidden(), cfg.layer_norm_epsilon);
        let norm = |name: &str| layer_norm(h, eps, vb.pp(name));
        let norms = match cfg.block_layout() {
            BlockLayout::TwoNorms => Norms::Two { ln_attn: norm("ln_attn")?, ln_mlp: norm("ln_mlp")? },
            BlockLayout::Parallel => Norms::Shared { input_layernorm: norm("input_layernorm")? },
            BlockLayout::Sequential => Norms::Sequential {
                input_layernorm: norm("input_layernorm")?,
                post_attention_layernorm: norm("post_attention_layernorm")?,
            },
        };
        Ok(Self {
            norms,
            self_attention: Attention::load(vb.pp("self_attention"), cfg, layer_idx)?,
            mlp: DenseMlp::load(
                vb.pp("mlp"),
                (cfg.hidden(), cfg.ffn_dim()),
                cfg.bias,
                cfg.activation,
                ("dense_h_to_4h", "dense_4h_to_h"),
            )?,
        })
    }

    fn forward(
        &self,
        x: &Tensor,
        rotary: Option<(&RotaryEmbedding, &CosSin)>,
        mask: Option<&Tensor>,
        cache: Option<&mut KvCache>,
    ) -> Result<Tensor> {
        match &self.norms {
            Norms::Two { ln_attn, ln_mlp } => {
                let attn = self.self_attention.forward(&ln_attn.forward(x)?, rotary, mask, cache)?;
                let mlp = self.mlp.forward(&ln_mlp.forward(x)?)?;
                Ok(((mlp + attn)? + x)?)
            }
            Norms::Shared { input_layernorm } => {
                let normed = input_layernorm.forward(x)?;
                let attn = self.self_attention.forward(&normed, rotary, mask, cache)?;
                let mlp = self.mlp.forward(&normed)?;
                Ok(((mlp + attn)? + x)?)
            }
            Norms::Sequential { input_layernorm, post_attention_layernorm } => {
                let attn = self.self_attention.forward(&input_layernorm.forward(x)?, rotary, mask, cache)?;
                let residual = (attn + x)?;
                let mlp = self.mlp.forward(&post_attention_layernorm.forward(&residual)?)?;
                Ok((mlp + residual)?)
            }
        }
    }
}

/// The attention mask of an ALiBi model, `[batch, heads, new, past + new]`: where a query may
/// attend, the key's bias `slope * index / sqrt(head_dim)` (the index counts the key's
/// attended positions before it, 0 for padding; slope and product rounded to bf16 as
/// `transformers` computes them), elsewhere the dtype's minimum.
fn alibi_mask(
    masks: &MaskBuilder,
    keep: Option<&[bool]>,
    (batch, past, new): (usize, usize, usize),
    num_heads: usize,
    head_dim: usize,
    dtype: DType,
    device: &Device,
) -> Result<Tensor> {
    let total = past + new;
    let slopes: Vec<f32> = alibi_slopes(num_heads).into_iter().map(bf16).collect();
    let sqrt = (head_dim as f64).sqrt() as f32;
    let min = dtype_min(dtype) as f32;
    let mut values = Vec::with_capacity(batch * num_heads * new * total);
    for b in 0..batch {
        // (cumsum(mask) - 1) * mask
        let mut seen = 0f32;
        let index: Vec<f32> = (0..total)
            .map(|kv| {
                if keep.is_none_or(|k| k[b * total + kv]) {
                    seen += 1.0;
                    seen - 1.0
                } else {
                    0.0
                }
            })
            .collect();
        for &slope in &slopes {
            for q in 0..new {
                for (kv, &i) in index.iter().enumerate() {
                    values.push(if masks.allowed(b, past + q, kv, None) { bf16(slope * i) / sqrt } else { min });
                }
            }
        }
    }
    Ok(Tensor::from_vec(values, (batch, num_heads, new, total), device)?.to_dtype(dtype)?)
}

/// `x` rounded to the nearest bfloat16 (ties to even), as `.bfloat16()` rounds; `x` is finite.
fn bf16(x: f32) -> f32 {
    let bits = x.to_bits();
    f32::from_bits(bits.wrapping_add(0x7fff + ((bits >> 16) & 1)) & 0xffff_0000)
}

/// `FalconModel`: the decoder without a head, weights under `transformer.` in a checkpoint
/// with a head (`word_embeddings`, `h.N.*`, `ln_f`).
#[derive(Debug, Clone, AutoRegister)]
#[auto(task = "base", class = "FalconModel")]
pub struct FalconModel {
    word_embeddings: Embedding,
    h: Vec<Layer>,
    ln_f: LayerNorm,
    rotary: Option<RotaryEmbedding>,
    max_positions: usize,
    config: FalconConfig,
    device: Device,
    dtype: DType,
}

impl FalconModel {
    /// Build the decoder from `vb` (the base's weights at its root); `word_embeddings`, when
    /// given, replaces `word_embeddings.weight` (a tied head whose checkpoint holds only
    /// `lm_head.weight`).
    pub fn new(vb: VarBuilder<'_>, config: &FalconConfig, word_embeddings: Option<Embedding>) -> Result<Self> {
        config.validate()?;
        let h = config.hidden();
        let (rotary, max_positions) = if config.alibi {
            (None, usize::MAX)
        } else {
            let spec = config.rope_spec()?;
            let max = if spec.extends_context() { usize::MAX } else { config.max_position_embeddings };
            (Some(RotaryEmbedding::new(spec, config.head_dim(), vb.device())?), max)
        };
        let word_embeddings =
            word_embeddings.map_or_else(|| embedding(config.vocab_size, h, vb.pp("word_embeddings")), Ok)?;
        let layers = (0..config.num_hidden_layers)
            .map(|i| Layer::load(vb.pp(format!("h.{i}")), config, i))
            .collect::<Result<Vec<_>>>()?;
        Ok(Self {
            word_embeddings,
            h: layers,
            ln_f: layer_norm(h, config.layer_norm_epsilon, vb.pp("ln_f"))?,
            rotary,
            max_positions,
            config: config.clone(),
            device: vb.device().clone(),
            dtype: vb.dtype(),
        })
    }

    /// The config the model was built from.
    pub fn config(&self) -> &FalconConfig {
        &self.config
    }

    /// The token embedding `word_embeddings`.
    pub fn word_embeddings(&self) -> &Embedding {
        &self.word_embeddings
    }

    /// The device of the weights.
    pub fn device(&self) -> &Device {
        &self.device
    }

    /// The dtype of the weights.
    pub fn dtype(&self) -> DType {
        self.dtype
    }

    /// The longest sequence the model takes: `max_position_embeddings` with rotary
    /// embeddings, `None` (unbounded) with ALiBi or `dynamic` rope.
    pub fn max_positions(&self) -> Option<usize> {
        (self.max_positions != usize::MAX).then_some(self.max_positions)
    }

    /// The final hidden states `[batch, seq, hidden]` of the new tokens; with a cache, the
    /// past keys and values are read from it and this step's appended.
    pub fn run(&self, inputs: &ModelInputs, mut cache: Option<&mut KvCache>) -> Result<Tensor> {
        let cfg = &self.config;
        let p = prepare_inputs(
            inputs,
            cache.as_deref(),
            cfg.vocab_size,
            (self.max_positions, "max_position_embeddings"),
            &self.device,
        )?;
        let (mask, cos_sin) = match &self.rotary {
            Some(rotary) => {
                let cos_sin = rotary.cos_sin(&p.positions, p.max_position, self.dtype)?;
                (p.masks.build(None, self.dtype, &self.device)?, Some(cos_sin))
            }
            None => {
                let dims = (p.batch, p.past, p.seq);
                let keep = p.keep.as_deref();
                let mask = alibi_mask(
                    &p.masks,
                    keep,
                    dims,
                    cfg.num_attention_heads,
                    cfg.head_dim(),
                    self.dtype,
                    &self.device,
                )?;
                (Some(mask), None)
            }
        };
        let rotary = self.rotary.as_ref().zip(cos_sin.as_ref());
        let mut hidden = self.word_embeddings.forward(&p.input_ids)?;
        for layer in &self.h {
            hidden = layer.forward(&hidden, rotary, mask.as_ref(), cache.as_deref_mut())?;
        }
        Ok(self.ln_f.forward(&hidden)?)
    }
}

autocandle_decoder::own_base_model!(
    FalconModel, config: FalconConfig, prefix: "transformer", hidden_size: |model| model.config().hidden()
);

//! The ModernBERT encoder (`ModernBertModel`): token embeddings and their norm, pre-norm layers
//! of rotary self-attention (global or sliding-window) and a GeGLU MLP, and the final norm.

use autocandle_core::inputs::{dims2_int, ids_in_range, positions_in_range, require_position_ids_shape, require_shape};
use autocandle_core::nn::{embedding, linear_b, Embedding, Linear};
use autocandle_decoder::{CosSin, RotaryEmbedding};
use candle_core::{DType, Device, Module, Tensor, D};
use candle_nn::VarBuilder;

use autocandle_core::{Activation, BaseModelOutput, Model, ModelInputs, PreTrainedModel, Result};

use crate::config::{LayerKind, ModernBertSpec};

/// A LayerNorm with or without a bias (`nn.LayerNorm(bias=norm_bias)`): a norm without one
/// adds zeros, so that the fused kernel runs either way.
#[derive(Debug, Clone)]
pub(crate) struct Norm {
    weight: Tensor,
    bias: Tensor,
    eps: f32,
}

impl Norm {
    pub(crate) fn load(vb: VarBuilder<'_>, size: usize, eps: f64, bias: bool) -> Result<Self> {
        let weight = vb.get(size, "weight")?;
        let bias = if bias { vb.get(size, "bias")? } else { Tensor::zeros(size, weight.dtype(), weight.device())? };
        Ok(Self { weight, bias, eps: eps as f32 })
    }

    pub(crate) fn forward(&self, x: &Tensor) -> Result<Tensor> {
        Ok(candle_nn::ops::layer_norm(&x.contiguous()?, &self.weight, &self.bias, self.eps)?)
    }
}

/// The additive attention masks of one forward, `f32::MIN` where a query may not attend to a
/// key (`torch.finfo.min` as in `transformers`; never `-inf`, so a query whose keys are all
/// masked, padding far from any token in a sliding layer, comes out finite).
#[derive(Debug)]
struct Masks {
    /// Padding only, `[batch, 1, 1, seq]`; `None` when nothing is masked.
    global: Option<Tensor>,
    /// Padding and the sliding window, `[batch or 1, 1, seq, seq]`; `None` when nothing is
    /// masked (no padding and the window covers the sequence).
    sliding: Option<Tensor>,
}

impl Masks {
    fn new(
        attention_mask: Option<&Tensor>,
        (batch, seq): (usize, usize),
        half: usize,
        device: &Device,
    ) -> Result<Self> {
        let global = match attention_mask {
            Some(mask) => {
                require_shape(mask, "attention_mask", &[batch, seq], "`input_ids`")?;
                // keep * f32::MAX + f32::MIN is exactly 0 for keep = 1 and f32::MIN for keep = 0.
                let keep = mask.ne(0u32)?.to_dtype(DType::F32)?;
                Some(keep.affine(f64::from(f32::MAX), f64::from(f32::MIN))?.reshape((batch, 1, 1, seq))?)
            }
            None => None,
        };
        // `abs(q - kv) <= sliding_window` (`sliding_window_bidirectional_overlay`).
        let sliding = if seq > half + 1 {
            let window: Vec<f32> = (0..seq)
                .flat_map(|q| (0..seq).map(move |k| if q.abs_diff(k) <= half { 0.0 } else { f32::MIN }))
                .collect();
            let window = Tensor::from_vec(window, (1, 1, seq, seq), device)?;
            Some(match &global {
                // Both are 0 or MIN: the minimum is their intersection (a sum would overflow).
                Some(padding) => padding.broadcast_minimum(&window)?.contiguous()?,
                None => window,
            })
        } else {
            global.clone()
        };
        Ok(Self { global, sliding })
    }
}

/// `ModernBertAttention`: fused `Wqkv`, rotary embedding, scaled dot-product attention, `Wo`.
#[derive(Debug)]
struct Attention {
    wqkv: Linear,
    wo: Linear,
    num_heads: usize,
    head_dim: usize,
}

impl Attention {
    fn load(vb: VarBuilder<'_>, spec: &ModernBertSpec) -> Result<Self> {
        let cfg = &spec.config;
        let h = cfg.hidden_size;
        Ok(Self {
            wqkv: linear_b(h, 3 * h, cfg.attention_bias, vb.pp("Wqkv"))?,
            wo: linear_b(h, h, cfg.attention_bias, vb.pp("Wo"))?,
            num_heads: cfg.num_attention_heads,
            head_dim: cfg.head_dim(),
        })
    }

    /// `x` `[B, T, H]`; `mask` additive, broadcastable to `[B, heads, T, T]`.
    fn forward(&self, x: &Tensor, rope: &RotaryEmbedding, cs: &CosSin, mask: Option<&Tensor>) -> Result<Tensor> {
        let (batch, seq, hidden) = x.dims3()?;
        let qkv = self.wqkv.forward(x)?.reshape((batch, seq, 3, self.num_heads, self.head_dim))?;
        let part = |i: usize| -> Result<Tensor> { Ok(qkv.narrow(2, i, 1)?.squeeze(2)?.transpose(1, 2)?.contiguous()?) };
        let q = rope.apply(&part(0)?, cs)?;
        let k = rope.apply(&part(1)?, cs)?;
        let v = part(2)?;
        let scale = (self.head_dim as f64).powf(-0.5);
        let scores = autocandle_core::kernels::matmul(&q, &k.t()?)?;
        let probs = autocandle_core::kernels::masked_softmax(&scores, scale, mask)?.to_dtype(v.dtype())?;
        let context = autocandle_core::kernels::matmul(&probs, &v)?.transpose(1, 2)?.reshape((batch, seq, hidden))?;
        Ok(self.wo.forward(&context)?)
    }
}

/// `ModernBertMLP`: `Wi` to twice the intermediate width, split into input and gate,
/// `Wo(act(input) * gate)`.
#[derive(Debug)]
struct Mlp {
    wi: Linear,
    wo: Linear,
    activation: Activation,
    intermediate: usize,
}

impl Mlp {
    fn load(vb: VarBuilder<'_>, spec: &ModernBertSpec) -> Result<Self> {
        let cfg = &spec.config;
        let (h, i) = (cfg.hidden_size, cfg.intermediate_size);
        Ok(Self {
            wi: linear_b(h, 2 * i, cfg.mlp_bias, vb.pp("Wi"))?,
            wo: linear_b(i, h, cfg.mlp_bias, vb.pp("Wo"))?,
            activation: cfg.hidden_activation,
            intermediate: i,
        })
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let both = self.wi.forward(x)?;
        let input = both.narrow(D::Minus1, 0, self.intermediate)?.contiguous()?;
        let gate = both.narrow(D::Minus1, self.intermediate, self.intermediate)?;
        let inner = self.activation.forward(&input)?.mul(&gate)?;
        Ok(self.wo.forward(&inner)?)
    }
}

/// `ModernBertEncoderLayer`: `x + attn(attn_norm(x))`, then `x + mlp(mlp_norm(x))`; layer 0
/// has no `attn_norm` (the embeddings are normed already).
#[derive(Debug)]
struct Layer {
    attn_norm: Option<Norm>,
    attn: Attention,
    mlp_norm: Norm,
    mlp: Mlp,
    kind: LayerKind,
}

impl Layer {
    fn load(vb: VarBuilder<'_>, spec: &ModernBertSpec, index: usize, kind: LayerKind) -> Result<Self> {
        let cfg = &spec.config;
        let norm = |name: &str| Norm::load(vb.pp(name), cfg.hidden_size, cfg.norm_eps, cfg.norm_bias);
        Ok(Self {
            attn_norm: if index == 0 { None } else { Some(norm("attn_norm")?) },
            attn: Attention::load(vb.pp("attn"), spec)?,
            mlp_norm: norm("mlp_norm")?,
            mlp: Mlp::load(vb.pp("mlp"), spec)?,
            kind,
        })
    }
}

/// The ModernBERT encoder (`transformers`' `ModernBertModel`), the base of every head:
/// `last_hidden_state` after `final_norm`, no pooler.
///
/// Padded batches are computed padded, as `transformers` 5.x does on every attention backend
/// but flash attention; the tokens that are not padding get the results of the unpadded path.
#[derive(Debug)]
pub struct ModernBertEncoder {
    tok_embeddings: Embedding,
    embedding_norm: Norm,
    layers: Vec<Layer>,
    final_norm: Norm,
    global_rope: RotaryEmbedding,
    local_rope: RotaryEmbedding,
    spec: ModernBertSpec,
    device: Device,
    dtype: DType,
}

impl ModernBertEncoder {
    /// Build from weights named as `transformers`' `ModernBertModel` state dict
    /// (`embeddings.tok_embeddings`, `embeddings.norm`, `layers.N.*`, `final_norm`);
    /// `tok_embeddings`, when given, replaces the checkpoint's (a masked LM whose checkpoint
    /// holds only the tied decoder).
    pub fn new(vb: VarBuilder<'_>, spec: &ModernBertSpec, tok_embeddings: Option<Embedding>) -> Result<Self> {
        let cfg = &spec.config;
        let h = cfg.hidden_size;
        let norm = |vb: VarBuilder<'_>| Norm::load(vb, h, cfg.norm_eps, cfg.norm_bias);
        let layers = spec
            .layers
            .iter()
            .enumerate()
            .map(|(i, &kind)| Layer::load(vb.pp(format!("layers.{i}")), spec, i, kind))
            .collect::<Result<Vec<_>>>()?;
        let device = vb.device().clone();
        Ok(Self {
            tok_embeddings: match tok_embeddings {
                Some(table) => table,
                None => embedding(cfg.vocab_size, h, vb.pp("embeddings.tok_embeddings"))?,
            },
            embedding_norm: norm(vb.pp("embeddings.norm"))?,
            layers,
            final_norm: norm(vb.pp("final_norm"))?,
            global_rope: RotaryEmbedding::new(spec.global_rope.clone(), cfg.head_dim(), &device)?,
            local_rope: RotaryEmbedding::new(spec.local_rope.clone(), cfg.head_dim(), &device)?,
            spec: spec.clone(),
            dtype: vb.dtype(),
            device,
        })
    }

    /// The checked config the encoder was built from.
    pub fn spec(&self) -> &ModernBertSpec {
        &self.spec
    }

    /// The token embedding layer (`embeddings.tok_embeddings`), `[vocab_size, hidden_size]`.
    pub fn tok_embeddings(&self) -> &Embedding {
        &self.tok_embeddings
    }

    /// The checked forward pass shared by every head: `last_hidden_state` `[batch, seq, hidden]`.
    pub fn forward(&self, inputs: &ModelInputs) -> Result<Tensor> {
        let input_ids = inputs.input_ids()?;
        let (batch, seq) = dims2_int(input_ids, "input_ids")?;
        let positions = match &inputs.position_ids {
            // No position table: any position is valid, rotary angles grow without bound.
            Some(p) => {
                require_position_ids_shape(p, batch, seq)?;
                positions_in_range(p, u32::MAX as usize, "the rotary embedding counts in u32")?
            }
            None => {
                let range: Vec<u32> = (0..seq as u32).collect();
                Tensor::from_vec(range, (1, seq), &self.device)?
            }
        };
        let max_position = positions.max_all()?.to_dtype(DType::U32)?.to_scalar::<u32>()? as usize;
        let input_ids = ids_in_range(input_ids, "input_ids", self.spec.config.vocab_size)?;
        let masks = Masks::new(inputs.attention_mask.as_ref(), (batch, seq), self.spec.half_window, &self.device)?;
        let global_cs = self.global_rope.cos_sin(&positions, max_position, self.dtype)?;
        let local_cs = self.local_rope.cos_sin(&positions, max_position, self.dtype)?;

        let mut hidden = self.embedding_norm.forward(&self.tok_embeddings.forward(&input_ids)?)?;
        for layer in &self.layers {
            let (rope, cs, mask) = match layer.kind {
                LayerKind::Global => (&self.global_rope, &global_cs, masks.global.as_ref()),
                LayerKind::Sliding => (&self.local_rope, &local_cs, masks.sliding.as_ref()),
            };
            let normed = match &layer.attn_norm {
                Some(norm) => norm.forward(&hidden)?,
                None => hidden.clone(),
            };
            hidden = (&hidden + layer.attn.forward(&normed, rope, cs, mask)?)?;
            hidden = (&hidden + layer.mlp.forward(&layer.mlp_norm.forward(&hidden)?)?)?;
        }
        self.final_norm.forward(&hidden)
    }
}

impl PreTrainedModel for ModernBertEncoder {
    fn device(&self) -> &Device {
        &self.device
    }

    fn dtype(&self) -> DType {
        self.dtype
    }
}

impl Model for ModernBertEncoder {
    fn forward(&self, inputs: &ModelInputs) -> Result<BaseModelOutput> {
        Ok(BaseModelOutput::new(ModernBertEncoder::forward(self, inputs)?, None))
    }
}

//! One decoder layer: self-attention with rotary embeddings, GQA and a KV cache, the gated
//! MLP, and the norms around them (`LlamaAttention`, `LlamaMLP`, `LlamaDecoderLayer`, with
//! the variants of Qwen, Phi-3 and Gemma).

use autocandle_core::nn::{linear_b, Linear};
use candle_core::{DType, Module, Tensor, D};
use candle_nn::VarBuilder;

use autocandle_core::{Activation, KvCache, Result};

use crate::moe::SparseMoe;
use crate::norm::{Norm, RmsNorm};
use crate::rope::{CosSin, RotaryEmbedding};
use crate::spec::{DecoderSpec, LayerType, MlpKind};

/// `tanh(x / cap) * cap`.
pub(crate) fn soft_cap(x: &Tensor, cap: Option<f64>) -> Result<Tensor> {
    Ok(match cap {
        Some(c) => ((x / c)?.tanh()? * c)?,
        None => x.clone(),
    })
}

/// The query, key and value projections: separate, or one fused `qkv_proj`.
#[derive(Debug, Clone)]
enum QkvProj {
    Separate { q: Linear, k: Linear, v: Linear },
    Fused(Linear),
}

/// Multi-head self-attention with grouped key/value heads.
#[derive(Debug, Clone)]
pub struct Attention {
    qkv: QkvProj,
    o_proj: Linear,
    q_norm: Option<Norm>,
    k_norm: Option<Norm>,
    num_heads: usize,
    num_kv_heads: usize,
    head_dim: usize,
    scale: f64,
    softcap: Option<f64>,
    /// `(q_norm, k_norm)` over the whole projections (OLMo-2, OLMoE), before the heads are split.
    full_qk_norms: Option<(RmsNorm, RmsNorm)>,
    /// Whether the rotary embedding is applied (false on SmolLM3's NoPE layers).
    use_rope: bool,
    /// Clamp of the query, key and value projections (OLMoE's `clip_qkv`).
    clip_qkv: Option<f64>,
}

impl Attention {
    /// Load `q_proj`, `k_proj`, `v_proj` (or `qkv_proj`), `o_proj` and `q_norm`/`k_norm`.
    pub fn load(vb: VarBuilder<'_>, spec: &DecoderSpec) -> Result<Self> {
        let o = &spec.options;
        let (h, d) = (spec.hidden_size, spec.head_dim);
        let (q_out, kv_out) = (spec.num_attention_heads * d, spec.num_key_value_heads * d);
        let qkv = if o.fused_qkv {
            QkvProj::Fused(linear_b(h, q_out + 2 * kv_out, o.qkv_bias, vb.pp("qkv_proj"))?)
        } else {
            QkvProj::Separate {
                q: linear_b(h, q_out, o.qkv_bias, vb.pp("q_proj"))?,
                k: linear_b(h, kv_out, o.qkv_bias, vb.pp("k_proj"))?,
                v: linear_b(h, kv_out, o.qkv_bias, vb.pp("v_proj"))?,
            }
        };
        let q_norm = Norm::load_qk(&vb, "q", spec.num_attention_heads, spec)?;
        let k_norm = Norm::load_qk(&vb, "k", spec.num_key_value_heads, spec)?;
        let full_qk_norms = if o.qk_norm_full {
            Some((
                RmsNorm::load(vb.pp("q_norm"), q_out, spec.rms_norm_eps, o.norm_style)?,
                RmsNorm::load(vb.pp("k_norm"), kv_out, spec.rms_norm_eps, o.norm_style)?,
            ))
        } else {
            None
        };
        Ok(Self {
            qkv,
            o_proj: linear_b(q_out, h, o.o_bias, vb.pp(o.o_proj_name))?,
            q_norm,
            k_norm,
            num_heads: spec.num_attention_heads,
            num_kv_heads: spec.num_key_value_heads,
            head_dim: d,
            scale: o.attention_scale.unwrap_or_else(|| (d as f64).powf(-0.5)),
            softcap: o.attn_logit_softcapping,
            full_qk_norms,
            use_rope: true,
            clip_qkv: o.clip_qkv,
        })
    }

    /// This attention without the rotary embedding (SmolLM3's NoPE layers).
    pub fn without_rope(mut self) -> Self {
        self.use_rope = false;
        self
    }

    /// `x` `[batch, seq, hidden]`; `mask` additive `[batch, 1, seq, past + seq]`; with a
    /// cache, this layer's past keys and values are read from and appended to it.
    /// The layer on `x` `[batch, seq, hidden]`, with the call's rotary `cos_sin`, an additive
    /// attention `mask` (`None` when nothing is masked) and, in generation, the cache and this
    /// layer's index in it.
    pub fn forward(
        &self,
        x: &Tensor,
        rotary: &RotaryEmbedding,
        cos_sin: &CosSin,
        mask: Option<&Tensor>,
        cache: Option<(&mut KvCache, usize)>,
    ) -> Result<Tensor> {
        let (b, t, _) = x.dims3()?;
        let (h, kvh, d) = (self.num_heads, self.num_kv_heads, self.head_dim);
        let (q, k, v) = match &self.qkv {
            QkvProj::Separate { q, k, v } => (q.forward(x)?, k.forward(x)?, v.forward(x)?),
            QkvProj::Fused(qkv) => {
                let all = qkv.forward(x)?;
                (
                    all.narrow(D::Minus1, 0, h * d)?,
                    all.narrow(D::Minus1, h * d, kvh * d)?,
                    all.narrow(D::Minus1, (h + kvh) * d, kvh * d)?,
                )
            }
        };
        let (q, k) = match &self.full_qk_norms {
            Some((q_norm, k_norm)) => (q_norm.forward(&q)?, k_norm.forward(&k)?),
            None => (q, k),
        };
        let (q, k, v) = match self.clip_qkv {
            Some(c) => (q.clamp(-c, c)?, k.clamp(-c, c)?, v.clamp(-c, c)?),
            None => (q, k, v),
        };
        let heads = |t_: Tensor, n: usize, norm: Option<&Norm>| -> Result<Tensor> {
            let mut t_ = t_.reshape((b, t, n, d))?;
            if let Some(norm) = norm {
                t_ = norm.forward(&t_)?;
            }
            Ok(t_.transpose(1, 2)?.contiguous()?)
        };
        let (q, k) = (heads(q, h, self.q_norm.as_ref())?, heads(k, kvh, self.k_norm.as_ref())?);
        let (q, k) = if self.use_rope { (rotary.apply(&q, cos_sin)?, rotary.apply(&k, cos_sin)?) } else { (q, k) };
        let v = heads(v, kvh, None)?;
        let (k, v) = match cache {
            Some((cache, layer)) => cache.append(layer, &k, &v)?,
            None => (k, v),
        };
        // Cached keys and values are views strided along the sequence axis; matmul takes them.
        let s = k.dim(2)?;
        let n_rep = h / kvh;
        let dtype = q.dtype();

        // Grouped heads: the `n_rep` query heads of one key/value head are consecutive, so
        // they can share its keys without `repeat_kv`.
        let q = q.contiguous()?.reshape((b, kvh, n_rep * t, d))?;
        let scores = autocandle_core::kernels::matmul(&q, &k.t()?)?.reshape((b, h, t, s))?;
        let probs = if self.softcap.is_none() {
            // Scale, mask and softmax in one pass over the scores.
            autocandle_core::kernels::masked_softmax(&scores, self.scale, mask)?
        } else {
            let scores = soft_cap(&(scores * self.scale)?, self.softcap)?;
            let scores = match mask {
                Some(m) => scores.broadcast_add(m)?,
                None => scores,
            };
            candle_nn::ops::softmax_last_dim(&scores.to_dtype(DType::F32)?)?
        };
        let probs = probs.to_dtype(dtype)?;
        let out = autocandle_core::kernels::matmul(&probs.reshape((b, kvh, n_rep * t, s))?, &v)?;
        let out = out.reshape((b, h, t, d))?.transpose(1, 2)?.reshape((b, t, h * d))?;
        Ok(self.o_proj.forward(&out)?)
    }
}

/// The projections of the gated MLP: separate, or one fused `gate_up_proj` (gate first); or
/// a plain MLP's input projection (no gate).
#[derive(Debug, Clone)]
enum GateUp {
    Separate { gate: Linear, up: Linear },
    Fused(Linear),
    Plain(Linear),
}

/// `down_proj(act(gate_proj(x)) * up_proj(x))`, or the plain `down(act(up(x)))`
/// ([`MlpKind::Plain`]).
#[derive(Debug, Clone)]
pub struct Mlp {
    gate_up: GateUp,
    down_proj: Linear,
    act: Activation,
    intermediate: usize,
}

impl Mlp {
    /// Load `gate_proj`, `up_proj` (or `gate_up_proj`) and `down_proj`, or a plain MLP's two
    /// projections.
    pub fn load(vb: VarBuilder<'_>, spec: &DecoderSpec) -> Result<Self> {
        let (h, i, bias) = (spec.hidden_size, spec.intermediate_size, spec.options.mlp_bias);
        if let MlpKind::Plain { up, down } = spec.options.mlp_kind {
            return Ok(Self {
                gate_up: GateUp::Plain(linear_b(h, i, bias, vb.pp(up))?),
                down_proj: linear_b(i, h, bias, vb.pp(down))?,
                act: spec.hidden_act,
                intermediate: i,
            });
        }
        let gate_up = if spec.options.fused_gate_up {
            GateUp::Fused(linear_b(h, 2 * i, bias, vb.pp("gate_up_proj"))?)
        } else {
            GateUp::Separate {
                gate: linear_b(h, i, bias, vb.pp("gate_proj"))?,
                up: linear_b(h, i, bias, vb.pp("up_proj"))?,
            }
        };
        Ok(Self {
            gate_up,
            down_proj: linear_b(i, h, bias, vb.pp("down_proj"))?,
            act: spec.hidden_act,
            intermediate: i,
        })
    }

    /// `down_proj(act(gate_proj(x)) * up_proj(x))`, `[batch, seq, hidden]` to the same shape.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let inner = match &self.gate_up {
            GateUp::Separate { gate, up } => (self.act.forward(&gate.forward(x)?)? * up.forward(x)?)?,
            GateUp::Fused(gate_up) => {
                let both = gate_up.forward(x)?;
                let gate = both.narrow(D::Minus1, 0, self.intermediate)?;
                let up = both.narrow(D::Minus1, self.intermediate, self.intermediate)?;
                (up * self.act.forward(&gate)?)?
            }
            GateUp::Plain(up) => self.act.forward(&up.forward(x)?)?,
        };
        Ok(self.down_proj.forward(&inner)?)
    }
}

/// The feed-forward of one layer: the dense gated MLP, or the sparse mixture of experts.
#[derive(Debug, Clone)]
pub enum FeedForward {
    /// [`Mlp`].
    Dense(Mlp),
    /// [`SparseMoe`].
    Sparse(SparseMoe),
}

impl FeedForward {
    /// The feed-forward on `x` `[batch, seq, hidden]`; a sparse block pushes its router logits
    /// `[batch * seq, num_experts]` onto `router_logits` when given.
    pub fn forward(&self, x: &Tensor, router_logits: Option<&mut Vec<Tensor>>) -> Result<Tensor> {
        match self {
            Self::Dense(mlp) => mlp.forward(x),
            Self::Sparse(moe) => {
                let (out, logits) = moe.forward(x)?;
                if let Some(all) = router_logits {
                    all.push(logits);
                }
                Ok(out)
            }
        }
    }
}

/// One decoder layer: pre-norm attention and MLP with residuals, or Gemma-2's sandwich of
/// four norms.
#[derive(Debug, Clone)]
pub struct DecoderLayer {
    self_attn: Attention,
    mlp: FeedForward,
    /// `None` with OLMo-2's post-norms.
    input_layernorm: Option<Norm>,
    /// `None` in a parallel block ([`crate::DecoderOptions::parallel_block`]).
    post_attention_layernorm: Option<Norm>,
    /// Gemma-2: `(pre_feedforward_layernorm, post_feedforward_layernorm)`; OLMo-2: `(None,
    /// post_feedforward_layernorm)`.
    feedforward_norms: Option<(Option<Norm>, Norm)>,
    layer_type: LayerType,
    /// Granite's `residual_multiplier` on the attention and MLP outputs.
    residual_multiplier: Option<f64>,
}

impl DecoderLayer {
    /// Load layer `vb` (`model.layers.N`) as the first layer of the stack (see
    /// [`DecoderLayer::load_at`]).
    pub fn load(vb: VarBuilder<'_>, spec: &DecoderSpec, layer_type: LayerType) -> Result<Self> {
        Self::load_at(vb, spec, layer_type, 0)
    }

    /// Load layer `index` from `vb` (`model.layers.N`); its feed-forward is sparse when
    /// [`crate::DecoderOptions::moe`] says so for `index` (read from `mlp`, or Mixtral's older
    /// `block_sparse_moe`), and its attention skips the rotary embedding when
    /// [`crate::DecoderOptions::skip_rope`] says so (SmolLM3's NoPE layers).
    pub fn load_at(vb: VarBuilder<'_>, spec: &DecoderSpec, layer_type: LayerType, index: usize) -> Result<Self> {
        let norm = |name: &str| Norm::load(vb.pp(name), spec.hidden_size, spec);
        let feedforward_norms = if spec.options.sandwich_norms {
            Some((Some(norm("pre_feedforward_layernorm")?), norm("post_feedforward_layernorm")?))
        } else if spec.options.post_norms {
            Some((None, norm("post_feedforward_layernorm")?))
        } else {
            None
        };
        let input_layernorm = if spec.options.post_norms { None } else { Some(norm("input_layernorm")?) };
        Ok(Self {
            self_attn: if spec.options.skip_rope.get(index) == Some(&true) {
                Attention::load(vb.pp("self_attn"), spec)?.without_rope()
            } else {
                Attention::load(vb.pp("self_attn"), spec)?
            },
            mlp: match &spec.options.moe {
                Some(moe) if moe.sparse_layers.get(index).copied().unwrap_or(false) => {
                    let name = if !vb.contains_tensor("mlp.gate.weight")
                        && vb.contains_tensor("block_sparse_moe.gate.weight")
                    {
                        "block_sparse_moe"
                    } else {
                        "mlp"
                    };
                    FeedForward::Sparse(SparseMoe::load(vb.pp(name), moe, spec.hidden_size, spec.hidden_act)?)
                }
                _ => FeedForward::Dense(Mlp::load(vb.pp("mlp"), spec)?),
            },
            input_layernorm,
            post_attention_layernorm: if spec.options.parallel_block {
                None
            } else {
                Some(norm("post_attention_layernorm")?)
            },
            feedforward_norms,
            layer_type,
            residual_multiplier: spec.options.residual_multiplier,
        })
    }

    /// `x + branch`, the branch scaled by Granite's `residual_multiplier`.
    fn residual(&self, x: &Tensor, branch: Tensor) -> Result<Tensor> {
        Ok(match self.residual_multiplier {
            Some(m) => (x + (branch * m)?)?,
            None => (x + branch)?,
        })
    }

    /// Full or sliding attention.
    pub fn layer_type(&self) -> LayerType {
        self.layer_type
    }

    /// The layer on `x` `[batch, seq, hidden]`, with the call's rotary `cos_sin`, an additive
    /// attention `mask` (`None` when nothing is masked) and, in generation, the cache and this
    /// layer's index in it.
    pub fn forward(
        &self,
        x: &Tensor,
        rotary: &RotaryEmbedding,
        cos_sin: &CosSin,
        mask: Option<&Tensor>,
        cache: Option<(&mut KvCache, usize)>,
    ) -> Result<Tensor> {
        self.forward_with_router_logits(x, rotary, cos_sin, mask, cache, None)
    }

    /// [`DecoderLayer::forward`], pushing a sparse feed-forward's router logits
    /// `[batch * seq, num_experts]` onto `router_logits` when given.
    pub fn forward_with_router_logits(
        &self,
        x: &Tensor,
        rotary: &RotaryEmbedding,
        cos_sin: &CosSin,
        mask: Option<&Tensor>,
        cache: Option<(&mut KvCache, usize)>,
        router_logits: Option<&mut Vec<Tensor>>,
    ) -> Result<Tensor> {
        let normed = match &self.input_layernorm {
            Some(norm) => norm.forward(x)?,
            None => x.clone(),
        };
        let attended = self.self_attn.forward(&normed, rotary, cos_sin, mask, cache)?;
        let Some(post_attention_layernorm) = &self.post_attention_layernorm else {
            // Parallel block: `residual + attn + mlp`, summed as StableLM and Cohere do (Phi's
            // `attn + mlp + residual` differs in rounding only).
            let fed = self.mlp.forward(&normed, router_logits)?;
            return self.residual(&self.residual(x, attended)?, fed);
        };
        match &self.feedforward_norms {
            None => {
                let x = self.residual(x, attended)?;
                let fed = self.mlp.forward(&post_attention_layernorm.forward(&x)?, router_logits)?;
                self.residual(&x, fed)
            }
            Some((pre, post)) => {
                let x = self.residual(x, post_attention_layernorm.forward(&attended)?)?;
                let fed = match pre {
                    Some(pre) => self.mlp.forward(&pre.forward(&x)?, router_logits)?,
                    None => self.mlp.forward(&x, router_logits)?,
                };
                self.residual(&x, post.forward(&fed)?)
            }
        }
    }
}

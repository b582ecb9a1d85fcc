//! The DeBERTa network (`DebertaV2Model`, and `DebertaModel` through [`Version::V1`]): the
//! embeddings, the layers with disentangled attention, the relative embedding table, the
//! convolution after the first layer, and the `ContextPooler` of the classification heads.

use autocandle_core::nn::{linear, linear_no_bias, Linear};
use candle_core::{DType, Device, Module, Tensor};
use candle_nn::{embedding, layer_norm, Embedding, LayerNorm, VarBuilder};

use autocandle_core::heads::Encoder;
use autocandle_core::inputs::{checked_position_ids, dims2_int, ids_in_range, require_int, require_shape};
use autocandle_core::kernels;
use autocandle_core::{Activation, BaseModelOutput, Error, ModelInputs, PreTrainedModel, Result};

use crate::config::{ConvSpec, DebertaSpec, RelativeSpec, Version};

/// `make_log_bucket_position` for one relative position, in f32 as `transformers` computes it.
pub fn log_bucket_position(relative: i64, bucket_size: usize, max_position: usize) -> i64 {
    let mid = (bucket_size / 2) as i64;
    let abs_pos = if relative < mid && relative > -mid { mid - 1 } else { relative.abs() };
    if abs_pos <= mid {
        return relative;
    }
    let denominator = (((max_position as f64) - 1.0) / mid as f64) as f32;
    let log_pos = ((abs_pos as f32 / mid as f32).ln() / denominator.ln() * (mid - 1) as f32).ceil() + mid as f32;
    (log_pos * relative.signum() as f32) as i64
}

/// The relative position of query `i` to key `j` (`i - j`, bucketed when `buckets` is set),
/// as `build_relative_position`.
fn relative_position(i: usize, j: usize, rel: &RelativeSpec) -> i64 {
    let r = i as i64 - j as i64;
    match rel.buckets {
        Some(b) => log_bucket_position(r, b, rel.max_relative_positions),
        None => r,
    }
}

/// What every layer's disentangled attention needs for one sequence length: the rows of the
/// relative table in use, and where each score reads its relative term.
#[derive(Debug)]
struct RelativeIndex {
    /// First row of `rel_embeddings` in use.
    first: usize,
    /// Number of rows in use.
    rows: usize,
    /// `[seq * seq]` u32: score `(i, j)` of c2p reads `c2p[b, h, i, _]` at `i * rows + this`.
    c2p: Option<Tensor>,
    /// `[seq * seq]` u32: score `(i, j)` of p2c reads `p2c[b, h, j, _]` at `j * rows + this`.
    p2c: Option<Tensor>,
}

impl RelativeIndex {
    fn new(seq: usize, rel: &RelativeSpec, device: &Device) -> Result<Self> {
        let span = rel.span as i64;
        let clamp = |x: i64| x.clamp(0, 2 * span - 1) as usize;
        let positions: Vec<i64> =
            (0..seq).flat_map(|i| (0..seq).map(move |j| (i, j))).map(|(i, j)| relative_position(i, j, rel)).collect();
        // c2p at (i, j): row clamp(r[i, j] + span); p2c at (i, j): row clamp(-r[j, i] + span)
        // of key j (the gather on `p2c_att` then its transpose).
        let c2p_rows: Vec<usize> = positions.iter().map(|&r| clamp(r + span)).collect();
        let p2c_rows: Vec<usize> = (0..seq)
            .flat_map(|i| (0..seq).map(move |j| (i, j)))
            .map(|(i, j)| clamp(-positions[j * seq + i] + span))
            .collect();
        let used = rel.c2p.then_some(&c2p_rows).into_iter().chain(rel.p2c.then_some(&p2c_rows)).flatten();
        let (first, last) = used.fold((usize::MAX, 0), |(lo, hi), &r| (lo.min(r), hi.max(r)));
        if first > last {
            return Ok(Self { first: 0, rows: 0, c2p: None, p2c: None });
        }
        let rows = last - first + 1;
        let flat = |rows_of: &[usize], by_key: bool| -> Result<Tensor> {
            let values: Vec<u32> = (0..seq * seq)
                .map(|n| {
                    let (i, j) = (n / seq, n % seq);
                    let outer = if by_key { j } else { i };
                    (outer * rows + rows_of[n] - first) as u32
                })
                .collect();
            Ok(Tensor::from_vec(values, seq * seq, device)?)
        };
        Ok(Self {
            first,
            rows,
            c2p: if rel.c2p { Some(flat(&c2p_rows, false)?) } else { None },
            p2c: if rel.p2c { Some(flat(&p2c_rows, true)?) } else { None },
        })
    }
}

/// The embeddings (`DebertaV2Embeddings` / `DebertaEmbeddings`).
#[derive(Debug)]
struct Embeddings {
    word_embeddings: Embedding,
    position_embeddings: Option<Embedding>,
    token_type_embeddings: Option<Embedding>,
    embed_proj: Option<Linear>,
    layer_norm: LayerNorm,
}

impl Embeddings {
    fn load(vb: VarBuilder<'_>, spec: &DebertaSpec) -> Result<Self> {
        let e = spec.embedding_size;
        Ok(Self {
            word_embeddings: embedding(spec.vocab_size, e, vb.pp("word_embeddings"))?,
            position_embeddings: if spec.position_biased_input {
                Some(embedding(spec.max_position_embeddings, e, vb.pp("position_embeddings"))?)
            } else {
                None
            },
            token_type_embeddings: if spec.type_vocab_size > 0 {
                Some(embedding(spec.type_vocab_size, e, vb.pp("token_type_embeddings"))?)
            } else {
                None
            },
            embed_proj: if e != spec.hidden_size {
                Some(linear_no_bias(e, spec.hidden_size, vb.pp("embed_proj"))?)
            } else {
                None
            },
            layer_norm: layer_norm(spec.hidden_size, spec.layer_norm_eps, vb.pp("LayerNorm"))?,
        })
    }

    /// `input_ids` `[B, T]` u32; the others checked; `keep` `[B, T, 1]` in the model dtype.
    fn forward(
        &self,
        input_ids: &Tensor,
        token_type_ids: Option<&Tensor>,
        position_ids: Option<&Tensor>,
        keep: Option<&Tensor>,
    ) -> Result<Tensor> {
        let seq = input_ids.dim(1)?;
        let mut x = self.word_embeddings.forward(input_ids)?;
        if let Some(table) = &self.position_embeddings {
            let positions = match position_ids {
                Some(ids) => table.forward(ids)?,
                None => table.embeddings().narrow(0, 0, seq)?.unsqueeze(0)?,
            };
            x = x.broadcast_add(&positions)?;
        }
        if let Some(table) = &self.token_type_embeddings {
            let types = match token_type_ids {
                Some(ids) => table.forward(ids)?,
                None => table.embeddings().narrow(0, 0, 1)?.unsqueeze(0)?,
            };
            x = x.broadcast_add(&types)?;
        }
        if let Some(proj) = &self.embed_proj {
            x = proj.forward(&x)?;
        }
        let x = self.layer_norm.forward(&x)?;
        Ok(match keep {
            Some(keep) => x.broadcast_mul(keep)?,
            None => x,
        })
    }
}

/// `DisentangledSelfAttention` of either version, with v1's `in_proj` split into the three
/// projections at load.
#[derive(Debug)]
struct Attention {
    query: Linear,
    key: Linear,
    value: Linear,
    /// Projects the relative embeddings for c2p (`pos_key_proj`, `pos_proj`, or `key_proj`).
    pos_key: Option<Linear>,
    /// Projects the relative embeddings for p2c (`pos_query_proj`, `pos_q_proj`, or `query_proj`).
    pos_query: Option<Linear>,
    /// v1's `talking_head`: `head_logits_proj` and `head_weights_proj` weights `[H, H]`.
    talking: Option<(Tensor, Tensor)>,
    num_heads: usize,
    head_size: usize,
    scale: f64,
}

impl Attention {
    fn load(vb: VarBuilder<'_>, spec: &DebertaSpec) -> Result<Self> {
        let (h, all) = (spec.hidden_size, spec.all_head_size());
        let rel = spec.relative.as_ref();
        let c2p = rel.is_some_and(|r| r.c2p);
        let p2c = rel.is_some_and(|r| r.p2c);
        let (query, key, value, pos_key, pos_query, talking) = match spec.version {
            Version::V2 => {
                let query = linear(h, all, vb.pp("query_proj"))?;
                let key = linear(h, all, vb.pp("key_proj"))?;
                let value = linear(h, all, vb.pp("value_proj"))?;
                let share = rel.is_some_and(|r| r.share_att_key);
                let pos_key = match (c2p, share) {
                    (false, _) => None,
                    (true, true) => Some(key.clone()),
                    (true, false) => Some(linear(h, all, vb.pp("pos_key_proj"))?),
                };
                let pos_query = match (p2c, share) {
                    (false, _) => None,
                    (true, true) => Some(query.clone()),
                    (true, false) => Some(linear(h, all, vb.pp("pos_query_proj"))?),
                };
                (query, key, value, pos_key, pos_query, None)
            }
            Version::V1 => {
                let (heads, d) = (spec.num_heads, spec.head_size);
                // `in_proj` rows are per head: q, k, v of head 0, then of head 1, ...
                let in_proj = vb.get((3 * all, h), "in_proj.weight")?.reshape((heads, 3, d, h))?;
                let part =
                    |k: usize| -> Result<Tensor> { Ok(in_proj.narrow(1, k, 1)?.reshape((all, h))?.contiguous()?) };
                let q_bias = vb.get(all, "q_bias")?;
                let v_bias = vb.get(all, "v_bias")?;
                let query = Linear::new(part(0)?, Some(q_bias));
                let key = Linear::new(part(1)?, None);
                let value = Linear::new(part(2)?, Some(v_bias));
                let pos_key = if c2p { Some(linear_no_bias(h, all, vb.pp("pos_proj"))?) } else { None };
                let pos_query = if p2c { Some(linear(h, all, vb.pp("pos_q_proj"))?) } else { None };
                let talking = if spec.talking_head {
                    Some((
                        vb.get((heads, heads), "head_logits_proj.weight")?,
                        vb.get((heads, heads), "head_weights_proj.weight")?,
                    ))
                } else {
                    None
                };
                (query, key, value, pos_key, pos_query, talking)
            }
        };
        Ok(Self {
            query,
            key,
            value,
            pos_key,
            pos_query,
            talking,
            num_heads: spec.num_heads,
            head_size: spec.head_size,
            scale: ((spec.head_size * spec.scale_factor) as f64).powf(-0.5),
        })
    }

    /// `[B, T, H * d]` to `[H, B, T, d]`, contiguous: head-major, so that the products with
    /// the relative embeddings (one `[R, d]` matrix per head) are one batched product over
    /// the heads, with no copy of the relative side per sequence.
    fn heads(&self, x: &Tensor) -> Result<Tensor> {
        let (b, t, _) = x.dims3()?;
        Ok(x.reshape((b, t, self.num_heads, self.head_size))?.permute((2, 0, 1, 3))?.contiguous()?)
    }

    /// The relative table `[R, hidden]` through `proj`, as `[H, R, d]`.
    fn positional(&self, proj: &Linear, table: &Tensor) -> Result<Tensor> {
        let rows = table.dim(0)?;
        Ok(proj.forward(table)?.reshape((rows, self.num_heads, self.head_size))?.transpose(0, 1)?.contiguous()?)
    }

    /// `x` `[B, T, hidden]`; `mask` additive `[1, B, T, T]` (head-major); `rel` the relative
    /// table rows in use with their index.
    fn forward(&self, x: &Tensor, mask: Option<&Tensor>, rel: Option<(&Tensor, &RelativeIndex)>) -> Result<Tensor> {
        let (b, t, _) = x.dims3()?;
        let (h, d) = (self.num_heads, self.head_size);
        let q = self.heads(&self.query.forward(x)?)?;
        let k = self.heads(&self.key.forward(x)?)?;
        let v = self.heads(&self.value.forward(x)?)?;
        // [H, B, T, T]
        let mut scores = kernels::matmul(&q, &k.t()?)?;
        if let Some((table, index)) = rel {
            let rows = index.rows;
            // Each term: [H, B * T, R] products, then the score (i, j) picks its relative row.
            let term = |content: &Tensor, proj: &Linear, flat: &Tensor| -> Result<Tensor> {
                let positional = self.positional(proj, table)?;
                let products = kernels::matmul(&content.reshape((h, b * t, d))?, &positional.t()?)?;
                let picked = products.reshape((h * b, t * rows))?.index_select(flat, 1)?;
                Ok(picked.reshape((h, b, t, t))?)
            };
            if let (Some(proj), Some(flat)) = (&self.pos_key, &index.c2p) {
                scores = (scores + term(&q, proj, flat)?)?;
            }
            if let (Some(proj), Some(flat)) = (&self.pos_query, &index.p2c) {
                scores = (scores + term(&k, proj, flat)?)?;
            }
        }
        let probs = match &self.talking {
            None => kernels::masked_softmax(&scores, self.scale, mask)?,
            Some((logits_proj, weights_proj)) => {
                // Mixing the heads: `[H, H] x [H, B * T * T]`.
                let mix = |x: &Tensor, w: &Tensor| -> Result<Tensor> {
                    let flat = x.reshape((h, ()))?;
                    Ok(w.to_dtype(x.dtype())?.matmul(&flat)?.reshape((h, b, t, t))?)
                };
                let scores = mix(&(scores * self.scale)?, logits_proj)?;
                let probs = kernels::masked_softmax(&scores, 1.0, mask)?;
                mix(&probs, weights_proj)?
            }
        };
        let probs = probs.to_dtype(v.dtype())?;
        // [H, B, T, d] to [B, T, H * d]
        let context = kernels::matmul(&probs, &v)?.permute((1, 2, 0, 3))?;
        Ok(context.reshape((b, t, h * d))?)
    }
}

/// `dense`, then `LayerNorm(dense(x) + residual)`.
#[derive(Debug)]
struct DenseResidualNorm {
    dense: Linear,
    layer_norm: LayerNorm,
}

impl DenseResidualNorm {
    fn load(vb: VarBuilder<'_>, in_dim: usize, spec: &DebertaSpec) -> Result<Self> {
        Ok(Self {
            dense: linear(in_dim, spec.hidden_size, vb.pp("dense"))?,
            layer_norm: layer_norm(spec.hidden_size, spec.layer_norm_eps, vb.pp("LayerNorm"))?,
        })
    }

    fn forward(&self, x: &Tensor, residual: &Tensor) -> Result<Tensor> {
        Ok(self.layer_norm.forward(&(self.dense.forward(x)? + residual)?)?)
    }
}

/// One layer (`DebertaV2Layer`): attention, its output norm, the feed-forward block.
#[derive(Debug)]
struct Layer {
    attention: Attention,
    attention_output: DenseResidualNorm,
    intermediate: Linear,
    activation: Activation,
    output: DenseResidualNorm,
}

impl Layer {
    fn load(vb: VarBuilder<'_>, spec: &DebertaSpec) -> Result<Self> {
        let h = spec.hidden_size;
        Ok(Self {
            attention: Attention::load(vb.pp("attention.self"), spec)?,
            attention_output: DenseResidualNorm::load(vb.pp("attention.output"), h, spec)?,
            intermediate: linear(h, spec.intermediate_size, vb.pp("intermediate.dense"))?,
            activation: spec.hidden_act,
            output: DenseResidualNorm::load(vb.pp("output"), spec.intermediate_size, spec)?,
        })
    }

    fn forward(&self, x: &Tensor, mask: Option<&Tensor>, rel: Option<(&Tensor, &RelativeIndex)>) -> Result<Tensor> {
        let attended = self.attention_output.forward(&self.attention.forward(x, mask, rel)?, x)?;
        let inner = self.activation.forward(&self.intermediate.forward(&attended)?)?;
        self.output.forward(&inner, &attended)
    }
}

/// `ConvLayer` (`encoder.conv`): a 1-D convolution over the embeddings, added to the first
/// layer's output.
#[derive(Debug)]
struct ConvLayer {
    weight: Tensor,
    bias: Tensor,
    layer_norm: LayerNorm,
    spec: ConvSpec,
}

impl ConvLayer {
    fn load(vb: VarBuilder<'_>, spec: &DebertaSpec, conv: ConvSpec) -> Result<Self> {
        let h = spec.hidden_size;
        Ok(Self {
            weight: vb.get((h, h / conv.groups, conv.kernel_size), "conv.weight")?,
            bias: vb.get(h, "conv.bias")?,
            layer_norm: layer_norm(h, spec.layer_norm_eps, vb.pp("LayerNorm"))?,
            spec: conv,
        })
    }

    /// `input` the embeddings, `residual` the first layer's output, `keep` `[B, T, 1]`.
    fn forward(&self, input: &Tensor, residual: &Tensor, keep: Option<&Tensor>) -> Result<Tensor> {
        let padding = (self.spec.kernel_size - 1) / 2;
        let x = input.transpose(1, 2)?.contiguous()?;
        let out = x.conv1d(&self.weight, padding, 1, 1, self.spec.groups)?;
        let out = out.broadcast_add(&self.bias.reshape((1, (), 1))?)?.transpose(1, 2)?;
        let out = match keep {
            Some(keep) => out.broadcast_mul(keep)?,
            None => out,
        };
        let out = self.spec.activation.forward(&out.contiguous()?)?;
        let out = self.layer_norm.forward(&(residual + out)?)?;
        Ok(match keep {
            Some(keep) => out.broadcast_mul(keep)?,
            None => out,
        })
    }
}

/// `ContextPooler` (`pooler`): the first token through `dense` and `pooler_hidden_act`.
#[derive(Debug)]
pub struct ContextPooler {
    dense: Linear,
    activation: Activation,
}

impl ContextPooler {
    /// `vb` is `pooler`.
    pub fn load(vb: VarBuilder<'_>, spec: &DebertaSpec) -> Result<Self> {
        let h = spec.hidden_size;
        Ok(Self { dense: linear(h, h, vb.pp("dense"))?, activation: spec.pooler_hidden_act })
    }

    /// `[B, T, hidden]` to `[B, hidden]`.
    pub fn forward(&self, hidden: &Tensor) -> Result<Tensor> {
        let first = hidden.narrow(1, 0, 1)?.squeeze(1)?;
        self.activation.forward(&self.dense.forward(&first)?)
    }
}

/// The DeBERTa encoder (`DebertaV2Model`, `DebertaModel`): the network under every head, with
/// the `ContextPooler` of the classification heads when they load one (its `pooled` output).
#[derive(Debug)]
pub struct DebertaModel {
    embeddings: Embeddings,
    layers: Vec<Layer>,
    rel_embeddings: Option<Tensor>,
    rel_norm: Option<LayerNorm>,
    conv: Option<ConvLayer>,
    pooler: Option<ContextPooler>,
    spec: DebertaSpec,
    device: Device,
    dtype: DType,
}

impl DebertaModel {
    /// Build from weights named as `transformers`' `DebertaV2Model` / `DebertaModel` state dict
    /// (`embeddings.*`, `encoder.layer.N.*`, `encoder.rel_embeddings`, `encoder.LayerNorm`,
    /// `encoder.conv.*`).
    pub fn new(vb: VarBuilder<'_>, spec: &DebertaSpec) -> Result<Self> {
        let embeddings = Embeddings::load(vb.pp("embeddings"), spec)?;
        let enc = vb.pp("encoder");
        let layers = (0..spec.num_layers)
            .map(|i| Layer::load(enc.pp(format!("layer.{i}")), spec))
            .collect::<Result<Vec<_>>>()?;
        let (rel_embeddings, rel_norm) = match &spec.relative {
            Some(rel) => {
                let table = enc.get((2 * rel.span, spec.hidden_size), "rel_embeddings.weight")?;
                let norm = if rel.norm_rel_ebd {
                    Some(layer_norm(spec.hidden_size, spec.layer_norm_eps, enc.pp("LayerNorm"))?)
                } else {
                    None
                };
                (Some(table), norm)
            }
            None => (None, None),
        };
        let conv = match spec.conv {
            Some(conv) => Some(ConvLayer::load(enc.pp("conv"), spec, conv)?),
            None => None,
        };
        Ok(Self {
            embeddings,
            layers,
            rel_embeddings,
            rel_norm,
            conv,
            pooler: None,
            spec: spec.clone(),
            device: vb.device().clone(),
            dtype: vb.dtype(),
        })
    }

    /// The model with `pooler` as its `ContextPooler` (`pooler_output`).
    pub fn with_pooler(mut self, pooler: ContextPooler) -> Self {
        self.pooler = Some(pooler);
        self
    }

    /// The checked spec the model was built from.
    pub fn spec(&self) -> &DebertaSpec {
        &self.spec
    }

    /// The word embedding matrix, `[vocab_size, embedding_size]`.
    pub fn word_embeddings(&self) -> &Tensor {
        self.embeddings.word_embeddings.embeddings()
    }

    /// The checked forward pass shared by every head: `last_hidden_state`, and
    /// `pooler_output` when the model has a pooler.
    pub fn run(&self, inputs: &ModelInputs) -> Result<BaseModelOutput> {
        let spec = &self.spec;
        let input_ids = inputs.input_ids()?;
        let (batch, seq) = dims2_int(input_ids, "input_ids")?;
        let max = spec.max_position_embeddings;
        let position_ids = match (&inputs.position_ids, spec.position_biased_input) {
            (Some(p), true) => Some(checked_position_ids(p, (batch, seq), max, "max_position_embeddings")?),
            (None, true) if seq > max => return Err(Error::SequenceTooLong { len: seq, max }),
            _ => None,
        };
        let input_ids = ids_in_range(input_ids, "input_ids", spec.vocab_size)?;
        let token_type_ids = match (&inputs.token_type_ids, spec.type_vocab_size) {
            (Some(t), types) if types > 0 => {
                require_int(t, "token_type_ids")?;
                require_shape(t, "token_type_ids", &[batch, seq], "`input_ids`")?;
                Some(ids_in_range(t, "token_type_ids", types)?)
            }
            // Without a token type table `transformers` ignores them.
            _ => None,
        };
        let (keep, mask) = match &inputs.attention_mask {
            Some(m) => {
                require_shape(m, "attention_mask", &[batch, seq], "`input_ids`")?;
                let keep = m.ne(0u32)?.to_dtype(DType::F32)?;
                // Query i attends to key j when both are tokens (`get_attention_mask`); a
                // padding query sees every key masked alike, hence uniform attention.
                // Head-major: `[1, B, T, T]`, as the attention's `[H, B, T, T]` scores.
                let pair = keep.reshape((1, batch, seq, 1))?.broadcast_mul(&keep.reshape((1, batch, 1, seq))?)?;
                let additive = pair.affine(f64::from(f32::MAX), f64::from(f32::MIN))?;
                (Some(keep.reshape((batch, seq, 1))?.to_dtype(self.dtype)?), Some(additive))
            }
            None => (None, None),
        };
        let embedded =
            self.embeddings.forward(&input_ids, token_type_ids.as_ref(), position_ids.as_ref(), keep.as_ref())?;
        let relative = match (&spec.relative, &self.rel_embeddings) {
            (Some(rel), Some(table)) => {
                let index = RelativeIndex::new(seq, rel, &self.device)?;
                let rows = table.narrow(0, index.first, index.rows.max(1))?;
                let rows = match &self.rel_norm {
                    Some(norm) => norm.forward(&rows)?,
                    None => rows,
                };
                Some((rows, index))
            }
            _ => None,
        };
        let rel = relative.as_ref().filter(|(_, index)| index.rows > 0).map(|(rows, index)| (rows, index));
        let mut hidden = embedded.clone();
        for (i, layer) in self.layers.iter().enumerate() {
            hidden = layer.forward(&hidden, mask.as_ref(), rel)?;
            if i == 0 {
                if let Some(conv) = &self.conv {
                    hidden = conv.forward(&embedded, &hidden, keep.as_ref())?;
                }
            }
        }
        let pooled = match &self.pooler {
            Some(pooler) => Some(pooler.forward(&hidden)?),
            None => None,
        };
        Ok(BaseModelOutput::new(hidden, pooled))
    }
}

impl PreTrainedModel for DebertaModel {
    fn device(&self) -> &Device {
        &self.device
    }

    fn dtype(&self) -> DType {
        self.dtype
    }
}

impl Encoder for DebertaModel {
    fn encode(&self, inputs: &ModelInputs) -> Result<BaseModelOutput> {
        self.run(inputs)
    }

    fn hidden_size(&self) -> usize {
        self.spec.hidden_size
    }

    fn pooled(&self, output: BaseModelOutput) -> Result<Tensor> {
        output.pooler_output.ok_or_else(|| {
            Error::Unsupported(format!("this `{}` model has no pooler (`pooler.dense`)", self.spec.model_type))
        })
    }
}

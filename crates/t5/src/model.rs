//! The T5 network after `modeling_t5.py`: `T5LayerNorm`, `T5Attention` with relative
//! position buckets, the (gated) feed-forward layer, `T5Block`, `T5Stack`, and the
//! encoder-decoder of `T5Model` with its incremental decoder on a [`Seq2SeqCache`].

use autocandle_core::heads::same_values;
use autocandle_core::nn::{linear_no_bias, Linear};
use candle_core::{DType, Device, Module, Tensor, D};
use candle_nn::{Embedding, Init, VarBuilder};

use autocandle_core::{Activation, EncoderOutput, Error, ModelInputs, Result, Seq2SeqCache};

use crate::config::T5Spec;
use crate::inputs::{causal_mask, dims2_int, ids_in_range, padding_mask, require_shape, score_dtype};

/// The bucket of a relative position `memory - query` (`T5Attention._relative_position_bucket`).
///
/// Half of a direction's buckets hold the exact distances below `num_buckets / 2` (per
/// direction), the other half logarithmically wider bins up to `max_distance`, beyond which
/// every distance shares the last bucket. Bidirectional (encoder) attention gives positive
/// and negative distances a half of the buckets each; unidirectional (decoder) attention maps
/// every future position to bucket 0. The logarithm is taken in f32, as `transformers` does,
/// so that the bins fall exactly where they fall there.
pub fn relative_position_bucket(
    relative_position: i64,
    bidirectional: bool,
    num_buckets: usize,
    max_distance: usize,
) -> u32 {
    let mut num_buckets = num_buckets as i64;
    let mut bucket = 0i64;
    let distance = if bidirectional {
        num_buckets /= 2;
        if relative_position > 0 {
            bucket += num_buckets;
        }
        relative_position.abs()
    } else {
        -relative_position.min(0)
    };
    let max_exact = num_buckets / 2;
    if distance < max_exact {
        bucket += distance;
    } else {
        let log_ratio = (max_distance as f64 / max_exact as f64).ln() as f32;
        let scaled = (distance as f32 / max_exact as f32).ln() / log_ratio * (num_buckets - max_exact) as f32;
        // `.to(torch.long)` truncates toward zero; `as` saturates where torch would overflow.
        bucket += (max_exact + scaled as i64).min(num_buckets - 1);
    }
    bucket.max(0) as u32
}

/// `T5LayerNorm`: RMS normalisation without mean or bias, computed in f32.
#[derive(Debug, Clone)]
struct T5LayerNorm {
    weight: Tensor,
    eps: f64,
}

impl T5LayerNorm {
    fn load(vb: VarBuilder<'_>, size: usize, eps: f64) -> Result<Self> {
        Ok(Self { weight: vb.get_with_hints(size, "weight", Init::Const(1.0))?, eps })
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let x = x.to_dtype(DType::F32)?;
        let variance = x.sqr()?.mean_keepdim(D::Minus1)?;
        let normed = x.broadcast_mul(&(variance + self.eps)?.sqrt()?.recip()?)?;
        Ok(normed.to_dtype(self.weight.dtype())?.broadcast_mul(&self.weight)?)
    }
}

/// `a + b`, in f32 when one of them is (the residual stream of half-precision T5 turns f32
/// after the first feed-forward layer, whose `wo` `transformers` keeps in f32).
fn add_promote(a: &Tensor, b: &Tensor) -> Result<Tensor> {
    if a.dtype() == b.dtype() {
        Ok((a + b)?)
    } else {
        Ok((a.to_dtype(DType::F32)? + b.to_dtype(DType::F32)?)?)
    }
}

/// `T5Block`'s clamp of f16 hidden states that overflowed to infinity.
fn clamp_inf(x: Tensor) -> Result<Tensor> {
    if x.dtype() != DType::F16 {
        return Ok(x);
    }
    let largest = x.abs()?.to_dtype(DType::F32)?.max_all()?.to_scalar::<f32>()?;
    if largest.is_infinite() {
        let limit = 65504.0 - 1000.0;
        Ok(x.clamp(-limit, limit)?)
    } else {
        Ok(x)
    }
}

/// `T5Attention`: multi-head attention without scaling of the scores, with the relative
/// position bias in the first layer of each stack (`relative_attention_bias`).
#[derive(Debug, Clone)]
struct T5Attention {
    q: Linear,
    k: Linear,
    v: Linear,
    o: Linear,
    num_heads: usize,
    d_kv: usize,
    relative_attention_bias: Option<Embedding>,
    bidirectional: bool,
    num_buckets: usize,
    max_distance: usize,
}

impl T5Attention {
    fn load(vb: VarBuilder<'_>, spec: &T5Spec, has_relative_bias: bool, bidirectional: bool) -> Result<Self> {
        let (d_model, inner) = (spec.d_model, spec.inner_dim());
        let relative_attention_bias = if has_relative_bias {
            let weight = vb.get_with_hints(
                (spec.relative_attention_num_buckets, spec.num_heads),
                "relative_attention_bias.weight",
                Init::Randn { mean: 0.0, stdev: (d_model as f64).powf(-0.5) },
            )?;
            Some(Embedding::new(weight, spec.num_heads))
        } else {
            None
        };
        Ok(Self {
            q: linear_no_bias(d_model, inner, vb.pp("q"))?,
            k: linear_no_bias(d_model, inner, vb.pp("k"))?,
            v: linear_no_bias(d_model, inner, vb.pp("v"))?,
            o: linear_no_bias(inner, d_model, vb.pp("o"))?,
            num_heads: spec.num_heads,
            d_kv: spec.d_kv,
            relative_attention_bias,
            bidirectional,
            num_buckets: spec.relative_attention_num_buckets,
            max_distance: spec.relative_attention_max_distance,
        })
    }

    /// `[1, heads, q_len, k_len]` (`compute_bias`): the bias of query `past + i` for key `j`,
    /// in `dtype`; `None` in layers without a relative bias.
    fn compute_bias(&self, q_len: usize, k_len: usize, past: usize, dtype: DType) -> Result<Option<Tensor>> {
        let Some(table) = &self.relative_attention_bias else {
            return Ok(None);
        };
        let buckets: Vec<u32> = (0..q_len)
            .flat_map(|q| {
                (0..k_len).map(move |k| {
                    let relative = k as i64 - (q + past) as i64;
                    relative_position_bucket(relative, self.bidirectional, self.num_buckets, self.max_distance)
                })
            })
            .collect();
        let buckets = Tensor::from_vec(buckets, q_len * k_len, table.embeddings().device())?;
        let values = table.forward(&buckets)?.reshape((q_len, k_len, self.num_heads))?;
        Ok(Some(values.permute((2, 0, 1))?.unsqueeze(0)?.to_dtype(dtype)?.contiguous()?))
    }

    /// `x` `[batch, seq, d_model]` projected by `proj` to `[batch, heads, seq, d_kv]`.
    fn heads(&self, proj: &Linear, x: &Tensor) -> Result<Tensor> {
        let (batch, seq, _) = x.dims3()?;
        Ok(proj.forward(x)?.reshape((batch, seq, self.num_heads, self.d_kv))?.transpose(1, 2)?.contiguous()?)
    }

    /// Keys and values of `x` (`[batch, heads, seq, d_kv]` each).
    fn key_values(&self, x: &Tensor) -> Result<(Tensor, Tensor)> {
        Ok((self.heads(&self.k, x)?, self.heads(&self.v, x)?))
    }

    /// Attention of the queries of `x` over `k`/`v`; `bias` is the position bias and mask,
    /// additive, broadcastable to `[batch, heads, q_len, k_len]`, in the score dtype.
    fn attend(&self, x: &Tensor, k: &Tensor, v: &Tensor, bias: Option<&Tensor>) -> Result<Tensor> {
        let (batch, seq, _) = x.dims3()?;
        let q = self.heads(&self.q, x)?;
        let dtype = q.dtype();
        // T5 folds the scale into its initialisation: the scores are not divided by sqrt(d_kv).
        let probs =
            autocandle_core::kernels::masked_softmax(&autocandle_core::kernels::matmul(&q, &k.t()?)?, 1.0, bias)?
                .to_dtype(dtype)?;
        let context = autocandle_core::kernels::matmul(&probs, v)?.transpose(1, 2)?.reshape((
            batch,
            seq,
            self.num_heads * self.d_kv,
        ))?;
        Ok(self.o.forward(&context)?)
    }
}

/// The first projection(s) of the feed-forward layer.
#[derive(Debug, Clone)]
enum DenseIn {
    /// `T5DenseActDense`: `wi`.
    Plain(Linear),
    /// `T5DenseGatedActDense`: `act(wi_0(x)) * wi_1(x)`.
    Gated(Linear, Linear),
}

/// `T5LayerFF`: pre-norm feed-forward layer with a residual connection.
#[derive(Debug, Clone)]
struct T5LayerFF {
    input: DenseIn,
    wo: Linear,
    activation: Activation,
    layer_norm: T5LayerNorm,
}

impl T5LayerFF {
    fn load(vb: VarBuilder<'_>, spec: &T5Spec) -> Result<Self> {
        let dense = vb.pp("DenseReluDense");
        let (d_model, d_ff) = (spec.d_model, spec.d_ff);
        let input = if spec.gated {
            DenseIn::Gated(
                linear_no_bias(d_model, d_ff, dense.pp("wi_0"))?,
                linear_no_bias(d_model, d_ff, dense.pp("wi_1"))?,
            )
        } else {
            DenseIn::Plain(linear_no_bias(d_model, d_ff, dense.pp("wi"))?)
        };
        // `_keep_in_fp32_modules = ["wo"]`: `transformers` keeps `wo` in f32 for f16 models.
        let wo_vb = dense.pp("wo");
        let wo_vb = if wo_vb.dtype() == DType::F16 { wo_vb.set_dtype(DType::F32) } else { wo_vb };
        Ok(Self {
            input,
            wo: linear_no_bias(d_ff, d_model, wo_vb)?,
            activation: spec.activation,
            layer_norm: T5LayerNorm::load(vb.pp("layer_norm"), d_model, spec.layer_norm_epsilon)?,
        })
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let h = self.layer_norm.forward(x)?;
        let inner = match &self.input {
            DenseIn::Plain(wi) => self.activation.forward(&wi.forward(&h)?)?,
            DenseIn::Gated(wi_0, wi_1) => (self.activation.forward(&wi_0.forward(&h)?)? * wi_1.forward(&h)?)?,
        };
        let out = self.wo.forward(&inner.to_dtype(self.wo.dtype())?)?;
        add_promote(x, &out)
    }
}

/// `T5Block`: self-attention (`layer.0`), cross-attention in the decoder (`layer.1`), and the
/// feed-forward layer (`layer.1` / `layer.2`).
#[derive(Debug, Clone)]
struct T5Block {
    self_attention: T5Attention,
    self_norm: T5LayerNorm,
    cross: Option<(T5Attention, T5LayerNorm)>,
    ff: T5LayerFF,
}

impl T5Block {
    fn load(vb: VarBuilder<'_>, spec: &T5Spec, is_decoder: bool, index: usize) -> Result<Self> {
        let layer = vb.pp("layer");
        let eps = spec.layer_norm_epsilon;
        let self_layer = layer.pp("0");
        let cross = if is_decoder {
            let cross_layer = layer.pp("1");
            Some((
                T5Attention::load(cross_layer.pp("EncDecAttention"), spec, false, true)?,
                T5LayerNorm::load(cross_layer.pp("layer_norm"), spec.d_model, eps)?,
            ))
        } else {
            None
        };
        Ok(Self {
            self_attention: T5Attention::load(self_layer.pp("SelfAttention"), spec, index == 0, !is_decoder)?,
            self_norm: T5LayerNorm::load(self_layer.pp("layer_norm"), spec.d_model, eps)?,
            cross,
            ff: T5LayerFF::load(layer.pp(if is_decoder { "2" } else { "1" }), spec)?,
        })
    }

    /// One block. `self_bias`: position bias and mask of the self-attention; `cross`: the
    /// encoder output with its mask (decoder blocks); `cache`: the decoder's cache, with this
    /// block's index.
    fn forward(
        &self,
        x: &Tensor,
        self_bias: Option<&Tensor>,
        cross: Option<(&Tensor, Option<&Tensor>)>,
        cache: Option<(&mut Seq2SeqCache, usize)>,
    ) -> Result<Tensor> {
        let h = self.self_norm.forward(x)?;
        let (k, v) = self.self_attention.key_values(&h)?;
        let (k, v, mut cache) = match cache {
            Some((cache, index)) => {
                let (k, v) = cache.self_attention.append(index, &k, &v)?;
                (k, v, Some((cache, index)))
            }
            None => (k, v, None),
        };
        let attended = self.self_attention.attend(&h, &k, &v, self_bias)?;
        let mut x = clamp_inf(add_promote(x, &attended)?)?;
        if let (Some((attention, norm)), Some((encoder, encoder_mask))) = (&self.cross, cross) {
            let h = norm.forward(&x)?;
            let (k, v) = match cache.as_mut() {
                Some((cache, index)) => cache.cross_attention(*index, || attention.key_values(encoder))?,
                None => attention.key_values(encoder)?,
            };
            let attended = attention.attend(&h, &k, &v, encoder_mask)?;
            x = clamp_inf(add_promote(&x, &attended)?)?;
        }
        clamp_inf(self.ff.forward(&x)?)
    }
}

/// `T5Stack`: embeddings (shared with the other stack), blocks, final norm.
#[derive(Debug, Clone)]
struct T5Stack {
    embed_tokens: Embedding,
    blocks: Vec<T5Block>,
    final_layer_norm: T5LayerNorm,
}

/// `name` from the checkpoint when it holds it with values other than `shared` (then
/// `transformers` leaves the two untied), else `shared`.
pub(crate) fn tied_or_own(vb: &VarBuilder<'_>, name: &str, shared: &Tensor) -> Result<Tensor> {
    if !vb.contains_tensor(name) {
        return Ok(shared.clone());
    }
    let own = vb.get(shared.dims(), name)?;
    Ok(if same_values(&own, shared)? { shared.clone() } else { own })
}

impl T5Stack {
    fn load(vb: VarBuilder<'_>, spec: &T5Spec, shared: &Tensor, is_decoder: bool) -> Result<Self> {
        let layers = if is_decoder { spec.num_decoder_layers } else { spec.num_layers };
        let embed = tied_or_own(&vb, "embed_tokens.weight", shared)?;
        let blocks = (0..layers)
            .map(|i| T5Block::load(vb.pp("block").pp(i.to_string()), spec, is_decoder, i))
            .collect::<Result<Vec<_>>>()?;
        Ok(Self {
            embed_tokens: Embedding::new(embed, spec.d_model),
            blocks,
            final_layer_norm: T5LayerNorm::load(vb.pp("final_layer_norm"), spec.d_model, spec.layer_norm_epsilon)?,
        })
    }

    /// The position bias of the first block for `q_len` queries after `past` positions over
    /// `past + q_len` keys, plus `mask`.
    fn self_bias(&self, q_len: usize, past: usize, mask: Option<Tensor>, dtype: DType) -> Result<Option<Tensor>> {
        let bias = match self.blocks.first() {
            Some(block) => block.self_attention.compute_bias(q_len, past + q_len, past, dtype)?,
            None => None,
        };
        Ok(match (bias, mask) {
            (Some(bias), Some(mask)) => Some(bias.broadcast_add(&mask)?),
            (bias, None) => bias,
            (None, mask) => mask,
        })
    }

    /// The encoder stack on `ids` (`u32` `[batch, seq]`) with the 0/1 `mask`.
    fn encode(&self, ids: &Tensor, mask: Option<&Tensor>) -> Result<Tensor> {
        let seq = ids.dim(1)?;
        let mut x = self.embed_tokens.forward(ids)?;
        let dtype = score_dtype(x.dtype());
        let padding = mask.map(|m| padding_mask(m, dtype)).transpose()?;
        let bias = self.self_bias(seq, 0, padding, dtype)?;
        for block in &self.blocks {
            x = block.forward(&x, bias.as_ref(), None, None)?;
        }
        self.final_layer_norm.forward(&x)
    }

    /// The decoder stack on the new `ids` (`u32` `[batch, new]`) after `past` cached ones;
    /// `mask` covers `[batch, past + new]`.
    fn decode(
        &self,
        ids: &Tensor,
        mask: Option<&Tensor>,
        encoder: &Tensor,
        encoder_mask: Option<&Tensor>,
        mut cache: Option<&mut Seq2SeqCache>,
    ) -> Result<Tensor> {
        let new = ids.dim(1)?;
        let past = cache.as_ref().map_or(0, |c| c.seq_len());
        let mut x = self.embed_tokens.forward(ids)?;
        let dtype = score_dtype(x.dtype());
        let causal = causal_mask(new, past, dtype, x.device())?;
        let self_mask = match mask {
            // Both are 0 or the minimum, so their minimum is the intersection (a sum overflows).
            Some(mask) => padding_mask(mask, dtype)?.broadcast_minimum(&causal)?,
            None => causal,
        };
        let self_bias = self.self_bias(new, past, Some(self_mask), dtype)?;
        let cross_mask = encoder_mask.map(|m| padding_mask(m, dtype)).transpose()?;
        for (index, block) in self.blocks.iter().enumerate() {
            let layer_cache = cache.as_deref_mut().map(|c| (c, index));
            x = block.forward(&x, self_bias.as_ref(), Some((encoder, cross_mask.as_ref())), layer_cache)?;
        }
        self.final_layer_norm.forward(&x)
    }
}

/// The shared embedding matrix `shared.weight`; checkpoints without it may hold it under the
/// names it is tied to (`transformers` then ties the other way round).
pub(crate) fn load_shared(vb: &VarBuilder<'_>, spec: &T5Spec, tied_names: &[&str]) -> Result<Tensor> {
    let shape = (spec.vocab_size, spec.d_model);
    let mut name = "shared.weight";
    if !vb.contains_tensor(name) {
        let others = ["encoder.embed_tokens.weight", "decoder.embed_tokens.weight"];
        if let Some(other) = others.iter().chain(tied_names).find(|n| vb.contains_tensor(n)) {
            name = other;
        }
    }
    Ok(vb.get_with_hints(shape, name, Init::Randn { mean: 0.0, stdev: 1.0 })?)
}

/// The encoder of `T5EncoderModel`: `shared` and `encoder.*`.
#[derive(Debug, Clone)]
pub struct T5EncoderStack {
    encoder: T5Stack,
    spec: T5Spec,
    device: Device,
    dtype: DType,
}

impl T5EncoderStack {
    /// Load `shared` and `encoder.*` from `vb`.
    pub fn load(vb: VarBuilder<'_>, spec: &T5Spec) -> Result<Self> {
        let shared = load_shared(&vb, spec, &[])?;
        Self::with_shared(vb.pp("encoder"), spec, &shared)
    }

    /// Load the encoder stack from `vb` (`encoder.*`) on the `shared` embeddings.
    fn with_shared(vb: VarBuilder<'_>, spec: &T5Spec, shared: &Tensor) -> Result<Self> {
        Ok(Self {
            encoder: T5Stack::load(vb, spec, shared, false)?,
            spec: spec.clone(),
            device: shared.device().clone(),
            dtype: shared.dtype(),
        })
    }

    /// The resolved config.
    pub fn spec(&self) -> &T5Spec {
        &self.spec
    }

    /// The device the weights are on.
    pub fn device(&self) -> &Device {
        &self.device
    }

    /// The dtype of the floating-point weights.
    pub fn dtype(&self) -> DType {
        self.dtype
    }

    /// The encoder's last hidden state `[batch, seq, d_model]` for `input_ids` and
    /// `attention_mask`, with the mask as given.
    pub fn encode(&self, inputs: &ModelInputs) -> Result<EncoderOutput> {
        let input_ids = inputs.input_ids.as_ref().ok_or_else(|| {
            Error::input("`input_ids` is required: the encoder reads the source tokens (`input_ids`, `attention_mask`)")
        })?;
        let (batch, seq) = dims2_int(input_ids, "input_ids")?;
        check_attention_size(batch, self.spec.num_heads, seq, seq, "input_ids")?;
        let ids = ids_in_range(input_ids, "input_ids", self.spec.vocab_size)?;
        if let Some(mask) = &inputs.attention_mask {
            require_shape(mask, "attention_mask", &[batch, seq], "`input_ids`")?;
        }
        let hidden = self.encoder.encode(&ids, inputs.attention_mask.as_ref())?;
        Ok(EncoderOutput { last_hidden_state: hidden, attention_mask: inputs.attention_mask.clone() })
    }
}

/// The encoder-decoder of `T5Model`: `shared`, `encoder.*`, `decoder.*`.
#[derive(Debug, Clone)]
pub struct T5EncoderDecoder {
    encoder: T5EncoderStack,
    decoder: T5Stack,
    shared: Tensor,
}

impl T5EncoderDecoder {
    /// Load `shared`, `encoder.*` and `decoder.*` from `vb`; `tied_names` are further names
    /// the embeddings may be saved under (`lm_head.weight`).
    pub fn load(vb: VarBuilder<'_>, spec: &T5Spec, tied_names: &[&str]) -> Result<Self> {
        let shared = load_shared(&vb, spec, tied_names)?;
        let encoder = T5EncoderStack::with_shared(vb.pp("encoder"), spec, &shared)?;
        let decoder = T5Stack::load(vb.pp("decoder"), spec, &shared, true)?;
        Ok(Self { encoder, decoder, shared })
    }

    /// The resolved config.
    pub fn spec(&self) -> &T5Spec {
        self.encoder.spec()
    }

    /// The device the weights are on.
    pub fn device(&self) -> &Device {
        self.encoder.device()
    }

    /// The dtype of the floating-point weights.
    pub fn dtype(&self) -> DType {
        self.encoder.dtype()
    }

    /// The encoder, alone.
    pub fn encoder(&self) -> &T5EncoderStack {
        &self.encoder
    }

    /// The shared embedding matrix `[vocab_size, d_model]`.
    pub fn shared(&self) -> &Tensor {
        &self.shared
    }

    /// Run the encoder on `input_ids` / `attention_mask`.
    pub fn encode(&self, inputs: &ModelInputs) -> Result<EncoderOutput> {
        self.encoder.encode(inputs)
    }

    /// The decoder's last hidden state `[batch, new, d_model]` for `decoder_input_ids`
    /// (`[batch, new]`) attending to `encoder`. With `cache`, the ids follow the
    /// `cache.seq_len()` cached positions and `decoder_attention_mask`, when given, covers
    /// the cached and the new positions.
    pub fn decode(
        &self,
        decoder_input_ids: &Tensor,
        decoder_attention_mask: Option<&Tensor>,
        encoder: &EncoderOutput,
        cache: Option<&mut Seq2SeqCache>,
    ) -> Result<Tensor> {
        let spec = self.spec();
        let (batch, new) = dims2_int(decoder_input_ids, "decoder_input_ids")?;
        let ids = ids_in_range(decoder_input_ids, "decoder_input_ids", spec.vocab_size)?;
        let hidden = &encoder.last_hidden_state;
        let dims = hidden.dims();
        if dims.len() != 3 || dims[0] != batch || dims[2] != spec.d_model {
            return Err(Error::input(format!(
                "the encoder output has shape {dims:?}, but `decoder_input_ids` has {batch} rows and the model \
                 {} features: expected [{batch}, source_seq, {}]",
                spec.d_model, spec.d_model
            )));
        }
        if let Some(mask) = &encoder.attention_mask {
            require_shape(mask, "the encoder's attention_mask", &[batch, dims[1]], "its hidden states")?;
        }
        let past = match &cache {
            Some(cache) => cached_len(cache, batch)?,
            None => 0,
        };
        check_attention_size(batch, spec.num_heads, new, past + new.max(dims[1]), "decoder_input_ids")?;
        if let Some(mask) = decoder_attention_mask {
            let like = if past > 0 { "the cached plus the new decoder tokens" } else { "`decoder_input_ids`" };
            require_shape(mask, "decoder_attention_mask", &[batch, past + new], like)?;
        }
        let hidden = hidden.to_dtype(self.dtype())?;
        self.decoder.decode(&ids, decoder_attention_mask, &hidden, encoder.attention_mask.as_ref(), cache)
    }

    /// Encoder and decoder on whole sequences (`input_ids`, `attention_mask`,
    /// `decoder_input_ids`, `decoder_attention_mask`): the decoder's last hidden state and
    /// the encoder output.
    pub fn forward(&self, inputs: &ModelInputs, class: &str) -> Result<(Tensor, EncoderOutput)> {
        let encoder = self.encode(inputs)?;
        let decoder_input_ids = inputs.decoder_input_ids.as_ref().ok_or_else(|| {
            let start = match self.spec().decoder_start_token_id {
                Some(id) => format!("`decoder_start_token_id` {id}"),
                None => "`decoder_start_token_id`".to_owned(),
            };
            Error::input(format!(
                "`decoder_input_ids` is required: {class} runs its decoder on the target tokens (teacher forcing); \
                 give the target shifted right by one, starting with {start} (transformers makes them from \
                 `labels`), or generate"
            ))
        })?;
        let hidden = self.decode(decoder_input_ids, inputs.decoder_attention_mask.as_ref(), &encoder, None)?;
        Ok((hidden, encoder))
    }

    /// `_shift_right(input_ids)`: the decoder input made from `input_ids`, starting with
    /// `decoder_start_token_id` (the sequence classification and question answering heads
    /// use it when no `decoder_input_ids` are given).
    pub fn shift_right(&self, input_ids: &Tensor, class: &str) -> Result<Tensor> {
        let spec = self.spec();
        let Some(start) = spec.decoder_start_token_id else {
            return Err(Error::config(
                spec.model_type,
                format!(
                    "{class} without `decoder_input_ids` starts its decoder input with `decoder_start_token_id`, \
                     which the config does not set: set it (T5 uses the pad token, 0) or give `decoder_input_ids`"
                ),
            ));
        };
        if spec.pad_token_id.is_none() {
            return Err(Error::config(
                spec.model_type,
                format!("{class} without `decoder_input_ids` needs `pad_token_id` in the config"),
            ));
        }
        let (batch, seq) = dims2_int(input_ids, "input_ids")?;
        let ids = input_ids.to_dtype(DType::I64)?;
        let first = Tensor::full(start, (batch, 1), ids.device())?;
        if seq == 1 {
            return Ok(first);
        }
        Ok(Tensor::cat(&[&first, &ids.narrow(1, 0, seq - 1)?], 1)?)
    }
}

/// The number of positions in `cache`, checking that it was filled for `batch` rows.
fn cached_len(cache: &Seq2SeqCache, batch: usize) -> Result<usize> {
    match cache.self_attention.get(0) {
        Some((k, _)) if k.dim(0)? != batch => Err(Error::input(format!(
            "the decoder cache holds {} rows but `decoder_input_ids` has {batch}; use one cache per batch (or \
             `select_rows` to follow beams)",
            k.dim(0)?
        ))),
        _ => Ok(cache.seq_len()),
    }
}

/// The most attention scores (`batch x heads x queries x keys`) one attention call may hold:
/// 2^30, 4 GiB in f32.
const MAX_ATTENTION_SCORES: usize = 1 << 30;

/// T5 has no position limit, so nothing else bounds the input: refuse an input whose attention
/// scores would not fit in [`MAX_ATTENTION_SCORES`] before computing them, with the size it
/// would take.
fn check_attention_size(batch: usize, heads: usize, queries: usize, keys: usize, input: &str) -> Result<()> {
    let scores = batch.saturating_mul(heads).saturating_mul(queries).saturating_mul(keys);
    if scores > MAX_ATTENTION_SCORES {
        return Err(Error::input(format!(
            "`{input}` is too long: T5 has no position limit, but attending over {keys} positions for {queries} \
             tokens in {batch} row(s) would take {} GiB of attention scores (at most {} GiB): split or truncate the \
             input (`truncation` with a `max_length`)",
            scores.saturating_mul(4) >> 30,
            (MAX_ATTENTION_SCORES * 4) >> 30
        )));
    }
    Ok(())
}

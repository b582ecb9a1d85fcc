//! The BART encoder-decoder (`BartModel`): shared token embeddings, learned positions with
//! an offset of 2, post-LayerNorm encoder and decoder layers, and the decoder's key/value
//! cache for incremental decoding.

use autocandle_core::heads::same_values;
use autocandle_core::nn::{linear, Linear};
use candle_core::{DType, Device, Module, Tensor};
use candle_nn::{embedding, layer_norm, Embedding, Init, LayerNorm, VarBuilder};

use autocandle_core::{
    Activation, AutoRegister, BaseModelOutput, EncoderOutput, Error, LoadModel, Model, ModelInputs, PreTrainedModel,
    Result, Seq2SeqCache,
};

use crate::config::BartConfig;
use crate::inputs::{decoder_self_mask, dims2_int, ids_in_range, padding_mask, require_shape, shift_tokens_right};

/// `BartLearnedPositionalEmbedding.offset`: position `p` reads row `p + 2`.
const POSITION_OFFSET: usize = 2;

/// The dtype attention scores are softmaxed in: f32 for half-precision models, else the
/// model's own.
fn softmax_dtype(dtype: DType) -> DType {
    match dtype {
        DType::F16 | DType::BF16 => DType::F32,
        other => other,
    }
}

/// `BartAttention`: multi-head attention with separate `q_proj`, `k_proj`, `v_proj` and
/// `out_proj` (all with bias); self-attention or cross-attention over encoder states.
#[derive(Debug)]
struct BartAttention {
    q_proj: Linear,
    k_proj: Linear,
    v_proj: Linear,
    out_proj: Linear,
    num_heads: usize,
    head_dim: usize,
    scaling: f64,
}

impl BartAttention {
    fn load(vb: VarBuilder<'_>, embed_dim: usize, num_heads: usize) -> Result<Self> {
        let head_dim = embed_dim / num_heads;
        Ok(Self {
            q_proj: linear(embed_dim, embed_dim, vb.pp("q_proj"))?,
            k_proj: linear(embed_dim, embed_dim, vb.pp("k_proj"))?,
            v_proj: linear(embed_dim, embed_dim, vb.pp("v_proj"))?,
            out_proj: linear(embed_dim, embed_dim, vb.pp("out_proj"))?,
            num_heads,
            head_dim,
            scaling: (head_dim as f64).powf(-0.5),
        })
    }

    /// `[B, T, D]` to `[B, heads, T, head_dim]`.
    fn split_heads(&self, x: &Tensor) -> Result<Tensor> {
        let (batch, seq, _) = x.dims3()?;
        Ok(x.reshape((batch, seq, self.num_heads, self.head_dim))?.transpose(1, 2)?.contiguous()?)
    }

    /// Keys and values `[B, heads, S, head_dim]` of `states` `[B, S, D]`.
    fn key_values(&self, states: &Tensor) -> Result<(Tensor, Tensor)> {
        Ok((self.split_heads(&self.k_proj.forward(states)?)?, self.split_heads(&self.v_proj.forward(states)?)?))
    }

    /// Attend from `x` `[B, T, D]` over `k`/`v` `[B, heads, S, head_dim]`; `mask` additive
    /// in the score dtype, broadcastable to `[B, heads, T, S]`.
    fn attend(&self, x: &Tensor, k: &Tensor, v: &Tensor, mask: Option<&Tensor>) -> Result<Tensor> {
        let (batch, seq, embed_dim) = x.dims3()?;
        let q = self.split_heads(&self.q_proj.forward(x)?)?;
        let dtype = q.dtype();
        let probs = autocandle_core::kernels::masked_softmax(
            &autocandle_core::kernels::matmul(&q, &k.t()?)?,
            self.scaling,
            mask,
        )?
        .to_dtype(dtype)?;
        let context = autocandle_core::kernels::matmul(&probs, v)?.transpose(1, 2)?.reshape((batch, seq, embed_dim))?;
        Ok(self.out_proj.forward(&context)?)
    }
}

/// The feed-forward block of a layer: `fc1`, activation, `fc2`.
#[derive(Debug)]
struct FeedForward {
    fc1: Linear,
    fc2: Linear,
    activation: Activation,
}

impl FeedForward {
    fn load(vb: &VarBuilder<'_>, embed_dim: usize, ffn_dim: usize, activation: Activation) -> Result<Self> {
        Ok(Self {
            fc1: linear(embed_dim, ffn_dim, vb.pp("fc1"))?,
            fc2: linear(ffn_dim, embed_dim, vb.pp("fc2"))?,
            activation,
        })
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let h = self.activation.forward(&self.fc1.forward(x)?)?;
        Ok(self.fc2.forward(&h)?)
    }
}

/// `BartEncoderLayer`: self-attention, then the feed-forward block, each followed by the
/// residual sum and a LayerNorm (post-norm).
#[derive(Debug)]
struct BartEncoderLayer {
    self_attn: BartAttention,
    self_attn_layer_norm: LayerNorm,
    ffn: FeedForward,
    final_layer_norm: LayerNorm,
}

impl BartEncoderLayer {
    fn load(vb: VarBuilder<'_>, cfg: &BartConfig) -> Result<Self> {
        let d = cfg.d_model;
        Ok(Self {
            self_attn: BartAttention::load(vb.pp("self_attn"), d, cfg.encoder_attention_heads)?,
            self_attn_layer_norm: layer_norm(d, 1e-5, vb.pp("self_attn_layer_norm"))?,
            ffn: FeedForward::load(&vb, d, cfg.encoder_ffn_dim, cfg.activation_function)?,
            final_layer_norm: layer_norm(d, 1e-5, vb.pp("final_layer_norm"))?,
        })
    }

    fn forward(&self, x: &Tensor, mask: Option<&Tensor>) -> Result<Tensor> {
        let (k, v) = self.self_attn.key_values(x)?;
        let h = self.self_attn_layer_norm.forward(&(x + self.self_attn.attend(x, &k, &v, mask)?)?)?;
        let h = self.final_layer_norm.forward(&(&h + self.ffn.forward(&h)?)?)?;
        clamp_f16_overflow(h)
    }
}

/// `transformers` clamps f16 encoder states that overflowed to `±(f16::MAX - 1000)`.
fn clamp_f16_overflow(h: Tensor) -> Result<Tensor> {
    if h.dtype() != DType::F16 {
        return Ok(h);
    }
    let largest = h.abs()?.to_dtype(DType::F32)?.max_all()?.to_scalar::<f32>()?;
    if largest.is_finite() {
        return Ok(h);
    }
    let limit = 65504.0 - 1000.0;
    Ok(h.clamp(-limit, limit)?)
}

/// `BartDecoderLayer`: causal self-attention, cross-attention over the encoder states, then
/// the feed-forward block, each followed by the residual sum and a LayerNorm.
#[derive(Debug)]
struct BartDecoderLayer {
    self_attn: BartAttention,
    self_attn_layer_norm: LayerNorm,
    encoder_attn: BartAttention,
    encoder_attn_layer_norm: LayerNorm,
    ffn: FeedForward,
    final_layer_norm: LayerNorm,
    layer_idx: usize,
}

impl BartDecoderLayer {
    fn load(vb: VarBuilder<'_>, cfg: &BartConfig, layer_idx: usize) -> Result<Self> {
        let d = cfg.d_model;
        Ok(Self {
            self_attn: BartAttention::load(vb.pp("self_attn"), d, cfg.decoder_attention_heads)?,
            self_attn_layer_norm: layer_norm(d, 1e-5, vb.pp("self_attn_layer_norm"))?,
            encoder_attn: BartAttention::load(vb.pp("encoder_attn"), d, cfg.decoder_attention_heads)?,
            encoder_attn_layer_norm: layer_norm(d, 1e-5, vb.pp("encoder_attn_layer_norm"))?,
            ffn: FeedForward::load(&vb, d, cfg.decoder_ffn_dim, cfg.activation_function)?,
            final_layer_norm: layer_norm(d, 1e-5, vb.pp("final_layer_norm"))?,
            layer_idx,
        })
    }

    /// `x` `[B, new, D]`; `self_mask` / `encoder_mask` additive; with a cache, this step's
    /// self-attention keys and values are appended to it, and the cross-attention ones are
    /// computed on the first step only.
    fn forward(
        &self,
        x: &Tensor,
        self_mask: Option<&Tensor>,
        encoder: &Tensor,
        encoder_mask: Option<&Tensor>,
        cache: Option<&mut Seq2SeqCache>,
    ) -> Result<Tensor> {
        let (k, v) = self.self_attn.key_values(x)?;
        let ((k, v), (ck, cv)) = match cache {
            Some(cache) => {
                let own = cache.self_attention.append(self.layer_idx, &k, &v)?;
                let cross = cache.cross_attention(self.layer_idx, || self.encoder_attn.key_values(encoder))?;
                (own, cross)
            }
            None => ((k, v), self.encoder_attn.key_values(encoder)?),
        };
        let h = self.self_attn_layer_norm.forward(&(x + self.self_attn.attend(x, &k, &v, self_mask)?)?)?;
        let cross = self.encoder_attn.attend(&h, &ck, &cv, encoder_mask)?;
        let h = self.encoder_attn_layer_norm.forward(&(&h + cross)?)?;
        Ok(self.final_layer_norm.forward(&(&h + self.ffn.forward(&h)?)?)?)
    }
}

/// Token embeddings scaled by `embed_scale` (`BartScaledWordEmbedding`) plus learned
/// positions (`BartLearnedPositionalEmbedding`), then `layernorm_embedding`.
#[derive(Debug)]
struct BartEmbeddings {
    embed_tokens: Embedding,
    embed_scale: f64,
    embed_positions: Tensor,
    layernorm_embedding: LayerNorm,
}

impl BartEmbeddings {
    /// `vb` is the encoder or the decoder; `tokens` the token embedding matrix it uses.
    fn load(vb: &VarBuilder<'_>, cfg: &BartConfig, tokens: Tensor) -> Result<Self> {
        let d = cfg.d_model;
        let rows = cfg.max_position_embeddings + POSITION_OFFSET;
        let embed_positions = embedding(rows, d, vb.pp("embed_positions"))?.embeddings().clone();
        Ok(Self {
            embed_tokens: Embedding::new(tokens, d),
            embed_scale: if cfg.scale_embedding { (d as f64).sqrt() } else { 1.0 },
            embed_positions,
            layernorm_embedding: layer_norm(d, 1e-5, vb.pp("layernorm_embedding"))?,
        })
    }

    /// `ids` `[B, T]` (u32, checked) at positions `past..past + T` (in range, checked).
    fn forward(&self, ids: &Tensor, past: usize) -> Result<Tensor> {
        let seq = ids.dim(1)?;
        let tokens = self.embed_tokens.forward(ids)?;
        let tokens = if self.embed_scale == 1.0 { tokens } else { (tokens * self.embed_scale)? };
        let positions = self.embed_positions.narrow(0, past + POSITION_OFFSET, seq)?;
        Ok(self.layernorm_embedding.forward(&tokens.broadcast_add(&positions)?)?)
    }
}

/// `BartEncoder`: embeddings, then `encoder_layers` layers.
#[derive(Debug)]
struct BartEncoder {
    embeddings: BartEmbeddings,
    layers: Vec<BartEncoderLayer>,
}

impl BartEncoder {
    fn load(vb: VarBuilder<'_>, cfg: &BartConfig, tokens: Tensor) -> Result<Self> {
        let layers = (0..cfg.encoder_layers)
            .map(|i| BartEncoderLayer::load(vb.pp(format!("layers.{i}")), cfg))
            .collect::<Result<_>>()?;
        Ok(Self { embeddings: BartEmbeddings::load(&vb, cfg, tokens)?, layers })
    }

    fn forward(&self, ids: &Tensor, mask: Option<&Tensor>) -> Result<Tensor> {
        let mut h = self.embeddings.forward(ids, 0)?;
        for layer in &self.layers {
            h = layer.forward(&h, mask)?;
        }
        Ok(h)
    }
}

/// `BartDecoder`: embeddings, then `decoder_layers` layers with cross-attention.
#[derive(Debug)]
struct BartDecoder {
    embeddings: BartEmbeddings,
    layers: Vec<BartDecoderLayer>,
}

impl BartDecoder {
    fn load(vb: VarBuilder<'_>, cfg: &BartConfig, tokens: Tensor) -> Result<Self> {
        let layers = (0..cfg.decoder_layers)
            .map(|i| BartDecoderLayer::load(vb.pp(format!("layers.{i}")), cfg, i))
            .collect::<Result<_>>()?;
        Ok(Self { embeddings: BartEmbeddings::load(&vb, cfg, tokens)?, layers })
    }

    /// `ids` `[B, new]` after `past` cached positions; masks additive in the score dtype.
    fn forward(
        &self,
        ids: &Tensor,
        past: usize,
        self_mask: Option<&Tensor>,
        encoder: &Tensor,
        encoder_mask: Option<&Tensor>,
        mut cache: Option<&mut Seq2SeqCache>,
    ) -> Result<Tensor> {
        let mut h = self.embeddings.forward(ids, past)?;
        for layer in &self.layers {
            h = layer.forward(&h, self_mask, encoder, encoder_mask, cache.as_deref_mut())?;
        }
        Ok(h)
    }
}

/// The bare BART encoder-decoder (`BartModel`); its output is the decoder's last hidden
/// state, with the encoder's as `encoder_last_hidden_state` in [`BaseModelOutput::extra`].
///
/// Without `decoder_input_ids` the decoder reads `shift_tokens_right(input_ids)`
/// (`decoder_start_token_id`, then `input_ids` without their last column), as in
/// `transformers`. Token embeddings follow `transformers`' tying: with
/// `tie_word_embeddings` the encoder and the decoder read `shared` (or the one of
/// `shared`, `encoder.embed_tokens`, `decoder.embed_tokens` the checkpoint holds), unless
/// the checkpoint holds different values for them; without it each reads its own.
#[derive(Debug, AutoRegister)]
#[auto(task = "base", class = "BartModel")]
pub struct BartModel {
    shared: Option<Tensor>,
    encoder: BartEncoder,
    decoder: BartDecoder,
    config: BartConfig,
    device: Device,
    dtype: DType,
}

impl BartModel {
    /// Build the model from the weights under `vb` (`shared.weight`, `encoder.*`,
    /// `decoder.*`). `fallback` is a token embedding matrix to tie to when the checkpoint
    /// holds none of the embedding names (a head's `lm_head.weight`).
    pub(crate) fn new(vb: VarBuilder<'_>, config: &BartConfig, fallback: Option<Tensor>) -> Result<Self> {
        config.validate()?;
        let shape = (config.vocab_size, config.d_model);
        let init = Init::Randn { mean: 0.0, stdev: config.init_std };
        let get = |name: &str| -> Result<Tensor> { Ok(vb.get_with_hints(shape, name, init)?) };
        let tied = |name: &str, shared: &Tensor| -> Result<Tensor> {
            if vb.contains_tensor(name) {
                let own = get(name)?;
                if !same_values(&own, shared)? {
                    return Ok(own);
                }
            }
            Ok(shared.clone())
        };
        let (encoder_name, decoder_name) = ("encoder.embed_tokens.weight", "decoder.embed_tokens.weight");
        let (shared, encoder_tokens, decoder_tokens) = if config.tie_word_embeddings {
            let shared = if vb.contains_tensor("shared.weight") {
                get("shared.weight")?
            } else {
                // `transformers` ties the other way round when only a tied copy was saved.
                match ([encoder_name, decoder_name].into_iter().find(|n| vb.contains_tensor(n)), fallback) {
                    (Some(name), _) => get(name)?,
                    (None, Some(weight)) => weight,
                    (None, None) => get("shared.weight")?,
                }
            };
            let (encoder_tokens, decoder_tokens) = (tied(encoder_name, &shared)?, tied(decoder_name, &shared)?);
            (Some(shared), encoder_tokens, decoder_tokens)
        } else {
            let shared = if vb.contains_tensor("shared.weight") { Some(get("shared.weight")?) } else { None };
            (shared, get(encoder_name)?, get(decoder_name)?)
        };
        Ok(Self {
            shared,
            encoder: BartEncoder::load(vb.pp("encoder"), config, encoder_tokens)?,
            decoder: BartDecoder::load(vb.pp("decoder"), config, decoder_tokens)?,
            config: config.clone(),
            device: vb.device().clone(),
            dtype: vb.dtype(),
        })
    }

    /// The config the model was built from.
    pub fn config(&self) -> &BartConfig {
        &self.config
    }

    /// The shared token embedding matrix `[vocab_size, d_model]` (`model.shared`); `None`
    /// for an untied model whose checkpoint has none.
    pub fn shared(&self) -> Option<&Tensor> {
        self.shared.as_ref()
    }

    /// An additive mask `[B, 1, 1, S]` in the score dtype from a 0/1 mask.
    fn additive(&self, mask: &Tensor) -> Result<Tensor> {
        Ok(padding_mask(&mask.to_device(&self.device)?)?.to_dtype(softmax_dtype(self.dtype))?)
    }

    /// Check `input_ids` (and `attention_mask`) and run the encoder.
    pub(crate) fn encode(&self, inputs: &ModelInputs) -> Result<EncoderOutput> {
        let input_ids = inputs.input_ids()?;
        let (batch, seq) = dims2_int(input_ids, "input_ids")?;
        let max = self.config.max_position_embeddings;
        if seq > max {
            return Err(Error::SequenceTooLong { len: seq, max });
        }
        let ids = ids_in_range(input_ids, "input_ids", self.config.vocab_size)?;
        let mask = match &inputs.attention_mask {
            Some(mask) => {
                require_shape(mask, "attention_mask", &[batch, seq], "`input_ids`")?;
                Some(self.additive(mask)?)
            }
            None => None,
        };
        let hidden = self.encoder.forward(&ids, mask.as_ref())?;
        Ok(EncoderOutput { last_hidden_state: hidden, attention_mask: inputs.attention_mask.clone() })
    }

    /// The checked forward pass shared by every head: `(decoder states, encoder states)`.
    pub(crate) fn run(&self, inputs: &ModelInputs) -> Result<(Tensor, Tensor)> {
        let cfg = &self.config;
        let encoded = self.encode(inputs)?;
        let input_ids = inputs.input_ids()?;
        let batch = input_ids.dim(0)?;
        let shifted;
        let (decoder_ids, name) = match &inputs.decoder_input_ids {
            Some(ids) => (ids, "decoder_input_ids"),
            None => {
                let pad = cfg.pad_token_id.ok_or_else(|| {
                    Error::config(
                        "bart",
                        "`pad_token_id` is needed to build the decoder inputs from `input_ids`: set it in the \
                         config or pass `decoder_input_ids`",
                    )
                })?;
                let start = cfg.decoder_start_token_id.ok_or_else(|| {
                    Error::config(
                        "bart",
                        "`decoder_start_token_id` is needed to build the decoder inputs from `input_ids`: set it \
                         in the config or pass `decoder_input_ids`",
                    )
                })?;
                shifted = shift_tokens_right(input_ids, pad, start)?;
                (&shifted, "decoder inputs shifted from `input_ids`")
            }
        };
        let (dec_batch, dec_seq) = dims2_int(decoder_ids, "decoder_input_ids")?;
        if dec_batch != batch {
            return Err(Error::input(format!(
                "`decoder_input_ids` has {dec_batch} rows but `input_ids` has {batch}; they must match"
            )));
        }
        let max = cfg.max_position_embeddings;
        if dec_seq > max {
            return Err(Error::SequenceTooLong { len: dec_seq, max });
        }
        let decoder_ids = ids_in_range(decoder_ids, "decoder_input_ids", cfg.vocab_size)?;
        let padding = match &inputs.decoder_attention_mask {
            Some(mask) => {
                require_shape(mask, "decoder_attention_mask", &[batch, dec_seq], name)?;
                Some(mask.to_device(&self.device)?)
            }
            None => None,
        };
        let self_mask = self.decoder_mask(padding.as_ref(), 0, dec_seq)?;
        let encoder_mask = encoded.attention_mask.as_ref().map(|m| self.additive(m)).transpose()?;
        let hidden = self.decoder.forward(
            &decoder_ids,
            0,
            self_mask.as_ref(),
            &encoded.last_hidden_state,
            encoder_mask.as_ref(),
            None,
        )?;
        Ok((hidden, encoded.last_hidden_state))
    }

    fn decoder_mask(&self, padding: Option<&Tensor>, past: usize, new: usize) -> Result<Option<Tensor>> {
        let mask = decoder_self_mask(padding, past, new, &self.device)?;
        Ok(mask.map(|m| m.to_dtype(softmax_dtype(self.dtype))).transpose()?)
    }

    /// Run the decoder on `decoder_input_ids` `[B, new]` after the `cache.seq_len()` cached
    /// positions, attending to `encoder`; returns the decoder states `[B, new, D]`.
    pub(crate) fn decode(
        &self,
        decoder_input_ids: &Tensor,
        encoder: &EncoderOutput,
        cache: &mut Seq2SeqCache,
    ) -> Result<Tensor> {
        let cfg = &self.config;
        let (batch, new) = dims2_int(decoder_input_ids, "decoder_input_ids")?;
        let states = &encoder.last_hidden_state;
        let (enc_batch, source, width) = states.dims3().map_err(|_| {
            Error::input(format!("the encoder output must be [batch, seq, d_model], got shape {:?}", states.dims()))
        })?;
        if enc_batch != batch || width != cfg.d_model {
            return Err(Error::input(format!(
                "the encoder output has shape {:?} but the decoder needs [{batch}, seq, {}] for {batch} rows of \
                 `decoder_input_ids`",
                states.dims(),
                cfg.d_model
            )));
        }
        if let Some((k, _)) = cache.self_attention.get(0) {
            let rows = k.dim(0)?;
            if rows != batch {
                return Err(Error::input(format!(
                    "the decoder cache holds {rows} rows but `decoder_input_ids` has {batch}; use one cache per \
                     batch (or `Seq2SeqCache::select_rows`)"
                )));
            }
        }
        let past = cache.seq_len();
        cache.self_attention.check_room(new, Some(cfg.max_position_embeddings))?;
        let ids = ids_in_range(decoder_input_ids, "decoder_input_ids", cfg.vocab_size)?;
        let encoder_mask = match &encoder.attention_mask {
            Some(mask) => {
                require_shape(mask, "the encoder attention mask", &[batch, source], "the encoder output")?;
                Some(self.additive(mask)?)
            }
            None => None,
        };
        let self_mask = self.decoder_mask(None, past, new)?;
        self.decoder.forward(&ids, past, self_mask.as_ref(), states, encoder_mask.as_ref(), Some(cache))
    }
}

impl LoadModel for BartModel {
    type Config = BartConfig;
    const BASE_MODEL_PREFIX: &'static str = "model";

    fn load(vb: VarBuilder<'_>, config: &BartConfig) -> Result<Self> {
        Self::new(vb, config, None)
    }
}

impl PreTrainedModel for BartModel {
    fn device(&self) -> &Device {
        &self.device
    }

    fn dtype(&self) -> DType {
        self.dtype
    }
}

impl Model for BartModel {
    fn forward(&self, inputs: &ModelInputs) -> Result<BaseModelOutput> {
        let (decoder, encoder) = self.run(inputs)?;
        Ok(BaseModelOutput::new(decoder, None).with_extra("encoder_last_hidden_state", encoder))
    }
}

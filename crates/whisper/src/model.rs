//! The Whisper network: the convolutional encoder with its pre-LayerNorm blocks
//! ([`WhisperEncoder`]), the decoder with causal self-attention and cross-attention
//! ([`WhisperDecoder`]) and the bare encoder-decoder ([`WhisperModel`]).

use autocandle_core::nn::{embedding, linear, linear_no_bias, Embedding, Linear};
use autocandle_core::{
    AutoRegister, BaseModelOutput, EncoderOutput, Error, KvCache, LoadModel, Model, ModelInputs, PreTrainedModel,
    Result, Seq2SeqCache,
};
use autocandle_decoder::{grouped_attention, DenseMlp, MaskBuilder};
use candle_core::{DType, Device, Module, Tensor};
use candle_nn::{layer_norm, Init, LayerNorm, VarBuilder};

use crate::config::WhisperConfig;
use crate::inputs::{check_decoder_ids, decoder_keep};

/// `nn.LayerNorm`'s default epsilon, which every Whisper norm uses.
const LAYER_NORM_EPS: f64 = 1e-5;

/// `WhisperAttention`: multi-head attention with `q_proj`, `k_proj` (without bias), `v_proj`
/// and `out_proj`; the queries are scaled by `head_dim^-0.5` before the product, in the order
/// `transformers` keeps for Whisper.
#[derive(Debug, Clone)]
pub struct WhisperAttention {
    q_proj: Linear,
    k_proj: Linear,
    v_proj: Linear,
    out_proj: Linear,
    num_heads: usize,
    head_dim: usize,
    scaling: f64,
}

impl WhisperAttention {
    /// Load the projections under `vb` for `embed_dim` channels split into `num_heads` heads.
    pub fn load(vb: VarBuilder<'_>, embed_dim: usize, num_heads: usize) -> Result<Self> {
        let head_dim = embed_dim / num_heads;
        Ok(Self {
            q_proj: linear(embed_dim, embed_dim, vb.pp("q_proj"))?,
            k_proj: linear_no_bias(embed_dim, embed_dim, vb.pp("k_proj"))?,
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
    pub fn key_values(&self, states: &Tensor) -> Result<(Tensor, Tensor)> {
        Ok((self.split_heads(&self.k_proj.forward(states)?)?, self.split_heads(&self.v_proj.forward(states)?)?))
    }

    /// Attend from `x` `[B, T, D]` over `k`/`v` `[B, heads, S, head_dim]`; `mask` additive,
    /// broadcastable to `[B, heads, T, S]`. Returns `[B, T, D]`.
    pub fn attend(&self, x: &Tensor, k: &Tensor, v: &Tensor, mask: Option<&Tensor>) -> Result<Tensor> {
        let q = self.split_heads(&(self.q_proj.forward(x)? * self.scaling)?)?;
        let context = grouped_attention(&q, k, v, 1.0, mask)?;
        Ok(self.out_proj.forward(&context)?)
    }
}

/// A one-dimensional convolution with kernel 3 and padding 1 (`nn.Conv1d`), computed as one
/// matrix product over the three shifted copies of the input; it returns time-major output
/// `[B, T_out, out]`, the layout the encoder continues in.
#[derive(Debug, Clone)]
struct Conv3 {
    /// `[out, in * 3]`: `weight [out, in, 3]` flattened.
    weight: Tensor,
    bias: Tensor,
    stride: usize,
}

impl Conv3 {
    fn load(vb: VarBuilder<'_>, in_channels: usize, out_channels: usize, stride: usize) -> Result<Self> {
        let weight =
            vb.get_with_hints((out_channels, in_channels, 3), "weight", candle_nn::init::DEFAULT_KAIMING_NORMAL)?;
        let bias = vb.get_with_hints(out_channels, "bias", Init::Const(0.0))?;
        Ok(Self { weight: weight.reshape((out_channels, in_channels * 3))?, bias, stride })
    }

    /// `x` `[B, C, T]` channel-major (`time_major` false) or `[B, T, C]` (true).
    fn forward(&self, x: &Tensor, time_major: bool) -> Result<Tensor> {
        let x = if time_major { x.transpose(1, 2)? } else { x.clone() };
        let (batch, channels, frames) = x.dims3()?;
        let out = (frames - 1) / self.stride + 1;
        let x = x.pad_with_zeros(2, 1, 1 + (out * self.stride + 2).saturating_sub(frames + 2))?;
        // taps[k] [B, C, out]: the input at t * stride + k.
        let taps = (0..3)
            .map(|k| {
                let window = x.narrow(2, k, out * self.stride)?;
                if self.stride == 1 {
                    Ok(window)
                } else {
                    window.reshape((batch, channels, out, self.stride))?.narrow(3, 0, 1)?.squeeze(3)
                }
            })
            .collect::<candle_core::Result<Vec<_>>>()?;
        // [B, C, out, 3] -> [B, out, C * 3], the order of `weight`'s flattening.
        let cols = Tensor::stack(&taps, 3)?.permute((0, 2, 1, 3))?.reshape((batch, out, channels * 3))?;
        Ok(autocandle_core::kernels::linear(&cols.contiguous()?, &self.weight, Some(&self.bias))?)
    }
}

/// `WhisperEncoderLayer`: pre-LayerNorm self-attention and feed-forward block, each added to
/// the residual stream.
#[derive(Debug, Clone)]
struct EncoderLayer {
    self_attn: WhisperAttention,
    self_attn_layer_norm: LayerNorm,
    ffn: DenseMlp,
    final_layer_norm: LayerNorm,
}

impl EncoderLayer {
    fn load(vb: VarBuilder<'_>, cfg: &WhisperConfig) -> Result<Self> {
        let d = cfg.d_model;
        Ok(Self {
            self_attn: WhisperAttention::load(vb.pp("self_attn"), d, cfg.encoder_attention_heads)?,
            self_attn_layer_norm: layer_norm(d, LAYER_NORM_EPS, vb.pp("self_attn_layer_norm"))?,
            ffn: DenseMlp::load(vb.clone(), (d, cfg.encoder_ffn_dim), true, cfg.activation_function, ("fc1", "fc2"))?,
            final_layer_norm: layer_norm(d, LAYER_NORM_EPS, vb.pp("final_layer_norm"))?,
        })
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let h = self.self_attn_layer_norm.forward(x)?;
        let (k, v) = self.self_attn.key_values(&h)?;
        let x = (x + self.self_attn.attend(&h, &k, &v, None)?)?;
        let x = (&x + self.ffn.forward(&self.final_layer_norm.forward(&x)?)?)?;
        clamp_f16_overflow(x)
    }
}

/// `transformers` clamps f16 encoder states to `±(f16::MAX - 1000)` after every layer.
fn clamp_f16_overflow(h: Tensor) -> Result<Tensor> {
    if h.dtype() != DType::F16 {
        return Ok(h);
    }
    let limit = 65504.0 - 1000.0;
    Ok(h.clamp(-limit, limit)?)
}

/// `WhisperEncoder`: `conv1` (kernel 3, padding 1) and `conv2` (the same with stride 2), each
/// followed by exact GELU, the learned (sinusoid-initialised) `embed_positions`
/// `[max_source_positions, d_model]`, `encoder_layers` pre-LayerNorm blocks and `layer_norm`.
#[derive(Debug, Clone)]
pub struct WhisperEncoder {
    conv1: Conv3,
    conv2: Conv3,
    embed_positions: Tensor,
    layers: Vec<EncoderLayer>,
    layer_norm: LayerNorm,
    num_mel_bins: usize,
    frames: usize,
}

impl WhisperEncoder {
    /// Load the encoder under `vb` (`conv1.*`, `conv2.*`, `embed_positions.weight`,
    /// `layers.N.*`, `layer_norm.*`).
    pub fn load(vb: VarBuilder<'_>, cfg: &WhisperConfig) -> Result<Self> {
        cfg.validate()?;
        let d = cfg.d_model;
        let layers = (0..cfg.encoder_layers)
            .map(|i| EncoderLayer::load(vb.pp(format!("layers.{i}")), cfg))
            .collect::<Result<_>>()?;
        let embed_positions = vb.get_with_hints(
            (cfg.max_source_positions, d),
            "embed_positions.weight",
            Init::Randn { mean: 0.0, stdev: cfg.init_std },
        )?;
        Ok(Self {
            conv1: Conv3::load(vb.pp("conv1"), cfg.num_mel_bins, d, 1)?,
            conv2: Conv3::load(vb.pp("conv2"), d, d, 2)?,
            embed_positions,
            layers,
            layer_norm: layer_norm(d, LAYER_NORM_EPS, vb.pp("layer_norm"))?,
            num_mel_bins: cfg.num_mel_bins,
            frames: cfg.expected_frames(),
        })
    }

    /// Check `input_features` (`[batch, num_mel_bins, 2 * max_source_positions]`, float) and
    /// convert it to the dtype and device of the weights.
    pub fn check_features(&self, features: &Tensor) -> Result<Tensor> {
        let dims = features.dims();
        let [_, mel, frames] = dims else {
            return Err(Error::input(format!(
                "`input_features` must be [batch, num_mel_bins, frames] = [batch, {}, {}], got shape {dims:?}",
                self.num_mel_bins, self.frames
            )));
        };
        if *mel != self.num_mel_bins {
            return Err(Error::input(format!(
                "`input_features` has {mel} mel bins but the model takes {} (`num_mel_bins`): extract the features \
                 with this model's feature extractor",
                self.num_mel_bins
            )));
        }
        if *frames != self.frames {
            return Err(Error::input(format!(
                "Whisper expects the mel input features to be of length {} (2 x `max_source_positions`), but found \
                 {frames}: pad or truncate the input features to {} frames (the feature extractor does so by default)",
                self.frames, self.frames
            )));
        }
        if !features.dtype().is_float() {
            return Err(Error::input(format!("`input_features` must be a float tensor, got {:?}", features.dtype())));
        }
        let weights = &self.embed_positions;
        Ok(features.to_device(weights.device())?.to_dtype(weights.dtype())?)
    }

    /// Run the encoder on checked features (see [`WhisperEncoder::check_features`]); with
    /// `all_states`, also return the `encoder_layers + 1` hidden states `transformers` returns
    /// with `output_hidden_states` (the input of every layer, the last one after `layer_norm`).
    pub fn forward_features(&self, features: &Tensor, all_states: bool) -> Result<(Tensor, Vec<Tensor>)> {
        let h = autocandle_core::kernels::gelu_erf(&self.conv1.forward(features, false)?)?;
        let h = autocandle_core::kernels::gelu_erf(&self.conv2.forward(&h, true)?)?;
        let mut h = h.broadcast_add(&self.embed_positions)?;
        let mut states = Vec::new();
        for layer in &self.layers {
            if all_states {
                states.push(h.clone());
            }
            h = layer.forward(&h)?;
        }
        let h = self.layer_norm.forward(&h)?;
        if all_states {
            states.push(h.clone());
        }
        Ok((h, states))
    }

    /// The encoder's last hidden state `[batch, max_source_positions, d_model]` of
    /// `input_features` (checked).
    pub fn forward(&self, features: &Tensor) -> Result<Tensor> {
        Ok(self.forward_features(&self.check_features(features)?, false)?.0)
    }

    /// The number of input frames the encoder takes (`2 * max_source_positions`).
    pub fn frames(&self) -> usize {
        self.frames
    }
}

/// `WhisperDecoderLayer`: pre-LayerNorm causal self-attention, cross-attention over the
/// encoder states (skipped without them, as in `WhisperForCausalLM`) and the feed-forward block.
#[derive(Debug, Clone)]
struct DecoderLayer {
    self_attn: WhisperAttention,
    self_attn_layer_norm: LayerNorm,
    encoder_attn: WhisperAttention,
    encoder_attn_layer_norm: LayerNorm,
    ffn: DenseMlp,
    final_layer_norm: LayerNorm,
    layer_idx: usize,
}

impl DecoderLayer {
    fn load(vb: VarBuilder<'_>, cfg: &WhisperConfig, layer_idx: usize) -> Result<Self> {
        let d = cfg.d_model;
        Ok(Self {
            self_attn: WhisperAttention::load(vb.pp("self_attn"), d, cfg.decoder_attention_heads)?,
            self_attn_layer_norm: layer_norm(d, LAYER_NORM_EPS, vb.pp("self_attn_layer_norm"))?,
            encoder_attn: WhisperAttention::load(vb.pp("encoder_attn"), d, cfg.decoder_attention_heads)?,
            encoder_attn_layer_norm: layer_norm(d, LAYER_NORM_EPS, vb.pp("encoder_attn_layer_norm"))?,
            ffn: DenseMlp::load(vb.clone(), (d, cfg.decoder_ffn_dim), true, cfg.activation_function, ("fc1", "fc2"))?,
            final_layer_norm: layer_norm(d, LAYER_NORM_EPS, vb.pp("final_layer_norm"))?,
            layer_idx,
        })
    }

    fn forward(
        &self,
        x: &Tensor,
        mask: Option<&Tensor>,
        cache: Option<&mut KvCache>,
        cross: Option<&(Tensor, Tensor)>,
    ) -> Result<Tensor> {
        let h = self.self_attn_layer_norm.forward(x)?;
        let (k, v) = self.self_attn.key_values(&h)?;
        let (k, v) = match cache {
            Some(cache) => cache.append(self.layer_idx, &k, &v)?,
            None => (k, v),
        };
        let mut x = (x + self.self_attn.attend(&h, &k, &v, mask)?)?;
        if let Some((ck, cv)) = cross {
            let h = self.encoder_attn_layer_norm.forward(&x)?;
            x = (&x + self.encoder_attn.attend(&h, ck, cv, None)?)?;
        }
        Ok((&x + self.ffn.forward(&self.final_layer_norm.forward(&x)?)?)?)
    }
}

/// The key/value cache a decoder pass reads and extends.
#[derive(Debug)]
pub enum DecoderCache<'a> {
    /// No cache: the whole sequence at once.
    None,
    /// The decoder alone (`WhisperForCausalLM`): self-attention keys and values only.
    Causal(&'a mut KvCache),
    /// The encoder-decoder: self-attention keys and values, plus the cross-attention ones
    /// computed once per encoder output.
    Seq2Seq(&'a mut Seq2SeqCache),
}

/// Where the decoder's new tokens sit: after `n` cached positions, or at explicit position ids.
#[derive(Debug, Clone, Copy)]
pub enum DecoderPositions<'a> {
    /// Positions `n..n + new` (the cache length).
    After(usize),
    /// Position ids `[batch or 1, new]`, `u32`, each below `max_target_positions` (checked by the caller).
    Ids(&'a Tensor),
}

/// `WhisperDecoder`: `embed_tokens` plus the learned `embed_positions`
/// `[max_target_positions, d_model]`, `decoder_layers` blocks and `layer_norm`.
#[derive(Debug, Clone)]
pub struct WhisperDecoder {
    embed_tokens: Embedding,
    embed_positions: Tensor,
    layers: Vec<DecoderLayer>,
    layer_norm: LayerNorm,
    vocab_size: usize,
    max_target_positions: usize,
}

impl WhisperDecoder {
    /// Load the decoder under `vb` (`embed_tokens.weight`, `embed_positions.weight`,
    /// `layers.N.*`, `layer_norm.*`); `embed_tokens`, when given, replaces the checkpoint's
    /// token embedding (a head tied the other way round).
    pub fn load(vb: VarBuilder<'_>, cfg: &WhisperConfig, embed_tokens: Option<Embedding>) -> Result<Self> {
        cfg.validate()?;
        let d = cfg.d_model;
        let embed_tokens = match embed_tokens {
            Some(e) => e,
            None => embedding(cfg.vocab_size, d, vb.pp("embed_tokens"))?,
        };
        let embed_positions = vb.get_with_hints(
            (cfg.max_target_positions, d),
            "embed_positions.weight",
            Init::Randn { mean: 0.0, stdev: cfg.init_std },
        )?;
        let layers = (0..cfg.decoder_layers)
            .map(|i| DecoderLayer::load(vb.pp(format!("layers.{i}")), cfg, i))
            .collect::<Result<_>>()?;
        Ok(Self {
            embed_tokens,
            embed_positions,
            layers,
            layer_norm: layer_norm(d, LAYER_NORM_EPS, vb.pp("layer_norm"))?,
            vocab_size: cfg.vocab_size,
            max_target_positions: cfg.max_target_positions,
        })
    }

    /// The token embedding (`embed_tokens`), which `proj_out` may be tied to.
    pub fn embed_tokens(&self) -> &Embedding {
        &self.embed_tokens
    }

    /// The number of tokens in the vocabulary.
    pub fn vocab_size(&self) -> usize {
        self.vocab_size
    }

    /// The longest decoder sequence (`max_target_positions`).
    pub fn max_target_positions(&self) -> usize {
        self.max_target_positions
    }

    /// Run the decoder on checked `ids` (`[B, new]`, `u32`, in range) at `positions`, with the
    /// additive self-attention `mask` (`None`: nothing masked), over the encoder states
    /// `encoder` `[B, S, D]` (`None`: no cross-attention, as `WhisperForCausalLM` without
    /// encoder outputs), reading and extending `cache`. Returns the hidden states after
    /// `layer_norm`, `[B, new, D]`.
    pub fn forward(
        &self,
        ids: &Tensor,
        positions: DecoderPositions<'_>,
        mask: Option<&Tensor>,
        encoder: Option<&Tensor>,
        mut cache: DecoderCache<'_>,
    ) -> Result<Tensor> {
        let (batch, new) = ids.dims2()?;
        let device = self.embed_positions.device();
        let tokens = self.embed_tokens.forward(&ids.to_device(device)?)?;
        let positions = match positions {
            DecoderPositions::After(past) => {
                if past + new > self.max_target_positions {
                    return Err(too_long(past, new, self.max_target_positions));
                }
                self.embed_positions.narrow(0, past, new)?.unsqueeze(0)?
            }
            DecoderPositions::Ids(ids) => {
                let rows = ids.dim(0)?;
                let flat = ids.flatten_all()?.to_device(device)?;
                self.embed_positions.index_select(&flat, 0)?.reshape((rows, new, ()))?
            }
        };
        let mut h = tokens.broadcast_add(&positions)?;
        debug_assert_eq!(h.dim(0).ok(), Some(batch));
        for layer in &self.layers {
            let cross = match (encoder, &mut cache) {
                (Some(enc), DecoderCache::Seq2Seq(c)) => {
                    Some(c.cross_attention(layer.layer_idx, || layer.encoder_attn.key_values(enc))?)
                }
                (Some(enc), _) => Some(layer.encoder_attn.key_values(enc)?),
                (None, _) => None,
            };
            let own = match &mut cache {
                DecoderCache::None => None,
                DecoderCache::Causal(c) => Some(&mut **c),
                DecoderCache::Seq2Seq(c) => Some(&mut c.self_attention),
            };
            h = layer.forward(&h, mask, own, cross.as_ref())?;
        }
        Ok(self.layer_norm.forward(&h)?)
    }
}

/// The error for a decoder sequence longer than the position table.
pub(crate) fn too_long(past: usize, new: usize, max: usize) -> Error {
    Error::input(format!(
        "the decoder sequence would be {} tokens ({past} cached + {new} new) but Whisper's decoder takes at most {max} \
         (`max_target_positions`): generate fewer tokens",
        past + new
    ))
}

/// The bare Whisper encoder-decoder (`WhisperModel`): its output is the decoder's last
/// hidden state, with the encoder's as `encoder_last_hidden_state` in
/// [`BaseModelOutput::extra`]. It takes `input_features` `[batch, num_mel_bins, 2 *
/// max_source_positions]` and `decoder_input_ids` (required, as in `transformers`; an
/// `attention_mask` over the features is ignored as there, `decoder_attention_mask` masks
/// decoder padding).
#[derive(Debug, Clone, AutoRegister)]
#[auto(task = "base", class = "WhisperModel")]
pub struct WhisperModel {
    encoder: WhisperEncoder,
    decoder: WhisperDecoder,
    config: WhisperConfig,
    device: Device,
    dtype: DType,
}

impl WhisperModel {
    /// Build the model from the weights under `vb` (`encoder.*`, `decoder.*`);
    /// `embed_tokens`, when given, is the decoder's token embedding (tied to a head).
    pub fn new(vb: VarBuilder<'_>, config: &WhisperConfig, embed_tokens: Option<Embedding>) -> Result<Self> {
        config.validate()?;
        Ok(Self {
            encoder: WhisperEncoder::load(vb.pp("encoder"), config)?,
            decoder: WhisperDecoder::load(vb.pp("decoder"), config, embed_tokens)?,
            config: config.clone(),
            device: vb.device().clone(),
            dtype: vb.dtype(),
        })
    }

    /// The config the model was built from.
    pub fn config(&self) -> &WhisperConfig {
        &self.config
    }

    /// The encoder.
    pub fn encoder(&self) -> &WhisperEncoder {
        &self.encoder
    }

    /// The decoder.
    pub fn decoder(&self) -> &WhisperDecoder {
        &self.decoder
    }

    /// Check `input_features` and run the encoder; the output has no attention mask (Whisper
    /// attends to every encoder position).
    pub fn encode(&self, inputs: &ModelInputs) -> Result<EncoderOutput> {
        let hidden = self.encoder.forward(inputs.input_features()?)?;
        Ok(EncoderOutput { last_hidden_state: hidden, attention_mask: None })
    }

    /// The checked forward pass every head shares: `(decoder states, encoder states)`.
    pub(crate) fn run(&self, inputs: &ModelInputs) -> Result<(Tensor, Tensor)> {
        let encoded = self.encode(inputs)?.last_hidden_state;
        let batch = encoded.dim(0)?;
        let decoder_input_ids = inputs.decoder_input_ids.as_ref().ok_or_else(|| {
            Error::input(
                "Whisper's decoder needs `decoder_input_ids` (starting with `decoder_start_token_id`, \
                 <|startoftranscript|>); use generation to produce them from the features alone",
            )
        })?;
        let (ids, rows, new) = check_decoder_ids(decoder_input_ids, self.config.vocab_size)?;
        if rows != batch {
            return Err(Error::input(format!(
                "`decoder_input_ids` has {rows} rows but `input_features` has {batch}; they must match"
            )));
        }
        if new > self.config.max_target_positions {
            return Err(too_long(0, new, self.config.max_target_positions));
        }
        let keep = decoder_keep(inputs.decoder_attention_mask.as_ref(), batch, new)?;
        let mask = MaskBuilder::new(batch, new, 0, keep, None).build(None, self.dtype, &self.device)?;
        let hidden = self.decoder.forward(
            &ids,
            DecoderPositions::After(0),
            mask.as_ref(),
            Some(&encoded),
            DecoderCache::None,
        )?;
        Ok((hidden, encoded))
    }

    /// Run the decoder on `decoder_input_ids` `[B, new]` (one token or several, e.g. a prompt
    /// `<|startoftranscript|><|en|><|transcribe|>`) after the `cache.seq_len()` cached
    /// positions, attending to `encoder` (one row per decoder row); returns the decoder states
    /// `[B, new, D]`. The cross-attention keys and values are computed on the first call with
    /// a cache and reused after.
    pub fn decode(
        &self,
        decoder_input_ids: &Tensor,
        encoder: &EncoderOutput,
        cache: &mut Seq2SeqCache,
    ) -> Result<Tensor> {
        let cfg = &self.config;
        let (ids, batch, new) = check_decoder_ids(decoder_input_ids, cfg.vocab_size)?;
        let states = &encoder.last_hidden_state;
        let (enc_batch, _, width) = states.dims3().map_err(|_| {
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
        if past + new > cfg.max_target_positions {
            return Err(too_long(past, new, cfg.max_target_positions));
        }
        let mask = MaskBuilder::new(batch, new, past, None, None).build(None, self.dtype, &self.device)?;
        self.decoder.forward(
            &ids,
            DecoderPositions::After(past),
            mask.as_ref(),
            Some(states),
            DecoderCache::Seq2Seq(cache),
        )
    }
}

impl LoadModel for WhisperModel {
    type Config = WhisperConfig;
    const BASE_MODEL_PREFIX: &'static str = "model";

    fn load(vb: VarBuilder<'_>, config: &WhisperConfig) -> Result<Self> {
        Self::new(vb, config, None)
    }
}

impl PreTrainedModel for WhisperModel {
    fn device(&self) -> &Device {
        &self.device
    }

    fn dtype(&self) -> DType {
        self.dtype
    }
}

impl Model for WhisperModel {
    fn forward(&self, inputs: &ModelInputs) -> Result<BaseModelOutput> {
        let (decoder, encoder) = self.run(inputs)?;
        Ok(BaseModelOutput::new(decoder, None).with_extra("encoder_last_hidden_state", encoder))
    }
}

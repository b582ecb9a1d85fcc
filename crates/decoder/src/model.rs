//! The decoder stack (`LlamaModel`): embeddings, layers, final norm, with the checks on the
//! forward inputs.

use candle_core::{DType, Device, Module, Tensor};
use candle_nn::VarBuilder;

use autocandle_core::inputs::{dims2_int, ids_in_range, require_position_ids_shape};
use autocandle_core::nn::{embedding, Embedding};
use autocandle_core::{Error, KvCache, ModelInputs, Result};

use crate::layers::DecoderLayer;
use crate::mask::{MaskBuilder, PackedSequences};
use crate::norm::Norm;
use crate::rope::{CosSin, RotaryEmbedding};
use crate::spec::{DecoderSpec, LayerType};

/// The llama-like decoder without a head: `embed_tokens`, `layers.N`, `norm` (or the
/// architecture's [`DecoderOptions::final_norm_name`](crate::DecoderOptions::final_norm_name)), named as the
/// `transformers` state dict of `LlamaModel` (under `model.` in the head models).
///
/// Inputs: `input_ids` `[batch, seq]` (required), `attention_mask` (`[batch, past + seq]`,
/// non-zero = attend), `position_ids` (`[batch or 1, seq]`; default `past..past + seq`).
/// `token_type_ids` are ignored, as the `transformers` forward ignores extra arguments.
/// Sequences longer than `max_position_embeddings` (cache included) are
/// [`Error::SequenceTooLong`], except with `dynamic` rope, which exists to go beyond it.
#[derive(Debug, Clone)]
pub struct DecoderModel {
    embed_tokens: Embedding,
    layers: Vec<DecoderLayer>,
    norm: Norm,
    rotary: RotaryEmbedding,
    /// The rotary embedding of the sliding layers when it differs (Gemma-3's local rope).
    sliding_rotary: Option<RotaryEmbedding>,
    /// `sqrt(hidden_size)` in the model dtype, when the embeddings are scaled.
    embed_scale: Option<Tensor>,
    spec: DecoderSpec,
    device: Device,
    dtype: DType,
}

/// What a multimodal model adds to a pass of the decoder on `inputs_embeds`
/// ([`DecoderModel::forward_embeds`]).
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct DecoderExtras {
    /// Cos and sin of the new positions, `[batch or 1, seq, rotary_dim / 2]` in the model dtype,
    /// computed by the caller (Qwen2-VL's multimodal rope) instead of from `position_ids`; they
    /// serve every layer.
    pub cos_sin: Option<CosSin>,
    /// `[batch * (past + seq)]`, row-major: `block_sequence_ids` of `masking_utils`. Tokens
    /// with the same id `>= 0` attend to each other in both directions (an image's tokens in
    /// Gemma 3, PaliGemma's prefix); `-1` is plain causal attention. Sliding layers keep their
    /// window (`AND(sliding_window, OR(causal, blockwise))`) and padding stays masked.
    pub block_sequence_ids: Option<Vec<i64>>,
    /// Whether the blocks of `block_sequence_ids` reach past the sliding window of sliding
    /// layers (`OR(AND(sliding_window, causal), blockwise)`: PaliGemma 2) instead of staying
    /// inside it (Gemma 3).
    pub blocks_past_window: bool,
    /// Added to the hidden states after layer `i` for each `i < len` (`[batch, seq, hidden]`
    /// each, broadcastable): Qwen3-VL's DeepStack features (zero outside the image tokens).
    pub layer_residuals: Vec<Tensor>,
}

impl DecoderExtras {
    /// No extras: the pass is that of [`DecoderModel::forward`] on the embeddings.
    pub fn new() -> Self {
        Self::default()
    }

    /// Use `cos_sin` instead of the rotary embedding of the positions.
    pub fn with_cos_sin(mut self, cos_sin: CosSin) -> Self {
        self.cos_sin = Some(cos_sin);
        self
    }

    /// Attend in both directions within each block of `block_sequence_ids` (see the field).
    pub fn with_block_sequence_ids(mut self, ids: Vec<i64>) -> Self {
        self.block_sequence_ids = Some(ids);
        self
    }

    /// Add `residuals[i]` to the hidden states after layer `i` (see the field).
    pub fn with_layer_residuals(mut self, residuals: Vec<Tensor>) -> Self {
        self.layer_residuals = residuals;
        self
    }

    /// Let the blocks reach past the sliding window (see the field).
    pub fn with_blocks_past_window(mut self) -> Self {
        self.blocks_past_window = true;
        self
    }
}

/// The checked inputs of one forward pass.
struct Prepared {
    positions: Tensor,
    max_position: usize,
    masks: MaskBuilder,
}

/// The smallest and largest value of a non-empty integer tensor.
fn min_max(t: &Tensor) -> Result<(i64, i64)> {
    let scalar = |t: Tensor| -> Result<i64> { Ok(t.to_dtype(DType::I64)?.to_scalar::<i64>()?) };
    Ok((scalar(t.min_all()?)?, scalar(t.max_all()?)?))
}

impl DecoderModel {
    /// Build the decoder from `vb` (names `embed_tokens.weight`, `layers.N.*`, `norm.weight`).
    pub fn load(vb: VarBuilder<'_>, spec: &DecoderSpec) -> Result<Self> {
        Self::load_with_embeddings(vb, spec, None)
    }

    /// As [`DecoderModel::load`], with the embedding matrix given instead of read (a tied
    /// checkpoint that saved only `lm_head.weight`).
    pub fn load_with_embeddings(vb: VarBuilder<'_>, spec: &DecoderSpec, embeddings: Option<Tensor>) -> Result<Self> {
        let layer = embeddings.map(|e| Embedding::new(e, spec.hidden_size));
        Self::load_with_embedding_layer(vb, spec, layer)
    }

    /// As [`DecoderModel::load_with_embeddings`], with the embedding layer (float or quantized)
    /// given instead of read.
    pub fn load_with_embedding_layer(vb: VarBuilder<'_>, spec: &DecoderSpec, embed: Option<Embedding>) -> Result<Self> {
        spec.validate()?;
        let (dtype, device) = (vb.dtype(), vb.device().clone());
        let embed_tokens = match embed {
            Some(e) => e,
            None => embedding(spec.vocab_size, spec.hidden_size, vb.pp("embed_tokens"))?,
        };
        let layers = spec
            .layer_types
            .iter()
            .enumerate()
            .map(|(i, &layer_type)| DecoderLayer::load_at(vb.pp(format!("layers.{i}")), spec, layer_type, i))
            .collect::<Result<Vec<_>>>()?;
        let norm = Norm::load(vb.pp(spec.options.final_norm_name), spec.hidden_size, spec)?;
        let embed_scale = if spec.options.scale_embeddings {
            // `torch.tensor(hidden_size ** 0.5)` is f32, then cast to the weight dtype.
            let scale = (spec.hidden_size as f64).sqrt() as f32;
            Some(Tensor::new(scale, &device)?.to_dtype(dtype)?)
        } else {
            None
        };
        Ok(Self {
            embed_tokens,
            layers,
            norm,
            rotary: RotaryEmbedding::new(spec.rope.clone(), spec.head_dim, &device)?
                .with_interleaved(spec.options.interleaved_rope),
            sliding_rotary: match &spec.options.sliding_rope {
                Some(rope) => Some(
                    RotaryEmbedding::new(rope.clone(), spec.head_dim, &device)?
                        .with_interleaved(spec.options.interleaved_rope),
                ),
                None => None,
            },
            embed_scale,
            spec: spec.clone(),
            device,
            dtype,
        })
    }

    /// The settings the model was built with.
    pub fn spec(&self) -> &DecoderSpec {
        &self.spec
    }

    /// The float embedding matrix `[vocab_size, hidden_size]`; `None` when it is quantized.
    pub fn embed_weight(&self) -> Option<&Tensor> {
        self.embed_tokens.embeddings()
    }

    /// The token embedding (`embed_tokens`), float or quantized.
    pub fn embed_tokens(&self) -> &Embedding {
        &self.embed_tokens
    }

    /// The device the weights are on.
    pub fn device(&self) -> &Device {
        &self.device
    }

    /// The dtype of the floating-point weights.
    pub fn dtype(&self) -> DType {
        self.dtype
    }

    /// The most positions the model attends over (see [`DecoderSpec::max_positions`]).
    pub fn max_positions(&self) -> Option<usize> {
        self.spec.max_positions()
    }

    /// The last hidden state `[batch, seq, hidden]` of the whole sequence, without a cache.
    pub fn forward(&self, inputs: &ModelInputs) -> Result<Tensor> {
        self.run(inputs, None, None)
    }

    /// [`DecoderModel::forward`] and the router logits of every sparse mixture-of-experts
    /// layer, in layer order, each `[batch * seq, num_experts]` (`output_router_logits`);
    /// empty for a dense model.
    pub fn forward_with_router_logits(&self, inputs: &ModelInputs) -> Result<(Tensor, Vec<Tensor>)> {
        let mut router_logits = Vec::new();
        let hidden = self.run(inputs, None, Some(&mut router_logits))?;
        Ok((hidden, router_logits))
    }

    /// The last hidden state of the new tokens `inputs.input_ids`, attending to the keys and
    /// values in `cache` and appending the new ones to it (see
    /// [`autocandle_core::ForCausalLm::forward_with_cache`] for the inputs).
    pub fn forward_with_cache(&self, inputs: &ModelInputs, cache: &mut KvCache) -> Result<Tensor> {
        self.run(inputs, Some(cache), None)
    }

    /// The token embeddings of `input_ids` `[batch, seq]` as the checkpoint's input embedding
    /// layer gives them (`get_input_embeddings()(input_ids)`): ids are checked against the
    /// vocabulary; Gemma 3's scale is part of that layer (`Gemma3TextScaledWordEmbedding`),
    /// Gemma's and Gemma 2's is not (their model scales `inputs_embeds`).
    pub fn embed(&self, input_ids: &Tensor) -> Result<Tensor> {
        dims2_int(input_ids, "input_ids")?;
        let ids = ids_in_range(input_ids, "input_ids", self.spec.vocab_size)?;
        let hidden = self.embed_tokens.forward(&ids)?;
        match &self.embed_scale {
            Some(scale) if self.spec.options.scaled_embedding_layer => Ok(hidden.broadcast_mul(scale)?),
            _ => Ok(hidden),
        }
    }

    /// The last hidden state of `inputs_embeds` `[batch, seq, hidden]` (`transformers`'
    /// `inputs_embeds`, made with [`DecoderModel::embed`] and changed by the caller, e.g. with
    /// image features in place of image tokens). `inputs` gives `attention_mask` and
    /// `position_ids` as for [`DecoderModel::forward`] (its `input_ids` are not read);
    /// `cache`, when given, is read and extended as by [`DecoderModel::forward_with_cache`].
    pub fn forward_embeds(
        &self,
        inputs_embeds: &Tensor,
        inputs: &ModelInputs,
        cache: Option<&mut KvCache>,
        extras: &DecoderExtras,
    ) -> Result<Tensor> {
        let (batch, seq, hidden) = inputs_embeds.dims3().map_err(|_| {
            Error::input(format!(
                "`inputs_embeds` must have shape [batch, seq, hidden], got {:?}",
                inputs_embeds.dims()
            ))
        })?;
        if hidden != self.spec.hidden_size || batch == 0 || seq == 0 {
            return Err(Error::input(format!(
                "`inputs_embeds` has shape {:?}; expected [batch, seq, {}] with at least one token",
                inputs_embeds.dims(),
                self.spec.hidden_size
            )));
        }
        let mut hidden = inputs_embeds.to_dtype(self.dtype)?;
        if let Some(scale) = self.embed_scale.as_ref().filter(|_| !self.spec.options.scaled_embedding_layer) {
            hidden = hidden.broadcast_mul(scale)?;
        }
        if let Some(m) = self.spec.options.embedding_multiplier {
            hidden = (hidden * m)?;
        }
        let mut prepared = self.prepare(inputs, (batch, seq), cache.as_deref())?;
        if let Some(blocks) = &extras.block_sequence_ids {
            let want = batch * prepared.masks.kv_len();
            if blocks.len() != want {
                return Err(Error::input(format!(
                    "`block_sequence_ids` has {} entries; expected batch x (cached + new) = {want}",
                    blocks.len()
                )));
            }
            prepared.masks = prepared
                .masks
                .with_block_sequence_ids(blocks.clone())
                .with_blocks_past_window(extras.blocks_past_window);
        }
        if extras.layer_residuals.len() > self.layers.len() {
            return Err(Error::input(format!(
                "{} layer residuals for a decoder of {} layers",
                extras.layer_residuals.len(),
                self.layers.len()
            )));
        }
        self.layers_on(hidden, &prepared, extras.cos_sin.as_ref(), cache, None, &extras.layer_residuals)
    }

    fn run(
        &self,
        inputs: &ModelInputs,
        cache: Option<&mut KvCache>,
        router_logits: Option<&mut Vec<Tensor>>,
    ) -> Result<Tensor> {
        let input_ids = inputs.input_ids()?;
        let shape = dims2_int(input_ids, "input_ids")?;
        let prepared = self.prepare(inputs, shape, cache.as_deref())?;
        let input_ids = ids_in_range(input_ids, "input_ids", self.spec.vocab_size)?;
        let mut hidden = self.embed_tokens.forward(&input_ids)?;
        if let Some(scale) = &self.embed_scale {
            hidden = hidden.broadcast_mul(scale)?;
        }
        if let Some(m) = self.spec.options.embedding_multiplier {
            hidden = (hidden * m)?;
        }
        self.layers_on(hidden, &prepared, None, cache, router_logits, &[])
    }

    /// The layers and the final norm on the embeddings `hidden`; `cos_sin`, when given,
    /// replaces the rotary embedding of the positions.
    fn layers_on(
        &self,
        mut hidden: Tensor,
        prepared: &Prepared,
        given_cos_sin: Option<&CosSin>,
        mut cache: Option<&mut KvCache>,
        mut router_logits: Option<&mut Vec<Tensor>>,
        residuals: &[Tensor],
    ) -> Result<Tensor> {
        let cos_sin = match given_cos_sin {
            Some(cs) => cs.clone(),
            None => self.rotary.cos_sin(&prepared.positions, prepared.max_position, self.dtype)?,
        };
        let sliding_cos_sin = match &self.sliding_rotary {
            Some(rotary) if self.spec.has_sliding_layers() && given_cos_sin.is_none() => {
                Some((rotary, rotary.cos_sin(&prepared.positions, prepared.max_position, self.dtype)?))
            }
            _ => None,
        };
        let build = |kind: LayerType| -> Result<Option<Tensor>> {
            if !self.spec.layer_types.contains(&kind) {
                return Ok(None);
            }
            let window = match kind {
                LayerType::Full => None,
                LayerType::Sliding => self.spec.sliding_window,
            };
            prepared.masks.build(window, self.dtype, &self.device)
        };
        let (full_mask, sliding_mask) = (build(LayerType::Full)?, build(LayerType::Sliding)?);
        for (i, layer) in self.layers.iter().enumerate() {
            let mask = match layer.layer_type() {
                LayerType::Full => full_mask.as_ref(),
                LayerType::Sliding => sliding_mask.as_ref(),
            };
            let (rotary, layer_cos_sin) = match (layer.layer_type(), &sliding_cos_sin) {
                (LayerType::Sliding, Some((rotary, cs))) => (*rotary, cs),
                _ => (&self.rotary, &cos_sin),
            };
            let layer_cache = cache.as_deref_mut().map(|c| (c, i));
            let router = router_logits.as_deref_mut();
            hidden = layer.forward_with_router_logits(&hidden, rotary, layer_cos_sin, mask, layer_cache, router)?;
            if let Some(r) = residuals.get(i) {
                hidden = hidden.broadcast_add(&r.to_dtype(hidden.dtype())?)?;
            }
        }
        self.norm.forward(&hidden)
    }

    /// Check the inputs and derive positions and masks.
    fn prepare(&self, inputs: &ModelInputs, (batch, seq): (usize, usize), cache: Option<&KvCache>) -> Result<Prepared> {
        let spec = &self.spec;
        let past = cache.map_or(0, KvCache::seq_len);
        if past > 0 {
            if let Some((k, _)) = cache.and_then(|c| c.get(0)) {
                let cached_batch = k.dim(0)?;
                if cached_batch != batch {
                    return Err(Error::input(format!(
                        "the input has {batch} rows but the cache holds {cached_batch}: continue a cache with the \
                         batch it was filled with"
                    )));
                }
            }
        }
        let total = past + seq;
        let max_positions = spec.max_positions();
        if let Some(max) = max_positions {
            if total > max {
                return Err(Error::SequenceTooLong { len: total, max });
            }
        }

        let (positions, max_position, explicit_positions) = match &inputs.position_ids {
            Some(p) => {
                require_position_ids_shape(p, batch, seq)?;
                let (lo, hi) = min_max(p)?;
                if lo < 0 {
                    return Err(Error::input(format!("position {lo} in `position_ids` is negative")));
                }
                let hi = usize::try_from(hi).unwrap_or(usize::MAX);
                if let Some(limit) = max_positions {
                    if hi >= limit {
                        return Err(Error::input(format!(
                            "position {hi} in `position_ids` is out of range: the model has {limit} positions \
                             (`max_position_embeddings`)"
                        )));
                    }
                }
                (p.to_dtype(DType::U32)?, hi, true)
            }
            None => {
                let range: Vec<u32> = (past..total).map(|p| p as u32).collect();
                (Tensor::from_vec(range, (1, seq), &self.device)?, total - 1, false)
            }
        };

        let padding = match &inputs.attention_mask {
            Some(mask) => {
                if mask.dims() != [batch, total] {
                    let what = if past > 0 {
                        format!("[batch, cached + new] = {:?} ({past} cached and {seq} new tokens)", [batch, total])
                    } else {
                        format!("{:?}, the shape of `input_ids`", [batch, seq])
                    };
                    return Err(Error::input(format!(
                        "`attention_mask` has shape {:?} but must have shape {what}",
                        mask.dims()
                    )));
                }
                let keep = mask.ne(0u32)?.flatten_all()?.to_vec1::<u8>()?;
                Some(keep.into_iter().map(|k| k != 0).collect::<Vec<bool>>())
            }
            None => None,
        };
        // `transformers` looks for packed sequences only without a mask and without a cache;
        // with `use_cache` its forward pass always has one.
        let packed = if cache.is_none() && !spec.use_cache && explicit_positions && padding.is_none() {
            let flat = positions.to_dtype(DType::I64)?.broadcast_as((batch, seq))?.flatten_all()?.to_vec1::<i64>()?;
            PackedSequences::detect(&flat, batch, seq)
        } else {
            None
        };
        let masks = MaskBuilder::new(batch, seq, past, padding, packed);
        Ok(Prepared { positions, max_position, masks })
    }
}

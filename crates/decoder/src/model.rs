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
use crate::rope::RotaryEmbedding;
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

/// The checked inputs of one forward pass.
struct Prepared {
    input_ids: Tensor,
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

    fn run(
        &self,
        inputs: &ModelInputs,
        mut cache: Option<&mut KvCache>,
        mut router_logits: Option<&mut Vec<Tensor>>,
    ) -> Result<Tensor> {
        let prepared = self.prepare(inputs, cache.as_deref())?;
        let mut hidden = self.embed_tokens.forward(&prepared.input_ids)?;
        if let Some(scale) = &self.embed_scale {
            hidden = hidden.broadcast_mul(scale)?;
        }
        if let Some(m) = self.spec.options.embedding_multiplier {
            hidden = (hidden * m)?;
        }
        let cos_sin = self.rotary.cos_sin(&prepared.positions, prepared.max_position, self.dtype)?;
        let sliding_cos_sin = match &self.sliding_rotary {
            Some(rotary) if self.spec.has_sliding_layers() => {
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
        }
        self.norm.forward(&hidden)
    }

    /// Check the inputs and derive positions and masks.
    fn prepare(&self, inputs: &ModelInputs, cache: Option<&KvCache>) -> Result<Prepared> {
        let spec = &self.spec;
        let input_ids = inputs.input_ids()?;
        let (batch, seq) = dims2_int(input_ids, "input_ids")?;
        let past = cache.map_or(0, KvCache::seq_len);
        if past > 0 {
            if let Some((k, _)) = cache.and_then(|c| c.get(0)) {
                let cached_batch = k.dim(0)?;
                if cached_batch != batch {
                    return Err(Error::input(format!(
                        "`input_ids` has {batch} rows but the cache holds {cached_batch}: continue a cache with the \
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

        let input_ids = ids_in_range(input_ids, "input_ids", spec.vocab_size)?;

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
        Ok(Prepared { input_ids, positions, max_position, masks })
    }
}

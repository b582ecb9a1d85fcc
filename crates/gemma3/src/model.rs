//! The Gemma 3 network: the SigLIP vision tower, `Gemma3MultiModalProjector`, and the
//! language model run on the prompt's embeddings with each image's tokens replaced by its
//! projected features and attending to each other in both directions.

use std::sync::Arc;

use autocandle_core::inputs::dims2_int;
use autocandle_core::{Error, KvCache, ModelInputs, Result};
use autocandle_decoder::{CausalLm, DecoderExtras, DecoderModel, DecoderSpec, NormStyle, RmsNorm};
use autocandle_siglip::SiglipVisionModel;
use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;

use crate::config::{Gemma3Config, PoolSizes};

/// Where a checkpoint keeps each part. `transformers` 5 writes the layout of the original
/// checkpoints (`language_model.model.*`, `language_model.lm_head`, `vision_tower.*`,
/// `multi_modal_projector.*`) and loads both that and its module layout
/// (`model.language_model.*`, `lm_head`, `model.vision_tower.*`, ...).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Layout {
    /// `language_model.model.*`, `vision_tower.*`, `multi_modal_projector.*`.
    Original,
    /// `model.language_model.*`, `model.vision_tower.*`, `model.multi_modal_projector.*`.
    Modules,
}

impl Layout {
    pub(crate) fn of(vb: &VarBuilder<'_>) -> Self {
        if vb.contains_tensor("language_model.model.embed_tokens.weight") {
            Self::Original
        } else {
            Self::Modules
        }
    }

    fn vision(self) -> &'static str {
        match self {
            Self::Original => "vision_tower",
            Self::Modules => "model.vision_tower",
        }
    }

    fn projector(self) -> &'static str {
        match self {
            Self::Original => "multi_modal_projector",
            Self::Modules => "model.multi_modal_projector",
        }
    }

    fn language_model(self) -> &'static str {
        match self {
            Self::Original => "language_model.model",
            Self::Modules => "model.language_model",
        }
    }
}

/// The vision tower and `Gemma3MultiModalProjector`: images `[n, 3, size, size]` to features
/// `[n, mm_tokens_per_image, text_hidden]`.
#[derive(Debug, Clone)]
struct ImageEncoder {
    /// Shared: the tower is not `Clone`.
    tower: Arc<SiglipVisionModel>,
    /// `mm_soft_emb_norm`: Gemma 3's RMSNorm, `(1 + weight)`.
    norm: RmsNorm,
    /// `mm_input_projection_weight` `[vision_hidden, text_hidden]`.
    projection: Tensor,
    pool: PoolSizes,
    image_size: usize,
}

impl ImageEncoder {
    fn load(vb: &VarBuilder<'_>, layout: Layout, config: &Gemma3Config, text_hidden: usize) -> Result<Self> {
        let vision = config.vision();
        let pool = config.pool_sizes()?;
        let tower_vb = vb.pp(layout.vision());
        let tower_vb = if tower_vb.contains_tensor("vision_model.embeddings.patch_embedding.weight") {
            tower_vb.pp("vision_model")
        } else {
            tower_vb
        };
        let proj = vb.pp(layout.projector());
        Ok(Self {
            tower: Arc::new(SiglipVisionModel::new(tower_vb, &vision)?),
            norm: RmsNorm::load(
                proj.pp("mm_soft_emb_norm"),
                vision.hidden_size,
                vision.layer_norm_eps,
                NormStyle::OnePlusWeight,
            )?,
            projection: proj.get((vision.hidden_size, text_hidden), "mm_input_projection_weight")?,
            pool,
            image_size: vision.image_size,
        })
    }

    /// `get_image_features`: the projected features `[n, tokens, text_hidden]` of `pixel_values`.
    fn features(&self, pixel_values: &Tensor) -> Result<Tensor> {
        let size = self.image_size;
        match pixel_values.dims() {
            [n, _, h, w] if *n > 0 && *h == size && *w == size => {}
            dims => {
                return Err(Error::input(format!(
                    "`pixel_values` must have shape [images, channels, {size}, {size}] (the vision tower's \
                     `image_size`; make them with the model's processor), got {dims:?}"
                )))
            }
        }
        let mut inputs = ModelInputs::default();
        inputs.pixel_values = Some(pixel_values.clone());
        let (hidden, _) = self.tower.encode(&inputs)?;
        let (n, patches, width) = hidden.dims3()?;
        let side = self.pool.patches_per_image;
        if patches != side * side {
            return Err(Error::input(format!(
                "the vision tower gave {patches} patches per image; expected {side}x{side}"
            )));
        }
        let grid = hidden.transpose(1, 2)?.reshape((n, width, side, side))?.contiguous()?;
        let pooled = grid.avg_pool2d(self.pool.kernel)?.flatten_from(2)?.transpose(1, 2)?.contiguous()?;
        let normed = self.norm.forward(&pooled)?;
        let projected = normed.broadcast_matmul(&self.projection.to_dtype(normed.dtype())?)?;
        Ok(projected.to_dtype(hidden.dtype())?)
    }
}

/// What every Gemma 3 head shares in front of the language model: the image encoder and the
/// image token.
#[derive(Debug, Clone)]
pub(crate) struct Multimodal {
    images: ImageEncoder,
    image_token_id: u32,
    vocab_size: usize,
    device: Device,
    dtype: DType,
}

/// The language model's input of one pass: the embeddings and the masks' extras, with the
/// image features that went in.
pub(crate) struct Prepared {
    pub embeds: Tensor,
    pub extras: DecoderExtras,
    pub image_features: Option<Tensor>,
}

/// `get_block_sequence_ids_for_mask`: each run of image tokens (`token_type_ids == 1`) of a row
/// is one block (numbered from 0 per row), every other token `-1`; row-major.
fn block_sequence_ids(token_type_ids: &Tensor) -> Result<Vec<i64>> {
    let rows = token_type_ids.to_dtype(DType::I64)?.to_vec2::<i64>()?;
    let mut out = Vec::with_capacity(rows.iter().map(Vec::len).sum());
    for row in rows {
        let (mut group, mut previous_image) = (-1i64, false);
        for t in row {
            let image = t == 1;
            if image && !previous_image {
                group += 1;
            }
            out.push(if image { group } else { -1 });
            previous_image = image;
        }
    }
    Ok(out)
}

impl Multimodal {
    pub(crate) fn load(vb: &VarBuilder<'_>, layout: Layout, config: &Gemma3Config, spec: &DecoderSpec) -> Result<Self> {
        Ok(Self {
            images: ImageEncoder::load(vb, layout, config, spec.hidden_size)?,
            image_token_id: config.image_token_index,
            vocab_size: spec.vocab_size,
            device: vb.device().clone(),
            dtype: vb.dtype(),
        })
    }

    pub(crate) fn image_token_id(&self) -> u32 {
        self.image_token_id
    }

    pub(crate) fn device(&self) -> &Device {
        &self.device
    }

    pub(crate) fn dtype(&self) -> DType {
        self.dtype
    }

    /// `Gemma3Model.forward` up to the language model, for a pass after `past` cached positions:
    /// the token embeddings (image tokens past the vocabulary embedded as id 0), the image
    /// features merged in place of the image tokens, and on the first pass (no cache) the
    /// bidirectional image blocks of `token_type_ids`, as `generate` passes them only then.
    pub(crate) fn prepare(&self, lm: &DecoderModel, inputs: &ModelInputs, past: usize) -> Result<Prepared> {
        let input_ids = inputs.input_ids()?;
        let (batch, seq) = dims2_int(input_ids, "input_ids")?;
        let image = i64::from(self.image_token_id);
        let ids = input_ids.to_device(&self.device)?.to_dtype(DType::I64)?;
        let llm_ids = if self.image_token_id as usize >= self.vocab_size {
            let is_image = ids.eq(image)?;
            is_image.where_cond(&ids.zeros_like()?, &ids)?
        } else {
            ids.clone()
        };
        let mut embeds = lm.embed(&llm_ids)?;
        let image_features = match &inputs.pixel_values {
            Some(pixels) => {
                let features = self.images.features(&pixels.to_device(&self.device)?.to_dtype(self.dtype)?)?;
                embeds = autocandle_vlm::merge_image_features(&embeds, &ids, self.image_token_id, &features)?;
                Some(features)
            }
            None => {
                if past == 0 {
                    autocandle_vlm::image_tokens_without_images(&ids, self.image_token_id, "gemma3")?;
                }
                None
            }
        };
        let mut extras = DecoderExtras::new();
        if let (Some(types), 0) = (&inputs.token_type_ids, past) {
            if types.dims() != [batch, seq] {
                return Err(Error::input(format!(
                    "`token_type_ids` has shape {:?}; expected that of `input_ids`, [{batch}, {seq}]",
                    types.dims()
                )));
            }
            let blocks = block_sequence_ids(types)?;
            if blocks.iter().any(|&b| b >= 0) {
                extras = extras.with_block_sequence_ids(blocks);
            }
        }
        Ok(Prepared { embeds, extras, image_features })
    }
}

/// The cached length of `cache` (0 without one).
pub(crate) fn past_of(cache: Option<&KvCache>) -> usize {
    cache.map_or(0, KvCache::seq_len)
}

/// `Gemma3Model` without the registration: image encoder and language model.
#[derive(Debug, Clone)]
pub(crate) struct BaseParts {
    pub mm: Multimodal,
    pub lm: DecoderModel,
}

impl BaseParts {
    pub(crate) fn load(vb: VarBuilder<'_>, config: &Gemma3Config) -> Result<Self> {
        let spec = config.text_spec()?;
        let layout = Layout::of(&vb);
        let mm = Multimodal::load(&vb, layout, config, &spec)?;
        let lm = DecoderModel::load(vb.pp(layout.language_model()), &spec)?;
        Ok(Self { mm, lm })
    }

    /// The last hidden state and the image features.
    pub(crate) fn run(&self, inputs: &ModelInputs, cache: Option<&mut KvCache>) -> Result<(Tensor, Option<Tensor>)> {
        let p = self.mm.prepare(&self.lm, inputs, past_of(cache.as_deref()))?;
        let hidden = self.lm.forward_embeds(&p.embeds, inputs, cache, &p.extras)?;
        Ok((hidden, p.image_features))
    }
}

/// `Gemma3ForConditionalGeneration` without the registration: image encoder, language model
/// and `lm_head` (tied to the embeddings with `tie_word_embeddings`).
#[derive(Debug, Clone)]
pub(crate) struct LmParts {
    pub mm: Multimodal,
    pub lm: CausalLm,
}

impl LmParts {
    pub(crate) fn load(vb: VarBuilder<'_>, config: &Gemma3Config) -> Result<Self> {
        let spec = config.text_spec()?;
        let layout = Layout::of(&vb);
        let mm = Multimodal::load(&vb, layout, config, &spec)?;
        let lm = match layout {
            Layout::Original => CausalLm::load(vb.pp("language_model"), &spec, "model")?,
            Layout::Modules => CausalLm::load(vb, &spec, "model.language_model")?,
        };
        Ok(Self { mm, lm })
    }

    /// The logits (the last `logits_to_keep` positions when set) and the image features.
    pub(crate) fn run(&self, inputs: &ModelInputs, cache: Option<&mut KvCache>) -> Result<(Tensor, Option<Tensor>)> {
        let p = self.mm.prepare(self.lm.model(), inputs, past_of(cache.as_deref()))?;
        let logits = self.lm.forward_embeds(&p.embeds, inputs, cache, &p.extras)?;
        Ok((logits, p.image_features))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_blocks_per_row() {
        let types = Tensor::new(&[[0i64, 1, 1, 0, 1, 1], [1, 1, 0, 0, 0, 0]], &Device::Cpu).unwrap();
        assert_eq!(block_sequence_ids(&types).unwrap(), [-1, 0, 0, -1, 1, 1, 0, 0, -1, -1, -1, -1]);
    }
}

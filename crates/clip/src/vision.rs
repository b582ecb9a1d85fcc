//! CLIP's vision tower: [`CLIPVisionModel`] (a ViT with a class embedding and a LayerNorm
//! before the encoder) and [`CLIPVisionModelWithProjection`], as `transformers`' `modeling_clip`.

use autocandle_core::nn::{linear_no_bias, Linear};
use autocandle_core::resize::{interpolate_pos_encoding, Resample};
use candle_core::{DType, Device, Module, Tensor};
use candle_nn::{LayerNorm, VarBuilder};

use autocandle_core::{AutoRegister, Error, LoadOptions, Loaded, ModelInputs, ModelOutput, Result};

use crate::config::CLIPVisionConfig;
use crate::layers::{norm, pixel_values, Encoder, ImageSizeCheck, PatchEmbedding};
use crate::load::Tower;

/// Where the vision tower is in CLIP checkpoints.
const VISION_TOWER: Tower = Tower {
    class: "CLIPVisionModel",
    model_type: "clip_vision_model",
    composite: "clip",
    config_key: "vision_config",
    prefix: "vision_model",
    inherit: &["projection_dim"],
};

/// `CLIPVisionEmbeddings`: the patch embedding (no bias), the class embedding in front, and
/// learned position embeddings.
#[derive(Debug)]
struct VisionEmbeddings {
    patch_embedding: PatchEmbedding,
    class_embedding: Tensor,
    /// `position_embedding.weight` `[1 + grid², hidden]`.
    position_embedding: Tensor,
}

impl VisionEmbeddings {
    fn load(vb: VarBuilder<'_>, config: &CLIPVisionConfig) -> Result<Self> {
        let h = config.hidden_size;
        let positions = config.grid() * config.grid() + 1;
        Ok(Self {
            patch_embedding: PatchEmbedding::load(
                vb.pp("patch_embedding"),
                (config.num_channels, config.image_size, config.patch_size, h),
                false,
                ImageSizeCheck::Exact,
            )?,
            class_embedding: vb.get(h, "class_embedding")?,
            position_embedding: vb.get((positions, h), "position_embedding.weight")?,
        })
    }

    /// With `interpolate` (`interpolate_pos_encoding`), images of any size of at least one patch,
    /// the position embeddings resized bicubically to their patch grid as `transformers`'
    /// `CLIPVisionEmbeddings` does.
    fn forward(&self, pixel_values: &Tensor, interpolate: bool) -> Result<Tensor> {
        let (patches, grid) = if interpolate {
            let (patches, grid) = self.patch_embedding.forward_any_size(pixel_values)?;
            (patches, Some(grid))
        } else {
            (self.patch_embedding.forward(pixel_values)?, None)
        };
        let (batch, _, hidden) = patches.dims3()?;
        let class = self.class_embedding.reshape((1, 1, hidden))?.expand((batch, 1, hidden))?;
        let embeddings = Tensor::cat(&[&class, &patches], 1)?;
        match grid {
            None => Ok(embeddings.broadcast_add(&self.position_embedding)?),
            Some(grid) => {
                let (_, _, height, width) = pixel_values.dims4()?;
                let positions = self.position_embedding.unsqueeze(0)?;
                let positions = interpolate_pos_encoding(&positions, 1, grid, height == width, Resample::Bicubic)?;
                Ok(embeddings.broadcast_add(&positions)?)
            }
        }
    }
}

/// The CLIP vision encoder without a projection (`CLIPVisionModel`).
///
/// `forward` takes `pixel_values` `[batch, channels, image_size, image_size]` and gives
/// `last_hidden_state` `[batch, 1 + patches, hidden]` (the encoder output, without the final
/// LayerNorm) and `pooler_output` `[batch, hidden]` (`post_layernorm` of the class token).
///
/// It is registered as the base model (`AutoModel`) of model type `clip_vision_model` (a
/// saved `CLIPVisionModel`); [`CLIPVisionModel::from_pretrained`] also loads the vision tower
/// of a `clip` checkpoint.
#[derive(Debug, AutoRegister)]
#[auto(task = "base", class = "CLIPVisionModel")]
pub struct CLIPVisionModel {
    embeddings: VisionEmbeddings,
    /// `pre_layrnorm` (sic, the `transformers` name).
    pre_layrnorm: LayerNorm,
    encoder: Encoder,
    post_layernorm: LayerNorm,
    device: Device,
    dtype: DType,
}

impl CLIPVisionModel {
    /// Build the tower; `vb` holds `embeddings`, `pre_layrnorm`, `encoder` and `post_layernorm`
    /// (`vision_model` in a `CLIPModel`).
    pub fn new(vb: VarBuilder<'_>, config: &CLIPVisionConfig) -> Result<Self> {
        config.validate()?;
        let (h, eps) = (config.hidden_size, config.layer_norm_eps);
        Ok(Self {
            embeddings: VisionEmbeddings::load(vb.pp("embeddings"), config)?,
            pre_layrnorm: norm(vb.pp("pre_layrnorm"), h, eps)?,
            encoder: Encoder::load(vb.pp("encoder"), &config.encoder_spec())?,
            post_layernorm: norm(vb.pp("post_layernorm"), h, eps)?,
            device: vb.device().clone(),
            dtype: vb.dtype(),
        })
    }

    /// Load from a Hub repo id or a local folder holding a `CLIPVisionModel` or a `CLIPModel`.
    pub fn from_pretrained(id_or_path: &str) -> Result<Self> {
        Self::from_pretrained_with(id_or_path, &LoadOptions::default()).map(|l| l.value)
    }

    /// [`CLIPVisionModel::from_pretrained`] with options; config overrides apply to the
    /// vision config.
    pub fn from_pretrained_with(id_or_path: &str, opts: &LoadOptions) -> Result<Loaded<Self>> {
        VISION_TOWER.load(id_or_path, opts, |vb, config: &CLIPVisionConfig| Self::new(vb.pp("vision_model"), config))
    }

    /// `(last_hidden_state, pooler_output)` for `pixel_values`.
    pub fn encode(&self, inputs: &ModelInputs) -> Result<(Tensor, Tensor)> {
        let pixels = pixel_values(inputs, &self.device, self.dtype)?;
        let x = self.pre_layrnorm.forward(&self.embeddings.forward(&pixels, inputs.interpolate_pos_encoding)?)?;
        let hidden = self.encoder.forward(&x, None)?;
        let pooled = self.post_layernorm.forward(&hidden.narrow(1, 0, 1)?.squeeze(1)?)?;
        Ok((hidden, pooled))
    }
}

impl CLIPVisionModel {
    /// The number of encoder layers (`num_hidden_layers`).
    pub fn num_layers(&self) -> usize {
        self.encoder.num_layers()
    }

    /// `hidden_states[i]` of `output_hidden_states=True` for each `i` of `layers`, in order:
    /// index 0 is the embeddings after `pre_layrnorm`, index `n` the output of layer `n`
    /// (before `post_layernorm`), negative indices count from the end (`-1` is the last
    /// layer's output), as LLaVA's `vision_feature_layer` selects them. `pixel_values`
    /// `[batch, channels, image_size, image_size]`; layers past the deepest one asked for are
    /// not run. An index out of range is an error.
    pub fn hidden_states(&self, pixel_values: &Tensor, layers: &[i64]) -> Result<Vec<Tensor>> {
        let states = self.num_layers() + 1;
        let resolve = |i: i64| -> Result<usize> {
            let at = if i < 0 { i + states as i64 } else { i };
            usize::try_from(at).ok().filter(|&a| a < states).ok_or_else(|| {
                Error::input(format!(
                    "hidden state {i} of the vision tower does not exist: it has {states} (the embeddings and {} layers)",
                    states - 1
                ))
            })
        };
        let picked = layers.iter().map(|&i| resolve(i)).collect::<Result<Vec<_>>>()?;
        if !pixel_values.dtype().is_float() {
            return Err(Error::input(format!("`pixel_values` must hold floats, got {:?}", pixel_values.dtype())));
        }
        let pixels = pixel_values.to_device(&self.device)?.to_dtype(self.dtype)?;
        let x = self.pre_layrnorm.forward(&self.embeddings.forward(&pixels, false)?)?;
        let deepest = picked.iter().copied().max().unwrap_or(0);
        let all = self.encoder.hidden_states(&x, None, deepest)?;
        Ok(picked.into_iter().filter_map(|i| all.get(i).cloned()).collect())
    }
}

// Saved `CLIPVisionModel`s have their weights at the root (`embeddings.`) or, made before
// `transformers` 5, under `vision_model.`; both load.
crate::tower_model!(CLIPVisionModel, config = CLIPVisionConfig, prefix = "vision_model");
crate::pretrained_model!(CLIPVisionModel);

/// The output of [`CLIPVisionModelWithProjection`] (`CLIPVisionModelOutput`).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct CLIPVisionModelOutput {
    /// `[batch, projection_dim]`: the projected pooled state (not normalised).
    pub image_embeds: Tensor,
    /// `[batch, 1 + patches, hidden]`
    pub last_hidden_state: Tensor,
}

impl ModelOutput for CLIPVisionModelOutput {
    fn fields(&self) -> Vec<(&'static str, &Tensor)> {
        vec![("image_embeds", &self.image_embeds), ("last_hidden_state", &self.last_hidden_state)]
    }
}

/// The CLIP vision encoder with its projection (`CLIPVisionModelWithProjection`):
/// `image_embeds` = `visual_projection(pooler_output)`, the image features of CLIP's shared
/// embedding space.
///
/// `transformers` has no Auto class for it: load it with
/// [`CLIPVisionModelWithProjection::from_pretrained`] from a `CLIPVisionModelWithProjection` or
/// a `CLIPModel` checkpoint (weights `vision_model.*` and `visual_projection.weight`).
#[derive(Debug)]
pub struct CLIPVisionModelWithProjection {
    vision_model: CLIPVisionModel,
    visual_projection: Linear,
}

impl CLIPVisionModelWithProjection {
    /// Build the model; `vb` holds `vision_model` and `visual_projection`.
    pub fn new(vb: VarBuilder<'_>, config: &CLIPVisionConfig) -> Result<Self> {
        if config.projection_dim == 0 {
            return Err(Error::config("clip_vision_model", "`projection_dim` must be at least 1, got 0"));
        }
        Ok(Self {
            vision_model: CLIPVisionModel::new(vb.pp("vision_model"), config)?,
            visual_projection: linear_no_bias(config.hidden_size, config.projection_dim, vb.pp("visual_projection"))?,
        })
    }

    /// Load from a Hub repo id or a local folder holding a `CLIPVisionModelWithProjection` or a
    /// `CLIPModel` (the projection width is then the `clip` config's `projection_dim`, which
    /// shapes `visual_projection` in its checkpoint).
    pub fn from_pretrained(id_or_path: &str) -> Result<Self> {
        Self::from_pretrained_with(id_or_path, &LoadOptions::default()).map(|l| l.value)
    }

    /// [`CLIPVisionModelWithProjection::from_pretrained`] with options.
    pub fn from_pretrained_with(id_or_path: &str, opts: &LoadOptions) -> Result<Loaded<Self>> {
        VISION_TOWER.load(id_or_path, opts, |vb, config: &CLIPVisionConfig| Self::new(vb, config))
    }

    /// The vision tower.
    pub fn vision_model(&self) -> &CLIPVisionModel {
        &self.vision_model
    }

    /// Run on `pixel_values`.
    pub fn forward(&self, inputs: &ModelInputs) -> Result<CLIPVisionModelOutput> {
        let (last_hidden_state, pooled) = self.vision_model.encode(inputs)?;
        Ok(CLIPVisionModelOutput { image_embeds: self.visual_projection.forward(&pooled)?, last_hidden_state })
    }
}

crate::pretrained_model!(CLIPVisionModelWithProjection => vision_model);

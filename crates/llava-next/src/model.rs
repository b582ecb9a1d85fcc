//! [`LlavaNextModel`] and [`LlavaNextForConditionalGeneration`] (with the same class registered for
//! `multimodal-lm`, `vision2seq` and `pretraining`), as `transformers`' `modeling_llava`.

use autocandle_clip::CLIPVisionModel;
use autocandle_core::nn::{linear_b, Linear};
use autocandle_core::{
    Activation, AutoRegister, BaseModelOutput, Error, ForImageTextToText, ForMultimodalLm, ForPreTraining,
    ImageTextToTextOutput, KvCache, LoadModel, Model, ModelInputs, PreTrainedModel, PreTrainingOutput, Result,
};
use autocandle_decoder::{CausalLm, DecoderExtras, DecoderModel};
use candle_core::{DType, Device, Module, Tensor};
use candle_nn::VarBuilder;

use autocandle_llava::SelectStrategy;

use crate::config::{LlavaNextConfig, MODEL_TYPE};

/// `LlavaNextMultiModalProjector`: `linear_2(act(linear_1(features)))`, from the vision width
/// (times the number of selected layers) to the language model's.
#[derive(Debug, Clone)]
struct Projector {
    linear_1: Linear,
    act: Activation,
    linear_2: Linear,
}

impl Projector {
    fn load(vb: VarBuilder<'_>, input: usize, hidden: usize, act: Activation, bias: bool) -> Result<Self> {
        Ok(Self {
            linear_1: linear_b(input, hidden, bias, vb.pp("linear_1"))?,
            act,
            linear_2: linear_b(hidden, hidden, bias, vb.pp("linear_2"))?,
        })
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let x = self.act.forward(&self.linear_1.forward(x)?)?;
        Ok(self.linear_2.forward(&x)?)
    }
}

/// Where the parts of a LLaVA checkpoint are: `transformers` 5 holds them in memory as
/// `model.vision_tower`, `model.multi_modal_projector`, `model.language_model` (a base decoder)
/// and `lm_head`, but saves them as 4.x did (`vision_tower`, `multi_modal_projector`,
/// `language_model.model`, `language_model.lm_head`), and 4.x CLIP towers sit one level
/// deeper (`vision_tower.vision_model`). Every layout loads.
struct Layout {
    /// The vision tower (`embeddings`, `pre_layrnorm`, `encoder`, ...).
    vision: &'static str,
    /// The language model's root and the base decoder's prefix under it (`CausalLm::load`).
    language: (&'static str, &'static str),
}

impl Layout {
    fn of(vb: &VarBuilder<'_>) -> Self {
        let vision = if vb.contains_tensor("model.vision_tower.vision_model.embeddings.class_embedding") {
            "model.vision_tower.vision_model"
        } else {
            "model.vision_tower"
        };
        let saved = ["embed_tokens.weight", "norm.weight", "layers.0.input_layernorm.weight"]
            .iter()
            .any(|w| vb.contains_tensor(&format!("language_model.model.{w}")));
        let language = if saved { ("language_model", "model") } else { ("", "model.language_model") };
        Self { vision, language }
    }
}

/// `select_best_resolution`: the pinpoint `[height, width]` that keeps the most of an image
/// of `original` `(height, width)` pixels when resized into it, the least wasted on ties.
pub fn select_best_resolution(original: (usize, usize), pinpoints: &[[usize; 2]]) -> Result<(usize, usize)> {
    let (oh, ow) = original;
    let mut best = None;
    let mut max_effective = 0usize;
    let mut min_wasted = usize::MAX;
    for &[h, w] in pinpoints {
        let scale = (w as f64 / ow as f64).min(h as f64 / oh as f64);
        let (dw, dh) = ((ow as f64 * scale) as usize, (oh as f64 * scale) as usize);
        let effective = (dw * dh).min(ow * oh);
        let wasted = (w * h).saturating_sub(effective);
        if effective > max_effective || (effective == max_effective && wasted < min_wasted) {
            max_effective = effective;
            min_wasted = wasted;
            best = Some((h, w));
        }
    }
    best.ok_or_else(|| {
        Error::input(format!("no `image_grid_pinpoints` resolution fits an image of {oh}x{ow} pixels (height x width)"))
    })
}

/// `round(x, 7)`, then `int()`.
fn round7_trunc(x: f64) -> usize {
    ((x * 1e7).round() / 1e7) as usize
}

/// `unpad_image`: `features` `[hidden, height, width]` (the grid of tile features) without the
/// rows or columns that stand for the padding of an image of `original` `(height, width)`.
fn unpad(features: &Tensor, original: (usize, usize)) -> Result<Tensor> {
    let (oh, ow) = original;
    let (_, ch, cw) = features.dims3()?;
    let original_ratio = ow as f64 / oh as f64;
    let current_ratio = cw as f64 / ch as f64;
    Ok(if original_ratio > current_ratio {
        let new_h = round7_trunc(oh as f64 * (cw as f64 / ow as f64));
        let padding = ch.saturating_sub(new_h) / 2;
        features.narrow(1, padding, ch - 2 * padding)?
    } else {
        let new_w = round7_trunc(ow as f64 * (ch as f64 / oh as f64));
        let padding = cw.saturating_sub(new_w) / 2;
        features.narrow(2, padding, cw - 2 * padding)?
    })
}

/// The vision half: the CLIP tower, the feature selection, the projector, and the packing of
/// each image's tiles (`image_newline`, `image_grid_pinpoints`).
#[derive(Debug, Clone)]
struct ImageEncoder {
    tower: std::sync::Arc<CLIPVisionModel>,
    projector: Projector,
    image_newline: Tensor,
    layers: Vec<i64>,
    strategy: SelectStrategy,
    image_token_id: u32,
    pinpoints: Vec<[usize; 2]>,
    /// The vision tower's `image_size` (the side of one tile).
    tile: usize,
    /// Patches along one side of a tile.
    side: usize,
}

impl ImageEncoder {
    fn load(vb: &VarBuilder<'_>, layout: &Layout, config: &LlavaNextConfig, text_hidden: usize) -> Result<Self> {
        let vision = config.vision()?;
        let layers = config.vision_feature_layer.indices();
        if layers.is_empty() {
            return Err(Error::config(MODEL_TYPE, "`vision_feature_layer` is an empty list"));
        }
        let states = vision.num_hidden_layers as i64 + 1;
        if let Some(bad) = layers.iter().find(|&&i| i >= states || i < -states) {
            return Err(Error::config(
                MODEL_TYPE,
                format!(
                    "`vision_feature_layer` {bad} is out of range: the vision tower has {states} hidden states \
                     (the embeddings and {} layers)",
                    states - 1
                ),
            ));
        }
        if vision.patch_size == 0 || vision.image_size < vision.patch_size {
            return Err(Error::config(
                MODEL_TYPE,
                format!(
                    "the vision tower's `image_size` ({}) must hold at least one `patch_size` ({})",
                    vision.image_size, vision.patch_size
                ),
            ));
        }
        let pinpoints = config.pinpoints()?;
        let tower = CLIPVisionModel::new(vb.pp(layout.vision), &vision)?;
        let projector = Projector::load(
            vb.pp("model.multi_modal_projector"),
            vision.hidden_size * layers.len(),
            text_hidden,
            config.projector_hidden_act,
            config.multimodal_projector_bias,
        )?;
        let image_newline = vb.get(text_hidden, "model.image_newline")?;
        Ok(Self {
            tower: std::sync::Arc::new(tower),
            projector,
            image_newline,
            layers,
            strategy: config.vision_feature_select_strategy,
            image_token_id: config.image_token_id()?,
            pinpoints,
            tile: vision.image_size,
            side: vision.image_size / vision.patch_size,
        })
    }

    /// `image_sizes` `[images, 2]` (height, width) as sizes.
    fn sizes(image_sizes: &Tensor) -> Result<Vec<(usize, usize)>> {
        let dims = image_sizes.dims();
        if dims.len() != 2 || dims[1] != 2 {
            return Err(Error::input(format!(
                "`image_sizes` must have shape [images, 2] (height, width), got {dims:?}"
            )));
        }
        let rows = image_sizes.to_dtype(DType::F64)?.to_vec2::<f64>()?;
        rows.iter()
            .map(|r| {
                let ok = |v: f64| (1.0..=1e9).contains(&v) && v.fract() == 0.0;
                if ok(r[0]) && ok(r[1]) {
                    Ok((r[0] as usize, r[1] as usize))
                } else {
                    Err(Error::input(format!(
                        "`image_sizes` holds [{}, {}]: sizes must be positive integers",
                        r[0], r[1]
                    )))
                }
            })
            .collect()
    }

    /// The tile grid `(rows, columns)` of an image of `size` (`get_anyres_image_grid_shape`).
    fn grid(&self, size: (usize, usize)) -> Result<(usize, usize)> {
        let (h, w) = select_best_resolution(size, &self.pinpoints)?;
        Ok((h.div_ceil(self.tile), w.div_ceil(self.tile)))
    }

    /// `get_image_features`: each image's packed features `[tokens, text_hidden]` for
    /// `pixel_values` `[images, tiles, channels, image_size, image_size]` (tiles padded to the
    /// most of any image) or `[all tiles, channels, image_size, image_size]`, and
    /// `image_sizes` `[images, 2]`.
    fn features(&self, pixel_values: &Tensor, image_sizes: Option<&Tensor>) -> Result<Vec<Tensor>> {
        let image_sizes = image_sizes.ok_or_else(|| {
            Error::input("LLaVA-NeXT needs `image_sizes` (each image's height and width) with `pixel_values`")
        })?;
        let sizes = Self::sizes(image_sizes)?;
        let grids = sizes.iter().map(|&s| self.grid(s)).collect::<Result<Vec<_>>>()?;
        let counts: Vec<usize> = grids.iter().map(|(r, c)| r * c + 1).collect();
        let pixels = match pixel_values.rank() {
            5 => {
                let (n, tiles) = (pixel_values.dim(0)?, pixel_values.dim(1)?);
                if n != sizes.len() {
                    return Err(Error::input(format!(
                        "`pixel_values` holds {n} images but `image_sizes` {} sizes",
                        sizes.len()
                    )));
                }
                let parts = counts
                    .iter()
                    .enumerate()
                    .map(|(i, &c)| {
                        if c > tiles {
                            return Err(Error::input(format!(
                                "image {i} of {}x{} pixels needs {c} tiles but `pixel_values` has {tiles} per image",
                                sizes[i].0, sizes[i].1
                            )));
                        }
                        Ok(pixel_values.get(i)?.narrow(0, 0, c)?)
                    })
                    .collect::<Result<Vec<_>>>()?;
                Tensor::cat(&parts, 0)?
            }
            4 => {
                let total: usize = counts.iter().sum();
                if pixel_values.dim(0)? != total {
                    return Err(Error::input(format!(
                        "`pixel_values` holds {} tiles but the `image_sizes` need {total}",
                        pixel_values.dim(0)?
                    )));
                }
                pixel_values.clone()
            }
            _ => {
                return Err(Error::input(format!(
                    "`pixel_values` must have shape [images, tiles, channels, height, width] (or [tiles, channels, \
                     height, width]), got {:?}",
                    pixel_values.dims()
                )))
            }
        };
        let (_, _, ph, pw) = pixels.dims4()?;
        if (ph, pw) != (self.tile, self.tile) {
            return Err(Error::input(format!(
                "`pixel_values` tiles are {ph}x{pw} pixels but the vision tower takes {0}x{0}",
                self.tile
            )));
        }
        let mut selected = self.tower.hidden_states(&pixels, &self.layers)?;
        if self.strategy == SelectStrategy::Default {
            selected = selected
                .into_iter()
                .map(|h| {
                    let seq = h.dim(1)?;
                    h.narrow(1, 1, seq - 1)
                })
                .collect::<candle_core::Result<_>>()?;
        }
        let features = if selected.len() == 1 { selected.remove(0) } else { Tensor::cat(&selected, 2)? };
        let features = self.projector.forward(&features)?;
        let mut start = 0;
        let mut packed = Vec::with_capacity(counts.len());
        for ((&count, &grid), &size) in counts.iter().zip(&grids).zip(&sizes) {
            packed.push(self.pack(&features.narrow(0, start, count)?, grid, size)?);
            start += count;
        }
        Ok(packed)
    }

    /// `pack_image_features` for one image: its tiles' features `[tiles, tokens, hidden]`
    /// (the base image first) to `[packed tokens, hidden]`: the base image's tokens, then the
    /// grid of the other tiles' patches, unpadded, with `image_newline` after each row.
    fn pack(&self, features: &Tensor, (rows, cols): (usize, usize), size: (usize, usize)) -> Result<Tensor> {
        let (tiles, tokens, hidden) = features.dims3()?;
        let newline = self.image_newline.to_dtype(features.dtype())?;
        if tiles == 1 {
            return Ok(Tensor::cat(&[features.get(0)?, newline.unsqueeze(0)?], 0)?);
        }
        let side = self.side;
        if tokens != side * side {
            return Err(Error::input(format!(
                "each tile gives {tokens} features but a {side}x{side} grid of patches is needed to tile them: the \
                 `full` `vision_feature_select_strategy` (class token kept) cannot be packed"
            )));
        }
        let base = features.get(0)?;
        let grid = features
            .narrow(0, 1, tiles - 1)?
            .reshape((rows, cols, side, side, hidden))?
            .permute((4, 0, 2, 1, 3))?
            .contiguous()?
            .reshape((hidden, rows * side, cols * side))?;
        let grid = unpad(&grid, size)?;
        let (_, h, w) = grid.dims3()?;
        let newline = newline.reshape((hidden, 1, 1))?.broadcast_as((hidden, h, 1))?;
        let grid = Tensor::cat(&[&grid, &newline.contiguous()?], 2)?.reshape((hidden, h * (w + 1)))?.t()?;
        Ok(Tensor::cat(&[&base, &grid], 0)?)
    }

    /// The prompt's embeddings with the image features in place of the image tokens, and the
    /// features (all images', concatenated: `[tokens, hidden]`).
    fn embeds(&self, language: &DecoderModel, inputs: &ModelInputs, first: bool) -> Result<(Tensor, Option<Tensor>)> {
        let input_ids = inputs.input_ids()?;
        let embeds = language.embed(input_ids)?;
        match &inputs.pixel_values {
            Some(pixels) => {
                let features = Tensor::cat(&self.features(pixels, inputs.image_sizes.as_ref())?, 0)?;
                let merged = autocandle_vlm::merge_image_features(&embeds, input_ids, self.image_token_id, &features)?;
                Ok((merged, Some(features)))
            }
            None => {
                if first {
                    autocandle_vlm::image_tokens_without_images(input_ids, self.image_token_id, MODEL_TYPE)?;
                }
                Ok((embeds, None))
            }
        }
    }
}

/// The LLaVA base model (`LlavaNextModel`): the vision tower, the projector and the language model
/// without its head. `forward` gives the language model's `last_hidden_state`, with
/// `image_hidden_states` (`[images, tokens, text_hidden]`, the projected features) in
/// [`BaseModelOutput::extra`] when the inputs have `pixel_values`.
///
/// Inputs: `input_ids` (each image's run of `image_token_id`s, as `LlavaNextProcessor` expands
/// `<image>`), `attention_mask`, `position_ids`, `pixel_values` `[images, 3, image_size,
/// image_size]`.
#[derive(Debug, Clone, AutoRegister)]
#[auto(task = "base", class = "LlavaNextModel")]
pub struct LlavaNextModel {
    images: ImageEncoder,
    language_model: DecoderModel,
}

impl LoadModel for LlavaNextModel {
    type Config = LlavaNextConfig;
    const BASE_MODEL_PREFIX: &'static str = "model";

    fn load(vb: VarBuilder<'_>, config: &LlavaNextConfig) -> Result<Self> {
        let spec = config.text_spec()?;
        let layout = Layout::of(&vb);
        let images = ImageEncoder::load(&vb, &layout, config, spec.hidden_size)?;
        let (root, base) = layout.language;
        let lm_vb = if root.is_empty() { vb.pp(base) } else { vb.pp(root).pp(base) };
        Ok(Self { images, language_model: DecoderModel::load(lm_vb, &spec)? })
    }
}

impl LlavaNextModel {
    /// The language model.
    pub fn language_model(&self) -> &DecoderModel {
        &self.language_model
    }

    /// The vision tower.
    pub fn vision_tower(&self) -> &CLIPVisionModel {
        &self.images.tower
    }

    /// `get_image_features`: each image's packed features `[tokens, text_hidden]` for
    /// `pixel_values` and `image_sizes`.
    pub fn image_features(&self, pixel_values: &Tensor, image_sizes: &Tensor) -> Result<Vec<Tensor>> {
        self.images.features(pixel_values, Some(image_sizes))
    }
}

impl PreTrainedModel for LlavaNextModel {
    fn device(&self) -> &Device {
        self.language_model.device()
    }

    fn dtype(&self) -> DType {
        self.language_model.dtype()
    }
}

impl Model for LlavaNextModel {
    fn forward(&self, inputs: &ModelInputs) -> Result<BaseModelOutput> {
        let (embeds, features) = self.images.embeds(&self.language_model, inputs, true)?;
        let hidden = self.language_model.forward_embeds(&embeds, inputs, None, &DecoderExtras::new())?;
        let out = BaseModelOutput::new(hidden, None);
        Ok(match features {
            Some(f) => out.with_extra("image_hidden_states", f),
            None => out,
        })
    }
}

/// LLaVA with its language-modelling head (`LlavaNextForConditionalGeneration`): logits over the
/// vocabulary for every position, the image tokens' embeddings replaced by the projected
/// image features. `lm_head` is tied to the embedding when the config says so
/// ([`LlavaNextConfig::tied`]).
///
/// Generation: [`ForImageTextToText::forward_with_cache`] takes the images on the first
/// (prefill) pass only; `autocandle_generation::WithImages` does that for the decoding loop.
/// A prompt without images runs as text alone.
#[derive(Debug, Clone, AutoRegister)]
#[auto(task = "image-text-to-text", class = "LlavaNextForConditionalGeneration")]
pub struct LlavaNextForConditionalGeneration {
    images: ImageEncoder,
    lm: CausalLm,
}

impl LoadModel for LlavaNextForConditionalGeneration {
    type Config = LlavaNextConfig;
    const BASE_MODEL_PREFIX: &'static str = "model";

    fn load(vb: VarBuilder<'_>, config: &LlavaNextConfig) -> Result<Self> {
        let spec = config.text_spec()?;
        let layout = Layout::of(&vb);
        let images = ImageEncoder::load(&vb, &layout, config, spec.hidden_size)?;
        let (root, base) = layout.language;
        let lm_vb = if root.is_empty() { vb } else { vb.pp(root) };
        Ok(Self { images, lm: CausalLm::load(lm_vb, &spec, base)? })
    }
}

impl LlavaNextForConditionalGeneration {
    /// The language model with its head.
    pub fn language_model(&self) -> &CausalLm {
        &self.lm
    }

    /// The vision tower.
    pub fn vision_tower(&self) -> &CLIPVisionModel {
        &self.images.tower
    }

    /// `get_image_features`: each image's packed features `[tokens, text_hidden]` for
    /// `pixel_values` and `image_sizes`.
    pub fn image_features(&self, pixel_values: &Tensor, image_sizes: &Tensor) -> Result<Vec<Tensor>> {
        self.images.features(pixel_values, Some(image_sizes))
    }

    fn run(&self, inputs: &ModelInputs, cache: Option<&mut KvCache>) -> Result<ImageTextToTextOutput> {
        let first = cache.as_ref().is_none_or(|c| c.seq_len() == 0);
        let (embeds, features) = self.images.embeds(self.lm.model(), inputs, first)?;
        let logits = self.lm.forward_embeds(&embeds, inputs, cache, &DecoderExtras::new())?;
        Ok(ImageTextToTextOutput::new(logits, features))
    }
}

impl PreTrainedModel for LlavaNextForConditionalGeneration {
    fn device(&self) -> &Device {
        self.lm.model().device()
    }

    fn dtype(&self) -> DType {
        self.lm.model().dtype()
    }
}

impl ForImageTextToText for LlavaNextForConditionalGeneration {
    fn forward(&self, inputs: &ModelInputs) -> Result<ImageTextToTextOutput> {
        self.run(inputs, None)
    }

    fn forward_with_cache(&self, inputs: &ModelInputs, cache: &mut KvCache) -> Result<ImageTextToTextOutput> {
        self.run(inputs, Some(cache))
    }

    fn supports_cache(&self) -> bool {
        true
    }

    fn max_positions(&self) -> Option<usize> {
        self.lm.model().max_positions()
    }

    fn image_token_id(&self) -> Option<u32> {
        Some(self.images.image_token_id)
    }
}

impl ForMultimodalLm for LlavaNextForConditionalGeneration {}

impl ForPreTraining for LlavaNextForConditionalGeneration {
    /// `logits`, and `image_hidden_states` when the inputs have images.
    fn forward(&self, inputs: &ModelInputs) -> Result<PreTrainingOutput> {
        let out = self.run(inputs, None)?;
        let mut fields = vec![("logits", out.logits)];
        if let Some(f) = out.image_hidden_states {
            fields.push(("image_hidden_states", f));
        }
        Ok(PreTrainingOutput::from_fields(fields))
    }
}

/// `LlavaNextForConditionalGeneration` registered for one more task (`transformers` maps the same
/// class for `image-text-to-text`, `multimodal-lm`, `vision2seq` and `pretraining`).
macro_rules! same_class {
    ($(#[$doc:meta])* $name:ident, $task:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, AutoRegister)]
        #[auto(task = $task, class = "LlavaNextForConditionalGeneration")]
        pub struct $name(LlavaNextForConditionalGeneration);

        impl $name {
            /// The model.
            pub fn inner(&self) -> &LlavaNextForConditionalGeneration {
                &self.0
            }
        }

        impl LoadModel for $name {
            type Config = LlavaNextConfig;
            const BASE_MODEL_PREFIX: &'static str = "model";

            fn load(vb: VarBuilder<'_>, config: &LlavaNextConfig) -> Result<Self> {
                LlavaNextForConditionalGeneration::load(vb, config).map(Self)
            }
        }

        impl PreTrainedModel for $name {
            fn device(&self) -> &Device {
                self.0.device()
            }

            fn dtype(&self) -> DType {
                self.0.dtype()
            }
        }

        impl ForImageTextToText for $name {
            fn forward(&self, inputs: &ModelInputs) -> Result<ImageTextToTextOutput> {
                ForImageTextToText::forward(&self.0, inputs)
            }

            fn forward_with_cache(&self, inputs: &ModelInputs, cache: &mut KvCache) -> Result<ImageTextToTextOutput> {
                self.0.forward_with_cache(inputs, cache)
            }

            fn supports_cache(&self) -> bool {
                true
            }

            fn max_positions(&self) -> Option<usize> {
                ForImageTextToText::max_positions(&self.0)
            }

            fn image_token_id(&self) -> Option<u32> {
                ForImageTextToText::image_token_id(&self.0)
            }
        }
    };
}

same_class!(
    /// [`LlavaNextForConditionalGeneration`] as `AutoModelForMultimodalLM` gives it.
    LlavaNextForMultimodalLm,
    "multimodal-lm"
);
same_class!(
    /// [`LlavaNextForConditionalGeneration`] as `AutoModelForPreTraining` gives it.
    LlavaNextForPreTraining,
    "pretraining"
);

impl ForMultimodalLm for LlavaNextForMultimodalLm {}

impl ForPreTraining for LlavaNextForPreTraining {
    fn forward(&self, inputs: &ModelInputs) -> Result<PreTrainingOutput> {
        ForPreTraining::forward(&self.0, inputs)
    }
}

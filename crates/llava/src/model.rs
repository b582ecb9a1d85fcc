//! [`LlavaModel`] and [`LlavaForConditionalGeneration`] (with the same class registered for
//! `multimodal-lm`, `vision2seq` and `pretraining`), as `transformers`' `modeling_llava`.

use autocandle_clip::CLIPVisionModel;
use autocandle_core::nn::{linear_b, Linear};
use autocandle_core::{
    Activation, AutoRegister, BaseModelOutput, Error, ForImageTextToText, ForMultimodalLm, ForPreTraining,
    ForVision2Seq, ImageTextToTextOutput, KvCache, LoadModel, Model, ModelInputs, PreTrainedModel, PreTrainingOutput,
    Result,
};
use autocandle_decoder::{CausalLm, DecoderExtras, DecoderModel};
use candle_core::{DType, Device, Module, Tensor};
use candle_nn::VarBuilder;

use crate::config::{LlavaConfig, SelectStrategy, MODEL_TYPE};

/// `LlavaMultiModalProjector`: `linear_2(act(linear_1(features)))`, from the vision width
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

/// The vision half: the CLIP tower, the feature selection and the projector.
#[derive(Debug, Clone)]
struct ImageEncoder {
    tower: std::sync::Arc<CLIPVisionModel>,
    projector: Projector,
    layers: Vec<i64>,
    strategy: SelectStrategy,
    image_token_id: u32,
}

impl ImageEncoder {
    fn load(vb: &VarBuilder<'_>, layout: &Layout, config: &LlavaConfig, text_hidden: usize) -> Result<Self> {
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
        let tower = CLIPVisionModel::new(vb.pp(layout.vision), &vision)?;
        let projector = Projector::load(
            vb.pp("model.multi_modal_projector"),
            vision.hidden_size * layers.len(),
            text_hidden,
            config.projector_hidden_act,
            config.multimodal_projector_bias,
        )?;
        Ok(Self {
            tower: std::sync::Arc::new(tower),
            projector,
            layers,
            strategy: config.vision_feature_select_strategy,
            image_token_id: config.image_token_id()?,
        })
    }

    /// `get_image_features`: `[images, tokens, text_hidden]` for `pixel_values`
    /// `[images, channels, image_size, image_size]`.
    fn features(&self, pixel_values: &Tensor) -> Result<Tensor> {
        if pixel_values.rank() != 4 {
            return Err(Error::input(format!(
                "`pixel_values` must have shape [images, channels, height, width], got {:?}",
                pixel_values.dims()
            )));
        }
        let mut selected = self.tower.hidden_states(pixel_values, &self.layers)?;
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
        self.projector.forward(&features)
    }

    /// The prompt's embeddings with the image features in place of the image tokens, and the
    /// features. Without `pixel_values`, a prompt that holds image tokens is an error on a
    /// first pass (`first`); later cached passes carry only new tokens.
    fn embeds(&self, language: &DecoderModel, inputs: &ModelInputs, first: bool) -> Result<(Tensor, Option<Tensor>)> {
        let input_ids = inputs.input_ids()?;
        let embeds = language.embed(input_ids)?;
        match &inputs.pixel_values {
            Some(pixels) => {
                let features = self.features(pixels)?;
                let merged = autocandle_vlm::merge_image_features(&embeds, input_ids, self.image_token_id, &features)?;
                Ok((merged, Some(features)))
            }
            None => {
                if first {
                    autocandle_vlm::image_tokens_without_images(input_ids, self.image_token_id, "llava")?;
                }
                Ok((embeds, None))
            }
        }
    }
}

/// The LLaVA base model (`LlavaModel`): the vision tower, the projector and the language model
/// without its head. `forward` gives the language model's `last_hidden_state`, with
/// `image_hidden_states` (`[images, tokens, text_hidden]`, the projected features) in
/// [`BaseModelOutput::extra`] when the inputs have `pixel_values`.
///
/// Inputs: `input_ids` (each image's run of `image_token_id`s, as `LlavaProcessor` expands
/// `<image>`), `attention_mask`, `position_ids`, `pixel_values` `[images, 3, image_size,
/// image_size]`.
#[derive(Debug, Clone, AutoRegister)]
#[auto(task = "base", class = "LlavaModel")]
pub struct LlavaModel {
    images: ImageEncoder,
    language_model: DecoderModel,
}

impl LoadModel for LlavaModel {
    type Config = LlavaConfig;
    const BASE_MODEL_PREFIX: &'static str = "model";

    fn load(vb: VarBuilder<'_>, config: &LlavaConfig) -> Result<Self> {
        let spec = config.text_spec()?;
        let layout = Layout::of(&vb);
        let images = ImageEncoder::load(&vb, &layout, config, spec.hidden_size)?;
        let (root, base) = layout.language;
        let lm_vb = if root.is_empty() { vb.pp(base) } else { vb.pp(root).pp(base) };
        Ok(Self { images, language_model: DecoderModel::load(lm_vb, &spec)? })
    }
}

impl LlavaModel {
    /// The language model.
    pub fn language_model(&self) -> &DecoderModel {
        &self.language_model
    }

    /// The vision tower.
    pub fn vision_tower(&self) -> &CLIPVisionModel {
        &self.images.tower
    }

    /// `get_image_features`: the projected features `[images, tokens, text_hidden]` of
    /// `pixel_values`.
    pub fn image_features(&self, pixel_values: &Tensor) -> Result<Tensor> {
        self.images.features(pixel_values)
    }
}

impl PreTrainedModel for LlavaModel {
    fn device(&self) -> &Device {
        self.language_model.device()
    }

    fn dtype(&self) -> DType {
        self.language_model.dtype()
    }
}

impl Model for LlavaModel {
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

/// LLaVA with its language-modelling head (`LlavaForConditionalGeneration`): logits over the
/// vocabulary for every position, the image tokens' embeddings replaced by the projected
/// image features. `lm_head` is tied to the embedding when the config says so
/// ([`LlavaConfig::tied`]).
///
/// Generation: [`ForImageTextToText::forward_with_cache`] takes the images on the first
/// (prefill) pass only; `autocandle_generation::WithImages` does that for the decoding loop.
/// A prompt without images runs as text alone.
#[derive(Debug, Clone, AutoRegister)]
#[auto(task = "image-text-to-text", class = "LlavaForConditionalGeneration")]
pub struct LlavaForConditionalGeneration {
    images: ImageEncoder,
    lm: CausalLm,
}

impl LoadModel for LlavaForConditionalGeneration {
    type Config = LlavaConfig;
    const BASE_MODEL_PREFIX: &'static str = "model";

    fn load(vb: VarBuilder<'_>, config: &LlavaConfig) -> Result<Self> {
        let spec = config.text_spec()?;
        let layout = Layout::of(&vb);
        let images = ImageEncoder::load(&vb, &layout, config, spec.hidden_size)?;
        let (root, base) = layout.language;
        let lm_vb = if root.is_empty() { vb } else { vb.pp(root) };
        Ok(Self { images, lm: CausalLm::load(lm_vb, &spec, base)? })
    }
}

impl LlavaForConditionalGeneration {
    /// The language model with its head.
    pub fn language_model(&self) -> &CausalLm {
        &self.lm
    }

    /// The vision tower.
    pub fn vision_tower(&self) -> &CLIPVisionModel {
        &self.images.tower
    }

    /// `get_image_features`: the projected features `[images, tokens, text_hidden]` of
    /// `pixel_values`.
    pub fn image_features(&self, pixel_values: &Tensor) -> Result<Tensor> {
        self.images.features(pixel_values)
    }

    fn run(&self, inputs: &ModelInputs, cache: Option<&mut KvCache>) -> Result<ImageTextToTextOutput> {
        let first = cache.as_ref().is_none_or(|c| c.seq_len() == 0);
        let (embeds, features) = self.images.embeds(self.lm.model(), inputs, first)?;
        let logits = self.lm.forward_embeds(&embeds, inputs, cache, &DecoderExtras::new())?;
        Ok(ImageTextToTextOutput::new(logits, features))
    }
}

impl PreTrainedModel for LlavaForConditionalGeneration {
    fn device(&self) -> &Device {
        self.lm.model().device()
    }

    fn dtype(&self) -> DType {
        self.lm.model().dtype()
    }
}

impl ForImageTextToText for LlavaForConditionalGeneration {
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

impl ForMultimodalLm for LlavaForConditionalGeneration {}
impl ForVision2Seq for LlavaForConditionalGeneration {}

impl ForPreTraining for LlavaForConditionalGeneration {
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

/// `LlavaForConditionalGeneration` registered for one more task (`transformers` maps the same
/// class for `image-text-to-text`, `multimodal-lm`, `vision2seq` and `pretraining`).
macro_rules! same_class {
    ($(#[$doc:meta])* $name:ident, $task:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, AutoRegister)]
        #[auto(task = $task, class = "LlavaForConditionalGeneration")]
        pub struct $name(LlavaForConditionalGeneration);

        impl $name {
            /// The model.
            pub fn inner(&self) -> &LlavaForConditionalGeneration {
                &self.0
            }
        }

        impl LoadModel for $name {
            type Config = LlavaConfig;
            const BASE_MODEL_PREFIX: &'static str = "model";

            fn load(vb: VarBuilder<'_>, config: &LlavaConfig) -> Result<Self> {
                LlavaForConditionalGeneration::load(vb, config).map(Self)
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
    /// [`LlavaForConditionalGeneration`] as `AutoModelForMultimodalLM` gives it.
    LlavaForMultimodalLm,
    "multimodal-lm"
);
same_class!(
    /// [`LlavaForConditionalGeneration`] as `AutoModelForVision2Seq` gives it.
    LlavaForVision2Seq,
    "vision2seq"
);
same_class!(
    /// [`LlavaForConditionalGeneration`] as `AutoModelForPreTraining` gives it.
    LlavaForPreTraining,
    "pretraining"
);

impl ForMultimodalLm for LlavaForMultimodalLm {}
impl ForVision2Seq for LlavaForVision2Seq {}

impl ForPreTraining for LlavaForPreTraining {
    fn forward(&self, inputs: &ModelInputs) -> Result<PreTrainingOutput> {
        ForPreTraining::forward(&self.0, inputs)
    }
}

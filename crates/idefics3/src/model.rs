//! `Idefics3Model` and `Idefics3ForConditionalGeneration` (registered for
//! `image-text-to-text`, `multimodal-lm` and `pretraining`), and the image path they share
//! with SmolVLM ([`ImageEncoder`]).

use autocandle_core::{
    AutoRegister, BaseModelOutput, Error, ForImageTextToText, ImageTextToTextOutput, KvCache, LoadModel, Model,
    ModelInputs, PreTrainedModel, Result,
};
use autocandle_decoder::{CausalLm, DecoderExtras, DecoderModel};
use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;

use crate::config::Idefics3Config;
use crate::vision::{Idefics3Connector, Idefics3VisionTransformer};

/// Which of the two model types the weights are: they differ only in how a batch whose image
/// slots are all padding is handled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavor {
    /// Idefics3: images that are all padding (every pixel 0) are dropped; with none left, no
    /// image features.
    Idefics3,
    /// SmolVLM: the same, but when every image is padding the first one is kept.
    SmolVlm,
}

impl Flavor {
    /// The model type, for error messages.
    pub fn model_type(self) -> &'static str {
        match self {
            Flavor::Idefics3 => "idefics3",
            Flavor::SmolVlm => "smolvlm",
        }
    }
}

/// The image path of Idefics3 and SmolVLM: `vision_model` and `connector`, from
/// `pixel_values` `[batch, images, channels, height, width]` (and `pixel_attention_mask`
/// `[batch, images, height, width]`) to the features that replace the image tokens.
#[derive(Debug)]
pub struct ImageEncoder {
    vision_model: Idefics3VisionTransformer,
    connector: Idefics3Connector,
    image_token_id: u32,
    flavor: Flavor,
}

impl ImageEncoder {
    /// `vb` is the base model (`model`): it holds `vision_model` and `connector`.
    pub fn load(vb: VarBuilder<'_>, config: &Idefics3Config, text_hidden: usize, flavor: Flavor) -> Result<Self> {
        Ok(Self {
            vision_model: Idefics3VisionTransformer::load(vb.pp("vision_model"), &config.vision_config)?,
            connector: Idefics3Connector::load(
                vb.pp("connector"),
                config.vision_config.hidden_size,
                config.scale_factor,
                text_hidden,
            )?,
            image_token_id: config.image_token_id,
            flavor,
        })
    }

    /// The vision transformer.
    pub fn vision_model(&self) -> &Idefics3VisionTransformer {
        &self.vision_model
    }

    /// The connector.
    pub fn connector(&self) -> &Idefics3Connector {
        &self.connector
    }

    /// The image token id.
    pub fn image_token_id(&self) -> u32 {
        self.image_token_id
    }

    /// `get_image_features`: the projected features `[real images, tokens per image,
    /// text_hidden]` of the real images of `pixel_values` (those not all 0, in reading order;
    /// SmolVLM keeps the first when all are 0), in `dtype`. When every image is padding,
    /// Idefics3 has no features (`[0, tokens, text_hidden]`; `transformers` 5.25 fails there,
    /// reshaping an empty batch of patches).
    pub fn image_features(
        &self,
        pixel_values: &Tensor,
        pixel_attention_mask: Option<&Tensor>,
        dtype: DType,
    ) -> Result<Tensor> {
        let model_type = self.flavor.model_type();
        let &[batch, images, channels, height, width] = pixel_values.dims() else {
            return Err(Error::input(format!(
                "`pixel_values` of {model_type} must have shape [batch, images, channels, height, width], got {:?}",
                pixel_values.dims()
            )));
        };
        let p = self.vision_model.patch_size();
        if channels != self.vision_model.num_channels() {
            return Err(Error::input(format!(
                "`pixel_values` has {channels} channels but the model takes {} (`vision_config.num_channels`)",
                self.vision_model.num_channels()
            )));
        }
        if height < p || width < p {
            return Err(Error::input(format!(
                "images of {height}x{width} pixels are too small for one {p}x{p} patch (`vision_config.patch_size`)"
            )));
        }
        if !pixel_values.dtype().is_float() {
            return Err(Error::input(format!("`pixel_values` must be floating point, got {:?}", pixel_values.dtype())));
        }
        let device = PreTrainedModel::device(&self.vision_model);
        let flat = pixel_values.to_device(device)?.reshape((batch * images, channels, height, width))?;
        let mut real: Vec<bool> = flat
            .ne(0f64)?
            .to_dtype(DType::F32)?
            .flatten_from(1)?
            .max(1)?
            .to_vec1::<f32>()?
            .into_iter()
            .map(|m| m > 0.0)
            .collect();
        if self.flavor == Flavor::SmolVlm && !real.iter().any(|&r| r) {
            if let Some(first) = real.first_mut() {
                *first = true;
            }
        }
        let keep: Vec<u32> = (0..real.len() as u32).filter(|&i| real[i as usize]).collect();
        let (rows, cols) = (height / p, width / p);
        let seq = rows * cols;
        let text_hidden = self.connector.out_features();
        if keep.is_empty() {
            let s = self.connector.scale_factor();
            return Ok(Tensor::zeros((0, seq / (s * s), text_hidden), dtype, flat.device())?);
        }
        let index = Tensor::new(keep.as_slice(), flat.device())?;
        let pixels = flat.index_select(&index, 0)?.to_dtype(dtype)?;
        let patch_mask: Vec<bool> = match pixel_attention_mask {
            None => vec![true; keep.len() * seq],
            Some(mask) => {
                if mask.dims() != [batch, images, height, width] {
                    return Err(Error::input(format!(
                        "`pixel_attention_mask` has shape {:?}; expected [{batch}, {images}, {height}, {width}] as \
                         `pixel_values` [{batch}, {images}, {channels}, {height}, {width}]",
                        mask.dims()
                    )));
                }
                let mask = mask
                    .to_device(flat.device())?
                    .reshape((batch * images, height, width))?
                    .index_select(&index, 0)?
                    .ne(0f64)?
                    .to_dtype(DType::F32)?
                    .narrow(1, 0, rows * p)?
                    .narrow(2, 0, cols * p)?
                    .reshape((keep.len(), rows, p, cols, p))?
                    .sum(4)?
                    .sum(2)?;
                mask.flatten_all()?.to_vec1::<f32>()?.into_iter().map(|v| v > 0.0).collect()
            }
        };
        let hidden = self.vision_model.forward(&pixels, &patch_mask)?;
        self.connector.forward(&hidden)
    }

    /// The prompt's embeddings with the image features in place of the image tokens, and the
    /// features (`[real images, tokens, text_hidden]`) when `inputs` has `pixel_values`.
    /// `first_pass` (no cache, or an empty one) is when a prompt with image tokens must come
    /// with its images.
    pub fn embed(
        &self,
        text_model: &DecoderModel,
        inputs: &ModelInputs,
        first_pass: bool,
    ) -> Result<(Tensor, Option<Tensor>)> {
        let input_ids = inputs.input_ids()?;
        let embeds = text_model.embed(input_ids)?;
        let Some(pixel_values) = &inputs.pixel_values else {
            if first_pass {
                autocandle_vlm::image_tokens_without_images(input_ids, self.image_token_id, "idefics3")?;
            }
            return Ok((embeds, None));
        };
        let features = self.image_features(pixel_values, inputs.pixel_attention_mask.as_ref(), embeds.dtype())?;
        let merged = autocandle_vlm::merge_image_features(&embeds, input_ids, self.image_token_id, &features)?;
        Ok((merged, Some(features)))
    }
}

/// The Idefics3 base model (`Idefics3Model`): `vision_model`, `connector` and the text model
/// (`text_model`, the `AutoModel` of `text_config`). The output is the text model's
/// `last_hidden_state`, with `image_hidden_states` (the projected features of the real
/// images, `[images, tokens, text_hidden]`) in `extra` when images were given.
#[derive(Debug, AutoRegister)]
#[auto(task = "base", class = "Idefics3Model")]
pub struct Idefics3Model {
    images: ImageEncoder,
    text_model: DecoderModel,
}

impl Idefics3Model {
    /// Build the base model of `flavor` from `vb` (names `vision_model.*`, `connector.*`,
    /// `text_model.*`).
    pub fn load_as(vb: VarBuilder<'_>, config: &Idefics3Config, flavor: Flavor) -> Result<Self> {
        config.validate(flavor.model_type())?;
        let spec = config.text_spec(flavor.model_type())?;
        Ok(Self {
            images: ImageEncoder::load(vb.clone(), config, spec.hidden_size, flavor)?,
            text_model: DecoderModel::load(vb.pp("text_model"), &spec)?,
        })
    }

    /// The image path.
    pub fn images(&self) -> &ImageEncoder {
        &self.images
    }

    /// The language model.
    pub fn text_model(&self) -> &DecoderModel {
        &self.text_model
    }

    /// The last hidden state and the image features, with `cache` when given.
    pub fn run(&self, inputs: &ModelInputs, cache: Option<&mut KvCache>) -> Result<(Tensor, Option<Tensor>)> {
        let first_pass = cache.as_ref().is_none_or(|c| c.seq_len() == 0);
        let (embeds, features) = self.images.embed(&self.text_model, inputs, first_pass)?;
        let hidden = self.text_model.forward_embeds(&embeds, inputs, cache, &DecoderExtras::new())?;
        Ok((hidden, features))
    }
}

impl LoadModel for Idefics3Model {
    type Config = Idefics3Config;
    const BASE_MODEL_PREFIX: &'static str = "model";

    fn load(vb: VarBuilder<'_>, config: &Idefics3Config) -> Result<Self> {
        Self::load_as(vb, config, Flavor::Idefics3)
    }
}

impl Model for Idefics3Model {
    fn forward(&self, inputs: &ModelInputs) -> Result<BaseModelOutput> {
        let (hidden, features) = self.run(inputs, None)?;
        let out = BaseModelOutput::new(hidden, None);
        Ok(match features {
            Some(f) => out.with_extra("image_hidden_states", f),
            None => out,
        })
    }
}

impl PreTrainedModel for Idefics3Model {
    fn device(&self) -> &Device {
        self.text_model.device()
    }

    fn dtype(&self) -> DType {
        self.text_model.dtype()
    }
}

/// Idefics3 with its language-modelling head (`Idefics3ForConditionalGeneration`): the base
/// model (`model`) and `lm_head` (no bias; the text model's token embedding with
/// `tie_word_embeddings`). Generation runs with a cache: the images go through the vision
/// model on the first (prefill) pass only.
#[derive(Debug, AutoRegister)]
#[auto(task = "image-text-to-text", class = "Idefics3ForConditionalGeneration")]
pub struct Idefics3ForConditionalGeneration {
    images: ImageEncoder,
    lm: CausalLm,
}

impl Idefics3ForConditionalGeneration {
    /// Build the model of `flavor` from `vb` (names `model.vision_model.*`,
    /// `model.connector.*`, `model.text_model.*`, `lm_head.weight`).
    pub fn load_as(vb: VarBuilder<'_>, config: &Idefics3Config, flavor: Flavor) -> Result<Self> {
        config.validate(flavor.model_type())?;
        let spec = config.text_spec(flavor.model_type())?;
        Ok(Self {
            images: ImageEncoder::load(vb.pp("model"), config, spec.hidden_size, flavor)?,
            lm: CausalLm::load(vb, &spec, "model.text_model")?,
        })
    }

    /// The image path.
    pub fn images(&self) -> &ImageEncoder {
        &self.images
    }

    /// The language model with its head.
    pub fn language_model(&self) -> &CausalLm {
        &self.lm
    }

    /// Logits (the last `logits_to_keep` positions when set) and image features.
    pub fn run(&self, inputs: &ModelInputs, cache: Option<&mut KvCache>) -> Result<ImageTextToTextOutput> {
        let first_pass = cache.as_ref().is_none_or(|c| c.seq_len() == 0);
        let (embeds, features) = self.images.embed(self.lm.model(), inputs, first_pass)?;
        let logits = self.lm.forward_embeds(&embeds, inputs, cache, &DecoderExtras::new())?;
        Ok(ImageTextToTextOutput::new(logits, features))
    }
}

impl LoadModel for Idefics3ForConditionalGeneration {
    type Config = Idefics3Config;
    const BASE_MODEL_PREFIX: &'static str = "model";

    fn load(vb: VarBuilder<'_>, config: &Idefics3Config) -> Result<Self> {
        Self::load_as(vb, config, Flavor::Idefics3)
    }
}

impl PreTrainedModel for Idefics3ForConditionalGeneration {
    fn device(&self) -> &Device {
        self.lm.model().device()
    }

    fn dtype(&self) -> DType {
        self.lm.model().dtype()
    }
}

impl ForImageTextToText for Idefics3ForConditionalGeneration {
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
        Some(self.images.image_token_id())
    }
}

/// Registers a newtype over a conditional-generation model for one more task of the same
/// `transformers` class: `multimodal-lm` (a marker over [`ForImageTextToText`]) or
/// `pretraining` (`logits` and `image_hidden_states` as a `PreTrainingOutput`). Used by
/// `autocandle-smolvlm` too.
#[macro_export]
macro_rules! same_class_heads {
    (@common $name:ident, $inner:ty, $config:ty) => {
        impl $crate::__private::LoadModel for $name {
            type Config = $config;
            const BASE_MODEL_PREFIX: &'static str = "model";

            fn load(vb: $crate::__private::VarBuilder<'_>, config: &$config) -> $crate::__private::Result<Self> {
                ::core::result::Result::Ok(Self(<$inner as $crate::__private::LoadModel>::load(vb, config)?))
            }
        }

        impl $crate::__private::PreTrainedModel for $name {
            fn device(&self) -> &$crate::__private::Device {
                $crate::__private::PreTrainedModel::device(&self.0)
            }

            fn dtype(&self) -> $crate::__private::DType {
                $crate::__private::PreTrainedModel::dtype(&self.0)
            }
        }

        impl ::core::ops::Deref for $name {
            type Target = $inner;

            fn deref(&self) -> &$inner {
                &self.0
            }
        }
    };
    (multimodal_lm $name:ident, $inner:ty, $config:ty) => {
        $crate::same_class_heads!(@common $name, $inner, $config);

        impl $crate::__private::ForImageTextToText for $name {
            fn forward(
                &self,
                inputs: &$crate::__private::ModelInputs,
            ) -> $crate::__private::Result<$crate::__private::ImageTextToTextOutput> {
                $crate::__private::ForImageTextToText::forward(&self.0, inputs)
            }

            fn forward_with_cache(
                &self,
                inputs: &$crate::__private::ModelInputs,
                cache: &mut $crate::__private::KvCache,
            ) -> $crate::__private::Result<$crate::__private::ImageTextToTextOutput> {
                $crate::__private::ForImageTextToText::forward_with_cache(&self.0, inputs, cache)
            }

            fn supports_cache(&self) -> bool {
                true
            }

            fn max_positions(&self) -> ::core::option::Option<usize> {
                $crate::__private::ForImageTextToText::max_positions(&self.0)
            }

            fn image_token_id(&self) -> ::core::option::Option<u32> {
                $crate::__private::ForImageTextToText::image_token_id(&self.0)
            }
        }

        impl $crate::__private::ForMultimodalLm for $name {}
    };
    (pretraining $name:ident, $inner:ty, $config:ty) => {
        $crate::same_class_heads!(@common $name, $inner, $config);

        impl $crate::__private::ForPreTraining for $name {
            fn forward(
                &self,
                inputs: &$crate::__private::ModelInputs,
            ) -> $crate::__private::Result<$crate::__private::PreTrainingOutput> {
                let out = $crate::__private::ForImageTextToText::forward(&self.0, inputs)?;
                let mut fields = ::std::vec![("logits", out.logits)];
                if let ::core::option::Option::Some(f) = out.image_hidden_states {
                    fields.push(("image_hidden_states", f));
                }
                ::core::result::Result::Ok($crate::__private::PreTrainingOutput::from_fields(fields))
            }
        }
    };
}

/// `Idefics3ForConditionalGeneration` as `AutoModelForMultimodalLM` loads it.
#[derive(Debug, AutoRegister)]
#[auto(task = "multimodal-lm", class = "Idefics3ForConditionalGeneration")]
pub struct Idefics3ForMultimodalLm(pub Idefics3ForConditionalGeneration);

same_class_heads!(multimodal_lm Idefics3ForMultimodalLm, Idefics3ForConditionalGeneration, Idefics3Config);

/// `Idefics3ForConditionalGeneration` as `AutoModelForPreTraining` loads it: `logits` and,
/// with images, `image_hidden_states`.
#[derive(Debug, AutoRegister)]
#[auto(task = "pretraining", class = "Idefics3ForConditionalGeneration")]
pub struct Idefics3ForPreTraining(pub Idefics3ForConditionalGeneration);

same_class_heads!(pretraining Idefics3ForPreTraining, Idefics3ForConditionalGeneration, Idefics3Config);

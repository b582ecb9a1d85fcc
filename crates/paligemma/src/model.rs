//! [`PaliGemmaModel`] and [`PaliGemmaForConditionalGeneration`] (registered for the
//! `pretraining`, `image-text-to-text` and `multimodal-lm` tasks), as `transformers`'
//! `modeling_paligemma`.

use autocandle_core::nn::{linear, Linear};
use autocandle_core::{
    AutoRegister, BaseModelOutput, Error, ForImageTextToText, ForMultimodalLm, ForPreTraining, ImageTextToTextOutput,
    KvCache, LoadModel, Model, ModelInputs, PreTrainedModel, PreTrainingOutput, Result,
};
use autocandle_decoder::{CausalLm, DecoderExtras, DecoderModel, DecoderSpec};
use autocandle_siglip::SiglipVisionModel;
use candle_core::{DType, Device, Module, Tensor};
use candle_nn::VarBuilder;

use crate::config::PaliGemmaConfig;

/// The vision tower, the projector and what the prompt needs to merge them.
#[derive(Debug)]
struct ImagePath {
    vision_tower: SiglipVisionModel,
    /// `multi_modal_projector.linear`
    projector: Linear,
    image_token_id: u32,
    /// The language model's vocabulary (`text_config.vocab_size`).
    text_vocab: usize,
    /// The sliding window of the language model's sliding layers, if it has any.
    sliding_window: Option<usize>,
}

/// Where the language model sits in the checkpoint: `transformers` 5 saves `language_model.model.*`
/// and `language_model.lm_head` (the hub layout); its modules are `model.language_model.*` and
/// `lm_head` (the base model's `language_model.*`).
fn language_model_prefix(vb: &VarBuilder<'_>, spec: &DecoderSpec) -> bool {
    vb.contains_tensor(&format!("language_model.model.{}.weight", spec.options.final_norm_name))
        || vb.contains_tensor("language_model.model.embed_tokens.weight")
}

impl ImagePath {
    fn load(vb: &VarBuilder<'_>, config: &PaliGemmaConfig) -> Result<(Self, DecoderSpec)> {
        let (vision, spec) = config.validate()?;
        // Hub checkpoints made before `transformers` 5 nest the tower's weights under `vision_model`.
        let tower = if vb.contains_tensor("vision_tower.vision_model.embeddings.patch_embedding.weight") {
            vb.pp("vision_tower.vision_model")
        } else {
            vb.pp("vision_tower")
        };
        let path = Self {
            vision_tower: SiglipVisionModel::new(tower, &vision)?,
            projector: linear(vision.hidden_size, config.projection_dim, vb.pp("multi_modal_projector.linear"))?,
            image_token_id: config.image_token_index,
            text_vocab: spec.vocab_size,
            sliding_window: spec.sliding_window.filter(|_| spec.has_sliding_layers()),
        };
        Ok((path, spec))
    }

    /// Without `token_type_ids`, `transformers` (its default SDPA attention) attends in both
    /// directions over the whole input when it can leave the mask out: `PaliGemmaConfig` sets
    /// `use_bidirectional_attention` on the text config, so its layers are not causal without a
    /// mask. That is when nothing is padded, and, for a language model with sliding layers,
    /// the input is shorter than the window; otherwise its mask is causal.
    fn unmasked_is_bidirectional(&self, inputs: &ModelInputs, seq: usize) -> Result<bool> {
        let padded = match &inputs.attention_mask {
            Some(mask) => mask.eq(0u32)?.to_dtype(DType::U32)?.sum_all()?.to_scalar::<u32>()? > 0,
            None => false,
        };
        Ok(!padded && self.sliding_window.is_none_or(|w| seq < w))
    }

    /// `get_image_features`: the projected patch states `[images, patches, projection_dim]`.
    fn image_features(&self, inputs: &ModelInputs) -> Result<Tensor> {
        let (hidden, _) = self.vision_tower.encode(inputs)?;
        Ok(self.projector.forward(&hidden)?)
    }

    /// The prompt's embeddings with the image features merged in, the inputs for the language
    /// model (positions counted from 1, as PaliGemma's) and its mask extras, and the image
    /// features when there were images.
    fn prepare(
        &self,
        inputs: &ModelInputs,
        embed: impl Fn(&Tensor) -> Result<Tensor>,
        past: usize,
    ) -> Result<(Tensor, ModelInputs, DecoderExtras, Option<Tensor>)> {
        let input_ids = inputs.input_ids()?;
        autocandle_core::inputs::dims2_int(input_ids, "input_ids")?;
        let (batch, seq) = input_ids.dims2()?;
        let ids = input_ids.to_dtype(DType::I64)?;
        let image = Tensor::full(i64::from(self.image_token_id), (batch, seq), ids.device())?;
        let is_image = ids.eq(&image)?;
        // An image token outside the language model's vocabulary is embedded as id 0 (its row is
        // replaced by an image feature anyway).
        let llm_ids = if self.image_token_id as usize >= self.text_vocab {
            is_image.where_cond(&ids.zeros_like()?, &ids)?
        } else {
            ids.clone()
        };
        let mut embeds = embed(&llm_ids)?;
        let features = match &inputs.pixel_values {
            Some(_) => {
                let features = self.image_features(inputs)?;
                embeds = autocandle_vlm::merge_image_features(&embeds, &ids, self.image_token_id, &features)?;
                Some(features)
            }
            None => {
                if past == 0 {
                    autocandle_vlm::image_tokens_without_images(&ids, self.image_token_id, "paligemma")?;
                }
                None
            }
        };
        let mut lm_inputs = ModelInputs::new(ids);
        lm_inputs.attention_mask = inputs.attention_mask.clone();
        lm_inputs.logits_to_keep = inputs.logits_to_keep;
        // `position_ids` are used as given; by default PaliGemma counts positions from 1.
        lm_inputs.position_ids = match &inputs.position_ids {
            Some(p) => Some(p.clone()),
            None => {
                let positions: Vec<u32> = (past + 1..=past + seq).map(|p| p as u32).collect();
                Some(Tensor::from_vec(positions, (1, seq), embeds.device())?)
            }
        };
        let mut extras = DecoderExtras::new();
        // The prefix (`token_type_ids == 0`: image and prompt) attends in both directions on the
        // first pass; later tokens are causal.
        match (&inputs.token_type_ids, past) {
            (Some(types), 0) => {
                if types.dims() != [batch, seq] {
                    return Err(Error::input(format!(
                        "`token_type_ids` has shape {:?} but `input_ids` has [{batch}, {seq}]",
                        types.dims()
                    )));
                }
                let types = types.to_dtype(DType::I64)?.flatten_all()?.to_vec1::<i64>()?;
                extras = extras
                    .with_block_sequence_ids(types.into_iter().map(|t| if t == 0 { 0 } else { -1 }).collect())
                    .with_blocks_past_window();
            }
            (None, 0) if self.unmasked_is_bidirectional(inputs, seq)? => {
                extras = extras.with_block_sequence_ids(vec![0; batch * seq]).with_blocks_past_window();
            }
            _ => {}
        }
        Ok((embeds, lm_inputs, extras, features))
    }
}

/// PaliGemma without its LM head (`PaliGemmaModel`, `AutoModel`): SigLIP's patch states,
/// projected linearly to the language model's width, take the places of the `<image>` tokens
/// of `input_ids`; the Gemma (or Gemma 2) decoder runs on the result.
///
/// Inputs: `input_ids` `[batch, seq]`, `pixel_values` `[images, 3, size, size]` (one image per
/// run of `(image_size / patch_size)^2` image tokens), `attention_mask`, `token_type_ids` (0 on
/// the prefix, image and prompt, which attends in both directions; 1 on the suffix, causal;
/// without them, as `transformers`' default attention does, the whole input attends in both
/// directions when nothing is padded (and, with sliding layers, the input is shorter than the
/// window), else causally), `position_ids` (default: counted from 1).
///
/// Outputs: `last_hidden_state` `[batch, seq, hidden]` and, with images, `image_hidden_states`
/// `[images, patches, hidden]` (the projected features).
#[derive(Debug, AutoRegister)]
#[auto(task = "base", class = "PaliGemmaModel")]
pub struct PaliGemmaModel {
    images: ImagePath,
    language_model: DecoderModel,
}

impl LoadModel for PaliGemmaModel {
    type Config = PaliGemmaConfig;
    const BASE_MODEL_PREFIX: &'static str = "model";

    fn load(vb: VarBuilder<'_>, config: &PaliGemmaConfig) -> Result<Self> {
        let (images, spec) = ImagePath::load(&vb, config)?;
        let lm_vb =
            if language_model_prefix(&vb, &spec) { vb.pp("language_model.model") } else { vb.pp("language_model") };
        Ok(Self { images, language_model: DecoderModel::load(lm_vb, &spec)? })
    }
}

impl PaliGemmaModel {
    /// The language model.
    pub fn language_model(&self) -> &DecoderModel {
        &self.language_model
    }

    /// The vision tower.
    pub fn vision_tower(&self) -> &SiglipVisionModel {
        &self.images.vision_tower
    }

    /// `get_image_features`: the projected patch states `[images, patches, hidden]` of
    /// `inputs.pixel_values`.
    pub fn get_image_features(&self, inputs: &ModelInputs) -> Result<Tensor> {
        self.images.image_features(inputs)
    }
}

impl PreTrainedModel for PaliGemmaModel {
    fn device(&self) -> &Device {
        self.language_model.device()
    }

    fn dtype(&self) -> DType {
        self.language_model.dtype()
    }
}

impl Model for PaliGemmaModel {
    fn forward(&self, inputs: &ModelInputs) -> Result<BaseModelOutput> {
        let lm = &self.language_model;
        let (embeds, lm_inputs, extras, features) = self.images.prepare(inputs, |ids| lm.embed(ids), 0)?;
        let hidden = lm.forward_embeds(&embeds, &lm_inputs, None, &extras)?;
        let out = BaseModelOutput::new(hidden, None);
        Ok(match features {
            Some(f) => out.with_extra("image_hidden_states", f),
            None => out,
        })
    }
}

/// PaliGemma with its LM head (`PaliGemmaForConditionalGeneration`): [`PaliGemmaModel`], then
/// `lm_head` (tied to the embeddings by default) and, for Gemma 2, the final logit
/// soft-capping. `logits` `[batch, seq, vocab]`, and `image_hidden_states` with images.
///
/// Generation (`WithImages`) runs the whole prompt with its images and `token_type_ids` first,
/// then one token per step on the cache; a generated token belongs to the causal suffix
/// (`token_type_ids` 1). Without images (no `<image>` tokens) the prompt is plain text.
#[derive(Debug)]
pub struct PaliGemmaForConditionalGeneration {
    images: ImagePath,
    lm: CausalLm,
}

impl PaliGemmaForConditionalGeneration {
    fn load(vb: VarBuilder<'_>, config: &PaliGemmaConfig) -> Result<Self> {
        let (images, spec) = ImagePath::load(&vb, config)?;
        let lm = if language_model_prefix(&vb, &spec) {
            CausalLm::load(vb.pp("language_model"), &spec, "model")?
        } else {
            CausalLm::load(vb, &spec, "language_model")?
        };
        Ok(Self { images, lm })
    }

    /// The language model with its head.
    pub fn language_model(&self) -> &CausalLm {
        &self.lm
    }

    /// The vision tower.
    pub fn vision_tower(&self) -> &SiglipVisionModel {
        &self.images.vision_tower
    }

    /// `get_image_features`: the projected patch states `[images, patches, hidden]` of
    /// `inputs.pixel_values`.
    pub fn get_image_features(&self, inputs: &ModelInputs) -> Result<Tensor> {
        self.images.image_features(inputs)
    }

    fn run(&self, inputs: &ModelInputs, cache: Option<&mut KvCache>) -> Result<ImageTextToTextOutput> {
        let past = cache.as_deref().map_or(0, KvCache::seq_len);
        let lm = self.lm.model();
        let (embeds, lm_inputs, extras, features) = self.images.prepare(inputs, |ids| lm.embed(ids), past)?;
        let logits = self.lm.forward_embeds(&embeds, &lm_inputs, cache, &extras)?;
        Ok(ImageTextToTextOutput::new(logits, features))
    }
}

impl PreTrainedModel for PaliGemmaForConditionalGeneration {
    fn device(&self) -> &Device {
        self.lm.model().device()
    }

    fn dtype(&self) -> DType {
        self.lm.model().dtype()
    }
}

impl ForImageTextToText for PaliGemmaForConditionalGeneration {
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

    fn generated_token_type_id(&self, name: &str, last: u32) -> u32 {
        if name == "token_type_ids" {
            1
        } else {
            last
        }
    }

    fn generation_position_offset(&self) -> u32 {
        1
    }
}

/// The three registrations of [`PaliGemmaForConditionalGeneration`] (one per task).
macro_rules! registered {
    ($(#[$doc:meta])* $name:ident, $task:literal) => {
        $(#[$doc])*
        #[derive(Debug, AutoRegister)]
        #[auto(task = $task, class = "PaliGemmaForConditionalGeneration")]
        pub struct $name(PaliGemmaForConditionalGeneration);

        impl LoadModel for $name {
            type Config = PaliGemmaConfig;
            const BASE_MODEL_PREFIX: &'static str = "model";

            fn load(vb: VarBuilder<'_>, config: &PaliGemmaConfig) -> Result<Self> {
                PaliGemmaForConditionalGeneration::load(vb, config).map(Self)
            }
        }

        impl std::ops::Deref for $name {
            type Target = PaliGemmaForConditionalGeneration;

            fn deref(&self) -> &PaliGemmaForConditionalGeneration {
                &self.0
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
    };
}

macro_rules! image_text_to_text {
    ($name:ident) => {
        impl ForImageTextToText for $name {
            fn forward(&self, inputs: &ModelInputs) -> Result<ImageTextToTextOutput> {
                self.0.forward(inputs)
            }

            fn forward_with_cache(&self, inputs: &ModelInputs, cache: &mut KvCache) -> Result<ImageTextToTextOutput> {
                self.0.forward_with_cache(inputs, cache)
            }

            fn supports_cache(&self) -> bool {
                self.0.supports_cache()
            }

            fn max_positions(&self) -> Option<usize> {
                self.0.max_positions()
            }

            fn image_token_id(&self) -> Option<u32> {
                self.0.image_token_id()
            }

            fn generated_token_type_id(&self, name: &str, last: u32) -> u32 {
                self.0.generated_token_type_id(name, last)
            }

            fn generation_position_offset(&self) -> u32 {
                self.0.generation_position_offset()
            }
        }
    };
}

registered!(
    /// [`PaliGemmaForConditionalGeneration`] as `AutoModelForImageTextToText`.
    PaliGemmaForImageTextToText,
    "image-text-to-text"
);
image_text_to_text!(PaliGemmaForImageTextToText);

registered!(
    /// [`PaliGemmaForConditionalGeneration`] as `AutoModelForMultimodalLM`.
    PaliGemmaForMultimodalLm,
    "multimodal-lm"
);
image_text_to_text!(PaliGemmaForMultimodalLm);
impl ForMultimodalLm for PaliGemmaForMultimodalLm {}

registered!(
    /// [`PaliGemmaForConditionalGeneration`] as `AutoModelForPreTraining`: `logits` and, with
    /// images, `image_hidden_states`.
    PaliGemmaForPreTraining,
    "pretraining"
);

impl ForPreTraining for PaliGemmaForPreTraining {
    fn forward(&self, inputs: &ModelInputs) -> Result<PreTrainingOutput> {
        let out = self.0.run(inputs, None)?;
        let mut fields = vec![("logits", out.logits)];
        if let Some(f) = out.image_hidden_states {
            fields.push(("image_hidden_states", f));
        }
        Ok(PreTrainingOutput::from_fields(fields))
    }
}

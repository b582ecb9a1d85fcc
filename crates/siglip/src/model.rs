//! [`SiglipModel`] (both towers, `logit_scale` and `logit_bias`) and
//! [`SiglipForImageClassification`], as `transformers`' `modeling_siglip`.

use candle_core::{DType, Device, Module, Tensor, D};
use candle_nn::{linear, Linear, VarBuilder};

use autocandle_clip::layers::{contrastive_logits, l2_normalize};
use autocandle_core::{
    AutoRegister, BaseModelOutput, Error, ForImageClassification, ForZeroShotImageClassification,
    ImageClassifierOutput, LoadModel, Model, ModelInputs, PreTrainedModel, Result, ZeroShotImageClassificationOutput,
};

use crate::config::SiglipConfig;
use crate::towers::{SiglipTextModel, SiglipVisionModel};

/// Everything `SiglipModel.forward` computes (`SiglipOutput`).
#[derive(Debug)]
struct Outputs {
    logits_per_image: Tensor,
    logits_per_text: Tensor,
    text_embeds: Tensor,
    image_embeds: Tensor,
    text_last_hidden_state: Tensor,
    text_pooled: Tensor,
    vision_last_hidden_state: Tensor,
    vision_pooled: Tensor,
}

/// SigLIP (`SiglipModel`): the text and vision towers, each pooled by its `head`, and the
/// learned `logit_scale` and `logit_bias` of the sigmoid loss.
///
/// `forward` takes `input_ids` `[texts, seq]` (SigLIP's convention: padded to `max_length`,
/// no `attention_mask`; a mask, when given, is applied) and `pixel_values`
/// `[images, channels, size, size]`. As a zero-shot image classifier
/// (`AutoModelForZeroShotImageClassification`) it gives `logits_per_image` `[images, texts]` =
/// `exp(logit_scale) * cos(image, text) + logit_bias` (apply a sigmoid for per-pair
/// probabilities), its transpose `logits_per_text`, and the normalised `text_embeds` /
/// `image_embeds`. As a base model (`AutoModel`) it gives `last_hidden_state` /
/// `pooler_output` of the vision tower (`vision_model_output`) and, in `extra`, the four
/// outputs above and `text_model_output.last_hidden_state` / `text_model_output.pooler_output`.
#[derive(Debug, AutoRegister)]
#[auto(model_type = "siglip", task = "base", class = "SiglipModel")]
pub struct SiglipModel {
    text_model: SiglipTextModel,
    vision_model: SiglipVisionModel,
    /// `[1]`
    pub(crate) logit_scale: Tensor,
    /// `[1]`
    pub(crate) logit_bias: Tensor,
}

impl SiglipModel {
    /// Build the model; `vb` is the checkpoint root.
    pub fn new(vb: VarBuilder<'_>, config: &SiglipConfig) -> Result<Self> {
        config.validate()?;
        if !config.vision_config.vision_use_head {
            return Err(Error::config(
                "siglip",
                "SiglipModel pools images with the vision `head`, but `vision_config.vision_use_head` is false",
            ));
        }
        let (text_width, image_width) = (config.text_config.projection_size(), config.vision_config.hidden_size);
        if text_width != image_width {
            return Err(Error::config(
                "siglip",
                format!(
                    "the text `projection_size` ({text_width}) differs from the vision `hidden_size` ({image_width}): \
                     text and image embeddings could not be compared"
                ),
            ));
        }
        Ok(Self {
            text_model: SiglipTextModel::new(vb.pp("text_model"), &config.text_config)?,
            vision_model: SiglipVisionModel::new(vb.pp("vision_model"), &config.vision_config)?,
            logit_scale: vb.get(1, "logit_scale")?,
            logit_bias: vb.get(1, "logit_bias")?,
        })
    }

    /// The text tower.
    pub fn text_model(&self) -> &SiglipTextModel {
        &self.text_model
    }

    /// The vision tower.
    pub fn vision_model(&self) -> &SiglipVisionModel {
        &self.vision_model
    }

    /// `get_text_features`: the pooled (unnormalised) text features `[texts, projection_size]`.
    pub fn get_text_features(&self, inputs: &ModelInputs) -> Result<Tensor> {
        Ok(self.text_model.encode(inputs)?.1)
    }

    /// `get_image_features`: the pooled (unnormalised) image features `[images, hidden]`.
    pub fn get_image_features(&self, inputs: &ModelInputs) -> Result<Tensor> {
        self.image_pooled(self.vision_model.encode(inputs)?.1)
    }

    fn image_pooled(&self, pooled: Option<Tensor>) -> Result<Tensor> {
        // `new` refuses a vision tower without its head.
        pooled.ok_or_else(|| Error::Unsupported("the SigLIP vision tower has no pooling head".to_owned()))
    }

    fn run(&self, inputs: &ModelInputs) -> Result<Outputs> {
        if inputs.input_ids.is_none() || inputs.pixel_values.is_none() {
            return Err(Error::input(
                "SiglipModel needs both `input_ids` (texts, from the tokenizer) and `pixel_values` (images, from \
                 the image processor); for one modality use `get_text_features` / `get_image_features` or \
                 SiglipTextModel / SiglipVisionModel",
            ));
        }
        let (vision_last_hidden_state, vision_pooled) = self.vision_model.encode(inputs)?;
        let vision_pooled = self.image_pooled(vision_pooled)?;
        let (text_last_hidden_state, text_pooled) = self.text_model.encode(inputs)?;
        let image_embeds = l2_normalize(&vision_pooled)?;
        let text_embeds = l2_normalize(&text_pooled)?;
        let (logits_per_image, logits_per_text) =
            contrastive_logits(&text_embeds, &image_embeds, &self.logit_scale, Some(&self.logit_bias))?;
        Ok(Outputs {
            logits_per_image,
            logits_per_text,
            text_embeds,
            image_embeds,
            text_last_hidden_state,
            text_pooled,
            vision_last_hidden_state,
            vision_pooled,
        })
    }
}

impl LoadModel for SiglipModel {
    type Config = SiglipConfig;
    const BASE_MODEL_PREFIX: &'static str = "siglip";

    fn load(vb: VarBuilder<'_>, config: &SiglipConfig) -> Result<Self> {
        Self::new(vb, config)
    }
}

impl PreTrainedModel for SiglipModel {
    fn device(&self) -> &Device {
        self.vision_model.device()
    }

    fn dtype(&self) -> DType {
        self.vision_model.dtype()
    }
}

impl Model for SiglipModel {
    fn forward(&self, inputs: &ModelInputs) -> Result<BaseModelOutput> {
        let o = self.run(inputs)?;
        Ok(BaseModelOutput::new(o.vision_last_hidden_state, Some(o.vision_pooled))
            .with_extra("logits_per_image", o.logits_per_image)
            .with_extra("logits_per_text", o.logits_per_text)
            .with_extra("text_embeds", o.text_embeds)
            .with_extra("image_embeds", o.image_embeds)
            .with_extra("text_model_output.last_hidden_state", o.text_last_hidden_state)
            .with_extra("text_model_output.pooler_output", o.text_pooled))
    }
}

impl ForZeroShotImageClassification for SiglipModel {
    fn forward(&self, inputs: &ModelInputs) -> Result<ZeroShotImageClassificationOutput> {
        let o = self.run(inputs)?;
        Ok(ZeroShotImageClassificationOutput::new(o.logits_per_image, o.logits_per_text, o.text_embeds, o.image_embeds))
    }
}

/// [`SiglipModel`] registered as the zero-shot image classifier of `siglip`
/// (`AutoModelForZeroShotImageClassification` gives a `SiglipModel`).
#[derive(Debug, AutoRegister)]
#[auto(model_type = "siglip", task = "zero-shot-image-classification", class = "SiglipModel")]
struct ZeroShot(SiglipModel);

impl LoadModel for ZeroShot {
    type Config = SiglipConfig;
    const BASE_MODEL_PREFIX: &'static str = SiglipModel::BASE_MODEL_PREFIX;

    fn load(vb: VarBuilder<'_>, config: &SiglipConfig) -> Result<Self> {
        SiglipModel::new(vb, config).map(Self)
    }
}

impl PreTrainedModel for ZeroShot {
    fn device(&self) -> &Device {
        self.0.device()
    }

    fn dtype(&self) -> DType {
        self.0.dtype()
    }
}

impl ForZeroShotImageClassification for ZeroShot {
    fn forward(&self, inputs: &ModelInputs) -> Result<ZeroShotImageClassificationOutput> {
        ForZeroShotImageClassification::forward(&self.0, inputs)
    }
}

/// The SigLIP vision tower with a linear classifier on the mean of all patch states
/// (`SiglipForImageClassification`; the pooling head, when the checkpoint has one, is loaded
/// but unused, as in `transformers`).
#[derive(Debug, AutoRegister)]
#[auto(model_type = "siglip", task = "image-classification", class = "SiglipForImageClassification")]
pub struct SiglipForImageClassification {
    vision_model: SiglipVisionModel,
    /// `None` with `num_labels = 0` (`nn.Identity`).
    classifier: Option<Linear>,
}

impl LoadModel for SiglipForImageClassification {
    type Config = SiglipConfig;
    const BASE_MODEL_PREFIX: &'static str = SiglipModel::BASE_MODEL_PREFIX;

    fn load(vb: VarBuilder<'_>, config: &SiglipConfig) -> Result<Self> {
        let vision_model = SiglipVisionModel::new(vb.pp("vision_model"), &config.vision_config)?;
        let classifier = match config.labels.num_labels() {
            0 => None,
            n => Some(linear(config.vision_config.hidden_size, n, vb.pp("classifier"))?),
        };
        Ok(Self { vision_model, classifier })
    }
}

impl PreTrainedModel for SiglipForImageClassification {
    fn device(&self) -> &Device {
        self.vision_model.device()
    }

    fn dtype(&self) -> DType {
        self.vision_model.dtype()
    }
}

impl ForImageClassification for SiglipForImageClassification {
    fn forward(&self, inputs: &ModelInputs) -> Result<ImageClassifierOutput> {
        let (hidden, _) = self.vision_model.encode(inputs)?;
        let pooled = hidden.mean(D::Minus2)?;
        let logits = match &self.classifier {
            Some(classifier) => classifier.forward(&pooled)?,
            None => pooled,
        };
        Ok(ImageClassifierOutput::new(logits))
    }
}

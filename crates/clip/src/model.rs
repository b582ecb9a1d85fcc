//! [`CLIPModel`] (both towers, their projections and `logit_scale`) and
//! [`CLIPForImageClassification`], as `transformers`' `modeling_clip`.

use candle_core::{DType, Device, Module, Tensor, D};
use candle_nn::{linear, linear_no_bias, Linear, VarBuilder};

use autocandle_core::{
    AutoRegister, BaseModelOutput, Error, ForImageClassification, ForZeroShotImageClassification,
    ImageClassifierOutput, LoadModel, Model, ModelInputs, PreTrainedModel, Result, ZeroShotImageClassificationOutput,
};

use crate::config::CLIPConfig;
use crate::layers::{contrastive_logits, l2_normalize};
use crate::text::CLIPTextModel;
use crate::vision::CLIPVisionModel;

/// Everything `CLIPModel.forward` computes (`CLIPOutput`).
#[derive(Debug)]
struct Outputs {
    logits_per_image: Tensor,
    logits_per_text: Tensor,
    text_embeds: Tensor,
    image_embeds: Tensor,
    text_last_hidden_state: Tensor,
    /// The projected text features: `transformers`' `get_text_features` replaces the tower's
    /// pooler output by them, so `text_model_output.pooler_output` is this.
    text_features: Tensor,
    vision_last_hidden_state: Tensor,
    /// The projected image features (`vision_model_output.pooler_output`, likewise).
    image_features: Tensor,
}

/// CLIP (`CLIPModel`): the text and vision towers, their projections into a shared space
/// and the learned temperature `logit_scale`.
///
/// `forward` takes `input_ids` `[texts, seq]` (with `attention_mask`, `position_ids` when
/// given) and `pixel_values` `[images, channels, size, size]`. As a zero-shot image
/// classifier (`AutoModelForZeroShotImageClassification`) it gives `logits_per_image`
/// `[images, texts]` = `exp(logit_scale) * cos(image, text)`, its transpose
/// `logits_per_text`, and the normalised `text_embeds` / `image_embeds`. As a base model
/// (`AutoModel`) it gives, as `CLIPOutput` holds them, `last_hidden_state` /
/// `pooler_output` of the vision tower (`vision_model_output`; the pooler output is the
/// projected, unnormalised image features, as `transformers` 5 returns it) and, in `extra`,
/// the four outputs above and `text_model_output.last_hidden_state` /
/// `text_model_output.pooler_output` (the projected text features).
#[derive(Debug, AutoRegister)]
#[auto(model_type = "clip", task = "base", class = "CLIPModel")]
pub struct CLIPModel {
    text_model: CLIPTextModel,
    vision_model: CLIPVisionModel,
    text_projection: Linear,
    visual_projection: Linear,
    pub(crate) logit_scale: Tensor,
}

impl CLIPModel {
    /// Build the model; `vb` is the checkpoint root.
    pub fn new(vb: VarBuilder<'_>, config: &CLIPConfig) -> Result<Self> {
        config.validate()?;
        if config.projection_dim == 0 {
            return Err(Error::config("clip", "`projection_dim` must be at least 1, got 0"));
        }
        let (text_h, vision_h, p) =
            (config.text_config.hidden_size, config.vision_config.hidden_size, config.projection_dim);
        Ok(Self {
            text_model: CLIPTextModel::new(vb.pp("text_model"), &config.text_config)?,
            vision_model: CLIPVisionModel::new(vb.pp("vision_model"), &config.vision_config)?,
            text_projection: linear_no_bias(text_h, p, vb.pp("text_projection"))?,
            visual_projection: linear_no_bias(vision_h, p, vb.pp("visual_projection"))?,
            logit_scale: vb.get((), "logit_scale")?,
        })
    }

    /// The text tower.
    pub fn text_model(&self) -> &CLIPTextModel {
        &self.text_model
    }

    /// The vision tower.
    pub fn vision_model(&self) -> &CLIPVisionModel {
        &self.vision_model
    }

    /// `get_text_features`: the projected (unnormalised) text features `[texts, projection_dim]`
    /// of `input_ids` (with `attention_mask`, `position_ids` when given).
    pub fn get_text_features(&self, inputs: &ModelInputs) -> Result<Tensor> {
        let (_, pooled) = self.text_model.encode(inputs)?;
        Ok(self.text_projection.forward(&pooled)?)
    }

    /// `get_image_features`: the projected (unnormalised) image features
    /// `[images, projection_dim]` of `pixel_values`.
    pub fn get_image_features(&self, inputs: &ModelInputs) -> Result<Tensor> {
        let (_, pooled) = self.vision_model.encode(inputs)?;
        Ok(self.visual_projection.forward(&pooled)?)
    }

    fn run(&self, inputs: &ModelInputs) -> Result<Outputs> {
        if inputs.input_ids.is_none() || inputs.pixel_values.is_none() {
            return Err(Error::input(
                "CLIPModel needs both `input_ids` (texts, from the tokenizer) and `pixel_values` (images, from \
                 the image processor); for one modality use `get_text_features` / `get_image_features` or \
                 CLIPTextModel / CLIPVisionModel",
            ));
        }
        let (vision_last_hidden_state, vision_pooled) = self.vision_model.encode(inputs)?;
        let (text_last_hidden_state, text_pooled) = self.text_model.encode(inputs)?;
        let image_features = self.visual_projection.forward(&vision_pooled)?;
        let text_features = self.text_projection.forward(&text_pooled)?;
        let image_embeds = l2_normalize(&image_features)?;
        let text_embeds = l2_normalize(&text_features)?;
        let (logits_per_image, logits_per_text) =
            contrastive_logits(&text_embeds, &image_embeds, &self.logit_scale, None)?;
        Ok(Outputs {
            logits_per_image,
            logits_per_text,
            text_embeds,
            image_embeds,
            text_last_hidden_state,
            text_features,
            vision_last_hidden_state,
            image_features,
        })
    }
}

impl LoadModel for CLIPModel {
    type Config = CLIPConfig;
    const BASE_MODEL_PREFIX: &'static str = "clip";

    fn load(vb: VarBuilder<'_>, config: &CLIPConfig) -> Result<Self> {
        Self::new(vb, config)
    }
}

impl PreTrainedModel for CLIPModel {
    fn device(&self) -> &Device {
        self.vision_model.device()
    }

    fn dtype(&self) -> DType {
        self.vision_model.dtype()
    }
}

impl Model for CLIPModel {
    fn forward(&self, inputs: &ModelInputs) -> Result<BaseModelOutput> {
        let o = self.run(inputs)?;
        Ok(BaseModelOutput::new(o.vision_last_hidden_state, Some(o.image_features))
            .with_extra("logits_per_image", o.logits_per_image)
            .with_extra("logits_per_text", o.logits_per_text)
            .with_extra("text_embeds", o.text_embeds)
            .with_extra("image_embeds", o.image_embeds)
            .with_extra("text_model_output.last_hidden_state", o.text_last_hidden_state)
            .with_extra("text_model_output.pooler_output", o.text_features))
    }
}

impl ForZeroShotImageClassification for CLIPModel {
    fn forward(&self, inputs: &ModelInputs) -> Result<ZeroShotImageClassificationOutput> {
        let o = self.run(inputs)?;
        Ok(ZeroShotImageClassificationOutput::new(o.logits_per_image, o.logits_per_text, o.text_embeds, o.image_embeds))
    }
}

/// [`CLIPModel`] registered as the zero-shot image classifier of `clip`
/// (`AutoModelForZeroShotImageClassification` gives a `CLIPModel`).
#[derive(Debug, AutoRegister)]
#[auto(model_type = "clip", task = "zero-shot-image-classification", class = "CLIPModel")]
struct ZeroShot(CLIPModel);

impl LoadModel for ZeroShot {
    type Config = CLIPConfig;
    const BASE_MODEL_PREFIX: &'static str = CLIPModel::BASE_MODEL_PREFIX;

    fn load(vb: VarBuilder<'_>, config: &CLIPConfig) -> Result<Self> {
        CLIPModel::new(vb, config).map(Self)
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

/// The CLIP vision tower with a linear classifier on the mean of the patch states (the
/// class token left out, before `post_layernorm`) (`CLIPForImageClassification`).
#[derive(Debug, AutoRegister)]
#[auto(model_type = "clip", task = "image-classification", class = "CLIPForImageClassification")]
pub struct CLIPForImageClassification {
    vision_model: CLIPVisionModel,
    /// `None` with `num_labels = 0` (`nn.Identity`).
    classifier: Option<Linear>,
}

impl LoadModel for CLIPForImageClassification {
    type Config = CLIPConfig;
    const BASE_MODEL_PREFIX: &'static str = CLIPModel::BASE_MODEL_PREFIX;

    fn load(vb: VarBuilder<'_>, config: &CLIPConfig) -> Result<Self> {
        let vision_model = CLIPVisionModel::new(vb.pp("vision_model"), &config.vision_config)?;
        let num_labels = config.labels.num_labels();
        let classifier = match num_labels {
            0 => None,
            n => Some(linear(config.vision_config.hidden_size, n, vb.pp("classifier"))?),
        };
        Ok(Self { vision_model, classifier })
    }
}

impl PreTrainedModel for CLIPForImageClassification {
    fn device(&self) -> &Device {
        self.vision_model.device()
    }

    fn dtype(&self) -> DType {
        self.vision_model.dtype()
    }
}

impl ForImageClassification for CLIPForImageClassification {
    fn forward(&self, inputs: &ModelInputs) -> Result<ImageClassifierOutput> {
        let (hidden, _) = self.vision_model.encode(inputs)?;
        let patches = hidden.narrow(1, 1, hidden.dim(1)? - 1)?.mean(D::Minus2)?;
        let logits = match &self.classifier {
            Some(classifier) => classifier.forward(&patches)?,
            None => patches,
        };
        Ok(ImageClassifierOutput::new(logits))
    }
}

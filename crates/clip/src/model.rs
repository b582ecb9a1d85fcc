//! [`CLIPModel`] (both towers, their projections and `logit_scale`) and
//! [`CLIPImageClassifier`] (registered as [`CLIPForImageClassification`]), as
//! `transformers`' `modeling_clip`.

use autocandle_core::nn::{linear_no_bias, Linear};
use candle_core::{Module, Tensor, D};
use candle_nn::VarBuilder;

use autocandle_core::{AutoRegister, Error, ForImageClassification, ImageClassifierOutput, ModelInputs, Result};

use crate::config::{CLIPConfig, CLIPTextConfig};
use crate::dual::{DualEncoder, ImageClassifierHead};
use crate::text::CLIPTextModel;
use crate::vision::CLIPVisionModel;

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
#[auto(task = "base", class = "CLIPModel")]
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
        Ok(self.encode_texts(inputs)?.1)
    }

    /// `get_image_features`: the projected (unnormalised) image features
    /// `[images, projection_dim]` of `pixel_values`.
    pub fn get_image_features(&self, inputs: &ModelInputs) -> Result<Tensor> {
        Ok(self.encode_images(inputs)?.1)
    }
}

impl DualEncoder for CLIPModel {
    const CLASSES: [&'static str; 3] = ["CLIPModel", "CLIPTextModel", "CLIPVisionModel"];

    /// The text features are projected (`get_text_features`): `transformers` replaces the
    /// tower's pooler output by them, so `text_model_output.pooler_output` is these.
    fn encode_texts(&self, inputs: &ModelInputs) -> Result<(Tensor, Tensor)> {
        let (hidden, pooled) = self.text_model.encode(inputs)?;
        Ok((hidden, self.text_projection.forward(&pooled)?))
    }

    /// The projected image features (`vision_model_output.pooler_output`, likewise).
    fn encode_images(&self, inputs: &ModelInputs) -> Result<(Tensor, Tensor)> {
        let (hidden, pooled) = self.vision_model.encode(inputs)?;
        Ok((hidden, self.visual_projection.forward(&pooled)?))
    }

    fn logit_scale(&self) -> &Tensor {
        &self.logit_scale
    }
}

crate::dual_encoder_model!(CLIPModel, config = CLIPConfig, model_type = "clip");
crate::pretrained_model!(CLIPModel => vision_model, CLIPImageClassifier => vision_model);

/// The CLIP vision tower with a linear classifier on the mean of the patch states (the
/// class token left out, before `post_layernorm`).
#[derive(Debug)]
pub struct CLIPImageClassifier {
    vision_model: CLIPVisionModel,
    classifier: ImageClassifierHead,
}

impl CLIPImageClassifier {
    /// Build the model; `vb` is the checkpoint root.
    pub fn new(vb: VarBuilder<'_>, config: &CLIPConfig) -> Result<Self> {
        let vision_model = CLIPVisionModel::new(vb.pp("vision_model"), &config.vision_config)?;
        let (hidden_size, num_labels) = (config.vision_config.hidden_size, config.labels.num_labels());
        Ok(Self { vision_model, classifier: ImageClassifierHead::load(vb.pp("classifier"), hidden_size, num_labels)? })
    }

    /// The vision tower.
    pub fn vision_model(&self) -> &CLIPVisionModel {
        &self.vision_model
    }
}

impl ForImageClassification for CLIPImageClassifier {
    fn forward(&self, inputs: &ModelInputs) -> Result<ImageClassifierOutput> {
        let (hidden, _) = self.vision_model.encode(inputs)?;
        self.classifier.forward(hidden.narrow(1, 1, hidden.dim(1)? - 1)?.mean(D::Minus2)?)
    }
}

/// The heads `autocandle_core::register_heads!` builds the CLIP registered types from. Not
/// public API.
#[doc(hidden)]
pub mod __heads {
    use autocandle_core::{LoadModel, Result};
    use candle_nn::VarBuilder;

    use crate::config::{CLIPConfig, CLIPTextConfig};
    use crate::text::CLIPTextModel;

    pub type TextEncoding = CLIPTextModel;
    pub type ImageClassification = super::CLIPImageClassifier;
    pub type ZeroShotImageClassification = super::CLIPModel;

    /// A head built from a config `C`.
    pub trait Head<C>: Sized {
        fn load(vb: VarBuilder<'_>, config: &C) -> Result<Self>;
    }

    impl Head<CLIPTextConfig> for CLIPTextModel {
        fn load(vb: VarBuilder<'_>, config: &CLIPTextConfig) -> Result<Self> {
            <Self as LoadModel>::load(vb, config)
        }
    }

    impl Head<CLIPConfig> for super::CLIPImageClassifier {
        fn load(vb: VarBuilder<'_>, config: &CLIPConfig) -> Result<Self> {
            Self::new(vb, config)
        }
    }

    impl Head<CLIPConfig> for super::CLIPModel {
        fn load(vb: VarBuilder<'_>, config: &CLIPConfig) -> Result<Self> {
            Self::new(vb, config)
        }
    }

    /// Load the head `H`.
    pub fn load<H: Head<C>, C>(vb: VarBuilder<'_>, config: &C, _prefix: &str, _class: &str) -> Result<H> {
        H::load(vb, config)
    }
}

autocandle_core::register_heads! {
    family: crate, config: CLIPConfig, prefix: "clip";
    /// [`CLIPModel`] registered as the zero-shot image classifier of `clip`
    /// (`AutoModelForZeroShotImageClassification` gives a `CLIPModel`).
    zero_shot_image_classification: CLIPForZeroShotImageClassification as "CLIPModel";
    /// A linear classifier on the mean of the patch states of the vision tower (the class
    /// token left out, before `post_layernorm`).
    image_classification: CLIPForImageClassification;
}

autocandle_core::register_heads! {
    family: crate, config: CLIPTextConfig, prefix: "text_model";
    /// [`CLIPTextModel`] registered as the text encoder of `clip_text_model`
    /// (`AutoModelForTextEncoding` gives a `CLIPTextModel`).
    text_encoding: CLIPTextEncoding as "CLIPTextModel";
}

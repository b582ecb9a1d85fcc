//! [`SiglipModel`] (both towers, `logit_scale` and `logit_bias`) and
//! [`SiglipImageClassifier`] (registered as [`SiglipForImageClassification`]), as
//! `transformers`' `modeling_siglip`.

use candle_core::{Tensor, D};
use candle_nn::VarBuilder;

use autocandle_clip::dual::{DualEncoder, ImageClassifierHead};
use autocandle_clip::{dual_encoder_model, pretrained_model};
use autocandle_core::{AutoRegister, Error, ForImageClassification, ImageClassifierOutput, ModelInputs, Result};

use crate::config::SiglipConfig;
use crate::towers::{SiglipTextModel, SiglipVisionModel};

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
#[auto(task = "base", class = "SiglipModel")]
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
        Ok(self.encode_texts(inputs)?.1)
    }

    /// `get_image_features`: the pooled (unnormalised) image features `[images, hidden]`.
    pub fn get_image_features(&self, inputs: &ModelInputs) -> Result<Tensor> {
        Ok(self.encode_images(inputs)?.1)
    }
}

impl DualEncoder for SiglipModel {
    const CLASSES: [&'static str; 3] = ["SiglipModel", "SiglipTextModel", "SiglipVisionModel"];

    fn encode_texts(&self, inputs: &ModelInputs) -> Result<(Tensor, Tensor)> {
        self.text_model.encode(inputs)
    }

    /// The features are the output of the vision tower's pooling head.
    fn encode_images(&self, inputs: &ModelInputs) -> Result<(Tensor, Tensor)> {
        let (hidden, pooled) = self.vision_model.encode(inputs)?;
        // `new` refuses a vision tower without its head.
        let pooled =
            pooled.ok_or_else(|| Error::Unsupported("the SigLIP vision tower has no pooling head".to_owned()))?;
        Ok((hidden, pooled))
    }

    fn logit_scale(&self) -> &Tensor {
        &self.logit_scale
    }

    fn logit_bias(&self) -> Option<&Tensor> {
        Some(&self.logit_bias)
    }
}

dual_encoder_model!(SiglipModel, config = SiglipConfig, model_type = "siglip");
pretrained_model!(SiglipModel => vision_model, SiglipImageClassifier => vision_model);

/// The SigLIP vision tower with a linear classifier on the mean of all patch states (the
/// pooling head, when the checkpoint has one, is loaded but unused, as in `transformers`).
#[derive(Debug)]
pub struct SiglipImageClassifier {
    vision_model: SiglipVisionModel,
    classifier: ImageClassifierHead,
}

impl SiglipImageClassifier {
    /// Build the model; `vb` is the checkpoint root.
    pub fn new(vb: VarBuilder<'_>, config: &SiglipConfig) -> Result<Self> {
        let vision_model = SiglipVisionModel::new(vb.pp("vision_model"), &config.vision_config)?;
        let (hidden_size, num_labels) = (config.vision_config.hidden_size, config.labels.num_labels());
        Ok(Self { vision_model, classifier: ImageClassifierHead::load(vb.pp("classifier"), hidden_size, num_labels)? })
    }

    /// The vision tower.
    pub fn vision_model(&self) -> &SiglipVisionModel {
        &self.vision_model
    }
}

impl ForImageClassification for SiglipImageClassifier {
    fn forward(&self, inputs: &ModelInputs) -> Result<ImageClassifierOutput> {
        let (hidden, _) = self.vision_model.encode(inputs)?;
        self.classifier.forward(hidden.mean(D::Minus2)?)
    }
}

/// The heads `autocandle_core::register_heads!` builds the SigLIP registered types from. Not
/// public API.
#[doc(hidden)]
pub mod __heads {
    use autocandle_core::Result;
    use candle_nn::VarBuilder;

    use crate::config::SiglipConfig;

    pub type ImageClassification = super::SiglipImageClassifier;
    pub type ZeroShotImageClassification = super::SiglipModel;

    /// A head built from a [`SiglipConfig`].
    pub trait Head: Sized {
        fn load(vb: VarBuilder<'_>, config: &SiglipConfig) -> Result<Self>;
    }

    impl Head for super::SiglipImageClassifier {
        fn load(vb: VarBuilder<'_>, config: &SiglipConfig) -> Result<Self> {
            Self::new(vb, config)
        }
    }

    impl Head for super::SiglipModel {
        fn load(vb: VarBuilder<'_>, config: &SiglipConfig) -> Result<Self> {
            Self::new(vb, config)
        }
    }

    /// Load the head `H`.
    pub fn load<H: Head>(vb: VarBuilder<'_>, config: &SiglipConfig, _prefix: &str, _class: &str) -> Result<H> {
        H::load(vb, config)
    }
}

autocandle_core::register_heads! {
    family: crate, config: SiglipConfig, prefix: "siglip";
    /// [`SiglipModel`] registered as the zero-shot image classifier of `siglip`
    /// (`AutoModelForZeroShotImageClassification` gives a `SiglipModel`).
    zero_shot_image_classification: SiglipForZeroShotImageClassification as "SiglipModel";
    /// A linear classifier on the mean of all patch states of the vision tower (the pooling
    /// head, when the checkpoint has one, is loaded but unused, as in `transformers`).
    image_classification: SiglipForImageClassification;
}

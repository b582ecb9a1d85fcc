//! What the dual encoders of the CLIP family (`CLIPModel`, and `SiglipModel` in
//! `autocandle-siglip`) share above their layers: the [`DualEncoder`] trait, whose
//! [`forward_pair`](DualEncoder::forward_pair) runs both towers into a [`DualEncoderOutput`];
//! [`dual_encoder_model!`](crate::dual_encoder_model), which implements the Auto traits on it;
//! [`tower_model!`](crate::tower_model) and
//! [`pretrained_model!`](crate::pretrained_model) for the towers and the wrappers; and the
//! [`ImageClassifierHead`] of the `*ForImageClassification` models.

use autocandle_core::nn::{linear, Linear};
use candle_core::{Module, Tensor};
use candle_nn::VarBuilder;

use autocandle_core::{
    BaseModelOutput, Error, ImageClassifierOutput, ModelInputs, Result, ZeroShotImageClassificationOutput,
};

use crate::layers::{contrastive_logits, l2_normalize};

/// Everything a dual encoder's `forward` computes (`CLIPOutput`, `SiglipOutput`).
///
/// As a base model output ([`BaseModelOutput`]: `From`) it is the vision tower's
/// (`vision_model_output`) with the rest in `extra`; as a zero-shot output
/// ([`ZeroShotImageClassificationOutput`]: `From`) the logits and the normalised embeddings.
#[derive(Debug)]
pub struct DualEncoderOutput {
    /// `[images, texts]`: `exp(logit_scale) * cos(image, text) (+ logit_bias)`.
    pub logits_per_image: Tensor,
    /// `[texts, images]`: the transpose of `logits_per_image`.
    pub logits_per_text: Tensor,
    /// `[texts, dim]`: the normalised text features.
    pub text_embeds: Tensor,
    /// `[images, dim]`: the normalised image features.
    pub image_embeds: Tensor,
    /// `text_model_output.last_hidden_state`.
    pub text_last_hidden_state: Tensor,
    /// `text_model_output.pooler_output`: the unnormalised text features
    /// ([`DualEncoder::encode_texts`]).
    pub text_features: Tensor,
    /// `vision_model_output.last_hidden_state`.
    pub vision_last_hidden_state: Tensor,
    /// `vision_model_output.pooler_output`: the unnormalised image features
    /// ([`DualEncoder::encode_images`]).
    pub image_features: Tensor,
}

impl From<DualEncoderOutput> for BaseModelOutput {
    fn from(o: DualEncoderOutput) -> Self {
        BaseModelOutput::new(o.vision_last_hidden_state, Some(o.image_features))
            .with_extra("logits_per_image", o.logits_per_image)
            .with_extra("logits_per_text", o.logits_per_text)
            .with_extra("text_embeds", o.text_embeds)
            .with_extra("image_embeds", o.image_embeds)
            .with_extra("text_model_output.last_hidden_state", o.text_last_hidden_state)
            .with_extra("text_model_output.pooler_output", o.text_features)
    }
}

impl From<DualEncoderOutput> for ZeroShotImageClassificationOutput {
    fn from(o: DualEncoderOutput) -> Self {
        ZeroShotImageClassificationOutput::new(o.logits_per_image, o.logits_per_text, o.text_embeds, o.image_embeds)
    }
}

/// A dual encoder: a text and a vision tower whose features meet in one embedding space, where
/// texts and images are compared by their scaled cosine similarity.
pub trait DualEncoder {
    /// The `transformers` classes of the model, its text tower and its vision tower
    /// (`["CLIPModel", "CLIPTextModel", "CLIPVisionModel"]`), for errors.
    const CLASSES: [&'static str; 3];

    /// `(last_hidden_state, features)` of the text tower for `input_ids` (with
    /// `attention_mask`, `position_ids` when given); the features are `get_text_features`'.
    fn encode_texts(&self, inputs: &ModelInputs) -> Result<(Tensor, Tensor)>;

    /// `(last_hidden_state, features)` of the vision tower for `pixel_values`; the features
    /// are `get_image_features`'.
    fn encode_images(&self, inputs: &ModelInputs) -> Result<(Tensor, Tensor)>;

    /// The learned temperature `logit_scale` (its log).
    fn logit_scale(&self) -> &Tensor;

    /// The learned `logit_bias` added to the logits (SigLIP's); `None` without one.
    fn logit_bias(&self) -> Option<&Tensor> {
        None
    }

    /// Run both towers on `input_ids` and `pixel_values` (both required) and compare every
    /// text with every image.
    fn forward_pair(&self, inputs: &ModelInputs) -> Result<DualEncoderOutput> {
        if inputs.input_ids.is_none() || inputs.pixel_values.is_none() {
            let [model, text, vision] = Self::CLASSES;
            return Err(Error::input(format!(
                "{model} needs both `input_ids` (texts, from the tokenizer) and `pixel_values` (images, from the \
                 image processor); for one modality use `get_text_features` / `get_image_features` or {text} / \
                 {vision}"
            )));
        }
        let (vision_last_hidden_state, image_features) = self.encode_images(inputs)?;
        let (text_last_hidden_state, text_features) = self.encode_texts(inputs)?;
        let image_embeds = l2_normalize(&image_features)?;
        let text_embeds = l2_normalize(&text_features)?;
        let (logits_per_image, logits_per_text) =
            contrastive_logits(&text_embeds, &image_embeds, self.logit_scale(), self.logit_bias())?;
        Ok(DualEncoderOutput {
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

/// The `classifier` of an image classifier of the CLIP family: a linear map of the pooled
/// patch states to `num_labels` logits, or the identity with `num_labels = 0` (`nn.Identity`).
#[derive(Debug)]
pub struct ImageClassifierHead {
    /// `None` with `num_labels = 0`.
    classifier: Option<Linear>,
}

impl ImageClassifierHead {
    /// `vb` is `classifier`; nothing is read with `num_labels = 0`.
    pub fn load(vb: VarBuilder<'_>, hidden_size: usize, num_labels: usize) -> Result<Self> {
        let classifier = match num_labels {
            0 => None,
            n => Some(linear(hidden_size, n, vb)?),
        };
        Ok(Self { classifier })
    }

    /// `pooled` `[batch, hidden]` -> the logits `[batch, num_labels]` (`pooled` itself without
    /// labels).
    pub fn forward(&self, pooled: Tensor) -> Result<ImageClassifierOutput> {
        let logits = match &self.classifier {
            Some(classifier) => classifier.forward(&pooled)?,
            None => pooled,
        };
        Ok(ImageClassifierOutput::new(logits))
    }
}

/// Implements `PreTrainedModel` for each `Type => field` with the device and dtype of that
/// field (a tower, or the wrapped model of `Wrapper => 0`), or for each `Type` with its own
/// `device` and `dtype` fields.
#[macro_export]
macro_rules! pretrained_model {
    ($($model:ident => $field:tt),+ $(,)?) => {$(
        impl $crate::__private::autocandle_core::PreTrainedModel for $model {
            fn device(&self) -> &$crate::__private::Device {
                $crate::__private::autocandle_core::PreTrainedModel::device(&self.$field)
            }

            fn dtype(&self) -> $crate::__private::DType {
                $crate::__private::autocandle_core::PreTrainedModel::dtype(&self.$field)
            }
        }
    )+};
    ($($model:ident),+ $(,)?) => {$(
        impl $crate::__private::autocandle_core::PreTrainedModel for $model {
            fn device(&self) -> &$crate::__private::Device {
                &self.device
            }

            fn dtype(&self) -> $crate::__private::DType {
                self.dtype
            }
        }
    )+};
}

/// Implements `Model` for a tower of the CLIP family on its
/// `encode(&ModelInputs) -> Result<(last_hidden_state, pooler_output)>` (the pooler output a
/// `Tensor`, or an `Option<Tensor>` where the tower may have no pooling head); with `config`
/// and `prefix`, also `LoadModel` through `new(vb.pp(prefix), config)`: saved towers have their
/// weights at the root (`embeddings.`) or, made before `transformers` 5, under the prefix
/// (`vision_model.`), and both load.
///
/// ```text
/// autocandle_clip::tower_model!(SiglipVisionModel, config = SiglipVisionConfig, prefix = "vision_model");
/// ```
#[macro_export]
macro_rules! tower_model {
    ($tower:ident) => {
        const _: () = {
            use $crate::__private::autocandle_core::{BaseModelOutput, Model, ModelInputs, Result};

            impl Model for $tower {
                fn forward(&self, inputs: &ModelInputs) -> Result<BaseModelOutput> {
                    let (hidden, pooled) = self.encode(inputs)?;
                    // `Some(pooled)`, or `pooled` where it is optional already.
                    Ok(BaseModelOutput::new(hidden, pooled.into()))
                }
            }
        };
    };
    ($tower:ident, config = $config:ty, prefix = $prefix:tt) => {
        $crate::tower_model!($tower);

        impl $crate::__private::autocandle_core::LoadModel for $tower {
            type Config = $config;
            const BASE_MODEL_PREFIX: &'static str = $prefix;

            fn load(
                vb: $crate::__private::VarBuilder<'_>,
                config: &$config,
            ) -> $crate::__private::autocandle_core::Result<Self> {
                Self::new(vb.pp($prefix), config)
            }
        }
    };
}

/// Implements, for a [`DualEncoder`](crate::dual::DualEncoder) with a
/// `new(VarBuilder, &config) -> Result<Self>`: `LoadModel` (its `base_model_prefix` is the
/// model type), and `Model` and `ForZeroShotImageClassification` on
/// [`forward_pair`](crate::dual::DualEncoder::forward_pair). Its `PreTrainedModel` impl is the
/// caller's ([`pretrained_model!`](crate::pretrained_model)); the caller registers it as the
/// zero-shot image classifier of the model type with `autocandle_core::register_heads!`
/// (`zero_shot_image_classification: ... as "CLIPModel"`).
///
/// ```text
/// autocandle_clip::dual_encoder_model!(SiglipModel, config = SiglipConfig, model_type = "siglip");
/// ```
#[macro_export]
macro_rules! dual_encoder_model {
    ($model:ident, config = $config:ty, model_type = $model_type:tt) => {
        const _: () = {
            use $crate::__private::autocandle_core::{
                BaseModelOutput, ForZeroShotImageClassification, LoadModel, Model, ModelInputs, Result,
                ZeroShotImageClassificationOutput,
            };
            use $crate::__private::VarBuilder;
            use $crate::dual::DualEncoder;

            impl LoadModel for $model {
                type Config = $config;
                const BASE_MODEL_PREFIX: &'static str = $model_type;

                fn load(vb: VarBuilder<'_>, config: &$config) -> Result<Self> {
                    Self::new(vb, config)
                }
            }

            impl Model for $model {
                fn forward(&self, inputs: &ModelInputs) -> Result<BaseModelOutput> {
                    Ok(self.forward_pair(inputs)?.into())
                }
            }

            impl ForZeroShotImageClassification for $model {
                fn forward(&self, inputs: &ModelInputs) -> Result<ZeroShotImageClassificationOutput> {
                    Ok(self.forward_pair(inputs)?.into())
                }
            }
        };
    };
}

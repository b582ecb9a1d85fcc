//! `LlavaConfig`, field for field as `transformers`' `configuration_llava.LlavaConfig` (5.25).

use autocandle_clip::CLIPVisionConfig;
use autocandle_core::{Activation, AutoRegister, Error, Result};
use autocandle_decoder::DecoderSpec;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The model type, for error messages.
pub(crate) const MODEL_TYPE: &str = "llava";

/// Which hidden states of the vision tower feed the projector (`vision_feature_layer`): one
/// index, or several whose states are concatenated along the hidden axis. Indices follow
/// `hidden_states` of the tower (0 = the embeddings, `-1` = the last layer's output).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum VisionFeatureLayer {
    /// One hidden state (`-2`, the default: the output of the second-to-last layer).
    One(i64),
    /// Several, concatenated in this order.
    Many(Vec<i64>),
}

impl VisionFeatureLayer {
    /// The indices, in order.
    pub fn indices(&self) -> Vec<i64> {
        match self {
            Self::One(i) => vec![*i],
            Self::Many(v) => v.clone(),
        }
    }
}

/// `vision_feature_select_strategy`: `default` drops the class token of the selected hidden
/// states, `full` keeps it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SelectStrategy {
    /// Drop the class token (`[:, 1:]`).
    Default,
    /// Keep every position.
    Full,
}

autocandle_core::config_with_attribute_map! {
    // `LlavaConfig.attribute_map`.
    attribute_map: [("image_token_id", "image_token_index")];
/// The config of a LLaVA model (`LlavaConfig`), with the `transformers` defaults (those of
/// `llava-hf/llava-1.5-7b-hf`).
///
/// `vision_config` and `text_config` stay as `config.json` holds them: the vision tower is
/// read with [`LlavaConfig::vision`] (CLIP's vision config; LLaVA's own defaults, a 336 px
/// ViT-L/14, when absent), the language model with [`LlavaConfig::text_spec`] (any text model
/// type `autocandle_vlm` knows; `llama` when `text_config` names none). `image_token_id` is
/// read as `image_token_index`, as its `attribute_map` says.
#[derive(Debug, Clone, PartialEq, Serialize, AutoRegister)]
#[auto(config, model_type = "llava")]
pub struct LlavaConfig {
    /// The vision tower's config (`CLIPVisionConfig`); `None` for LLaVA's default one.
    pub vision_config: Option<Value>,
    /// The language model's config (`LlamaConfig` by default).
    pub text_config: Option<Value>,
    /// The id of the token that stands for one image feature (`image_token_id`).
    pub image_token_index: i64,
    /// Image tokens per image (informational: the processor computes the count).
    pub image_seq_length: usize,
    /// Activation between the projector's two linear layers.
    pub projector_hidden_act: Activation,
    /// Whether the class token of the vision features is dropped.
    pub vision_feature_select_strategy: SelectStrategy,
    /// The vision hidden state(s) that feed the projector.
    pub vision_feature_layer: VisionFeatureLayer,
    /// Whether the projector's linear layers have biases.
    pub multimodal_projector_bias: bool,
    /// Whether `lm_head` is the token embedding; also true when `text_config` says so.
    pub tie_word_embeddings: bool,
}
}

impl Default for LlavaConfig {
    /// `LlavaConfig()` in `transformers`.
    fn default() -> Self {
        Self {
            vision_config: None,
            text_config: None,
            image_token_index: 32000,
            image_seq_length: 576,
            projector_hidden_act: Activation::Gelu,
            vision_feature_select_strategy: SelectStrategy::Default,
            vision_feature_layer: VisionFeatureLayer::One(-2),
            multimodal_projector_bias: true,
            tie_word_embeddings: false,
        }
    }
}

/// `LlavaConfig.sub_configs_defaults["vision_config"]`: the vision tower when `vision_config` is
/// absent (CLIP ViT-L/14 at 336 px).
fn default_vision() -> CLIPVisionConfig {
    CLIPVisionConfig {
        intermediate_size: 4096,
        hidden_size: 1024,
        patch_size: 14,
        image_size: 336,
        num_hidden_layers: 24,
        num_attention_heads: 16,
        projection_dim: 768,
        ..CLIPVisionConfig::default()
    }
}

impl LlavaConfig {
    /// The vision tower's config. A `vision_config` of another vision model type than
    /// `clip_vision_model` is [`Error::Unsupported`].
    pub fn vision(&self) -> Result<CLIPVisionConfig> {
        let fields = match &self.vision_config {
            None | Some(Value::Null) => return Ok(default_vision()),
            Some(Value::Object(fields)) => fields,
            Some(other) => {
                return Err(Error::config(MODEL_TYPE, format!("`vision_config` must be a JSON object, found {other}")))
            }
        };
        match fields.get("model_type").and_then(Value::as_str) {
            None | Some("clip_vision_model") => {}
            Some(other) => {
                return Err(Error::Unsupported(format!(
                    "`llava` with a `{other}` vision tower (`vision_config.model_type`): only `clip_vision_model` \
                     is supported here"
                )))
            }
        }
        serde_json::from_value(Value::Object(fields.clone()))
            .map_err(|e| Error::config(MODEL_TYPE, format!("`vision_config` is not a valid CLIP vision config: {e}")))
    }

    /// Whether the language model's head is tied to its embedding: `tie_word_embeddings` here
    /// or in `text_config` (`LlavaConfig.__post_init__` copies a true one up).
    pub fn tied(&self) -> bool {
        self.tie_word_embeddings
            || self.text_config.as_ref().and_then(|t| t.get("tie_word_embeddings")).and_then(Value::as_bool)
                == Some(true)
    }

    /// The language model's [`DecoderSpec`] (`AutoModel.from_config(config.text_config)`).
    pub fn text_spec(&self) -> Result<DecoderSpec> {
        autocandle_vlm::text_decoder_spec(
            self.text_config.as_ref(),
            "llama",
            MODEL_TYPE,
            &[("tie_word_embeddings", Value::Bool(self.tied()))],
        )
    }

    /// `image_token_id` as a token id.
    pub fn image_token_id(&self) -> Result<u32> {
        u32::try_from(self.image_token_index).map_err(|_| {
            Error::config(MODEL_TYPE, format!("`image_token_index` must be a token id, got {}", self.image_token_index))
        })
    }
}

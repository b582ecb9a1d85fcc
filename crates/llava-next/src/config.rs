//! `LlavaNextConfig`, field for field as `transformers`' `configuration_llava_next.LlavaNextConfig`
//! (5.25).

use autocandle_clip::CLIPVisionConfig;
use autocandle_core::{Activation, AutoRegister, Error, Result};
use autocandle_decoder::DecoderSpec;
use autocandle_llava::{LlavaConfig, SelectStrategy, VisionFeatureLayer};
use serde::Serialize;
use serde_json::Value;

/// The model type, for error messages.
pub(crate) const MODEL_TYPE: &str = "llava_next";

/// The most tiles (grid cells) one pinpoint may ask for: a bound on what a config can make the
/// model allocate.
const MAX_TILES: usize = 1024;

autocandle_core::config_with_attribute_map! {
    // `LlavaNextConfig.attribute_map`.
    attribute_map: [("image_token_id", "image_token_index")];
/// The config of a LLaVA-NeXT model (`LlavaNextConfig`), with the `transformers` defaults.
///
/// As [`LlavaConfig`] (a CLIP `vision_config`, a `text_config` of any text model type
/// `autocandle_vlm` knows, `llama` by default), plus `image_grid_pinpoints`: the resolutions
/// (`[height, width]`) an image may be tiled at.
#[derive(Debug, Clone, PartialEq, Serialize, AutoRegister)]
#[auto(config, model_type = "llava_next")]
pub struct LlavaNextConfig {
    /// The vision tower's config (`CLIPVisionConfig`); `None` for the default one.
    pub vision_config: Option<Value>,
    /// The language model's config (`LlamaConfig` by default).
    pub text_config: Option<Value>,
    /// The id of the token that stands for one image feature (`image_token_id`).
    pub image_token_index: i64,
    /// Informational (the processor computes the count).
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
    /// The resolutions `[height, width]` images are tiled at (`None`: the default list).
    pub image_grid_pinpoints: Option<Vec<[usize; 2]>>,
}
}

impl Default for LlavaNextConfig {
    /// `LlavaNextConfig()` in `transformers`.
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
            image_grid_pinpoints: None,
        }
    }
}

impl LlavaNextConfig {
    /// The same fields as a [`LlavaConfig`] (whose readers of the sub-configs are shared).
    fn as_llava(&self) -> LlavaConfig {
        LlavaConfig {
            vision_config: self.vision_config.clone(),
            text_config: self.text_config.clone(),
            image_token_index: self.image_token_index,
            image_seq_length: self.image_seq_length,
            projector_hidden_act: self.projector_hidden_act,
            vision_feature_select_strategy: self.vision_feature_select_strategy,
            vision_feature_layer: self.vision_feature_layer.clone(),
            multimodal_projector_bias: self.multimodal_projector_bias,
            tie_word_embeddings: self.tie_word_embeddings,
        }
    }

    /// The vision tower's config (CLIP ViT-L/14 at 336 px when absent).
    pub fn vision(&self) -> Result<CLIPVisionConfig> {
        self.as_llava().vision()
    }

    /// Whether the language model's head is tied to its embedding.
    pub fn tied(&self) -> bool {
        self.as_llava().tied()
    }

    /// The language model's [`DecoderSpec`].
    pub fn text_spec(&self) -> Result<DecoderSpec> {
        self.as_llava().text_spec()
    }

    /// `image_token_id` as a token id.
    pub fn image_token_id(&self) -> Result<u32> {
        self.as_llava().image_token_id()
    }

    /// `image_grid_pinpoints` (`[height, width]` each), the default list when absent. Each must
    /// be positive and a multiple of the vision tower's `image_size` of at most 1024 tiles.
    pub fn pinpoints(&self) -> Result<Vec<[usize; 2]>> {
        let list = self
            .image_grid_pinpoints
            .clone()
            .unwrap_or_else(|| vec![[336, 672], [672, 336], [672, 672], [1008, 336], [336, 1008]]);
        if list.is_empty() {
            return Err(Error::config(MODEL_TYPE, "`image_grid_pinpoints` is an empty list"));
        }
        let tile = self.vision()?.image_size;
        for &[h, w] in &list {
            if tile == 0 || h == 0 || w == 0 || h % tile != 0 || w % tile != 0 || (h / tile) * (w / tile) > MAX_TILES {
                return Err(Error::config(
                    MODEL_TYPE,
                    format!(
                        "`image_grid_pinpoints` entry [{h}, {w}] must be positive multiples of the vision tower's \
                         `image_size` ({tile}) of at most {MAX_TILES} tiles"
                    ),
                ));
            }
        }
        Ok(list)
    }
}

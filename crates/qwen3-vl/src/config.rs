//! `Qwen3VLConfig` with `Qwen3VLVisionConfig` and `Qwen3VLTextConfig` (as JSON, read into a
//! Qwen3 decoder), after `configuration_qwen3_vl` (5.25).

use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use autocandle_core::{Activation, AutoRegister, Error, Result};
use autocandle_decoder::{DecoderConfig, DecoderSpec};
use autocandle_qwen3::Qwen3Config;

use crate::vision::VisionSettings;

/// `Qwen3VLTextRotaryEmbedding`'s default `mrope_section`.
pub const DEFAULT_MROPE_SECTION: [usize; 3] = [24, 20, 20];

const OWNER: &str = "qwen3_vl";

/// `Qwen3VLVisionConfig`, with the `transformers` defaults.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Qwen3VLVisionConfig {
    /// Number of blocks.
    pub depth: usize,
    /// Width of the blocks.
    pub hidden_size: usize,
    /// Activation of the MLP.
    pub hidden_act: Activation,
    /// Width of the MLP.
    pub intermediate_size: usize,
    /// Attention heads.
    pub num_heads: usize,
    /// Image channels.
    pub in_channels: usize,
    /// Patch side in pixels.
    pub patch_size: usize,
    /// Side of the square of patches merged into one feature.
    pub spatial_merge_size: usize,
    /// Frames per temporal patch.
    pub temporal_patch_size: usize,
    /// Width of the merged features (the language model's `hidden_size`).
    pub out_hidden_size: usize,
    /// Rows of the learned position table.
    pub num_position_embeddings: usize,
    /// Blocks whose outputs are merged into DeepStack features.
    pub deepstack_visual_indexes: Vec<usize>,
    /// Unused at inference.
    pub initializer_range: f64,
    /// The 2D rope (`rope_theta`, default 10000).
    pub rope_parameters: Option<Value>,
}

impl Default for Qwen3VLVisionConfig {
    fn default() -> Self {
        Self {
            depth: 27,
            hidden_size: 1152,
            hidden_act: Activation::GeluTanh,
            intermediate_size: 4304,
            num_heads: 16,
            in_channels: 3,
            patch_size: 16,
            spatial_merge_size: 2,
            temporal_patch_size: 2,
            out_hidden_size: 3584,
            num_position_embeddings: 2304,
            deepstack_visual_indexes: vec![8, 16, 24],
            initializer_range: 0.02,
            rope_parameters: None,
        }
    }
}

/// The config of a Qwen3-VL model (`Qwen3VLConfig`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, AutoRegister)]
#[auto(config, model_type = "qwen3_vl")]
#[serde(default)]
pub struct Qwen3VLConfig {
    /// The language model's config (`Qwen3VLTextConfig`), as JSON.
    pub text_config: Option<Value>,
    /// The vision tower's config.
    pub vision_config: Qwen3VLVisionConfig,
    /// Id of the image token.
    pub image_token_id: u32,
    /// Id of the video token.
    pub video_token_id: u32,
    /// Id of `<|vision_start|>`.
    pub vision_start_token_id: u32,
    /// Id of `<|vision_end|>`.
    pub vision_end_token_id: u32,
    /// Whether `lm_head` is the token embedding.
    pub tie_word_embeddings: bool,
    /// Other top-level fields.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl Default for Qwen3VLConfig {
    fn default() -> Self {
        Self {
            text_config: None,
            vision_config: Qwen3VLVisionConfig::default(),
            image_token_id: 151655,
            video_token_id: 151656,
            vision_start_token_id: 151652,
            vision_end_token_id: 151653,
            tie_word_embeddings: false,
            extra: Map::new(),
        }
    }
}

/// Everything the model is built from.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The language model (a Qwen3 decoder).
    pub text: DecoderSpec,
    /// How the rotary half-dimensions are shared by the t, h and w positions (interleaved).
    pub mrope_section: Vec<usize>,
    /// The vision tower.
    pub vision: VisionSettings,
    /// The token that stands for one merged image feature.
    pub image_token_id: u32,
}

/// The text model's [`DecoderSpec`] and `mrope_section` from `text_config`, with the defaults
/// of `Qwen3VLTextConfig` (a Qwen3 decoder, rope base 500000).
pub fn text_settings(text_config: Option<&Value>, tie_word_embeddings: bool) -> Result<(DecoderSpec, Vec<usize>)> {
    let mut fields = match text_config {
        Some(Value::Object(m)) => m.clone(),
        None | Some(Value::Null) => Map::new(),
        Some(other) => return Err(Error::config(OWNER, format!("`text_config` must be a JSON object, found {other}"))),
    };
    let defaults = json!({
        "vocab_size": 151936, "hidden_size": 4096, "intermediate_size": 22016, "num_hidden_layers": 32,
        "num_attention_heads": 32, "head_dim": 128, "hidden_act": "silu",
        "max_position_embeddings": 128000, "rms_norm_eps": 1e-6, "use_cache": true, "attention_bias": false,
        "attention_dropout": 0.0,
    });
    if let Value::Object(d) = defaults {
        for (k, v) in d {
            if fields.get(&k).is_none_or(Value::is_null) {
                fields.insert(k, v);
            }
        }
    }
    if fields.get("num_key_value_heads").is_none_or(Value::is_null) {
        let heads = fields.get("num_attention_heads").cloned().unwrap_or(Value::Null);
        fields.insert("num_key_value_heads".into(), heads);
    }
    let mut rope = match fields.remove("rope_parameters").or_else(|| fields.remove("rope_scaling")) {
        Some(Value::Object(m)) => m,
        None | Some(Value::Null) => Map::new(),
        Some(other) => return Err(Error::config(OWNER, format!("`rope_parameters` must be an object: {other}"))),
    };
    fields.remove("rope_scaling");
    let theta = fields.remove("rope_theta").filter(|v| !v.is_null()).unwrap_or(json!(500_000.0));
    rope.entry("rope_theta").or_insert(theta);
    let section = match rope.remove("mrope_section") {
        None | Some(Value::Null) => DEFAULT_MROPE_SECTION.to_vec(),
        Some(v) => serde_json::from_value::<Vec<usize>>(v)
            .map_err(|e| Error::config(OWNER, format!("`mrope_section` must be a list of sizes: {e}")))?,
    };
    rope.remove("mrope_interleaved");
    let kind = rope.remove("type").or_else(|| rope.remove("rope_type"));
    let kind = match kind.as_ref().and_then(Value::as_str) {
        None | Some("mrope") | Some("default") => "default".to_owned(),
        Some(other) => other.to_owned(),
    };
    rope.insert("rope_type".into(), Value::String(kind));
    fields.insert("rope_parameters".into(), Value::Object(rope));
    fields.insert("tie_word_embeddings".into(), Value::Bool(tie_word_embeddings));
    fields.insert("use_sliding_window".into(), Value::Bool(false));
    fields.remove("layer_types");
    fields.insert("model_type".into(), Value::String("qwen3".into()));
    let config: Qwen3Config = serde_json::from_value(Value::Object(fields))
        .map_err(|e| Error::config(OWNER, format!("invalid text config: {e}")))?;
    let spec = config.decoder_spec()?;
    let half = spec.head_dim / 2;
    if section.len() != 3 || spec.rope.rotary_dim != spec.head_dim {
        return Err(Error::config(
            OWNER,
            format!("`mrope_section` {section:?} must have 3 sizes (t, h, w) over the rotary half-dimension ({half})"),
        ));
    }
    Ok((spec, section))
}

impl Qwen3VLConfig {
    /// The settings the model is built from.
    pub fn settings(&self) -> Result<Settings> {
        let (text, mrope_section) = text_settings(self.text_config.as_ref(), self.tie_word_embeddings)?;
        let v = &self.vision_config;
        let vision = VisionSettings {
            depth: v.depth,
            embed_dim: v.hidden_size,
            intermediate_size: v.intermediate_size,
            out_dim: v.out_hidden_size,
            num_heads: v.num_heads,
            in_channels: v.in_channels,
            patch_size: v.patch_size,
            temporal_patch_size: v.temporal_patch_size,
            spatial_merge_size: v.spatial_merge_size,
            num_position_embeddings: v.num_position_embeddings,
            deepstack_visual_indexes: v.deepstack_visual_indexes.clone(),
            hidden_act: v.hidden_act,
            rope_theta: autocandle_qwen2_vl::vision_rope_theta(v.rope_parameters.as_ref()),
        };
        vision.validate(OWNER)?;
        if vision.out_dim != text.hidden_size {
            return Err(Error::config(
                OWNER,
                format!(
                    "the vision tower gives features of {} dimensions (`out_hidden_size`) but the language model's \
                     `hidden_size` is {}",
                    vision.out_dim, text.hidden_size
                ),
            ));
        }
        Ok(Settings { text, mrope_section, vision, image_token_id: self.image_token_id })
    }
}

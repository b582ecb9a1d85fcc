//! `Qwen2VLConfig` (with `Qwen2VLVisionConfig` and the text config, nested as `text_config` or
//! flat at the top level as older checkpoints have it), after `configuration_qwen2_vl` (5.25),
//! and the text-config reading Qwen2.5-VL shares.

use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use autocandle_core::{Activation, AutoRegister, Error, Result};
use autocandle_decoder::{DecoderConfig, DecoderSpec};
use autocandle_qwen2::Qwen2Config;

use crate::vision::{VisionKind, VisionSettings};

/// Default M-RoPE sections (`Qwen2VLRotaryEmbedding`'s fallback).
pub const DEFAULT_MROPE_SECTION: [usize; 3] = [16, 24, 24];

/// Everything the model is built from, common to Qwen2-VL and Qwen2.5-VL.
#[derive(Debug, Clone)]
pub struct VlSettings {
    /// The language model (a Qwen2 decoder).
    pub text: DecoderSpec,
    /// How the rotary half-dimensions split over the t, h and w positions.
    pub mrope_section: Vec<usize>,
    /// The vision tower.
    pub vision: VisionSettings,
    /// The token that stands for one merged image feature.
    pub image_token_id: u32,
    /// The token of a video feature (videos are not supported here).
    pub video_token_id: u32,
    /// The model type, for messages.
    pub owner: &'static str,
}

/// The text model's [`DecoderSpec`] and `mrope_section` from `text_config` (or, when it is
/// absent, the top-level fields), with the defaults of `Qwen2VLTextConfig` /
/// `Qwen2_5_VLTextConfig` (which are the same): a Qwen2 decoder whose rope is `mrope`
/// (`rope_type` `mrope` reads as `default`) and whose head size is `hidden_size / heads`.
pub fn text_settings(
    text_config: Option<&Value>,
    flat: &Map<String, Value>,
    tie_word_embeddings: bool,
    owner: &str,
) -> Result<(DecoderSpec, Vec<usize>)> {
    let mut fields = match text_config {
        Some(Value::Object(m)) => m.clone(),
        None | Some(Value::Null) => flat.clone(),
        Some(other) => {
            return Err(Error::config(owner.to_owned(), format!("`text_config` must be a JSON object, found {other}")))
        }
    };
    let defaults = json!({
        "vocab_size": 152064, "hidden_size": 8192, "intermediate_size": 29568, "num_hidden_layers": 80,
        "num_attention_heads": 64, "num_key_value_heads": 8, "hidden_act": "silu",
        "max_position_embeddings": 32768, "rms_norm_eps": 1e-5, "use_cache": true, "use_sliding_window": false,
        "sliding_window": 4096, "max_window_layers": 80, "attention_dropout": 0.0,
        "bos_token_id": 151643, "eos_token_id": 151645,
    });
    if let Value::Object(d) = defaults {
        for (k, v) in d {
            if fields.get(&k).is_none_or(Value::is_null) && !(k == "num_key_value_heads" && fields.contains_key(&k)) {
                fields.insert(k, v);
            }
        }
    }
    if fields.get("num_key_value_heads").is_none_or(Value::is_null) {
        let heads = fields.get("num_attention_heads").cloned().unwrap_or(Value::Null);
        fields.insert("num_key_value_heads".into(), heads);
    }
    // rope: `rope_scaling` wins over `rope_parameters`; `rope_theta` fills in (default 1e6).
    let mut rope = match fields.remove("rope_scaling").filter(|v| !v.is_null()) {
        Some(Value::Object(m)) => m,
        Some(other) => {
            return Err(Error::config(owner.to_owned(), format!("`rope_scaling` must be an object: {other}")))
        }
        None => match fields.remove("rope_parameters") {
            Some(Value::Object(m)) => m,
            None | Some(Value::Null) => Map::new(),
            Some(other) => {
                return Err(Error::config(owner.to_owned(), format!("`rope_parameters` must be an object: {other}")))
            }
        },
    };
    fields.remove("rope_parameters");
    let theta = fields.remove("rope_theta").filter(|v| !v.is_null()).unwrap_or(json!(1_000_000.0));
    rope.entry("rope_theta").or_insert(theta);
    let section = match rope.remove("mrope_section") {
        None | Some(Value::Null) => DEFAULT_MROPE_SECTION.to_vec(),
        Some(v) => serde_json::from_value::<Vec<usize>>(v)
            .map_err(|e| Error::config(owner.to_owned(), format!("`mrope_section` must be a list of sizes: {e}")))?,
    };
    let kind = rope.remove("type").or_else(|| rope.remove("rope_type"));
    let kind = match kind.as_ref().and_then(Value::as_str) {
        None | Some("mrope") | Some("default") => "default".to_owned(),
        Some(other) => other.to_owned(),
    };
    rope.insert("rope_type".into(), Value::String(kind));
    fields.insert("rope_parameters".into(), Value::Object(rope));
    // The attention reads `hidden_size / num_attention_heads`, whatever `head_dim` says.
    fields.remove("head_dim");
    let tie = tie_word_embeddings || fields.get("tie_word_embeddings").and_then(Value::as_bool).unwrap_or(false);
    fields.insert("tie_word_embeddings".into(), Value::Bool(tie));
    fields.insert("model_type".into(), Value::String("qwen2".into()));
    let config: Qwen2Config = serde_json::from_value(Value::Object(fields))
        .map_err(|e| Error::config(owner.to_owned(), format!("invalid text config: {e}")))?;
    let spec = config.decoder_spec()?;
    let half = spec.head_dim / 2;
    if section.iter().sum::<usize>() != half || spec.rope.rotary_dim != spec.head_dim {
        return Err(Error::config(
            owner.to_owned(),
            format!("`mrope_section` {section:?} must add up to half the head size ({half})"),
        ));
    }
    Ok((spec, section))
}

/// The rope base of a vision config's `rope_parameters` (10000 by default).
pub fn vision_rope_theta(rope_parameters: Option<&Value>) -> f64 {
    rope_parameters.and_then(|r| r.get("rope_theta")).and_then(Value::as_f64).unwrap_or(10_000.0)
}

/// `Qwen2VLVisionConfig`, with the `transformers` defaults.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Qwen2VLVisionConfig {
    /// Number of blocks.
    pub depth: usize,
    /// Width of the blocks.
    pub embed_dim: usize,
    /// Width of the merged features (the language model's `hidden_size`).
    pub hidden_size: usize,
    /// Activation of the blocks' MLP.
    pub hidden_act: Activation,
    /// MLP width over `embed_dim`.
    pub mlp_ratio: f64,
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
    /// Unused at inference.
    pub initializer_range: f64,
    /// The 2D rope (`rope_theta`, default 10000).
    pub rope_parameters: Option<Value>,
}

impl Default for Qwen2VLVisionConfig {
    fn default() -> Self {
        Self {
            depth: 32,
            embed_dim: 1280,
            hidden_size: 3584,
            hidden_act: Activation::QuickGelu,
            mlp_ratio: 4.0,
            num_heads: 16,
            in_channels: 3,
            patch_size: 14,
            spatial_merge_size: 2,
            temporal_patch_size: 2,
            initializer_range: 0.02,
            rope_parameters: None,
        }
    }
}

/// The config of a Qwen2-VL model (`Qwen2VLConfig`).
///
/// The text model's fields are under `text_config`; a `config.json` without one (the original
/// Qwen2-VL checkpoints) has them at the top level, kept in `extra`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, AutoRegister)]
#[auto(config, model_type = "qwen2_vl")]
#[serde(default)]
pub struct Qwen2VLConfig {
    /// The language model's config (`Qwen2VLTextConfig`), as JSON.
    pub text_config: Option<Value>,
    /// The vision tower's config.
    pub vision_config: Qwen2VLVisionConfig,
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
    /// Other top-level fields (the text fields of a flat config).
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl Default for Qwen2VLConfig {
    fn default() -> Self {
        Self {
            text_config: None,
            vision_config: Qwen2VLVisionConfig::default(),
            image_token_id: 151655,
            video_token_id: 151656,
            vision_start_token_id: 151652,
            vision_end_token_id: 151653,
            tie_word_embeddings: false,
            extra: Map::new(),
        }
    }
}

impl Qwen2VLConfig {
    /// The settings the model is built from.
    pub fn settings(&self) -> Result<VlSettings> {
        let owner = "qwen2_vl";
        let (text, mrope_section) =
            text_settings(self.text_config.as_ref(), &self.extra, self.tie_word_embeddings, owner)?;
        let v = &self.vision_config;
        if !(v.mlp_ratio.is_finite() && v.mlp_ratio > 0.0 && v.mlp_ratio < 1024.0) {
            return Err(Error::config(owner, format!("`mlp_ratio` {} is out of range", v.mlp_ratio)));
        }
        let vision = VisionSettings {
            depth: v.depth,
            embed_dim: v.embed_dim,
            out_dim: v.hidden_size,
            num_heads: v.num_heads,
            in_channels: v.in_channels,
            patch_size: v.patch_size,
            temporal_patch_size: v.temporal_patch_size,
            spatial_merge_size: v.spatial_merge_size,
            hidden_act: v.hidden_act,
            rope_theta: vision_rope_theta(v.rope_parameters.as_ref()),
            kind: VisionKind::Qwen2 { mlp_hidden: (v.embed_dim as f64 * v.mlp_ratio) as usize },
        };
        check_common(&text, &vision, owner)?;
        Ok(VlSettings {
            text,
            mrope_section,
            vision,
            image_token_id: self.image_token_id,
            video_token_id: self.video_token_id,
            owner,
        })
    }
}

/// The checks both models share: the vision output feeds the language model.
pub fn check_common(text: &DecoderSpec, vision: &VisionSettings, owner: &str) -> Result<()> {
    vision.validate(owner)?;
    if vision.out_dim != text.hidden_size {
        return Err(Error::config(
            owner.to_owned(),
            format!(
                "the vision tower gives features of {} dimensions but the language model's `hidden_size` is {}",
                vision.out_dim, text.hidden_size
            ),
        ));
    }
    Ok(())
}

//! Qwen2.5-VL for autocandle, after `transformers`' `modeling_qwen2_5_vl` (5.25):
//! [`Qwen25VLConfig`] (`Qwen2_5_VLConfig`), the base model [`Qwen25VLModel`] (`Qwen2_5_VLModel`) and
//! [`Qwen25VLForConditionalGeneration`] (`image-text-to-text`;
//! [`Qwen25VLForMultimodalLm`] is the same model for `multimodal-lm`).
//!
//! Qwen2.5-VL is Qwen2-VL (`autocandle-qwen2-vl`, whose model body, M-RoPE and generation it
//! reuses) with another vision tower: RMSNorm blocks with a gated MLP (with biases), an
//! RMSNorm in the patch merger, and window attention: the merged patches are reordered into
//! windows of `window_size / spatial_merge_size / patch_size` merged patches a side, and every
//! block except those of `fullatt_block_indexes` attends within its window; the merged
//! features are put back in image order. Images use a temporal interval of 1 in M-RoPE
//! (`tokens_per_second` and `second_per_grid_ts` only matter for videos, which are not
//! supported here).

#![warn(missing_docs)]

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use autocandle_core::{Activation, AutoRegister, Result};
use autocandle_qwen2_vl::{check_common, text_settings, vision_rope_theta, VisionKind, VisionSettings, VlSettings};

/// `Qwen2_5_VLVisionConfig`, with the `transformers` defaults.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Qwen25VLVisionConfig {
    /// Number of blocks.
    pub depth: usize,
    /// Width of the blocks.
    pub hidden_size: usize,
    /// Activation of the gated MLP.
    pub hidden_act: Activation,
    /// Width of the gated MLP.
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
    /// Video position spacing (videos are not supported here).
    pub tokens_per_second: f64,
    /// Window side in pixels.
    pub window_size: usize,
    /// Width of the merged features (the language model's `hidden_size`).
    pub out_hidden_size: usize,
    /// Blocks with full attention; the others attend within windows.
    pub fullatt_block_indexes: Vec<usize>,
    /// Unused at inference.
    pub initializer_range: f64,
    /// The 2D rope (`rope_theta`, default 10000).
    pub rope_parameters: Option<Value>,
}

impl Default for Qwen25VLVisionConfig {
    fn default() -> Self {
        Self {
            depth: 32,
            hidden_size: 3584,
            hidden_act: Activation::Silu,
            intermediate_size: 3420,
            num_heads: 16,
            in_channels: 3,
            patch_size: 14,
            spatial_merge_size: 2,
            temporal_patch_size: 2,
            tokens_per_second: 4.0,
            window_size: 112,
            out_hidden_size: 3584,
            fullatt_block_indexes: vec![7, 15, 23, 31],
            initializer_range: 0.02,
            rope_parameters: None,
        }
    }
}

/// The config of a Qwen2.5-VL model (`Qwen2_5_VLConfig`); the text fields are under
/// `text_config`, or at the top level (kept in `extra`) as the released checkpoints have them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, AutoRegister)]
#[auto(config, model_type = "qwen2_5_vl", class = "Qwen2_5_VLConfig")]
#[serde(default)]
pub struct Qwen25VLConfig {
    /// The language model's config (`Qwen2_5_VLTextConfig`), as JSON.
    pub text_config: Option<Value>,
    /// The vision tower's config.
    pub vision_config: Qwen25VLVisionConfig,
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

impl Default for Qwen25VLConfig {
    fn default() -> Self {
        Self {
            text_config: None,
            vision_config: Qwen25VLVisionConfig::default(),
            image_token_id: 151655,
            video_token_id: 151656,
            vision_start_token_id: 151652,
            vision_end_token_id: 151653,
            tie_word_embeddings: false,
            extra: Map::new(),
        }
    }
}

impl Qwen25VLConfig {
    /// The settings the model is built from.
    pub fn settings(&self) -> Result<VlSettings> {
        let owner = "qwen2_5_vl";
        let (text, mrope_section) =
            text_settings(self.text_config.as_ref(), &self.extra, self.tie_word_embeddings, owner)?;
        let v = &self.vision_config;
        let vision = VisionSettings {
            depth: v.depth,
            embed_dim: v.hidden_size,
            out_dim: v.out_hidden_size,
            num_heads: v.num_heads,
            in_channels: v.in_channels,
            patch_size: v.patch_size,
            temporal_patch_size: v.temporal_patch_size,
            spatial_merge_size: v.spatial_merge_size,
            hidden_act: v.hidden_act,
            rope_theta: vision_rope_theta(v.rope_parameters.as_ref()),
            kind: VisionKind::Qwen25 {
                intermediate_size: v.intermediate_size,
                window_size: v.window_size,
                fullatt_block_indexes: v.fullatt_block_indexes.clone(),
            },
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

autocandle_qwen2_vl::vl_heads! {
    config: Qwen25VLConfig;
    base: Qwen25VLModel = "Qwen2_5_VLModel";
    generation: Qwen25VLForConditionalGeneration = "Qwen2_5_VLForConditionalGeneration";
    multimodal: Qwen25VLForMultimodalLm;
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The flat `config.json` of the released Qwen2.5-VL-3B-Instruct checkpoint.
    #[test]
    fn reads_the_released_flat_config() {
        let config: Qwen25VLConfig = serde_json::from_str(
            r#"{
            "architectures": ["Qwen2_5_VLForConditionalGeneration"], "attention_dropout": 0.0,
            "bos_token_id": 151643, "eos_token_id": 151645, "vision_start_token_id": 151652,
            "vision_end_token_id": 151653, "vision_token_id": 151654, "image_token_id": 151655,
            "video_token_id": 151656, "hidden_act": "silu", "hidden_size": 2048, "initializer_range": 0.02,
            "intermediate_size": 11008, "max_position_embeddings": 128000, "max_window_layers": 70,
            "model_type": "qwen2_5_vl", "num_attention_heads": 16, "num_hidden_layers": 36,
            "num_key_value_heads": 2, "rms_norm_eps": 1e-06, "rope_theta": 1000000.0, "sliding_window": 32768,
            "tie_word_embeddings": true, "torch_dtype": "bfloat16", "use_cache": true, "use_sliding_window": false,
            "vision_config": {"depth": 32, "hidden_act": "silu", "hidden_size": 1280, "intermediate_size": 3420,
                              "num_heads": 16, "in_chans": 3, "out_hidden_size": 2048, "patch_size": 14,
                              "spatial_merge_size": 2, "spatial_patch_size": 14, "window_size": 112,
                              "fullatt_block_indexes": [7, 15, 23, 31], "tokens_per_second": 2,
                              "temporal_patch_size": 2},
            "rope_scaling": {"type": "mrope", "mrope_section": [16, 24, 24]},
            "vocab_size": 151936
        }"#,
        )
        .unwrap();
        let s = config.settings().unwrap();
        assert_eq!((s.text.hidden_size, s.text.head_dim, s.text.vocab_size), (2048, 128, 151936));
        assert!(s.text.tie_word_embeddings);
        assert_eq!(s.mrope_section, [16, 24, 24]);
        assert_eq!((s.vision.embed_dim, s.vision.out_dim, s.vision.patch_values()), (1280, 2048, 3 * 2 * 14 * 14));
        assert_eq!(s.image_token_id, 151655);
        let mut bad = config.clone();
        bad.vision_config.out_hidden_size = 7;
        assert!(bad.settings().unwrap_err().to_string().contains("hidden_size"));
    }
}

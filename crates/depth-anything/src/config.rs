//! `DepthAnythingConfig`, field for field as `transformers`'
//! `configuration_depth_anything.DepthAnythingConfig` (5.25).

use autocandle_core::{AutoRegister, Error, Result};
use autocandle_dinov2::Dinov2Config;
use serde::{Deserialize, Serialize};

/// What the depth head predicts (`depth_estimation_type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DepthEstimationType {
    /// Relative (inverse) depth: the head ends in ReLU.
    Relative,
    /// Metric depth: the head ends in a sigmoid scaled by `max_depth`.
    Metric,
}

/// The config of a Depth Anything model (`DepthAnythingConfig`), with the `transformers`
/// defaults (those of LiheYoung/depth-anything-small-hf). A field `config.json` leaves out
/// takes its default; fields it holds that `DepthAnythingConfig` does not declare are ignored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, AutoRegister)]
#[auto(config, model_type = "depth_anything")]
#[serde(default)]
pub struct DepthAnythingConfig {
    /// The backbone's config (a DINOv2 one); `None`: `transformers`' default (a ViT-S/14
    /// DINOv2 at 518 px giving stages 9 to 12).
    pub backbone_config: Option<serde_json::Value>,
    /// Patch size of the backbone: the input's patch grid is `height / patch_size` x
    /// `width / patch_size`.
    pub patch_size: usize,
    /// Standard deviation of the initialisation in `transformers`; unused at inference.
    pub initializer_range: f64,
    /// Width of the token sequences the neck reads (the backbone's hidden size).
    pub reassemble_hidden_size: usize,
    /// Resize factor of each reassembled feature map.
    pub reassemble_factors: Vec<f64>,
    /// Channels of each reassembled feature map.
    pub neck_hidden_sizes: Vec<usize>,
    /// Channels of the fusion stage.
    pub fusion_hidden_size: usize,
    /// Which fused map the head reads (Python indexing: -1 is the last).
    pub head_in_index: i64,
    /// Channels of the head's second convolution.
    pub head_hidden_size: usize,
    /// Relative or metric depth.
    pub depth_estimation_type: DepthEstimationType,
    /// The scale of metric depth (the relative head multiplies by it too, as `transformers`).
    pub max_depth: Option<f64>,
}

impl Default for DepthAnythingConfig {
    /// `DepthAnythingConfig()` in `transformers`.
    fn default() -> Self {
        Self {
            backbone_config: None,
            patch_size: 14,
            initializer_range: 0.02,
            reassemble_hidden_size: 384,
            reassemble_factors: vec![4.0, 2.0, 1.0, 0.5],
            neck_hidden_sizes: vec![48, 96, 192, 384],
            fusion_hidden_size: 64,
            head_in_index: -1,
            head_hidden_size: 32,
            depth_estimation_type: DepthEstimationType::Relative,
            max_depth: Some(1.0),
        }
    }
}

impl DepthAnythingConfig {
    /// The backbone's [`Dinov2Config`]: `backbone_config`, or `transformers`' default sub-config
    /// (DINOv2 at 518 px, hidden 384, 6 heads, stages 9 to 12, no reshaping).
    pub fn backbone(&self) -> Result<Dinov2Config> {
        let invalid = |message: String| Error::config("depth_anything", message);
        let value = match &self.backbone_config {
            Some(value) if !value.is_null() => value.clone(),
            _ => serde_json::json!({
                "model_type": "dinov2", "image_size": 518, "hidden_size": 384, "num_attention_heads": 6,
                "out_indices": [9, 10, 11, 12], "reshape_hidden_states": false,
            }),
        };
        let model_type = value.get("model_type").and_then(|v| v.as_str()).unwrap_or("dinov2");
        if model_type != "dinov2" {
            return Err(Error::Unsupported(format!(
                "Depth Anything with a `{model_type}` backbone is not supported by autocandle: its backbone must be \
                 DINOv2 (`backbone_config.model_type` \"dinov2\")"
            )));
        }
        serde_json::from_value(value).map_err(|e| invalid(format!("`backbone_config` is not a DINOv2 config: {e}")))
    }

    /// Check what the neck and head need of the config.
    pub fn validate(&self) -> Result<()> {
        let invalid = |message: String| Err(Error::config("depth_anything", message));
        for (name, value) in [
            ("patch_size", self.patch_size),
            ("reassemble_hidden_size", self.reassemble_hidden_size),
            ("head_hidden_size", self.head_hidden_size),
        ] {
            if value == 0 {
                return invalid(format!("`{name}` must be at least 1, got 0"));
            }
        }
        if self.fusion_hidden_size < 2 {
            return invalid(format!("`fusion_hidden_size` must be at least 2, got {}", self.fusion_hidden_size));
        }
        let stages = self.neck_hidden_sizes.len() as i64;
        if self.head_in_index >= stages || self.head_in_index < -stages {
            return invalid(format!(
                "`head_in_index` ({}) is out of range for {stages} fused maps",
                self.head_in_index
            ));
        }
        Ok(())
    }
}

//! `DPTConfig`, field for field as `transformers`' `configuration_dpt.DPTConfig` (5.25).

use autocandle_core::{Activation, AutoRegister, Error, LabelConfig, Result};
use autocandle_dinov2::{Dinov2Config, Size2};
use serde::{Deserialize, Deserializer, Serialize};

/// `null` (which `transformers` writes for the ViT fields of a DPT with a `backbone_config`)
/// reads as 0 / false; [`DPTConfig::validate`] then names the real problem.
fn null_as_default<'de, D: Deserializer<'de>, T: Deserialize<'de> + Default>(d: D) -> std::result::Result<T, D::Error> {
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// `image_size`, `null` reading as 0.
fn null_size<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<Size2, D::Error> {
    Ok(Option::<Size2>::deserialize(d)?.unwrap_or(Size2::Square(0)))
}

/// How the reassemble stage uses the `[CLS]` token (`readout_type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Readout {
    /// Dropped.
    Ignore,
    /// Added to every patch token.
    Add,
    /// Concatenated to every patch token and projected back (`readout_projects.N`: linear and
    /// `hidden_act`).
    Project,
}

/// The config of a DPT model (`DPTConfig`), with the `transformers` defaults (those of
/// Intel/dpt-large). A field `config.json` leaves out takes its default; fields it holds that
/// `DPTConfig` does not declare are ignored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, AutoRegister)]
#[auto(config, model_type = "dpt")]
#[serde(default)]
pub struct DPTConfig {
    /// Width of the ViT's hidden states.
    pub hidden_size: usize,
    /// Number of ViT blocks.
    #[serde(deserialize_with = "null_as_default")]
    pub num_hidden_layers: usize,
    /// Attention heads in each block.
    #[serde(deserialize_with = "null_as_default")]
    pub num_attention_heads: usize,
    /// Width of the feed-forward layer of each block.
    #[serde(deserialize_with = "null_as_default")]
    pub intermediate_size: usize,
    /// Activation of the feed-forward layers and of the readout projection.
    pub hidden_act: Activation,
    /// Training only: dropout is a no-op here.
    #[serde(deserialize_with = "null_as_default")]
    pub hidden_dropout_prob: f64,
    /// Training only: dropout is a no-op here.
    #[serde(deserialize_with = "null_as_default")]
    pub attention_probs_dropout_prob: f64,
    /// Standard deviation of the initialisation in `transformers`; unused at inference.
    pub initializer_range: f64,
    /// Epsilon of the ViT's LayerNorms.
    #[serde(deserialize_with = "null_as_default")]
    pub layer_norm_eps: f64,
    /// The image size the position embeddings were trained at (other sizes interpolate them).
    #[serde(deserialize_with = "null_size")]
    pub image_size: Size2,
    /// Side of the square patches.
    #[serde(deserialize_with = "null_as_default")]
    pub patch_size: usize,
    /// Channels of the input images (3 for RGB).
    #[serde(deserialize_with = "null_as_default")]
    pub num_channels: usize,
    /// DPT-Hybrid (a BiT backbone before the ViT): not supported.
    pub is_hybrid: bool,
    /// Bias on the query, key and value projections.
    #[serde(deserialize_with = "null_as_default")]
    pub qkv_bias: bool,
    /// The ViT blocks whose outputs feed the neck (0-based).
    pub backbone_out_indices: Option<Vec<usize>>,
    /// How the `[CLS]` token enters the reassembled feature maps.
    pub readout_type: Readout,
    /// Resize factor of each reassembled feature map (4, 2, 1, 0.5: transposed convolution,
    /// identity or strided convolution).
    pub reassemble_factors: Vec<f64>,
    /// Channels of each reassembled feature map.
    pub neck_hidden_sizes: Vec<usize>,
    /// Channels of the fusion stage.
    pub fusion_hidden_size: usize,
    /// Which fused feature map the heads read (Python indexing: -1 is the last).
    pub head_in_index: i64,
    /// BatchNorm in the fusion stage's residual units.
    pub use_batch_norm_in_fusion_residual: Option<bool>,
    /// Bias of the residual units' convolutions; `None`: without BatchNorm only.
    pub use_bias_in_fusion_residual: Option<bool>,
    /// A 3x3 convolution and ReLU before the depth head.
    pub add_projection: bool,
    /// Whether the segmentation model has its auxiliary head (training only; loaded, unused).
    pub use_auxiliary_head: Option<bool>,
    /// Training only.
    pub auxiliary_loss_weight: f64,
    /// Training only (the label ignored by the loss).
    pub semantic_loss_ignore_index: i64,
    /// Training only: dropout is a no-op here.
    pub semantic_classifier_dropout: f64,
    /// DPT-Hybrid only.
    pub backbone_featmap_shape: Option<Vec<usize>>,
    /// DPT-Hybrid only (`transformers` empties it otherwise).
    pub neck_ignore_stages: Vec<usize>,
    /// A backbone in place of the built-in ViT (`load_backbone`; DPTForDepthEstimation only):
    /// DINOv2 is supported.
    pub backbone_config: Option<serde_json::Value>,
    /// A named (timm) backbone: not supported.
    pub backbone: Option<String>,
    /// Width of the pooler output; `None` is `hidden_size`.
    pub pooler_output_size: Option<usize>,
    /// Activation of the pooler.
    pub pooler_act: Activation,
    /// `id2label`, `label2id`, `num_labels`, `problem_type`.
    #[serde(flatten)]
    pub labels: LabelConfig,
}

impl Default for DPTConfig {
    /// `DPTConfig()` in `transformers`: the DPT-Large shape.
    fn default() -> Self {
        Self {
            hidden_size: 768,
            num_hidden_layers: 12,
            num_attention_heads: 12,
            intermediate_size: 3072,
            hidden_act: Activation::Gelu,
            hidden_dropout_prob: 0.0,
            attention_probs_dropout_prob: 0.0,
            initializer_range: 0.02,
            layer_norm_eps: 1e-12,
            image_size: Size2::Square(384),
            patch_size: 16,
            num_channels: 3,
            is_hybrid: false,
            qkv_bias: true,
            backbone_out_indices: Some(vec![2, 5, 8, 11]),
            readout_type: Readout::Project,
            reassemble_factors: vec![4.0, 2.0, 1.0, 0.5],
            neck_hidden_sizes: vec![96, 192, 384, 768],
            fusion_hidden_size: 256,
            head_in_index: -1,
            use_batch_norm_in_fusion_residual: Some(false),
            use_bias_in_fusion_residual: None,
            add_projection: false,
            use_auxiliary_head: Some(true),
            auxiliary_loss_weight: 0.4,
            semantic_loss_ignore_index: 255,
            semantic_classifier_dropout: 0.1,
            backbone_featmap_shape: Some(vec![1, 1024, 24, 24]),
            neck_ignore_stages: vec![0, 1],
            backbone_config: None,
            backbone: None,
            pooler_output_size: None,
            pooler_act: Activation::Tanh,
            labels: LabelConfig::default(),
        }
    }
}

impl DPTConfig {
    /// Size of one attention head.
    pub fn head_dim(&self) -> usize {
        self.hidden_size / self.num_attention_heads
    }

    /// `pooler_output_size`, or `hidden_size`.
    pub fn pooler_output_size(&self) -> usize {
        self.pooler_output_size.filter(|&s| s > 0).unwrap_or(self.hidden_size)
    }

    /// Check what the ViT needs of the config, and that the model is not one autocandle cannot
    /// build (DPT-Hybrid, another backbone).
    pub fn validate(&self) -> Result<()> {
        let invalid = |message: String| Err(Error::config("dpt", message));
        if self.is_hybrid {
            return Err(Error::Unsupported(
                "DPT-Hybrid (`is_hybrid`: a BiT backbone before the ViT) is not supported by autocandle; use a DPT \
                 checkpoint without `is_hybrid` (e.g. Intel/dpt-large)"
                    .into(),
            ));
        }
        if self.backbone.is_some() {
            return Err(Error::Unsupported(
                "DPT with a named `backbone` (a timm or Hub backbone) is not supported by autocandle; use a \
                 checkpoint whose config has a `backbone_config` (DINOv2) or none"
                    .into(),
            ));
        }
        if self.has_backbone() {
            return Err(Error::Unsupported(
                "this DPT has a `backbone_config` in place of its own ViT: only DPTForDepthEstimation (the \
                 `depth-estimation` task) runs it, as in transformers"
                    .into(),
            ));
        }
        let (h, w) = self.image_size.hw();
        for (name, value) in [
            ("hidden_size", self.hidden_size),
            ("num_attention_heads", self.num_attention_heads),
            ("intermediate_size", self.intermediate_size),
            ("num_channels", self.num_channels),
            ("patch_size", self.patch_size),
            ("image_size", h.min(w)),
        ] {
            if value == 0 {
                return invalid(format!("`{name}` must be at least 1, got 0"));
            }
        }
        if !self.hidden_size.is_multiple_of(self.num_attention_heads) {
            return invalid(format!(
                "`hidden_size` ({}) must be a multiple of `num_attention_heads` ({})",
                self.hidden_size, self.num_attention_heads
            ));
        }
        if self.patch_size > h || self.patch_size > w {
            return invalid(format!("`patch_size` ({}) is larger than `image_size` ({h}x{w})", self.patch_size));
        }
        Ok(())
    }

    /// Whether the model has a `backbone_config` (and is not DPT-Hybrid): DPTForDepthEstimation
    /// then runs that backbone in place of its ViT, as `transformers`' `load_backbone`.
    pub fn has_backbone(&self) -> bool {
        !self.is_hybrid && self.backbone_config.as_ref().is_some_and(|c| !c.is_null())
    }

    /// The DINOv2 config of `backbone_config` (the only backbone autocandle runs for DPT).
    pub fn dinov2_backbone(&self) -> Result<Dinov2Config> {
        let value = self.backbone_config.clone().unwrap_or_default();
        let model_type = value.get("model_type").and_then(|v| v.as_str()).unwrap_or("");
        if model_type != "dinov2" {
            return Err(Error::Unsupported(format!(
                "DPT with a `{model_type}` backbone (`backbone_config`) is not supported by autocandle: only DINOv2 \
                 backbones are"
            )));
        }
        if self.backbone.is_some() {
            return Err(Error::Unsupported(
                "DPT with a named `backbone` (a timm or Hub backbone) is not supported by autocandle".into(),
            ));
        }
        serde_json::from_value(value)
            .map_err(|e| Error::config("dpt", format!("`backbone_config` is not a DINOv2 config: {e}")))
    }

    /// Check the neck's settings: one reassemble factor and one output layer per neck stage.
    /// Returns the layers the neck reads, in model order (`transformers` keeps the layers whose
    /// index is in `backbone_out_indices`, whatever the list's order).
    pub fn validate_neck(&self) -> Result<Vec<usize>> {
        let invalid = |message: String| Err(Error::config("dpt", message));
        let stages = self.neck_hidden_sizes.len();
        let mut indices = self.backbone_out_indices.clone().unwrap_or_default();
        indices.sort_unstable();
        indices.dedup();
        if stages == 0 || indices.len() != stages || self.reassemble_factors.len() != stages {
            return invalid(format!(
                "`backbone_out_indices` ({} distinct layers) and `reassemble_factors` ({}) must have one entry \
                 per `neck_hidden_sizes` entry ({stages}, at least 1)",
                indices.len(),
                self.reassemble_factors.len()
            ));
        }
        if let Some(&bad) = indices.iter().find(|&&i| i >= self.num_hidden_layers) {
            return invalid(format!(
                "`backbone_out_indices` holds {bad}, but the ViT has {} layers (`num_hidden_layers`)",
                self.num_hidden_layers
            ));
        }
        if self.fusion_hidden_size < 2 {
            return invalid(format!("`fusion_hidden_size` must be at least 2, got {}", self.fusion_hidden_size));
        }
        Ok(indices)
    }
}

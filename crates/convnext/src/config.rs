//! `ConvNextConfig`, field for field as `transformers`' `configuration_convnext.ConvNextConfig`
//! (5.25), with the backbone's `out_features` / `out_indices`.

use autocandle_core::{Activation, AutoRegister, Error, LabelConfig, Result};
use serde::{Deserialize, Serialize};

/// An `image_size` or `patch_size` (shared by the vision crates).
pub use autocandle_core::Size2;

/// The config of a ConvNeXT model (`ConvNextConfig`), with the `transformers` defaults (those
/// of facebook/convnext-tiny-224). A field `config.json` leaves out takes its default.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, AutoRegister)]
#[auto(config, model_type = "convnext")]
#[serde(default)]
pub struct ConvNextConfig {
    /// Channels of the input images (3 for RGB).
    pub num_channels: usize,
    /// Side of the patchify stem's kernel and stride.
    pub patch_size: Size2,
    /// Stages used (the first `num_stages` of `hidden_sizes` and `depths`).
    pub num_stages: usize,
    /// Channels of each stage.
    pub hidden_sizes: Vec<usize>,
    /// Layers in each stage.
    pub depths: Vec<usize>,
    /// Activation between the two pointwise layers (`gelu`).
    pub hidden_act: Activation,
    /// Standard deviation of the initialisation in `transformers`; unused at inference.
    pub initializer_range: f64,
    /// Epsilon of the final LayerNorm on the pooled features (the others use 1e-6).
    pub layer_norm_eps: f64,
    /// Initial value of the layer scale; 0 or less means no layer scale (no weight).
    pub layer_scale_init_value: f64,
    /// Training only: stochastic depth is a no-op here.
    pub drop_path_rate: f64,
    /// The training image size; any size at least `patch_size * 2^(num_stages - 1)` works.
    pub image_size: Size2,
    /// Backbone outputs by stage name (`stem`, `stage1`, ...).
    pub out_features: Option<Vec<String>>,
    /// Backbone outputs by stage index (0 is the stem, negative counts from the end).
    pub out_indices: Option<Vec<i64>>,
    /// `id2label`, `label2id`, `num_labels`, `problem_type`.
    #[serde(flatten)]
    pub labels: LabelConfig,
}

impl Default for ConvNextConfig {
    /// `ConvNextConfig()` in `transformers`: the ConvNeXT-tiny shape.
    fn default() -> Self {
        Self {
            num_channels: 3,
            patch_size: Size2::Square(4),
            num_stages: 4,
            hidden_sizes: vec![96, 192, 384, 768],
            depths: vec![3, 3, 9, 3],
            hidden_act: Activation::Gelu,
            initializer_range: 0.02,
            layer_norm_eps: 1e-12,
            layer_scale_init_value: 1e-6,
            drop_path_rate: 0.0,
            image_size: Size2::Square(224),
            out_features: None,
            out_indices: None,
            labels: LabelConfig::default(),
        }
    }
}

impl ConvNextConfig {
    /// `stem`, `stage1`, ... (one per entry of `depths`, as transformers' `stage_names`).
    pub fn stage_names(&self) -> Vec<String> {
        std::iter::once("stem".to_string()).chain((1..=self.depths.len()).map(|i| format!("stage{i}"))).collect()
    }

    /// Width of the final LayerNorm and the classifier: the last of `hidden_sizes`, as in
    /// transformers (which needs it to be the last stage's, `hidden_sizes[num_stages - 1]`).
    pub fn last_hidden_size(&self) -> usize {
        self.hidden_sizes.last().copied().unwrap_or(0)
    }

    /// Check what the model needs of the config; `model_type` names the model in errors.
    pub fn validate(&self, model_type: &str) -> Result<()> {
        let invalid = |message: String| Err(Error::config(model_type, message));
        let (ph, pw) = self.patch_size.hw();
        for (name, value) in
            [("num_channels", self.num_channels), ("num_stages", self.num_stages), ("patch_size", ph.min(pw))]
        {
            if value == 0 {
                return invalid(format!("`{name}` must be at least 1, got 0"));
            }
        }
        for (name, len) in [("hidden_sizes", self.hidden_sizes.len()), ("depths", self.depths.len())] {
            if len < self.num_stages {
                return invalid(format!(
                    "`{name}` has {len} entries but `num_stages` is {}: give one per stage",
                    self.num_stages
                ));
            }
        }
        if let Some(i) = self.hidden_sizes.iter().take(self.num_stages).position(|&h| h == 0) {
            return invalid(format!("`hidden_sizes[{i}]` is 0: every stage needs channels"));
        }
        if self.hidden_sizes.len() != self.num_stages {
            return invalid(format!(
                "`hidden_sizes` has {} entries but `num_stages` is {}: the final LayerNorm takes the last of \
                 `hidden_sizes`, so give exactly one per stage",
                self.hidden_sizes.len(),
                self.num_stages
            ));
        }
        if self.num_stages > 16 {
            return invalid(format!("`num_stages` is {}: at most 16 stages are supported", self.num_stages));
        }
        Ok(())
    }
}

/// `out_features` / `out_indices` aligned with `stage_names` (shared with the other backbones).
pub use autocandle_core::backbone::out_stage_indices;

//! `YolosConfig`, field for field as `transformers`' `configuration_yolos.YolosConfig` (5.25).

use autocandle_core::{Activation, AutoRegister, Error, LabelConfig, Result};
use serde::{Deserialize, Serialize};

/// An `image_size` or `patch_size` (shared by the vision crates).
pub use autocandle_core::Size2;

/// The config of a YOLOS model (`YolosConfig`), with the `transformers` defaults (those of
/// hustvl/yolos-base). A field `config.json` leaves out takes its default; the matcher and
/// loss settings (`class_cost`, `bbox_loss_coefficient`, ...) are training-only and ignored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, AutoRegister)]
#[auto(config, model_type = "yolos")]
#[serde(default)]
pub struct YolosConfig {
    /// Width of the hidden states, `[batch, seq, hidden_size]`.
    pub hidden_size: usize,
    /// Number of transformer blocks.
    pub num_hidden_layers: usize,
    /// Number of attention heads in each block.
    pub num_attention_heads: usize,
    /// Width of the feed-forward (MLP) layer inside each block.
    pub intermediate_size: usize,
    /// Activation of the feed-forward layer (`gelu`, `relu`, ...).
    pub hidden_act: Activation,
    /// Training only: dropout is a no-op here.
    pub hidden_dropout_prob: f64,
    /// Training only: dropout is a no-op here.
    pub attention_probs_dropout_prob: f64,
    /// Standard deviation of the initialisation in `transformers`; unused at inference.
    pub initializer_range: f64,
    /// Epsilon added to the variance in every LayerNorm.
    pub layer_norm_eps: f64,
    /// The image size the position embeddings were learned at, `[height, width]`; inputs of
    /// any other size get them interpolated (bicubic).
    pub image_size: Size2,
    /// Side, in pixels, of the square patches the image is cut into.
    pub patch_size: Size2,
    /// Channels of the input images (3 for RGB).
    pub num_channels: usize,
    /// Bias on the query, key and value projections.
    pub qkv_bias: bool,
    /// Number of detection tokens appended after the patches (one prediction each).
    pub num_detection_tokens: usize,
    /// Add learned (interpolated) position embeddings after every layer but the last.
    pub use_mid_position_embeddings: bool,
    /// Training only (auxiliary decoding losses).
    pub auxiliary_loss: bool,
    /// `id2label`, `label2id`, `num_labels`, `problem_type`.
    #[serde(flatten)]
    pub labels: LabelConfig,
}

impl Default for YolosConfig {
    /// `YolosConfig()` in `transformers`: the YOLOS-Base shape.
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
            image_size: Size2::HeightWidth([512, 864]),
            patch_size: Size2::Square(16),
            num_channels: 3,
            qkv_bias: true,
            num_detection_tokens: 100,
            use_mid_position_embeddings: true,
            auxiliary_loss: false,
            labels: LabelConfig::default(),
        }
    }
}

impl YolosConfig {
    /// Size of one attention head.
    pub fn head_dim(&self) -> usize {
        self.hidden_size / self.num_attention_heads
    }

    /// The side of the square patches (checked by [`YolosConfig::validate`]).
    pub fn patch(&self) -> usize {
        self.patch_size.hw().0
    }

    /// Patches along the height and the width of `image_size` (`image_size // patch_size`).
    pub fn patch_grid(&self) -> (usize, usize) {
        let ((h, w), p) = (self.image_size.hw(), self.patch().max(1));
        (h / p, w / p)
    }

    /// Check what the model needs of the config.
    pub fn validate(&self) -> Result<()> {
        let invalid = |message: String| Err(Error::config("yolos", message));
        let ((h, w), (ph, pw)) = (self.image_size.hw(), self.patch_size.hw());
        for (name, value) in [
            ("hidden_size", self.hidden_size),
            ("num_hidden_layers", self.num_hidden_layers),
            ("num_attention_heads", self.num_attention_heads),
            ("intermediate_size", self.intermediate_size),
            ("num_channels", self.num_channels),
            ("patch_size", ph.min(pw)),
            ("image_size", h.min(w)),
            ("num_detection_tokens", self.num_detection_tokens),
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
        if ph != pw {
            return invalid(format!(
                "`patch_size` must be one number (square patches), as transformers' YOLOS interpolation needs; got \
                 {ph}x{pw}"
            ));
        }
        if ph > h || pw > w {
            return invalid(format!("`patch_size` ({ph}) is larger than `image_size` ({h}x{w})"));
        }
        let (gh, gw) = self.patch_grid();
        if self.use_mid_position_embeddings && (h * w) / (ph * ph) != gh * gw {
            return invalid(format!(
                "with `use_mid_position_embeddings`, `image_size` ({h}x{w}) must be a multiple of `patch_size` \
                 ({ph}): transformers sizes the mid position embeddings by (height * width) // patch_size²"
            ));
        }
        Ok(())
    }
}

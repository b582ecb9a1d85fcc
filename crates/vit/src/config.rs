//! `ViTConfig`, field for field as `transformers`' `configuration_vit.ViTConfig` (5.23).

use autocandle_core::{Activation, AutoRegister, Error, LabelConfig, Result};
use serde::{Deserialize, Serialize};

/// An `image_size` or `patch_size` (shared by the vision crates).
pub use autocandle_core::Size2;

/// The config of a ViT model (`ViTConfig`), with the `transformers` defaults (those of
/// google/vit-base-patch16-224). A field `config.json` leaves out takes its default.
///
/// Fields `config.json` may hold that `ViTConfig` does not declare are ignored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, AutoRegister)]
#[auto(config, model_type = "vit")]
#[serde(default)]
pub struct ViTConfig {
    /// Width of the hidden states, `[batch, seq, hidden_size]`.
    pub hidden_size: usize,
    /// Number of transformer blocks.
    pub num_hidden_layers: usize,
    /// Number of attention heads in each block (query heads where keys and values have fewer).
    pub num_attention_heads: usize,
    /// Width of the feed-forward (MLP) layer inside each block.
    pub intermediate_size: usize,
    /// Activation of the feed-forward layer (`hidden_act`: `silu`, `gelu`, `gelu_pytorch_tanh`, ...).
    pub hidden_act: Activation,
    /// Training only: dropout is a no-op here.
    pub hidden_dropout_prob: f64,
    /// Training only: dropout is a no-op here.
    pub attention_probs_dropout_prob: f64,
    /// Standard deviation of the initialisation in `transformers`; unused at inference.
    pub initializer_range: f64,
    /// Epsilon added to the variance in every LayerNorm.
    pub layer_norm_eps: f64,
    /// The size of the images the model takes (its position embeddings are fixed to it).
    pub image_size: Size2,
    /// Side, in pixels, of the square patches the image is cut into.
    pub patch_size: Size2,
    /// Channels of the input images (3 for RGB).
    pub num_channels: usize,
    /// Bias on the query, key and value projections.
    pub qkv_bias: bool,
    /// The upsampling factor of the masked image modeling decoder (`PixelShuffle`).
    pub encoder_stride: usize,
    /// Width of the pooler output; `None` is `hidden_size`.
    pub pooler_output_size: Option<usize>,
    /// Activation of the pooler (`tanh` in `transformers`).
    pub pooler_act: Activation,
    /// `id2label`, `label2id`, `num_labels`, `problem_type`.
    #[serde(flatten)]
    pub labels: LabelConfig,
}

impl Default for ViTConfig {
    /// `ViTConfig()` in `transformers`: the ViT-Base/16 at 224 shape.
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
            image_size: Size2::Square(224),
            patch_size: Size2::Square(16),
            num_channels: 3,
            qkv_bias: true,
            encoder_stride: 16,
            pooler_output_size: None,
            pooler_act: Activation::Tanh,
            labels: LabelConfig::default(),
        }
    }
}

impl ViTConfig {
    /// Size of one attention head.
    pub fn head_dim(&self) -> usize {
        self.hidden_size / self.num_attention_heads
    }

    /// Patches along the height and the width (`image_size // patch_size` each).
    pub fn patch_grid(&self) -> (usize, usize) {
        let ((h, w), (ph, pw)) = (self.image_size.hw(), self.patch_size.hw());
        (h / ph, w / pw)
    }

    /// `pooler_output_size`, or `hidden_size`.
    pub fn pooler_output_size(&self) -> usize {
        self.pooler_output_size.filter(|&s| s > 0).unwrap_or(self.hidden_size)
    }

    /// Check what the model needs of the config.
    pub fn validate(&self) -> Result<()> {
        let invalid = |message: String| Err(Error::config("vit", message));
        let ((h, w), (ph, pw)) = (self.image_size.hw(), self.patch_size.hw());
        for (name, value) in [
            ("hidden_size", self.hidden_size),
            ("num_attention_heads", self.num_attention_heads),
            ("intermediate_size", self.intermediate_size),
            ("num_channels", self.num_channels),
            ("patch_size", ph.min(pw)),
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
        if ph > h || pw > w {
            return invalid(format!("`patch_size` ({ph}x{pw}) is larger than `image_size` ({h}x{w})"));
        }
        Ok(())
    }
}

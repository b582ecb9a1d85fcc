//! `BeitConfig`, field for field as `transformers`' `configuration_beit.BeitConfig` (5.25).

use autocandle_core::{Activation, AutoRegister, Error, LabelConfig, Result};
use autocandle_vit::Size2;
use serde::{Deserialize, Serialize};

/// The config of a BEiT model (`BeitConfig`), with the `transformers` defaults (those of
/// microsoft/beit-base-patch16-224-pt22k). A field `config.json` leaves out takes its default.
///
/// Fields `config.json` may hold that `BeitConfig` does not declare are ignored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, AutoRegister)]
#[auto(config, model_type = "beit")]
#[serde(default)]
pub struct BeitConfig {
    /// Size of the visual-token vocabulary of masked image modeling (`BeitForMaskedImageModeling`).
    pub vocab_size: usize,
    /// Width of the hidden states, `[batch, seq, hidden_size]`.
    pub hidden_size: usize,
    /// Number of transformer blocks.
    pub num_hidden_layers: usize,
    /// Number of attention heads in each block.
    pub num_attention_heads: usize,
    /// Width of the feed-forward (MLP) layer inside each block.
    pub intermediate_size: usize,
    /// Activation of the feed-forward layer.
    pub hidden_act: Activation,
    /// Training only: dropout is a no-op here.
    pub hidden_dropout_prob: f64,
    /// Training only: dropout is a no-op here.
    pub attention_probs_dropout_prob: f64,
    /// Standard deviation of the initialisation in `transformers`; unused at inference.
    pub initializer_range: f64,
    /// Epsilon added to the variance in every LayerNorm.
    pub layer_norm_eps: f64,
    /// The size of the images the model was trained on: it fixes the shape of the position
    /// embeddings and of the relative position bias tables (both are resized for other sizes).
    pub image_size: Size2,
    /// Side, in pixels, of the square patches the image is cut into.
    pub patch_size: usize,
    /// Channels of the input images (3 for RGB).
    pub num_channels: usize,
    /// Whether the embeddings hold a mask token (for `bool_masked_pos`).
    pub use_mask_token: bool,
    /// Learned absolute position embeddings added to the patch embeddings.
    pub use_absolute_position_embeddings: bool,
    /// A relative position bias table in every layer.
    pub use_relative_position_bias: bool,
    /// One relative position bias table shared by every layer.
    pub use_shared_relative_position_bias: bool,
    /// Layer scale: the initial value of `lambda_1` / `lambda_2`; 0 disables them (no weights).
    pub layer_scale_init_value: f64,
    /// Training only (stochastic depth): a no-op here.
    pub drop_path_rate: f64,
    /// Pool by the mean of the patch states and a LayerNorm (else the final LayerNorm and the
    /// `[CLS]` state).
    pub use_mean_pooling: bool,
    /// Scales of the pyramid pooling module of the semantic segmentation head.
    pub pool_scales: Vec<usize>,
    /// Whether the semantic segmentation model has the auxiliary FCN head (training only, but
    /// its weights are in the checkpoint).
    pub use_auxiliary_head: bool,
    /// Training only.
    pub auxiliary_loss_weight: f64,
    /// Channels of the auxiliary head.
    pub auxiliary_channels: usize,
    /// Convolutions of the auxiliary head.
    pub auxiliary_num_convs: usize,
    /// Whether the auxiliary head concatenates its input to its convolutions' output.
    pub auxiliary_concat_input: bool,
    /// Training only.
    pub semantic_loss_ignore_index: i64,
    /// The stages (`0` the embeddings, `i` the output of layer `i`) the semantic segmentation
    /// head reads: four of them. `None` is the last stage.
    pub out_indices: Option<Vec<i64>>,
    /// The same stages by name (`stem`, `stage1`, ...), when `out_indices` is not given.
    pub out_features: Option<Vec<String>>,
    /// Backbone only (`BeitBackbone`): a feature pyramid after the stages.
    pub add_fpn: bool,
    /// Backbone only: feature maps as `[batch, hidden, h, w]`.
    pub reshape_hidden_states: bool,
    /// `id2label`, `label2id`, `num_labels`, `problem_type`.
    #[serde(flatten)]
    pub labels: LabelConfig,
}

impl Default for BeitConfig {
    /// `BeitConfig()` in `transformers`.
    fn default() -> Self {
        Self {
            vocab_size: 8192,
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
            patch_size: 16,
            num_channels: 3,
            use_mask_token: false,
            use_absolute_position_embeddings: false,
            use_relative_position_bias: false,
            use_shared_relative_position_bias: false,
            layer_scale_init_value: 0.1,
            drop_path_rate: 0.1,
            use_mean_pooling: true,
            pool_scales: vec![1, 2, 3, 6],
            use_auxiliary_head: true,
            auxiliary_loss_weight: 0.4,
            auxiliary_channels: 256,
            auxiliary_num_convs: 1,
            auxiliary_concat_input: false,
            semantic_loss_ignore_index: 255,
            out_indices: None,
            out_features: None,
            add_fpn: false,
            reshape_hidden_states: true,
            labels: LabelConfig::default(),
        }
    }
}

impl BeitConfig {
    /// Size of one attention head.
    pub fn head_dim(&self) -> usize {
        self.hidden_size / self.num_attention_heads
    }

    /// Patches along the height and the width of the config's `image_size`.
    pub fn patch_grid(&self) -> (usize, usize) {
        let (h, w) = self.image_size.hw();
        (h / self.patch_size.max(1), w / self.patch_size.max(1))
    }

    /// The stages the semantic segmentation head reads, as `transformers`' backbone utilities
    /// resolve `out_indices` / `out_features` (`0` the embeddings, `i` the output of layer `i`;
    /// negative indices count from the end of the `num_hidden_layers + 1` stages).
    pub fn stage_indices(&self) -> Result<Vec<usize>> {
        let stages = self.num_hidden_layers + 1;
        let invalid = |message: String| Err(Error::config("beit", message));
        if let Some(indices) = &self.out_indices {
            let mut out = Vec::with_capacity(indices.len());
            for &i in indices {
                let resolved = if i < 0 { stages as i64 + i } else { i };
                if resolved < 0 || resolved >= stages as i64 {
                    return invalid(format!(
                        "`out_indices` holds {i}, outside the {stages} stages (embeddings and {} layers)",
                        self.num_hidden_layers
                    ));
                }
                out.push(resolved as usize);
            }
            return Ok(out);
        }
        if let Some(features) = &self.out_features {
            let mut out = Vec::with_capacity(features.len());
            for name in features {
                let index = match name.as_str() {
                    "stem" => Some(0),
                    other => other.strip_prefix("stage").and_then(|n| n.parse::<usize>().ok()),
                };
                match index {
                    Some(i) if i < stages => out.push(i),
                    _ => {
                        return invalid(format!(
                            "`out_features` holds `{name}`, which is not `stem` or `stage1`..`stage{}`",
                            self.num_hidden_layers
                        ))
                    }
                }
            }
            return Ok(out);
        }
        Ok(vec![self.num_hidden_layers])
    }

    /// Check what the model needs of the config.
    pub fn validate(&self) -> Result<()> {
        let invalid = |message: String| Err(Error::config("beit", message));
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
}

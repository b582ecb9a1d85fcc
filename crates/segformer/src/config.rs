//! `SegformerConfig`, field for field as `transformers`' `configuration_segformer.SegformerConfig` (5.25).

use autocandle_core::{Activation, AutoRegister, Error, LabelConfig, Result};
use serde::{Deserialize, Serialize};

/// The config of a SegFormer model (`SegformerConfig`), with the `transformers` defaults (those
/// of nvidia/segformer-b0-finetuned-ade-512-512). A field `config.json` leaves out takes its
/// default; fields it holds that `SegformerConfig` does not declare are ignored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, AutoRegister)]
#[auto(config, model_type = "segformer")]
#[serde(default)]
pub struct SegformerConfig {
    /// Channels of the input images (3 for RGB).
    pub num_channels: usize,
    /// Number of encoder stages (`num_hidden_layers` in `transformers`' attribute map).
    #[serde(alias = "num_hidden_layers")]
    pub num_encoder_blocks: usize,
    /// Transformer blocks per stage.
    pub depths: Vec<usize>,
    /// Sequence reduction ratio of the keys and values, per stage (1: none).
    pub sr_ratios: Vec<usize>,
    /// Channels of each stage.
    pub hidden_sizes: Vec<usize>,
    /// Kernel of the overlapping patch embedding before each stage.
    pub patch_sizes: Vec<usize>,
    /// Stride of the overlapping patch embedding before each stage.
    pub strides: Vec<usize>,
    /// Attention heads per stage.
    pub num_attention_heads: Vec<usize>,
    /// Width of the Mix-FFN relative to the stage's channels, per stage.
    pub mlp_ratios: Vec<usize>,
    /// Activation of the Mix-FFN.
    pub hidden_act: Activation,
    /// Training only: dropout is a no-op here.
    pub hidden_dropout_prob: f64,
    /// Training only: dropout is a no-op here.
    pub attention_probs_dropout_prob: f64,
    /// Training only: dropout is a no-op here.
    pub classifier_dropout_prob: f64,
    /// Standard deviation of the initialisation in `transformers`; unused at inference.
    pub initializer_range: f64,
    /// Training only: stochastic depth is a no-op here.
    pub drop_path_rate: f64,
    /// Declared by `transformers` but unused: every LayerNorm of SegFormer has PyTorch's
    /// default epsilon, 1e-5.
    pub layer_norm_eps: f64,
    /// Channels of the all-MLP decode head.
    pub decoder_hidden_size: usize,
    /// Training only (the label ignored by the loss).
    pub semantic_loss_ignore_index: i64,
    /// Whether the last stage's output is reshaped to `[batch, channels, height, width]`
    /// (otherwise it stays `[batch, height * width, channels]`).
    pub reshape_last_stage: bool,
    /// `id2label`, `label2id`, `num_labels`, `problem_type`.
    #[serde(flatten)]
    pub labels: LabelConfig,
}

impl Default for SegformerConfig {
    /// `SegformerConfig()` in `transformers`: the MiT-b0 shape.
    fn default() -> Self {
        Self {
            num_channels: 3,
            num_encoder_blocks: 4,
            depths: vec![2, 2, 2, 2],
            sr_ratios: vec![8, 4, 2, 1],
            hidden_sizes: vec![32, 64, 160, 256],
            patch_sizes: vec![7, 3, 3, 3],
            strides: vec![4, 2, 2, 2],
            num_attention_heads: vec![1, 2, 5, 8],
            mlp_ratios: vec![4, 4, 4, 4],
            hidden_act: Activation::Gelu,
            hidden_dropout_prob: 0.0,
            attention_probs_dropout_prob: 0.0,
            classifier_dropout_prob: 0.1,
            initializer_range: 0.02,
            drop_path_rate: 0.1,
            layer_norm_eps: 1e-6,
            decoder_hidden_size: 256,
            semantic_loss_ignore_index: 255,
            reshape_last_stage: true,
            labels: LabelConfig::default(),
        }
    }
}

impl SegformerConfig {
    /// Check what the model needs of the config: one entry per stage in every per-stage list,
    /// sizes of at least 1, channels divisible by the heads.
    pub fn validate(&self) -> Result<()> {
        let invalid = |message: String| Err(Error::config("segformer", message));
        let n = self.num_encoder_blocks;
        if n == 0 {
            return invalid("`num_encoder_blocks` must be at least 1, got 0".into());
        }
        for (name, value) in [("num_channels", self.num_channels), ("decoder_hidden_size", self.decoder_hidden_size)] {
            if value == 0 {
                return invalid(format!("`{name}` must be at least 1, got 0"));
            }
        }
        for (name, list) in [
            ("depths", &self.depths),
            ("sr_ratios", &self.sr_ratios),
            ("hidden_sizes", &self.hidden_sizes),
            ("patch_sizes", &self.patch_sizes),
            ("strides", &self.strides),
            ("num_attention_heads", &self.num_attention_heads),
            ("mlp_ratios", &self.mlp_ratios),
        ] {
            if list.len() != n {
                return invalid(format!(
                    "`{name}` must have one entry per stage (`num_encoder_blocks` = {n}), got {}",
                    list.len()
                ));
            }
            if name != "depths" && list.contains(&0) {
                return invalid(format!("every entry of `{name}` must be at least 1, got {list:?}"));
            }
        }
        for (i, (&hidden, &heads)) in self.hidden_sizes.iter().zip(&self.num_attention_heads).enumerate() {
            if !hidden.is_multiple_of(heads) {
                return invalid(format!(
                    "stage {i}: `hidden_sizes` ({hidden}) must be a multiple of `num_attention_heads` ({heads})"
                ));
            }
        }
        Ok(())
    }
}

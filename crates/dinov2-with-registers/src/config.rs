//! `Dinov2WithRegistersConfig`, field for field as `transformers`'
//! `configuration_dinov2_with_registers.Dinov2WithRegistersConfig` (5.25).

use autocandle_core::resize::Resample;
use autocandle_core::{Activation, AutoRegister, LabelConfig, Result};
use autocandle_dinov2::{Dinov2Config, Dinov2LikeConfig, Dinov2Spec, Size2};
use serde::{Deserialize, Serialize};

/// The config of a DINOv2-with-registers model (`Dinov2WithRegistersConfig`), with the
/// `transformers` defaults. A field `config.json` leaves out takes its default; fields the
/// config class does not declare are ignored. It is [`Dinov2Config`] with `num_register_tokens`
/// and without `use_mask_token` (the embeddings always hold the mask token).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, AutoRegister)]
#[auto(config, model_type = "dinov2_with_registers")]
#[serde(default)]
pub struct Dinov2WithRegistersConfig {
    /// Width of the hidden states.
    pub hidden_size: usize,
    /// Number of transformer blocks.
    pub num_hidden_layers: usize,
    /// Number of attention heads in each block.
    pub num_attention_heads: usize,
    /// The feed-forward width is `int(hidden_size * mlp_ratio)` (SwiGLU: two thirds of it,
    /// rounded up to a multiple of 8).
    pub mlp_ratio: f64,
    /// Activation of the feed-forward layer (not used by the SwiGLU one).
    pub hidden_act: Activation,
    /// Training only: dropout is a no-op here.
    pub hidden_dropout_prob: f64,
    /// Training only: dropout is a no-op here.
    pub attention_probs_dropout_prob: f64,
    /// Standard deviation of the initialisation in `transformers`; unused at inference.
    pub initializer_range: f64,
    /// Epsilon added to the variance in every LayerNorm.
    pub layer_norm_eps: f64,
    /// The image size the position embeddings were learned at; other sizes are interpolated.
    pub image_size: Size2,
    /// Side, in pixels, of the patches the image is cut into.
    pub patch_size: Size2,
    /// Channels of the input images (3 for RGB).
    pub num_channels: usize,
    /// Bias on the query, key and value projections.
    pub qkv_bias: bool,
    /// Initial value of the layer scales (the checkpoints hold the learned `lambda1`).
    pub layerscale_value: f64,
    /// Training only: stochastic depth is a no-op at inference.
    pub drop_path_rate: f64,
    /// The SwiGLU feed-forward in place of the MLP.
    pub use_swiglu_ffn: bool,
    /// Learned register tokens inserted after `[CLS]`.
    pub num_register_tokens: usize,
    /// Backbone stages to output, by name (`stem`, `stage1`, ...).
    pub out_features: Option<Vec<String>>,
    /// Backbone stages to output, by index into the stage names (negative from the end).
    pub out_indices: Option<Vec<i64>>,
    /// The backbone applies the final LayerNorm to its feature maps.
    pub apply_layernorm: bool,
    /// The backbone gives `[batch, hidden, h / patch, w / patch]` feature maps.
    pub reshape_hidden_states: bool,
    /// `id2label`, `label2id`, `num_labels`, `problem_type`.
    #[serde(flatten)]
    pub labels: LabelConfig,
}

impl Default for Dinov2WithRegistersConfig {
    /// `Dinov2WithRegistersConfig()` in `transformers`.
    fn default() -> Self {
        let base = Dinov2Config::default();
        Self {
            hidden_size: base.hidden_size,
            num_hidden_layers: base.num_hidden_layers,
            num_attention_heads: base.num_attention_heads,
            mlp_ratio: base.mlp_ratio,
            hidden_act: base.hidden_act,
            hidden_dropout_prob: 0.0,
            attention_probs_dropout_prob: 0.0,
            initializer_range: 0.02,
            layer_norm_eps: 1e-6,
            image_size: Size2::Square(224),
            patch_size: Size2::Square(16),
            num_channels: 3,
            qkv_bias: true,
            layerscale_value: 1.0,
            drop_path_rate: 0.0,
            use_swiglu_ffn: false,
            num_register_tokens: 4,
            out_features: None,
            out_indices: None,
            apply_layernorm: true,
            reshape_hidden_states: true,
            labels: LabelConfig::default(),
        }
    }
}

impl Dinov2WithRegistersConfig {
    /// The same network as a [`Dinov2Config`] (with the mask token).
    pub fn to_dinov2(&self) -> Dinov2Config {
        Dinov2Config {
            hidden_size: self.hidden_size,
            num_hidden_layers: self.num_hidden_layers,
            num_attention_heads: self.num_attention_heads,
            mlp_ratio: self.mlp_ratio,
            hidden_act: self.hidden_act,
            hidden_dropout_prob: self.hidden_dropout_prob,
            attention_probs_dropout_prob: self.attention_probs_dropout_prob,
            initializer_range: self.initializer_range,
            layer_norm_eps: self.layer_norm_eps,
            image_size: self.image_size,
            patch_size: self.patch_size,
            num_channels: self.num_channels,
            qkv_bias: self.qkv_bias,
            layerscale_value: self.layerscale_value,
            drop_path_rate: self.drop_path_rate,
            use_swiglu_ffn: self.use_swiglu_ffn,
            out_features: self.out_features.clone(),
            out_indices: self.out_indices.clone(),
            apply_layernorm: self.apply_layernorm,
            reshape_hidden_states: self.reshape_hidden_states,
            use_mask_token: true,
            labels: self.labels.clone(),
        }
    }

    /// The network's spec: DINOv2 with `num_register_tokens` registers, the mask token, and the
    /// position embeddings interpolated with antialiased bicubic resampling (`antialias=True`).
    pub fn spec(&self) -> Dinov2Spec {
        Dinov2Spec {
            config: self.to_dinov2(),
            model_type: "dinov2_with_registers",
            num_register_tokens: self.num_register_tokens,
            resample: Resample::BicubicAntialias,
            use_mask_token: true,
        }
    }
}

impl Dinov2LikeConfig for Dinov2WithRegistersConfig {
    fn dinov2_spec(&self) -> Result<Dinov2Spec> {
        let spec = self.spec();
        spec.validate()?;
        Ok(spec)
    }
}

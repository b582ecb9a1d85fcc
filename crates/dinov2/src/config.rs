//! `Dinov2Config`, field for field as `transformers`' `configuration_dinov2.Dinov2Config` (5.25),
//! and [`Dinov2Spec`], what the network needs of it (shared with `dinov2_with_registers`).

use autocandle_core::resize::Resample;
use autocandle_core::{Activation, AutoRegister, Error, LabelConfig, Result};
use serde::{Deserialize, Serialize};

/// An `image_size` or `patch_size` (shared by the vision crates).
pub use autocandle_core::Size2;

/// The config of a DINOv2 model (`Dinov2Config`), with the `transformers` defaults (those of
/// facebook/dinov2-base except `image_size`, which the checkpoints set to 518). A field
/// `config.json` leaves out takes its default; fields `Dinov2Config` does not declare are ignored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, AutoRegister)]
#[auto(config, model_type = "dinov2")]
#[serde(default)]
pub struct Dinov2Config {
    /// Width of the hidden states, `[batch, seq, hidden_size]`.
    pub hidden_size: usize,
    /// Number of transformer blocks.
    pub num_hidden_layers: usize,
    /// Number of attention heads in each block.
    pub num_attention_heads: usize,
    /// The feed-forward width is `int(hidden_size * mlp_ratio)` (SwiGLU: two thirds of it,
    /// rounded up to a multiple of 8).
    pub mlp_ratio: f64,
    /// Activation of the feed-forward layer (not used by the SwiGLU one, which is SiLU-gated).
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
    /// The SwiGLU feed-forward (`weights_in`, `weights_out`) in place of the MLP (`fc1`, `fc2`).
    pub use_swiglu_ffn: bool,
    /// Backbone stages to output, by name (`stem`, `stage1`, ...); see [`Dinov2Config::out_indices`].
    pub out_features: Option<Vec<String>>,
    /// Backbone stages to output, by index into the stage names (negative from the end).
    pub out_indices: Option<Vec<i64>>,
    /// The backbone applies the final LayerNorm to its feature maps.
    pub apply_layernorm: bool,
    /// The backbone gives feature maps `[batch, hidden, h / patch, w / patch]` (without the
    /// `[CLS]` token) rather than `[batch, 1 + patches, hidden]`.
    pub reshape_hidden_states: bool,
    /// The embeddings hold a mask token (`bool_masked_pos`).
    pub use_mask_token: bool,
    /// `id2label`, `label2id`, `num_labels`, `problem_type`.
    #[serde(flatten)]
    pub labels: LabelConfig,
}

impl Default for Dinov2Config {
    /// `Dinov2Config()` in `transformers`.
    fn default() -> Self {
        Self {
            hidden_size: 768,
            num_hidden_layers: 12,
            num_attention_heads: 12,
            mlp_ratio: 4.0,
            hidden_act: Activation::Gelu,
            hidden_dropout_prob: 0.0,
            attention_probs_dropout_prob: 0.0,
            initializer_range: 0.02,
            layer_norm_eps: 1e-6,
            image_size: Size2::Square(224),
            patch_size: Size2::Square(14),
            num_channels: 3,
            qkv_bias: true,
            layerscale_value: 1.0,
            drop_path_rate: 0.0,
            use_swiglu_ffn: false,
            out_features: None,
            out_indices: None,
            apply_layernorm: true,
            reshape_hidden_states: true,
            use_mask_token: true,
            labels: LabelConfig::default(),
        }
    }
}

impl Dinov2Config {
    /// The backbone's stage names: `stem` (the embeddings) and `stage1` .. `stageN` (the blocks).
    pub fn stage_names(&self) -> Vec<String> {
        std::iter::once("stem".to_string()).chain((1..=self.num_hidden_layers).map(|i| format!("stage{i}"))).collect()
    }

    /// The stages the backbone outputs, as indices into [`Dinov2Config::stage_names`], aligned
    /// as `transformers`' `BackboneConfigMixin` does: from `out_indices` (negative ones counted
    /// from the end) or `out_features`, which must agree when both are set; the last stage when
    /// neither is.
    pub fn out_indices(&self) -> Result<Vec<usize>> {
        let names = self.stage_names();
        let invalid = |message: String| Err(Error::config("dinov2", message));
        let from_features = match &self.out_features {
            None => None,
            Some(features) => {
                let mut indices = Vec::with_capacity(features.len());
                for feature in features {
                    match names.iter().position(|n| n == feature) {
                        Some(i) => indices.push(i),
                        None => {
                            return invalid(format!(
                                "`out_features` names `{feature}`, which is not a stage: the stages are {names:?}"
                            ))
                        }
                    }
                }
                Some(indices)
            }
        };
        let from_indices = match &self.out_indices {
            None => None,
            Some(raw) => {
                let n = names.len() as i64;
                let mut indices = Vec::with_capacity(raw.len());
                for &i in raw {
                    let positive = if i < 0 { i + n } else { i };
                    if !(0..n).contains(&positive) {
                        return invalid(format!("`out_indices` holds {i}, out of range for the {n} stages {names:?}"));
                    }
                    indices.push(positive as usize);
                }
                Some(indices)
            }
        };
        let indices = match (from_features, from_indices) {
            (None, None) => vec![names.len() - 1],
            (Some(f), None) => f,
            (None, Some(i)) => i,
            (Some(f), Some(i)) => {
                if f != i {
                    return invalid(format!(
                        "`out_features` {:?} and `out_indices` {:?} name different stages: set one of them",
                        self.out_features.as_deref().unwrap_or_default(),
                        self.out_indices.as_deref().unwrap_or_default()
                    ));
                }
                f
            }
        };
        if indices.windows(2).any(|w| w[0] >= w[1]) {
            return invalid(format!(
                "the backbone stages {indices:?} must be distinct and in the order of the stage names {names:?}"
            ));
        }
        Ok(indices)
    }

    /// Check what the model needs of the config.
    pub fn validate(&self) -> Result<()> {
        validate(self, "dinov2")
    }
}

/// Check the sizes of a DINOv2-like config.
pub(crate) fn validate(cfg: &Dinov2Config, model_type: &str) -> Result<()> {
    let invalid = |message: String| Err(Error::config(model_type, message));
    let ((h, w), (ph, pw)) = (cfg.image_size.hw(), cfg.patch_size.hw());
    for (name, value) in [
        ("hidden_size", cfg.hidden_size),
        ("num_attention_heads", cfg.num_attention_heads),
        ("num_channels", cfg.num_channels),
        ("patch_size", ph.min(pw)),
        ("image_size", h.min(w)),
    ] {
        if value == 0 {
            return invalid(format!("`{name}` must be at least 1, got 0"));
        }
    }
    if !cfg.hidden_size.is_multiple_of(cfg.num_attention_heads) {
        return invalid(format!(
            "`hidden_size` ({}) must be a multiple of `num_attention_heads` ({})",
            cfg.hidden_size, cfg.num_attention_heads
        ));
    }
    if ph > h || pw > w {
        return invalid(format!("`patch_size` ({ph}x{pw}) is larger than `image_size` ({h}x{w})"));
    }
    if !(cfg.mlp_ratio.is_finite() && cfg.mlp_ratio > 0.0 && cfg.mlp_ratio <= 64.0) {
        return invalid(format!("`mlp_ratio` must be a positive number up to 64, got {}", cfg.mlp_ratio));
    }
    if cfg.ffn_size() == 0 {
        return invalid(format!(
            "the feed-forward width `int(hidden_size * mlp_ratio)` is 0 ({} x {})",
            cfg.hidden_size, cfg.mlp_ratio
        ));
    }
    Ok(())
}

impl Dinov2Config {
    /// Size of one attention head.
    pub fn head_dim(&self) -> usize {
        self.hidden_size / self.num_attention_heads
    }

    /// Patches along the height and the width of `image_size`.
    pub fn patch_grid(&self) -> (usize, usize) {
        let ((h, w), (ph, pw)) = (self.image_size.hw(), self.patch_size.hw());
        (h / ph, w / pw)
    }

    /// The feed-forward width: `int(hidden_size * mlp_ratio)`, and for SwiGLU
    /// `(int(that * 2 / 3) + 7) // 8 * 8`, as `transformers` computes them.
    pub fn ffn_size(&self) -> usize {
        let hidden = (self.hidden_size as f64 * self.mlp_ratio) as usize;
        if self.use_swiglu_ffn {
            ((hidden as f64 * 2.0 / 3.0) as usize).div_ceil(8) * 8
        } else {
            hidden
        }
    }

    /// The network's spec for a plain DINOv2 (no register tokens, bicubic position interpolation).
    pub fn spec(&self) -> Dinov2Spec {
        Dinov2Spec {
            config: self.clone(),
            model_type: "dinov2",
            num_register_tokens: 0,
            resample: Resample::Bicubic,
            use_mask_token: self.use_mask_token,
        }
    }
}

/// What the DINOv2 network needs: the config and what differs between `dinov2` and
/// `dinov2_with_registers`.
#[derive(Debug, Clone, PartialEq)]
pub struct Dinov2Spec {
    /// The shared config fields.
    pub config: Dinov2Config,
    /// The model type, for error messages.
    pub model_type: &'static str,
    /// Register tokens inserted after `[CLS]` (`dinov2_with_registers`), after the position
    /// embeddings are added; 0 for DINOv2.
    pub num_register_tokens: usize,
    /// How the position embeddings are interpolated: bicubic for DINOv2, antialiased bicubic for
    /// DINOv2 with registers.
    pub resample: Resample,
    /// The embeddings hold `mask_token`.
    pub use_mask_token: bool,
}

/// A config that builds the DINOv2 network (its [`Dinov2Spec`]).
pub trait Dinov2LikeConfig {
    /// The spec, validated.
    fn dinov2_spec(&self) -> Result<Dinov2Spec>;
}

impl Dinov2LikeConfig for Dinov2Config {
    fn dinov2_spec(&self) -> Result<Dinov2Spec> {
        self.validate()?;
        Ok(self.spec())
    }
}

impl Dinov2Spec {
    /// Check the spec (the config's sizes).
    pub fn validate(&self) -> Result<()> {
        validate(&self.config, self.model_type)
    }
}

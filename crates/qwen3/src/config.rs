//! `Qwen3Config`, field for field as `transformers`' `configuration_qwen3.Qwen3Config` (5.23).

use autocandle_core::{Activation, AutoRegister, LabelConfig, Result};
use autocandle_decoder::{CommonConfig, DecoderConfig, DecoderSpec, RopeConfig, TokenIds};
use serde::{Deserialize, Serialize};

/// The config of a Qwen3 model (`Qwen3Config`), with the `transformers` defaults (those of
/// Qwen3-8B).
///
/// Fields `config.json` may hold that `Qwen3Config` does not declare are ignored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, AutoRegister)]
#[auto(config, model_type = "qwen3")]
pub struct Qwen3Config {
    #[serde(default = "defaults::vocab_size")]
    pub vocab_size: usize,
    #[serde(default = "defaults::hidden_size")]
    pub hidden_size: usize,
    #[serde(default = "defaults::intermediate_size")]
    pub intermediate_size: usize,
    #[serde(default = "defaults::num_hidden_layers")]
    pub num_hidden_layers: usize,
    #[serde(default = "defaults::num_attention_heads")]
    pub num_attention_heads: usize,
    /// `None` is `num_attention_heads`.
    #[serde(default = "defaults::num_key_value_heads")]
    pub num_key_value_heads: Option<usize>,
    /// Size of one attention head (not `hidden_size / num_attention_heads` in general).
    #[serde(default = "defaults::head_dim")]
    pub head_dim: usize,
    #[serde(default = "defaults::hidden_act")]
    pub hidden_act: Activation,
    #[serde(default = "defaults::max_position_embeddings")]
    pub max_position_embeddings: usize,
    /// Standard deviation of the initialisation in `transformers`; unused at inference.
    #[serde(default = "defaults::initializer_range")]
    pub initializer_range: f64,
    #[serde(default = "defaults::rms_norm_eps")]
    pub rms_norm_eps: f64,
    #[serde(default = "defaults::yes")]
    pub use_cache: bool,
    #[serde(default)]
    pub tie_word_embeddings: bool,
    /// `rope_parameters` (or `rope_theta` + `rope_scaling`).
    #[serde(flatten)]
    pub rope: RopeConfig,
    /// Bias on `q_proj`, `k_proj`, `v_proj` and `o_proj`.
    #[serde(default)]
    pub attention_bias: bool,
    /// Without it `sliding_window` is ignored (`transformers` sets it to `None`).
    #[serde(default)]
    pub use_sliding_window: bool,
    #[serde(default = "defaults::sliding_window")]
    pub sliding_window: Option<usize>,
    /// Without `layer_types`, the layers from this index on use the sliding window.
    #[serde(default = "defaults::max_window_layers")]
    pub max_window_layers: usize,
    /// `full_attention` or `sliding_attention` per layer.
    #[serde(default)]
    pub layer_types: Option<Vec<String>>,
    /// Training only: dropout is a no-op here.
    #[serde(default)]
    pub attention_dropout: f64,
    #[serde(default)]
    pub pad_token_id: Option<i64>,
    #[serde(default)]
    pub bos_token_id: Option<i64>,
    #[serde(default)]
    pub eos_token_id: Option<TokenIds>,
    /// `id2label`, `label2id`, `num_labels`, `problem_type`.
    #[serde(flatten)]
    pub labels: LabelConfig,
}

mod defaults {
    use autocandle_core::Activation;

    pub(super) fn vocab_size() -> usize {
        151936
    }
    pub(super) fn hidden_size() -> usize {
        4096
    }
    pub(super) fn intermediate_size() -> usize {
        22016
    }
    pub(super) fn num_hidden_layers() -> usize {
        32
    }
    pub(super) fn num_attention_heads() -> usize {
        32
    }
    pub(super) fn num_key_value_heads() -> Option<usize> {
        Some(32)
    }
    pub(super) fn head_dim() -> usize {
        128
    }
    pub(super) fn hidden_act() -> Activation {
        Activation::Silu
    }
    pub(super) fn max_position_embeddings() -> usize {
        32768
    }
    pub(super) fn initializer_range() -> f64 {
        0.02
    }
    pub(super) fn rms_norm_eps() -> f64 {
        1e-6
    }
    pub(super) fn yes() -> bool {
        true
    }
    pub(super) fn sliding_window() -> Option<usize> {
        Some(4096)
    }
    pub(super) fn max_window_layers() -> usize {
        28
    }
}

impl Default for Qwen3Config {
    /// `Qwen3Config()` in `transformers`: the Qwen3-8B shape.
    fn default() -> Self {
        Self {
            vocab_size: defaults::vocab_size(),
            hidden_size: defaults::hidden_size(),
            intermediate_size: defaults::intermediate_size(),
            num_hidden_layers: defaults::num_hidden_layers(),
            num_attention_heads: defaults::num_attention_heads(),
            num_key_value_heads: defaults::num_key_value_heads(),
            head_dim: defaults::head_dim(),
            hidden_act: defaults::hidden_act(),
            max_position_embeddings: defaults::max_position_embeddings(),
            initializer_range: defaults::initializer_range(),
            rms_norm_eps: defaults::rms_norm_eps(),
            use_cache: true,
            tie_word_embeddings: false,
            rope: RopeConfig::default(),
            attention_bias: false,
            use_sliding_window: false,
            sliding_window: defaults::sliding_window(),
            max_window_layers: defaults::max_window_layers(),
            layer_types: None,
            attention_dropout: 0.0,
            pad_token_id: None,
            bos_token_id: None,
            eos_token_id: None,
            labels: LabelConfig::default(),
        }
    }
}

impl DecoderConfig for Qwen3Config {
    fn decoder_spec(&self) -> Result<DecoderSpec> {
        let mut spec = CommonConfig {
            model_type: "qwen3",
            vocab_size: self.vocab_size,
            hidden_size: self.hidden_size,
            intermediate_size: self.intermediate_size,
            num_hidden_layers: self.num_hidden_layers,
            num_attention_heads: self.num_attention_heads,
            num_key_value_heads: self.num_key_value_heads,
            head_dim: Some(self.head_dim),
            max_position_embeddings: self.max_position_embeddings,
            rms_norm_eps: self.rms_norm_eps,
            hidden_act: self.hidden_act,
            rope: &self.rope,
            partial_rotary: false,
            original_max_position_embeddings: None,
            tie_word_embeddings: self.tie_word_embeddings,
            pad_token_id: self.pad_token_id,
            labels: &self.labels,
            use_cache: self.use_cache,
        }
        .spec()?;
        spec.options.qkv_bias = self.attention_bias;
        spec.options.o_bias = self.attention_bias;
        spec.options.qk_norm = true;
        let window = self.sliding_window.filter(|_| self.use_sliding_window);
        spec.set_layers(self.layer_types.as_deref(), window, |i| window.is_some() && i >= self.max_window_layers)?;
        Ok(spec)
    }
}

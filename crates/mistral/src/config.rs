//! `MistralConfig`, field for field as `transformers`' `configuration_mistral.MistralConfig`
//! (5.23).

use autocandle_core::{Activation, AutoRegister, LabelConfig, Result};
use autocandle_decoder::{CommonConfig, DecoderConfig, DecoderSpec, RopeConfig, TokenIds};
use serde::{Deserialize, Serialize};

/// The config of a Mistral model (`MistralConfig`), with the `transformers` defaults (those
/// of Mistral-7B).
///
/// `layer_types`, which some checkpoints carry, is ignored as `MistralModel` ignores it:
/// `sliding_window` applies to every layer. Other undeclared fields are ignored too.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, AutoRegister)]
#[auto(config, model_type = "mistral")]
pub struct MistralConfig {
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
    /// `None` is `hidden_size / num_attention_heads`.
    #[serde(default)]
    pub head_dim: Option<usize>,
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
    pub pad_token_id: Option<i64>,
    #[serde(default = "defaults::bos_token_id")]
    pub bos_token_id: Option<i64>,
    #[serde(default = "defaults::eos_token_id")]
    pub eos_token_id: Option<TokenIds>,
    #[serde(default)]
    pub tie_word_embeddings: bool,
    /// `rope_parameters` (or `rope_theta` + `rope_scaling`).
    #[serde(flatten)]
    pub rope: RopeConfig,
    /// The attention window of every layer; `None` attends to every past position.
    #[serde(default = "defaults::sliding_window")]
    pub sliding_window: Option<usize>,
    /// Training only: dropout is a no-op here.
    #[serde(default)]
    pub attention_dropout: f64,
    /// `id2label`, `label2id`, `num_labels`, `problem_type`.
    #[serde(flatten)]
    pub labels: LabelConfig,
}

mod defaults {
    use autocandle_core::Activation;
    use autocandle_decoder::TokenIds;

    pub(super) fn vocab_size() -> usize {
        32000
    }
    pub(super) fn hidden_size() -> usize {
        4096
    }
    pub(super) fn intermediate_size() -> usize {
        14336
    }
    pub(super) fn num_hidden_layers() -> usize {
        32
    }
    pub(super) fn num_attention_heads() -> usize {
        32
    }
    pub(super) fn num_key_value_heads() -> Option<usize> {
        Some(8)
    }
    pub(super) fn hidden_act() -> Activation {
        Activation::Silu
    }
    pub(super) fn max_position_embeddings() -> usize {
        4096 * 32
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
    pub(super) fn bos_token_id() -> Option<i64> {
        Some(1)
    }
    pub(super) fn eos_token_id() -> Option<TokenIds> {
        Some(TokenIds::One(2))
    }
    pub(super) fn sliding_window() -> Option<usize> {
        Some(4096)
    }
}

impl Default for MistralConfig {
    /// `MistralConfig()` in `transformers`: the Mistral-7B shape.
    fn default() -> Self {
        Self {
            vocab_size: defaults::vocab_size(),
            hidden_size: defaults::hidden_size(),
            intermediate_size: defaults::intermediate_size(),
            num_hidden_layers: defaults::num_hidden_layers(),
            num_attention_heads: defaults::num_attention_heads(),
            num_key_value_heads: defaults::num_key_value_heads(),
            head_dim: None,
            hidden_act: defaults::hidden_act(),
            max_position_embeddings: defaults::max_position_embeddings(),
            initializer_range: defaults::initializer_range(),
            rms_norm_eps: defaults::rms_norm_eps(),
            use_cache: true,
            pad_token_id: None,
            bos_token_id: defaults::bos_token_id(),
            eos_token_id: defaults::eos_token_id(),
            tie_word_embeddings: false,
            rope: RopeConfig::default(),
            sliding_window: defaults::sliding_window(),
            attention_dropout: 0.0,
            labels: LabelConfig::default(),
        }
    }
}

impl DecoderConfig for MistralConfig {
    fn decoder_spec(&self) -> Result<DecoderSpec> {
        let mut spec = CommonConfig {
            model_type: "mistral",
            vocab_size: self.vocab_size,
            hidden_size: self.hidden_size,
            intermediate_size: self.intermediate_size,
            num_hidden_layers: self.num_hidden_layers,
            num_attention_heads: self.num_attention_heads,
            num_key_value_heads: self.num_key_value_heads,
            head_dim: self.head_dim,
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
        spec.set_layers(None, self.sliding_window, |_| self.sliding_window.is_some())?;
        Ok(spec)
    }
}

//! `LlamaConfig`, field for field as `transformers`' `configuration_llama.LlamaConfig` (5.23).

use autocandle_core::{Activation, AutoRegister, LabelConfig, Result};
use autocandle_decoder::{CommonConfig, DecoderConfig, DecoderSpec, RopeConfig, TokenIds};
use serde::{Deserialize, Serialize};

/// The config of a Llama model (`LlamaConfig`), with the `transformers` defaults (those of
/// Llama-7B).
///
/// The rope keys (`rope_parameters`, or the older `rope_theta` + `rope_scaling`) are read
/// into [`RopeConfig`]; fields `config.json` may hold that `LlamaConfig` does not declare are
/// ignored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, AutoRegister)]
#[auto(config, model_type = "llama")]
pub struct LlamaConfig {
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
    #[serde(default)]
    pub num_key_value_heads: Option<usize>,
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
    /// Training only (tensor parallelism of the original checkpoints); unused.
    #[serde(default = "defaults::pretraining_tp")]
    pub pretraining_tp: Option<usize>,
    #[serde(default)]
    pub tie_word_embeddings: bool,
    /// `rope_parameters` (or `rope_theta` + `rope_scaling`).
    #[serde(flatten)]
    pub rope: RopeConfig,
    /// Bias on `q_proj`, `k_proj`, `v_proj` and `o_proj`.
    #[serde(default)]
    pub attention_bias: bool,
    /// Training only: dropout is a no-op here.
    #[serde(default = "defaults::attention_dropout")]
    pub attention_dropout: Option<f64>,
    /// Bias on `gate_proj`, `up_proj` and `down_proj`.
    #[serde(default)]
    pub mlp_bias: bool,
    /// `None` is `hidden_size / num_attention_heads`.
    #[serde(default)]
    pub head_dim: Option<usize>,
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
        11008
    }
    pub(super) fn num_hidden_layers() -> usize {
        32
    }
    pub(super) fn num_attention_heads() -> usize {
        32
    }
    pub(super) fn hidden_act() -> Activation {
        Activation::Silu
    }
    pub(super) fn max_position_embeddings() -> usize {
        2048
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
    pub(super) fn attention_dropout() -> Option<f64> {
        Some(0.0)
    }
    pub(super) fn pretraining_tp() -> Option<usize> {
        Some(1)
    }
}

impl Default for LlamaConfig {
    /// `LlamaConfig()` in `transformers`: the Llama-7B shape.
    fn default() -> Self {
        Self {
            vocab_size: defaults::vocab_size(),
            hidden_size: defaults::hidden_size(),
            intermediate_size: defaults::intermediate_size(),
            num_hidden_layers: defaults::num_hidden_layers(),
            num_attention_heads: defaults::num_attention_heads(),
            num_key_value_heads: None,
            hidden_act: defaults::hidden_act(),
            max_position_embeddings: defaults::max_position_embeddings(),
            initializer_range: defaults::initializer_range(),
            rms_norm_eps: defaults::rms_norm_eps(),
            use_cache: true,
            pad_token_id: None,
            bos_token_id: defaults::bos_token_id(),
            eos_token_id: defaults::eos_token_id(),
            pretraining_tp: defaults::pretraining_tp(),
            tie_word_embeddings: false,
            rope: RopeConfig::default(),
            attention_bias: false,
            attention_dropout: defaults::attention_dropout(),
            mlp_bias: false,
            head_dim: None,
            labels: LabelConfig::default(),
        }
    }
}

impl LlamaConfig {
    fn common(&self) -> CommonConfig<'_> {
        CommonConfig {
            model_type: "llama",
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
    }
}

impl DecoderConfig for LlamaConfig {
    fn decoder_spec(&self) -> Result<DecoderSpec> {
        let common = self.common();
        common.require_heads_divide_hidden()?;
        let mut spec = common.spec()?;
        spec.options.qkv_bias = self.attention_bias;
        spec.options.o_bias = self.attention_bias;
        spec.options.mlp_bias = self.mlp_bias;
        Ok(spec)
    }
}

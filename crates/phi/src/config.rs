//! `PhiConfig`, field for field as `transformers`' `configuration_phi.PhiConfig` (5.25).

use autocandle_core::{Activation, AutoRegister, Error, LabelConfig, Result};
use autocandle_decoder::{
    CommonConfig, DecoderConfig, DecoderSpec, MlpKind, NormKind, QkLayerNorm, RopeConfig, TokenIds,
};
use serde::{Deserialize, Serialize};

/// `partial_rotary_factor` when the config gives none (`PhiConfig.__post_init__`).
pub const DEFAULT_PARTIAL_ROTARY_FACTOR: f64 = 0.5;

/// The config of a Phi-1 / Phi-1.5 / Phi-2 model (`PhiConfig`), with the `transformers`
/// defaults (those of Phi-1.5). A field `config.json` leaves out takes its default.
///
/// Fields `config.json` may hold that `PhiConfig` does not declare are ignored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, AutoRegister)]
#[auto(config, model_type = "phi")]
#[serde(default)]
pub struct PhiConfig {
    /// Number of tokens in the vocabulary: the rows of the token embedding `[vocab_size, hidden_size]`.
    pub vocab_size: usize,
    /// Width of the hidden states, `[batch, seq, hidden_size]`.
    pub hidden_size: usize,
    /// Width of the feed-forward (MLP) layer inside each block.
    pub intermediate_size: usize,
    /// Number of transformer blocks.
    pub num_hidden_layers: usize,
    /// Number of attention heads in each block (query heads where keys and values have fewer).
    pub num_attention_heads: usize,
    /// `None` is `num_attention_heads`.
    pub num_key_value_heads: Option<usize>,
    /// Training only: dropout is a no-op here.
    pub resid_pdrop: f64,
    /// Training only: dropout is a no-op here.
    pub embd_pdrop: f64,
    /// Training only: dropout is a no-op here.
    pub attention_dropout: f64,
    /// Activation of the MLP (`gelu_new` in every Phi checkpoint).
    pub hidden_act: Activation,
    /// Longest sequence, in tokens, the model was trained for: the context of the rotary embedding.
    pub max_position_embeddings: usize,
    /// Standard deviation of the initialisation in `transformers`; unused at inference.
    pub initializer_range: f64,
    /// Epsilon of every LayerNorm.
    pub layer_norm_eps: f64,
    /// `transformers`' switch for keeping a key/value cache; generation here always caches, and a forward pass without a cache behaves as `transformers`' does with this value.
    pub use_cache: bool,
    /// Whether the LM head shares the token embedding's weight (its bias stays its own).
    pub tie_word_embeddings: bool,
    /// `rope_parameters` (or `rope_theta` + `rope_scaling`), with `partial_rotary_factor`
    /// ([`DEFAULT_PARTIAL_ROTARY_FACTOR`] when absent).
    #[serde(flatten)]
    pub rope: RopeConfig,
    /// A LayerNorm (with bias, shared by the heads) on the queries and keys of each head.
    pub qk_layernorm: bool,
    /// Id of the beginning-of-sequence token, if any.
    pub bos_token_id: Option<i64>,
    /// Id, or list of ids, of the end-of-sequence token; generation stops at any of them.
    pub eos_token_id: Option<TokenIds>,
    /// Id of the padding token, if the vocabulary has one.
    pub pad_token_id: Option<i64>,
    /// `id2label`, `label2id`, `num_labels`, `problem_type`.
    #[serde(flatten)]
    pub labels: LabelConfig,
}

impl Default for PhiConfig {
    /// `PhiConfig()` in `transformers`.
    fn default() -> Self {
        Self {
            vocab_size: 51200,
            hidden_size: 2048,
            intermediate_size: 8192,
            num_hidden_layers: 24,
            num_attention_heads: 32,
            num_key_value_heads: None,
            resid_pdrop: 0.0,
            embd_pdrop: 0.0,
            attention_dropout: 0.0,
            hidden_act: Activation::GeluTanh,
            max_position_embeddings: 2048,
            initializer_range: 0.02,
            layer_norm_eps: 1e-5,
            use_cache: true,
            tie_word_embeddings: false,
            rope: RopeConfig::default(),
            qk_layernorm: false,
            bos_token_id: Some(1),
            eos_token_id: Some(TokenIds::One(2)),
            pad_token_id: None,
            labels: LabelConfig::default(),
        }
    }
}

impl DecoderConfig for PhiConfig {
    fn decoder_spec(&self) -> Result<DecoderSpec> {
        if !(self.layer_norm_eps.is_finite() && self.layer_norm_eps >= 0.0) {
            return Err(Error::config(
                "phi",
                format!("`layer_norm_eps` must be a finite number >= 0, got {}", self.layer_norm_eps),
            ));
        }
        let mut rope = self.rope.clone();
        rope.parameters.partial_rotary_factor.get_or_insert(DEFAULT_PARTIAL_ROTARY_FACTOR);
        let common = CommonConfig {
            model_type: "phi",
            vocab_size: self.vocab_size,
            hidden_size: self.hidden_size,
            intermediate_size: self.intermediate_size,
            num_hidden_layers: self.num_hidden_layers,
            num_attention_heads: self.num_attention_heads,
            num_key_value_heads: self.num_key_value_heads,
            head_dim: None,
            max_position_embeddings: self.max_position_embeddings,
            rms_norm_eps: self.layer_norm_eps,
            hidden_act: self.hidden_act,
            rope: &rope,
            partial_rotary: true,
            original_max_position_embeddings: None,
            tie_word_embeddings: self.tie_word_embeddings,
            pad_token_id: self.pad_token_id,
            labels: &self.labels,
            use_cache: self.use_cache,
        };
        common.require_heads_divide_hidden()?;
        let mut spec = common.spec()?;
        let o = &mut spec.options;
        o.norm_kind = NormKind::LayerNorm { bias: true };
        o.qkv_bias = true;
        o.o_bias = true;
        o.mlp_bias = true;
        o.o_proj_name = "dense";
        o.mlp_kind = MlpKind::Plain { up: "fc1", down: "fc2" };
        o.parallel_block = true;
        o.final_norm_name = "final_layernorm";
        o.lm_head_bias = true;
        o.qk_layernorm = self.qk_layernorm.then_some(QkLayerNorm::Shared);
        spec.validate()?;
        Ok(spec)
    }
}

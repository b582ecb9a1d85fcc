//! `CohereConfig`, field for field as `transformers`' `configuration_cohere.CohereConfig` (5.25).

use autocandle_core::{Activation, AutoRegister, Error, LabelConfig, Result};
use autocandle_decoder::{CommonConfig, DecoderConfig, DecoderSpec, NormKind, QkLayerNorm, RopeConfig, TokenIds};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value};

/// `rope_theta` when the config gives none (`CohereConfig.default_theta`).
pub const DEFAULT_ROPE_THETA: f64 = 500_000.0;

/// The config of a Cohere (Command-R) model (`CohereConfig`), with the `transformers` defaults.
/// A field `config.json` leaves out takes its default.
///
/// Fields `config.json` may hold that `CohereConfig` does not declare are ignored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, AutoRegister)]
#[auto(config, model_type = "cohere")]
#[serde(default)]
pub struct CohereConfig {
    /// Number of tokens in the vocabulary: the rows of the token embedding `[vocab_size, hidden_size]`.
    pub vocab_size: usize,
    /// Width of the hidden states, `[batch, seq, hidden_size]`.
    pub hidden_size: usize,
    /// Width of the feed-forward (MLP) layer inside each block.
    pub intermediate_size: usize,
    /// The factor on the language-model logits; `transformers` fails on `null`, so it is an
    /// error here.
    pub logit_scale: Option<f64>,
    /// Number of transformer blocks.
    pub num_hidden_layers: usize,
    /// Number of attention heads in each block (query heads where keys and values have fewer).
    pub num_attention_heads: usize,
    /// `None` is `num_attention_heads`.
    pub num_key_value_heads: Option<usize>,
    /// Activation of the gated MLP.
    pub hidden_act: Activation,
    /// Longest sequence, in tokens, the model was trained for: the context of the rotary embedding.
    pub max_position_embeddings: usize,
    /// Standard deviation of the initialisation in `transformers`; unused at inference.
    pub initializer_range: f64,
    /// Epsilon of every LayerNorm.
    pub layer_norm_eps: f64,
    /// `transformers`' switch for keeping a key/value cache; generation here always caches, and a forward pass without a cache behaves as `transformers`' does with this value.
    pub use_cache: bool,
    /// Id of the padding token, if the vocabulary has one.
    pub pad_token_id: Option<i64>,
    /// Id of the beginning-of-sequence token, if any.
    pub bos_token_id: Option<i64>,
    /// Id, or list of ids, of the end-of-sequence token; generation stops at any of them.
    pub eos_token_id: Option<TokenIds>,
    /// Whether the LM head shares the token embedding's weight (then a saved model has no `lm_head.weight`).
    pub tie_word_embeddings: bool,
    /// `rope_parameters` (or `rope_theta` + `rope_scaling`); `rope_theta` is
    /// [`DEFAULT_ROPE_THETA`] when the config gives none.
    #[serde(flatten, deserialize_with = "cohere_rope")]
    pub rope: RopeConfig,
    /// Biases on `q_proj`, `k_proj`, `v_proj` and `o_proj`.
    pub attention_bias: bool,
    /// Training only: dropout is a no-op here.
    pub attention_dropout: f64,
    /// A LayerNorm (no bias) per head on the queries and keys: `q_norm.weight`
    /// `[num_attention_heads, head_dim]`, `k_norm.weight` `[num_key_value_heads, head_dim]`.
    pub use_qk_norm: bool,
    /// `id2label`, `label2id`, `num_labels`, `problem_type`.
    #[serde(flatten)]
    pub labels: LabelConfig,
}

/// The rope keys of `config.json` as [`RopeConfig`] reads them, with Cohere's default theta
/// where none of `rope_theta`, `rope_parameters.rope_theta` and `rope_scaling.rope_theta` is set.
fn cohere_rope<'de, D: Deserializer<'de>>(deserializer: D) -> std::result::Result<RopeConfig, D::Error> {
    let mut keys = Map::<String, Value>::deserialize(deserializer)?;
    let set = |v: Option<&Value>| v.is_some_and(|v| !v.is_null());
    let has_theta = set(keys.get("rope_theta"))
        || ["rope_parameters", "rope_scaling"].iter().any(|k| set(keys.get(*k).and_then(|d| d.get("rope_theta"))));
    if !has_theta {
        keys.insert("rope_theta".to_owned(), Value::from(DEFAULT_ROPE_THETA));
    }
    RopeConfig::deserialize(Value::Object(keys)).map_err(serde::de::Error::custom)
}

impl Default for CohereConfig {
    /// `CohereConfig()` in `transformers`.
    fn default() -> Self {
        Self {
            vocab_size: 256000,
            hidden_size: 8192,
            intermediate_size: 22528,
            logit_scale: Some(0.0625),
            num_hidden_layers: 40,
            num_attention_heads: 64,
            num_key_value_heads: None,
            hidden_act: Activation::Silu,
            max_position_embeddings: 8192,
            initializer_range: 0.02,
            layer_norm_eps: 1e-5,
            use_cache: true,
            pad_token_id: Some(0),
            bos_token_id: Some(5),
            eos_token_id: Some(TokenIds::One(255001)),
            tie_word_embeddings: true,
            rope: RopeConfig::with_theta(DEFAULT_ROPE_THETA),
            attention_bias: false,
            attention_dropout: 0.0,
            use_qk_norm: false,
            labels: LabelConfig::default(),
        }
    }
}

impl DecoderConfig for CohereConfig {
    fn decoder_spec(&self) -> Result<DecoderSpec> {
        let invalid = |message: String| Err(Error::config("cohere", message));
        if !(self.layer_norm_eps.is_finite() && self.layer_norm_eps >= 0.0) {
            return invalid(format!("`layer_norm_eps` must be a finite number >= 0, got {}", self.layer_norm_eps));
        }
        let Some(logit_scale) = self.logit_scale else {
            return invalid("`logit_scale` must be a number, got null (Command-R uses 0.0625)".to_owned());
        };
        let mut spec = CommonConfig {
            model_type: "cohere",
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
            rope: &self.rope,
            partial_rotary: false,
            original_max_position_embeddings: None,
            tie_word_embeddings: self.tie_word_embeddings,
            pad_token_id: self.pad_token_id,
            labels: &self.labels,
            use_cache: self.use_cache,
        }
        .spec()?;
        let o = &mut spec.options;
        o.norm_kind = NormKind::LayerNorm { bias: false };
        o.qkv_bias = self.attention_bias;
        o.o_bias = self.attention_bias;
        o.qk_layernorm = self.use_qk_norm.then_some(QkLayerNorm::PerHead);
        o.parallel_block = true;
        o.logit_scale = Some(logit_scale);
        o.interleaved_rope = true;
        spec.validate()?;
        Ok(spec)
    }
}

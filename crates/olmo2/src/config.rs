//! `Olmo2Config`, field for field as `transformers`' `configuration_olmo2.Olmo2Config` (5.25).

use autocandle_core::{Activation, AutoRegister, LabelConfig, Result};
use autocandle_decoder::{CommonConfig, DecoderConfig, DecoderSpec, NormStyle, RopeConfig, TokenIds};
use serde::{Deserialize, Serialize};

/// The config of an OLMo-2 model (`Olmo2Config`), with the `transformers` defaults.
///
/// The rope keys (`rope_parameters`, or the older `rope_theta` + `rope_scaling`) are read
/// into [`RopeConfig`]; fields `config.json` may hold that `Olmo2Config` does not declare are
/// ignored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, AutoRegister)]
#[auto(config, model_type = "olmo2")]
#[serde(default)]
pub struct Olmo2Config {
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
    /// Activation of the feed-forward layer (`hidden_act`: `silu`, `gelu`, `gelu_pytorch_tanh`, ...).
    pub hidden_act: Activation,
    /// Longest sequence, in tokens, the model was trained for: the context of the rotary embedding.
    pub max_position_embeddings: usize,
    /// Standard deviation of the initialisation in `transformers`; unused at inference.
    pub initializer_range: f64,
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
    /// `rope_parameters` (or `rope_theta` + `rope_scaling`).
    #[serde(flatten)]
    pub rope: RopeConfig,
    /// Bias on `q_proj`, `k_proj`, `v_proj` and `o_proj`.
    pub attention_bias: bool,
    /// Training only: dropout is a no-op here.
    pub attention_dropout: Option<f64>,
    /// Epsilon added to the mean square in every RMSNorm (the q/k norms too).
    pub rms_norm_eps: f64,
    /// `None` is `hidden_size / num_attention_heads` (`Olmo2Config` does not declare it, but
    /// `transformers` honours one in `config.json`).
    pub head_dim: Option<usize>,
    /// `id2label`, `label2id`, `num_labels`, `problem_type`.
    #[serde(flatten)]
    pub labels: LabelConfig,
}

impl Default for Olmo2Config {
    /// `Olmo2Config()` in `transformers`.
    fn default() -> Self {
        Self {
            vocab_size: 50304,
            hidden_size: 4096,
            intermediate_size: 11008,
            num_hidden_layers: 32,
            num_attention_heads: 32,
            num_key_value_heads: None,
            hidden_act: Activation::Silu,
            max_position_embeddings: 2048,
            initializer_range: 0.02,
            use_cache: true,
            pad_token_id: Some(1),
            bos_token_id: None,
            eos_token_id: Some(TokenIds::One(50279)),
            tie_word_embeddings: false,
            rope: RopeConfig::default(),
            attention_bias: false,
            attention_dropout: Some(0.0),
            rms_norm_eps: 1e-5,
            head_dim: None,
            labels: LabelConfig::default(),
        }
    }
}

impl DecoderConfig for Olmo2Config {
    fn decoder_spec(&self) -> Result<DecoderSpec> {
        let common = CommonConfig {
            model_type: "olmo2",
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
        };
        let mut spec = common.spec()?;
        let o = &mut spec.options;
        o.qkv_bias = self.attention_bias;
        o.o_bias = self.attention_bias;
        o.norm_style = NormStyle::WeightInF32;
        o.qk_norm_full = true;
        o.post_norms = true;
        spec.validate()?;
        Ok(spec)
    }
}

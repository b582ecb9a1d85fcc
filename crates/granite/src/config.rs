//! `GraniteConfig`, field for field as `transformers`' `configuration_granite.GraniteConfig` (5.25).

use autocandle_core::{Activation, AutoRegister, LabelConfig, Result};
use autocandle_decoder::{CommonConfig, DecoderConfig, DecoderSpec, RopeConfig, TokenIds};
use serde::{Deserialize, Serialize};

/// The config of a Granite model (`GraniteConfig`), with the `transformers` defaults.
///
/// The rope keys (`rope_parameters`, or the older `rope_theta` + `rope_scaling`) are read
/// into [`RopeConfig`]; fields `config.json` may hold that `GraniteConfig` does not declare are
/// ignored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, AutoRegister)]
#[auto(config, model_type = "granite")]
#[serde(default)]
pub struct GraniteConfig {
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
    /// Epsilon added to the mean square in every RMSNorm.
    pub rms_norm_eps: f64,
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
    /// Bias on `gate_proj`, `up_proj` and `down_proj`.
    pub mlp_bias: bool,
    /// The token embeddings are multiplied by this.
    pub embedding_multiplier: f64,
    /// The language-model logits are divided by this.
    pub logits_scaling: f64,
    /// The attention and MLP outputs are multiplied by this before their residual add.
    pub residual_multiplier: f64,
    /// The factor of the attention scores (in place of `head_dim ** -0.5`).
    pub attention_multiplier: f64,
    /// `None` is `hidden_size / num_attention_heads` (`GraniteConfig` does not declare it, but
    /// `transformers` honours one in `config.json`).
    pub head_dim: Option<usize>,
    /// `id2label`, `label2id`, `num_labels`, `problem_type`.
    #[serde(flatten)]
    pub labels: LabelConfig,
}

impl Default for GraniteConfig {
    /// `GraniteConfig()` in `transformers`.
    fn default() -> Self {
        Self {
            vocab_size: 32000,
            hidden_size: 4096,
            intermediate_size: 11008,
            num_hidden_layers: 32,
            num_attention_heads: 32,
            num_key_value_heads: None,
            hidden_act: Activation::Silu,
            max_position_embeddings: 2048,
            initializer_range: 0.02,
            rms_norm_eps: 1e-6,
            use_cache: true,
            pad_token_id: None,
            bos_token_id: Some(1),
            eos_token_id: Some(TokenIds::One(2)),
            tie_word_embeddings: false,
            rope: RopeConfig::default(),
            attention_bias: false,
            attention_dropout: Some(0.0),
            mlp_bias: false,
            embedding_multiplier: 1.0,
            logits_scaling: 1.0,
            residual_multiplier: 1.0,
            attention_multiplier: 1.0,
            head_dim: None,
            labels: LabelConfig::default(),
        }
    }
}

impl DecoderConfig for GraniteConfig {
    fn decoder_spec(&self) -> Result<DecoderSpec> {
        let common = CommonConfig {
            model_type: "granite",
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
        o.mlp_bias = self.mlp_bias;
        o.attention_scale = Some(self.attention_multiplier);
        // 1.0 is the identity: leave it out so the plain path runs.
        let unless_one = |v: f64| (v != 1.0).then_some(v);
        o.embedding_multiplier = unless_one(self.embedding_multiplier);
        o.residual_multiplier = unless_one(self.residual_multiplier);
        o.logits_scaling = unless_one(self.logits_scaling);
        spec.validate()?;
        Ok(spec)
    }
}

//! `GemmaConfig`, field for field as `transformers`' `configuration_gemma.GemmaConfig` (5.23).

use autocandle_core::{Activation, AutoRegister, LabelConfig, Result};
use autocandle_decoder::{
    refuse_bidirectional_attention, CommonConfig, DecoderConfig, DecoderSpec, NormStyle, RopeConfig, TokenIds,
};
use serde::{Deserialize, Serialize};

/// The config of a Gemma model (`GemmaConfig`), with the `transformers` defaults (those of
/// gemma-7b). A field `config.json` leaves out takes its default.
///
/// Fields `config.json` may hold that `GemmaConfig` does not declare are ignored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, AutoRegister)]
#[auto(config, model_type = "gemma")]
#[serde(default)]
pub struct GemmaConfig {
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
    /// Number of key/value heads (grouped-query attention); `num_attention_heads` is plain multi-head attention.
    pub num_key_value_heads: usize,
    /// Size of one attention head (not `hidden_size / num_attention_heads` in general).
    pub head_dim: usize,
    /// The MLP activation. The legacy value `gelu` of the first Gemma releases means the tanh
    /// approximation: it reads as `gelu_pytorch_tanh`, as `GemmaConfig.__post_init__` does.
    #[serde(deserialize_with = "legacy_gelu")]
    pub hidden_act: Activation,
    /// Longest sequence, in tokens, the model was trained for: the size of the position table, or the context of the rotary embedding.
    pub max_position_embeddings: usize,
    /// Standard deviation of the initialisation in `transformers`; unused at inference.
    pub initializer_range: f64,
    /// Epsilon added to the mean square in every RMSNorm.
    pub rms_norm_eps: f64,
    /// `transformers`' switch for keeping a key/value cache; generation here always caches, and a forward pass without a cache behaves as `transformers`' does with this value.
    pub use_cache: bool,
    /// Id of the padding token, if the vocabulary has one.
    pub pad_token_id: Option<i64>,
    /// Id, or list of ids, of the end-of-sequence token; generation stops at any of them.
    pub eos_token_id: Option<TokenIds>,
    /// Id of the beginning-of-sequence token, if any.
    pub bos_token_id: Option<i64>,
    /// Whether the LM head shares the token embedding's weight (then a saved model has no `lm_head.weight`).
    pub tie_word_embeddings: bool,
    /// `rope_parameters` (or `rope_theta` + `rope_scaling`).
    #[serde(flatten)]
    pub rope: RopeConfig,
    /// Bias on `q_proj`, `k_proj`, `v_proj` and `o_proj`.
    pub attention_bias: bool,
    /// Training only: dropout is a no-op here.
    pub attention_dropout: f64,
    /// Bidirectional attention (embedding models); only `null`/`false` is supported.
    pub use_bidirectional_attention: Option<bool>,
    /// `id2label`, `label2id`, `num_labels`, `problem_type`.
    #[serde(flatten)]
    pub labels: LabelConfig,
}

impl Default for GemmaConfig {
    /// `GemmaConfig()` in `transformers`: the gemma-7b shape.
    fn default() -> Self {
        Self {
            vocab_size: 256000,
            hidden_size: 3072,
            intermediate_size: 24576,
            num_hidden_layers: 28,
            num_attention_heads: 16,
            num_key_value_heads: 16,
            head_dim: 256,
            hidden_act: Activation::GeluTanh,
            max_position_embeddings: 8192,
            initializer_range: 0.02,
            rms_norm_eps: 1e-6,
            use_cache: true,
            pad_token_id: Some(0),
            eos_token_id: Some(TokenIds::One(1)),
            bos_token_id: Some(2),
            tie_word_embeddings: true,
            rope: RopeConfig::default(),
            attention_bias: false,
            attention_dropout: 0.0,
            use_bidirectional_attention: None,
            labels: LabelConfig::default(),
        }
    }
}

/// `hidden_act`, with the legacy `gelu` read as `gelu_pytorch_tanh`.
fn legacy_gelu<'de, D: serde::Deserializer<'de>>(deserializer: D) -> std::result::Result<Activation, D::Error> {
    match Activation::deserialize(deserializer)? {
        Activation::Gelu => Ok(Activation::GeluTanh),
        other => Ok(other),
    }
}

impl DecoderConfig for GemmaConfig {
    fn decoder_spec(&self) -> Result<DecoderSpec> {
        refuse_bidirectional_attention("gemma", self.use_bidirectional_attention)?;
        let mut spec = CommonConfig {
            model_type: "gemma",
            vocab_size: self.vocab_size,
            hidden_size: self.hidden_size,
            intermediate_size: self.intermediate_size,
            num_hidden_layers: self.num_hidden_layers,
            num_attention_heads: self.num_attention_heads,
            num_key_value_heads: Some(self.num_key_value_heads),
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
        spec.options.norm_style = NormStyle::OnePlusWeight;
        spec.options.scale_embeddings = true;
        Ok(spec)
    }
}

//! `Starcoder2Config`, field for field as `transformers`' `configuration_starcoder2.Starcoder2Config` (5.25).

use autocandle_core::{Activation, AutoRegister, Error, LabelConfig, Result};
use autocandle_decoder::{CommonConfig, DecoderConfig, DecoderSpec, MlpKind, NormKind, RopeConfig, TokenIds};
use serde::{Deserialize, Serialize};

/// The config of a StarCoder2 model (`Starcoder2Config`), with the `transformers` defaults
/// (those of StarCoder2-7B). A field `config.json` leaves out takes its default.
///
/// Fields `config.json` may hold that `Starcoder2Config` does not declare are ignored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, AutoRegister)]
#[auto(config, model_type = "starcoder2")]
#[serde(default)]
pub struct Starcoder2Config {
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
    /// Number of key/value heads (grouped-query attention).
    pub num_key_value_heads: usize,
    /// Activation of the MLP (`gelu_pytorch_tanh`).
    pub hidden_act: Activation,
    /// Longest sequence, in tokens, the model was trained for: the context of the rotary embedding.
    pub max_position_embeddings: usize,
    /// Standard deviation of the initialisation in `transformers`; unused at inference.
    pub initializer_range: f64,
    /// Epsilon of every LayerNorm.
    pub norm_epsilon: f64,
    /// `transformers`' switch for keeping a key/value cache; generation here always caches, and a forward pass without a cache behaves as `transformers`' does with this value.
    pub use_cache: bool,
    /// Id of the beginning-of-sequence token, if any.
    pub bos_token_id: Option<i64>,
    /// Id, or list of ids, of the end-of-sequence token; generation stops at any of them.
    pub eos_token_id: Option<TokenIds>,
    /// Id of the padding token, if the vocabulary has one.
    pub pad_token_id: Option<i64>,
    /// `rope_parameters` (or `rope_theta` + `rope_scaling`).
    #[serde(flatten)]
    pub rope: RopeConfig,
    /// When set, every layer attends to the last `sliding_window` positions only.
    pub sliding_window: Option<usize>,
    /// Training only: dropout is a no-op here.
    pub attention_dropout: f64,
    /// Training only: dropout is a no-op here.
    pub residual_dropout: f64,
    /// Training only: dropout is a no-op here.
    pub embedding_dropout: f64,
    /// Biases on the attention and MLP projections (the LayerNorms always have one).
    pub use_bias: bool,
    /// Whether the LM head shares the token embedding's weight (then a saved model has no `lm_head.weight`).
    pub tie_word_embeddings: bool,
    /// `id2label`, `label2id`, `num_labels`, `problem_type`.
    #[serde(flatten)]
    pub labels: LabelConfig,
}

impl Default for Starcoder2Config {
    /// `Starcoder2Config()` in `transformers`.
    fn default() -> Self {
        Self {
            vocab_size: 49152,
            hidden_size: 3072,
            intermediate_size: 12288,
            num_hidden_layers: 30,
            num_attention_heads: 24,
            num_key_value_heads: 2,
            hidden_act: Activation::GeluTanh,
            max_position_embeddings: 4096,
            initializer_range: 0.018042,
            norm_epsilon: 1e-5,
            use_cache: true,
            bos_token_id: Some(50256),
            eos_token_id: Some(TokenIds::One(50256)),
            pad_token_id: None,
            rope: RopeConfig::default(),
            sliding_window: None,
            attention_dropout: 0.0,
            residual_dropout: 0.0,
            embedding_dropout: 0.0,
            use_bias: true,
            tie_word_embeddings: true,
            labels: LabelConfig::default(),
        }
    }
}

impl DecoderConfig for Starcoder2Config {
    fn decoder_spec(&self) -> Result<DecoderSpec> {
        if !(self.norm_epsilon.is_finite() && self.norm_epsilon >= 0.0) {
            return Err(Error::config(
                "starcoder2",
                format!("`norm_epsilon` must be a finite number >= 0, got {}", self.norm_epsilon),
            ));
        }
        let mut spec = CommonConfig {
            model_type: "starcoder2",
            vocab_size: self.vocab_size,
            hidden_size: self.hidden_size,
            intermediate_size: self.intermediate_size,
            num_hidden_layers: self.num_hidden_layers,
            num_attention_heads: self.num_attention_heads,
            num_key_value_heads: Some(self.num_key_value_heads),
            head_dim: None,
            max_position_embeddings: self.max_position_embeddings,
            rms_norm_eps: self.norm_epsilon,
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
        o.norm_kind = NormKind::LayerNorm { bias: true };
        o.qkv_bias = self.use_bias;
        o.o_bias = self.use_bias;
        o.mlp_bias = self.use_bias;
        o.mlp_kind = MlpKind::Plain { up: "c_fc", down: "c_proj" };
        spec.set_layers(None, self.sliding_window, |_| self.sliding_window.is_some())?;
        Ok(spec)
    }
}

//! `Qwen2Config`, field for field as `transformers`' `configuration_qwen2.Qwen2Config` (5.23).

use autocandle_core::{Activation, AutoRegister, LabelConfig, Result};
use autocandle_decoder::{CommonConfig, DecoderConfig, DecoderSpec, RopeConfig, TokenIds};
use serde::{Deserialize, Serialize};

/// The config of a Qwen2 model (`Qwen2Config`), with the `transformers` defaults (those of
/// Qwen2-7B).
///
/// Fields `config.json` may hold that `Qwen2Config` does not declare are ignored, except
/// `head_dim`, which `transformers` keeps as an attribute and its attention reads.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, AutoRegister)]
#[auto(config, model_type = "qwen2")]
#[serde(default)]
pub struct Qwen2Config {
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
    /// Not declared by `Qwen2Config`; `None` is `hidden_size / num_attention_heads`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub head_dim: Option<usize>,
    /// Activation of the feed-forward layer (`hidden_act`: `silu`, `gelu`, `gelu_pytorch_tanh`, ...).
    pub hidden_act: Activation,
    /// Longest sequence, in tokens, the model was trained for: the size of the position table, or the context of the rotary embedding.
    pub max_position_embeddings: usize,
    /// Standard deviation of the initialisation in `transformers`; unused at inference.
    pub initializer_range: f64,
    /// Epsilon added to the mean square in every RMSNorm.
    pub rms_norm_eps: f64,
    /// `transformers`' switch for keeping a key/value cache; generation here always caches, and a forward pass without a cache behaves as `transformers`' does with this value.
    pub use_cache: bool,
    /// Whether the LM head shares the token embedding's weight (then a saved model has no `lm_head.weight`).
    pub tie_word_embeddings: bool,
    /// `rope_parameters` (or `rope_theta` + `rope_scaling`).
    #[serde(flatten)]
    pub rope: RopeConfig,
    /// Without it `sliding_window` is ignored (`transformers` sets it to `None`).
    pub use_sliding_window: bool,
    /// Width, in tokens, of the attention window of sliding layers; used only with `use_sliding_window`.
    pub sliding_window: Option<usize>,
    /// Without `layer_types`, the layers from this index on use the sliding window.
    pub max_window_layers: usize,
    /// `full_attention` or `sliding_attention` per layer.
    pub layer_types: Option<Vec<String>>,
    /// Training only: dropout is a no-op here.
    pub attention_dropout: f64,
    /// Id of the padding token, if the vocabulary has one.
    pub pad_token_id: Option<i64>,
    /// Id of the beginning-of-sequence token, if any.
    pub bos_token_id: Option<i64>,
    /// Id, or list of ids, of the end-of-sequence token; generation stops at any of them.
    pub eos_token_id: Option<TokenIds>,
    /// `id2label`, `label2id`, `num_labels`, `problem_type`.
    #[serde(flatten)]
    pub labels: LabelConfig,
}

impl Default for Qwen2Config {
    /// `Qwen2Config()` in `transformers`: the Qwen2-7B shape.
    fn default() -> Self {
        Self {
            vocab_size: 151936,
            hidden_size: 4096,
            intermediate_size: 22016,
            num_hidden_layers: 32,
            num_attention_heads: 32,
            num_key_value_heads: Some(32),
            head_dim: None,
            hidden_act: Activation::Silu,
            max_position_embeddings: 32768,
            initializer_range: 0.02,
            rms_norm_eps: 1e-6,
            use_cache: true,
            tie_word_embeddings: false,
            rope: RopeConfig::default(),
            use_sliding_window: false,
            sliding_window: Some(4096),
            max_window_layers: 28,
            layer_types: None,
            attention_dropout: 0.0,
            pad_token_id: None,
            bos_token_id: None,
            eos_token_id: None,
            labels: LabelConfig::default(),
        }
    }
}

impl DecoderConfig for Qwen2Config {
    fn decoder_spec(&self) -> Result<DecoderSpec> {
        let mut spec = CommonConfig {
            model_type: "qwen2",
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
        spec.options.qkv_bias = true;
        let window = self.sliding_window.filter(|_| self.use_sliding_window);
        spec.set_layers(self.layer_types.as_deref(), window, |i| window.is_some() && i >= self.max_window_layers)?;
        Ok(spec)
    }
}

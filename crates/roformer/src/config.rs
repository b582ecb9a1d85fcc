//! `RoFormerConfig`, field for field as `transformers`' `configuration_roformer.RoFormerConfig`
//! (5.25).

use autocandle_core::{Activation, AutoRegister, Error, LabelConfig, Result, TokenIds};
use serde::{Deserialize, Serialize};

/// The config of a RoFormer model (`RoFormerConfig`), with the `transformers` defaults (those
/// of `junnyu/roformer_chinese_base`).
///
/// Fields `config.json` may hold that `RoFormerConfig` does not declare are ignored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, AutoRegister)]
#[auto(config, model_type = "roformer")]
#[serde(default)]
pub struct RoFormerConfig {
    /// Number of tokens in the vocabulary: the rows of the token embedding.
    pub vocab_size: usize,
    /// Width of the token embeddings; `None` is `hidden_size`. When it differs,
    /// `embeddings_project` maps the embeddings to `hidden_size`, and the LM head maps back.
    pub embedding_size: Option<usize>,
    /// Width of the hidden states, `[batch, seq, hidden_size]`.
    pub hidden_size: usize,
    /// Number of transformer blocks.
    pub num_hidden_layers: usize,
    /// Number of attention heads in each block; the head size must be even (rotary pairs).
    pub num_attention_heads: usize,
    /// Width of the feed-forward (MLP) layer inside each block.
    pub intermediate_size: usize,
    /// Activation of the feed-forward layers, of the MLM head transform and of the
    /// sequence classifier.
    pub hidden_act: Activation,
    /// Training only: dropout is a no-op here.
    pub hidden_dropout_prob: f64,
    /// Training only: dropout is a no-op here.
    pub attention_probs_dropout_prob: f64,
    /// Longest sequence: the rows of the sinusoidal rotary table.
    pub max_position_embeddings: usize,
    /// Number of token types (segment ids in `token_type_ids`).
    pub type_vocab_size: usize,
    /// Standard deviation of the initialisation in `transformers`; unused at inference.
    pub initializer_range: f64,
    /// Epsilon added to the variance in every LayerNorm.
    pub layer_norm_eps: f64,
    /// Id of the padding token, if the vocabulary has one.
    pub pad_token_id: Option<i64>,
    /// Id of the beginning-of-sequence token, if any.
    pub bos_token_id: Option<i64>,
    /// Id, or list of ids, of the end-of-sequence token; generation stops at any of them.
    pub eos_token_id: Option<TokenIds>,
    /// The values are rotated too, not only the queries and keys.
    pub rotary_value: bool,
    /// Generation only; autocandle keeps no KV cache for RoFormer.
    pub use_cache: bool,
    /// Causal self-attention (for `RoFormerForCausalLM`).
    pub is_decoder: bool,
    /// Cross-attention layers for an encoder-decoder; they only act on `encoder_hidden_states`,
    /// which autocandle does not take, so their weights are not loaded.
    pub add_cross_attention: bool,
    /// The LM decoder shares the word embedding matrix.
    pub tie_word_embeddings: bool,
    /// `id2label`, `label2id`, `num_labels`, `problem_type`.
    #[serde(flatten)]
    pub labels: LabelConfig,
}

impl Default for RoFormerConfig {
    /// `RoFormerConfig()` in `transformers`.
    fn default() -> Self {
        Self {
            vocab_size: 50000,
            embedding_size: None,
            hidden_size: 768,
            num_hidden_layers: 12,
            num_attention_heads: 12,
            intermediate_size: 3072,
            hidden_act: Activation::Gelu,
            hidden_dropout_prob: 0.1,
            attention_probs_dropout_prob: 0.1,
            max_position_embeddings: 1536,
            type_vocab_size: 2,
            initializer_range: 0.02,
            layer_norm_eps: 1e-12,
            pad_token_id: Some(0),
            bos_token_id: None,
            eos_token_id: None,
            rotary_value: false,
            use_cache: true,
            is_decoder: false,
            add_cross_attention: false,
            tie_word_embeddings: true,
            labels: LabelConfig::default(),
        }
    }
}

impl RoFormerConfig {
    /// The width of the token embeddings (`embedding_size`, else `hidden_size`).
    pub fn embedding_size(&self) -> usize {
        self.embedding_size.unwrap_or(self.hidden_size)
    }

    /// Check what the model needs of the config; called by every constructor.
    pub fn validate(&self) -> Result<()> {
        let invalid = |message: String| Err(Error::config("roformer", message));
        for (name, value) in [
            ("vocab_size", self.vocab_size),
            ("hidden_size", self.hidden_size),
            ("embedding_size", self.embedding_size()),
            ("num_attention_heads", self.num_attention_heads),
            ("intermediate_size", self.intermediate_size),
            ("max_position_embeddings", self.max_position_embeddings),
            ("type_vocab_size", self.type_vocab_size),
        ] {
            if value == 0 {
                return invalid(format!("`{name}` must be at least 1, got 0"));
            }
        }
        if !self.hidden_size.is_multiple_of(self.num_attention_heads) {
            return invalid(format!(
                "`hidden_size` ({}) must be a multiple of `num_attention_heads` ({})",
                self.hidden_size, self.num_attention_heads
            ));
        }
        let head_dim = self.hidden_size / self.num_attention_heads;
        if !head_dim.is_multiple_of(2) {
            return invalid(format!(
                "the head size `hidden_size / num_attention_heads` ({} / {} = {head_dim}) must be even: rotary \
                 position embeddings rotate pairs of dimensions",
                self.hidden_size, self.num_attention_heads
            ));
        }
        if !(self.layer_norm_eps.is_finite() && self.layer_norm_eps >= 0.0) {
            return invalid(format!("`layer_norm_eps` must be a finite number >= 0, got {}", self.layer_norm_eps));
        }
        if self.add_cross_attention && !self.is_decoder {
            return invalid(
                "`add_cross_attention` needs `is_decoder`: cross-attention layers only exist in a decoder".to_owned(),
            );
        }
        Ok(())
    }
}

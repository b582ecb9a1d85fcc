//! `BertConfig`, field for field as `transformers`' `configuration_bert.BertConfig` (5.23).

use autocandle_core::{Activation, AutoRegister, Error, LabelConfig, Result};
use serde::{Deserialize, Serialize};

pub use autocandle_core::TokenIds;

/// The config of a BERT model (`BertConfig`), with the `transformers` defaults
/// (those of `google-bert/bert-base-uncased`).
///
/// Fields `config.json` may hold that `BertConfig` does not declare are ignored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, AutoRegister)]
#[auto(config, model_type = "bert")]
#[serde(default)]
pub struct BertConfig {
    /// Number of tokens in the vocabulary: the rows of the token embedding `[vocab_size, hidden_size]`.
    pub vocab_size: usize,
    /// Width of the hidden states, `[batch, seq, hidden_size]`.
    pub hidden_size: usize,
    /// Number of transformer blocks.
    pub num_hidden_layers: usize,
    /// Number of attention heads in each block (query heads where keys and values have fewer).
    pub num_attention_heads: usize,
    /// Width of the feed-forward (MLP) layer inside each block.
    pub intermediate_size: usize,
    /// Activation of the feed-forward layers and of the MLM head transform.
    pub hidden_act: Activation,
    /// Training only: dropout is a no-op here.
    pub hidden_dropout_prob: f64,
    /// Training only: dropout is a no-op here.
    pub attention_probs_dropout_prob: f64,
    /// Longest sequence, in tokens, the model was trained for: the size of the position table, or the context of the rotary embedding.
    pub max_position_embeddings: usize,
    /// Number of token types (segment ids in `token_type_ids`).
    pub type_vocab_size: usize,
    /// Standard deviation of the initialisation in `transformers`; unused at inference.
    pub initializer_range: f64,
    /// Epsilon added to the variance in every LayerNorm.
    pub layer_norm_eps: f64,
    /// Id of the padding token, if the vocabulary has one.
    pub pad_token_id: Option<i64>,
    /// Only `"absolute"` is supported. `transformers` 5.23 no longer declares this field and
    /// always computes absolute positions, silently dropping the relative-position weights of
    /// checkpoints trained with `relative_key` / `relative_key_query`; autocandle refuses to
    /// load those instead of computing something else than they were trained for.
    pub position_embedding_type: String,
    /// Generation only; autocandle keeps no KV cache for BERT.
    pub use_cache: bool,
    /// Training only: dropout is a no-op here.
    pub classifier_dropout: Option<f64>,
    /// Causal self-attention (for `BertLMHeadModel`).
    pub is_decoder: bool,
    /// Cross-attention layers for an encoder-decoder; they only act on `encoder_hidden_states`,
    /// which autocandle does not take, so their weights are not loaded.
    pub add_cross_attention: bool,
    /// Id of the beginning-of-sequence token, if any.
    pub bos_token_id: Option<i64>,
    /// Id, or list of ids, of the end-of-sequence token; generation stops at any of them.
    pub eos_token_id: Option<TokenIds>,
    /// The MLM decoder shares the word embedding matrix.
    pub tie_word_embeddings: bool,
    /// `id2label`, `label2id`, `num_labels`, `problem_type`.
    #[serde(flatten)]
    pub labels: LabelConfig,
}

impl Default for BertConfig {
    /// `BertConfig()` in `transformers`: the `bert-base-uncased` shape.
    fn default() -> Self {
        Self {
            vocab_size: 30522,
            hidden_size: 768,
            num_hidden_layers: 12,
            num_attention_heads: 12,
            intermediate_size: 3072,
            hidden_act: Activation::Gelu,
            hidden_dropout_prob: 0.1,
            attention_probs_dropout_prob: 0.1,
            max_position_embeddings: 512,
            type_vocab_size: 2,
            initializer_range: 0.02,
            layer_norm_eps: 1e-12,
            pad_token_id: Some(0),
            position_embedding_type: "absolute".to_owned(),
            use_cache: true,
            classifier_dropout: None,
            is_decoder: false,
            add_cross_attention: false,
            bos_token_id: None,
            eos_token_id: None,
            tie_word_embeddings: true,
            labels: LabelConfig::default(),
        }
    }
}

impl BertConfig {
    /// Check what the model needs of the config; called by every constructor.
    pub fn validate(&self) -> Result<()> {
        self.validate_as("bert")
    }

    /// [`BertConfig::validate`] for an architecture built on the BERT encoder (RoBERTa): the
    /// errors name `model_type`, the type the user loaded.
    pub fn validate_as(&self, model_type: &str) -> Result<()> {
        let invalid = |message: String| Err(Error::config(model_type, message));
        for (name, value) in [
            ("vocab_size", self.vocab_size),
            ("hidden_size", self.hidden_size),
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
        if !(self.layer_norm_eps.is_finite() && self.layer_norm_eps >= 0.0) {
            return invalid(format!("`layer_norm_eps` must be a finite number >= 0, got {}", self.layer_norm_eps));
        }
        if self.add_cross_attention && !self.is_decoder {
            return invalid(
                "`add_cross_attention` needs `is_decoder`: cross-attention layers only exist in a decoder".to_owned(),
            );
        }
        if self.position_embedding_type != "absolute" {
            let name = if model_type == "bert" { "BERT".to_owned() } else { format!("`{model_type}`") };
            return Err(Error::Unsupported(format!(
                "{name} with `position_embedding_type` `{}`: only `absolute` is supported \
                 (transformers 5.23 dropped relative position embeddings as well)",
                self.position_embedding_type
            )));
        }
        Ok(())
    }

    /// Size of one attention head.
    pub fn head_dim(&self) -> usize {
        self.hidden_size / self.num_attention_heads.max(1)
    }
}

//! `MPNetConfig`, field for field as `transformers`' `configuration_mpnet.MPNetConfig` (5.25).

use autocandle_core::{Activation, AutoRegister, Error, LabelConfig, Result};
use serde::{Deserialize, Serialize};

pub use autocandle_core::TokenIds;

/// The config of an MPNet model (`MPNetConfig`), with the `transformers` defaults (those of
/// `microsoft/mpnet-base`).
///
/// Fields `config.json` may hold that `MPNetConfig` does not declare are ignored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, AutoRegister)]
#[auto(config, model_type = "mpnet")]
#[serde(default)]
pub struct MPNetConfig {
    /// Number of tokens in the vocabulary: the rows of the token embedding `[vocab_size, hidden_size]`.
    pub vocab_size: usize,
    /// Width of the hidden states, `[batch, seq, hidden_size]`.
    pub hidden_size: usize,
    /// Number of transformer blocks.
    pub num_hidden_layers: usize,
    /// Number of attention heads in each block.
    pub num_attention_heads: usize,
    /// Width of the feed-forward (MLP) layer inside each block.
    pub intermediate_size: usize,
    /// Activation of the feed-forward layers (the LM head always uses exact GELU).
    pub hidden_act: Activation,
    /// Training only: dropout is a no-op here.
    pub hidden_dropout_prob: f64,
    /// Training only: dropout is a no-op here.
    pub attention_probs_dropout_prob: f64,
    /// The size of the position table. Positions start after the padding row 1 (2 for the
    /// first token), so a sequence may hold `max_position_embeddings - 2` tokens (514 give 512).
    pub max_position_embeddings: usize,
    /// Standard deviation of the initialisation in `transformers`; unused at inference.
    pub initializer_range: f64,
    /// Epsilon added to the variance in every LayerNorm.
    pub layer_norm_eps: f64,
    /// The rows of `encoder.relative_attention_bias`. `transformers` always buckets relative
    /// positions into 32 buckets (its `compute_position_bias` never passes this value on), so
    /// it must be at least 32; rows past 32 are never read.
    pub relative_attention_num_buckets: usize,
    /// Id of the padding token (the tokenizer's; positions are counted from row 1 whatever
    /// this says, as in `modeling_mpnet`).
    pub pad_token_id: Option<i64>,
    /// Id of the beginning-of-sequence token, if any.
    pub bos_token_id: Option<i64>,
    /// Id, or list of ids, of the end-of-sequence token.
    pub eos_token_id: Option<TokenIds>,
    /// The MLM decoder shares the word embedding matrix.
    pub tie_word_embeddings: bool,
    /// `id2label`, `label2id`, `num_labels`, `problem_type`.
    #[serde(flatten)]
    pub labels: LabelConfig,
}

impl Default for MPNetConfig {
    /// `MPNetConfig()` in `transformers`: the `mpnet-base` shape.
    fn default() -> Self {
        Self {
            vocab_size: 30527,
            hidden_size: 768,
            num_hidden_layers: 12,
            num_attention_heads: 12,
            intermediate_size: 3072,
            hidden_act: Activation::Gelu,
            hidden_dropout_prob: 0.1,
            attention_probs_dropout_prob: 0.1,
            max_position_embeddings: 512,
            initializer_range: 0.02,
            layer_norm_eps: 1e-12,
            relative_attention_num_buckets: 32,
            pad_token_id: Some(1),
            bos_token_id: Some(0),
            eos_token_id: Some(TokenIds::One(2)),
            tie_word_embeddings: true,
            labels: LabelConfig::default(),
        }
    }
}

impl MPNetConfig {
    /// The padding row positions are counted from (`MPNetEmbeddings.padding_idx`, fixed).
    pub const PADDING_IDX: u32 = 1;
    /// The buckets `transformers` sorts relative positions into (`num_buckets=32`).
    pub const NUM_BUCKETS: usize = 32;

    /// Check what the model needs of the config; called by every constructor.
    pub fn validate(&self) -> Result<()> {
        let invalid = |message: String| Err(Error::config("mpnet", message));
        for (name, value) in [
            ("vocab_size", self.vocab_size),
            ("hidden_size", self.hidden_size),
            ("num_attention_heads", self.num_attention_heads),
            ("intermediate_size", self.intermediate_size),
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
        if self.max_position_embeddings < 3 {
            return invalid(format!(
                "`max_position_embeddings` ({}) must be at least 3: positions start after the padding row 1",
                self.max_position_embeddings
            ));
        }
        if self.vocab_size <= Self::PADDING_IDX as usize {
            return invalid(format!(
                "`vocab_size` ({}) must be at least 2: MPNet's padding token is row 1 of the word embeddings",
                self.vocab_size
            ));
        }
        if self.relative_attention_num_buckets < Self::NUM_BUCKETS {
            return invalid(format!(
                "`relative_attention_num_buckets` ({}) must be at least {}: MPNet sorts relative positions into \
                 {} buckets whatever this says, and transformers fails on a smaller table too",
                self.relative_attention_num_buckets,
                Self::NUM_BUCKETS,
                Self::NUM_BUCKETS
            ));
        }
        if !(self.layer_norm_eps.is_finite() && self.layer_norm_eps >= 0.0) {
            return invalid(format!("`layer_norm_eps` must be a finite number >= 0, got {}", self.layer_norm_eps));
        }
        Ok(())
    }

    /// The most tokens a sequence may hold when positions are counted from the padding row.
    pub fn max_tokens(&self) -> usize {
        self.max_position_embeddings.saturating_sub(Self::PADDING_IDX as usize + 1)
    }
}

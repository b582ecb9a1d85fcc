//! `DistilBertConfig`, field for field as `transformers`'
//! `configuration_distilbert.DistilBertConfig` (5.23).

use autocandle_core::{Activation, AutoRegister, Error, LabelConfig, Result};
use serde::Serialize;

pub use autocandle_core::TokenIds;

autocandle_core::config_with_attribute_map! {
    // `DistilBertConfig.attribute_map`: the common names `transformers` accepts for its own.
    attribute_map: [
        ("hidden_size", "dim"),
        ("num_attention_heads", "n_heads"),
        ("num_hidden_layers", "n_layers"),
    ];
/// The config of a DistilBERT model (`DistilBertConfig`), with the `transformers` defaults
/// (those of `distilbert/distilbert-base-uncased`).
///
/// `transformers`' `attribute_map` names are accepted when reading, and win over the
/// DistilBERT names as they do there: `hidden_size` for `dim`, `num_attention_heads` for
/// `n_heads` and `num_hidden_layers` for `n_layers`. Fields `config.json` may hold that
/// `DistilBertConfig` does not declare are ignored.
#[derive(Debug, Clone, PartialEq, Serialize, AutoRegister)]
#[auto(config, model_type = "distilbert")]
#[serde(default)]
pub struct DistilBertConfig {
    /// Number of tokens in the vocabulary: the rows of `word_embeddings`, `[vocab_size, dim]`.
    pub vocab_size: usize,
    /// Longest sequence, in tokens: the rows of `position_embeddings`.
    pub max_position_embeddings: usize,
    /// Fixed sinusoidal position embeddings instead of learned ones. They are still a weight
    /// of the checkpoint, which wins when present (as in `transformers`); a model built
    /// without weights gets the sinusoidal table.
    pub sinusoidal_pos_embds: bool,
    /// The number of transformer blocks (`num_hidden_layers`).
    pub n_layers: usize,
    /// The number of attention heads (`num_attention_heads`).
    pub n_heads: usize,
    /// The hidden size (`hidden_size`).
    pub dim: usize,
    /// The inner size of the feed-forward blocks.
    pub hidden_dim: usize,
    /// Training only: dropout is a no-op here.
    pub dropout: f64,
    /// Training only: dropout is a no-op here.
    pub attention_dropout: f64,
    /// Activation of the feed-forward blocks and of the masked LM head.
    pub activation: Activation,
    /// Standard deviation of the initialisation in `transformers`; unused at inference.
    pub initializer_range: f64,
    /// Training only: dropout is a no-op here.
    pub qa_dropout: f64,
    /// Training only: dropout is a no-op here.
    pub seq_classif_dropout: f64,
    /// Id of the padding token.
    pub pad_token_id: Option<i64>,
    /// Id, or list of ids, of the end-of-sequence token; kept for round trips (DistilBERT does not generate).
    pub eos_token_id: Option<TokenIds>,
    /// Id of the beginning-of-sequence token; kept for round trips.
    pub bos_token_id: Option<i64>,
    /// The masked LM's `vocab_projector` shares the word embedding matrix.
    pub tie_word_embeddings: bool,
    /// `id2label`, `label2id`, `num_labels`, `problem_type`.
    #[serde(flatten)]
    pub labels: LabelConfig,
}
}

impl Default for DistilBertConfig {
    /// `DistilBertConfig()` in `transformers`: the `distilbert-base-uncased` shape.
    fn default() -> Self {
        Self {
            vocab_size: 30522,
            max_position_embeddings: 512,
            sinusoidal_pos_embds: false,
            n_layers: 6,
            n_heads: 12,
            dim: 768,
            hidden_dim: 4 * 768,
            dropout: 0.1,
            attention_dropout: 0.1,
            activation: Activation::Gelu,
            initializer_range: 0.02,
            qa_dropout: 0.1,
            seq_classif_dropout: 0.2,
            pad_token_id: Some(0),
            eos_token_id: None,
            bos_token_id: None,
            tie_word_embeddings: true,
            labels: LabelConfig::default(),
        }
    }
}

impl DistilBertConfig {
    /// The LayerNorm epsilon, fixed in `modeling_distilbert` (not a config field).
    pub const LAYER_NORM_EPS: f64 = 1e-12;

    /// Check what the model needs of the config; called by every constructor.
    pub fn validate(&self) -> Result<()> {
        let invalid = |message: String| Err(Error::config("distilbert", message));
        for (name, value) in [
            ("vocab_size", self.vocab_size),
            ("dim", self.dim),
            ("n_heads", self.n_heads),
            ("hidden_dim", self.hidden_dim),
            ("max_position_embeddings", self.max_position_embeddings),
        ] {
            if value == 0 {
                return invalid(format!("`{name}` must be at least 1, got 0"));
            }
        }
        if !self.dim.is_multiple_of(self.n_heads) {
            return invalid(format!("`n_heads` ({}) must divide `dim` ({}) evenly", self.n_heads, self.dim));
        }
        Ok(())
    }
}

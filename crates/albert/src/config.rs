//! `AlbertConfig`, field for field as `transformers`' `configuration_albert.AlbertConfig` (5.25).

use autocandle_bert::BertConfig;
use autocandle_core::{Activation, AutoRegister, Error, LabelConfig, Result};
use serde::{Deserialize, Serialize};

pub use autocandle_core::TokenIds;

/// The config of an ALBERT model (`AlbertConfig`), with the `transformers` defaults (those of
/// `albert/albert-xxlarge-v2`).
///
/// Fields `config.json` may hold that `AlbertConfig` does not declare are ignored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, AutoRegister)]
#[auto(config, model_type = "albert")]
#[serde(default)]
pub struct AlbertConfig {
    /// Number of tokens in the vocabulary: the rows of the token embedding `[vocab_size, embedding_size]`.
    pub vocab_size: usize,
    /// Width of the (factorised) embeddings; `encoder.embedding_hidden_mapping_in` maps them
    /// to `hidden_size`.
    pub embedding_size: usize,
    /// Width of the hidden states, `[batch, seq, hidden_size]`.
    pub hidden_size: usize,
    /// Number of layers applied (each one a whole layer group).
    pub num_hidden_layers: usize,
    /// Number of layer groups whose weights the layers share: layer `i` runs group
    /// `int(i / (num_hidden_layers / num_hidden_groups))`.
    pub num_hidden_groups: usize,
    /// Number of attention heads in each block.
    pub num_attention_heads: usize,
    /// Width of the feed-forward (MLP) layer inside each block.
    pub intermediate_size: usize,
    /// Number of blocks in each layer group, applied in turn.
    pub inner_group_num: usize,
    /// Activation of the feed-forward layers and of the MLM head.
    pub hidden_act: Activation,
    /// Training only: dropout is a no-op here.
    pub hidden_dropout_prob: f64,
    /// Training only: dropout is a no-op here.
    pub attention_probs_dropout_prob: f64,
    /// Longest sequence, in tokens: the size of the position table.
    pub max_position_embeddings: usize,
    /// Number of token types (segment ids in `token_type_ids`).
    pub type_vocab_size: usize,
    /// Standard deviation of the initialisation in `transformers`; unused at inference.
    pub initializer_range: f64,
    /// Epsilon added to the variance in every LayerNorm.
    pub layer_norm_eps: f64,
    /// Training only: dropout is a no-op here.
    pub classifier_dropout_prob: Option<f64>,
    /// Id of the padding token, if the vocabulary has one.
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

impl Default for AlbertConfig {
    /// `AlbertConfig()` in `transformers`: the `albert-xxlarge` shape.
    fn default() -> Self {
        Self {
            vocab_size: 30000,
            embedding_size: 128,
            hidden_size: 4096,
            num_hidden_layers: 12,
            num_hidden_groups: 1,
            num_attention_heads: 64,
            intermediate_size: 16384,
            inner_group_num: 1,
            hidden_act: Activation::GeluTanh,
            hidden_dropout_prob: 0.0,
            attention_probs_dropout_prob: 0.0,
            max_position_embeddings: 512,
            type_vocab_size: 2,
            initializer_range: 0.02,
            layer_norm_eps: 1e-12,
            classifier_dropout_prob: Some(0.1),
            pad_token_id: Some(0),
            bos_token_id: Some(2),
            eos_token_id: Some(TokenIds::One(3)),
            tie_word_embeddings: true,
            labels: LabelConfig::default(),
        }
    }
}

impl AlbertConfig {
    /// Check what the model needs of the config; called by every constructor.
    pub fn validate(&self) -> Result<()> {
        let invalid = |message: String| Err(Error::config("albert", message));
        for (name, value) in [("embedding_size", self.embedding_size), ("num_hidden_groups", self.num_hidden_groups)] {
            if value == 0 {
                return invalid(format!("`{name}` must be at least 1, got 0"));
            }
        }
        if self.inner_group_num == 0 && self.num_hidden_layers > 0 {
            return invalid(
                "`inner_group_num` must be at least 1: a layer group without layers would leave the hidden states \
                 as the embeddings"
                    .to_owned(),
            );
        }
        self.bert_config().validate_as("albert")
    }

    /// The group layer `layer` runs, as `AlbertTransformer`: `int(i / (L / G))` in floating
    /// point.
    pub fn group_of(&self, layer: usize) -> usize {
        let per_group = self.num_hidden_layers as f64 / self.num_hidden_groups.max(1) as f64;
        ((layer as f64 / per_group) as usize).min(self.num_hidden_groups.saturating_sub(1))
    }

    /// The BERT config of one block (`hidden_size` wide).
    pub fn bert_config(&self) -> BertConfig {
        BertConfig {
            vocab_size: self.vocab_size,
            hidden_size: self.hidden_size,
            num_hidden_layers: self.num_hidden_layers,
            num_attention_heads: self.num_attention_heads,
            intermediate_size: self.intermediate_size,
            hidden_act: self.hidden_act,
            hidden_dropout_prob: self.hidden_dropout_prob,
            attention_probs_dropout_prob: self.attention_probs_dropout_prob,
            max_position_embeddings: self.max_position_embeddings,
            type_vocab_size: self.type_vocab_size,
            initializer_range: self.initializer_range,
            layer_norm_eps: self.layer_norm_eps,
            pad_token_id: self.pad_token_id,
            position_embedding_type: "absolute".to_owned(),
            use_cache: false,
            classifier_dropout: self.classifier_dropout_prob,
            is_decoder: false,
            add_cross_attention: false,
            bos_token_id: self.bos_token_id,
            eos_token_id: self.eos_token_id.clone(),
            tie_word_embeddings: self.tie_word_embeddings,
            labels: self.labels.clone(),
        }
    }

    /// The BERT config of the embeddings (`embedding_size` wide).
    pub fn embedding_config(&self) -> BertConfig {
        BertConfig { hidden_size: self.embedding_size, ..self.bert_config() }
    }
}

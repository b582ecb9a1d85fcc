//! `ElectraConfig`, field for field as `transformers`' `configuration_electra.ElectraConfig`
//! (5.25), and the `summary_*` fields `ElectraSequenceSummary` reads.

use autocandle_bert::BertConfig;
use autocandle_core::{Activation, AutoRegister, Error, LabelConfig, Result};
use serde::{Deserialize, Serialize};

pub use autocandle_core::TokenIds;

/// The config of an ELECTRA model (`ElectraConfig`), with the `transformers` defaults (those
/// of `google/electra-small-discriminator`).
///
/// Fields `config.json` may hold that `ElectraConfig` does not declare are ignored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, AutoRegister)]
#[auto(config, model_type = "electra")]
#[serde(default)]
pub struct ElectraConfig {
    /// Number of tokens in the vocabulary: the rows of the token embedding `[vocab_size, embedding_size]`.
    pub vocab_size: usize,
    /// Width of the embeddings; projected to `hidden_size` by `embeddings_project` when they differ.
    pub embedding_size: usize,
    /// Width of the hidden states, `[batch, seq, hidden_size]`.
    pub hidden_size: usize,
    /// Number of transformer blocks.
    pub num_hidden_layers: usize,
    /// Number of attention heads in each block.
    pub num_attention_heads: usize,
    /// Width of the feed-forward (MLP) layer inside each block.
    pub intermediate_size: usize,
    /// Activation of the feed-forward layers and of the discriminator head (the generator
    /// head and the classifier always use exact GELU).
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
    /// How `ElectraForMultipleChoice` summarises a sequence: `first` (the first token),
    /// `last` (the last position, padding or not), `mean` (every position, padding included),
    /// `cls_index` (the last position when no index is given, as here); `attn` is not
    /// implemented in `transformers` either.
    pub summary_type: String,
    /// A linear projection after the summary.
    pub summary_use_proj: bool,
    /// The projection outputs `num_labels` values instead of `hidden_size` (not a declared
    /// field of `ElectraConfig`; read when a config holds it, as `transformers` does).
    pub summary_proj_to_labels: bool,
    /// The activation after the projection; `None` (or an empty name) is the identity.
    pub summary_activation: Option<String>,
    /// Training only: dropout is a no-op here.
    pub summary_last_dropout: f64,
    /// Training only: dropout is a no-op here (read when a config holds it).
    pub summary_first_dropout: f64,
    /// Id of the padding token, if the vocabulary has one.
    pub pad_token_id: Option<i64>,
    /// Generation only; autocandle keeps no KV cache for ELECTRA.
    pub use_cache: bool,
    /// Training only: dropout is a no-op here.
    pub classifier_dropout: Option<f64>,
    /// Causal self-attention (for `ElectraForCausalLM`).
    pub is_decoder: bool,
    /// Cross-attention layers for an encoder-decoder; they only act on
    /// `encoder_hidden_states`, which autocandle does not take, so they are not loaded.
    pub add_cross_attention: bool,
    /// Id of the beginning-of-sequence token, if any.
    pub bos_token_id: Option<i64>,
    /// Id, or list of ids, of the end-of-sequence token; generation stops at any of them.
    pub eos_token_id: Option<TokenIds>,
    /// The generator's `generator_lm_head` shares the word embedding matrix.
    pub tie_word_embeddings: bool,
    /// `id2label`, `label2id`, `num_labels`, `problem_type`.
    #[serde(flatten)]
    pub labels: LabelConfig,
}

impl Default for ElectraConfig {
    /// `ElectraConfig()` in `transformers`.
    fn default() -> Self {
        Self {
            vocab_size: 30522,
            embedding_size: 128,
            hidden_size: 256,
            num_hidden_layers: 12,
            num_attention_heads: 4,
            intermediate_size: 1024,
            hidden_act: Activation::Gelu,
            hidden_dropout_prob: 0.1,
            attention_probs_dropout_prob: 0.1,
            max_position_embeddings: 512,
            type_vocab_size: 2,
            initializer_range: 0.02,
            layer_norm_eps: 1e-12,
            summary_type: "first".to_owned(),
            summary_use_proj: true,
            summary_proj_to_labels: false,
            summary_activation: Some("gelu".to_owned()),
            summary_last_dropout: 0.1,
            summary_first_dropout: 0.0,
            pad_token_id: Some(0),
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

/// How [`ElectraConfig::summary_type`] picks one vector per sequence.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SummaryType {
    /// The first position.
    First,
    /// The last position (`last`, and `cls_index` without an index).
    Last,
    /// The mean over every position.
    Mean,
}

impl ElectraConfig {
    /// Check what the model needs of the config; called by every constructor.
    pub fn validate(&self) -> Result<()> {
        let invalid = |message: String| Err(Error::config("electra", message));
        if self.embedding_size == 0 {
            return invalid("`embedding_size` must be at least 1, got 0".to_owned());
        }
        self.bert_config().validate_as("electra")?;
        self.summary()?;
        self.summary_activation()?;
        Ok(())
    }

    /// The summary of `ElectraSequenceSummary`; an error for `attn` or an unknown name.
    pub fn summary(&self) -> Result<SummaryType> {
        match self.summary_type.as_str() {
            "first" => Ok(SummaryType::First),
            "last" | "cls_index" => Ok(SummaryType::Last),
            "mean" => Ok(SummaryType::Mean),
            other => Err(Error::config(
                "electra",
                format!(
                    "`summary_type` `{other}` is not supported: use `first`, `last`, `mean` or `cls_index` \
                     (transformers does not implement `attn` either)"
                ),
            )),
        }
    }

    /// The activation after the summary projection; `None` is the identity.
    pub fn summary_activation(&self) -> Result<Option<Activation>> {
        match self.summary_activation.as_deref() {
            None | Some("") => Ok(None),
            Some(name) => Activation::from_name(name).map(Some),
        }
    }

    /// The BERT config of the layer stack (`hidden_size` wide).
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
            use_cache: self.use_cache,
            classifier_dropout: self.classifier_dropout,
            is_decoder: self.is_decoder,
            add_cross_attention: self.add_cross_attention,
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

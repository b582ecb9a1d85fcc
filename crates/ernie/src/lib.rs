//! ERNIE for autocandle, after `transformers`' `modeling_ernie` (5.25): [`ErnieConfig`] with
//! [`ErnieModel`], [`ErnieForPreTraining`], [`ErnieForCausalLM`], [`ErnieForMaskedLM`],
//! [`ErnieForNextSentencePrediction`], [`ErnieForSequenceClassification`],
//! [`ErnieForMultipleChoice`], [`ErnieForTokenClassification`] and
//! [`ErnieForQuestionAnswering`].
//!
//! The network and the heads are BERT's (`autocandle-bert`; `modular_ernie` subclasses the
//! BERT modules), with the base model under `ernie.` and one switch: with `use_task_id` the
//! embeddings add `embeddings.task_type_embeddings` of the task type ids before their
//! LayerNorm. autocandle's inputs have no `task_type_ids`, so every token is of task type 0,
//! what `transformers` uses when none are given (row 0 is added to every embedding). The
//! pretraining head is BERT's: masked LM and next sentence prediction.
//!
//! Inference only: dropout is a no-op; there is no KV cache, no `inputs_embeds` and no
//! cross-attention (`encoder_hidden_states`).

#![warn(missing_docs)]

use autocandle_bert::{BertConfig, BertVariant};
use autocandle_core::{Activation, AutoRegister, LabelConfig, TokenIds};
use serde::{Deserialize, Serialize};

/// The config of an ERNIE model (`ErnieConfig`), field for field, with the `transformers`
/// defaults (BERT's, and task type embeddings off).
///
/// Fields `config.json` may hold that `ErnieConfig` does not declare are ignored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, AutoRegister)]
#[auto(config, model_type = "ernie")]
#[serde(default)]
pub struct ErnieConfig {
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
    /// Activation of the feed-forward layers and of the MLM head transform.
    pub hidden_act: Activation,
    /// Training only: dropout is a no-op here.
    pub hidden_dropout_prob: f64,
    /// Training only: dropout is a no-op here.
    pub attention_probs_dropout_prob: f64,
    /// The size of the position table.
    pub max_position_embeddings: usize,
    /// Number of token types (segment ids in `token_type_ids`).
    pub type_vocab_size: usize,
    /// Number of task types: the rows of `embeddings.task_type_embeddings` (with `use_task_id`).
    pub task_type_vocab_size: usize,
    /// The embeddings add the task type embedding (of task type 0: autocandle takes no
    /// `task_type_ids`, and `transformers` uses zeros when none are given).
    pub use_task_id: bool,
    /// Standard deviation of the initialisation in `transformers`; unused at inference.
    pub initializer_range: f64,
    /// Epsilon added to the variance in every LayerNorm.
    pub layer_norm_eps: f64,
    /// Id of the padding token, if the vocabulary has one.
    pub pad_token_id: Option<i64>,
    /// Generation only; autocandle keeps no KV cache for ERNIE.
    pub use_cache: bool,
    /// Training only: dropout is a no-op here.
    pub classifier_dropout: Option<f64>,
    /// Causal self-attention (for `ErnieForCausalLM`).
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

impl Default for ErnieConfig {
    /// `ErnieConfig()` in `transformers`.
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
            task_type_vocab_size: 3,
            use_task_id: false,
            initializer_range: 0.02,
            layer_norm_eps: 1e-12,
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

impl ErnieConfig {
    /// The BERT config with the same values, which builds the network.
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

    /// BERT's network, with the task type embeddings when `use_task_id`.
    pub fn variant(&self) -> BertVariant {
        BertVariant {
            task_type_vocab_size: self.use_task_id.then_some(self.task_type_vocab_size),
            ..BertVariant::default()
        }
    }
}

/// BERT's heads with the base model under `ernie`, which `autocandle_core::register_heads!`
/// builds the registered types from. Not public API.
#[doc(hidden)]
pub mod __heads {
    use autocandle_bert::{BertHead, BertSpec};
    use autocandle_core::Result;
    use candle_nn::VarBuilder;

    pub use autocandle_bert::__heads::{
        Base, CausalLm, MaskedLm, MultipleChoice, NextSentencePrediction, PreTraining, QuestionAnswering,
        SequenceClassification, TokenClassification,
    };

    use crate::ErnieConfig;

    /// Check `config` and load the head `H` as `class`, its base model under `prefix`.
    pub fn load<H: BertHead>(
        vb: VarBuilder<'_>,
        config: &ErnieConfig,
        prefix: &'static str,
        class: &'static str,
    ) -> Result<H> {
        let spec = BertSpec::for_model_type(&config.bert_config(), "ernie", config.variant(), prefix)?;
        H::load(vb, &spec, class)
    }
}

autocandle_core::register_heads! {
    family: crate, config: ErnieConfig, prefix: "ernie";
    base: ErnieModel;
    pretraining: ErnieForPreTraining;
    causal_lm: ErnieForCausalLM;
    masked_lm: ErnieForMaskedLM;
    next_sentence_prediction: ErnieForNextSentencePrediction;
    sequence_classification: ErnieForSequenceClassification;
    multiple_choice: ErnieForMultipleChoice;
    token_classification: ErnieForTokenClassification;
    /// Needs `num_labels` = 2, as `transformers`.
    question_answering: ErnieForQuestionAnswering;
}

#[cfg(test)]
mod tests;

//! Megatron-BERT for autocandle, after `transformers`' `modeling_megatron_bert` (5.25):
//! [`MegatronBertConfig`] with [`MegatronBertModel`], [`MegatronBertForPreTraining`],
//! [`MegatronBertForCausalLM`], [`MegatronBertForMaskedLM`],
//! [`MegatronBertForNextSentencePrediction`], [`MegatronBertForSequenceClassification`],
//! [`MegatronBertForMultipleChoice`], [`MegatronBertForTokenClassification`] and
//! [`MegatronBertForQuestionAnswering`].
//!
//! The network is BERT's (`autocandle-bert`) with pre-LayerNorm layers
//! ([`BertVariant::megatron`](autocandle_bert::BertVariant)):
//!
//! - no LayerNorm after the embeddings;
//! - each layer is `h = x + attention.output.dense(attention(attention.ln(x)))`, then
//!   `h + output.dense(act(intermediate.dense(ln(h))))`;
//! - a final `encoder.ln` after the last layer.
//!
//! The heads are BERT's, under the same names (`bert.`, `cls.predictions`,
//! `cls.seq_relationship`, `classifier` on the pooled output, `qa_outputs`), and so is the
//! pretraining head: masked LM and next sentence prediction.
//!
//! Inference only: dropout is a no-op; there is no KV cache, no `inputs_embeds` and no
//! cross-attention (`encoder_hidden_states`).

#![warn(missing_docs)]

use autocandle_bert::BertConfig;
use autocandle_core::{Activation, AutoRegister, LabelConfig, TokenIds};
use serde::{Deserialize, Serialize};

/// The config of a Megatron-BERT model (`MegatronBertConfig`), field for field, with the
/// `transformers` defaults (those of `nvidia/megatron-bert-cased-345m`).
///
/// Fields `config.json` may hold that `MegatronBertConfig` does not declare are ignored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, AutoRegister)]
#[auto(config, model_type = "megatron-bert")]
#[serde(default)]
pub struct MegatronBertConfig {
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
    /// Generation only; autocandle keeps no KV cache for Megatron-BERT.
    pub use_cache: bool,
    /// Causal self-attention (for `MegatronBertForCausalLM`).
    pub is_decoder: bool,
    /// Cross-attention layers for an encoder-decoder; they only act on `encoder_hidden_states`,
    /// which autocandle does not take, so their weights are not loaded.
    pub add_cross_attention: bool,
    /// The MLM decoder shares the word embedding matrix.
    pub tie_word_embeddings: bool,
    /// `id2label`, `label2id`, `num_labels`, `problem_type`.
    #[serde(flatten)]
    pub labels: LabelConfig,
}

impl Default for MegatronBertConfig {
    /// `MegatronBertConfig()` in `transformers`.
    fn default() -> Self {
        Self {
            vocab_size: 29056,
            hidden_size: 1024,
            num_hidden_layers: 24,
            num_attention_heads: 16,
            intermediate_size: 4096,
            hidden_act: Activation::Gelu,
            hidden_dropout_prob: 0.1,
            attention_probs_dropout_prob: 0.1,
            max_position_embeddings: 512,
            type_vocab_size: 2,
            initializer_range: 0.02,
            layer_norm_eps: 1e-12,
            pad_token_id: Some(0),
            bos_token_id: None,
            eos_token_id: None,
            use_cache: true,
            is_decoder: false,
            add_cross_attention: false,
            tie_word_embeddings: true,
            labels: LabelConfig::default(),
        }
    }
}

impl MegatronBertConfig {
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
            classifier_dropout: None,
            is_decoder: self.is_decoder,
            add_cross_attention: self.add_cross_attention,
            bos_token_id: self.bos_token_id,
            eos_token_id: self.eos_token_id.clone(),
            tie_word_embeddings: self.tie_word_embeddings,
            labels: self.labels.clone(),
        }
    }
}

/// BERT's heads over the pre-LayerNorm network, which `autocandle_core::register_heads!`
/// builds the registered types from. Not public API.
#[doc(hidden)]
pub mod __heads {
    use autocandle_bert::{BertHead, BertSpec, BertVariant};
    use autocandle_core::Result;
    use candle_nn::VarBuilder;

    pub use autocandle_bert::__heads::{
        Base, CausalLm, MaskedLm, MultipleChoice, NextSentencePrediction, PreTraining, QuestionAnswering,
        SequenceClassification, TokenClassification,
    };

    use crate::MegatronBertConfig;

    /// Check `config` and load the head `H` as `class`, its base model under `prefix`.
    pub fn load<H: BertHead>(
        vb: VarBuilder<'_>,
        config: &MegatronBertConfig,
        prefix: &'static str,
        class: &'static str,
    ) -> Result<H> {
        let spec = BertSpec::for_model_type(&config.bert_config(), "megatron-bert", BertVariant::megatron(), prefix)?;
        H::load(vb, &spec, class)
    }
}

autocandle_core::register_heads! {
    family: crate, config: MegatronBertConfig, prefix: "bert";
    base: MegatronBertModel;
    pretraining: MegatronBertForPreTraining;
    causal_lm: MegatronBertForCausalLM;
    masked_lm: MegatronBertForMaskedLM;
    next_sentence_prediction: MegatronBertForNextSentencePrediction;
    sequence_classification: MegatronBertForSequenceClassification;
    multiple_choice: MegatronBertForMultipleChoice;
    token_classification: MegatronBertForTokenClassification;
    /// Needs `num_labels` = 2, as `transformers`.
    question_answering: MegatronBertForQuestionAnswering;
}

#[cfg(test)]
mod tests;

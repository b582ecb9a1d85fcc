//! BERT for autocandle, after `transformers`' `modeling_bert` (5.23): [`BertConfig`],
//! [`BertModel`] and the heads [`BertForPreTraining`], [`BertLMHeadModel`],
//! [`BertForMaskedLM`], [`BertForNextSentencePrediction`],
//! [`BertForSequenceClassification`], [`BertForMultipleChoice`],
//! [`BertForTokenClassification`] and [`BertForQuestionAnswering`].
//!
//! Weight names read exactly like the `transformers` state dict (`bert.embeddings.*`,
//! `bert.encoder.layer.N.attention.self.query.weight`, `cls.predictions.bias`, ...), and every
//! type registers itself with `#[derive(AutoRegister)]` under model type `bert`.
//!
//! Inference only: dropout is a no-op; there is no KV cache, no `inputs_embeds` and no
//! cross-attention (`encoder_hidden_states`).
//!
//! Architectures built on the BERT encoder reuse its parts: [`BertModel::new`] with their own
//! config turned into a [`BertConfig`] (RoBERTa), [`BertLayer::from_weights`] and
//! [`BertEncoder`] for layers under other weight names (DistilBERT), [`lm_decoder`] /
//! [`tied_weight`] for tied output matrices, [`BertEmbeddings::new`] /
//! [`BertEmbeddings::embed`] for BERT's embeddings at another width (ALBERT, ELECTRA),
//! [`BertEncoder::new`] for the stack under BERT's names and [`attention_mask`] for stacks
//! run layer by layer (ALBERT's shared groups, MPNet's position bias). The sequence classification, multiple choice,
//! token classification and question answering heads are `autocandle_core::heads`' generic
//! ones over [`BertModel`].

#![warn(missing_docs)]

mod config;
mod heads;
mod inputs;
mod model;
mod reuse;

pub use config::{BertConfig, TokenIds};
pub use heads::{
    __heads, lm_decoder, tied_weight, BertForMaskedLM, BertForMultipleChoice, BertForNextSentencePrediction,
    BertForPreTraining, BertForQuestionAnswering, BertForSequenceClassification, BertForTokenClassification, BertHead,
    BertLMHeadModel, BertLm, BertNextSentence, BertPreTraining,
};
pub use model::{BertEmbeddings, BertEncoder, BertLayer, BertLayerWeights, BertModel};
pub use reuse::attention_mask;

#[cfg(test)]
mod tests;

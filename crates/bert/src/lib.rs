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

mod config;
mod heads;
mod inputs;
mod model;

pub use config::{BertConfig, TokenIds};
pub use heads::{
    BertForMaskedLM, BertForMultipleChoice, BertForNextSentencePrediction, BertForPreTraining,
    BertForQuestionAnswering, BertForSequenceClassification, BertForTokenClassification, BertLMHeadModel,
};
pub use model::BertModel;

#[cfg(test)]
mod tests;

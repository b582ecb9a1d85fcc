//! ELECTRA for autocandle, after `transformers`' `modeling_electra` (5.25): [`ElectraConfig`],
//! [`ElectraModel`] and the heads [`ElectraForPreTraining`] (the discriminator), [`ElectraForMaskedLM`] and [`ElectraForCausalLM`] (the
//! generator), [`ElectraForSequenceClassification`], [`ElectraForMultipleChoice`],
//! [`ElectraForTokenClassification`], [`ElectraForQuestionAnswering`] and the text encoder.
//!
//! The network is BERT's (`autocandle-bert`'s embeddings and layer stack, not a copy), with
//! the embeddings `embedding_size` wide and projected to `hidden_size` by
//! `embeddings_project` when the two differ, and no pooler. The heads are ELECTRA's: the
//! generator (`generator_predictions`: dense to `embedding_size`, exact GELU, LayerNorm; then
//! `generator_lm_head`, tied to the word embeddings), the classifier (dense, exact GELU,
//! `out_proj` on the first token) and the multiple choice summary (`ElectraSequenceSummary`).
//!
//! The discriminator `ElectraForPreTraining` ([`ElectraDiscriminator`], `AutoModelForPreTraining`)
//! gives one logit per token (`[batch, seq]`, "was this token replaced"), the `logits` field of
//! its `PreTrainingOutput`, as `transformers`' `ElectraForPreTrainingOutput`.
//!
//! Inference only: dropout is a no-op; there is no KV cache, no `inputs_embeds` and no
//! cross-attention (`encoder_hidden_states`).

#![warn(missing_docs)]

mod config;
mod heads;
mod model;

pub use config::{ElectraConfig, SummaryType, TokenIds};
pub use heads::{
    __heads, ElectraDiscriminator, ElectraForCausalLM, ElectraForMaskedLM, ElectraForMultipleChoice,
    ElectraForPreTraining, ElectraForQuestionAnswering, ElectraForSequenceClassification,
    ElectraForTokenClassification, ElectraGenerator, ElectraHead, ElectraMultipleChoice, ElectraSequenceClassifier,
    ElectraTextEncoding,
};
pub use model::ElectraModel;

#[cfg(test)]
mod tests;
